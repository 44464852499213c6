"""Live executions of one worker process: a thread each, feeding a queue.

An ``Execution`` runs the engine in its own thread (a greenlet under gunicorn's gevent
worker, which monkey-patches ``threading`` and ``queue``), records every event in the
store as it happens, then hands the already-encoded event to the SSE generator through
a queue. The ``Registry`` holds this process's live executions (the fast path for
stop / input / continue) and enforces ``FLOWRUN_MAX_EXECUTIONS``.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable

from flowrun import logs, metrics
from flowrun.engine import events
from flowrun.engine.controls import Controls
from flowrun.engine.run import Run
from flowrun.errors import InputMissing
from flowrun.jsontext import dumps as _dumps
from flowrun.store.history import Store
from flowrun.store.masking import Masker
from flowrun.store.sealing import PromptKey, secret_keys
from flowrun.web.errors import Busy
from flowrun.web.memory import Trimmer, malloc_trim

log = logging.getLogger("flowrun")
DONE = None  # queue sentinel: the run is over
GONE = "gone"  # queue sentinel: the client went away; end the stream now
_LOGGED_LIMIT = 1 << 20  # bytes of step JSON kept per execution for `end`


class Mailbox:
    """A small many-producer, one-consumer queue of events for the SSE generator.

    ``queue.SimpleQueue`` under gevent costs about 2.8 KB; this (a list and an
    Event) about 0.2 KB, which matters with 10,000 open streams per worker.
    ``get`` raises ``queue.Empty`` like a queue.
    """

    __slots__ = ("_items", "_ready")

    def __init__(self):
        self._items: list = []
        self._ready = threading.Event()

    def put(self, item) -> None:
        self._items.append(item)
        self._ready.set()

    def get(self, block: bool = True, timeout: float | None = None):
        items, ready = self._items, self._ready
        if items:
            return items.pop(0)
        if not block:
            raise queue.Empty
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ready.clear()
            # Re-check after clearing: a put between the check and the clear
            # would otherwise be slept through.
            if items:
                return items.pop(0)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise queue.Empty
            ready.wait(remaining)
            if items:
                return items.pop(0)


class WebControls(Controls):
    """Controls whose stop may also be recorded by another worker, and whose
    prompts may be answered through another worker (secret answers sealed)."""

    def __init__(self, execution_id: str, channel, secret_vars=frozenset()):
        super().__init__()
        self.execution_id = execution_id
        self.channel = channel
        self.secret_vars = secret_vars
        self._no_stop_at = None  # stop generation of the last lookup that found none
        self._prompt_key: PromptKey | None = None  # of a prompt asking for secrets
        # Why the run cannot be recorded, or None (Recorder.failure), checked
        # before every step: a run is never carried on unrecorded.
        self.unrecorded = None

    def prompt_asked(self, step_index: int, keys: list[str]) -> None:
        """A prompt is about to be shown: when it asks for secrets, make the key
        pair their answers are sealed to, and record its public half."""
        self._prompt_key = None
        if self.channel is None or not secret_keys(keys, self.secret_vars):
            return
        self._prompt_key = PromptKey()
        self.channel.publish_prompt_key(
            self.execution_id, step_index, self._prompt_key.public
        )

    def answer(self, step_index: int, values: dict) -> str:
        """Deliver an answer (opening sealed values); the channel then forgets it."""
        if self._prompt_key is not None:
            values = self._prompt_key.open(values)
        result = super().answer(step_index, values)
        if self.channel is not None and result != "not_waiting":
            try:
                self.channel.delivered(self.execution_id, step_index)
            except Exception:  # it is still pruned with the day's rows
                log.exception("forgetting the answer to %s failed", self.execution_id)
        return result

    def external_stop(self) -> bool:
        # Consulted synchronously before every step: a stop answered by another
        # worker is on record before its 202 went out. The channel's stop
        # generation changes after every stop row is committed (and before it is
        # answered): while it has not changed since a lookup found no stop, no
        # stop has come since, and the table need not be read again.
        if self.unrecorded is not None and self.unrecorded() is not None:
            self.cancelled.set()
            return True
        channel = self.channel
        if channel is None:
            return False
        generation = channel.stop_generation()
        if generation is not None and generation == self._no_stop_at:
            return False
        if channel.stop_requested(self.execution_id):
            self.cancelled.set()  # found once: no need to look again
            return True
        self._no_stop_at = generation
        return False


class NoPrompts(WebControls):
    """Controls for runs nobody watches: a prompt not answered in advance fails.

    A stop request still works (through the channel), as for streamed runs.
    """

    def ask(self, step_index, prompts, timeout):
        raise InputMissing(
            "No answer for prompt(s) "
            + ", ".join(prompts)
            + ": give them in options.inputs"
        )


def _row_failure(store: Store, row) -> str | None:
    if row.seq is None and row.error is None:
        store.flush()
    return row.error


class Recorder:
    """Write one run's events to the store as they happen (masking secrets).

    The engine has masked secret variables and answers already (``Run.secrets``);
    what is stored also has secret headers masked (``Masker``).
    """

    # (stepIndex, keys) of the prompt waiting for an answer, or None.
    prompt: tuple[int, list[str]] | None = None

    def __init__(self, store: Store, run: Run, channel=None, event_log=False):
        self.store = store
        self.run = run
        self.channel = channel
        self.masker = Masker((), run.ctx.vars, run.ctx.inputs)
        name, total = run.flow.get("name") or "", len(run.nodes)
        self.row = store.create(run.execution_id, name, total, run.options.environment)
        metrics.RUNS_STARTED.inc()
        self.events = (
            logs.EventLog(run.execution_id, name, total) if event_log else None
        )
        self._announce(status="running", prompt=None, paused=None)
        self._waiting = False

    def failure(self) -> str | None:
        """Why this run's history cannot be written, or None.

        A row still waiting for its group commit is committed first: a run's first
        request never leaves before its row is known to be written.
        """
        return _row_failure(self.store, self.row)

    def failure_check(self) -> Callable[[], str | None]:
        """``failure`` for the run's controls to call before each step.

        It holds the store and the row, not this recorder: the controls belong to
        the run, and a way back from them to the run would make each ended run's
        whole graph (its responses too) garbage that only the cyclic collector
        frees, in long full collections.
        """
        return functools.partial(_row_failure, self.store, self.row)

    def _announce(self, **fields) -> None:
        if "prompt" in fields:  # the keys go with the prompt they belong to
            fields.setdefault("prompt_keys", None)
        if self.channel is not None:
            self.channel.announce(self.run.execution_id, **fields)

    def record(self, ev: events.Event, data: dict, text: str) -> None:
        name = ev.name
        if name == "step":
            record = ev.record
            if self.masker.needed(record):
                text = self.masker.masked_json(data, text)
            self.store.step(self.row, record["stepIndex"], record["status"], text)
            metrics.observe_step(record)
            if self.events is not None:
                self.events.step(record)
            if self._waiting:
                self._unwait()
        elif name == "step_start":
            if self._waiting:
                self._unwait()
        elif name == "input_required":
            # The keys the prompt asks for: an answer lacking one is refused
            # (400) by whichever worker receives it, and the prompt keeps waiting.
            index, keys = data["stepIndex"], list(data["prompts"])
            self.prompt = (index, keys)
            self._waiting = True
            # The key secret answers are sealed to is on record before the prompt
            # can be seen: no worker answers it before it can seal the answer.
            controls = self.run.controls
            if isinstance(controls, WebControls):
                controls.prompt_asked(index, keys)
            self.store.waiting(self.row, index, None, keys)
            self._announce(prompt=index, prompt_keys=keys, paused=None)
        elif name == "paused":
            self.store.waiting(self.row, None, data["stepIndex"])
            self._announce(prompt=None, paused=data["stepIndex"])
            self._waiting = True
        elif name == "end":
            self.end(data)

    def _unwait(self) -> None:
        self.prompt = None
        self.store.waiting(self.row, None, None)
        self._announce(prompt=None, paused=None)
        self._waiting = False

    def end(self, data: dict) -> None:
        if data["interrupted"]:
            status = "interrupted"
        else:
            status = "completed" if data["success"] else "failed"
        summary = {k: v for k, v in data.items() if k != "executionLog"}
        by_id = {n["id"]: (i, n) for i, n in enumerate(self.run.nodes)}
        not_run = []
        for node_id in data["notRun"]:
            index, node = by_id[node_id]
            not_run.append(
                {
                    "executionId": data["executionId"],
                    "step": index + 1,
                    "stepIndex": index,
                    "id": node_id,
                    "name": node.get("name", node_id),
                    "status": "not_run",
                    "method": node.get("method", "GET"),
                    "url": node.get("url", ""),
                }
            )
        self.store.finish(self.row, status, summary, not_run)
        metrics.observe_end(status)
        if self.events is not None:
            self.events.end(status, data)
        self._announce(status=status, prompt=None, paused=None)

    def crashed(self, exc: BaseException) -> list[events.Event]:
        """Events that end a run whose engine raised (a bug): error, then end."""
        eid = self.run.execution_id
        message = f"Internal error: {type(exc).__name__}: {exc}"
        interrupted = self.run.controls.seal()  # a later stop is refused (409)
        return [
            events.Error(eid, message, None),
            events.End(eid, False, interrupted, 0, 0, 0, [], 0.0, list(self.run.log)),
        ]


class Execution:
    """One live execution: its run, controls, event queue and thread."""

    def __init__(self, state, run: Run, controls: WebControls):
        self.state = state
        self.id = run.execution_id
        self.run = run
        self.controls = controls
        self.queue = Mailbox()
        self.finished = False
        # Bytes queued for a client that is not reading them (a stalled
        # connection): past ``state.backlog_limit`` the run is stopped, so a
        # client cannot make a worker hold a whole run's bodies in memory.
        self.pending = 0
        self.recorder = Recorder(state.store, run, state.channel, state.event_log)
        controls.unrecorded = self.recorder.failure_check()
        # Step records as encoded for their `step` events, so that `end`'s
        # executionLog (the same records) is joined, not encoded again.
        self._logged: list | None = []
        self._logged_bytes = 0
        self._prefix = '{"executionId":' + _dumps(self.id) + ","

    def start(self) -> None:
        """Queue the ``start`` event here, then run the rest in the run's thread.

        The engine yields ``start`` before any I/O; queuing it in the request
        means the first frame goes out with the response headers, however many
        greenlets wait to be scheduled (time to first event under load).
        """
        events = self.run.events()
        try:
            self._emit(next(events))
        except Exception as exc:  # reported by _work, like any engine failure
            events = _raising(exc)
        # A bare thread (a greenlet under gevent's patching, looked up at call
        # time): threading.Thread adds about 1 KB of bookkeeping per execution.
        _thread.start_new_thread(self._work, (events,))

    def _emit(self, ev) -> bool:
        """Record and queue one event; True if it was ``end``."""
        if ev.name == "end" and self.recorder.row.error is not None:
            # Why the run stopped, since its history cannot say it.
            self._emit(
                events.Error(self.id, unrecorded_message(self.recorder.row.error), None)
            )
        data = ev.to_dict()
        text = self._encode(ev, data)
        self._record(ev, data, text)
        self.queue.put((ev.name, text))
        self.pending += len(text)
        ended = ev.name == "end"
        if self.pending > self.state.backlog_limit and not ended:
            self._backlogged()
        return ended

    def _encode(self, ev, data: dict) -> str:
        """``_dumps(data)``, reusing each step record's JSON for ``end``."""
        name = ev.name
        if name == "step":
            record = ev.record
            if type(record) is dict and record and "executionId" not in record:
                inner = _dumps(record)
                logged = self._logged
                if logged is not None:
                    self._logged_bytes += len(inner)
                    if self._logged_bytes <= _LOGGED_LIMIT:
                        logged.append((record, inner))
                    else:  # a big run: `end` is encoded whole, as it was
                        self._logged = None
                # {"executionId": …, **record}, the order of StepEvent.to_dict
                return self._prefix + inner[1:]
        elif name == "end":
            log_ = data.get("executionLog")
            logged = self._logged
            if (
                logged is not None
                and type(log_) is list
                and len(log_) == len(logged)
                and next(reversed(data)) == "executionLog"
                and all(r is e[0] for r, e in zip(log_, logged, strict=True))
            ):
                head = _dumps({k: v for k, v in data.items() if k != "executionLog"})
                joined = ",".join(e[1] for e in logged)
                return f'{head[:-1]},"executionLog":[{joined}]}}'
        return _dumps(data)

    def _work(self, events) -> None:
        logs.execution_id.set(self.id)  # on every line this run's thread logs
        put = self.queue.put
        ended = False
        try:
            for ev in events:
                ended = self._emit(ev)
        except Exception as exc:  # an engine bug must still end the stream
            log.exception("execution %s crashed", self.id)
            if not ended:
                for ev in self.recorder.crashed(exc):
                    data = ev.to_dict()
                    self._record(ev, data, "")
                    put((ev.name, _dumps(data)))
        finally:
            self.finished = True
            put(DONE)
            self.state.registry.remove(self.id)
            try:
                self.state.channel.forget(self.id)
            except Exception:
                log.exception("forgetting %s failed", self.id)

    def _backlogged(self) -> None:
        if not self.controls.cancelled.is_set():
            log.warning(
                "execution %s stopped: its client has not read %d bytes of events",
                self.id,
                self.pending,
            )
            self.controls.stop()

    def _record(self, ev, data: dict, text: str) -> None:
        try:
            self.recorder.record(ev, data, text)
        except Exception:  # a history failure must not take the live run down
            log.exception("recording %s of %s failed", ev.name, self.id)

    def client_gone(self) -> None:
        """The stream's client went away: stop after the step in flight."""
        if not self.finished:
            self.controls.stop()
        self.queue.put(GONE)


def unrecorded_message(reason: str) -> str:
    """The message of a run that stopped, or did not start, for want of history."""
    return f"History cannot be recorded ({reason}): the run was stopped"


def _raising(exc: Exception):
    raise exc
    yield  # pragma: no cover - makes this a generator


class Registry:
    """This process's live executions, bounded by ``FLOWRUN_MAX_EXECUTIONS``.

    Streamed executions are held here (the fast path for stop, input and continue);
    runs served inside their request (``/api/execute``, Try it out) only take a
    ``slot()``. Both count against the one limit.

    Its ``trimmer`` sees the count change: after a spike of executions has ended,
    it has the allocator return the freed memory to the OS (``flowrun.web.memory``).
    """

    def __init__(self, limit: int, trimmer: Trimmer | None = None):
        self.limit = limit
        self.live: dict[str, Execution] = {}
        self.in_request = 0
        self._in_request_controls: set = set()  # of runs served in their request
        self._lock = threading.Lock()  # a check and the count it guards, together
        self.trimmer = trimmer if trimmer is not None else Trimmer(malloc_trim())

    def reserve(self) -> None:
        """Raise Busy if this worker has no room for another run."""
        if len(self.live) + self.in_request >= self.limit:
            raise Busy(
                f"This worker already runs {self.limit} executions "
                "(FLOWRUN_MAX_EXECUTIONS)"
            )

    def add(self, execution: Execution) -> None:
        with self._lock:
            self.reserve()
            self.live[execution.id] = execution
        self.trimmer.update(len(self.live))

    @contextlib.contextmanager
    def slot(self, controls=None):
        """Room for one run served inside its request; Busy when there is none.

        ``controls``, the run's, are stopped with the others (``controls()``).
        """
        with self._lock:
            self.reserve()
            self.in_request += 1
            if controls is not None:
                self._in_request_controls.add(controls)
        try:
            yield
        finally:
            with self._lock:
                self.in_request -= 1
                self._in_request_controls.discard(controls)

    def controls(self) -> list:
        """The controls of every run of this process (a shutdown stops them)."""
        with self._lock:
            return [
                *(e.controls for e in self.live.values()),
                *self._in_request_controls,
            ]

    def get(self, execution_id: str) -> Execution | None:
        return self.live.get(execution_id)

    def remove(self, execution_id: str) -> None:
        if self.live.pop(execution_id, None) is not None:
            self.trimmer.update(len(self.live))

    def __len__(self) -> int:
        return len(self.live)
