"""What one worker process shares between requests: ``app.extensions["flowrun"]``.

``State`` holds the settings, the history store, the control channel, the registry
of live executions and the disconnect watch, and starts runs: streamed ones in a
thread of their own (``start``), others inside their request (``run_to_end``).
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import weakref

from flowrun import logs
from flowrun import settings as settings_mod
from flowrun.engine.run import EngineSettings, Run, new_execution_id
from flowrun.errors import located
from flowrun.green import gevent_active
from flowrun.jsontext import dumps as _dumps
from flowrun.store.control import RedisChannel, SQLiteChannel
from flowrun.store.history import Store
from flowrun.store.postgres import is_postgres_url
from flowrun.version import __version__
from flowrun.web.disconnect import DisconnectWatch
from flowrun.web.errors import ApiError
from flowrun.web.executions import (
    Execution,
    NoPrompts,
    Recorder,
    Registry,
    WebControls,
)
from flowrun.workspace import Workspace

log = logging.getLogger("flowrun")


class State:
    """What one worker process shares between requests (``app.extensions``)."""

    def __init__(self, config: dict):
        self.config = config
        self.heartbeat = float(config["FLOWRUN_HEARTBEAT_S"])
        self.max_steps = int(config["FLOWRUN_MAX_STEPS"])
        self.workspace = Workspace(config["FLOWRUN_FLOWS_DIR"])
        self.secret_vars = frozenset(settings_mod.split(config["FLOWRUN_SECRET_VARS"]))
        log_format = str(config["FLOWRUN_LOG_FORMAT"]).strip().lower()
        if log_format not in ("text", "json"):
            raise ValueError("FLOWRUN_LOG_FORMAT must be text or json")
        self.event_log = log_format == "json"  # a line per run event
        self.registry = Registry(int(config["FLOWRUN_MAX_EXECUTIONS"]))
        self.store, self.channel = _backends(config, self.registry)
        # Events a stream may have waiting for a client that does not read.
        self.backlog_limit = max(32 * 2**20, 8 * int(config["FLOWRUN_MAX_BODY_BYTES"]))
        self.disconnects = DisconnectWatch()
        try:
            self.store.reap()
        except sqlite3.DatabaseError as exc:
            # A damaged database: the worker still starts, and answers 503 to runs
            # (Store.writable) and to reads, instead of failing to boot.
            log.error("runs left by dead processes not marked: %s", exc)
        # A worker that exits (gunicorn restart, deploy) cannot finish its runs;
        # say so in history rather than leave them "running" for ever.
        atexit.register(_abandon_live, weakref.ref(self))

    def close(self) -> None:
        self.channel.close()
        self.store.close()

    def health(self) -> dict:
        """The store, the control channel and this worker: ``/api/health``'s body.

        ``status`` is ``unavailable`` when history cannot be recorded or read, or
        controls cannot be delivered; ``error`` then says so in one sentence, and
        ``reason`` names the part (``store: …; control channel: …``).
        """
        store, channel = self.store.health(), self.channel.health()
        report = {
            "status": "ok",
            "version": __version__,
            "store": _part(type(self.store).__name__, store),
            "channel": _part(type(self.channel).__name__, channel),
            "worker": {
                "pid": os.getpid(),
                "executions": len(self.registry) + self.registry.in_request,
            },
        }
        errors, problems = [], []
        if store:
            errors.append(f"History cannot be recorded ({store})")
            problems.append(f"store: {store}")
        if channel:
            errors.append(f"Controls cannot be delivered ({channel})")
            problems.append(f"control channel: {channel}")
        if problems:
            report["status"] = "unavailable"
            report["error"] = "; ".join(errors)
            report["reason"] = "; ".join(problems)
        return report

    def stop_all(self, force: bool = False) -> None:
        """Stop every run of this process after its step in flight (``force``:
        abort the step in flight)."""
        _stop_all(self.registry, force)

    def engine_settings(self) -> EngineSettings:
        settings = EngineSettings.from_settings(self.config)
        settings.secret_vars = self.secret_vars
        return settings

    def recordable(self) -> None:
        """Raise (503) if a new run could not be recorded: it would run unrecorded."""
        reason = self.store.writable()
        if reason is not None:
            raise ApiError(
                503,
                f"History cannot be recorded ({reason}): the run was not started",
                [located(self.store.SETTING, reason, self.store.REMEDY)],
                {"Retry-After": "10"},
            )

    def start(self, flow: dict, options) -> Execution:
        """Create, record and start a live execution (its own thread)."""
        self.registry.reserve()
        self.recordable()
        self.channel.ensure_started()
        execution_id = new_execution_id()
        controls = WebControls(execution_id, self.channel, self.secret_vars)
        run = Run(flow, options, controls, self.engine_settings(), execution_id)
        execution = Execution(self, run, controls)
        self.registry.add(execution)
        execution.start()
        return execution

    def run_to_end(self, flow: dict, options, watch=None) -> dict:
        """Run here to the end (prompts only from options.inputs); return ``end``.

        ``watch(on_close)``, if given, calls ``on_close()`` once the client closes
        its connection and returns an unwatch (or None, when it cannot tell).
        """
        self.recordable()
        execution_id = new_execution_id()
        controls = NoPrompts(execution_id, self.channel)
        with self.registry.slot(controls):
            return self._run_to_end(flow, options, watch, execution_id, controls)

    def _run_to_end(self, flow: dict, options, watch, execution_id, controls) -> dict:
        unwatch = None
        # This request's greenlet serves the connection's next requests too.
        logging_as = logs.execution_id.set(None)
        try:
            run = Run(flow, options, controls, self.engine_settings(), execution_id)
            logs.execution_id.set(execution_id)
            recorder = Recorder(self.store, run, self.channel, self.event_log)
            controls.unrecorded = recorder.failure_check()
            # A client that went away stops the run after the step in flight, as a
            # closed stream does: nobody would read the rest.
            if watch is not None:
                unwatch = watch(controls.stop)
            end = None
            for ev in run.events():
                data = ev.to_dict()
                text = _dumps(data) if ev.name == "step" else ""
                recorder.record(ev, data, text)
                if ev.name == "start":
                    # This client learns the run's id from the list only: commit
                    # its row before the first request goes out, not with the next
                    # group (no first event waits on it here).
                    self.store.flush()
                elif ev.name == "end":
                    end = data
            # The end may wait for the group commit: the answer must not come first.
            self.store.flush()
            return end
        finally:
            logs.execution_id.reset(logging_as)
            if unwatch is not None:
                unwatch()


_BACKENDS = {
    "Store": "sqlite",
    "PgStore": "postgresql",
    "SQLiteChannel": "sqlite",
    "PgChannel": "postgresql",
    "RedisChannel": "redis",
}


def _part(kind: str, problem: str | None) -> dict:
    part = {"backend": _BACKENDS.get(kind, kind), "ok": problem is None}
    if problem is not None:
        part["error"] = problem
    return part


def _backends(config: dict, registry: Registry):
    """The history store and the control channel the settings choose.

    - default: SQLite in ``FLOWRUN_DATA_DIR``, controls through its table (the
      workers of one host);
    - ``FLOWRUN_DATABASE_URL``: PostgreSQL for both, several hosts (psycopg is the
      ``postgres`` extra);
    - ``FLOWRUN_REDIS_URL`` as well, or alone: controls through Redis.
    """
    url = config.get("FLOWRUN_DATABASE_URL")
    redis_url = config.get("FLOWRUN_REDIS_URL")
    if url:
        if not is_postgres_url(url):
            raise ValueError(
                "FLOWRUN_DATABASE_URL must be a postgresql:// URL "
                "(unset it to keep history in SQLite in FLOWRUN_DATA_DIR)"
            )
        lease_s = float(config["FLOWRUN_LEASE_S"])
        if lease_s <= 0:
            raise ValueError("FLOWRUN_LEASE_S must be a positive number of seconds")
        from flowrun.store.pgcontrol import PgChannel
        from flowrun.store.pghistory import PgStore

        store = PgStore(url, config["FLOWRUN_HISTORY_LIMIT"], _group_commit(), lease_s)
        store.leases.on_lost = lambda: _stop_all(registry)
        if redis_url:
            return store, RedisChannel(redis_url, store, registry)
        return store, PgChannel(store, registry)
    store = Store(
        config["FLOWRUN_DATA_DIR"], config["FLOWRUN_HISTORY_LIMIT"], _group_commit()
    )
    if redis_url:
        return store, RedisChannel(redis_url, store, registry)
    return store, SQLiteChannel(store, registry)


def _stop_all(registry: Registry, force: bool = False) -> None:
    """Stop every run of this process, live or served in its request."""
    for controls in registry.controls():
        controls.stop(force)


def _abandon_live(state_ref) -> None:
    state = state_ref()
    if state is None:
        return
    try:
        state.store.flush()  # runs that ended in the last moment, still in a group
        if state.registry.live:
            state.store.abandon(list(state.registry.live), "the server process exited")
    except Exception:  # the store may already be closed
        pass


# How long a step row waits for others to share its commit (docs/design.md).
GROUP_COMMIT_S = 0.002


def _group_commit():
    """How the store defers step rows to commit them in groups: under gevent, a
    greenlet GROUP_COMMIT_S later (the SSE stream flushes sooner when it writes);
    elsewhere (threads, tests, the CLI) every row is committed at once."""
    if not gevent_active():
        return None
    import gevent

    return lambda flush: gevent.spawn_later(GROUP_COMMIT_S, flush)
