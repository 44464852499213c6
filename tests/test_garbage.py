"""An ended run is freed as soon as it ends, not by the cyclic garbage collector.

A reference cycle through a run (say, its controls holding a way back to it) keeps
each ended run's whole graph, the responses it kept too, until a full collection.
Under a burst of runs that is more memory and full collections of hundreds of
milliseconds, during which no stream on the worker gets a turn.
"""

from __future__ import annotations

import gc
import warnings

from .streams import answering, login_with_prompt, make_flow, node, run_events
from .waits import wait_until


def _flowrun_garbage(app, work) -> list[str]:
    """The flowrun types ``work()`` left in reference cycles once its runs ended."""
    registry = app.extensions["flowrun"].registry
    _collect_others()
    # Held until the end, what exists now cannot turn into garbage meanwhile: an
    # earlier test's app, freed when its last thread ends, is not work()'s doing.
    before = gc.get_objects()
    flags = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds stays in gc.garbage
    try:
        work()
        wait_until(lambda: not registry.live, message="the runs' threads to end")
        gc.collect()
        return sorted(
            {
                f"{type(o).__module__}.{type(o).__qualname__}"
                for o in gc.garbage
                if type(o).__module__.startswith("flowrun")
            }
        )
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()
        del before
        _collect_others()  # not left for whichever test collects next


def _collect_others() -> None:
    """A full collection, unclosed sockets' warnings ignored: before the run, of
    what earlier tests left; after it, of that and the cycles already judged.

    A socket an earlier test left unclosed in a cycle warns when it is collected:
    that would fail this test, or the next one to collect, for what it did not do.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_a_streamed_run_leaves_no_cycles(app, client, hits):
    flow = make_flow(
        hits,
        node("items", "/items", validations=[{"httpStatusCode": 200}]),
        node("echo", "/echo?n={{ .responses.items.count }}"),
        node("missing", "/nowhere", validations=[{"httpStatusCode": 200}]),
    )

    def work():
        _, events = run_events(client, flow)
        name, end = events[-1]
        log = [(r["id"], r["status"], r["error"]) for r in end["executionLog"]]
        assert name == "end" and end["stepsExecuted"] == 3, log

    assert _flowrun_garbage(app, work) == []


def test_a_run_with_an_answered_prompt_leaves_no_cycles(app, client, hits):
    answers = []
    on_event = answering(client, answers, {"password": "secret"})

    def work():
        _, events = run_events(client, login_with_prompt(hits), on_event=on_event)
        assert events[-1][1]["success"] is True

    assert _flowrun_garbage(app, work) == []
    assert answers[0].status_code == 200


def test_a_run_served_in_its_request_leaves_no_cycles(app, client, hits):
    flow = make_flow(hits, node("items", "/items"), node("echo", "/echo?a=1"))

    def work():
        resp = client.post("/api/execute", json={"config": flow})
        assert resp.status_code == 200 and resp.get_json()["stepsExecuted"] == 2

    assert _flowrun_garbage(app, work) == []
