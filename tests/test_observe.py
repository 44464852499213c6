"""What an operator watches: ``/metrics`` and JSON logs.

In the app (the test client): the counters move with runs, steps and controls, and
the token guards the endpoint. Under gunicorn with two workers: a scrape that
reaches either worker gives both workers' figures, and ``FLOWRUN_LOG_FORMAT=json``
writes every access and event line as JSON with the execution id.
"""

from __future__ import annotations

import http.client
import json
import re

import pytest

from .streams import assert_error
from .test_deploy import TOKEN, Gunicorn, Stream, flow_of
from .test_stream import make_flow, node, run_events

# A gunicorn with two workers starts for these tests.
pytestmark = pytest.mark.timeout(180)


def scrape(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` of a Prometheus text exposition."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def metrics_of(client) -> dict[str, float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain")
    return scrape(resp.get_data(as_text=True))


def test_runs_steps_and_outcomes_are_counted(client, hits):
    before = metrics_of(client)
    ok = make_flow(hits, node("a", "/items"), node("b", "/items"))
    failing = make_flow(hits, node("c", "/status/500"), node("d", "/items"))
    run_events(client, ok)
    run_events(client, failing)
    after = metrics_of(client)

    def moved(name):
        return after.get(name, 0) - before.get(name, 0)

    assert moved("flowrun_runs_started_total") == 2
    assert moved('flowrun_runs_ended_total{outcome="completed"}') == 1
    assert moved('flowrun_runs_ended_total{outcome="failed"}') == 1
    assert moved('flowrun_steps_total{status="completed"}') == 2
    assert moved('flowrun_steps_total{status="failed"}') == 1
    assert moved("flowrun_step_duration_seconds_count") == 3
    assert after["flowrun_live_streams"] == 0
    assert "flowrun_store_errors_total" in after


def test_a_new_server_drops_old_metric_files_and_nothing_else(tmp_path, monkeypatch):
    # The operator may name a directory that holds other things too.
    from flowrun import metrics

    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("keep me")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    metrics.prepare()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_metrics_need_the_token_when_one_is_set(app):
    app.config["FLOWRUN_TOKEN"] = "metrics-token"
    client = app.test_client()
    assert_error(client.get("/metrics"), 401)
    resp = client.get("/metrics", headers={"Authorization": "Bearer metrics-token"})
    assert resp.status_code == 200 and b"flowrun_runs_started_total" in resp.data


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    server = Gunicorn(
        tmp_path_factory.mktemp("observe"), workers=2, FLOWRUN_LOG_FORMAT="json"
    )
    yield server
    server.close()


def _metrics(server, conn=None) -> tuple[dict, str]:
    own = conn is None
    conn = conn or server.connect()
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200, body
        return scrape(body), resp.getheader("X-Flowrun-Worker")
    finally:
        if own:
            conn.close()


def test_metrics_add_up_every_workers_figures(json_server, hits):
    server = json_server
    first = server.connect()
    worker_one = server.call("GET", "/api/health", conn=first)[2]
    second = server.connection_to(want_other_than=worker_one)
    before, _ = _metrics(server, first)
    flow = flow_of(hits, "mx", ("one", "/items?run=mx", {}))
    workers = set()
    for conn in (first, second, first, second):
        status, _, worker = server.call(
            "POST", "/api/execute", {"config": flow}, conn=conn
        )
        assert status == 200
        workers.add(worker)
    assert len(workers) == 2
    for conn in (first, second):  # whichever worker answers the scrape
        after, _ = _metrics(server, conn)
        assert (
            after["flowrun_runs_started_total"]
            - before.get("flowrun_runs_started_total", 0)
            == 4
        )
    # A stop recorded by one worker and delivered to the other is timed.
    slow = [(f"s{i}", f"/slow?ms=300&run=mc&n={i}", {}) for i in range(3)]
    stream = Stream(server, flow_of(hits, "mc", *slow))
    try:
        stream.until("step_start")
        other = server.connection_to(want_other_than=stream.worker)
        status, _, _ = server.call(
            "POST", f"/api/executions/{stream.id}/stop", conn=other
        )
        assert status == 202
        assert stream.until("end")[1]["interrupted"] is True
        other.close()
    finally:
        stream.close()
    after, _ = _metrics(server)
    stops = 'flowrun_control_latency_seconds_count{kind="stop"}'
    assert after.get(stops, 0) - before.get(stops, 0) >= 1
    first.close()
    second.close()


def test_json_logs_carry_the_execution_id(json_server, hits):
    server = json_server
    logged = server.log_path.stat().st_size
    flow = flow_of(hits, "jl", ("one", "/items?run=jl", {}), ("two", "/items", {}))
    stream = Stream(server, flow)
    try:
        end = stream.until("end")[1]
    finally:
        stream.close()
    execution_id = end["executionId"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", f"/?token={TOKEN}")
    conn.getresponse().read()
    conn.close()
    server.wait_status(execution_id, ("completed",))
    with open(server.log_path, "rb") as log:
        log.seek(logged)
        lines = log.read().decode().splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON
    mine = [r for r in records if r.get("executionId") == execution_id]
    events = [r["message"] for r in mine if r["logger"] == "flowrun.events"]
    assert events == ["run started", "step", "step", "run ended"]
    access = [r for r in mine if r["logger"] == "gunicorn.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("POST", "/api/execute-stream", 200)
    ]
    ended = next(r for r in mine if r["message"] == "run ended")
    assert (ended["status"], ended["stepsExecuted"]) == ("completed", 2)
    assert not any(re.search(TOKEN, line) for line in lines)
