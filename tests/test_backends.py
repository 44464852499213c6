"""History and the control channel behave the same on SQLite and on PostgreSQL.

Each test runs on both stores (PostgreSQL on a real server of the test session:
skipped where it is not installed, a failure in CI). Two stores opened on the same
data directory or database stand for two workers or two hosts. What only one
backend has is tested in ``test_store.py`` (SQLite) and below (PostgreSQL's
migrations and leases).
"""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest

from flowrun.store.control import SQLiteChannel
from flowrun.store.history import Store

from .waits import wait_until

# The first test to use PostgreSQL starts the session's server.
pytestmark = pytest.mark.timeout(180)


class Registry(dict):
    """The registry of live executions a channel delivers to (none here)."""

    @property
    def live(self):
        return self


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    """``open(**kw)`` opens a store on the test's shared history."""
    opened = []
    if request.param == "sqlite":

        def open_(**kw):
            kw.pop("lease_s", None)
            store = Store(tmp_path, **kw)
            opened.append(store)
            return store

        open_.channel = lambda store: SQLiteChannel(store, Registry())
    else:
        from flowrun.store.pgcontrol import PgChannel
        from flowrun.store.pghistory import PgStore

        url = request.getfixturevalue("postgres_url")

        def open_(**kw):
            store = PgStore(url, **kw)
            opened.append(store)
            return store

        open_.channel = lambda store: PgChannel(store, Registry())
    open_.name = request.param
    yield open_
    for store in opened:
        store.close()


def test_a_run_is_recorded_with_its_steps_and_not_run_entries(backend):
    store, other = backend(), backend()
    row = store.create("exec-1", "flow one", 3, "staging")
    store.step(row, 0, "completed", json.dumps({"stepIndex": 0, "status": "ok"}))
    store.step(row, 1, "failed", json.dumps({"stepIndex": 1, "status": "failed"}))
    assert other.get("exec-1")["status"] == "running"
    store.finish(row, "failed", {"success": False}, [{"stepIndex": 2, "id": "c"}])
    got = other.get("exec-1")
    assert (got["status"], got["flowName"], got["totalSteps"]) == (
        "failed",
        "flow one",
        3,
    )
    assert got["summary"] == {"success": False}
    assert got["environment"] == "staging"
    assert [s["stepIndex"] for s in got["steps"]] == [0, 1, 2]
    assert got["endedAt"] >= got["startedAt"]
    assert [e["executionId"] for e in other.list(10, flow="flow one")] == ["exec-1"]
    assert other.list(10, flow="another") == []
    assert other.get("exec-none") is None


def test_retention_prunes_the_oldest_and_keeps_running_runs(backend):
    store = backend(history_limit=3)
    waiting = store.create("exec-waiting", "f", 1)
    for i in range(30):
        row = store.create(f"exec-{i}", "f", 1)
        store.step(row, 0, "completed", '{"stepIndex":0}')
        store.finish(row, "completed", {}, [])
    kept = [e["executionId"] for e in backend().list(100)]
    assert kept[:3] == ["exec-29", "exec-28", "exec-27"] and len(kept) <= 4
    assert "exec-waiting" in kept
    assert store.get("exec-0") is None
    store.finish(waiting, "interrupted", {}, [])


def test_the_waiting_prompt_is_seen_and_the_first_answer_wins(backend):
    store, other = backend(), backend()
    row = store.create("exec-w", "f", 2)
    store.waiting(row, 1, None, ["user", "pin"])
    assert other.state("exec-w") == {
        "status": "running",
        "promptStep": 1,
        "promptKeys": ["user", "pin"],
        "pausedStep": None,
    }
    mine, theirs = backend.channel(store), backend.channel(other)
    try:
        assert theirs.send_input("exec-w", 1, {"user": "a", "pin": "1"}) is True
        assert mine.send_input("exec-w", 1, {"user": "b", "pin": "2"}) is False
        assert mine.input_claimed("exec-w", 1) and not mine.input_claimed("exec-w", 0)
        assert theirs.send_continue("exec-w", 1) is True
        assert mine.send_continue("exec-w", 1) is False
        # A stop is on record, for every process, before request_stop returns.
        assert not mine.stop_requested("exec-w")
        theirs.request_stop("exec-w")
        assert mine.stop_requested("exec-w")
    finally:
        mine.close()
        theirs.close()
    store.waiting(row, None, 0)
    assert other.state("exec-w")["pausedStep"] == 0
    store.finish(row, "completed", {}, [])
    assert other.state("exec-w") == {
        "status": "completed",
        "promptStep": None,
        "promptKeys": None,
        "pausedStep": None,
    }
    assert other.state("exec-none") is None


def test_deferred_rows_are_committed_in_one_group(backend):
    deferred = []
    store, other = backend(defer=deferred.append), backend()
    rows = [store.create(f"exec-{i}", "g", 2) for i in range(5)]
    for row in rows:
        store.step(row, 0, "completed", '{"stepIndex":0}')
        store.finish(row, "completed", {}, [])
    assert len(deferred) == 1  # one flush for all of them
    assert other.list(10, flow="g") == []
    assert store.get("exec-0")["status"] == "completed"  # its own process flushes
    deferred.pop()()
    assert [e["status"] for e in other.list(10, flow="g")] == ["completed"] * 5


def test_abandoned_runs_are_interrupted_with_the_reason(backend):
    store = backend()
    store.create("exec-a", "f", 1)
    store.create("exec-b", "f", 1)
    assert store.abandon(["exec-a", "exec-none"], "the server process exited") == 1
    got = backend().get("exec-a")
    assert got["status"] == "interrupted"
    assert got["summary"] == {
        "success": False,
        "interrupted": True,
        "reason": "the server process exited",
    }
    assert store.state("exec-b")["status"] == "running"


def test_runs_of_a_dead_process_are_reaped_by_another(backend):
    dead = backend(lease_s=60)
    dead.create("exec-dead", "f", 2)
    dead.flush()
    alive = backend(lease_s=60)
    alive.create("exec-alive", "f", 2)
    alive.flush()
    if backend.name == "sqlite":  # a process id that no longer exists
        dead.db.run(
            lambda db: db.execute(
                "UPDATE executions SET owner = ? WHERE id = 'exec-dead'",
                (dead.owner.rsplit(":", 1)[0] + ":999999999",),
            )
        )
    else:  # a lease that ran out
        dead.leases._closed.set()
        dead.db.run(
            lambda db: db.execute(
                "UPDATE leases SET expires = now() - interval '1 second' "
                "WHERE owner = ?",
                (dead.owner,),
            )
        )
    assert alive.reap() == 1
    assert alive.state("exec-dead")["status"] == "interrupted"
    assert alive.state("exec-alive")["status"] == "running"
    assert alive.reap() == 0


def _bad_text() -> str:
    """A step's JSON that neither database takes: a lone surrogate not escaped."""
    return '{"id":"b","name":"B","method":"GET","url":"/x","body":"\ud800"}'


def test_one_bad_row_costs_no_other_run_its_history(backend):
    store = backend(defer=lambda flush: None)
    good = [store.create(f"exec-good-{i}", "good", 2) for i in range(10)]
    bad = [store.create(f"exec-bad-{i}", "bad", 2) for i in range(3)]
    for i in range(2):
        for row in good:
            store.step(row, i, "completed", f'{{"stepIndex": {i}}}')
        for row in bad:
            store.step(row, i, "completed", _bad_text())
    for row in good + bad:
        store.finish(row, "completed", {"success": True}, [])
    store.flush()  # the group fails: its rows are written one by one
    other = backend()
    for row in good:
        found = other.get(row.values[0])
        assert found["status"] == "completed"
        assert [s["stepIndex"] for s in found["steps"]] == [0, 1]
    for row in bad:
        found = other.get(row.values[0])
        assert found["status"] == "completed"  # the end was written
        assert row.error is None  # the run could go on: its failure is recorded
        assert [s["stepIndex"] for s in found["steps"]] == [0, 1]
        for step in found["steps"]:
            assert (step["id"], step["name"], step["method"]) == ("b", "B", "GET")
            assert step["error"].startswith(
                "The record of this step could not be stored: UnicodeEncodeError"
            )
    assert store.write_error.startswith("UnicodeEncodeError")
    assert store.writable() is None and store.write_error is None


def test_a_run_history_cannot_record_is_refused_until_writes_work(backend):
    from .services import refuse_writes

    store = backend()
    assert store.writable() is None
    refuse_writes(store, True)
    try:
        row = store.create("exec-r", "r", 1)
        assert row.error is not None  # logged, not raised: the run is stopped
        assert store.writable() is not None  # the next run is refused
        assert store.health() is not None
    finally:
        refuse_writes(store, False)
    assert store.writable() is None and store.health() is None


def test_an_unwritten_end_is_shown_meanwhile_and_written_later(backend):
    from .services import refuse_writes

    store, other = backend(defer=lambda flush: None), backend()
    row = store.create("exec-e", "e", 0)
    store.flush()
    refuse_writes(store, True)
    try:
        store.finish(row, "completed", {"success": True}, [])
        store.flush()
        assert store.unwritten == 1 and row.error is not None
        # This process shows the end it holds, not a finished run "running".
        assert store.get("exec-e")["status"] == "completed"
        assert store.state("exec-e")["status"] == "completed"
        assert other.get("exec-e")["status"] == "running"
    finally:
        refuse_writes(store, False)
    channel = backend.channel(store)
    channel.ensure_started()  # its poller or listener tries again once a second
    try:
        wait_until(
            lambda: other.get("exec-e")["status"] == "completed",
            message="the end to be written",
        )
        assert store.unwritten == 0
    finally:
        channel.close()


class _Held:
    """A run this process holds, as the channel's registry sees it."""

    def __init__(self):
        from flowrun.engine.controls import Controls

        self.controls = Controls()


def test_a_stop_waits_for_the_holders_verdict_and_a_forced_one_aborts(backend):
    store, other = backend(), backend()
    registry = Registry()
    holder = backend.channel(store)
    holder.registry = registry
    asking = backend.channel(other)
    running, ended = _Held(), _Held()
    aborted = []
    running.controls.on_force(lambda: aborted.append(True))
    registry["exec-run"], registry["exec-end"] = running, ended
    for eid in registry:
        store.create(eid, "f", 1)
    store.flush()
    holder.ensure_started()
    try:
        assert ended.controls.seal() is False  # it ends completed
        assert asking.request_stop("exec-end") is False  # the API's 409
        assert asking.request_stop("exec-run", force=True) is True  # 202
        assert running.controls.cancelled.is_set() and aborted == [True]
        assert asking.request_stop("exec-run") is True  # again: still interrupted
    finally:
        holder.close()
        asking.close()


# -- PostgreSQL only


def _open_pg(url, barrier, results):
    from flowrun.store.pghistory import PgStore

    try:
        barrier.wait()
        PgStore(url).close()
        results.put("ok")
    except Exception as exc:  # pragma: no cover - reported by the assert
        results.put(repr(exc))


def test_hosts_starting_together_migrate_the_schema_once(postgres_url):
    import psycopg

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_open_pg, args=(postgres_url, barrier, results))
        for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert sorted(results.get(timeout=5) for _ in procs) == ["ok"] * 4
    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute("SELECT version FROM flowrun_schema").fetchall()
    assert sorted(versions) == [(1,), (2,)]


def test_a_process_that_lost_its_lease_stops_its_runs(postgres_url):
    from flowrun.store.pghistory import PgStore

    store = PgStore(postgres_url, lease_s=0.6)
    lost = []
    store.leases.on_lost = lambda: lost.append(time.monotonic())
    try:
        store.create("exec-stalled", "f", 1)
        store.flush()
        # As if the process had stalled for longer than its lease.
        store.db.run(
            lambda db: db.execute(
                "UPDATE leases SET expires = now() - interval '1 second' "
                "WHERE owner = ?",
                (store.owner,),
            )
        )
        deadline = time.monotonic() + 10
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lost, "the lost lease went unnoticed"
        assert store.state("exec-stalled")["status"] == "interrupted"
        assert store.leases.renew() is True  # a new lease is held again
    finally:
        store.close()


def test_a_database_url_that_is_not_postgresql_is_refused(tmp_path):
    from flowrun import create_app

    with pytest.raises(ValueError, match="postgresql://"):
        create_app(
            {
                "FLOWRUN_DATA_DIR": str(tmp_path / "d"),
                "FLOWRUN_FLOWS_DIR": str(tmp_path / "f"),
                "FLOWRUN_DATABASE_URL": "mysql://localhost/flowrun",
            }
        )


_GATHER_SCRIPT = """
from gevent import monkey

monkey.patch_all()
import gevent
from flowrun.store.gather import Gathered

calls, stopped = [], {"b", "d"}

def lookup(keys):
    calls.append(sorted(keys))
    gevent.sleep(0.01)  # a round trip
    return {k for k in keys if k in stopped}

gathered = Gathered(lookup)
keys = [c * 3 for c in "abcdefghij"] + ["b", "d"]
jobs = [gevent.spawn(gathered.ask, k) for k in keys]
gevent.joinall(jobs)
assert [j.value for j in jobs] == [k in stopped for k in keys], [j.value for j in jobs]
assert len(calls) == 1, calls  # all asked within one turn: one lookup
stopped.add("z")  # recorded before the next question: always seen
assert gathered.ask("z") is True and len(calls) == 2
print("ok")
"""


def test_stop_checks_under_gevent_share_one_lookup():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _GATHER_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "ok", done.stderr
