"""Validations, conditions and operators."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest

from flowrun.engine import paths, schemas
from flowrun.engine.budget import Budget
from flowrun.engine.checks import compare, condition_holds, validate_response
from flowrun.engine.placeholders import Context, NodeResult
from flowrun.engine.run import EngineSettings
from flowrun.errors import BudgetExceeded

from . import streams
from .target import end_of, run_events, steps_of

BODY = {
    "id": 7,
    "price": 5.0,
    "active": True,
    "gone": None,
    "name": "apple pie",
    "tags": ["a", "b", 3],
    "meta": {"k": "v"},
    "count": "12",
}


def ctx(budget=None, **results):
    return Context(
        vars={"want": 7, "name": "apple", "env": "prod"},
        inputs={"choice": "yes"},
        results=results,
        node_ids=frozenset({"a", "b", "c", "later"}),
        budget=budget or Budget(),
    )


def check(validations, body=BODY, status=200, headers=None, ms=10.0, c=None):
    return validate_response(
        validations,
        status=status,
        headers=headers or {"x-rate-remaining": "42", "content-type": "x/json"},
        body=body,
        duration_ms=ms,
        ctx=c or ctx(),
    )


@pytest.mark.parametrize(
    ("op", "actual", "expected", "passed"),
    [
        ("equals", True, "true", True),
        ("equals", "true", True, True),
        ("equals", 5.0, "5", True),
        ("equals", 5, 5.0, True),
        ("equals", None, "null", True),
        ("equals", ["a", "b"], "a,b", True),
        ("equals", "a", "b", False),
        ("equals", 1, True, False),
        ("equals", {"a": 1}, {"a": 1}, True),
        ("equals", {"a": 1}, {"a": 2}, False),
        ("notEquals", {"a": 1}, {"a": 2}, True),
        ("notEquals", "x", "y", True),
        ("notEquals", 5, "5", False),
        ("greaterThan", 5, 4, True),
        ("greaterThan", "12", "9", True),
        ("greaterThan", 5, 5, False),
        ("lessThan", 5, "5.5", True),
        ("lessThan", "abc", 5, False),
        ("lessThan", 5, "abc", False),
        ("lessThan", True, 5, False),
        ("greaterThan", "1_000", 5, False),
        ("lessThan", "nan", 5, False),
        ("greaterThan", " 1e3 ", "999.5", True),
        ("greaterThanOrEqual", 5, 5, True),
        ("greaterThanOrEqual", 4.9, 5, False),
        ("lessThanOrEqual", "5", 5, True),
        ("lessThanOrEqual", 6, 5, False),
        ("contains", "apple pie", "pie", True),
        ("contains", "apple pie", "cake", False),
        ("contains", ["a", "b", 3], "3", True),
        ("contains", ["a", "b"], "c", False),
        ("contains", {"k": "v"}, "k", True),
        ("contains", {"k": "v"}, "v", False),
        ("matches", "apple pie", r"^app\w+ p", True),
        ("matches", "apple pie", r"^pie", False),
        ("matches", 12345, r"^\d+$", True),
        ("matches", "x", "(", False),
        ("exists", 1, True, True),
        ("exists", None, True, False),
        ("exists", None, False, True),
        ("exists", 0, False, False),
    ],
)
def test_compare(op, actual, expected, passed):
    assert compare(op, actual, expected)[0] is passed


def test_compare_absent_and_messages():
    from flowrun.engine.checks import _ABSENT

    assert compare("exists", _ABSENT, False) == (True, "does not exist")
    assert compare("exists", _ABSENT, True)[0] is False
    assert compare("equals", _ABSENT, "x") == (False, "not found")
    ok, msg = compare("equals", "a", "b")
    assert msg == "expected 'b', got 'a'"
    ok, msg = compare("greaterThan", 3, 5)
    assert msg == "expected > 5, got 3"


def test_status_validation_single_and_list():
    [r] = check([{"httpStatusCode": 201}], status=201)
    assert r == {
        "type": "httpStatusCode",
        "expected": 201,
        "actual": 201,
        "passed": True,
        "message": "status 201",
    }
    [r] = check([{"httpStatusCode": [200, 204]}], status=204)
    assert r["passed"]
    [r] = check([{"httpStatusCode": [200, 204]}], status=500)
    assert not r["passed"] and r["message"] == "status 500, expected 200 or 204"


def test_result_shape_for_jsonpath():
    [r] = check([{"jsonpath": ".id", "equals": 7}])
    assert set(r) >= {"type", "path", "expected", "actual", "passed", "message"}
    assert (r["type"], r["path"], r["expected"], r["actual"], r["passed"]) == (
        "jsonpath",
        ".id",
        7,
        7,
        True,
    )
    assert r["message"]


def test_several_operators_in_one_object_all_apply():
    results = check([{"jsonpath": ".id", "greaterThan": 5, "lessThan": 7}])
    assert [r["passed"] for r in results] == [True, False]
    assert "< 7" in results[1]["message"]


@pytest.mark.parametrize(
    ("spec", "passed"),
    [
        ({"jsonpath": ".id"}, True),
        ({"jsonpath": ".gone"}, False),
        ({"jsonpath": ".missing", "exists": False}, True),
        ({"jsonpath": ".gone", "exists": False}, True),
        ({"jsonpath": ".active", "equals": "true"}, True),
        ({"jsonpath": ".price", "equals": "5"}, True),
        ({"jsonpath": ".gone", "equals": "null"}, True),
        ({"jsonpath": ".tags", "equals": "a,b,3"}, True),
        ({"jsonpath": ".tags | length", "equals": 3}, True),
        ({"jsonpath": ".tags|length", "greaterThanOrEqual": "3"}, True),
        ({"jsonpath": ".count", "greaterThan": 11}, True),
        ({"jsonpath": ".tags", "contains": "b"}, True),
        ({"jsonpath": ".meta", "contains": "k"}, True),
        ({"jsonpath": ".name", "matches": "^apple"}, True),
        ({"jsonpath": ".id", "equals": "{{ .vars.want }}"}, True),
        ({"jsonpath": ".name", "contains": "{{ .vars.name }}"}, True),
        ({"jsonpath": ".missing", "equals": "x"}, False),
        ({"header": "X-Rate-Remaining", "equals": 42}, True),
        ({"header": "x-rate-remaining", "greaterThan": 40}, True),
        ({"header": "X-Nope", "exists": False}, True),
        ({"header": "X-Nope"}, False),
        ({"jq": '.tags | map(select(type == "string")) | length', "equals": 2}, True),
        ({"jq": '[.tags[] | select(. == "z")] | length', "equals": 0}, True),
        ({"jq": ".meta.k", "equals": "v"}, True),
        ({"jq": ".tags[]", "equals": "a,b,3"}, True),
        ({"jq": "empty"}, False),
        ({"jq": ".[", "exists": True}, False),
        ({"schema": {"type": "object", "required": ["id"]}}, True),
        (
            {
                "schema": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}},
                }
            },
            False,
        ),
        ({"schema": {"type": "nonsense"}}, False),
        ({"maxDurationMs": 500}, True),
        ({"maxDurationMs": 5}, False),
    ],
)
def test_validation_forms(spec, passed):
    results = check([spec])
    assert results, spec
    assert all(r["passed"] for r in results) is passed, results
    for r in results:
        assert {"type", "passed", "message"} <= set(r)


def test_schema_failure_says_where():
    [r] = check(
        [
            {
                "schema": {
                    "properties": {"meta": {"properties": {"k": {"type": "integer"}}}}
                }
            }
        ]
    )
    assert not r["passed"] and "at .meta.k" in r["message"]


def test_unresolvable_expected_value_fails_with_message():
    [r] = check([{"jsonpath": ".id", "equals": "{{ .vars.nope }}"}])
    assert not r["passed"] and "no variable named 'nope'" in r["message"]


# -- conditions ----------------------------------------------------------------

DONE = NodeResult("completed", {"ok": True, "n": 3}, {}, 200)
FAILED = NodeResult("failed", {"error": "bad"}, {}, 500)


@pytest.mark.parametrize(
    ("cond", "holds", "words"),
    [
        ({"source": "node", "node": "a", "httpStatusCode": 200}, True, ""),
        ({"source": "node", "node": "a", "statusCode": 200}, True, ""),
        ({"source": "node", "node": "a", "httpStatusCode": "200"}, True, ""),
        ({"node": "a", "httpStatusCode": 201}, False, "expected 201, got 200"),
        ({"node": "a", "field": ".ok", "equals": "true"}, True, ""),
        ({"node": "a", "field": ".n", "greaterThan": 2}, True, ""),
        ({"node": "a", "field": ".n", "lessThan": 2}, False, "node 'a' field .n"),
        ({"node": "a", "field": ".missing"}, False, "expected to exist"),
        ({"node": "a", "field": ".missing", "exists": False}, True, ""),
        ({"node": "b", "httpStatusCode": 500}, True, ""),
        ({"node": "b", "field": ".error", "equals": "bad"}, True, ""),
        ({"node": "c", "httpStatusCode": 200}, False, "node 'c' was skipped"),
        ({"node": "later", "httpStatusCode": 200}, False, "node 'later' has not run"),
        ({"node": "ghost", "httpStatusCode": 200}, False, "node 'ghost'"),
        ({"source": "variable", "variable": "env", "equals": "prod"}, True, ""),
        ({"variable": "env", "equals": "dev"}, False, "variable 'env'"),
        ({"variable": "want", "equals": "7"}, True, ""),
        ({"variable": "nope"}, False, "variable 'nope'"),
        ({"variable": "nope", "exists": False}, True, ""),
        ({"source": "input", "input": "choice", "equals": "yes"}, True, ""),
        ({"source": "input", "input": "choice", "notEquals": "yes"}, False, "input"),
        ({"variable": "env", "equals": "{{ .vars.env }}"}, True, ""),
        ({"variable": "env", "equals": "prod", "contains": "x"}, False, "contain"),
    ],
)
def test_conditions(cond, holds, words):
    result = condition_holds(cond, ctx(a=DONE, b=FAILED, c=NodeResult("skipped")))
    assert result[0] is holds, result
    assert words in result[1]


# -- against the real target ------------------------------------------------------


def test_validations_against_target(hits):
    doc = {
        "defaults": {"baseUrl": hits.url + "/demo"},
        "nodes": [
            {
                "id": "items",
                "name": "Items",
                "method": "GET",
                "url": "/items",
                "validations": [
                    {"httpStatusCode": 200},
                    {"jsonpath": ".items[0].name", "equals": "apple"},
                    {"jsonpath": ".items | length", "greaterThanOrEqual": 3},
                    {"header": "content-type", "contains": "json"},
                    {"jq": "[.items[].id] | min", "equals": 1},
                    {"schema": {"type": "object", "required": ["items", "count"]}},
                    {"maxDurationMs": 5000},
                ],
            },
            {
                "id": "check",
                "name": "Check",
                "method": "GET",
                "url": "/items",
                "validations": [
                    {"jsonpath": ".count", "equals": "{{ .responses.items.count }}"},
                    {"jsonpath": ".items[0].name", "equals": "banana"},
                ],
            },
        ],
    }
    events = run_events(doc)
    first, second = steps_of(events)
    assert first["status"] == "completed"
    assert all(v["passed"] for v in first["validations"])
    assert len(first["validations"]) == 7
    assert second["status"] == "failed"
    assert [v["passed"] for v in second["validations"]] == [True, False]
    assert second["error"] == (
        "Validation failed: .items[0].name: expected 'banana', got 'apple'"
    )


def test_condition_skip_event_and_legacy_condition(hits):
    doc = {
        "variables": {"env": "prod"},
        "defaults": {"baseUrl": hits.url + "/demo"},
        "nodes": [
            {
                "id": "bad",
                "name": "Bad",
                "method": "GET",
                "url": "/status/404",
                "validations": [{"httpStatusCode": 404}],
            },
            {
                "id": "when-404",
                "name": "Runs after 404",
                "method": "GET",
                "url": "/items",
                "condition": {"source": "node", "node": "bad", "statusCode": 404},
            },
            {
                "id": "dev-only",
                "name": "Dev only",
                "method": "GET",
                "url": "/items?dev",
                "conditions": [
                    {"source": "variable", "variable": "env", "equals": "dev"}
                ],
            },
            {
                "id": "after-skip",
                "name": "After skip",
                "method": "GET",
                "url": "/items?after",
                "conditions": [{"node": "dev-only", "httpStatusCode": 200}],
            },
        ],
    }
    events = run_events(doc)
    steps = steps_of(events)
    assert [s["status"] for s in steps] == [
        "completed",
        "completed",
        "skipped",
        "skipped",
    ]
    assert steps[2]["skipReason"] == "variable 'env': expected 'dev', got 'prod'"
    assert "node 'dev-only' was skipped" in steps[3]["skipReason"]
    assert [n for n, _ in events].count("step_start") == 2
    end = end_of(events)
    assert (end["success"], end["stepsExecuted"], end["stepsSkipped"]) == (True, 2, 2)
    assert hits.paths() == ["/demo/status/404", "/demo/items"]


def test_condition_uses_failed_nodes_response(hits):
    doc = {
        "defaults": {"baseUrl": hits.url + "/demo"},
        "nodes": [
            {"id": "boom", "name": "Boom", "method": "GET", "url": "/status/503"},
            {
                "id": "recover",
                "name": "Recover",
                "method": "GET",
                "url": "/items",
                "conditions": [
                    {"node": "boom", "httpStatusCode": 503},
                    {"node": "boom", "field": ".status", "equals": 503},
                ],
            },
        ],
    }
    events = run_events(doc, continue_on_failure=True)
    steps = steps_of(events)
    assert [s["status"] for s in steps] == ["failed", "completed"]
    assert end_of(events)["stepsFailed"] == 1


@pytest.mark.parametrize(
    ("spec", "passed"),
    [
        ({"httpStatusCode": "{{ .vars.want }}"}, False),
        ({"httpStatusCode": "{{ .vars.code }}"}, True),
        ({"httpStatusCode": ["{{ .vars.code }}", 204]}, True),
        ({"maxDurationMs": "500"}, True),
        ({"maxDurationMs": "{{ .vars.fast }}"}, False),
        ({"maxDurationMs": "soon"}, False),
    ],
)
def test_placeholders_and_strings_in_status_and_duration(spec, passed):
    c = ctx()
    c.vars.update(code=200, fast=1)
    [r] = check([spec], c=c)
    assert r["passed"] is passed, r


def test_condition_with_a_bad_path_is_false_with_reason():
    holds, reason = condition_holds({"node": "a", "field": ".x["}, ctx(a=DONE))
    assert holds is False and "bad path" in reason


def test_a_backtracking_regex_fails_the_step_instead_of_freezing_the_worker(hits):
    # ^(a|aa)+$ on 40 a's and a b backtracks for minutes (in `re` and in `regex`);
    # under gevent that would freeze every stream of the worker. The search gives
    # up when the step's CPU budget ends.
    body = "a" * 40 + "b"
    doc = {
        "nodes": [
            {
                "id": "t",
                "name": "Text",
                "method": "GET",
                "url": f"{hits.url}/demo/text?body={body}",
                "validations": [{"jsonpath": ".", "matches": "^(a|aa)+$"}],
            }
        ]
    }
    events = run_events(doc, settings=EngineSettings(step_cpu_s=0.5))
    (step,) = steps_of(events)
    assert step["status"] == "failed"
    assert step["error"] == (
        "Validation failed: .: /^(a|aa)+$/ gave up on this value (a pattern that "
        "backtracks heavily, like (a+)+$?): the step used up its CPU budget of "
        "0.5s (FLOWRUN_STEP_CPU_S, shared by its conditions, placeholders and "
        "validations)"
    )
    assert end_of(events)["success"] is False


# -- schema patterns have a time limit ------------------------------------------

# ^(a|a)+$ on a run of a's and a "!" backtracks for minutes in `re` and in `regex`
SLOW = "^(a|a)+$"
NO_MATCH = "a" * 30 + "!"


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ({"pattern": SLOW}, NO_MATCH),
        ({"properties": {"x": {"pattern": SLOW}}}, {"x": NO_MATCH}),
        ({"propertyNames": {"pattern": SLOW}}, {NO_MATCH: 1}),
        ({"patternProperties": {SLOW: {}}}, {NO_MATCH: 1}),
        # additionalProperties searches the patternProperties again, possibly first
        (
            {"additionalProperties": False, "patternProperties": {SLOW: {}}},
            {NO_MATCH: 1},
        ),
        # and so does unevaluatedProperties, also through subschemas
        (
            {"unevaluatedProperties": False, "patternProperties": {SLOW: {}}},
            {NO_MATCH: 1},
        ),
        (
            {
                "unevaluatedProperties": False,
                "allOf": [{"patternProperties": {SLOW: {}}}],
            },
            {NO_MATCH: 1},
        ),
        (
            {
                "$schema": "https://json-schema.org/draft/2019-09/schema",
                "unevaluatedProperties": False,
                "patternProperties": {SLOW: {}},
            },
            {NO_MATCH: 1},
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "pattern": SLOW},
            NO_MATCH,
        ),
    ],
)
def test_a_backtracking_schema_pattern_fails_the_validation_in_time(schema, body):
    began = time.monotonic()
    [r] = check([{"schema": schema}], body=body, c=ctx(budget=Budget(0.3)))
    assert time.monotonic() - began < 10
    assert r["passed"] is False
    assert r["message"] == (
        f"schema: /{SLOW}/ gave up on {NO_MATCH!r}: the step used up its CPU "
        "budget of 0.3s (FLOWRUN_STEP_CPU_S, shared by its conditions, "
        "placeholders and validations) (a pattern that backtracks heavily, like "
        "(a+)+$?)"
    )


def test_the_time_limit_is_for_all_the_patterns_of_a_schema_together():
    # 50 values that each take just under the limit would otherwise add up
    began = time.monotonic()
    [r] = check(
        [{"schema": {"items": {"pattern": SLOW}}}],
        body=[NO_MATCH] * 50,
        c=ctx(budget=Budget(0.3)),
    )
    assert time.monotonic() - began < 10
    assert r["passed"] is False and "FLOWRUN_STEP_CPU_S" in r["message"]


def test_a_backtracking_schema_pattern_fails_the_step_not_the_worker(hits):
    doc = {
        "nodes": [
            {
                "id": "e",
                "name": "Echo",
                "method": "POST",
                "url": f"{hits.url}/demo/echo",
                "body": {"name": NO_MATCH},
                "validations": [
                    {
                        "schema": {
                            "properties": {
                                "json": {"properties": {"name": {"pattern": SLOW}}}
                            }
                        }
                    }
                ],
            }
        ]
    }
    began = time.monotonic()
    events = run_events(doc, settings=EngineSettings(step_cpu_s=0.3))
    assert time.monotonic() - began < 10
    (step,) = steps_of(events)
    assert step["status"] == "failed"
    assert f"/{SLOW}/ gave up on {NO_MATCH!r}" in step["error"]


STOCK = {
    cls.ID_OF(cls.META_SCHEMA): cls
    for cls in (
        jsonschema.Draft3Validator,
        jsonschema.Draft4Validator,
        jsonschema.Draft6Validator,
        jsonschema.Draft7Validator,
        jsonschema.Draft201909Validator,
        jsonschema.Draft202012Validator,
    )
}


def _plain_message(schema, body):
    """What the validation says without bounds: jsonschema's own classes."""
    cls = STOCK.get(schema.get("$schema"), jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(cls(schema).iter_errors(body))
    if error is None:
        return True, "body matches the schema"
    return (
        False,
        f"schema: {error.message} at {paths.render(list(error.absolute_path))}",
    )


DRAFT2019 = "https://json-schema.org/draft/2019-09/schema"


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ({"pattern": "^a+$"}, "aa"),
        ({"pattern": "^a+$"}, "aab"),
        ({"pattern": "b"}, 5),
        ({"items": {"pattern": "^[a-z]+$"}}, ["ok", "Not ok", "fine"]),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ok": 1, "NO": 2}),
        ({"patternProperties": {"^x": {"type": "integer"}}}, {"xa": 1, "xb": "s"}),
        ({"patternProperties": {"^x": {"type": "integer"}}}, {"xa": 1, "y": "s"}),
        (
            {
                "properties": {"y": {}},
                "patternProperties": {"^x": {}, "^w": {}},
                "additionalProperties": False,
            },
            {"xa": 1, "y": 2, "z": 3, "q": 4},
        ),
        (
            {
                "properties": {"y": {}},
                "patternProperties": {"^x": {}},
                "additionalProperties": False,
            },
            {"xa": 1, "y": 2, "z": 3},
        ),
        (
            {"properties": {"y": {}}, "additionalProperties": False},
            {"x": 1, "y": 2, "z": 3},
        ),
        ({"properties": {"y": {}}, "additionalProperties": False}, {"y": 2}),
        (
            {
                "patternProperties": {"^x": {}},
                "additionalProperties": {"type": "string"},
            },
            {"xa": 1, "b": 2},
        ),
        ({"additionalProperties": {"type": "string"}}, [1]),
        (
            {"patternProperties": {"^x": {}}, "unevaluatedProperties": False},
            {"xa": 1, "b": 2},
        ),
        ({"patternProperties": {"^x": {}}, "unevaluatedProperties": False}, {"xa": 1}),
        (
            {
                "patternProperties": {"^x": {}},
                "unevaluatedProperties": {"type": "string", "minLength": 3},
            },
            {"xa": 1, "b": 2, "c": "long"},
        ),
        (
            {
                "$defs": {"x": {"patternProperties": {"^x": {}}}},
                "allOf": [{"$ref": "#/$defs/x"}],
                "anyOf": [{"properties": {"a": {}}}, {"required": ["q"]}],
                "if": {"required": ["a"]},
                "then": {"properties": {"t": {}}},
                "else": {"properties": {"e": {}}},
                "dependentSchemas": {"a": {"properties": {"d": {}}}},
                "properties": {"p": {}},
                "additionalProperties": {"type": "integer"},
                "unevaluatedProperties": False,
            },
            {"xa": 1, "a": 2, "t": 3, "e": 4, "d": 5, "p": 6, "z": "s"},
        ),
        (
            {
                "$schema": DRAFT2019,
                "$defs": {"x": {"patternProperties": {"^x": {}}}},
                "allOf": [{"$ref": "#/$defs/x"}],
                "properties": {"p": {}},
                "unevaluatedProperties": False,
            },
            {"xa": 1, "p": 2, "z": 3},
        ),
        (
            {
                "$schema": DRAFT2019,
                "allOf": [{"additionalProperties": True}],
                "unevaluatedProperties": False,
            },
            {"a": 1},
        ),
        (
            {
                "$schema": "http://json-schema.org/draft-04/schema#",
                "patternProperties": {"^x": {"type": "string"}},
                "additionalProperties": False,
            },
            {"xa": 1, "b": 2},
        ),
    ],
)
def test_ordinary_schema_patterns_behave_as_jsonschema_does(schema, body):
    [r] = check([{"schema": schema}], body=body)
    assert (r["passed"], r["message"]) == _plain_message(schema, body)


def test_flow_validation_does_not_run_schema_patterns(client):
    # /api/validate checks the schema (its patterns compile: no search, no backtracking)
    doc = {
        "nodes": [
            {
                "id": "a",
                "name": "A",
                "method": "GET",
                "url": "http://127.0.0.1:9/x",
                "validations": [
                    {
                        "schema": {
                            "$id": NO_MATCH,
                            "pattern": SLOW,
                            "patternProperties": {SLOW: {}},
                        }
                    }
                ],
            }
        ]
    }
    began = time.monotonic()
    resp = client.post("/api/validate", json={"config": doc})
    assert time.monotonic() - began < 10
    assert resp.status_code == 200 and resp.get_json()["valid"] is True, resp.get_json()


def test_a_schema_ref_to_a_url_is_not_fetched(hits):
    # jsonschema would fetch it with urllib: past the network guard, no timeout
    [r] = check([{"schema": {"$ref": f"{hits.url}/demo/items?run=ref"}}])
    assert r["passed"] is False and "cannot resolve $ref" in r["message"]
    assert hits.paths() == []


def test_a_schema_ref_within_the_schema_still_resolves():
    schema = {
        "$defs": {"id": {"type": "integer"}},
        "properties": {"id": {"$ref": "#/$defs/id"}},
    }
    [r] = check([{"schema": schema}])
    assert r["passed"] is True, r
    [r] = check([{"schema": {"$ref": "#/$defs/nope"}}])
    assert r["passed"] is False and "cannot resolve $ref" in r["message"]


class SearchesCounted(Budget):
    """A budget that counts the searches made through it."""

    __slots__ = ("searches",)

    def __init__(self):
        super().__init__()
        self.searches = 0

    def search(self, rx, text):
        self.searches += 1
        return super().search(rx, text)


@pytest.mark.parametrize(
    "schema, body",
    [
        ({"pattern": "a"}, "a"),
        ({"patternProperties": {"^a": {}}}, {"ab": 1}),
        ({"patternProperties": {"^a": {}}, "additionalProperties": False}, {"ab": 1}),
        ({"patternProperties": {"^a": {}}, "additionalProperties": {}}, {"ab": 1}),
        (
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "patternProperties": {"^a": {}},
                "unevaluatedProperties": False,
            },
            {"ab": 1},
        ),
        (
            {
                "$schema": "https://json-schema.org/draft/2019-09/schema",
                "patternProperties": {"^a": {}},
                "unevaluatedProperties": False,
            },
            {"ab": 1},
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "pattern": "a"},
            "a",
        ),
        (
            {
                "$schema": "http://json-schema.org/draft-04/schema#",
                "patternProperties": {"^a": {}},
                "additionalProperties": False,
            },
            {"ab": 1},
        ),
        (
            {"$schema": "http://json-schema.org/draft-03/schema#", "pattern": "a"},
            "a",
        ),
        # a subschema naming its draft, and a meta-schema, are bounded too
        (
            {
                "properties": {
                    "x": {
                        "$schema": "http://json-schema.org/draft-07/schema#",
                        "pattern": "a",
                    }
                }
            },
            {"x": "a"},
        ),
        (
            {"$ref": "https://json-schema.org/draft/2020-12/schema"},
            {"$anchor": "a"},
        ),
    ],
)
def test_every_pattern_search_of_a_schema_goes_through_the_budget(schema, body):
    # A search that did not (jsonschema's own `re`) could not be stopped.
    budget = SearchesCounted()
    assert schemas.first_error(schema, body, budget) is None
    assert budget.searches >= 1


def test_validation_results_quote_a_huge_body_only_in_part(client, hits):
    size = 300_000
    flow = streams.make_flow(
        hits,
        streams.node(
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
    _, events = streams.run_events(client, flow)
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
    flow = streams.make_flow(
        hits,
        streams.node(
            "one", "/items/1", validations=[{"jsonpath": ".name", "equals": "pear"}]
        ),
    )
    _, events = streams.run_events(client, flow)
    step = next(data for name, data in events if name == "step")
    assert step["validations"][0]["message"] == ".name: expected 'pear', got 'apple'"
    assert step["validations"][0]["actual"] == "apple"


# -- one CPU budget per step -------------------------------------------------------

SLOW_TEXT = "a" * 40 + "b"  # ^(a|aa)+$ backtracks for minutes on it


def _budget_flow(hits, **node):
    return {
        "nodes": [
            {
                "id": "slow",
                "name": "Slow",
                "method": "POST",
                "url": f"{hits.url}/demo/echo",
                "body": {"s": SLOW_TEXT},
                **node,
            }
        ]
    }


def _slow_schema(i):
    return {
        "schema": {
            "properties": {"json": {"properties": {"s": {"pattern": SLOW + "|" * i}}}}
        }
    }


@pytest.mark.parametrize(
    "node",
    [
        # each used to stop after 1 s on its own: 40 s in one step
        {"validations": [{"jsonpath": ".json.s", "matches": "^(a|aa)+$"}] * 40},
        {"validations": [_slow_schema(i) for i in range(8)]},
        {
            "conditions": [{"variable": "s", "matches": "^(a|aa)+$"}] * 40,
            "validations": [],
        },
        {"validations": [{"jq": "last(range(1e9))"}] * 3},
    ],
    ids=["matches", "schema-patterns", "conditions", "jq"],
)
def test_a_steps_checks_share_one_budget(hits, node):
    began = time.monotonic()
    events = run_events(
        {**_budget_flow(hits, **node), "variables": {"s": SLOW_TEXT}},
        settings=EngineSettings(step_cpu_s=0.5),
    )
    took = time.monotonic() - began
    (step,) = steps_of(events)
    assert step["status"] == "failed", step
    assert "CPU budget of 0.5s (FLOWRUN_STEP_CPU_S" in step["error"]
    # the check that ran out says so; the ones after it did not run
    failed = [v for v in step["validations"] if not v["passed"]]
    assert len(failed) <= 1 and len(step["validations"]) < 8
    assert took < 10


def test_many_conditions_fail_the_step_when_the_budget_ends():
    c = ctx(budget=Budget(0.2))
    cond = {"variable": "name", "matches": "^(a|aa)+$"}
    c.vars["name"] = SLOW_TEXT
    with pytest.raises(BudgetExceeded, match=r"^/\^\(a\|aa\)\+\$/ gave up on this"):
        for _ in range(40):
            condition_holds(cond, c)


def test_placeholders_count_against_the_budget(hits):
    # 20,000 substitutions of a 1,000-character variable: 20 MB of body, built
    # well past a budget of a millisecond
    doc = _budget_flow(hits, body={"parts": ["{{ .vars.big }}"] * 20_000})
    doc["variables"] = {"big": "x" * 1000}
    events = run_events(doc, settings=EngineSettings(step_cpu_s=0.001))
    (step,) = steps_of(events)
    assert step["status"] == "failed"
    assert step["error"].startswith("the step used up its CPU budget of 0.001s")
    assert step["response"] is None  # nothing was sent


def test_cheap_checks_do_not_notice_the_budget(hits):
    events = run_events(
        _budget_flow(
            hits,
            validations=[
                {"httpStatusCode": 200},
                {"jsonpath": ".json.s", "matches": "^a+b$"},
                {"schema": {"required": ["json"]}},
            ],
        ),
        settings=EngineSettings(step_cpu_s=0.5),
    )
    (step,) = steps_of(events)
    assert step["status"] == "completed", step


# -- uniqueItems and depth ---------------------------------------------------------


@pytest.mark.parametrize(
    "items",
    [
        [1, 1.0],
        [True, 1],
        [False, 0],
        [None, None],
        ["1", 1],
        [{"a": 1, "b": [1]}, {"b": [1.0], "a": 1}],
        [{"a": True}, {"a": 1}],
        [[1, 2], [2, 1]],
        [[1, [True]], [1.0, [True]]],
        [{}, []],
        [{"a": {"b": None}}, {"a": {"b": None}}],
        [1e20, 100000000000000000000],
    ],
)
def test_unique_items_compares_as_jsonschema_does(items):
    schema = {"uniqueItems": True}
    [r] = check([{"schema": schema}], body=items)
    assert (r["passed"], r["message"]) == _plain_message(schema, items)


def test_unique_items_on_thousands_of_objects_is_quick():
    # jsonschema compares every pair of objects: 5,000 of them took ~20 s
    body = [{"id": i, "tags": ["a", i]} for i in range(5000)]
    began = time.monotonic()
    [r] = check([{"schema": {"uniqueItems": True}}], body=body)
    assert r["passed"] is True
    [r] = check(
        [{"schema": {"uniqueItems": True}}], body=[*body, {"tags": ["a", 7.0], "id": 7}]
    )
    assert r["passed"] is False, r["message"]
    assert time.monotonic() - began < 5


RECURSIVE = {
    "$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}},
    "$ref": "#/$defs/n",
}


def _nested(depth):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_recursive_schema_on_a_deep_body_fails_with_a_message(hits):
    schema = {
        "$defs": RECURSIVE["$defs"],
        "properties": {"json": RECURSIVE["$defs"]["n"]},
    }
    doc = _budget_flow(hits, body=_nested(90), validations=[{"schema": schema}])
    [r] = check([{"schema": RECURSIVE}], body=_nested(400))
    assert r == {
        "type": "schema",
        "expected": RECURSIVE,
        "passed": False,
        "message": "schema: references followed more than 100 levels deep (a "
        "recursive schema on a body nested that deeply)",
    }
    # within the bound it is checked as ever
    [r] = check([{"schema": RECURSIVE}], body=_nested(90))
    assert r["passed"] is True
    (step,) = steps_of(run_events(doc))
    assert step["status"] == "completed", step


def test_a_schema_that_refers_to_itself_for_ever_fails_with_a_message():
    schema = {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    [r] = check([{"schema": schema}], body=1)
    assert r["passed"] is False and "more than 100 levels deep" in r["message"]


def test_a_pattern_too_long_to_compile_is_refused():
    [r] = check([{"schema": {"pattern": "a" * 3000}}], body="a")
    assert r["message"] == (
        "invalid schema: a pattern of 3000 characters, more than the 2000 allowed"
    )
    passed, message = compare("matches", "a", "a" * 3000)
    assert passed is False and "more than the 2000 allowed" in message
