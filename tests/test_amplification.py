"""A placeholder used many times cannot build a request (or a check's value) past
FLOWRUN_MAX_REQUEST_BYTES: the substitution stops as soon as it gets there."""

from __future__ import annotations

import tracemalloc

import pytest

from flowrun.engine.run import EngineSettings

from .streams import make_flow, node
from .target import run_events, steps_of

BIG = "x" * 100_000
USES = 1000
LIMIT = 1_000_000


def amplified(target, url="/echo", **where):
    flow = make_flow(target, node("amp", url, "POST", **where))
    flow["variables"] = {"big": BIG}
    return flow


FORMS = {
    "typed values in a JSON body": {
        "body": {f"k{i}": "{{ .vars.big }}" for i in range(USES)}
    },
    "one string": {"body": "{{ .vars.big }}" * USES},
    "a header": {"headers": {"X-Big": "{{ .vars.big }}" * USES}},
    "the URL": {"url": "/echo?q=" + "{{ .vars.big }}" * USES},
    "a form body": {
        "body": {f"k{i}": "{{ .vars.big }}" for i in range(USES)},
        "bodyFormat": "form-urlencoded",
    },
}


@pytest.mark.parametrize("form", list(FORMS))
def test_an_amplified_request_fails_its_step_before_it_is_built(hits, form):
    settings = EngineSettings(max_request_bytes=LIMIT)
    tracemalloc.start()
    try:
        events = run_events(amplified(hits, **FORMS[form]), settings=settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (step,) = steps_of(events)
    assert step["status"] == "failed"
    assert step["error"].startswith("Request too large: substituting {{ .vars.big }}")
    assert step["error"].endswith("past FLOWRUN_MAX_REQUEST_BYTES (1000000 bytes)")
    assert hits.paths() == []  # nothing was sent
    # The whole request would be 100 MB: what was built stops near the limit.
    assert peak < 10 * LIMIT, peak
    assert len(step["substitutions"]) <= LIMIT // len(BIG) + 1


def test_a_request_just_under_the_limit_is_sent(hits):
    settings = EngineSettings(max_request_bytes=LIMIT)
    flow = amplified(hits, body={f"k{i}": "{{ .vars.big }}" for i in range(9)})
    (step,) = steps_of(run_events(flow, settings=settings))
    assert step["status"] == "completed", step["error"]
    assert hits.paths() == ["/demo/echo"]
    assert step["response"]["size"] > 900_000  # the echo of what was sent


def test_an_amplified_check_value_fails_that_check_only(hits):
    settings = EngineSettings(max_request_bytes=LIMIT)
    flow = amplified(
        hits,
        validations=[
            {"httpStatusCode": 200},
            {"jsonpath": ".method", "equals": "{{ .vars.big }}" * USES},
        ],
    )
    (step,) = steps_of(run_events(flow, settings=settings))
    status, amplified_check = step["validations"]
    assert status["passed"] is True
    assert amplified_check["passed"] is False
    assert amplified_check["message"].startswith("Value too large: substituting")


def test_an_amplified_condition_skips_with_the_reason(hits):
    settings = EngineSettings(max_request_bytes=LIMIT)
    flow = amplified(
        hits,
        conditions=[{"variable": "big", "equals": "{{ .vars.big }}" * USES}],
    )
    (step,) = steps_of(run_events(flow, settings=settings))
    assert step["status"] == "skipped"
    assert step["skipReason"].startswith("Value too large: substituting")
