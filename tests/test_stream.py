"""The SSE protocol through Flask's test client: order, fields, prompts, stop, close."""

from __future__ import annotations

import threading
import time

import pytest

from flowrun.jsontext import dumps
from flowrun.web.executions import WebControls

from .streams import (
    answer,
    answering,
    assert_error,
    frames,
    login_with_prompt,
    make_flow,
    node,
    run_events,
)
from .waits import wait_until


def names(events):
    return [n for n, _ in events if n != ":"]


def test_success_order_fields_and_headers(client, hits):
    flow = make_flow(
        hits,
        node("login", "/login", "POST", body={"username": "ada", "password": "secret"}),
        node(
            "me",
            "/me",
            headers={"Authorization": "Bearer {{ .responses.login.token }}"},
        ),
    )
    headers, events = run_events(client, flow)
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    eid = headers["X-Execution-Id"]
    assert eid.startswith("exec-") and len(eid) == 5 + 13 + 1 + 9
    assert names(events) == ["start", "step_start", "step", "step_start", "step", "end"]
    assert all(d["executionId"] == eid for n, d in events if n != ":")
    seqs = [d["_seq"] for n, d in events if n != ":"]
    assert seqs == list(range(1, len(seqs) + 1))
    start = events[0][1]
    assert start["totalSteps"] == 2 and start["flowName"] == "test flow"
    step_start = events[1][1]
    assert step_start["step"] == 1 and step_start["stepIndex"] == 0
    assert step_start["url"] == hits.url + "/demo/login"
    assert step_start["method"] == "POST" and step_start["name"] == "Login"
    me = events[4][1]
    assert me["status"] == "completed" and me["response"]["status"] == 200
    assert me["request"]["headers"]["Authorization"].startswith("Bearer tok-")
    assert me["substitutions"][0]["type"] == "response"
    end = events[-1][1]
    assert end["success"] is True and end["interrupted"] is False
    assert (end["stepsExecuted"], end["stepsSkipped"], end["stepsFailed"]) == (2, 0, 0)
    assert end["notRun"] == [] and len(end["executionLog"]) == 2
    assert hits.paths() == ["/demo/login", "/demo/me"]


def test_failure_ends_with_error_and_not_run(client, hits):
    flow = make_flow(hits, node("gone", "/status/404"), node("never", "/items"))
    _, events = run_events(client, flow)
    assert names(events) == ["start", "step_start", "step", "error", "end"]
    step = events[2][1]
    assert step["status"] == "failed" and "Validation failed" in step["error"]
    assert events[3][1]["step"] == 1 and events[3][1]["message"] == step["error"]
    end = events[-1][1]
    assert end["success"] is False and end["interrupted"] is False
    assert end["stepsFailed"] == 1 and end["notRun"] == ["never"]
    assert hits.paths() == ["/demo/status/404"]


def test_skip_by_condition(client, hits):
    flow = make_flow(
        hits,
        node("a", "/items"),
        node(
            "b",
            "/items/1",
            conditions=[{"source": "node", "node": "a", "httpStatusCode": 500}],
        ),
    )
    _, events = run_events(client, flow)
    assert names(events) == ["start", "step_start", "step", "step", "end"]
    skipped = events[3][1]
    assert skipped["status"] == "skipped" and skipped["skipReason"]
    assert events[-1][1]["stepsSkipped"] == 1 and events[-1][1]["success"] is True


def test_prompt_answered_through_provide_input(client, hits):
    answers = []
    on_event = answering(client, answers, {"password": "secret"})
    _, events = run_events(client, login_with_prompt(hits), on_event=on_event)
    assert answers[0].status_code == 200 and answers[0].get_json() == {"success": True}
    assert names(events) == ["start", "input_required", "step_start", "step", "end"]
    prompt = dict(events)["input_required"]
    assert prompt["prompts"] == {"password": "Password?"}
    assert prompt["stepIndex"] == 0 and prompt["step"] == 1
    assert events[-1][1]["success"] is True
    again = client.post(
        "/api/provide-input",
        json={
            "executionId": events[0][1]["executionId"],
            "stepIndex": 0,
            "userInput": {"password": "x"},
        },
    )
    assert again.status_code in (404, 409)


def test_keys_beyond_the_prompt_are_accepted_and_not_kept(client, hits):
    flow = make_flow(
        hits,
        node("first", "/echo?a={{ .input.a }}", userPrompts={"a": "A?"}),
        node("second", "/echo?b={{ .input.b }}", userPrompts={"b": "B?"}),
    )
    answers, prompts = [], []
    given = {0: {"a": "1", "b": "early"}, 1: {"b": "2"}}

    def on_event(name, data, resp):
        if name == "input_required":
            prompts.append(data["prompts"])
            index = data["stepIndex"]
            body = {
                "executionId": data["executionId"],
                "stepIndex": index,
                "userInput": given[index],
            }
            answer(client, body, answers)

    _, events = run_events(client, flow, on_event=on_event)
    assert [a.status_code for a in answers] == [200, 200]
    # The extra "b" of the first answer was not taken as the second prompt's.
    assert prompts == [{"a": "A?"}, {"b": "B?"}]
    log = events[-1][1]["executionLog"]
    assert [r["response"]["body"]["args"] for r in log] == [{"a": ["1"]}, {"b": ["2"]}]


def test_inputs_in_advance_send_no_prompt(client, hits):
    flow = login_with_prompt(hits)
    _, events = run_events(client, flow, {"inputs": {"password": "secret"}})
    assert names(events) == ["start", "step_start", "step", "end"]


def test_stop_completes_the_step_in_flight(client, hits):
    flow = make_flow(
        hits,
        node("first", "/slow?ms=300"),
        node("second", "/items"),
        node("third", "/items"),
    )
    stops = []

    def on_event(name, data, resp):
        if name == "step_start" and data["stepIndex"] == 0:
            stops.append(client.post(f"/api/executions/{data['executionId']}/stop"))

    _, events = run_events(client, flow, on_event=on_event)
    assert stops[0].status_code == 202 and stops[0].get_json() == {"stopping": True}
    assert names(events) == ["start", "step_start", "step", "end"]
    assert events[2][1]["status"] == "completed"  # the step in flight completed
    end = events[-1][1]
    assert end["interrupted"] is True and end["success"] is False
    assert end["notRun"] == ["second", "third"]
    assert hits.paths() == ["/demo/slow"]
    detail = client.get(f"/api/executions/{end['executionId']}").get_json()
    assert detail["status"] == "interrupted"
    assert [s["status"] for s in detail["steps"]] == ["completed", "not_run", "not_run"]
    again = client.post(f"/api/executions/{end['executionId']}/stop")
    assert again.status_code == 409


@pytest.mark.parametrize("wait", ["prompt", "delay", "step-mode"])
def test_stop_while_waiting_starts_nothing(client, hits, wait, monkeypatch):
    waiting = node("wait", "/items")
    options = {}
    if wait == "prompt":
        waiting["userPrompts"] = {"x": "X?"}
    elif wait == "delay":
        waiting["delayMs"] = 10_000
    else:
        options = {"mode": "step"}
    flow = make_flow(hits, waiting, node("after", "/items"))
    seen = []
    sleeping = threading.Event()  # the run is in its delay
    sleep = WebControls.sleep

    def watched_sleep(self, seconds):
        sleeping.set()
        return sleep(self, seconds)

    monkeypatch.setattr(WebControls, "sleep", watched_sleep)

    def on_event(name, data, resp):
        seen.append(name)
        if name in ("input_required", "paused") or (
            wait == "delay" and name == "start"
        ):
            if wait == "delay":
                wait_until(sleeping.is_set, message="the delay")
            r = client.post(f"/api/executions/{data['executionId']}/stop")
            assert r.status_code == 202

    started = time.monotonic()
    _, events = run_events(client, flow, options, on_event=on_event)
    assert time.monotonic() - started < 5
    assert "step_start" not in names(events)
    assert events[-1][1]["interrupted"] is True
    assert events[-1][1]["notRun"] == ["wait", "after"]
    assert hits.paths() == []


def test_step_and_auto_modes_pause_and_continue(client, hits):
    flow = make_flow(hits, node("a", "/items"), node("b", "/items"))
    replies = []

    def on_event(name, data, resp):
        if name == "paused":
            eid = data["executionId"]
            replies.append(client.post(f"/api/executions/{eid}/continue").status_code)

    _, events = run_events(client, flow, {"mode": "step"}, on_event=on_event)
    assert names(events).count("paused") == 2 and replies == [200, 200]
    assert events[-1][1]["success"] is True

    replies.clear()
    _, events = run_events(
        client, flow, {"mode": "auto", "autoStepDelayMs": 60_000}, on_event=on_event
    )
    paused = [d for n, d in events if n == "paused"]
    assert len(paused) == 1 and paused[0]["resumeAt"] > time.time() * 1000
    assert replies == [200] and events[-1][1]["success"] is True
    eid = events[-1][1]["executionId"]
    assert client.post(f"/api/executions/{eid}/continue").status_code == 409


def test_heartbeat_while_a_step_is_slow(client, hits):
    flow = make_flow(hits, node("slow", "/slow?ms=1300"))
    _, events = run_events(client, flow)
    assert ":" in [n for n, _ in events]  # heartbeat is 0.5 s in the app fixture
    assert events[-1][1]["success"] is True


def test_closing_the_stream_interrupts_after_the_step_in_flight(client, app, hits):
    flow = make_flow(
        hits, node("slow", "/slow?ms=400&hold=slow"), node("next", "/items")
    )
    resp = client.post("/api/execute-stream", json={"config": flow}, buffered=False)
    eid = resp.headers["X-Execution-Id"]
    controls = app.extensions["flowrun"].registry.get(eid).controls
    try:
        wait_until(lambda: hits.held("slow"), message="the slow step's request")
        resp.close()  # the client goes away while the slow step is in flight
        wait_until(controls.cancelled.is_set, message="the server to see the close")
    finally:
        hits.release("slow")
    store = app.extensions["flowrun"].store
    wait_until(lambda: store.get(eid)["status"] != "running", message="the run's end")
    detail = store.get(eid)
    assert detail["status"] == "interrupted"
    assert [s["status"] for s in detail["steps"]] == ["completed", "not_run"]
    assert hits.paths() == ["/demo/slow"]


def test_prompt_times_out(app, hits):
    app.extensions["flowrun"].config["FLOWRUN_INPUT_TIMEOUT_S"] = 0.2
    flow = make_flow(hits, node("ask", "/items", userPrompts={"x": "X?"}))
    _, events = run_events(app.test_client(), flow)
    assert names(events) == ["start", "input_required", "step", "error", "end"]
    assert "FLOWRUN_INPUT_TIMEOUT_S" in events[2][1]["error"]


def test_dev_server_notices_a_closed_socket_without_heartbeats(tmp_path, hits):
    """Under ``python app.py`` (werkzeug), the EOF watch sees a close at once."""
    import http.client
    import json
    import socket

    from werkzeug.serving import make_server

    from flowrun import create_app

    app = create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "d"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "f"),
            "FLOWRUN_HEARTBEAT_S": 60,  # heartbeats alone would take minutes
            "FLOWRUN_TOKEN": None,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        flow = make_flow(hits, node("ask", "/items", userPrompts={"x": "X?"}))
        conn.request(
            "POST",
            "/api/execute-stream",
            json.dumps({"config": flow}),
            {"Content-Type": "application/json"},
        )
        sock = conn.sock
        resp = conn.getresponse()
        eid = resp.getheader("X-Execution-Id")
        while b"input_required" not in resp.readline():
            pass
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        resp.close()
        store = app.extensions["flowrun"].store
        wait_until(
            lambda: store.state(eid)["status"] != "running",
            timeout=10,
            message="the server to notice the closed socket",
        )
        assert store.state(eid)["status"] == "interrupted"
        assert hits.paths() == []
    finally:
        server.shutdown()
        app.extensions["flowrun"].close()


def test_an_engine_bug_still_ends_the_stream(client, app, hits, monkeypatch):
    from flowrun.engine.run import Run

    def broken(self, index, node):
        raise RuntimeError("boom")
        yield  # pragma: no cover

    monkeypatch.setattr(Run, "_execute", broken)
    _, events = run_events(client, make_flow(hits, node("a", "/items")))
    assert names(events)[-2:] == ["error", "end"]
    assert "boom" in events[-2][1]["message"]
    eid = events[0][1]["executionId"]
    assert app.extensions["flowrun"].store.get(eid)["status"] == "failed"


def test_a_history_failure_does_not_stop_the_run(client, app, hits, monkeypatch):
    import sqlite3

    def fail(*args):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(app.extensions["flowrun"].store, "step", fail)
    _, events = run_events(client, make_flow(hits, node("a", "/items")))
    assert names(events) == ["start", "step_start", "step", "end"]
    assert events[-1][1]["success"] is True


def test_a_client_that_does_not_read_cannot_pile_up_a_whole_run(app, hits):
    """Events a stalled client leaves unread are capped: the run is stopped."""
    app.extensions["flowrun"].backlog_limit = 250_000
    flow = make_flow(hits, *[node(f"big{i}", "/big?bytes=100000") for i in range(8)])
    resp = app.test_client().post(
        "/api/execute-stream", json={"config": flow}, buffered=False
    )
    eid = resp.headers["X-Execution-Id"]
    store = app.extensions["flowrun"].store
    wait_until(  # nobody reads the stream
        lambda: store.state(eid)["status"] != "running",
        timeout=10,
        message="the run to be stopped",
    )
    events = list(frames(resp.response))
    resp.close()
    end = events[-1][1]
    assert events[-1][0] == "end" and end["interrupted"] is True
    assert 0 < end["stepsExecuted"] < 8 and end["notRun"]
    assert store.state(eid)["status"] == "interrupted"


def test_partial_answer_is_400_and_the_prompt_keeps_waiting(client, hits):
    import threading

    flow = make_flow(
        hits,
        node(
            "login",
            "/login",
            "POST",
            userPrompts={"username": "User?", "password": "Password?"},
            body={
                "username": "{{ .input.username }}",
                "password": "{{ .input.password }}",
            },
        ),
    )
    answers = []

    def answer(body):
        answers.append(client.post("/api/provide-input", json=body))

    def on_event(name, data, resp):
        if name == "input_required":
            base = {"executionId": data["executionId"], "stepIndex": 0}
            partial = {**base, "userInput": {"username": "ada"}}
            whole = {**base, "userInput": {"username": "ada", "password": "secret"}}
            for body in (partial, whole):
                thread = threading.Thread(target=answer, args=(body,))
                thread.start()
                thread.join()

    _, events = run_events(client, flow, on_event=on_event)
    first, second = answers
    body = assert_error(first, 400)
    assert body["errors"][0]["path"] == "userInput.password"
    assert second.status_code == 200
    assert events[-1][1]["success"] is True


# -- `end` joins the step records' JSON instead of encoding them again
def _encoded_events(app, flow, options=None):
    from flowrun.engine.flow import RunOptions, normalize
    from flowrun.engine.run import Run
    from flowrun.web.executions import Execution, WebControls

    state = app.extensions["flowrun"]
    controls = WebControls("exec-enc", state.channel)
    run = Run(
        normalize(flow),
        RunOptions.from_dict(options),
        controls,
        state.engine_settings(),
        "exec-enc",
    )
    execution = Execution(state, run, controls)
    return [(execution._encode(ev, ev.to_dict()), ev.to_dict()) for ev in run.events()]


@pytest.mark.parametrize("limit", [None, 600])
def test_encoded_events_are_the_json_of_their_data(app, hits, monkeypatch, limit):
    from flowrun.web import executions

    if limit is not None:  # a run past the kept bytes: `end` is encoded whole
        monkeypatch.setattr(executions, "_LOGGED_LIMIT", limit)
    flow = make_flow(
        hits,
        node("a", "/items", headers={"Authorization": 'Bearer x\u00e9"\\'}),
        node("b", "/items", conditions=[{"variable": "nope", "equals": 1}]),
        node("c", "/status/500"),
        node("d", "/items"),
    )
    got = _encoded_events(app, flow, {"continueOnFailure": True})
    names = [data.get("status") for _, data in got]
    assert len(got) > 6, names
    for text, data in got:
        assert text == dumps(data)
    end = got[-1][1]
    assert [r["id"] for r in end["executionLog"]] == ["a", "b", "c", "d"]
