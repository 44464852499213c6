"""A forced stop aborts the request in flight; a stop answered 202 always ends the
run ``interrupted``, and one that comes too late is a 409."""

from __future__ import annotations

import threading

import pytest

from flowrun.engine.controls import Controls
from flowrun.engine.flow import normalize
from flowrun.engine.run import Run

from .streams import assert_error, make_flow, node, run_events
from .test_control import start, workers  # noqa: F401 - the fixture
from .waits import wait_until

ABORTED = "Stopped now: the request in flight was aborted"


def held_flow(hits, key):
    """A flow whose first request the target holds until ``key`` is released."""
    return make_flow(
        hits,
        node("held", f"/items?hold={key}", timeout=60),
        node("next", "/items"),
    )


def test_a_forced_stop_aborts_the_request_in_flight(client, hits):
    stops = []

    def on_event(name, data, resp):
        if name == "step_start":
            url = f"/api/executions/{data['executionId']}/stop"
            wait_until(lambda: hits.held("f1"), message="the request to be held")
            stops.append(client.post(url))  # graceful: the step goes on
            stops.append(client.post(url, json={"force": True}))

    try:
        _, events = run_events(client, held_flow(hits, "f1"), on_event=on_event)
    finally:
        hits.release("f1")
    assert [s.status_code for s in stops] == [202, 202]
    step = next(d for n, d in events if n == "step")
    assert step["status"] == "failed" and step["error"] == ABORTED
    end = events[-1][1]
    assert end["interrupted"] is True and end["success"] is False
    assert end["notRun"] == ["next"]
    detail = client.get(f"/api/executions/{end['executionId']}").get_json()
    assert detail["status"] == "interrupted"
    assert [s["status"] for s in detail["steps"]] == ["failed", "not_run"]
    assert detail["steps"][0]["error"] == ABORTED


def test_a_forced_stop_through_the_other_worker(workers, hits):  # noqa: F811
    a, b = workers
    eid, reader = start(a, held_flow(hits, "f2"))
    try:
        reader.wait_for("step_start")
        wait_until(lambda: hits.held("f2"), message="the request to be held")
        resp = b.test_client().post(f"/api/executions/{eid}/stop", json={"force": True})
        assert resp.status_code == 202
        step = reader.wait_for("step")[1]
        end = reader.wait_for("end")[1]
    finally:
        hits.release("f2")
    assert step["error"] == ABORTED
    assert end["interrupted"] is True and end["notRun"] == ["next"]


@pytest.mark.parametrize("force", ["yes", 1, None])
def test_force_must_be_true_or_false(client, force):
    resp = client.post("/api/executions/exec-0-none/stop", json={"force": force})
    body = assert_error(resp, 400)
    assert body["errors"][0]["path"] == "force"


def test_a_stop_that_comes_after_the_end_was_decided_is_refused(hits):
    controls = Controls()
    flow = normalize(make_flow(hits, node("only", "/items")))
    events = Run(flow, controls=controls).events()
    names = [next(events).name for _ in range(3)]  # start, step_start, step
    assert names == ["start", "step_start", "step"]
    end = next(events)  # the engine decides how the run ends, then says it
    assert end.name == "end" and end.interrupted is False
    assert controls.stop() is False
    assert controls.stop(force=True) is False


def test_a_stop_before_the_end_is_decided_ends_the_run_interrupted(hits):
    controls = Controls()
    flow = normalize(make_flow(hits, node("only", "/items")))
    events = Run(flow, controls=controls).events()
    for _ in range(3):
        next(events)
    assert controls.stop() is True
    end = next(events)
    assert end.interrupted is True and end.success is False
    assert controls.stop() is True  # it changes nothing: the run is interrupted


def test_every_stop_racing_the_end_is_202_and_interrupted_or_409(workers, hits):  # noqa: F811
    """Stops through the other worker just as a one-step run ends."""
    a, b = workers
    flow = make_flow(hits, node("only", "/items"))
    outcomes = []
    for _ in range(15):
        eid, reader = start(a, flow)
        reader.wait_for("step")
        resp = b.test_client().post(f"/api/executions/{eid}/stop")
        end = reader.wait_for("end")[1]
        reader.join(5)
        assert resp.status_code in (202, 409), resp.get_data(as_text=True)
        assert (resp.status_code == 202) == end["interrupted"], (end, resp.get_json())
        status = a.test_client().get(f"/api/executions/{eid}").get_json()["status"]
        assert status == ("interrupted" if end["interrupted"] else "completed")
        outcomes.append(resp.status_code)
    assert set(outcomes) <= {202, 409}


def test_a_stop_delivered_while_the_end_is_decided_waits_for_that_decision():
    """The stop's record was there when the end looked (its message came first):
    the stop is 202, as the run ends interrupted."""
    looking, answer = threading.Event(), threading.Event()

    class RecordedElsewhere(Controls):
        def external_stop(self):
            looking.set()
            answer.wait(10)
            return True  # the record of the stop being delivered

    controls = RecordedElsewhere()
    ended, stopped = [], []
    sealing = threading.Thread(target=lambda: ended.append(controls.seal()))
    sealing.start()
    assert looking.wait(10)
    stopping = threading.Thread(target=lambda: stopped.append(controls.stop()))
    stopping.start()
    stopping.join(0.5)  # a stop that did not wait would have answered by now
    answer.set()
    sealing.join(10)
    stopping.join(10)
    assert ended == [True] and stopped == [True]
