"""The JSON endpoints: errors, history, execute, execute-node, validate, flows."""

from __future__ import annotations

import json

import pytest

from flowrun import __version__, create_app

from .streams import assert_error, make_flow, node, run_events
from .waits import wait_until

JSON = {"Content-Type": "application/json"}


def test_health_and_worker_header(client):
    resp = client.get("/api/health")
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["status"], body["version"]) == ("ok", __version__)
    assert resp.headers["X-Flowrun-Worker"].isdigit()


def test_schema_is_served(client):
    resp = client.get("/api/schema")
    assert resp.status_code == 200
    assert resp.get_json()["type"] == "object"


def test_studio_and_demo_are_registered(client):
    assert client.get("/").status_code == 200
    assert client.get("/demo/items").get_json()["count"] >= 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "JSON object"),
        (b'{"options": {}}', "config"),
    ],
)
def test_execute_stream_bad_requests(client, body, message):
    for path in ("/api/execute-stream", "/api/execute"):
        resp = client.post(path, data=body, content_type="application/json")
        assert_error(resp, 400, message)
        assert resp.mimetype == "application/json"


def test_invalid_flow_is_400_with_located_errors(client):
    resp = client.post("/api/execute-stream", json={"config": {"nodes": []}})
    body = assert_error(resp, 400)
    assert body["errors"] and body["errors"][0]["path"].startswith("nodes")
    assert set(body["errors"][0]) >= {"path", "nodeId", "message", "hint"}


def test_bad_options_are_400_naming_the_option(client, hits):
    flow = make_flow(hits, node("a", "/items"))
    resp = client.post(
        "/api/execute-stream", json={"config": flow, "options": {"mode": "fast"}}
    )
    body = assert_error(resp, 400)
    assert body["errors"][0]["path"] == "options.mode"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"executionId": "exec-1-x", "stepIndex": 0, "userInput": {}}, 404),
        ({"executionId": "exec-1-x", "stepIndex": "0", "userInput": {}}, 400),
        ({"stepIndex": 0, "userInput": {}}, 400),
        ({"executionId": "exec-1-x", "stepIndex": 0, "userInput": []}, 400),
    ],
)
def test_provide_input_errors(client, body, status):
    assert_error(client.post("/api/provide-input", json=body), status)


@pytest.mark.parametrize("action", ["stop", "continue"])
def test_unknown_execution_is_404(client, action):
    assert_error(client.post(f"/api/executions/exec-0-nothing/{action}"), 404)
    assert_error(client.get("/api/executions/exec-0-nothing"), 404)


def test_another_worker_waits_for_the_row_of_a_run_started_just_now(app, client):
    # A gevent worker commits a new run's row with its next group of history rows,
    # a moment after the run's `start` event: a request about it reaching another
    # worker in between waits for the row instead of answering 404.
    import threading
    import time

    from flowrun.engine.run import new_execution_id
    from flowrun.store.history import Store

    execution_id = new_execution_id()
    owner = Store(app.config["FLOWRUN_DATA_DIR"], defer=lambda flush: None)
    owner.create(execution_id, "just started", 2)
    threading.Timer(0.3, owner.flush).start()
    started = time.monotonic()
    resp = client.post(f"/api/executions/{execution_id}/stop")
    assert resp.status_code == 202, resp.get_json()
    assert time.monotonic() - started >= 0.25
    assert client.get(f"/api/executions/{execution_id}").get_json()["status"] == (
        "running"
    )
    # An id that was not made just now is not waited for.
    started = time.monotonic()
    assert_error(client.get("/api/executions/exec-1700000000000-abcdefghi"), 404)
    assert time.monotonic() - started < 0.5
    owner.close()


def test_busy_worker_answers_503(app, client, hits):
    app.extensions["flowrun"].registry.limit = 0
    flow = make_flow(hits, node("a", "/items"))
    resp = client.post("/api/execute-stream", json={"config": flow})
    assert_error(resp, 503, "FLOWRUN_MAX_EXECUTIONS")


def test_execute_runs_to_the_end_and_is_recorded(client, hits):
    flow = make_flow(
        hits,
        node("a", "/items"),
        node(
            "b",
            "/login",
            "POST",
            userPrompts={"password": "?"},
            body={"username": "ada", "password": "{{ .input.password }}"},
        ),
        name="execute me",
    )
    resp = client.post(
        "/api/execute",
        json={"config": flow, "options": {"inputs": {"password": "secret"}}},
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["success"] is True
    assert (body["stepsExecuted"], body["stepsSkipped"], body["stepsFailed"]) == (
        2,
        0,
        0,
    )
    assert [r["id"] for r in body["executionLog"]] == ["a", "b"]
    listed = client.get("/api/executions?flow=execute+me").get_json()["executions"]
    assert listed[0]["executionId"] == body["executionId"]
    assert listed[0]["status"] == "completed"


def test_execute_fails_a_prompt_without_inputs(client, hits):
    flow = make_flow(hits, node("b", "/items", userPrompts={"password": "?"}))
    body = client.post("/api/execute", json={"config": flow}).get_json()
    assert body["success"] is False and body["stepsFailed"] == 1
    assert "options.inputs" in body["executionLog"][0]["error"]
    assert hits.paths() == []


def test_history_lists_newest_first_with_limit(client, hits):
    flow = make_flow(hits, node("a", "/items"))
    ids = [
        client.post("/api/execute", json={"config": flow}).get_json()["executionId"]
        for _ in range(3)
    ]
    listed = client.get("/api/executions?limit=2").get_json()["executions"]
    assert [e["executionId"] for e in listed] == ids[::-1][:2]
    assert_error(client.get("/api/executions?limit=lots"), 400)
    detail = client.get(f"/api/executions/{ids[0]}").get_json()
    assert detail["status"] == "completed" and detail["flowName"] == "test flow"
    assert detail["startedAt"] and detail["endedAt"]
    assert detail["steps"][0]["id"] == "a" and detail["steps"][0]["response"]


def test_execute_node_with_mock_responses(client, hits):
    flow = make_flow(
        hits,
        node("login", "/login", "POST", body={"username": "ada", "password": "x"}),
        node(
            "me",
            "/me",
            headers={"Authorization": "Bearer {{ .responses.login.token }}"},
            userPrompts={"note": "?"},
        ),
    )
    resp = client.post(
        "/api/execute-node",
        json={
            "config": flow,
            "nodeId": "me",
            "mockResponses": {"login": {"token": "tok-mocked"}},
            "inputs": {"note": "hi"},
        },
    )
    assert resp.status_code == 200
    record = resp.get_json()
    assert record["id"] == "me" and record["status"] == "completed"
    assert (record["step"], record["stepIndex"]) == (2, 1)  # its place in the flow
    assert record["request"]["headers"]["Authorization"] == "Bearer tok-mocked"
    assert hits.paths() == ["/demo/me"]  # only the one node ran

    missing = client.post(
        "/api/execute-node",
        json={"config": flow, "nodeId": "me", "inputs": {"note": "hi"}},
    ).get_json()
    assert missing["status"] == "failed" and "login" in missing["error"]
    assert_error(
        client.post("/api/execute-node", json={"config": flow, "nodeId": "nope"}), 400
    )
    assert_error(
        client.post(
            "/api/execute-node",
            json={"config": flow, "nodeId": "me", "mockResponses": {"ghost": {}}},
        ),
        400,
    )


def test_validate_always_200_for_parseable_json(client, hits):
    good = make_flow(hits, node("a", "/items"))
    resp = client.post("/api/validate", json={"config": good})
    assert resp.status_code == 200
    assert resp.get_json()["valid"] is True
    body = client.post("/api/validate", json={"nodes": []}).get_json()
    assert body["valid"] is False and body["errors"] and "warnings" in body
    assert_error(
        client.post("/api/validate", data="{", content_type="application/json"), 400
    )


def test_flows_crud(client, hits):
    doc = make_flow(hits, node("a", "/items"), name="Saved")
    resp = client.put("/api/flows/mine", json=doc)
    assert resp.status_code == 201 and resp.get_json()["name"] == "mine.json"
    assert client.put("/api/flows/mine.json", json=doc).status_code == 200
    assert client.get("/api/flows/mine").get_json() == doc
    listed = client.get("/api/flows").get_json()["flows"]
    entry = next(f for f in listed if f["name"] == "mine.json")
    assert entry["flowName"] == "Saved" and entry["nodes"] == 1
    assert client.delete("/api/flows/mine.json").status_code == 200
    assert_error(client.get("/api/flows/mine.json"), 404)
    assert_error(client.delete("/api/flows/mine.json"), 404)


def test_flows_list_counts_flowsphere_steps(client):
    doc = {"steps": [{"id": "a", "name": "A", "method": "GET", "url": "http://x/"}]}
    client.put("/api/flows/legacy", json=doc)
    listed = client.get("/api/flows").get_json()["flows"]
    assert next(f for f in listed if f["name"] == "legacy.json")["nodes"] == 1


def test_flows_come_back_in_their_own_key_order(client, hits):
    doc = make_flow(hits, node("a", "/items"), name="Ordered")
    doc["nodes"][0]["userPrompts"] = {"username": "User?", "password": "Password?"}
    client.put("/api/flows/ordered", json=doc)
    raw = client.get("/api/flows/ordered").get_data(as_text=True)
    assert raw.index('"username"') < raw.index('"password"')
    assert raw.index('"name"') < raw.index('"nodes"')


@pytest.mark.parametrize(
    "name", ["..%2F..%2Fetc%2Fpasswd", "../secret", "a%20b", ".hidden", "x%5Cy"]
)
def test_flow_names_cannot_traverse(client, name):
    assert_error(client.get(f"/api/flows/{name}"), 400, "flow name")
    assert_error(client.put(f"/api/flows/{name}", json={"nodes": []}), 400)
    assert_error(client.delete(f"/api/flows/{name}"), 400)


def test_flows_are_seeded_from_examples(tmp_path):
    from flowrun import create_app
    from flowrun.resources import examples_dir

    examples = sorted(p.name for p in examples_dir().glob("*.json"))
    app = create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "d"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "f"),
        }
    )
    names = [f["name"] for f in app.test_client().get("/api/flows").get_json()["flows"]]
    assert names == examples
    app.extensions["flowrun"].store.close()


def test_seeded_flows_call_this_servers_own_demo_api(tmp_path):
    from flowrun import create_app

    app = create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "d"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "f"),
            "PORT": 9123,
        }
    )
    doc = app.test_client().get("/api/flows/login-chain.json").get_json()
    assert doc["variables"]["baseUrl"] == "http://127.0.0.1:9123/demo"
    app.extensions["flowrun"].store.close()


def test_import_request_errors(client):
    assert_error(
        client.post("/api/import", json={"format": "word", "content": ""}), 400
    )
    assert_error(client.post("/api/import", json={"format": "curl"}), 400)
    resp = client.post(
        "/api/import", json={"format": "curl", "content": "curl http://127.0.0.1/x"}
    )
    assert resp.status_code in (200, 400, 501)


def test_stream_in_history_while_running(client, app, hits):
    flow = make_flow(hits, node("a", "/items"))
    seen = {}

    def on_event(name, data, resp):
        if name == "start":
            seen["running"] = client.get(f"/api/executions/{data['executionId']}")

    run_events(client, flow, on_event=on_event)
    assert seen["running"].get_json()["status"] in ("running", "completed")


def test_execute_is_listed_before_its_first_request(client, app, hits):
    # A gevent worker commits new rows in groups, a moment later (never, here). A
    # plain `execute` client finds its run's id in the list only, maybe on another
    # worker: the row is committed before the first step's request goes out.
    import threading

    from flowrun.store.history import Store

    app.extensions["flowrun"].store._defer = lambda flush: None
    flow = make_flow(hits, node("slow", "/slow?ms=1&hold=first"), name="listed early")
    thread = threading.Thread(
        target=lambda: client.post("/api/execute", json={"config": flow})
    )
    thread.start()
    try:
        wait_until(lambda: hits.held("first"), message="the first request")
        other = Store(app.config["FLOWRUN_DATA_DIR"])  # another worker's view
        try:
            listed = other.list(flow="listed early")
        finally:
            other.close()
    finally:
        hits.release("first")
    thread.join(5)
    assert [e["status"] for e in listed] == ["running"]


def _other_worker_status(app, execution_id: str) -> str | None:
    from flowrun.store.history import Store

    other = Store(app.config["FLOWRUN_DATA_DIR"])  # another worker's view
    try:
        found = other.get(execution_id)
    finally:
        other.close()
    return None if found is None else found["status"]


def test_a_stream_shows_end_only_once_the_end_is_recorded(client, app, hits):
    # A gevent worker commits runs' ends in groups too (never, here, unless
    # something flushes): a client that reads `end` and asks another worker for
    # the run must find it ended, not running.
    # Stopped at a prompt, the run's `end` comes on its own, after no step.
    app.extensions["flowrun"].store._defer = lambda flush: None
    flow = make_flow(
        hits, node("one", "/items"), node("two", "/items", userPrompts={"a": "A?"})
    )
    seen = {}

    def on_event(name, data, resp):
        if name == "input_required":
            stop = client.post(f"/api/executions/{data['executionId']}/stop")
            assert stop.status_code == 202
        if name == "end":
            seen["status"] = _other_worker_status(app, data["executionId"])

    _, events = run_events(client, flow, on_event=on_event)
    assert [n for n, _ in events][-2:] == ["input_required", "end"]
    assert seen["status"] == "interrupted"


def test_execute_answers_once_the_end_is_recorded(client, app, hits):
    app.extensions["flowrun"].store._defer = lambda flush: None
    flow = make_flow(hits, node("one", "/items"), node("boom", "/status/500"))
    end = client.post("/api/execute", json={"config": flow}).get_json()
    assert end["success"] is False
    assert _other_worker_status(app, end["executionId"]) == "failed"


def test_ends_still_in_a_group_are_written_when_the_process_exits(app):
    # What the exit handler does when no run is live any more: the group commit
    # due in 2 ms may never come once the worker is exiting.
    import weakref

    from flowrun.web.state import _abandon_live

    state = app.extensions["flowrun"]
    state.store._defer = lambda flush: None
    row = state.store.create("exec-exit", "f", 1)
    state.store.finish(row, "completed", {"success": True}, [])
    assert _other_worker_status(app, "exec-exit") is None
    _abandon_live(weakref.ref(state))
    assert _other_worker_status(app, "exec-exit") == "completed"


def test_execute_can_be_stopped_through_the_api(client, app, hits):
    import threading

    # The stop is answered while the first step's request is in flight: the row
    # says `running` from before that request goes out, so waiting for `running`
    # alone let a stop on a busy machine land before the first step.
    flow = make_flow(
        hits, node("slow", "/slow?ms=1&hold=api-stop"), node("next", "/items")
    )
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            client.post("/api/execute", json={"config": flow}).get_json()
        )
    )
    thread.start()
    try:
        wait_until(lambda: hits.held("api-stop"), message="the first request")
        [row] = app.extensions["flowrun"].store.list(1)
        eid = row["executionId"]
        assert client.post(f"/api/executions/{eid}/stop").status_code == 202
    finally:
        hits.release("api-stop")
    thread.join(5)
    assert result["interrupted"] is True and result["notRun"] == ["next"]
    assert hits.paths() == ["/demo/slow"]


@pytest.mark.parametrize("endpoint", ["validate", "execute-stream", "execute"])
def test_json_nested_too_deeply_to_parse_is_400(client, endpoint):
    raw = b'{"config":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"
    resp = client.post(f"/api/{endpoint}", data=raw, headers=JSON)
    assert_error(resp, 400, "nested too deeply")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"config": {"name": "x", "variables": {"v": NaN}, "nodes": []}}', "NaN"),
        (
            b'{"config": {"name": "x", "variables": {"v": -Infinity}, "nodes": []}}',
            "Inf",
        ),
        (b'{"config": {"name": "x", "variables": {"v": 1e400}, "nodes": []}}', "1e400"),
    ],
)
def test_numbers_json_cannot_carry_are_refused(client, raw, why):
    # Accepted, they came back out in events as NaN / Infinity: not JSON, so a
    # browser's JSON.parse threw on that event.
    for endpoint in ("validate", "execute-stream", "execute"):
        resp = client.post(f"/api/{endpoint}", data=raw, headers=JSON)
        body = assert_error(resp, 400, "not valid JSON")
        assert why in body["error"]


@pytest.mark.parametrize("endpoint", ["execute-stream", "execute"])
def test_start_step_past_the_last_node_is_400(client, hits, endpoint):
    flow = make_flow(hits, node("a", "/items"), node("b", "/items"))
    resp = client.post(
        f"/api/{endpoint}", json={"config": flow, "options": {"startStep": 2}}
    )
    body = assert_error(resp, 400, "Invalid options")
    assert body["errors"][0]["path"] == "options.startStep"
    assert "past the last node" in body["errors"][0]["message"]
    assert hits.paths() == []


def test_auto_step_delay_too_long_is_a_bad_option(client, hits):
    flow = make_flow(hits, node("a", "/items"))
    options = {"mode": "auto", "autoStepDelayMs": 1e12}
    body = assert_error(
        client.post("/api/execute", json={"config": flow, "options": options}), 400
    )
    assert body["errors"][0]["path"] == "options.autoStepDelayMs"


def test_execute_node_without_node_id_names_the_field(client, hits):
    flow = make_flow(hits, node("a", "/items"))
    body = assert_error(client.post("/api/execute-node", json={"config": flow}), 400)
    assert body["errors"][0]["path"] == "nodeId"
    assert "required" in body["errors"][0]["message"]
    assert "None" not in json.dumps(body)


def test_try_it_out_names_its_own_inputs_field_for_a_missing_answer(client, hits):
    flow = make_flow(hits, node("me", "/items", userPrompts={"otp": "OTP?"}))
    resp = client.post("/api/execute-node", json={"config": flow, "nodeId": "me"})
    record = resp.get_json()
    assert record["status"] == "failed"
    assert record["error"] == "No answer for prompt(s) otp: give them in inputs"
    resp = client.post(
        "/api/execute-node",
        json={"config": flow, "nodeId": "me", "inputs": {"otp": "1"}},
    )
    assert resp.get_json()["status"] == "completed"


@pytest.fixture
def one_at_a_time(tmp_path):
    app = create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
            "FLOWRUN_MAX_EXECUTIONS": 1,
        }
    )
    yield app
    app.extensions["flowrun"].close()


@pytest.mark.parametrize("second", ["execute", "execute-stream", "execute-node"])
def test_execute_counts_against_max_executions(one_at_a_time, hits, second):
    import threading

    slow = make_flow(hits, node("slow", "/slow?ms=1&hold=first"))
    first = []
    thread = threading.Thread(
        target=lambda: first.append(
            one_at_a_time.test_client().post("/api/execute", json={"config": slow})
        )
    )
    thread.start()
    try:  # the first run holds the one slot while the target holds its request
        wait_until(lambda: hits.held("first"), message="the first run's request")
        request = {"config": slow, "nodeId": "slow"}  # nodeId: for Try it out
        resp = one_at_a_time.test_client().post(f"/api/{second}", json=request)
    finally:
        hits.release("first")
    body = assert_error(resp, 503, "FLOWRUN_MAX_EXECUTIONS")
    assert resp.headers["Retry-After"] == "1" and body["errors"] == []
    thread.join()
    assert first[0].status_code == 200 and first[0].get_json()["success"] is True
    # The slot is given back when the run ends.
    resp = one_at_a_time.test_client().post("/api/execute", json={"config": slow})
    assert resp.status_code == 200


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_flow_name_too_long_for_the_file_system_is_400(client, method):
    kwargs = {"json": {"name": "x", "nodes": []}} if method == "put" else {}
    resp = getattr(client, method)("/api/flows/" + "a" * 300, **kwargs)
    body = assert_error(resp, 400, "Invalid flow name")
    assert body["errors"][0]["path"] == "name"
    ok = getattr(client, method)("/api/flows/" + "a" * 200, **kwargs)
    assert ok.status_code in (201, 404)
