"""The run view docked beside the editor: order, compact list, jump, failed-only,
cards that stay put, the same view live and in History, prompts, focus, large
bodies, secrets, Stop now, and a finished run that leaves no failed request."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import expect

from ..waits import wait_until
from .helpers import (
    execution_id,
    fill_prompt,
    go,
    open_flow,
    reload,
    run_view,
    save_and_open,
    settle,
    step_region,
)


def overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_the_run_docks_beside_the_editor_which_stays_usable(page):
    open_flow(page, "Simple chain")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    editor = page.get_by_role("region", name="Flow editor")
    run_box, editor_box = panel.bounding_box(), editor.bounding_box()
    assert run_box["x"] >= editor_box["x"] + editor_box["width"] - 1  # beside
    assert not overlap(run_box, editor_box)
    # Not a modal: the editor takes edits while the result is in view.
    url = step_region(page, 1).get_by_label("URL")
    url.fill("/items?edited=1")
    expect(url).to_have_value("/items?edited=1")
    expect(panel).to_be_visible()
    # Or under the editor, as the person prefers (kept for next time).
    panel.get_by_role("button", name="Dock the run under the editor").click()
    run_box, editor_box = panel.bounding_box(), editor.bounding_box()
    assert run_box["y"] >= editor_box["y"] + editor_box["height"] - 1
    reload(page, unsaved=True)
    go(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    assert panel.bounding_box()["y"] > editor.bounding_box()["y"]
    panel.get_by_role("button", name="Dock the run beside the editor").click()


def test_an_open_response_stays_in_place_as_steps_arrive(page, hits):
    open_flow(page, "Slow steps")
    hits.hold_path("/demo/slow", after=1, key="step 2")  # in flight until released
    go(page)
    panel = run_view(page)
    panel.get_by_label("Step order").select_option("newest")
    first = panel.locator('.card[data-step-index="0"]')
    expect(first).to_contain_text("Success")
    first.locator("summary").filter(has_text="Response").click()
    body = first.locator("pre.code")
    expect(body).to_be_visible()
    y = body.bounding_box()["y"]
    # Step 2 arrives above it (newest first), then step 3 starts: it does not move.
    hits.hold_path("/demo/slow", after=2, key="step 3")
    hits.release("step 2")
    expect(panel.locator('.card[data-step-index="1"]')).to_contain_text("Success")
    wait_until(lambda: hits.held("step 3"), 10, message="step 3's request")
    expect(panel.get_by_text("Running…")).to_be_visible()
    assert abs(body.bounding_box()["y"] - y) <= 1
    panel.get_by_label("Step order").select_option("oldest")
    with page.expect_response("**/stop"):
        page.get_by_role("button", name="Interrupt the Flow").click()
    hits.release("step 3")
    expect(panel.get_by_text("Flow interrupted")).to_be_visible()


def many_steps(studio: str, n: int = 60) -> dict:
    nodes = [
        {"id": f"s{i}", "name": f"Step number {i}", "method": "GET", "url": "/items"}
        for i in range(1, n)
    ]
    nodes.append(
        {
            "id": f"s{n}",
            "name": "The failing one",
            "method": "GET",
            "url": "/status/500",
        }
    )
    return {
        "name": "Sixty steps",
        "defaults": {"baseUrl": f"{studio}/demo"},
        "nodes": nodes,
    }


def test_sixty_steps_compact_failed_only_and_jump(page, studio):
    save_and_open(page, "sixty", many_steps(studio), "Sixty steps")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_role("heading", name="Flow failed")).to_be_visible(
        timeout=20000
    )
    cards = panel.locator(".card")
    expect(cards).to_have_count(60)
    full = panel.locator(".cards").bounding_box()["height"]
    panel.get_by_label("Compact").check()
    compact = panel.locator(".cards").bounding_box()["height"]
    assert compact <= 60 * 40 and compact < full / 3  # one short line per step
    # One line each; a step opens on its own.
    step7 = panel.locator('.card[data-step-index="6"]')
    step7.get_by_role("button", name="Details of step 7").click()
    expect(step7.locator(".card-url")).to_be_visible()
    # Failed only.
    panel.get_by_label("Failed only").check()
    expect(panel.locator(".card:visible")).to_have_count(1)
    expect(panel.locator(".card:visible")).to_contain_text("The failing one")
    panel.get_by_label("Failed only").uncheck()
    # Jump to a step: in view and focused.
    panel.get_by_label("Jump to step").select_option(label="#45 Step number 45")
    step45 = panel.locator('.card[data-step-index="44"]')
    expect(step45).to_be_focused()
    expect(step45).to_be_in_viewport()
    panel.get_by_label("Compact").uncheck()


def test_live_and_history_views_of_a_run_are_the_same(page, hits):
    open_flow(page, "Slow steps")
    hits.hold_path("/demo/slow", after=1, key="step 2")  # in flight until released
    go(page)
    panel = run_view(page)
    expect(panel.locator('.card[data-step-index="0"]')).to_contain_text("Success")
    wait_until(lambda: hits.held("step 2"), 10, message="step 2's request")
    with page.expect_response("**/stop"):
        page.get_by_role("button", name="Interrupt the Flow").click()
    hits.release("step 2")
    expect(panel.get_by_text("Flow interrupted")).to_be_visible()
    eid = execution_id(page)

    def seen(root):
        return {
            "cards": root.locator(".card").evaluate_all(
                "(cs) => cs.map((c) => c.getAttribute('aria-label'))"
            ),
            "stats": root.locator(".stats").inner_text(),
            "notes": root.locator(".summary p:not(.rv-started)").all_inner_texts(),
            "title": root.locator(".summary h3").inner_text(),
            "pill": root.locator(".rv-title .pill").inner_text(),
        }

    live = seen(panel)
    assert live["stats"].lower().split("\n")[6:8] == ["3", "not run"]
    page.get_by_role("button", name="History").click()
    history = page.get_by_role("dialog", name="History")
    history.get_by_role("button").filter(has_text=eid).click()
    expect(history.get_by_role("heading", name="History: Slow steps")).to_be_visible()
    stored = seen(history)
    assert stored == live
    assert "in flight" not in " ".join(live["notes"])


def test_interrupting_at_a_prompt_claims_no_step_in_flight(page):
    open_flow(page, "User input")
    go(page)
    prompt = page.get_by_role("dialog", name="Input needed")
    prompt.get_by_role("button", name="Interrupt the Flow").click()
    panel = run_view(page)
    summary = panel.locator(".summary")
    expect(summary).to_contain_text("Flow interrupted")
    expect(summary).not_to_contain_text("in flight completed")
    expect(summary).to_contain_text("no step started after the stop")
    expect(panel.locator(".stat").filter(has_text="not run")).to_contain_text("2")


def test_prompts_need_answers_and_remember_the_non_secret_ones(page):
    open_flow(page, "User input")
    go(page)
    prompt = page.get_by_role("dialog", name="Input needed")
    user = prompt.get_by_label("Username", exact=False)
    password = prompt.get_by_label("Password for", exact=False)
    expect(user).to_be_focused()
    page.keyboard.press("Enter")  # nothing typed
    expect(prompt.get_by_role("alert")).to_have_text("Every question needs an answer.")
    expect(user).to_have_attribute("aria-invalid", "true")
    expect(user).to_be_focused()
    fill_prompt(prompt, "grace")
    page.keyboard.press("Enter")
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    page.get_by_role("button", name="Flow once again").click()
    expect(user).to_have_value("grace")  # remembered
    expect(password).to_have_value("")  # a secret: never kept
    expect(password).to_be_focused()
    password.fill("secret")
    page.keyboard.press("Enter")
    expect(panel.get_by_text("Flow completed")).to_be_visible()


def test_prompt_secrets_follow_the_servers_rule(page, studio):
    """A prompt key is secret exactly when the server masks its answer: a key with
    pass, secret, token, otp or key in it, and no other word."""
    doc = {
        "name": "Codes",
        "defaults": {"baseUrl": f"{studio}/demo"},
        "nodes": [
            {
                "id": "codes",
                "name": "Send codes",
                "method": "POST",
                "url": "/echo",
                "userPrompts": {"pin": "Your PIN", "apiKey": "Your API key"},
                "body": {"pin": "{{ .input.pin }}", "apiKey": "{{ .input.apiKey }}"},
            }
        ],
    }
    save_and_open(page, "codes", doc, "Codes")
    go(page)
    prompt = page.get_by_role("dialog", name="Input needed")
    pin, key = prompt.get_by_label("Your PIN"), prompt.get_by_label("Your API key")
    expect(pin).to_have_attribute("type", "text")
    expect(key).to_have_attribute("type", "password")
    pin.fill("4321")
    key.fill("k-123456")
    page.keyboard.press("Enter")
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    chips = panel.locator(".sub-chip")
    # The server sends the PIN in clear and masks the key: the chips say the same.
    expect(
        chips.filter(has_text="{{ .input.pin }}").locator(".sub-value")
    ).to_have_text("4321")
    expect(
        chips.filter(has_text="{{ .input.apiKey }}").locator(".sub-value")
    ).to_have_text("••••")
    page.get_by_role("button", name="Flow once again").click()
    expect(pin).to_have_value("4321")  # not a secret: remembered
    expect(key).to_have_value("")


def test_ctrl_enter_leaves_focus_where_it_was(page, hits):
    open_flow(page, "Slow steps")
    hits.hold_path("/demo/slow", after=0, key="step 1")  # in flight until released
    stops = []
    page.on("request", lambda r: stops.append(r.url) if "/stop" in r.url else None)
    name = page.get_by_role("region", name="Step 1", exact=False).get_by_label(
        "Name", exact=True
    )
    name.focus()
    page.keyboard.press("Control+Enter")
    panel = run_view(page)
    expect(panel.locator(".pill").first).to_have_text("Running")
    expect(name).to_be_focused()
    page.keyboard.press("Enter")  # in a text field: nothing is stopped
    assert page.evaluate("document.activeElement.id") != "btn-interrupt"
    # Had Enter stopped the run, the button would say "Interrupting the Flow..."
    # and this would be a second stop.
    with page.expect_response("**/stop"):
        page.get_by_role("button", name="Interrupt the Flow").click()
    assert len(stops) == 1
    hits.release("step 1")
    expect(panel.get_by_text("Flow interrupted")).to_be_visible()


def test_a_large_body_downloads_whole_and_searches(page, studio, tmp_path):
    doc = {
        "name": "Big bodies",
        "defaults": {"baseUrl": f"{studio}/demo"},
        "nodes": [
            {
                "id": "big",
                "name": "A megabyte",
                "method": "GET",
                "url": "/big?bytes=1000000",
            },
            {
                "id": "many",
                "name": "Many items",
                "method": "POST",
                "url": "/echo",
                "body": {"rows": [{"n": i, "name": f"row {i}"} for i in range(3000)]},
            },
        ],
    }
    save_and_open(page, "big-bodies", doc, "Big bodies")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    big = panel.locator('.card[data-step-index="0"]')
    big.locator("summary").filter(has_text="Response").click()
    with page.expect_download() as download:
        big.get_by_role("button", name="Download body").click()
    assert Path(download.value.path()).stat().st_size == 1_000_000
    search = big.get_by_label("Search in body")
    search.fill("xxxxxxxxxx")
    expect(big.locator(".body-count")).to_have_text("1 of 5000+")
    # A large JSON body: folded, drawn as it is opened.
    many = panel.locator('.card[data-step-index="1"]')
    many.locator("summary").filter(has_text="Response").click()
    tree = many.locator(".tree-root")
    expect(tree).to_be_visible()
    assert many.locator(".tree li").count() < 50  # nothing below the first level yet
    many.locator(".tree-root > li > details > .tree > li").filter(
        has_text='"json"'
    ).locator("summary").first.click()
    many.get_by_label("Search in body").fill('"row 2999"')
    expect(many.locator(".body-count")).to_have_text("1 of 1")
    with page.expect_popup() as raw:
        many.get_by_role("button", name="Open raw").click()
    raw.value.wait_for_load_state()
    assert raw.value.url.startswith("blob:")
    assert '"row 2999"' in raw.value.locator("body").inner_text()
    raw.value.close()


def test_secrets_are_masked_in_value_chips(page):
    page.get_by_role("button", name="+ New").click()
    page.get_by_role("menuitem", name="Login chain").click()
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    chips = panel.locator(".sub-chip")
    password = chips.filter(has_text="{{ .vars.password }}")
    expect(password.locator(".sub-value")).to_have_text("••••")
    assert "secret" not in panel.locator(".subs").first.inner_text()
    user = chips.filter(has_text="{{ .vars.user }}").first
    expect(user.locator(".sub-value")).to_have_text("ada")
    # In the highlighted request body as well.
    step1 = panel.locator('.card[data-step-index="0"]')
    step1.get_by_text("Request", exact=True).click()
    expect(step1.locator("pre mark.sub-variable").last).to_have_text('"••••"')


def test_a_finished_run_leaves_no_failed_request(page):
    """The stream is read to its end, never aborted (an ERR_ABORTED per run)."""
    failed = []
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    open_flow(page, "Simple chain")
    for _ in range(2):
        go(page)
        expect(run_view(page).get_by_text("Flow completed")).to_be_visible()
        settle(page)
        if _ == 0:
            page.get_by_role("button", name="Flow once again").click()
    assert failed == []


def test_stop_now_is_offered_after_a_wait(page, hits):
    doc = {
        "name": "Very slow",
        "defaults": {"baseUrl": f"{hits.url}/demo", "timeout": 20},
        "nodes": [
            {
                "id": "wait",
                "name": "Held until the test ends",
                "method": "GET",
                "url": "/slow?ms=0&hold=stop-now",
            },
            {"id": "after", "name": "After", "method": "GET", "url": "/items"},
        ],
    }
    save_and_open(page, "very-slow", doc, "Very slow")
    bodies = []
    page.on(
        "request",
        lambda r: bodies.append(r.post_data) if r.url.endswith("/stop") else None,
    )
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Running…")).to_be_visible()
    page.get_by_role("button", name="Interrupt the Flow").click()
    stop_now = panel.get_by_role("button", name="Stop now")
    expect(stop_now).to_be_hidden()
    expect(stop_now).to_be_visible()
    assert not stop_now.evaluate("(e) => e === document.activeElement")
    with page.expect_response("**/stop"):
        stop_now.click()
    assert [json.loads(b or "{}") for b in bodies] == [{}, {"force": True}]
    # Aborted at once: the run ends while the target still holds the request.
    expect(panel.get_by_text("Flow interrupted")).to_be_visible()
    step = panel.locator('.card[data-step-index="0"]')
    expect(step).to_contain_text("Failed")
    expect(step).to_contain_text("Stopped now: the request in flight was aborted")
    assert hits.held("stop-now")
    hits.release("stop-now")


def test_launch_browser_opens_only_web_addresses(page, studio):
    doc = {
        "name": "Bad link",
        "defaults": {"baseUrl": f"{studio}/demo"},
        "nodes": [
            {
                "id": "echo",
                "name": "Echo a link",
                "method": "POST",
                "url": "/echo",
                "body": {"link": "javascript:alert(document.cookie)"},
                "launchBrowser": ".json.link",
            },
        ],
    }
    save_and_open(page, "bad-link", doc, "Bad link")
    popups = []
    page.on("popup", lambda p: popups.append(p))
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    expect(page.get_by_text("Not opened: only http(s) addresses open")).to_be_visible()
    assert popups == []
    card = panel.locator(".card").first
    expect(card.get_by_role("link")).to_have_count(0)
    expect(card).to_contain_text("javascript:alert(document.cookie)")


def test_the_page_carries_a_content_security_policy(page, studio):
    response = page.request.get(studio + "/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    # An injected inline script does not run.
    page.evaluate(
        """() => { const s = document.createElement("script");
          s.textContent = "window.injected = true"; document.body.append(s); }"""
    )
    assert page.evaluate("window.injected === undefined")
    page.problems[:] = [p for p in page.problems if "Content Security Policy" not in p]
