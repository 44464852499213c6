"""Flow validation: the JSON Schema, located errors with hints, warnings."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from flowrun.engine import validation
from flowrun.errors import FlowInvalid

from . import streams

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BASE = "http://127.0.0.1:8000/demo"


def node(id="a", **fields):
    return {"id": id, "name": id.title(), "method": "GET", "url": "/items", **fields}


def flow(*nodes, **top):
    doc = {"name": "t", "defaults": {"baseUrl": BASE}, "nodes": list(nodes)}
    doc.update(top)
    return doc


def post(id="a", **fields):
    return node(id, method="POST", **fields)


JSON_CT = {"Content-Type": "application/json"}
FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}


def only(doc, max_steps=1000):
    """The errors of ``doc``, as {path: message}."""
    errors, _ = validation.check(doc, max_steps)
    return {e["path"]: e["message"] for e in errors}


# (case, flow, path, message fragment); each flow breaks exactly one rule.
BAD = [
    ("not an object", [1, 2], "", "must be a JSON object"),
    ("no nodes", {"name": "x"}, "nodes", "missing required field 'nodes'"),
    ("empty nodes", flow(), "nodes", "has no nodes"),
    ("nodes not a list", {"nodes": {"a": 1}}, "nodes", "must be an array"),
    ("nodes a number", {"nodes": 5}, "nodes", "must be an array"),
    ("node not an object", flow("a"), "nodes[0]", "must be an object"),
    (
        "conditions not a list",
        flow(node(conditions=5)),
        "nodes[0].conditions",
        "must be an array",
    ),
    (
        "condition source not a string",
        flow(node(conditions=[{"source": {}, "node": "a"}])),
        "nodes[0].conditions[0].source",
        "is not one of",
    ),
    (
        "$schema of a schema validation not a string",
        flow(node(validations=[{"schema": {"$schema": 4}}])),
        "nodes[0].validations[0].schema.$schema",
        "must be a URL string",
    ),
    (
        "missing url",
        flow({"id": "a", "name": "A", "method": "GET"}),
        "nodes[0].url",
        "missing required field 'url'",
    ),
    ("bad id", flow(node("a b")), "nodes[0].id", "may only contain letters"),
    ("duplicate id", flow(node("a"), node("a")), "nodes[1].id", "duplicate id 'a'"),
    ("unknown method", flow(node(method="FETCH")), "nodes[0].method", "FETCH"),
    ("method not a string", flow(node(method=1)), "nodes[0].method", "unknown"),
    (
        "relative url without baseUrl",
        {"nodes": [node(url="/x")]},
        "nodes[0].url",
        "defaults.baseUrl is not set",
    ),
    (
        "unsupported scheme",
        flow(node(url="ftp://h/x")),
        "nodes[0].url",
        "unsupported URL scheme 'ftp'",
    ),
    (
        "baseUrl without a scheme",
        flow(node(), defaults={"baseUrl": "localhost:8000/api"}),
        "defaults.baseUrl",
        "is not an absolute URL",
    ),
    (
        "baseUrl with another scheme",
        flow(node(), defaults={"baseUrl": "file:///etc"}),
        "defaults.baseUrl",
        "unsupported URL scheme 'file'",
    ),
    ("timeout zero", flow(node(timeout=0)), "nodes[0].timeout", "must be > 0"),
    (
        "retry count too big",
        flow(node(retry={"count": 101})),
        "nodes[0].retry.count",
        "must be <= 100",
    ),
    (
        "retry unknown field",
        flow(node(retry={"count": 1, "delay": 5})),
        "nodes[0].retry",
        "unknown field 'delay'",
    ),
    (
        "header value not a string",
        flow(node(headers={"X-N": 5})),
        "nodes[0].headers.X-N",
        "must be a string",
    ),
    (
        "bad bodyFormat",
        flow(post(body={}, bodyFormat="xml")),
        "nodes[0].bodyFormat",
        "is not one of json, form-urlencoded, text",
    ),
    ("number body", flow(post(body=5)), "nodes[0].body", "not a number"),
    ("boolean body", flow(post(body=True)), "nodes[0].body", "not a boolean"),
    ("null body", flow(post(body=None)), "nodes[0].body", "not null"),
    (
        "string body not JSON under a JSON Content-Type",
        flow(post(headers=JSON_CT, body="{name: x}")),
        "nodes[0].body",
        "not valid JSON",
    ),
    (
        "JSON string body under a form Content-Type",
        flow(post(headers=FORM_CT, body='{"a": 1}')),
        "nodes[0].body",
        "JSON body with a form Content-Type",
    ),
    (
        "bodyFormat json under a form Content-Type",
        flow(post(headers=FORM_CT, body={"a": 1}, bodyFormat="json")),
        "nodes[0].bodyFormat",
        "bodyFormat is json",
    ),
    (
        "unknown node in a placeholder",
        flow(node("a"), node("b", url="/items/{{ .responses.nope.id }}")),
        "nodes[1].url",
        "no node has the id 'nope'",
    ),
    (
        "reference to a later node",
        flow(
            node("a", headers={"Authorization": "Bearer {{ .responses.b.token }}"}),
            node("b"),
        ),
        "nodes[0].headers.Authorization",
        "node 'b' runs later (nodes[1])",
    ),
    (
        "reference to itself in the body",
        flow(post("a", body={"x": ["{{ .headers.a.X-Id }}"]})),
        "nodes[0].body.x[0]",
        "cannot refer to itself",
    ),
    (
        "reference to a later node in a prompt text",
        flow(node("a", userPrompts={"k": "Id {{ .status.b }}?"}), node("b")),
        "nodes[0].userPrompts.k",
        "runs later",
    ),
    (
        "reference to itself in an expected value",
        flow(node("a", validations=[{"jsonpath": ".id", "equals": "{{ .status.a }}"}])),
        "nodes[0].validations[0].equals",
        "cannot refer to itself",
    ),
    (
        "condition on a later node",
        flow(node("a", conditions=[{"node": "b", "httpStatusCode": 200}]), node("b")),
        "nodes[0].conditions[0].node",
        "node 'b' runs later",
    ),
    (
        "condition on an unknown node",
        flow(node("a"), node("b", conditions=[{"node": "zz", "exists": True}])),
        "nodes[1].conditions[0].node",
        "no node has the id 'zz'",
    ),
    (
        "unknown node in defaults",
        flow(
            node("a"), defaults={"baseUrl": BASE, "headers": {"X": "{{ .status.q }}"}}
        ),
        "defaults.headers.X",
        "no node has the id 'q'",
    ),
    ("unclosed {{", flow(node(url="/x/{{ .vars.id }")), "nodes[0].url", "not closed"),
    ("stray }}", flow(node(url="/x/ .vars.id }}")), "nodes[0].url", "without a match"),
    ("empty {{ }}", flow(node(url="/x/{{ }}")), "nodes[0].url", "empty placeholder"),
    (
        "unknown placeholder kind",
        flow(node(url="/x/{{ .foo.x }}")),
        "nodes[0].url",
        "unknown placeholder",
    ),
    (
        "bad path in a placeholder",
        flow(node("a"), node("b", url="/x/{{ .responses.a.items[ }}")),
        "nodes[1].url",
        "bad path",
    ),
    (
        "bad jsonpath",
        flow(node(validations=[{"jsonpath": ".a..b", "exists": True}])),
        "nodes[0].validations[0].jsonpath",
        "bad path",
    ),
    (
        "bad condition field",
        flow(node("a"), node("b", conditions=[{"node": "a", "field": ".x["}])),
        "nodes[1].conditions[0].field",
        "bad path",
    ),
    (
        "bad launchBrowser path",
        flow(node(launchBrowser=".url[")),
        "nodes[0].launchBrowser",
        "bad path",
    ),
    (
        "unknown operator",
        flow(node(validations=[{"jsonpath": ".id", "equal": 5}])),
        "nodes[0].validations[0].equal",
        "unknown operator 'equal'",
    ),
    (
        "unknown operator in a condition",
        flow(node("a"), node("b", conditions=[{"node": "a", "above": 1}])),
        "nodes[1].conditions[0].above",
        "unknown operator 'above'",
    ),
    (
        "misspelt validation kind",
        flow(node(validations=[{"jsonPath": ".id", "exists": True}])),
        "nodes[0].validations[0].jsonPath",
        "unknown key 'jsonPath'",
    ),
    (
        "operator on a status validation",
        flow(node(validations=[{"httpStatusCode": 200, "equals": 1}])),
        "nodes[0].validations[0].equals",
        "does not apply to a httpStatusCode validation",
    ),
    (
        "two kinds in one validation",
        flow(node(validations=[{"httpStatusCode": 200, "jsonpath": ".a"}])),
        "nodes[0].validations[0]",
        "combines httpStatusCode and jsonpath",
    ),
    (
        "validation without a kind",
        flow(node(validations=[{"equals": 1}])),
        "nodes[0].validations[0]",
        "a validation needs one of",
    ),
    (
        "condition without a subject",
        flow(node(conditions=[{"equals": 1}])),
        "nodes[0].conditions[0]",
        "needs 'node', 'variable' or 'input'",
    ),
    (
        "exists not a boolean",
        flow(node(validations=[{"jsonpath": ".id", "exists": "yes"}])),
        "nodes[0].validations[0].exists",
        "exists must be true or false",
    ),
    (
        "numeric operator with a word",
        flow(node(validations=[{"jsonpath": ".n", "greaterThan": "ten"}])),
        "nodes[0].validations[0].greaterThan",
        "greaterThan needs a number",
    ),
    (
        "numeric operator with a boolean",
        flow(node(validations=[{"jsonpath": ".n", "lessThan": True}])),
        "nodes[0].validations[0].lessThan",
        "lessThan needs a number",
    ),
    (
        "bad regex",
        flow(node(validations=[{"header": "X-Id", "matches": "([a-z]"}])),
        "nodes[0].validations[0].matches",
        "bad regular expression",
    ),
    (
        "bad jq",
        flow(node(validations=[{"jq": ".items | map(", "exists": True}])),
        "nodes[0].validations[0].jq",
        "bad jq program",
    ),
    (
        "bad status code",
        flow(node(validations=[{"httpStatusCode": 700}])),
        "nodes[0].validations[0].httpStatusCode",
        "not an HTTP status code",
    ),
    (
        "bad status list",
        flow(node(validations=[{"httpStatusCode": []}])),
        "nodes[0].validations[0].httpStatusCode",
        "not an HTTP status code",
    ),
    (
        "bad JSON Schema",
        flow(node(validations=[{"schema": {"type": "thing"}}])),
        "nodes[0].validations[0].schema.type",
        "not a valid JSON Schema",
    ),
    (
        "bad maxDurationMs",
        flow(node(validations=[{"maxDurationMs": -1}])),
        "nodes[0].validations[0].maxDurationMs",
        "must be > 0",
    ),
    (
        "bad default validation",
        flow(node(), defaults={"baseUrl": BASE, "validations": [{"jq": "]["}]}),
        "defaults.validations[0].jq",
        "bad jq program",
    ),
    (
        "bad condition source",
        flow(node(conditions=[{"source": "cookie", "input": "k"}])),
        "nodes[0].conditions[0].source",
        "is not one of node, variable, input",
    ),
]


@pytest.mark.parametrize(
    ("doc", "path", "fragment"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_each_rule_reports_a_located_error(doc, path, fragment):
    errors, _ = validation.check(doc)
    assert errors, "expected an error"
    located = [e for e in errors if e["path"] == path]
    assert located, f"no error at {path!r}: {errors}"
    assert any(fragment in e["message"] for e in located), located
    for e in errors:
        assert set(e) >= {"path", "nodeId", "message", "hint"}
        assert e["hint"], e
        assert e.get("severity", "error") == "error"


def test_too_many_nodes():
    doc = flow(node("a"), node("b"), node("c"))
    assert only(doc, max_steps=3) == {}
    assert only(doc, max_steps=2) == {
        "nodes": "the flow has 3 nodes; the most allowed is 2"
    }


def test_all_errors_at_once_with_paths_and_node_ids():
    doc = flow(
        node("login", method="POST"),
        node("me", url="/me/{{ .responses.ghost.id }}"),
        node("login", validations=[{"jsonpath": ".id", "equal": 5}]),
    )
    errors, _ = validation.check(doc)
    assert [(e["path"], e["nodeId"]) for e in errors] == [
        ("nodes[1].url", "me"),
        ("nodes[2].id", "login"),
        ("nodes[2].validations[0].equal", "login"),
    ]
    assert "did you mean equals?" in errors[2]["hint"]
    assert "exists, equals, notEquals" in errors[2]["hint"]


def test_hints_suggest_the_close_spelling():
    doc = flow(node("login"), node("me", url="/{{ .responses.logn.token }}"))
    [error] = validation.check(doc)[0]
    assert error["hint"].startswith("did you mean login?")
    [error] = validation.check(flow(node(method="PSOT")))[0]
    assert error["hint"].startswith("did you mean POST?")


def test_errors_outside_nodes_have_no_node_id():
    errors, _ = validation.check({"nodes": [node(url="/x")], "defaults": []})
    assert {(e["path"], e["nodeId"]) for e in errors} == {
        ("defaults", None),
        ("nodes[0].url", "a"),
    }


# (case, flow, path, message fragment) for warnings, which never block.
WARN = [
    (
        "body on GET",
        flow(node(body={"q": 1})),
        "nodes[0].body",
        "a body on GET will not be sent",
    ),
    (
        "body on HEAD",
        flow(node(method="head", body="x")),
        "nodes[0].body",
        "on HEAD will not be sent",
    ),
    (
        "input never prompted",
        flow(post(body={"p": "{{ .input.password }}"})),
        "nodes[0].body.p",
        "input 'password' is not asked for",
    ),
    (
        "input prompted only later",
        flow(
            node("a", url="/x?q={{ .input.q }}"),
            node("b", userPrompts={"q": "Query?"}),
        ),
        "nodes[0].url",
        "input 'q' is not asked for by this node or an earlier one",
    ),
    (
        "unknown variable",
        flow(node(url="/x/{{ .vars.user }}"), variables={"usr": "ada"}),
        "nodes[0].url",
        "variable 'user' is not defined",
    ),
    (
        "condition on an unknown variable",
        flow(node(conditions=[{"variable": "env", "equals": "prod"}])),
        "nodes[0].conditions[0].variable",
        "variable 'env' is not defined",
    ),
    (
        "condition on an input not prompted",
        flow(node(conditions=[{"source": "input", "input": "go", "equals": "y"}])),
        "nodes[0].conditions[0].input",
        "input 'go' is not asked for",
    ),
]


@pytest.mark.parametrize(
    ("doc", "path", "fragment"),
    [case[1:] for case in WARN],
    ids=[case[0] for case in WARN],
)
def test_warnings_are_located_and_do_not_block(doc, path, fragment):
    errors, warnings = validation.check(doc)
    assert errors == []
    assert [(w["path"], w["severity"]) for w in warnings] == [(path, "warning")]
    assert fragment in warnings[0]["message"]
    assert warnings[0]["hint"]
    validation.load(doc)


def test_the_unknown_variable_hint_suggests_the_defined_one():
    doc = flow(node(url="/x/{{ .vars.user }}"), variables={"usr": "ada"})
    [warning] = validation.check(doc)[1]
    assert warning["hint"].startswith("did you mean usr?")


@pytest.mark.parametrize(
    ("headers", "body", "fmt"),
    [
        (JSON_CT, '{"id": {{ .responses.a.id }}, "n": "{{ .vars.n }}"}', None),
        (JSON_CT, {"a": [1, {"b": "{{ .vars.n }}"}]}, None),
        (FORM_CT, {"a": {"b": 1}, "c": [1, 2]}, None),
        (FORM_CT, "a=1&b={{ .vars.n }}", None),
        ({"content-type": "application/json; charset=utf-8"}, "[1, 2]", None),
        ({}, "not json at all", None),
        (JSON_CT, {"a": 1}, "text"),
        ({"Content-Type": "text/plain"}, {"a": 1}, "text"),
        ({"Content-Type": "{{ .vars.ct }}"}, "{x", None),
    ],
)
def test_good_bodies(headers, body, fmt):
    second = post("b", headers=headers, body=body)
    if fmt:
        second["bodyFormat"] = fmt
    doc = flow(node("a"), second, variables={"n": 1, "ct": "text/plain"})
    assert validation.check(doc) == ([], [])


def test_default_content_type_applies_unless_skipped():
    defaults = {"baseUrl": BASE, "headers": JSON_CT}
    bad = flow(post(body="{x"), defaults=defaults)
    assert only(bad) == {
        "nodes[0].body": "body is not valid JSON (Expecting property name enclosed "
        "in double quotes: line 1 column 2 (char 1)) but Content-Type is "
        "application/json"
    }
    assert only(flow(post(body="{x", skipDefaultHeaders=True), defaults=defaults)) == {}


FLOWSPHERE = {
    "_comment": "exported from FlowSphere",
    "enableDebug": True,
    "defaults": {
        "baseUrl": BASE,
        "headers": {"Content-Type": "application/json"},
        "timeout": 30,
        "validations": [{"httpStatusCode": 200}],
    },
    "steps": [
        {
            "_comment": "log in first",
            "id": "log-in",
            "name": "Log in",
            "method": "post",
            "url": "/login",
            "prompts": {"password": "Password:"},
            "body": {"username": "ada", "password": "{{ .input.password }}"},
            "validations": [
                {"httpStatusCode": 200},
                {"jsonpath": ".token", "exists": True},
            ],
        },
        {
            "id": "get_me",
            "name": "Profile",
            "method": "GET",
            "url": "/me",
            "headers": {"Authorization": "Bearer {{ .responses.log-in.token }}"},
            "condition": {"node": "log-in", "statusCode": 200},
            "validations": [{"jsonpath": ".user.name", "equals": "ada"}],
        },
        {
            "id": "items",
            "name": "Items",
            "method": "Get",
            "url": "/items",
            "condition": {"source": "input", "input": "password", "exists": True},
            "skipDefaultValidations": True,
            "skipDefaultHeaders": True,
            "validations": [],
        },
    ],
}


def test_flowsphere_flows_are_valid_and_load_normalised():
    doc = copy.deepcopy(FLOWSPHERE)
    errors, warnings = validation.check(doc)
    assert errors == []
    # Each older spelling runs, with a warning naming today's.
    assert [(w["path"], w["hint"]) for w in warnings] == [
        ("steps", 'rename it to "nodes"'),
        ("steps[0].prompts", 'rename it to "userPrompts"'),
        (
            "steps[1].condition",
            'write "conditions": [{"node": "log-in", "httpStatusCode": 200}]',
        ),
        (
            "steps[2].condition",
            'write "conditions": [{"source": "input", "input": "password", '
            '"exists": true}]',
        ),
    ]
    loaded = validation.load(doc)
    assert doc == FLOWSPHERE, "check/load must not change the document"
    assert "steps" not in loaded
    assert [n["method"] for n in loaded["nodes"]] == ["POST", "GET", "GET"]
    assert loaded["nodes"][0]["userPrompts"] == {"password": "Password:"}
    assert loaded["nodes"][1]["conditions"] == [
        {"node": "log-in", "httpStatusCode": 200}
    ]


def test_flowsphere_errors_are_located_in_the_legacy_spelling():
    doc = copy.deepcopy(FLOWSPHERE)
    doc["steps"][0]["prompts"]["code"] = "{{ .status.items }}"
    doc["steps"][1]["condition"] = {"node": "log-in", "statusCode": "{{ .foo }}"}
    doc["steps"][2]["condition"]["equal"] = 1
    doc["steps"][2]["url"] = 7
    errors, _ = validation.check(doc)
    assert [(e["path"], e["nodeId"]) for e in errors] == [
        ("steps[0].prompts.code", "log-in"),
        ("steps[1].condition.statusCode", "get_me"),
        ("steps[2].url", "items"),
        ("steps[2].condition.equal", "items"),
    ]


def test_comments_and_unknown_keys_are_allowed():
    doc = flow(
        node(
            _comment="n",
            extra=1,
            validations=[{"_comment": "v", "httpStatusCode": 200}],
            conditions=[{"_note": "c", "variable": "v", "equals": 1}],
        ),
        _comment="top",
        custom={"x": 1},
        variables={"v": 1},
    )
    assert validation.check(doc) == ([], [])


def test_placeholders_and_numeric_strings_are_accepted_as_operator_values():
    doc = flow(
        node("a"),
        node(
            "b",
            validations=[
                {"jsonpath": ".n", "greaterThan": "{{ .responses.a.n }}"},
                {"jsonpath": ".n", "lessThanOrEqual": " 2.5 "},
                {"jsonpath": ".s", "matches": "^{{ .vars.prefix }}"},
                {"header": "X-Id", "exists": False},
                {"jq": ".items | length", "greaterThanOrEqual": 1},
                {"jsonpath": ".items[-1].id", "notEquals": None},
                {"schema": {"type": "object", "required": ["id"]}},
                {"schema": {"$schema": "https://example.com/own", "type": "array"}},
                {"maxDurationMs": 500},
                {"httpStatusCode": [200, 204]},
            ],
        ),
        variables={"prefix": "ab"},
    )
    assert validation.check(doc) == ([], [])


def test_load_raises_with_every_error():
    doc = flow(node("a", url="{{ x"), node("a", method="NOPE"))
    with pytest.raises(FlowInvalid) as info:
        validation.load(doc)
    assert [e["path"] for e in info.value.errors] == [
        "nodes[0].url",
        "nodes[1].id",
        "nodes[1].method",
    ]
    with pytest.raises(FlowInvalid):
        validation.load("not a flow")


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


@pytest.mark.skipif(not EXAMPLE_FILES, reason="no examples/*.json yet")
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_are_valid(path):
    errors, _ = validation.check(json.loads(path.read_text("utf-8")))
    assert errors == []


@pytest.mark.parametrize(
    "raw",
    [p.read_bytes() for p in EXAMPLE_FILES] + [json.dumps(FLOWSPHERE).encode()],
    ids=[p.name for p in EXAMPLE_FILES] + ["flowsphere"],
)
def test_a_flow_loaded_again_from_the_same_bytes_is_the_same_flow(raw, monkeypatch):
    checked = []
    real_check = validation._check
    monkeypatch.setattr(
        validation, "_check", lambda *a: checked.append(1) or real_check(*a)
    )
    first = validation.load(json.loads(raw), 1000, source=raw)
    again = validation.load(json.loads(raw), 1000, source=raw)
    assert again == first == validation.load(json.loads(raw))
    # checked on the first load and the plain one, not on the second from `raw`
    assert len(checked) == 2


def test_bytes_valid_for_one_step_limit_are_checked_again_for_another():
    raw = json.dumps(FLOWSPHERE).encode()
    validation.load(json.loads(raw), 10, source=raw)
    with pytest.raises(FlowInvalid) as err:
        validation.load(json.loads(raw), 2, source=raw)
    assert [e["message"] for e in err.value.errors] == [
        "the flow has 3 nodes; the most allowed is 2"
    ]


def test_invalid_bytes_are_refused_every_time():
    doc = copy.deepcopy(FLOWSPHERE)
    doc["steps"][0]["method"] = "FETCH"
    raw = json.dumps(doc).encode()
    for _ in range(2):
        with pytest.raises(FlowInvalid):
            validation.load(json.loads(raw), source=raw)


def test_the_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(validation.SCHEMA)
    packaged = Path(validation.__file__).with_name("flow.schema.json")
    assert json.loads(packaged.read_text("utf-8")) == validation.SCHEMA


def test_every_field_in_the_schema_is_described():
    defs = validation.SCHEMA["$defs"]
    for where, props in [
        ("top level", validation.SCHEMA["properties"]),
        ("defaults", validation.SCHEMA["properties"]["defaults"]["properties"]),
        ("node", defs["node"]["properties"]),
        ("validation", defs["validation"]["properties"]),
        ("condition", defs["condition"]["properties"]),
        ("retry", defs["retry"]["properties"]),
    ]:
        for name, prop in props.items():
            described = "description" in prop or (
                "$ref" in prop and "description" in _deref(prop["$ref"])
            )
            assert described, f"{where}.{name} has no description"


def _deref(ref):
    target = validation.SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def test_the_schema_accepts_lower_case_methods_and_refuses_others():
    validator = Draft202012Validator(validation.SCHEMA)
    for method in ("GET", "get", "Patch", "options"):
        assert validator.is_valid(flow(node(method=method)))
    assert not validator.is_valid(flow(node(method="FETCH")))


def test_check_is_fast_on_a_large_flow():
    nodes = [
        post(
            f"n{i}",
            url=f"/items/{{{{ .responses.n{max(i - 1, 0)}.id }}}}" if i else "/items",
            headers={"Authorization": "Bearer {{ .vars.token }}"},
            body={"name": "x", "price": "{{ $randomInt }}"},
            validations=[{"httpStatusCode": 201}, {"jsonpath": ".id", "exists": True}],
        )
        for i in range(1000)
    ]
    doc = flow(*nodes, variables={"token": "t"})
    assert validation.check(doc) == ([], [])


def _mutations(doc, rng, count):
    """Random damage to a document: wrong types, removed and renamed keys."""
    junk = [None, 5, -1, 1.5, "x", "", True, [], {}, [1], {"a": 1}]
    for _ in range(count):
        copy = json.loads(json.dumps(doc))
        for _ in range(rng.randint(1, 3)):
            parent, key = None, None
            value = copy
            while isinstance(value, (dict, list)) and value:
                keys = list(value) if isinstance(value, dict) else range(len(value))
                parent, key = value, rng.choice(keys)
                value = parent[key]
                if rng.random() < 0.3:
                    break
            if parent is None:
                continue
            roll = rng.random()
            if roll < 0.6:
                parent[key] = rng.choice(junk)
            elif isinstance(parent, dict) and roll < 0.8:
                del parent[key]
            elif isinstance(parent, dict):
                parent[str(key) + "x"] = parent.pop(key)
        yield copy


def test_the_fast_schema_check_agrees_with_jsonschema():
    # schema_valid() asks jsonschema-rs; it must never let through a document
    # jsonschema refuses (nor refuse one it accepts): jsonschema then describes
    # what is wrong.
    rng = random.Random(7)
    docs = [case[1] for case in BAD] + [case[1] for case in WARN]
    for path in EXAMPLE_FILES:
        example = json.loads(path.read_text("utf-8"))
        docs.append(example)
        docs.extend(_mutations(example, rng, 300))
    disagree = [
        d
        for d in docs
        if validation.schema_valid(d) != validation._VALIDATOR.is_valid(d)
    ]
    assert len(docs) > 1000
    assert disagree == []


def test_the_fast_schema_check_agrees_on_every_branch():
    # Each branch of the schema's anyOf / oneOf / if-then, taken and not taken,
    # against jsonschema's check of the whole document.
    checks = [
        {"httpStatusCode": 200},
        {"httpStatusCode": [200, 201]},
        {"httpStatusCode": []},
        {"httpStatusCode": [200, "201"]},
        {"httpStatusCode": 99},
        {"httpStatusCode": 200.5},
        {"httpStatusCode": True},
        {"httpStatusCode": "200"},
        {"jsonpath": ".id", "exists": True},
        {"header": "Content-Type", "contains": "json"},
        {"jq": ".a", "equals": 1},
        {"schema": {"type": "object"}},
        {"maxDurationMs": 10},
        {"equals": 1},
        {"_note": "only a comment"},
        {},
    ]
    conditions = [
        {"node": "a", "httpStatusCode": 200},
        {"variable": "v", "equals": 1},
        {"input": "i", "exists": True},
        {"source": "node", "node": "a", "field": ".x", "exists": True},
        {"source": "node", "variable": "v", "equals": 1},
        {"source": "variable", "node": "a", "equals": 1},
        {"source": "input", "input": "i", "equals": 1},
        {"source": "input", "node": "a", "equals": 1},
        {"field": ".x", "exists": True},
        {},
    ]
    docs = [{"name": "no nodes"}, {"steps": [node("a")]}]
    for check in checks:
        docs.append(flow(node("a", validations=[check])))
        docs.append({**flow(node("a")), "defaults": {"validations": [check]}})
    for cond in conditions:
        docs.append(flow(node("a"), node("b", conditions=[cond])))
        docs.append(flow(node("a"), node("b", condition=cond)))
        docs.append({"steps": [node("a"), node("b", condition=cond)]})
    verdicts = [validation._VALIDATOR.is_valid(d) for d in docs]
    assert True in verdicts and False in verdicts
    assert [validation.schema_valid(d) for d in docs] == verdicts


def test_the_reference_documents_every_field_and_operator():
    text = (EXAMPLES.parent / "docs" / "flow-format.md").read_text("utf-8")
    schema = validation.SCHEMA
    names = [
        *schema["properties"],
        *schema["properties"]["defaults"]["properties"],
        *schema["$defs"]["node"]["properties"],
        *schema["$defs"]["validation"]["properties"],
        *schema["$defs"]["condition"]["properties"],
        *schema["$defs"]["retry"]["properties"],
    ]
    missing = [name for name in names if f"`{name}`" not in text]
    assert missing == []


@pytest.mark.parametrize("depth, refused", [(97, False), (98, True), (150, True)])
def test_a_value_nested_too_deeply_is_refused_with_its_path(depth, refused):
    # nodes[0].body holds `depth` nested lists: the innermost value sits
    # depth + 3 levels deep (nodes, 0, body, ...), and more than 100 is refused.
    body = 1
    for _ in range(depth):
        body = [body]
    doc = flow(post("a", body=body))
    errors, _ = validation.check(doc)
    messages = [e["message"] for e in errors]
    if not refused:
        assert not any("levels deep" in m for m in messages)
        return
    assert messages == ["nested more than 100 levels deep"]
    assert errors[0]["nodeId"] == "a"
    assert errors[0]["path"].startswith("nodes[0].body[0][0]")


def deep(depth: int):
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_body_nested_beyond_max_depth_is_a_located_validation_error(client, hits):
    flow = streams.make_flow(hits, streams.node("d", "/echo", "POST", body=deep(300)))
    body = streams.assert_error(
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
    flow = streams.make_flow(
        hits,
        streams.node(
            "d",
            "/echo",
            "POST",
            body=deep(90),
            validations=[{"jsonpath": ".json.a.a.a.a", "exists": True}],
        ),
    )
    _, events = streams.run_events(client, flow)
    assert events[-1][1]["success"] is True


def test_invalid_id_message_shows_the_id_as_written(client, hits):
    flow = streams.make_flow(hits, streams.node("ü-1", "/items"))
    body = client.post("/api/validate", json={"config": flow}).get_json()
    assert body["errors"][0]["message"].startswith('id "ü-1" may only contain')


def test_placeholder_with_a_non_ascii_name_says_what_names_may_hold(client, hits):
    flow = streams.make_flow(hits, streams.node("a", "/echo?q={{ .vars.ключ }}"))
    flow["variables"] = {"ключ": "значение"}
    body = client.post("/api/validate", json={"config": flow}).get_json()
    [error] = body["errors"]
    assert error["path"] == "nodes[0].url"
    assert error["hint"].startswith("the NAME after .vars. may only contain ASCII")


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
    flow = streams.make_flow(hits, streams.node("a", "/echo", headers=headers))
    body = client.post("/api/validate", json={"config": flow}).get_json()
    [error] = body["errors"]
    assert (error["path"], error["nodeId"]) == (path, "a")
    assert message in error["message"]


def test_unusual_but_valid_headers_pass(client, hits):
    headers = {"X-Tab": "a\tb", "X-Name": "zoë", "x_under.dot~": "{{ $guid }}"}
    flow = streams.make_flow(hits, streams.node("a", "/echo", headers=headers))
    flow["defaults"]["headers"] = {"Accept": "application/json"}
    assert client.post("/api/validate", json={"config": flow}).get_json()["valid"]


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
    flow = streams.make_flow(hits, streams.node("a", "/items", **{field: value}))
    body = streams.assert_error(client.post("/api/execute", json={"config": flow}), 400)
    assert [e["path"] for e in body["errors"]] == [path]
    assert hits.paths() == []
