"""``/api/health``: the store, the control channel and the worker; 503 with the
reason when history cannot be written or read, or controls cannot be delivered."""

from __future__ import annotations

import pytest

from flowrun import create_app
from flowrun.store import history
from flowrun.store import sqlite as sqlite_db

# The first test to use PostgreSQL starts the session's server.
pytestmark = pytest.mark.timeout(180)


def make_app(tmp_path, **config):
    return create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
            "FLOWRUN_TOKEN": "health-token",
            "FLOWRUN_REDIS_URL": None,
            **config,
        }
    )


def health(app):
    resp = app.test_client().get("/api/health")  # never needs the token
    return resp.status_code, resp.get_json()


def test_a_healthy_server_reports_each_part(client):
    status, body = health(client.application)
    assert status == 200
    assert body["status"] == "ok" and body["version"]
    assert body["store"] == {"backend": "sqlite", "ok": True}
    assert body["channel"] == {"backend": "sqlite", "ok": True}
    assert body["worker"]["executions"] == 0 and body["worker"]["pid"] > 0


def test_a_store_that_cannot_be_written_is_unavailable_until_a_write_succeeds(
    tmp_path,
):
    app = make_app(tmp_path)
    store = app.extensions["flowrun"].store
    try:
        # Writes fail, as on a read-only database file.
        store.db.conn.execute("PRAGMA query_only = 1")
        row = store.create("exec-0", "f", 1)
        assert "readonly" in row.error  # logged, not raised
        resp = app.test_client().get("/api/health")
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "10"
        body = resp.get_json()
        assert body["status"] == "unavailable" and body["version"]
        # One sentence for people, and the part that failed for tools.
        assert body["error"].startswith("History cannot be recorded (")
        assert body["reason"].startswith("store: ")
        assert "readonly" in body["error"]
        assert "readonly" in body["reason"]
        assert body["store"]["ok"] is False and body["channel"]["ok"] is True
        assert "readonly" in body["store"]["error"]
        assert body["worker"]["pid"] > 0
        store.db.conn.execute("PRAGMA query_only = 0")
        status, body = health(app)  # a write works again
        assert status == 200 and "error" not in body and "reason" not in body
    finally:
        app.extensions["flowrun"].close()


def test_a_disk_without_room_is_unavailable(tmp_path, monkeypatch):
    app = make_app(tmp_path)
    try:
        assert health(app)[0] == 200
        monkeypatch.setattr(history, "MIN_FREE_BYTES", 2**62)
        status, body = health(app)
        assert status == 503
        assert "the disk of" in body["reason"] and "is full" in body["reason"]
        assert body["error"].startswith("History cannot be recorded (the disk of")
    finally:
        app.extensions["flowrun"].close()


def test_a_damaged_database_is_unavailable(tmp_path):
    from flowrun.store.history import Store

    store = Store(tmp_path / "data")
    for i in range(300):
        row = store.create(f"exec-{i}", "f", 1)
        store.step(row, 0, "completed", '{"pad":"%s"}' % ("y" * 2000))
    store.close()
    path = tmp_path / "data" / sqlite_db.DB_NAME
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 16384] = b"\xa5" * 16384  # four pages of garbage
    path.write_bytes(bytes(raw))
    app = make_app(tmp_path)
    try:
        status, body = health(app)
        assert status == 503
        assert "is damaged" in body["reason"], body
    finally:
        app.extensions["flowrun"].close()


def test_postgresql_out_of_reach_is_unavailable_then_recovers(tmp_path, postgres_url):
    import psycopg

    app = make_app(tmp_path, FLOWRUN_DATABASE_URL=postgres_url)
    name = postgres_url.rsplit("/", 1)[1]
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    try:
        status, body = health(app)
        assert status == 200, body
        assert body["store"]["backend"] == body["channel"]["backend"] == "postgresql"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s",
                (name,),
            )
        status, body = health(app)
        assert status == 503
        assert body["reason"].startswith("store: the database cannot be reached")
        assert body["error"].startswith(
            "History cannot be recorded (the database cannot be reached"
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert health(app)[0] == 200
    finally:
        app.extensions["flowrun"].close()


def test_redis_out_of_reach_is_unavailable(tmp_path):
    from .conftest import _missing
    from .services import Redis, redis_missing

    if redis_missing():
        _missing(redis_missing())
    redis = Redis()
    app = make_app(tmp_path, FLOWRUN_REDIS_URL=redis.url)
    try:
        status, body = health(app)
        assert status == 200 and body["channel"]["backend"] == "redis"
        redis.stop()
        status, body = health(app)
        assert status == 503
        assert body["reason"].startswith("control channel: Redis cannot be reached")
        assert body["error"].startswith("Controls cannot be delivered (Redis")
        assert body["store"]["ok"] is True
    finally:
        redis.stop()
        app.extensions["flowrun"].close()
