"""Cross-worker control channel: stop, prompt answers and ``continue`` for executions
held by another process.

A control request first tries the receiving worker's own registry (the fast path,
``flowrun/web/api/control.py``). Otherwise it goes through a channel, which every
worker polls with ONE poller thread (a greenlet under gevent) for all of its
executions:

- ``SQLiteChannel`` (default): rows in the database's ``controls`` table, shared by the
  workers of one host; polled every ``interval`` seconds (50 ms).
- ``RedisChannel`` (``FLOWRUN_REDIS_URL``): each worker ``BLPOP``\\ s its own inbox
  list; executions' owners and states live in Redis keys, so several hosts work.

A stop is *recorded* before the stop request is answered, and the execution consults
that record synchronously before every step (``stop_requested``), so no step starts
once the 202 is out, whichever worker answered it. The holder then says whether the
stop came in time (a run that has already ended otherwise refuses it), and the
worker that recorded it waits for that verdict: a 202 always ends ``interrupted``.
A forced stop (kind ``force``) is a stop that also aborts the request in flight.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid

from flowrun import metrics
from flowrun.jsontext import dumps as _dumps
from flowrun.store.gather import Gathered
from flowrun.store.stops import StopCounter

log = logging.getLogger("flowrun")
STOPS_NAME = "flowrun.stops"  # the stop generation counter, next to the database
DAY = 86400  # answered control rows are kept this long (a late answer is a 409)
_PRUNE_EVERY = 20
# How long a stop request waits for the holder's verdict; past it (a holder that
# is gone) the stop stands as recorded, and the run is marked interrupted by
# whoever finds its process gone.
VERDICT_WAIT_S = 5.0
_VERDICT_POLL_S = 0.01
_STOPS = ("stop", "force")
# What is delivered to a run; other rows (a prompt's key) are only read.
_DELIVERED = (*_STOPS, "input", "continue")


class _Poller:
    """The one poller thread of this process; started on first use, after fork."""

    interval = 0.05

    def __init__(self, registry):
        self.registry = registry
        self._pid = None
        self.closed = False

    def close(self) -> None:
        """Let the poller thread end (tests; a worker simply exits)."""
        self.closed = True

    def ensure_started(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        self._pid = pid
        threading.Thread(target=self._loop, name="flowrun-control", daemon=True).start()

    def stop_generation(self) -> int | None:
        """See ``Store.stop_generation``; None: ask ``stop_requested`` every time."""
        return None

    def health(self) -> str | None:
        """Why controls may not reach this process now, or None (``/api/health``)."""
        return None

    def deliver(self, execution_id: str, kind: str, step_index, payload, created=None):
        """Hand a control to the execution if this process holds it.

        For a stop, the verdict: True if the run ends ``interrupted``, False if it
        had already ended otherwise; None when this process does not hold it.
        ``created``: when the control was recorded (epoch seconds), for the
        control-channel latency metric.
        """
        execution = self.registry.get(execution_id)
        if execution is None or kind not in _DELIVERED:
            return None
        if created is not None:
            metrics.CONTROL_LATENCY.labels(kind).observe(
                max(0.0, time.time() - created)
            )
        controls = execution.controls
        if kind in _STOPS:
            return controls.stop(force=kind == "force")
        if kind == "input":
            controls.answer(step_index, payload or {})
        elif kind == "continue":
            controls.resume()
        return None

    def _loop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    _retried = 0.0

    def _retry_history(self, store) -> None:
        """Write the ends history could not take (a full disk), once a second,
        so that other workers stop showing those runs ``running`` as soon as it
        can; nothing to do, the usual case, costs an attribute read."""
        if not store.unwritten or time.monotonic() - self._retried < 1.0:
            return
        self._retried = time.monotonic()
        try:
            store.flush()
        except Exception:  # logged by the store; tried again in a second
            pass


class _Rows(_Poller):
    """A channel whose controls are rows of the ``controls`` table: the host's
    SQLite database (``SQLiteChannel``) or PostgreSQL (``flowrun.store.pgcontrol``).

    A row per stop, answer and ``continue``; ``UNIQUE (execution_id, kind, step)``
    makes the first answer to a prompt win. The holder writes its verdict on a stop
    into the stop's row, where the requester waits for it.
    """

    # Records (or replaces) a prompt's public key: (id, step, key, created).
    _SET_KEY = ""

    def __init__(self, store, registry):
        super().__init__(registry)
        self.store = store
        self.db = store.db

    def _add(self, execution_id, kind, step_index=-1, payload=None) -> bool:
        raise NotImplementedError  # pragma: no cover - each table's own

    # -- what the API asks
    def state(self, execution_id: str) -> dict | None:
        """``{status, promptStep, promptKeys, pausedStep}`` (``Store.state``)."""
        return self.store.state(execution_id)

    def request_stop(self, execution_id: str, force: bool = False) -> bool | None:
        """Record a stop (``force``: abort the request in flight too), then wait
        for the holder's verdict: True if the run ends ``interrupted``, False if it
        had already ended otherwise, None if nobody said in time."""
        kind = "force" if force else "stop"
        self._add(execution_id, "stop")
        if force:
            self._add(execution_id, "force")
        return self._verdict(execution_id, kind)

    def _verdict(self, execution_id: str, kind: str) -> bool | None:
        """Wait for the verdict the holder writes on the stop row (``_answer_stop``)."""
        deadline = time.monotonic() + VERDICT_WAIT_S
        polls = 0
        while time.monotonic() < deadline:
            found = self.db.run(
                lambda db: db.execute(
                    "SELECT payload FROM controls WHERE execution_id = ? "
                    "AND kind = ? AND step_index = -1",
                    (execution_id, kind),
                ).fetchone()
            )
            if found is not None and found[0]:
                return bool(json.loads(found[0]).get("interrupted"))
            polls += 1
            if polls % 10 == 0:  # ended meanwhile, and no verdict written
                state = self.store.state(execution_id)
                if state is None:  # not recorded: nothing to wait for
                    return None
                if state["status"] != "running":
                    return state["status"] == "interrupted"
            time.sleep(_VERDICT_POLL_S)
        return None

    def send_input(self, execution_id: str, step_index: int, values: dict) -> bool:
        """Queue an answer; False if this prompt was already answered."""
        return self._add(execution_id, "input", step_index, values)

    def input_claimed(self, execution_id: str, step_index: int) -> bool:
        return self._has(execution_id, "input", step_index)

    def send_continue(self, execution_id: str, step_index: int) -> bool:
        return self._add(execution_id, "continue", step_index)

    def publish_prompt_key(self, execution_id: str, step_index: int, public: str):
        """Record the public key secret answers to this prompt are sealed to."""
        args = (execution_id, step_index, _dumps(public), time.time())
        self.db.run(lambda db: db.execute(self._SET_KEY, args))

    def prompt_key(self, execution_id: str, step_index: int) -> str | None:
        """The public key of a prompt that asks for secrets, or None."""
        found = self.db.run(
            lambda db: db.execute(
                "SELECT payload FROM controls WHERE execution_id = ? "
                "AND kind = 'seal' AND step_index = ?",
                (execution_id, step_index),
            ).fetchone()
        )
        return None if found is None else json.loads(found[0])

    def delivered(self, execution_id: str, step_index: int) -> None:
        """Forget a delivered answer; its row stays, so a late one is a 409."""
        self.db.run(
            lambda db: db.execute(
                "UPDATE controls SET payload = NULL WHERE execution_id = ? "
                "AND kind = 'input' AND step_index = ? AND payload IS NOT NULL",
                (execution_id, step_index),
            )
        )

    # -- what the holder does
    def announce(self, execution_id: str, **fields) -> None:
        """Nothing to do: the store row written by the recorder is the state."""

    def forget(self, execution_id: str) -> None:
        """Keep the rows: a late answer to a prompt that was answered is a 409.

        Rows older than a day are pruned as new ones are added.
        """

    # -- the table
    def _has(self, execution_id: str, kind: str, step_index=None) -> bool:
        sql = "SELECT 1 FROM controls WHERE execution_id = ? AND kind = ?"
        args = [execution_id, kind]
        if step_index is not None:
            sql += " AND step_index = ?"
            args.append(step_index)
        found = self.db.run(lambda db: db.execute(sql + " LIMIT 1", args).fetchone())
        return found is not None

    def _deliver_row(self, row) -> None:
        """Deliver one ``controls`` row (id, execution_id, kind, step_index,
        payload, created); write the verdict if it was a stop of a run held here."""
        row_id, execution_id, kind, step_index, payload, created = row
        verdict = self.deliver(
            execution_id,
            kind,
            step_index,
            json.loads(payload) if payload else None,
            created,
        )
        if verdict is not None:
            self._answer_stop(row_id, verdict)

    def _answer_stop(self, row_id: int, interrupted: bool) -> None:
        """Write the verdict on a stop this process holds the run of."""
        verdict = _dumps({"interrupted": interrupted})
        try:
            self.db.run(
                lambda db: db.execute(
                    "UPDATE controls SET payload = ? WHERE id = ?", (verdict, row_id)
                )
            )
        except Exception:  # the stop stands; its requester stops waiting in time
            log.exception("answering stop %s failed", row_id)


class SQLiteChannel(_Rows):
    """Control rows in the host's SQLite database (one host, several workers).

    Next to the database, ``flowrun.stops`` holds the stop generation
    (``StopCounter``): every process of the host maps it, and it moves after each
    stop row is committed, so an execution reads the table before a step only when
    a stop may have come.
    """

    _SET_KEY = (
        "INSERT OR REPLACE INTO controls (execution_id, kind, step_index, payload, "
        "created) VALUES (?, 'seal', ?, ?, ?)"
    )

    def __init__(self, store, registry, interval: float = 0.05):
        super().__init__(store, registry)
        self.interval = interval
        self._last = 0
        self._added = 0
        try:
            self._stops: StopCounter | None = StopCounter(
                self.db.path.with_name(STOPS_NAME)
            )
        except (OSError, ValueError):  # no shared file: every check reads the table
            self._stops = None

    def close(self) -> None:
        super().close()
        if self._stops is not None:
            self._stops.close()
            self._stops = None

    def ensure_started(self) -> None:
        if self._pid != os.getpid():
            row = self.db.run(
                lambda db: db.execute("SELECT MAX(id) FROM controls").fetchone()
            )
            self._last = row[0] or 0
        super().ensure_started()

    def stop_requested(self, execution_id: str) -> bool:
        return self._has(execution_id, "stop")

    def stop_generation(self) -> int | None:
        """A number that changes whenever a stop row is added (by any process of
        this host), after the row is committed; None if it is not available.

        A check that found no stop row for an execution after reading generation
        ``g`` need not read the table again while the generation is still ``g``.
        """
        stops = self._stops
        if stops is None:
            return None
        try:
            return stops.read()
        except ValueError:  # closed meanwhile
            return None

    # -- the table
    def _add(self, execution_id, kind, step_index=-1, payload=None) -> bool:
        """Insert a control row; False if the same (kind, step) is already there."""
        args = (
            execution_id,
            kind,
            step_index,
            None if payload is None else _dumps(payload),
            time.time(),
        )
        self._added += 1
        prune = self._added % _PRUNE_EVERY == 1

        def work(db):
            if prune:
                db.execute("DELETE FROM controls WHERE created < ?", (args[4] - DAY,))
            return db.execute(
                "INSERT OR IGNORE INTO controls (execution_id, kind, step_index, "
                "payload, created) VALUES (?, ?, ?, ?, ?)",
                args,
            ).rowcount

        inserted = self.db.run(work, write=prune)
        if kind == "stop" and self._stops is not None:
            # After the row is committed, before the caller answers: a process
            # that then reads an unchanged generation knows no stop came since.
            self._stops.bump()
        return inserted == 1

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval)
            if self.closed:
                return
            self._retry_history(self.store)
            if not len(self.registry):
                continue
            try:
                rows = self.db.run(
                    lambda db: db.execute(
                        "SELECT id, execution_id, kind, step_index, payload, "
                        "created FROM controls WHERE id > ? ORDER BY id",
                        (self._last,),
                    ).fetchall()
                )
            except Exception:  # the database is busy or gone: try again later
                log.exception("control poll failed")
                continue
            for row in rows:
                self._last = max(self._last, row[0])
                self._deliver_row(row)


class RedisChannel(_Poller):
    """Control through Redis: works across hosts behind a load balancer.

    Keys (``prefix`` = ``flowrun:``): ``exec:<id>`` hash {status, owner, prompt,
    prompt_keys (a JSON list), paused} written by the holder; ``stop:<id>`` set by a
    stop; ``claim:<id>:<kind>:<step>`` (SET NX) de-duplicates answers;
    ``inbox:<owner>`` is the list the owner's poller BLPOPs, holding JSON
    ``[id, kind, step, payload]`` messages.
    """

    TTL = 86400
    POOL_SIZE = 20  # connections of a worker process
    POOL_WAIT_S = 30.0

    def __init__(self, url: str, store, registry, prefix: str = "flowrun:"):
        super().__init__(registry)
        import redis  # only needed when FLOWRUN_REDIS_URL is set

        self._redis_mod = redis
        self.url = url
        self.store = store
        self.prefix = prefix
        self._client = None
        self._client_pid = None
        self.owner = None
        # Runs about to start a step ask together (flowrun.store.gather).
        self._stops = Gathered(self._stopped)

    @property
    def r(self):
        # One client (and connection pool) per process, created after fork.
        if self._client_pid != os.getpid():
            self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            # Thousands of runs share a few connections: one that finds them all
            # busy waits for one instead of failing ("Too many connections").
            pool = self._redis_mod.BlockingConnectionPool.from_url(
                self.url, max_connections=self.POOL_SIZE, timeout=self.POOL_WAIT_S
            )
            self._client = self._redis_mod.Redis(connection_pool=pool)
            self._client_pid = os.getpid()
        return self._client

    def ensure_started(self) -> None:
        self.r  # noqa: B018 - connect (and name this process) before the poller runs
        super().ensure_started()

    def health(self) -> str | None:
        try:
            self.r.ping()
        except Exception as exc:
            return f"Redis cannot be reached: {type(exc).__name__}: {exc}"
        return None

    def _k(self, *parts) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def state(self, execution_id: str) -> dict | None:
        got = self.r.hgetall(self._k("exec", execution_id))
        if not got:
            return self.store.state(execution_id)
        got = {k.decode(): v.decode() for k, v in got.items()}
        prompt, keys = got.get("prompt"), got.get("prompt_keys")
        return {
            "status": got.get("status", "running"),
            "promptStep": int(prompt) if prompt else None,
            "promptKeys": json.loads(keys) if prompt and keys else None,
            "pausedStep": int(got["paused"]) if got.get("paused") else None,
        }

    def request_stop(self, execution_id: str, force: bool = False) -> bool | None:
        """As ``SQLiteChannel.request_stop``: the holder answers on a list of its
        own, named in the message."""
        self.r.set(self._k("stop", execution_id), 1, ex=self.TTL)
        reply = self._k("verdict", execution_id, uuid.uuid4().hex)
        kind = "force" if force else "stop"
        if not self._send(execution_id, kind, -1, {"reply": reply}):
            return None
        for _ in range(int(VERDICT_WAIT_S)):
            got = self.r.blpop([reply], timeout=1)
            if got is not None:
                return bool(json.loads(got[1]))
            # its holder no longer holds it: ended meanwhile, or gone
            state = self.state(execution_id)
            if state is None:
                return None
            if state["status"] != "running":
                return state["status"] == "interrupted"
        return None

    def stop_requested(self, execution_id: str) -> bool:
        return self._stops.ask(execution_id)

    def _stopped(self, execution_ids) -> set[str]:
        """Which of these executions have a stop on record (one MGET)."""
        ids = list(execution_ids)
        values = self.r.mget([self._k("stop", i) for i in ids])
        return {i for i, value in zip(ids, values, strict=True) if value is not None}

    def send_input(self, execution_id: str, step_index: int, values: dict) -> bool:
        if not self.r.set(
            self._k("claim", execution_id, "input", step_index), 1, nx=True, ex=self.TTL
        ):
            return False
        self._send(execution_id, "input", step_index, values)
        return True

    def input_claimed(self, execution_id: str, step_index: int) -> bool:
        return bool(self.r.exists(self._k("claim", execution_id, "input", step_index)))

    def send_continue(self, execution_id: str, step_index: int) -> bool:
        if not self.r.set(
            self._k("claim", execution_id, "continue", step_index),
            1,
            nx=True,
            ex=self.TTL,
        ):
            return False
        self._send(execution_id, "continue", step_index, None)
        return True

    def publish_prompt_key(self, execution_id: str, step_index: int, public: str):
        """As ``SQLiteChannel.publish_prompt_key``, in the execution's hash."""
        self.announce(execution_id, seal=f"{step_index}:{public}")

    def prompt_key(self, execution_id: str, step_index: int) -> str | None:
        got = self.r.hget(self._k("exec", execution_id), "seal")
        if not got:
            return None
        step, _, public = got.decode().partition(":")
        return public if step == str(step_index) else None

    def delivered(self, execution_id: str, step_index: int) -> None:
        """Nothing to forget: the holder took the answer off its inbox list."""

    def _send(self, execution_id, kind, step_index, payload) -> bool:
        """Put a message in the holder's inbox; False if no holder is known."""
        owner = self.r.hget(self._k("exec", execution_id), "owner")
        if owner is None:
            return False
        self.r.rpush(
            self._k("inbox", owner.decode()),
            json.dumps([execution_id, kind, step_index, payload, time.time()]),
        )
        return True

    def announce(self, execution_id: str, **fields) -> None:
        """Record (part of) the state of an execution this process holds.

        None is stored as ``""``, a list as its JSON.
        """
        client = self.r  # also sets self.owner in a new process
        key = self._k("exec", execution_id)
        values = {"owner": self.owner}
        for name, value in fields.items():
            if isinstance(value, list):
                value = json.dumps(value)
            values[name] = "" if value is None else value
        pipe = client.pipeline()
        pipe.hset(key, mapping=values)
        pipe.expire(key, self.TTL)
        pipe.execute()

    def forget(self, execution_id: str) -> None:
        self.r.delete(self._k("stop", execution_id))

    def _loop(self) -> None:
        while not self.closed:
            try:
                client = self.r
                item = client.blpop([self._k("inbox", self.owner)], timeout=1)
            except Exception:
                if self.closed:
                    return
                log.exception("redis control poll failed")
                time.sleep(1)
                continue
            self._retry_history(self.store)
            if item is None:
                continue
            # [id, kind, step, payload, sent at]; a sender of an earlier version
            # sent no time.
            execution_id, kind, step_index, payload, *sent = json.loads(item[1])
            verdict = self.deliver(execution_id, kind, step_index, payload, *sent[:1])
            if verdict is not None and payload and payload.get("reply"):
                pipe = self.r.pipeline()
                pipe.rpush(payload["reply"], json.dumps(verdict))
                pipe.expire(payload["reply"], 60)
                pipe.execute()
