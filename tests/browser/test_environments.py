"""Environments in Studio: a switcher beside Go with the Flow, an editor where
secrets are dots until revealed, and the environment of each run in History.

The server side (``/api/environments``) is served here by the test itself, to
its documented shape; a server without it shows no switcher and is not asked."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from .helpers import go, open_flow, reload, run_view

ENVIRONMENTS = {
    "staging": {
        "variables": {"user": "ada", "token": "s3cr3t-value"},
        "secrets": ["token"],
    },
    "prod": {"variables": {}, "secrets": ["apiKey"]},
}


def serve_environments(page) -> dict:
    """Answer the environments API in the page, and say the server has it."""
    seen = {"puts": [], "runs": []}

    def studio_page(route):
        response = route.fetch()
        html = response.text().replace('"environments": false', '"environments": true')
        route.fulfill(response=response, body=html)

    def environments(route):
        request = route.request
        name = request.url.split("/api/environments")[1].strip("/")
        if not name:
            listed = [
                {
                    "name": n,
                    "variables": {
                        k: v for k, v in e["variables"].items() if k not in e["secrets"]
                    },
                    "secrets": e["secrets"],
                    "missing": [s for s in e["secrets"] if s not in e["variables"]],
                }
                for n, e in ENVIRONMENTS.items()
            ]
            route.fulfill(json={"environments": listed})
        elif request.method == "GET":
            route.fulfill(json={"name": name, **ENVIRONMENTS[name]})
        elif request.method == "PUT":
            seen["puts"].append((name, request.post_data_json))
            route.fulfill(status=200, json={"name": name})
        else:
            route.fulfill(status=204, body="")

    def execute(route):
        # This server runs flows without environments: the option is noted, then
        # left out of what it receives.
        body = route.request.post_data_json
        seen["runs"].append(dict(body["options"]))
        body["options"].pop("environment", None)
        route.continue_(post_data=json.dumps(body))

    page.route(lambda url: url.endswith("/") or "/?" in url, studio_page)
    page.route("**/api/environments**", environments)
    page.route("**/api/execute-stream", execute)
    return seen


def test_no_switcher_without_environments_on_the_server(page):
    asked = []
    page.on(
        "request", lambda r: asked.append(r.url) if "environments" in r.url else None
    )
    reload(page)
    expect(page.get_by_label("Environment", exact=True)).to_be_hidden()
    assert asked == []


def test_switcher_editor_and_history(page):
    seen = serve_environments(page)
    reload(page)
    open_flow(page, "Simple chain")
    switcher = page.get_by_label("Environment", exact=True)
    expect(switcher).to_be_visible()
    # Beside Go with the Flow.
    go_box = page.get_by_role("button", name="Go with the Flow").bounding_box()
    env_box = switcher.bounding_box()
    assert abs(env_box["y"] - go_box["y"]) < go_box["height"]
    assert env_box["x"] < go_box["x"] < env_box["x"] + 400
    switcher.select_option("staging")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    assert seen["runs"][-1].get("environment") == "staging", seen["runs"]
    expect(panel.locator(".rv-meta")).to_contain_text("environment staging")

    # A secret the environment declares without a value is asked for this run.
    switcher.select_option("prod")
    go(page)
    ask = page.get_by_role("dialog", name="Secrets for prod")
    key = ask.get_by_label("apiKey")
    expect(key).to_have_attribute("type", "password")
    key.fill("k-123")
    ask.get_by_role("button", name="Run").click()
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    assert seen["runs"][-1] == {"environment": "prod", "variables": {"apiKey": "k-123"}}

    # The editor: secrets are dots until the person editing reveals them.
    page.get_by_role("button", name="Edit environments").click()
    editor = page.get_by_role("dialog", name="Environments")
    editor.get_by_role("button", name="staging").click()
    token = editor.get_by_label("Value of token")
    expect(token).to_have_attribute("type", "password")
    expect(token).to_have_value("s3cr3t-value")
    row = editor.locator(".env-row").filter(has=page.get_by_label("Value of token"))
    reveal = row.get_by_role("button", name="Reveal")
    reveal.click()
    expect(token).to_have_attribute("type", "text")
    editor.get_by_label("Value of user").fill("bob")
    editor.get_by_role("button", name="Save environment").click()
    expect(page.get_by_text("Saved environment staging")).to_be_visible()
    assert seen["puts"] == [
        (
            "staging",
            {
                "variables": {"user": "bob", "token": "s3cr3t-value"},
                "secrets": ["token"],
            },
        )
    ]
    editor.get_by_role("button", name="Close environments").click()

    # History shows each run's environment.
    def with_environment(route):
        page_data = route.fetch().json()
        for ex in page_data["executions"]:
            ex["environment"] = "staging"
        route.fulfill(json=page_data)

    page.route("**/api/executions?*", with_environment)
    page.get_by_role("button", name="History").click()
    history = page.get_by_role("dialog", name="History")
    expect(history.locator(".history-item .env-chip").first).to_have_text("staging")
