"""The engine: event stream, flow control, prompts, modes, cancellation, FlowSphere."""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid

import pytest

from flowrun.engine.controls import Controls
from flowrun.engine.flow import RunOptions, normalize
from flowrun.engine.run import EngineSettings, Run, new_execution_id

from .target import end_of, run_events, steps_of
from .waits import wait_until

EXEC_ID = re.compile(r"^exec-\d{13}-[a-z0-9]{9}$")
STEP_KEYS = {
    "executionId",
    "step",
    "stepIndex",
    "id",
    "name",
    "status",
    "method",
    "url",
    "request",
    "response",
    "validations",
    "substitutions",
    "duration",
    "attempts",
    "error",
    "skipReason",
    "launchBrowser",
}


def flow(target, *nodes, **defaults):
    defaults.setdefault("baseUrl", target.url + "/demo")
    return {"name": "Engine test", "defaults": defaults, "nodes": list(nodes)}


def get(id, url, **extra):
    return {"id": id, "name": f"Step {id}", "method": "GET", "url": url, **extra}


class Live:
    """A run in a thread; events arrive on a queue, as the web layer sees them."""

    def __init__(self, doc, controls=None, settings=None, **opts):
        self.controls = controls or Controls()
        self.run = Run(normalize(doc), RunOptions(**opts), self.controls, settings)
        self.queue: queue.Queue = queue.Queue()
        self.seen: list[tuple[str, dict, float]] = []
        self.thread = threading.Thread(target=self._go, daemon=True)
        self.thread.start()

    def _go(self):
        for event in self.run.events():
            self.queue.put((event.name, event.to_dict(), time.monotonic()))
        self.queue.put(None)

    def until(self, name, timeout=5.0, **match):
        """Return the data of the next event called ``name`` (matching ``match``)."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert item is not None, f"run ended before {name} {match}"
            self.seen.append(item)
            got, data, _ = item
            if got == name and all(data.get(k) == v for k, v in match.items()):
                return data

    def finish(self, timeout=5.0) -> list[tuple[str, dict]]:
        while True:
            item = self.queue.get(timeout=timeout)
            if item is None:
                break
            self.seen.append(item)
        self.thread.join(timeout)
        return [(n, d) for n, d, _ in self.seen]


# -- event stream --------------------------------------------------------------


def test_execution_id_format():
    ids = {new_execution_id() for _ in range(50)}
    assert len(ids) == 50 and all(EXEC_ID.match(i) for i in ids)
    assert abs(int(next(iter(ids))[5:18]) - time.time() * 1000) < 60_000


def test_success_run_event_order_and_fields(hits):
    doc = flow(
        hits,
        {
            "id": "login",
            "name": "Log in",
            "method": "post",
            "url": "/login",
            "body": {"username": "ada", "password": "secret"},
        },
        get(
            "me",
            "/me",
            headers={"Authorization": "Bearer {{ .responses.login.token }}"},
        ),
    )
    events = run_events(doc)
    names = [n for n, _ in events]
    assert names == ["start", "step_start", "step", "step_start", "step", "end"]
    eid = events[0][1]["executionId"]
    assert EXEC_ID.match(eid)
    assert all(d["executionId"] == eid for _, d in events)
    start = events[0][1]
    assert start["totalSteps"] == 2 and start["flowName"] == "Engine test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", start["startedAt"])
    assert events[1][1] == {
        "executionId": eid,
        "step": 1,
        "stepIndex": 0,
        "id": "login",
        "name": "Log in",
        "method": "POST",
        "url": hits.url + "/demo/login",
    }
    login, me = steps_of(events)
    assert set(login) == STEP_KEYS
    assert (login["step"], login["stepIndex"], login["status"]) == (1, 0, "completed")
    assert login["request"]["headers"] == {"Content-Type": "application/json"}
    assert login["request"]["body"] == {"username": "ada", "password": "secret"}
    resp = login["response"]
    assert set(resp) == {"status", "statusText", "headers", "body", "size", "truncated"}
    assert resp["status"] == 200 and resp["statusText"] == "OK"
    assert resp["body"]["token"].startswith("tok-")
    assert login["validations"] == [
        {
            "type": "httpStatusCode",
            "expected": 200,
            "actual": 200,
            "passed": True,
            "message": "status 200",
        }
    ]
    assert login["attempts"] == 1 and login["error"] is None
    assert 0 < login["duration"] < 5
    assert me["status"] == "completed" and me["response"]["body"]["id"] == 7
    end = end_of(events)
    assert set(end) == {
        "executionId",
        "success",
        "interrupted",
        "stepsExecuted",
        "stepsSkipped",
        "stepsFailed",
        "notRun",
        "duration",
        "executionLog",
    }
    assert (end["success"], end["interrupted"]) == (True, False)
    assert (end["stepsExecuted"], end["stepsSkipped"], end["stepsFailed"]) == (2, 0, 0)
    assert end["notRun"] == []
    assert [r["id"] for r in end["executionLog"]] == ["login", "me"]


def test_failure_ends_the_flow(hits):
    doc = flow(
        hits,
        get("a", "/items"),
        get("b", "/status/500"),
        get("c", "/items?c"),
        get("d", "/items?d"),
    )
    events = run_events(doc)
    names = [n for n, _ in events]
    assert names[-3:] == ["step", "error", "end"]
    b = steps_of(events)[-1]
    assert b["id"] == "b" and b["status"] == "failed"
    assert b["error"] == "Validation failed: status 500, expected 200"
    assert events[-2][1]["message"] == b["error"] and events[-2][1]["step"] == 2
    end = end_of(events)
    assert end["success"] is False and end["interrupted"] is False
    assert end["stepsFailed"] == 1 and end["stepsExecuted"] == 2
    assert end["notRun"] == ["c", "d"]
    assert hits.paths() == ["/demo/items", "/demo/status/500"]


def test_continue_on_failure(hits):
    doc = flow(hits, get("a", "/status/500"), get("b", "/items"))
    events = run_events(doc, continue_on_failure=True)
    assert [s["status"] for s in steps_of(events)] == ["failed", "completed"]
    assert [n for n, _ in events].count("error") == 1
    end = end_of(events)
    assert (end["success"], end["stepsFailed"], end["notRun"]) == (False, 1, [])


def test_start_step_skips_earlier_nodes(hits):
    doc = flow(hits, get("a", "/items?a"), get("b", "/items?b"), get("c", "/items"))
    events = run_events(doc, start_step=2)
    a, b, c = steps_of(events)
    assert a["status"] == b["status"] == "skipped"
    assert "startStep" in a["skipReason"]
    assert c["status"] == "completed"
    assert hits.paths() == ["/demo/items"] and hits.hits[0]["query"] == ""
    assert end_of(events)["stepsSkipped"] == 2


def test_launch_browser_resolved(hits):
    doc = flow(hits, get("auth", "/authorize", launchBrowser=".authorizeUrl"))
    [step] = steps_of(run_events(doc))
    assert step["launchBrowser"] == hits.url + "/demo/items?state=demo"


def test_default_validations_apply_to_nodes_without_their_own(hits):
    doc = flow(
        hits,
        get("a", "/status/404"),
        validations=[{"httpStatusCode": 404}],
    )
    assert steps_of(run_events(doc))[0]["status"] == "completed"


# -- prompts -------------------------------------------------------------------


PROMPTED = {
    "variables": {"user": "ada"},
    "nodes": [
        {
            "id": "login",
            "name": "Log in",
            "method": "POST",
            "url": "/login",
            "userPrompts": {"password": "Password for {{ .vars.user }}:"},
            "body": {
                "username": "{{ .vars.user }}",
                "password": "{{ .input.password }}",
            },
        },
        {
            "id": "again",
            "name": "Again",
            "method": "POST",
            "url": "/login",
            "userPrompts": {"password": "Password again:"},
            "body": {"username": "bob", "password": "{{ .input.password }}"},
        },
    ],
}


def prompted(target):
    doc = dict(PROMPTED)
    doc["defaults"] = {"baseUrl": target.url + "/demo"}
    return doc


def test_inputs_given_in_advance_send_no_prompt(hits):
    events = run_events(prompted(hits), inputs={"password": "secret"})
    assert "input_required" not in [n for n, _ in events]
    assert end_of(events)["success"] is True


def test_prompt_answered_from_another_thread(hits):
    controls = Controls()
    assert controls.answer(0, {"password": "secret"}) == "not_waiting"
    live = Live(prompted(hits), controls)
    asked = live.until("input_required")
    assert asked["step"] == 1 and asked["stepIndex"] == 0
    assert asked["name"] == "Log in"
    assert asked["prompts"] == {"password": "Password for ada:"}

    results = []

    def answer():
        wait_until(lambda: controls.waiting_input == 0, message="the prompt's wait")
        results.append(controls.answer(0, {"password": "secret"}))
        results.append(controls.answer(0, {"password": "again"}))

    threading.Thread(target=answer).start()
    step = live.until("step")
    assert step["status"] == "completed", step["error"]
    # the answer carries over: node 2 asks nothing
    events = live.finish()
    assert results == ["ok", "answered"]
    assert [n for n, _ in events].count("input_required") == 1
    assert end_of(events)["success"] is True


def test_prompt_with_missing_answer_fails_step(hits):
    controls = Controls()
    live = Live(prompted(hits), controls)
    live.until("input_required")
    wait_until(lambda: controls.waiting_input == 0, message="the prompt's wait")
    assert controls.answer(0, {"other": "x"}) == "ok"
    step = live.until("step")
    assert step["status"] == "failed" and "password" in step["error"]
    assert hits.paths() == []


def test_input_timeout_fails_step(hits):
    events = run_events(prompted(hits), settings=EngineSettings(input_timeout_s=0.2))
    step = steps_of(events)[0]
    assert step["status"] == "failed"
    assert step["error"] == (
        "No answer to the prompt within 0.2s (FLOWRUN_INPUT_TIMEOUT_S)"
    )
    assert [n for n, _ in events][-2:] == ["error", "end"]
    assert end_of(events)["notRun"] == ["again"]
    assert hits.paths() == []


# -- modes -------------------------------------------------------------------------


def test_step_mode_pauses_before_each_node(hits):
    doc = flow(hits, get("a", "/items?a"), get("b", "/items?b"))
    controls = Controls()
    live = Live(doc, controls, mode="step")
    paused = live.until("paused")
    assert (paused["step"], paused["stepIndex"], paused["resumeAt"]) == (1, 0, None)
    # Nothing marks a request that should not happen: give a run that did not
    # pause the time to send one.
    time.sleep(0.1)
    assert hits.paths() == []
    assert controls.resume() is True
    live.until("step", id="a")
    live.until("paused", stepIndex=1)
    assert len(hits.paths()) == 1
    assert controls.resume() is True
    events = live.finish()
    assert end_of(events)["success"] is True
    assert controls.resume() is False


def test_auto_mode_waits_between_steps(hits):
    doc = flow(hits, get("a", "/items?a"), get("b", "/items?b"))
    live = Live(doc, mode="auto", auto_step_delay_ms=150)
    paused = live.until("paused")
    assert paused["stepIndex"] == 1
    assert abs(paused["resumeAt"] - (time.time() * 1000 + 150)) < 100
    started = time.monotonic()
    live.until("step_start", stepIndex=1)
    assert time.monotonic() - started >= 0.1
    assert end_of(live.finish())["success"] is True


def test_auto_mode_resume_skips_the_wait(hits):
    doc = flow(hits, get("a", "/items?a"), get("b", "/items?b"))
    controls = Controls()
    live = Live(doc, controls, mode="auto", auto_step_delay_ms=5000)
    live.until("paused", stepIndex=1)
    started = time.monotonic()
    assert controls.resume() is True
    events = live.finish()
    assert time.monotonic() - started < 1
    assert end_of(events)["success"] is True


# -- cancellation -----------------------------------------------------------------


def slow_flow(target, ms=400):
    """Four steps; the target holds the second one's request under ``hold=s2``."""
    return flow(
        target,
        get("s1", "/slow?ms=10&n=1"),
        get("s2", f"/slow?ms={ms}&hold=s2&n=2"),
        get("s3", "/slow?ms=10&n=3"),
        get("s4", "/slow?ms=10&n=4"),
    )


class Sleepy(Controls):
    """Controls that say when the run starts a wait (a delay, or before a retry)."""

    def __init__(self):
        super().__init__()
        self.sleeping = threading.Event()

    def sleep(self, seconds):
        self.sleeping.set()
        return super().sleep(seconds)


def assert_interrupted(events, not_run, hits, sent):
    end = end_of(events)
    assert end["interrupted"] is True and end["success"] is False
    assert end["notRun"] == not_run
    assert [h["query"].rsplit("=", 1)[-1] for h in hits.hits] == sent


def test_stop_during_in_flight_step(hits):
    live = Live(slow_flow(hits))
    live.until("step_start", id="s2")
    wait_until(lambda: hits.held("s2"), message="s2's request")
    live.controls.stop()
    hits.release("s2")
    step = live.until("step")
    assert step["id"] == "s2"
    assert step["status"] == "completed" and step["response"]["status"] == 200
    assert step["response"]["body"] == {"slept_ms": 400}
    events = live.finish()
    assert [n for n, _ in events][-2:] == ["step", "end"]
    assert_interrupted(events, ["s3", "s4"], hits, ["1", "2"])
    assert len(hits.hits) == 2


def test_stop_during_prompt_wait(hits):
    doc = flow(
        hits, get("a", "/items?n=a"), get("b", "/items?n=b", userPrompts={"x": "X?"})
    )
    live = Live(doc)
    live.until("input_required")
    wait_until(lambda: live.controls.waiting_input == 1, message="the prompt's wait")
    live.controls.stop()
    events = live.finish()
    assert_interrupted(events, ["b"], hits, ["a"])
    assert live.controls.answer(1, {"x": "late"}) == "not_waiting"


def test_stop_during_delay(hits):
    doc = flow(hits, get("a", "/items?n=a"), get("b", "/items?n=b", delayMs=5000))
    live = Live(doc, Sleepy())
    wait_until(live.controls.sleeping.is_set, message="b's delay")
    started = time.monotonic()
    live.controls.stop()
    events = live.finish()
    assert time.monotonic() - started < 1
    assert_interrupted(events, ["b"], hits, ["a"])


def test_stop_during_step_mode_pause(hits):
    doc = flow(hits, get("a", "/items?n=a"), get("b", "/items?n=b"))
    live = Live(doc, mode="step")
    live.until("paused", stepIndex=0)
    live.controls.resume()
    live.until("paused", stepIndex=1)
    live.controls.stop()
    events = live.finish()
    assert_interrupted(events, ["b"], hits, ["a"])


def test_stop_during_retry_wait(hits):
    doc = flow(
        hits,
        get(
            "a",
            f"/flaky?key={uuid.uuid4().hex}&fail=9&n=a",
            retry={"count": 5, "intervalMs": 5000},
        ),
        get("b", "/items?n=b"),
    )
    live = Live(doc, Sleepy())
    wait_until(live.controls.sleeping.is_set, message="the wait before a retry")
    live.controls.stop()
    events = live.finish()
    assert steps_of(events)[0]["attempts"] == 1
    assert_interrupted(events, ["b"], hits, ["a"])


def test_stop_during_the_last_step_ends_interrupted(hits):
    # Nothing is left to skip, but the person asked to stop: `end` says so.
    doc = flow(
        hits, get("s1", "/slow?ms=10&n=1"), get("s2", "/slow?ms=300&hold=s2&n=2")
    )
    live = Live(doc)
    live.until("step_start", id="s2")
    wait_until(lambda: hits.held("s2"), message="s2's request")
    live.controls.stop()
    hits.release("s2")
    assert live.until("step")["status"] == "completed"
    events = live.finish()
    assert_interrupted(events, [], hits, ["1", "2"])


def test_a_run_nobody_stopped_is_not_interrupted(hits):
    end = end_of(run_events(flow(hits, get("s1", "/slow?ms=10&n=1"))))
    assert end["interrupted"] is False and end["success"] is True


def test_stop_before_start_runs_nothing(hits):
    controls = Controls()
    controls.stop()
    events = run_events(slow_flow(hits), controls=controls)
    assert [n for n, _ in events] == ["start", "end"]
    assert_interrupted(events, ["s1", "s2", "s3", "s4"], hits, [])


def test_external_stop_is_consulted_before_each_step(hits):
    class Remote(Controls):
        def external_stop(self):
            return len(hits.hits) >= 1

    events = run_events(slow_flow(hits), controls=Remote())
    assert_interrupted(events, ["s2", "s3", "s4"], hits, ["1"])


# -- FlowSphere compatibility --------------------------------------------------------


def test_flowsphere_flow_runs_unchanged(hits):
    doc = {
        "enableDebug": False,
        "variables": {"user": "ada"},
        "defaults": {
            "baseUrl": hits.url + "/demo/",
            "headers": {"Accept": "application/json"},
            "timeout": 10,
            "validations": [{"httpStatusCode": 200}],
        },
        "steps": [
            {
                "id": "login",
                "name": "Log in",
                "method": "post",
                "url": "/login",
                "prompts": {"password": "Password:"},
                "body": {
                    "username": "{{ .vars.user }}",
                    "password": "{{ .input.password }}",
                },
                "validations": [{"jsonpath": ".token", "exists": True}],
            },
            {
                "id": "create",
                "name": "Create item",
                "method": "POST",
                "url": "items",
                "headers": {"Authorization": "Bearer {{ .responses.login.token }}"},
                "body": {"name": "pear", "price": "{{ .responses.login.user.id }}"},
                "validations": [
                    {"httpStatusCode": 201},
                    {"jsonpath": ".price", "equals": "7"},
                ],
            },
            {
                "id": "list",
                "name": "List",
                "method": "GET",
                "url": "/items",
                "validations": [{"jsonpath": ".items | length", "greaterThan": 3}],
            },
            {
                "id": "gone",
                "name": "Not found is fine",
                "method": "GET",
                "url": "/items/99999",
                "skipDefaultValidations": True,
                "validations": [{"jsonpath": ".error", "exists": True}],
            },
            {
                "id": "only-if-created",
                "name": "Only if created",
                "method": "GET",
                "url": "/items/{{ .responses.create.id }}",
                "condition": {"source": "node", "node": "create", "statusCode": 201},
                "validations": [{"jsonpath": ".name", "equals": "pear"}],
            },
        ],
    }
    events = run_events(doc, inputs={"password": "secret"})
    steps = steps_of(events)
    assert [s["status"] for s in steps] == ["completed"] * 5, [
        s["error"] for s in steps
    ]
    create = steps[1]
    assert create["request"]["headers"]["Content-Type"] == "application/json"
    assert create["response"]["body"]["price"] == 7
    assert hits.paths()[:2] == ["/demo/login", "/demo/items"]


def test_node_validations_replace_defaults_even_when_failing(hits):
    doc = flow(
        hits,
        get("a", "/status/201", validations=[{"httpStatusCode": 201}]),
        get("b", "/status/201"),
        validations=[{"httpStatusCode": 200}],
    )
    steps = steps_of(run_events(doc))
    assert [s["status"] for s in steps] == ["completed", "failed"]
    assert len(steps[0]["validations"]) == 1


def test_answer_and_resume_right_after_the_event_are_not_lost(hits):
    """The web layer may answer as soon as it has the event, before ``ask()`` waits."""
    doc = prompted(hits)
    controls = Controls()
    run = Run(normalize(doc), RunOptions(mode="step"), controls)
    got = []
    for event in run.events():
        got.append(event.name)
        if event.name == "paused":
            got.append(controls.resume())
        if event.name == "input_required":
            got.append(controls.answer(event.stepIndex, {"password": "secret"}))
    assert got == [
        "start",
        "paused",
        True,
        "input_required",
        "ok",
        "step_start",
        "step",
        "paused",
        True,
        "step_start",
        "step",
        "end",
    ]


def test_an_internal_error_still_ends_the_stream(hits):
    doc = flow(hits, get("a", "/items", timeout="soon"), get("b", "/items"))
    events = run_events(doc)
    step = steps_of(events)[0]
    assert step["status"] == "failed"
    assert step["error"].startswith("Internal error: ValueError")
    assert [n for n, _ in events][-2:] == ["error", "end"]
    assert end_of(events)["notRun"] == ["b"]


def test_non_string_header_values_are_sent_as_text(hits):
    doc = flow(hits, get("a", "/echo", headers={"X-Count": 5, "X-On": True}))
    [step] = steps_of(run_events(doc))
    sent = step["response"]["body"]["headers"]
    assert (sent["X-Count"], sent["X-On"]) == ("5", "true")


def test_events_are_json_and_partial_inputs_prompt_only_the_rest(hits):
    import json

    doc = flow(
        hits,
        get(
            "a",
            "/items?u={{ .input.user }}",
            userPrompts={"user": "User?", "pin": "PIN for {{ .input.user }}?"},
            validations=[{"schema": {"type": "object"}}, {"jq": ".items[0]"}],
        ),
        get(
            "b",
            "/items",
            conditions=[{"node": "c", "httpStatusCode": 200}],
        ),
        get("c", "/items"),
    )
    controls = Controls()
    run = Run(normalize(doc), RunOptions(inputs={"user": "ada"}), controls)
    events = []
    for event in run.events():
        events.append((event.name, event.to_dict()))
        if event.name == "input_required":
            assert event.prompts == {"pin": "PIN for ada?"}
            assert controls.answer(0, {"pin": "1234"}) == "ok"
    json.dumps(events)
    a, b, c = steps_of(events)
    assert a["status"] == "completed" and a["url"].endswith("?u=ada")
    assert b["status"] == "skipped" and b["skipReason"] == "node 'c' has not run"
    assert c["status"] == "completed"


def test_prompt_refused_by_an_overriding_ask_stops_accepting_answers(hits):
    from flowrun.errors import InputMissing

    class NoPrompts(Controls):
        def ask(self, step_index, prompts, timeout):
            raise InputMissing("no prompts here")

    controls = NoPrompts()
    events = run_events(prompted(hits), controls=controls)
    assert steps_of(events)[0]["error"] == "no prompts here"
    assert controls.waiting_input is None
    assert controls.answer(0, {"password": "secret"}) == "not_waiting"


@pytest.mark.parametrize(
    "doc",
    [{"nodes": 5}, {"nodes": [{"conditions": 3}]}, {"steps": "x"}, {"nodes": [7]}],
)
def test_normalize_leaves_malformed_shapes_for_validation(doc):
    # normalize() runs before validation reports anything, so it must not crash.
    assert normalize(doc) == doc


def test_normalize_never_modifies_the_callers_document():
    doc = {
        "steps": [
            {
                "id": "a",
                "name": "A",
                "method": "get",
                "url": "http://x/",
                "prompts": {"p": "?"},
                "condition": {"node": "z", "statusCode": 200},
            },
            {
                "id": "b",
                "name": "B",
                "method": "post",
                "url": "http://x/",
                "conditions": [{"node": "a", "statusCode": 201}],
            },
        ]
    }
    before = json.dumps(doc, sort_keys=True)
    out = normalize(doc)
    assert json.dumps(doc, sort_keys=True) == before
    assert out["nodes"][0]["method"] == "GET"
    assert out["nodes"][0]["userPrompts"] == {"p": "?"}
    assert out["nodes"][0]["conditions"] == [{"node": "z", "httpStatusCode": 200}]
    assert out["nodes"][1]["conditions"] == [{"node": "a", "httpStatusCode": 201}]
