"""Placeholders: every kind, typed substitution, records, unresolvable ones."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime

import pytest

from flowrun.engine.placeholders import Context, NodeResult, lookup, substitute
from flowrun.errors import UnresolvedPlaceholder

from .target import end_of, run_events, steps_of


def ctx(**results):
    c = Context(
        vars={"user": "ada", "n": 7, "obj": {"a": [1, 2]}, "flag": True},
        inputs={"password": "secret"},
        results=results,
        node_ids=frozenset({"login", "me", "later", "skipped", "broken"}),
        now=1_700_000_000.5,
    )
    return c


LOGIN = NodeResult(
    "completed",
    {"token": "tok-1", "user": {"id": 7, "tags": ["a", "b"]}, "items": [{"x": 1}]},
    {"content-type": "application/json", "x-rate-remaining": "42"},
    200,
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (".vars.user", "ada"),
        (".vars.n", 7),
        (".vars.obj.a[1]", 2),
        (".vars.obj.a | length", 2),
        (".vars.user|length", 3),
        (".input.password", "secret"),
        (".responses.login.token", "tok-1"),
        (".responses.login.user.id", 7),
        (".responses.login.user.tags[-1]", "b"),
        (".responses.login.items[0].x", 1),
        (".responses.login.items | length", 1),
        (".responses.login.items|length", 1),
        (".responses.login.user.tags |length", 2),
        (".responses.login", LOGIN.body),
        (".responses.login.", LOGIN.body),
        (".headers.login.X-Rate-Remaining", "42"),
        (".headers.login.x-rate-remaining", "42"),
        (".headers.login.CONTENT-TYPE", "application/json"),
        (".status.login", 200),
    ],
)
def test_lookup(expr, expected):
    assert lookup(expr, ctx(login=LOGIN)) == expected


def test_dynamic_values():
    c = ctx()
    g1, g2 = lookup("$guid", c), lookup("$guid", c)
    assert uuid.UUID(g1).version == 4 and g1 != g2
    assert lookup("$timestamp", c) == 1_700_000_000
    iso = lookup("$isoTimestamp", c)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", iso)
    assert datetime.fromisoformat(iso).timestamp() == 1_700_000_000.5
    ints = {lookup("$randomInt", c) for _ in range(300)}
    assert all(isinstance(i, int) and 0 <= i <= 1000 for i in ints)
    assert len(ints) > 50


@pytest.mark.parametrize(
    ("expr", "results", "words"),
    [
        (".responses.nope.x", {}, "node 'nope' does not exist"),
        (".responses.later.x", {}, "node 'later' has not run"),
        (".responses.skipped.x", {"skipped": NodeResult("skipped")}, "was skipped"),
        (".responses.broken.x", {"broken": NodeResult("failed")}, "got no response"),
        (".status.broken", {"broken": NodeResult("failed")}, "got no response"),
        (".responses.login.nope", {"login": LOGIN}, "no field 'nope'"),
        (".responses.login.user.nope", {"login": LOGIN}, "no field 'nope' at .user"),
        (".headers.login.X-Missing", {"login": LOGIN}, "no header 'X-Missing'"),
        (".vars.nope", {}, "no variable named 'nope'"),
        (".input.nope", {}, "no input named 'nope'"),
        (".vars.obj.b", {}, "no field 'b'"),
        (".bogus.x", {}, "unknown placeholder"),
        ("$nope", {}, "unknown placeholder"),
    ],
)
def test_unresolvable_names_placeholder_and_why(expr, results, words):
    with pytest.raises(UnresolvedPlaceholder) as info:
        lookup(expr, ctx(**results))
    message = str(info.value)
    assert words in message
    if not expr.startswith(("$", ".bogus")):
        assert "{{ " + expr + " }}" in message


def test_typed_whole_value_and_text_inside_strings():
    records = []
    body = {
        "id": "{{ .responses.login.user.id }}",
        "flag": "{{.vars.flag}}",
        "obj": "{{ .vars.obj }}",
        "label": "user {{ .responses.login.user.id }} is {{ .vars.flag }}",
        "json": "obj={{ .vars.obj }}",
        "list": ["{{ .vars.n }}", "n={{ .vars.n }}"],
        "{{ .vars.user }}": "keys are not touched",
    }
    out = substitute(body, ctx(login=LOGIN), "body", records)
    assert out == {
        "id": 7,
        "flag": True,
        "obj": {"a": [1, 2]},
        "label": "user 7 is true",
        "json": 'obj={"a":[1,2]}',
        "list": [7, "n=7"],
        "{{ .vars.user }}": "keys are not touched",
    }
    assert records[0] == {
        "placeholder": "{{ .responses.login.user.id }}",
        "value": 7,
        "type": "response",
        "path": "body.id",
    }
    kinds = {(r["path"], r["type"]) for r in records}
    assert ("body.flag", "variable") in kinds
    assert ("body.list[0]", "variable") in kinds
    assert ("body.label", "response") in kinds
    assert len(records) == 8


def test_untyped_renders_text():
    out = substitute("{{ .vars.n }}", ctx(), "url", None, typed=False)
    assert out == "7"


def test_record_types():
    records = []
    c = ctx(login=LOGIN)
    c.now = time.time()
    substitute(
        "{{ $guid }} {{ .input.password }} {{ .headers.login.X-Rate-Remaining }}"
        " {{ .status.login }}",
        c,
        "url",
        records,
        typed=False,
    )
    assert [r["type"] for r in records] == ["dynamic", "input", "header", "status"]
    assert records[1]["placeholder"] == "{{ .input.password }}"


# -- against the real target -------------------------------------------------


def test_placeholders_end_to_end(hits):
    base = hits.url + "/demo"
    doc = {
        "variables": {"user": "ada", "who": "flow"},
        "defaults": {"baseUrl": base},
        "nodes": [
            {
                "id": "login",
                "name": "Log in",
                "method": "POST",
                "url": "/login",
                "body": {"username": "{{ .vars.user }}", "password": "secret"},
            },
            {
                "id": "echo",
                "name": "Echo",
                "method": "POST",
                "url": "/echo?status={{ .status.login }}&who={{ .vars.who }}",
                "headers": {
                    "Authorization": "Bearer {{ .responses.login.token }}",
                    "X-Type": "{{ .headers.login.content-type }}",
                    "X-Guid": "{{ $guid }}",
                },
                "body": {
                    "id": "{{ .responses.login.user.id }}",
                    "user": "{{ .responses.login.user }}",
                    "pw": "{{ .input.pw }}",
                    "t1": "{{ $timestamp }}",
                    "t2": "{{ $timestamp }}",
                    "iso": "{{ $isoTimestamp }}",
                    "r": "{{ $randomInt }}",
                    "g1": "{{ $guid }}",
                    "g2": "{{ $guid }}",
                    "len": "{{ .responses.login.token | length }}",
                    "len2": "{{.responses.login.token|length}}",
                    "text": "id={{ .responses.login.user.id }}",
                },
            },
        ],
    }
    events = run_events(doc, variables={"who": "override"}, inputs={"pw": "p1"})
    assert end_of(events)["success"], events
    echo = steps_of(events)[1]
    sent = echo["response"]["body"]
    assert sent["args"] == {"status": ["200"], "who": ["override"]}
    assert sent["headers"]["Authorization"].startswith("Bearer tok-")
    assert sent["headers"]["X-Type"] == "application/json"
    body = sent["json"]
    assert body["id"] == 7
    assert body["user"] == {"username": "ada", "id": 7}
    assert body["pw"] == "p1"
    assert body["t1"] == body["t2"] and abs(body["t1"] - time.time()) < 5
    assert body["iso"].endswith("Z")
    assert 0 <= body["r"] <= 1000
    assert body["g1"] != body["g2"] != sent["headers"]["X-Guid"]
    assert body["len"] == body["len2"] == len(sent["headers"]["Authorization"]) - 7
    assert body["text"] == "id=7"
    assert echo["url"] == base + "/echo?status=200&who=override"
    subs = {r["path"]: r for r in echo["substitutions"]}
    assert subs["body.id"] == {
        "placeholder": "{{ .responses.login.user.id }}",
        "value": 7,
        "type": "response",
        "path": "body.id",
    }
    assert subs["headers.Authorization"]["type"] == "response"
    assert subs["body.pw"]["type"] == "input"
    assert subs["headers.X-Guid"]["type"] == "dynamic"
    start = [d for n, d in events if n == "step_start"][1]
    assert start["url"] == base + "/echo?status=200&who=override"


@pytest.mark.parametrize(
    ("where", "placeholder", "words"),
    [
        ("url", "{{ .responses.ghost.id }}", "node 'ghost' does not exist"),
        ("url", "{{ .responses.first.nope }}", "no field 'nope'"),
        ("header", "{{ .vars.missing }}", "no variable named 'missing'"),
        ("body", "{{ .input.missing }}", "no input named 'missing'"),
        ("body", "{{ .responses.skipped.id }}", "node 'skipped' was skipped"),
    ],
)
def test_unresolvable_fails_step_and_sends_nothing(hits, where, placeholder, words):
    node = {"id": "use", "name": "Use", "method": "POST", "url": "/echo"}
    if where == "url":
        node["url"] = "/echo?x=" + placeholder
    elif where == "header":
        node["headers"] = {"X-Thing": placeholder}
    else:
        node["body"] = {"v": placeholder}
    doc = {
        "defaults": {"baseUrl": hits.url + "/demo"},
        "nodes": [
            {"id": "first", "name": "First", "method": "GET", "url": "/items"},
            {
                "id": "skipped",
                "name": "Skipped",
                "method": "GET",
                "url": "/items",
                "conditions": [{"source": "variable", "variable": "nope"}],
            },
            node,
        ],
    }
    events = run_events(doc)
    step = steps_of(events)[-1]
    assert step["status"] == "failed"
    assert placeholder in step["error"] and words in step["error"]
    assert (
        "error",
        {"executionId": step["executionId"], "message": step["error"], "step": 3},
    ) in events
    assert end_of(events)["success"] is False
    assert hits.paths() == ["/demo/items"]


# -- the escape: \{{ sends a literal {{ -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("\\{{ .vars.user }}", "{{ .vars.user }}"),
        ("Hi \\{{name}}, {{ .vars.user }}", "Hi {{name}}, ada"),
        ("\\{{ not closed, {{ .vars.n }}", "{{ not closed, 7"),
        ("{{ .vars.user }}\\{{", "ada{{"),
        ("a \\{{{ .vars.user }}", "a {{{ .vars.user }}"),
        (
            "\\{{ .vars.user }} and \\{{ .vars.n }}",
            "{{ .vars.user }} and {{ .vars.n }}",
        ),
    ],
)
def test_an_escaped_opening_is_sent_as_written(text, sent):
    records = []
    assert substitute(text, ctx(), "body", records) == sent
    # Only real placeholders are recorded; an escaped one stays text.
    assert all("\\" not in r["placeholder"] for r in records)


def test_an_escaped_placeholder_alone_keeps_its_text_not_a_type():
    assert substitute({"n": "\\{{ .vars.n }}"}, ctx(), "body", []) == {
        "n": "{{ .vars.n }}"
    }


def test_an_escaped_placeholder_goes_out_on_the_wire_as_text(target):
    flow = {
        "name": "escape",
        "variables": {"user": "ada"},
        "defaults": {"baseUrl": target.url + "/demo"},
        "nodes": [
            {
                "id": "echo",
                "name": "Echo",
                "method": "POST",
                "url": "/echo?q=\\{{x}}",
                "headers": {"X-Template": "\\{{ .vars.user }} is {{ .vars.user }}"},
                "body": {"template": "Dear \\{{ name }}", "who": "{{ .vars.user }}"},
            }
        ],
    }
    events = run_events(flow)
    assert end_of(events)["success"] is True
    echoed = steps_of(events)[0]["response"]["body"]
    assert echoed["args"] == {"q": ["{{x}}"]}
    assert echoed["headers"]["X-Template"] == "{{ .vars.user }} is ada"
    assert echoed["json"] == {"template": "Dear {{ name }}", "who": "ada"}
