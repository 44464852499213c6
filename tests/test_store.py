"""History in SQLite: statuses, not_run entries, masking, retention, WAL."""

from __future__ import annotations

import json
import sqlite3

from flowrun import create_app
from flowrun.store.control import SQLiteChannel
from flowrun.store.history import Store
from flowrun.store.masking import MASK

from .streams import make_flow, node, run_events
from .waits import wait_until


def test_wal_mode_and_tables(app):
    store = app.extensions["flowrun"].store
    db = sqlite3.connect(store.db.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"executions", "steps", "controls"} <= tables
    db.close()


def test_failed_run_records_failed_step_and_not_run(client, app, hits):
    flow = make_flow(hits, node("a", "/status/500"), node("b", "/items"))
    _, events = run_events(client, flow)
    detail = client.get(f"/api/executions/{events[0][1]['executionId']}").get_json()
    assert detail["status"] == "failed"
    steps = detail["steps"]
    assert [(s["id"], s["status"]) for s in steps] == [
        ("a", "failed"),
        ("b", "not_run"),
    ]
    assert steps[1]["name"] == "B" and steps[1]["stepIndex"] == 1
    assert detail["summary"]["stepsFailed"] == 1
    assert "executionLog" not in detail["summary"]


def test_secret_variables_are_masked_everywhere_secret_headers_in_history(app, hits):
    # Secret variables and answers are masked in the live stream too (only the
    # wire carries them); header values of Authorization, Cookie… are masked in
    # what is stored.
    app.extensions["flowrun"].secret_vars = frozenset({"apiKey", "password"})
    flow = make_flow(
        hits,
        node(
            "echo",
            "/echo?key={{ .vars.apiKey }}",
            "POST",
            headers={
                "Authorization": "Bearer abc123",
                "cookie": "session=zzz",
                "X-Key": "{{ .vars.apiKey }}",
            },
            userPrompts={"password": "?"},
            body={"key": "{{ .vars.apiKey }}", "pw": "{{ .input.password }}"},
        ),
        node("cookie", "/cookie/set"),
    )
    flow["variables"] = {"apiKey": "K-999-SECRET"}
    _, events = run_events(app.test_client(), flow, {"inputs": {"password": "hunter2"}})
    live = events[2][1]
    assert live["request"]["headers"]["Authorization"] == "Bearer abc123"
    assert live["url"].endswith("/echo?key=" + MASK)
    assert live["request"]["body"] == {"key": MASK, "pw": MASK}
    assert "K-999-SECRET" not in json.dumps(events) and "hunter2" not in str(events)
    assert hits.hits[0]["query"] == "key=K-999-SECRET"  # the wire has it
    eid = events[0][1]["executionId"]
    stored = app.extensions["flowrun"].store.get(eid)
    text = str(stored)
    for secret in ("abc123", "zzz", "K-999-SECRET", "hunter2", "s3cr3t"):
        assert secret not in text, secret
    echo = stored["steps"][0]
    assert echo["request"]["headers"]["Authorization"] == MASK
    assert echo["request"]["headers"]["X-Key"] == MASK
    assert echo["request"]["body"] == {"key": MASK, "pw": MASK}
    assert MASK in echo["url"]
    assert all(s["value"] == MASK for s in echo["substitutions"])
    set_cookie = stored["steps"][1]["response"]["headers"]
    assert set_cookie["Set-Cookie"] == MASK


def test_retention_prunes_oldest(tmp_path):
    store = Store(tmp_path, history_limit=3)
    for i in range(30):
        seq = store.create(f"exec-{i}", "f", 1)
        store.step(seq, 0, "completed", '{"stepIndex":0}')
        store.finish(seq, "completed", {}, [])
        assert len(store.list(100)) <= 3
    running = store.create("exec-running", "f", 1)
    assert running
    kept = [e["executionId"] for e in store.list(100)]
    assert kept == ["exec-running", "exec-29", "exec-28", "exec-27"]
    assert store.get("exec-0") is None
    orphans = store.db.conn.execute(
        "SELECT COUNT(*) FROM steps WHERE exec_seq NOT IN (SELECT seq FROM executions)"
    ).fetchone()[0]
    assert orphans == 0
    store.close()


def test_retention_never_exceeds_the_limit_and_keeps_running_executions(tmp_path):
    store = Store(tmp_path, history_limit=100)
    waiting = store.create("exec-waiting", "f", 1)  # a run waiting for a prompt
    for i in range(400):
        seq = store.create(f"exec-{i}", "f", 1)
        store.finish(seq, "completed", {}, [])
        finished = [e for e in store.list(1000) if e["status"] != "running"]
        assert len(finished) <= 100
    ids = [e["executionId"] for e in store.list(1000)]
    # pruned in small batches: between the limit less 20 and the limit
    assert 80 <= len(ids) - 1 <= 100 and ids[0] == "exec-399"
    assert "exec-waiting" in ids
    store.finish(waiting, "interrupted", {}, [])
    seq = store.create("exec-last", "f", 1)
    store.finish(seq, "completed", {}, [])
    ids = [e["executionId"] for e in store.list(1000)]
    assert "exec-waiting" not in ids and len(ids) <= 100
    store.close()


def test_the_retention_check_reads_two_rows_not_the_whole_history(tmp_path):
    # Every finish asks for the oldest and newest sequence numbers. Written as one
    # SELECT min(seq), max(seq), SQLite reads every row to answer (a cost growing
    # with FLOWRUN_HISTORY_LIMIT); the store's query must use the index lookups.
    store = Store(tmp_path, history_limit=50)
    for i in range(60):
        store.finish(store.create(f"exec-{i}", "f", 1), "completed", {}, [])
    statements = []
    store.db.conn.set_trace_callback(statements.append)
    store.finish(store.create("exec-last", "f", 1), "completed", {}, [])
    store.db.conn.set_trace_callback(None)
    ranges = [s for s in statements if "min(seq)" in s]
    assert ranges, statements
    for sql in ranges:
        plan = [row[3] for row in store.db.conn.execute("EXPLAIN QUERY PLAN " + sql)]
        assert not [step for step in plan if step.startswith("SCAN executions")], plan
    lo, hi = store.db.conn.execute(ranges[0]).fetchone()
    assert 1 <= hi - lo + 1 <= 50
    store.close()


def test_a_run_waiting_since_long_ago_does_not_make_every_finish_prune(tmp_path):
    # A run waiting for an answer keeps its old row. Counted from it, the history
    # looked over the limit at every finish, and every finish searched for a
    # cut-off (a walk of FLOWRUN_HISTORY_LIMIT rows) and deleted: it must prune
    # once per slack (20 finishes here) like any other time.
    store = Store(tmp_path, history_limit=1000)
    waiting = store.create("exec-waiting", "f", 1)
    for i in range(1100):
        store.finish(store.create(f"exec-{i}", "f", 1), "completed", {}, [])
    statements = []
    store.db.conn.set_trace_callback(statements.append)
    for i in range(1100, 1200):
        store.finish(store.create(f"exec-{i}", "f", 1), "completed", {}, [])
    store.db.conn.set_trace_callback(None)
    assert 1 <= sum("OFFSET" in s for s in statements) <= 6
    ids = [e["executionId"] for e in store.list(2000)]
    assert "exec-waiting" in ids and ids[0] == "exec-1199"
    assert len(ids) - 1 <= 1000
    # Once it ends, it is the oldest: the next finish removes it.
    store.finish(waiting, "interrupted", {}, [])
    store.finish(store.create("exec-next", "f", 1), "completed", {}, [])
    ids = [e["executionId"] for e in store.list(2000)]
    assert "exec-waiting" not in ids and len(ids) <= 1000
    store.close()


def test_waiting_state_is_visible_to_other_workers(tmp_path):
    store = Store(tmp_path)
    seq = store.create("exec-w", "f", 2)
    assert store.state("exec-w") == {
        "status": "running",
        "promptStep": None,
        "promptKeys": None,
        "pausedStep": None,
    }
    store.waiting(seq, 1, None, ["user", "password"])
    assert store.state("exec-w")["promptStep"] == 1
    assert store.state("exec-w")["promptKeys"] == ["user", "password"]
    channel = SQLiteChannel(store, registry=None)
    assert channel.send_input("exec-w", 1, {"a": 1}) is True
    assert channel.send_input("exec-w", 1, {"a": 2}) is False
    channel.close()
    assert store.state("exec-x") is None
    store.waiting(seq, None, None)
    assert store.state("exec-w")["promptKeys"] is None
    store.waiting(seq, 1, None, ["a"])
    store.finish(seq, "failed", {}, [])
    assert store.state("exec-w") == {
        "status": "failed",
        "promptStep": None,
        "promptKeys": None,
        "pausedStep": None,
    }
    store.close()


def test_a_store_of_an_earlier_version_gets_the_new_columns(tmp_path):
    # The executions table as flowrun wrote it before `owner` and `prompt_keys`.
    db = sqlite3.connect(tmp_path / "flowrun.sqlite3")
    db.execute(
        "CREATE TABLE executions (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "id TEXT NOT NULL UNIQUE, flow_name TEXT, status TEXT NOT NULL, "
        "started_at TEXT, ended_at TEXT, total_steps INTEGER, prompt_step INTEGER, "
        "paused_step INTEGER, summary TEXT)"
    )
    db.execute(
        "INSERT INTO executions (id, status, prompt_step) VALUES ('exec-old', "
        "'running', 0)"
    )
    db.commit()
    db.close()
    store = Store(tmp_path)
    columns = {r[1] for r in store.db.conn.execute("PRAGMA table_info(executions)")}
    assert {"owner", "prompt_keys"} <= columns
    # A prompt recorded before the upgrade: its keys are unknown.
    assert store.state("exec-old")["promptStep"] == 0
    assert store.state("exec-old")["promptKeys"] is None
    seq = store.create("exec-new", "f", 1)
    store.waiting(seq, 0, None, ["word"])
    assert store.state("exec-new")["promptKeys"] == ["word"]
    store.close()
    Store(tmp_path).close()  # opening it again changes nothing


def test_runs_of_dead_processes_are_marked_interrupted(tmp_path):
    store = Store(tmp_path)
    store.create("exec-orphan", "f", 2)
    store.create("exec-mine", "f", 2)
    # exec-orphan belonged to a process that no longer exists.
    store.db.conn.execute(
        "UPDATE executions SET owner = ? WHERE id = 'exec-orphan'",
        (store.owner.rsplit(":", 1)[0] + ":999999999",),
    )
    assert store.reap() == 1
    assert store.state("exec-orphan")["status"] == "interrupted"
    assert store.state("exec-mine")["status"] == "running"
    assert store.abandon(["exec-mine"], "exiting") == 1
    assert store.get("exec-mine")["summary"]["reason"] == "exiting"
    store.close()


def test_a_busy_database_is_waited_for_not_failed(tmp_path):
    import threading

    store = Store(tmp_path)
    other = sqlite3.connect(store.db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another worker holds the write lock
    done = []
    statements = []
    store.db.conn.set_trace_callback(statements.append)
    writer = threading.Thread(target=lambda: done.append(store.create("e", "f", 1)))
    writer.start()
    wait_until(  # found the file busy, and tries again
        lambda: statements.count("BEGIN IMMEDIATE") >= 2, message="a second try"
    )
    assert done == []  # waiting, cooperatively
    other.execute("COMMIT")
    writer.join(5)
    # Not before: the writer's statements call the trace callback while holding
    # the connection's mutex, and set_trace_callback waits for that mutex holding
    # the GIL, which the callback needs. Both would wait for ever.
    store.db.conn.set_trace_callback(None)
    assert done and store.state("e")["status"] == "running"
    other.close()
    store.close()


def _open_store(path, barrier, results):
    from flowrun.store.history import Store

    barrier.wait()
    try:
        Store(path).close()
        results.put("ok")
    except Exception as exc:  # reported to the test, not swallowed
        results.put(f"{type(exc).__name__}: {exc}")


def test_workers_opening_a_new_store_together_all_start(tmp_path):
    # gunicorn starts its workers at once; on a new data directory they race to
    # switch the database to WAL, and the loser must wait, not fail to boot.
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    for attempt in range(3):
        path = tmp_path / f"data{attempt}"
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [
            ctx.Process(target=_open_store, args=(path, barrier, results))
            for _ in range(6)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        assert sorted(results.get(timeout=5) for _ in procs) == ["ok"] * 6


def test_steps_are_committed_in_groups_when_deferred(tmp_path):
    # Under gevent the store defers new execution rows and step rows
    # (web._group_commit): they wait for flush, which the SSE stream runs before
    # it writes a step's event.
    deferred = []
    store = Store(tmp_path, defer=deferred.append)
    other = Store(tmp_path)  # another worker's view of the same history
    seq = store.create("exec-g", "f", 3)
    for i in range(3):
        store.step(seq, i, "completed", json.dumps({"stepIndex": i}))
    assert len(deferred) == 1  # one flush for the group, not one per row
    assert other.get("exec-g") is None  # the execution's row waits with them
    assert store.get("exec-g")["steps"][0]["stepIndex"] == 0  # its own worker
    deferred.pop()()
    assert [s["stepIndex"] for s in other.get("exec-g")["steps"]] == [0, 1, 2]
    # a later row schedules a flush again; the end waits in the same group
    store.step(seq, 3, "completed", json.dumps({"stepIndex": 3}))
    assert len(deferred) == 1
    store.finish(seq, "completed", {"success": True}, [])
    assert len(deferred) == 1
    assert other.get("exec-g")["status"] == "running"
    assert store.get("exec-g")["status"] == "completed"  # its own worker flushes
    got = other.get("exec-g")
    assert got["status"] == "completed"
    assert [s["stepIndex"] for s in got["steps"]] == [0, 1, 2, 3]
    deferred.pop()()  # the late flush finds nothing to do
    store.close()
    other.close()


def test_runs_that_end_together_share_one_commit(tmp_path):
    deferred = []
    store = Store(tmp_path, defer=deferred.append, history_limit=5)
    other = Store(tmp_path)
    rows = [store.create(f"exec-{i}", "f", 3) for i in range(8)]
    deferred.pop()()  # the rows' group
    commits = []
    store.db.conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql == "COMMIT" else None
    )
    for i, row in enumerate(rows):
        store.step(row, 0, "completed", json.dumps({"status": "completed"}))
        not_run = [{"stepIndex": 2, "id": "c", "status": "not_run"}] if i == 7 else []
        store.finish(row, "failed" if i == 7 else "completed", {"i": i}, not_run)
    assert other.list(10, flow="f")[0]["status"] == "running"
    assert len(deferred) == 1
    deferred.pop()()
    assert commits == ["COMMIT"]
    # every end recorded, with its summary, not_run step and the history limit
    listed = other.list(10, flow="f")
    assert [e["executionId"] for e in listed] == [f"exec-{i}" for i in (7, 6, 5, 4, 3)]
    assert [e["status"] for e in listed] == ["failed"] + ["completed"] * 4
    last = other.get("exec-7")
    assert [s["status"] for s in last["steps"]] == ["completed", "not_run"]
    store.close()
    other.close()


def test_flushes_in_between_do_not_schedule_more_deferred_flushes(tmp_path):
    # The SSE stream flushes before each write; the deferred flush due meanwhile
    # stays the only one, and commits what came after the stream's flush.
    deferred = []
    store = Store(tmp_path, defer=deferred.append)
    other = Store(tmp_path)
    seq = store.create("exec-d", "f", 4)
    store.step(seq, 0, "completed", json.dumps({"stepIndex": 0}))
    store.flush()  # the stream, writing step 0's event
    store.step(seq, 1, "completed", json.dumps({"stepIndex": 1}))
    store.flush()
    store.step(seq, 2, "completed", json.dumps({"stepIndex": 2}))
    assert len(deferred) == 1
    assert [s["stepIndex"] for s in other.get("exec-d")["steps"]] == [0, 1]
    deferred.pop()()
    assert [s["stepIndex"] for s in other.get("exec-d")["steps"]] == [0, 1, 2]
    store.step(seq, 3, "completed", json.dumps({"stepIndex": 3}))
    assert len(deferred) == 1  # due again once the last one ran
    store.close()
    other.close()


def test_a_deferred_step_is_visible_to_its_own_process_at_once(tmp_path):
    store = Store(tmp_path, defer=lambda flush: None)  # never flushed by a timer
    seq = store.create("exec-h", "f", 1)
    store.step(seq, 0, "completed", json.dumps({"stepIndex": 0}))
    assert [s["stepIndex"] for s in store.get("exec-h")["steps"]] == [0]
    store.close()
    reopened = Store(tmp_path)
    assert [s["stepIndex"] for s in reopened.get("exec-h")["steps"]] == [0]
    reopened.close()


def test_a_group_that_cannot_be_written_is_logged_not_raised(tmp_path, caplog):
    store = Store(tmp_path, defer=lambda flush: None)
    row = store.create("exec-f", "f", 1)
    store.step(row, 0, "completed", "{}")
    store.db.conn.execute("DROP TABLE steps")  # the write will fail
    with caplog.at_level("WARNING", logger="flowrun"):
        store.flush()  # called by the SSE stream before it writes: must not raise
    assert "1 step(s) and 0 end(s) in history together failed" in caplog.text
    assert "step 1 of exec-f not recorded: OperationalError" in caplog.text
    # Written alone, the execution's row went in; nothing of its steps could.
    assert row.seq is not None
    assert row.error == "OperationalError: no such table: steps"
    assert store.write_error == row.error
    store.db.conn.close()


def test_a_flow_name_sqlite_refuses_is_recorded_cleaned(tmp_path):
    store = Store(tmp_path, defer=lambda flush: None)
    row = store.create("exec-n", "x\ud800y", 0)
    store.flush()
    assert row.error is None
    assert store.get("exec-n")["flowName"] == "x\ufffdy"
    store.close()


def test_an_end_that_cannot_be_written_is_tried_again_and_shown_meanwhile(tmp_path):
    store = Store(tmp_path, defer=lambda flush: None)
    row = store.create("exec-e", "e", 0)
    store.flush()
    store.finish(row, "completed", {"success": True}, [])
    store.db.conn.execute("PRAGMA query_only = 1")  # writes now fail
    store.flush()
    assert row.error.startswith("OperationalError")
    assert store.writable() is not None
    # Readers in this process see the end it holds, not a finished run "running".
    assert store.get("exec-e")["status"] == "completed"
    assert store.list()[0]["status"] == "completed"
    assert store.state("exec-e")["status"] == "completed"
    store.db.conn.execute("PRAGMA query_only = 0")
    assert store.writable() is None  # a write works again
    store.flush()
    other = Store(tmp_path)  # another worker reads what is on disk
    assert other.get("exec-e")["status"] == "completed"
    other.close()
    store.close()


def test_authorization_value_is_masked_in_later_steps_too(client, hits):
    flow = make_flow(
        hits,
        node(
            "login",
            "/login",
            "POST",
            body={"username": "ada", "password": "secret"},
        ),
        node(
            "me",
            "/me",
            headers={"Authorization": "Bearer {{ .responses.login.token }}"},
        ),
        node(
            "echo",
            "/echo",
            "POST",
            body={"auth": "Bearer {{ .responses.login.token }}"},
        ),
    )
    headers, events = run_events(client, flow)
    token = events[-1][1]["executionLog"][0]["response"]["body"]["token"]
    stored = client.get(f"/api/executions/{headers['X-Execution-Id']}").get_json()
    me, echo = stored["steps"][1], stored["steps"][2]
    assert me["request"]["headers"]["Authorization"] == "••••"
    assert token not in json.dumps(echo)


def test_history_keeps_at_most_history_limit(tmp_path, hits):
    app = create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
            "FLOWRUN_HISTORY_LIMIT": 3,
        }
    )
    try:
        client = app.test_client()
        flow = make_flow(hits, node("a", "/items"))
        for _ in range(6):
            assert client.post("/api/execute", json={"config": flow}).status_code == 200
        found = client.get("/api/executions?limit=100").get_json()["executions"]
        assert len(found) <= 3
    finally:
        app.extensions["flowrun"].close()
