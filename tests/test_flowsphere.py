"""FlowSphere parity, both ways: what its validator accepts runs, what it refuses
is flagged.

The flows here are written for these tests; each reproduces one form found in
FlowSphere's own examples, tests and older configs.
"""

from __future__ import annotations

import copy

import pytest

from flowrun.engine import validation

from .target import end_of, run_events, steps_of


def node(id="a", **fields):
    return {"id": id, "name": id.title(), "method": "GET", "url": "/items", **fields}


def flow(*nodes, **top):
    doc = {"name": "t", "defaults": {"baseUrl": "http://127.0.0.1:9/demo"}}
    doc["nodes"] = list(nodes)
    doc.update(top)
    return doc


def warned(doc) -> dict:
    """Assert ``doc`` is valid; return its warnings as {path: (message, hint)}."""
    errors, warnings = validation.check(doc)
    assert errors == []
    return {w["path"]: (w["message"], w["hint"]) for w in warnings}


def errors_of(doc) -> dict:
    errors, _ = validation.check(doc)
    return {e["path"]: (e["message"], e["hint"]) for e in errors}


# -- older forms run, each with a warning naming today's -------------------------------


@pytest.mark.parametrize(
    ("doc", "path", "hint"),
    [
        (
            {"defaults": {"baseUrl": "http://h"}, "steps": [node("a")]},
            "steps",
            'rename it to "nodes"',
        ),
        (
            flow(node("a", prompts={"code": "Code?"})),
            "nodes[0].prompts",
            'rename it to "userPrompts"',
        ),
        (
            flow(node("a"), node("b", condition={"node": "a", "statusCode": 200})),
            "nodes[1].condition",
            'write "conditions": [{"node": "a", "httpStatusCode": 200}]',
        ),
        (
            flow(
                node("a"),
                node("b", condition={"response": 0, "field": ".id", "exists": True}),
            ),
            "nodes[1].condition",
            'write "conditions": [{"node": "a", "field": ".id", "exists": true}]',
        ),
        (
            flow(node("a"), node("b", conditions=[{"response": 0, "statusCode": 201}])),
            "nodes[1].conditions[0]",
            'write {"node": "a", "httpStatusCode": 201}',
        ),
        (
            flow(
                node("a"),
                node("b", condition={"step": "a", "field": ".x", "equals": 1}),
            ),
            "nodes[1].condition",
            'write "conditions": [{"node": "a", "field": ".x", "equals": 1}]',
        ),
        (
            flow(node("a", validations=[{"status": 201}])),
            "nodes[0].validations[0].status",
            'write {"httpStatusCode": 201}',
        ),
        (
            {
                **flow(node("a")),
                "defaults": {"baseUrl": "http://h", "validations": [{"status": 200}]},
            },
            "defaults.validations[0].status",
            'write {"httpStatusCode": 200}',
        ),
        (
            flow(node("a", validations=[{"jsonpath": ".id", "exists": "true"}])),
            "nodes[0].validations[0].exists",
            "write true without quotes",
        ),
        (
            flow(
                node("a"),
                node("b", conditions=[{"node": "a", "field": ".x", "exists": "false"}]),
            ),
            "nodes[1].conditions[0]",
            'write {"node": "a", "field": ".x", "exists": false}',
        ),
        (
            flow(node("a", skipDefaultHeaders="true")),
            "nodes[0].skipDefaultHeaders",
            "write true without quotes",
        ),
        (
            flow(node("a", expect={"status": 201, "jsonpath": ".id"})),
            "nodes[0].expect",
            'write "validations": [{"httpStatusCode": 201}, {"jsonpath": ".id", '
            '"exists": true}]',
        ),
        (
            {
                "defaults": {"baseUrl": "http://h"},
                "steps": [node("a"), node("b", url="/items/{{ .responses[0].id }}")],
            },
            "steps[1].url",
            "write {{ .responses.a… }}",
        ),
    ],
)
def test_each_older_form_is_accepted_with_a_warning_naming_the_modern_one(
    doc, path, hint
):
    warnings = warned(doc)
    assert path in warnings, warnings
    assert warnings[path][1] == hint


def test_older_forms_are_read_as_the_modern_ones():
    doc = {
        "enableDebug": "false",
        "defaults": {
            "baseUrl": "http://h",
            "expect": {"status": 200},
            "validations": [{"status": 200}],
        },
        "steps": [
            node("login", method="post", expect={"jsonpath": ".token"}),
            node(
                "me",
                prompts={"otp": "Code?"},
                headers={"Authorization": "Bearer {{ .responses[0].token }}"},
                condition={"response": 0, "statusCode": 200},
                validations=[{"status": 200}, {"jsonpath": ".id", "exists": "true"}],
                skipDefaultValidations="false",
            ),
        ],
    }
    original = copy.deepcopy(doc)
    loaded = validation.load(doc)
    assert doc == original, "reading must not change the document"
    assert loaded["enableDebug"] is False
    assert loaded["defaults"]["validations"] == [{"httpStatusCode": 200}]
    login, me = loaded["nodes"]
    assert login["method"] == "POST"
    assert login["validations"] == [
        {"httpStatusCode": 200},
        {"jsonpath": ".token", "exists": True},
    ]
    assert me["userPrompts"] == {"otp": "Code?"}
    assert me["headers"] == {"Authorization": "Bearer {{ .responses.login.token }}"}
    assert me["conditions"] == [{"node": "login", "httpStatusCode": 200}]
    assert me["validations"] == [
        {"httpStatusCode": 200},
        {"jsonpath": ".id", "exists": True},
    ]
    assert me["skipDefaultValidations"] is False


def test_an_old_flow_runs_end_to_end(target):
    # FlowSphere's first format: steps, a single condition naming a node by its
    # position, index placeholders, status validations and "true" in quotes.
    doc = {
        "defaults": {
            "baseUrl": target.url + "/demo",
            "validations": [{"status": 200}],
        },
        "steps": [
            node(
                "login",
                method="POST",
                url="/login",
                body={"username": "ada", "password": "secret"},
                validations=[{"status": 200}, {"jsonpath": ".token", "exists": "true"}],
            ),
            node(
                "me",
                url="/me",
                headers={"Authorization": "Bearer {{ .responses[0].token }}"},
                condition={"response": 0, "statusCode": 200},
            ),
            node(
                "only-for-admins",
                url="/items",
                condition={"response": 1, "field": ".username", "equals": "root"},
            ),
            node(
                "echo",
                method="POST",
                url="/echo",
                body={"user": "{{ .responses[1].username }}"},
                expect={"jsonpath": ".json.user", "equals": "ada"},
            ),
        ],
    }
    flow_doc = validation.load(doc)
    events = run_events(flow_doc)
    assert end_of(events)["success"] is True
    statuses = {s["id"]: s["status"] for s in steps_of(events)}
    assert statuses == {
        "login": "completed",
        "me": "completed",
        "only-for-admins": "skipped",
        "echo": "completed",
    }
    skipped = steps_of(events)[2]
    assert "expected 'root', got 'ada'" in skipped["skipReason"]


def test_index_placeholders_belong_to_the_steps_format():
    # In a flow that uses "nodes", {{ .responses[0] }} is not read: the error
    # says how to write it.
    doc = flow(node("login"), node("me", url="/me/{{ .responses[0].id }}"))
    message, hint = errors_of(doc)["nodes[1].url"]
    assert "unknown placeholder" in message
    assert hint.startswith("write {{ .responses.login… }}")


# -- what FlowSphere's validator refuses is flagged, located ---------------------------


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        # conditions and validations without an operator
        (
            {"conditions": [{"variable": "v"}]},
            "nodes[1].conditions[0]",
            "the condition has no operator",
        ),
        (
            {"conditions": [{"input": "code"}]},
            "nodes[1].conditions[0]",
            "the condition has no operator",
        ),
        (
            {"conditions": [{"node": "a", "field": ".id"}]},
            "nodes[1].conditions[0]",
            "the condition has no operator",
        ),
        (
            {"conditions": [{"node": "a", "equals": 1}]},
            "nodes[1].conditions[0]",
            "tests the node's httpStatusCode or a field",
        ),
        (
            {"conditions": [{"node": "a", "variable": "v", "exists": True}]},
            "nodes[1].conditions[0]",
            "a condition tests one thing",
        ),
        (
            {"condition": {"response": 5, "statusCode": 200}},
            "nodes[1].condition.response",
            "names no node",
        ),
        # paths without a leading '.'
        (
            {"validations": [{"jsonpath": "missing-dot"}]},
            "nodes[1].validations[0].jsonpath",
            "must start with '.'",
        ),
        (
            {"conditions": [{"node": "a", "field": "id", "exists": True}]},
            "nodes[1].conditions[0].field",
            "must start with '.'",
        ),
        ({"launchBrowser": "url"}, "nodes[1].launchBrowser", "must start with '.'"),
        # a '{{' or '}}' without its partner anywhere in a node
        ({"body": {"text": "{{ .responses.a.x"}}, "nodes[1].body.text", "not closed"),
        (
            {"body": {"text": ".responses.a.x }}"}},
            "nodes[1].body.text",
            "without a matching",
        ),
        ({"headers": {"X": "a }} b"}}, "nodes[1].headers.X", "without a matching"),
        ({"name": "Get {{ it"}, "nodes[1].name", "not closed"),
        ({"description": "b }}"}, "nodes[1].description", "without a matching"),
        (
            {"validations": [{"jsonpath": ".x", "equals": "{{ .vars.v"}]},
            "nodes[1].validations[0].equals",
            "not closed",
        ),
    ],
)
def test_what_flowsphere_refuses_is_an_error_located(change, path, words):
    doc = flow(node("a"), {**node("b"), **change}, variables={"v": 1})
    doc["nodes"][0]["userPrompts"] = {"code": "Code?"}
    errors = errors_of(doc)
    assert path in errors, errors
    assert words in errors[path][0]


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        # flowrun reads these, FlowSphere refuses them: a warning
        (
            {"validations": [{"jsonpath": "$.id", "exists": True}]},
            "nodes[0].validations[0].jsonpath",
            "does not start with '.'",
        ),
        (
            {"validations": [{"jsonpath": ".id"}]},
            "nodes[0].validations[0].jsonpath",
            "no operator",
        ),
        (
            {"method": "POST", "body": '{"a": {"b": 1}}'},
            "nodes[0].body",
            "'}}' without a matching '{{'",
        ),
    ],
)
def test_what_flowrun_reads_but_flowsphere_refuses_is_a_warning(change, path, words):
    warnings = warned(flow({**node("a"), **change}))
    assert path in warnings, warnings
    assert words in warnings[path][0]


def test_escaped_braces_are_text_not_a_stray_placeholder():
    doc = flow(
        node(
            "a",
            name="Send \\{{ name }} as text",
            url="/items?q=\\{{x}}",
            headers={"X-T": "\\{{ not closed"},
            method="POST",
            body={"t": "\\{{ .vars.v }}", "u": "{{ .vars.v }}"},
        ),
        variables={"v": 1},
    )
    assert validation.check(doc) == ([], [])


def test_a_body_to_send_as_written_may_be_any_text_with_a_warning():
    text = '{"profile": <profileId>}'
    headers = {"Content-Type": "application/json"}
    doc = flow(node("a", method="POST", headers=headers, body=text))
    assert "not valid JSON" in errors_of(doc)["nodes[0].body"][0]
    doc["nodes"][0]["bodyFormat"] = "text"
    assert "not valid JSON" in warned(doc)["nodes[0].body"][0]
