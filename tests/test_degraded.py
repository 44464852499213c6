"""A run that cannot be recorded (full disk, read-only or damaged database) fails at
once with a clear error instead of running unrecorded; prompts stay answerable."""

from __future__ import annotations

import os

import pytest

from flowrun import create_app

from .modules import loaded_after
from .services import refuse_writes
from .streams import assert_error, frames, make_flow, node, run_events
from .test_control import start


def config(tmp_path):
    return {
        "TESTING": True,
        "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
        "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
        "FLOWRUN_TOKEN": None,
        "FLOWRUN_REDIS_URL": None,
        "FLOWRUN_ALLOWED_HOSTS": "",
    }


def writes_fail(app, failing: bool) -> None:
    """Make the store's writes fail as on a read-only database (or stop that)."""
    refuse_writes(app.extensions["flowrun"].store, failing)


@pytest.fixture(params=["sqlite", "postgres"])
def any_app(request, tmp_path):
    """An app on SQLite, or on PostgreSQL (``FLOWRUN_DATABASE_URL``)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("app")
        return
    url = request.getfixturevalue("postgres_url")
    app = create_app({**config(tmp_path), "FLOWRUN_DATABASE_URL": url})
    yield app
    app.extensions["flowrun"].close()


def test_a_run_whose_history_cannot_be_written_sends_nothing(any_app, hits):
    app, client = any_app, any_app.test_client()
    setting = app.extensions["flowrun"].store.SETTING
    flow = make_flow(hits, node("first", "/items"), node("second", "/items"))
    writes_fail(app, True)
    resp = client.post("/api/execute-stream", json={"config": flow}, buffered=False)
    assert resp.status_code == 200  # the store looked fine until this run's row
    events = [(n, d) for n, d in frames(resp.response) if n != ":"]
    assert [n for n, _ in events] == ["start", "error", "end"]
    assert events[1][1]["message"].startswith("History cannot be recorded (")
    assert events[1][1]["message"].endswith("): the run was stopped")
    assert events[-1][1]["interrupted"] is True
    assert events[-1][1]["notRun"] == ["first", "second"]
    assert hits.paths() == []
    # Now the store is known to fail: the next run is refused before it starts.
    for path in ("/api/execute-stream", "/api/execute"):
        body = assert_error(client.post(path, json={"config": flow}), 503)
        assert body["error"].startswith("History cannot be recorded (")
        assert body["errors"][0]["path"] == setting
    assert hits.paths() == []
    assert_unhealthy(client, "History cannot be recorded (")
    writes_fail(app, False)  # mended: runs are recorded again
    assert client.get("/api/health").status_code == 200
    _, events = run_events(client, flow)
    assert events[-1][1]["success"] is True
    assert client.get("/api/executions").get_json()["executions"][0]["status"] == (
        "completed"
    )


def assert_unhealthy(client, reason: str) -> None:
    """/api/health answers 503 with ``reason`` in its error."""
    resp = client.get("/api/health")
    assert resp.status_code == 503 and resp.is_json
    found = resp.get_json()
    assert found["status"] == "unavailable" and reason in found["error"]


def test_a_full_disk_refuses_new_runs(client, hits, monkeypatch):
    assert client.get("/api/health").status_code == 200
    monkeypatch.setattr("flowrun.store.history.free_bytes", lambda path: 4096)
    flow = make_flow(hits, node("first", "/items"))
    body = assert_error(client.post("/api/execute-stream", json={"config": flow}), 503)
    assert "is full (4096 bytes free)" in body["error"]
    assert client.post("/api/execute", json={"config": flow}).status_code == 503
    assert hits.paths() == []
    assert_unhealthy(client, "is full (4096 bytes free)")


def _damage(path) -> None:
    """Overwrite every third page of the second half of a database file."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        for page in range(size // 4096 // 2, size // 4096, 3):
            f.seek(page * 4096)
            f.write(os.urandom(4096))


def test_a_postgresql_error_answers_503_json(tmp_path):
    psycopg = pytest.importorskip("psycopg")
    app = create_app(config(tmp_path))

    @app.get("/test/lost")
    def lost():
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    try:
        body = assert_error(app.test_client().get("/test/lost"), 503)
        assert body["error"] == (
            "History cannot be read or written now "
            "(server closed the connection unexpectedly)"
        )
    finally:
        app.extensions["flowrun"].close()


def test_a_server_on_sqlite_does_not_load_psycopg(tmp_path):
    # psycopg and its C library take ~9 MiB in each process that loads them.
    code = (
        "from flowrun import create_app\n"
        f"app = create_app({config(tmp_path)!r})\n"
        "client = app.test_client()\n"
        "assert client.get('/api/health').status_code == 200\n"
        "assert client.get('/api/executions').status_code == 200\n"
        "app.extensions['flowrun'].close()\n"
    )
    assert loaded_after(code, "psycopg", "psycopg_pool") == []


def test_a_damaged_database_refuses_runs_and_answers_json(tmp_path, hits):
    app = create_app(config(tmp_path))
    flow = make_flow(hits, node("big", "/big?bytes=20000"), node("next", "/items"))
    for _ in range(20):  # pages to damage
        assert (
            app.test_client()
            .post("/api/execute", json={"config": flow})
            .json["success"]
        )
    app.extensions["flowrun"].close()
    _damage(tmp_path / "data" / "flowrun.sqlite3")
    hits.clear()
    app = create_app(config(tmp_path))
    try:
        client = app.test_client()
        for path in ("/api/execute-stream", "/api/execute"):
            body = assert_error(client.post(path, json={"config": flow}), 503)
            assert "is damaged: database disk image is malformed" in body["error"]
        assert hits.paths() == []
        resp = client.get("/api/executions")
        assert resp.status_code in (200, 503) and resp.is_json
        assert_unhealthy(client, "is damaged: database disk image is malformed")
    finally:
        app.extensions["flowrun"].close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("answering", ["holder", "other"])
def test_a_prompt_stays_answerable_when_the_channel_cannot_be_written(
    request, tmp_path, hits, answering, backend
):
    from .test_control import two_workers

    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    a, b = two_workers(tmp_path, database_url=url)
    try:
        flow = make_flow(
            hits, node("ask", "/echo?w={{ .input.w }}", userPrompts={"w": "W?"})
        )
        eid, reader = start(a, flow)
        reader.wait_for("input_required")
        writes_fail(a, True)
        writes_fail(b, True)
        worker = a if answering == "holder" else b
        body = {"executionId": eid, "stepIndex": 0, "userInput": {"w": "hey"}}
        resp = worker.test_client().post("/api/provide-input", json=body)
        if answering == "holder":
            assert resp.status_code == 200
            end = reader.wait_for("end")[1]
            assert end["executionLog"][0]["response"]["body"]["args"]["w"] == ["hey"]
        else:  # it cannot reach the holder: it says why, as JSON
            body = assert_error(resp, 503)
            assert "cannot be read or written" in body["error"]
            a.extensions["flowrun"].stop_all()
            reader.wait_for("end")
    finally:
        for app in (a, b):
            writes_fail(app, False)
            app.extensions["flowrun"].close()


def test_an_unwritten_end_reaches_other_workers_once_writes_work(tmp_path):
    from flowrun.store.control import SQLiteChannel
    from flowrun.store.history import Store
    from flowrun.web.executions import Registry

    from .waits import wait_until

    holder = Store(tmp_path, defer=lambda flush: None)
    row = holder.create("exec-u", "u", 0)
    holder.flush()
    holder.db.run(lambda c: c.execute("PRAGMA query_only = 1"))
    holder.finish(row, "completed", {"success": True}, [])
    holder.flush()
    assert holder.unwritten == 1
    channel = SQLiteChannel(holder, Registry(10), interval=0.01)
    channel.ensure_started()  # its poller tries again, with nothing else going on
    other = Store(tmp_path)
    try:
        assert other.get("exec-u")["status"] == "running"  # not on disk yet
        holder.db.run(lambda c: c.execute("PRAGMA query_only = 0"))
        wait_until(
            lambda: other.get("exec-u")["status"] == "completed",
            message="the end to be written",
        )
        assert holder.unwritten == 0
    finally:
        channel.close()
        other.close()
        holder.close()
