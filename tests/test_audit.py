"""Gaps found by the QA audit of issues 2 and 3: bad input must be a located 4xx."""

from __future__ import annotations

import io
import json

import pytest

from flowrun import create_app
from flowrun.cli.main import cli as main

from .streams import assert_error
from .test_stream import make_flow, node, run_events

JSON = {"Content-Type": "application/json"}


def deep(depth: int):
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture
def small_limit(tmp_path):
    app = create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
            "FLOWRUN_MAX_CONFIG_BYTES": 2000,
        }
    )
    yield app.test_client()
    app.extensions["flowrun"].close()


def _chunked(client, raw: bytes):
    # gunicorn sets wsgi.input_terminated: werkzeug then reads a chunked body up
    # to MAX_CONTENT_LENGTH and stops there without an error.
    return client.post(
        "/api/validate",
        input_stream=io.BytesIO(raw),
        headers={**JSON, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_chunked_body_over_the_limit_is_413_not_a_truncated_400(small_limit):
    big = json.dumps({"config": {"name": "x" * 3000, "nodes": []}}).encode()
    body = assert_error(_chunked(small_limit, big), 413)
    assert "FLOWRUN_MAX_CONFIG_BYTES" in body["error"]


def test_chunked_body_at_the_limit_is_read_whole(small_limit):
    empty = b'{"config": {"name": "", "nodes": []}}'
    raw = empty.replace(b'""', b'"' + b"x" * (2000 - len(empty)) + b'"')
    assert len(raw) == 2000
    resp = _chunked(small_limit, raw)
    assert resp.status_code == 200
    assert resp.get_json()["valid"] is False  # no nodes: but read and parsed


@pytest.mark.parametrize("endpoint", ["validate", "execute-stream", "execute"])
def test_json_nested_too_deeply_to_parse_is_400(client, endpoint):
    raw = b'{"config":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"
    resp = client.post(f"/api/{endpoint}", data=raw, headers=JSON)
    assert_error(resp, 400, "nested too deeply")


def test_body_nested_beyond_max_depth_is_a_located_validation_error(client, hits):
    flow = make_flow(hits, node("d", "/echo", "POST", body=deep(300)))
    body = assert_error(
        client.post("/api/execute-stream", json={"config": flow}), 400, "Invalid flow"
    )
    [error] = body["errors"]
    assert error["path"].startswith("nodes[0].body.a.a")
    assert error["nodeId"] == "d"
    assert "100 levels" in error["message"]
    assert hits.paths() == []
    resp = client.post("/api/validate", json={"config": flow})
    assert resp.get_json()["valid"] is False


def test_body_nested_within_max_depth_runs(client, hits):
    flow = make_flow(
        hits,
        node(
            "d",
            "/echo",
            "POST",
            body=deep(90),
            validations=[{"jsonpath": ".json.a.a.a.a", "exists": True}],
        ),
    )
    _, events = run_events(client, flow)
    assert events[-1][1]["success"] is True


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


def test_execute_node_without_node_id_names_the_field(client, hits):
    flow = make_flow(hits, node("a", "/items"))
    body = assert_error(client.post("/api/execute-node", json={"config": flow}), 400)
    assert body["errors"][0]["path"] == "nodeId"
    assert "required" in body["errors"][0]["message"]
    assert "None" not in json.dumps(body)


def test_invalid_id_message_shows_the_id_as_written(client, hits):
    flow = make_flow(hits, node("ü-1", "/items"))
    body = client.post("/api/validate", json={"config": flow}).get_json()
    assert body["errors"][0]["message"].startswith('id "ü-1" may only contain')


def test_cli_json_nested_too_deeply_is_exit_2(runner, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"a":' * 5000 + "1" + "}" * 5000)
    for command in (["run", str(path)], ["validate", str(path)]):
        result = runner.invoke(main, command)
        assert result.exit_code == 2, result.output
        assert "nested too deeply" in result.output
        assert not isinstance(result.exception, RecursionError)


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
    assert me["request"]["headers"]["Authorization"] == "********"
    assert token not in json.dumps(echo)


def test_response_too_deep_to_parse_is_kept_as_text():
    from flowrun.http.client import decode

    text = "[" * 5000 + "]" * 5000
    assert decode(text) == text


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
    import time

    slow = make_flow(hits, node("slow", "/slow?ms=600"))
    first = []
    thread = threading.Thread(
        target=lambda: first.append(
            one_at_a_time.test_client().post("/api/execute", json={"config": slow})
        )
    )
    thread.start()
    deadline = time.monotonic() + 5
    while "/demo/slow" not in hits.paths() and time.monotonic() < deadline:
        time.sleep(0.01)
    request = {"config": slow, "nodeId": "slow"}  # nodeId: for Try it out
    resp = one_at_a_time.test_client().post(f"/api/{second}", json=request)
    body = assert_error(resp, 503, "FLOWRUN_MAX_EXECUTIONS")
    assert resp.headers["Retry-After"] == "1" and body["errors"] == []
    thread.join()
    assert first[0].status_code == 200 and first[0].get_json()["success"] is True
    # The slot is given back when the run ends.
    resp = one_at_a_time.test_client().post("/api/execute", json={"config": slow})
    assert resp.status_code == 200


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


@pytest.mark.parametrize(
    "url", ["http://[::ffff:169.254.169.254]/", "http://[::ffff:a9fe:a9fe]/latest"]
)
def test_ipv4_mapped_metadata_address_is_blocked(url):
    from flowrun.errors import BlockedTarget
    from flowrun.http.guard import NetworkGuard

    guard = NetworkGuard(blocked=["169.254.0.0/16", "fd00:ec2::254/128"])
    with pytest.raises(BlockedTarget):
        guard.check(url)


def test_dns_failure_after_a_redirect_names_the_redirect_target(client, hits):
    flow = make_flow(
        hits, node("r", "/redirect?to=http://no-such-host.invalid/x", timeout=5)
    )
    _, events = run_events(client, flow)
    step = next(data for name, data in events if name == "step")
    assert step["status"] == "failed"
    assert "no-such-host.invalid" in step["error"], step["error"]


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_flow_name_too_long_for_the_file_system_is_400(client, method):
    kwargs = {"json": {"name": "x", "nodes": []}} if method == "put" else {}
    resp = getattr(client, method)("/api/flows/" + "a" * 300, **kwargs)
    body = assert_error(resp, 400, "Invalid flow name")
    assert body["errors"][0]["path"] == "name"
    ok = getattr(client, method)("/api/flows/" + "a" * 200, **kwargs)
    assert ok.status_code in (201, 404)


def test_placeholder_with_a_non_ascii_name_says_what_names_may_hold(client, hits):
    flow = make_flow(hits, node("a", "/echo?q={{ .vars.ключ }}"))
    flow["variables"] = {"ключ": "значение"}
    body = client.post("/api/validate", json={"config": flow}).get_json()
    [error] = body["errors"]
    assert error["path"] == "nodes[0].url"
    assert error["hint"].startswith("the NAME after .vars. may only contain ASCII")


def test_validation_results_quote_a_huge_body_only_in_part(client, hits):
    size = 300_000
    flow = make_flow(
        hits,
        node(
            "big",
            f"/big?bytes={size}",
            validations=[
                {"jsonpath": ".", "exists": True},
                {"jsonpath": ".", "equals": "x"},
                {"jsonpath": ".", "matches": "^y"},
                {"jsonpath": ".", "lessThan": 3},
                {"jsonpath": ".", "notEquals": "{{ .vars.same }}"},
                {"schema": {"type": "object"}},
            ],
        ),
    )
    flow["variables"] = {"same": "x" * size}
    _, events = run_events(client, flow)
    step = next(data for name, data in events if name == "step")
    assert step["status"] == "failed"
    assert step["response"]["size"] == size
    for result in step["validations"]:
        assert len(result["message"]) < 1000, result["message"][:300]
        assert len(json.dumps(result.get("actual"))) < 5000
        assert len(json.dumps(result.get("expected"))) < 5000
    assert f"({size} characters)" in step["validations"][1]["message"]
    assert step["validations"][0]["actual"].endswith(f"… ({size} characters)")
    assert len(step["error"]) < 5000
    assert len(json.dumps(step)) < 1_048_576 + 20_000  # the cut body, and little else


def test_short_values_are_quoted_whole(client, hits):
    flow = make_flow(
        hits,
        node("one", "/items/1", validations=[{"jsonpath": ".name", "equals": "pear"}]),
    )
    _, events = run_events(client, flow)
    step = next(data for name, data in events if name == "step")
    assert step["validations"][0]["message"] == ".name: expected 'pear', got 'apple'"
    assert step["validations"][0]["actual"] == "apple"


def _cli_flow(tmp_path, hits) -> str:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(make_flow(hits, node("list", "/items"))))
    return str(path)


def test_cli_creates_the_report_directories(runner, tmp_path, hits):
    junit = tmp_path / "reports" / "ci" / "flow.xml"
    log = tmp_path / "reports" / "flow.json"
    result = runner.invoke(
        main,
        ["run", _cli_flow(tmp_path, hits), "--junit", str(junit), "--json", str(log)],
    )
    assert result.exit_code == 0, result.output
    assert junit.read_text().startswith("<?xml")
    assert json.loads(log.read_text())["success"] is True


@pytest.mark.parametrize("option", ["--junit", "--json"])
def test_cli_refuses_an_unwritable_report_before_running(
    runner, tmp_path, hits, option
):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(
        main, ["run", _cli_flow(tmp_path, hits), option, str(blocker / "out")]
    )
    assert result.exit_code == 2, result.output
    assert option in result.output and "cannot create the directory" in result.output
    assert hits.paths() == []  # nothing was run


@pytest.mark.parametrize(
    ("headers", "path", "message"),
    [
        ({"X Bad": "v"}, 'nodes[0].headers["X Bad"]', "not a valid header name"),
        ({"": "v"}, 'nodes[0].headers[""]', "not a valid header name"),
        ({"X-A:": "v"}, 'nodes[0].headers["X-A:"]', "not a valid header name"),
        ({"X-Nl": "a\r\nInjected: 1"}, "nodes[0].headers.X-Nl", "line break"),
    ],
)
def test_bad_header_names_and_values_are_validation_errors(
    client, hits, headers, path, message
):
    flow = make_flow(hits, node("a", "/echo", headers=headers))
    body = client.post("/api/validate", json={"config": flow}).get_json()
    [error] = body["errors"]
    assert (error["path"], error["nodeId"]) == (path, "a")
    assert message in error["message"]


def test_unusual_but_valid_headers_pass(client, hits):
    headers = {"X-Tab": "a\tb", "X-Name": "zoë", "x_under.dot~": "{{ $guid }}"}
    flow = make_flow(hits, node("a", "/echo", headers=headers))
    flow["defaults"]["headers"] = {"Accept": "application/json"}
    assert client.post("/api/validate", json={"config": flow}).get_json()["valid"]


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


def test_cli_refuses_nan_in_a_flow_file_and_reads_var_nan_as_text(
    runner, tmp_path, hits
):
    path = tmp_path / "nan.json"
    path.write_text('{"name": "x", "variables": {"v": NaN}, "nodes": []}')
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "NaN is not JSON" in result.output
    flow = make_flow(hits, node("e", "/echo", "POST", body={"v": "{{ .vars.v }}"}))
    flow_path = tmp_path / "flow.json"
    flow_path.write_text(json.dumps(flow))
    log = tmp_path / "log.json"
    result = runner.invoke(
        main, ["run", str(flow_path), "--var", "v=NaN", "--json", str(log)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(log.read_text())["executionLog"][0]["request"]["body"] == {
        "v": "NaN"
    }


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("timeout", 1e12, "nodes[0].timeout"),
        ("delayMs", 1e300, "nodes[0].delayMs"),
        ("retry", {"count": 1, "intervalMs": 1e15}, "nodes[0].retry.intervalMs"),
    ],
)
def test_waits_too_long_to_run_are_validation_errors(client, hits, field, value, path):
    # They failed mid-run with "Internal error: OverflowError: timestamp out of range".
    flow = make_flow(hits, node("a", "/items", **{field: value}))
    body = assert_error(client.post("/api/execute", json={"config": flow}), 400)
    assert [e["path"] for e in body["errors"]] == [path]
    assert hits.paths() == []


def test_auto_step_delay_too_long_is_a_bad_option(client, hits):
    flow = make_flow(hits, node("a", "/items"))
    options = {"mode": "auto", "autoStepDelayMs": 1e12}
    body = assert_error(
        client.post("/api/execute", json={"config": flow, "options": options}), 400
    )
    assert body["errors"][0]["path"] == "options.autoStepDelayMs"


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
