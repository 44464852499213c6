"""Secrets are masked as •••• everywhere but the wire: events, history, errors.

Each test checks the target got the real value (a validation on the echoed body
passes only then) and that no event, answer or stored record shows it.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from flowrun.store.masking import MASK, encoded_forms, looks_secret

from .streams import make_flow, node, run_events

SECRET = "s3cr3t K/+é.x"  # a space, URL-reserved characters, non-ASCII


def shown(events) -> str:
    return json.dumps(events, ensure_ascii=False)


def assert_hidden(text: str, secret: str = SECRET) -> None:
    for form in (secret, quote(secret, safe=""), quote(secret, safe="/+")):
        assert form not in text, form
    assert MASK in text


def test_mask_is_four_dots():
    assert MASK == "••••"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("apiKey", True),
        ("PASSWORD", True),
        ("client_secret", True),
        ("otp", True),
        ("refreshToken", True),
        ("user", False),
        ("baseUrl", False),
    ],
)
def test_looks_secret(name, secret):
    assert looks_secret(name) is secret


def test_encoded_forms_cover_what_requests_send():
    forms = encoded_forms("a b/c+d")
    assert {"a b/c+d", "a%20b%2Fc%2Bd", "a+b%2Fc%2Bd", "a%20b/c+d"} <= forms
    # Base64 of the secret at any offset in a longer text contains one of them.
    for prefix in ("", "u", "us", "user:"):
        encoded = base64.b64encode(f"{prefix}hunter2-pw!".encode()).decode()
        assert any(f in encoded for f in encoded_forms("hunter2-pw!"))


def test_every_form_of_a_secret_is_masked_in_the_live_stream(app, hits):
    app.extensions["flowrun"].secret_vars = frozenset({"key"})
    basic = base64.b64encode(f"ada:{SECRET}".encode()).decode()
    echo = "{{ .responses.%s.json.k }}"
    flow = make_flow(
        hits,
        node(
            "query",
            "/echo?k={{ .vars.key }}",
            "POST",
            headers={"X-Key": "{{ .vars.key }}", "Authorization": f"Basic {basic}"},
            body={"k": "{{ .vars.key }}", "note": "key={{ .vars.key }}!"},
            validations=[{"jsonpath": ".json.k", "equals": SECRET}],
        ),
        node(
            "form",
            "/echo",
            "POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body={"k": "{{ .vars.key }}"},
            validations=[{"jsonpath": ".form.k[0]", "equals": SECRET}],
        ),
        node(
            "text",
            "/echo",
            "POST",
            headers={"Content-Type": "text/plain"},
            body='{"k": "{{ .vars.key }}"}',
            validations=[{"jsonpath": ".body", "contains": SECRET}],
        ),
        node(
            "expected",
            "/echo",
            "POST",
            body={"k": echo % "query"},
            # A failing check quotes expected and actual values: both masked.
            validations=[{"jsonpath": ".json.k", "equals": "{{ .vars.key }}-not"}],
        ),
    )
    flow["variables"] = {"key": SECRET}
    _, events = run_events(app.test_client(), flow, {"continueOnFailure": True})
    steps = {d["id"]: d for name, d in events if name == "step"}
    assert [steps[i]["status"] for i in ("query", "form", "text")] == ["completed"] * 3
    assert steps["expected"]["status"] == "failed"
    text = shown(events)
    assert_hidden(text)
    assert basic not in text  # Basic credentials holding it are masked whole
    assert steps["query"]["request"]["headers"]["Authorization"] == f"Basic {MASK}"
    assert steps["query"]["url"].endswith("/echo?k=" + MASK)
    assert steps["query"]["request"]["body"] == {"k": MASK, "note": f"key={MASK}!"}
    assert steps["form"]["request"]["body"] == f"k={MASK}"
    echoed = steps["query"]["response"]["body"]
    assert echoed["args"] == {"k": [MASK]} and echoed["json"]["k"] == MASK
    assert echoed["headers"]["X-Key"] == MASK
    assert MASK in steps["expected"]["error"]
    errors = [d for name, d in events if name == "error"]
    assert errors and all(SECRET not in e["message"] for e in errors)
    # The end event's log is the records as the steps showed them.
    end = events[-1][1]
    assert end["executionLog"][0] == {
        k: v for k, v in steps["query"].items() if k not in ("executionId", "_seq")
    }


def test_secret_prompt_answers_are_masked_everywhere(app, hits):
    flow = make_flow(
        hits,
        node(
            "login",
            "/login",
            "POST",
            userPrompts={"password": "Password?", "user": "User?"},
            body={"username": "{{ .input.user }}", "password": "{{ .input.password }}"},
        ),
        node("echo", "/echo?u={{ .input.user }}&p={{ .input.password }}"),
    )
    headers, events = run_events(
        app.test_client(),
        flow,
        {"inputs": {"password": "secret", "user": "grace"}},
    )
    assert events[-1][1]["success"] is True  # the target got the password
    text = shown(events)
    assert '"secret"' not in text and "p=secret" not in text
    assert "grace" in text  # a key that does not look secret is shown
    login = [d for n, d in events if n == "step"][0]
    assert login["request"]["body"]["password"] == MASK
    subs = {s["placeholder"]: s["value"] for s in login["substitutions"]}
    assert subs["{{ .input.password }}"] == MASK
    stored = app.test_client().get(f"/api/executions/{headers['X-Execution-Id']}")
    assert "p=secret" not in stored.get_data(as_text=True)
    assert stored.get_json()["steps"][0]["request"]["body"]["password"] == MASK


def test_secrets_of_the_flow_and_of_the_environment(client, hits):
    client.put(
        "/api/environments/e",
        json={"variables": {"envKey": "from-the-env-1"}, "secrets": ["envKey"]},
    )
    flow = make_flow(
        hits,
        node("a", "/echo?e={{ .vars.envKey }}&f={{ .vars.flowPin }}&o={{ .vars.o }}"),
    )
    flow["variables"] = {"flowPin": "from-the-flow-2", "o": "shown-3"}
    flow["secrets"] = ["flowPin"]
    resp = client.post(
        "/api/execute", json={"config": flow, "options": {"environment": "e"}}
    )
    text = resp.get_data(as_text=True)
    assert resp.get_json()["success"] is True
    assert "from-the-env-1" not in text and "from-the-flow-2" not in text
    assert "shown-3" in text
    history = client.get(f"/api/executions/{resp.get_json()['executionId']}")
    assert "from-the-env-1" not in history.get_data(as_text=True)


def test_secret_in_an_unresolvable_step_error_is_masked(client, hits):
    flow = make_flow(
        hits,
        node("a", "/items"),
        node("b", "/items/{{ .responses.a.nope }}?k={{ .vars.key }}"),
    )
    flow["variables"] = {"key": "very-secret-9"}
    flow["secrets"] = ["key"]
    resp = client.post("/api/execute", json={"config": flow})
    assert "very-secret-9" not in resp.get_data(as_text=True)


def test_no_secrets_no_copies(hits):
    # With nothing secret, events carry the engine's records themselves.
    from flowrun.engine.flow import RunOptions, normalize
    from flowrun.engine.run import Run

    run = Run(normalize(make_flow(hits, node("a", "/items"))), RunOptions())
    records = [ev.record for ev in run.events() if ev.name == "step"]
    assert records[0] is run.log[0]
