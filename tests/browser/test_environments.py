"""Environments in Studio: a switcher beside Go with the Flow, an editor where
secrets are dots until revealed, and the environment of each run in History."""

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


def put_environments(page) -> None:
    for name, env in ENVIRONMENTS.items():
        page.evaluate(
            """async ([name, env]) => {
              const res = await fetch(`/api/environments/${name}`, {method: "PUT",
                headers: {"Content-Type": "application/json"},
                body: JSON.stringify(env)});
              if (!res.ok) throw new Error(await res.text());
            }""",
            [name, env],
        )


def test_no_switcher_when_the_server_has_no_environments(page):
    """A server without environments is not asked (a 404 would be a failed
    request): the page says so in its config, and the switcher stays hidden."""

    def without(route):
        response = route.fetch()
        html = response.text().replace('"environments": true', '"environments": false')
        route.fulfill(response=response, body=html)

    page.route(lambda url: url.endswith("/"), without)
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "environ" in r.url else None)
    reload(page)
    expect(page.locator("#flow-list .flow-item").first).to_be_attached()
    expect(page.get_by_label("Environment", exact=True)).to_be_hidden()
    assert asked == []


def test_switcher_editor_and_history(page):
    put_environments(page)
    reload(page)
    open_flow(page, "Simple chain")
    switcher = page.get_by_label("Environment", exact=True)
    expect(switcher).to_be_visible()
    # Beside Go with the Flow.
    go_box = page.get_by_role("button", name="Go with the Flow").bounding_box()
    env_box = switcher.bounding_box()
    assert abs(env_box["y"] - go_box["y"]) < go_box["height"]
    assert env_box["x"] < go_box["x"] < env_box["x"] + 400
    options = []
    page.on(
        "request",
        lambda r: (
            options.append(json.loads(r.post_data)["options"])
            if r.url.endswith("/execute-stream")
            else None
        ),
    )
    switcher.select_option("staging")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    assert options[-1] == {"environment": "staging"}
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
    assert options[-1] == {"environment": "prod", "variables": {"apiKey": "k-123"}}

    # The editor: secrets are dots until the person editing reveals them.
    page.get_by_role("button", name="Edit environments").click()
    editor = page.get_by_role("dialog", name="Environments")
    editor.get_by_role("button", name="staging").click()
    token = editor.get_by_label("Value of token")
    expect(token).to_have_attribute("type", "password")
    expect(token).to_have_value("s3cr3t-value")
    row = editor.locator(".env-row").filter(has=page.get_by_label("Value of token"))
    row.get_by_role("button", name="Reveal").click()
    expect(token).to_have_attribute("type", "text")
    editor.get_by_label("Value of user").fill("bob")
    editor.get_by_role("button", name="Save environment").click()
    expect(page.get_by_text("Saved environment staging")).to_be_visible()
    saved = page.evaluate(
        "async () => (await fetch('/api/environments/staging')).json()"
    )
    assert saved["variables"] == {"user": "bob", "token": "s3cr3t-value"}
    assert saved["secrets"] == ["token"]
    editor.get_by_role("button", name="Close environments").click()

    # History shows each run's environment.
    page.get_by_role("button", name="History").click()
    history = page.get_by_role("dialog", name="History")
    chips = history.locator(".history-item .env-chip")
    expect(chips).to_have_text(["prod", "staging"])
