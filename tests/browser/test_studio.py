"""Studio's everyday paths in a real browser: open, edit, run, prompt, interrupt,
import, history, themes (fixtures in conftest.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from ..waits import wait_until
from .conftest import INFLIGHT, XSS
from .helpers import (
    HANDLED,
    answer_first_prompt_in_step_mode,
    count_handled,
    execution_id,
    fill_prompt,
    go,
    handled,
    hold_responses,
    open_flow,
    reload,
    run_view,
    save_and_open,
    settle,
    snap,
    state_pill,
    wait_held,
)

# A fetch wrapper that passes a run's stream on in one piece once the run has ended:
# each step's result then comes within the "Running…" placeholder's delay, however
# slow the machine is.
BURST = """(() => {
  const f = window.fetch;
  window.fetch = async (u, init) => {
    const res = await f(u, init);
    if (!String(u).endsWith("/execute-stream") || !res.ok) return res;
    const whole = await res.text();
    return new Response(whole, {status: res.status, headers: res.headers});
  };
})()"""


def test_open_sample_flow_and_run_to_success(page, shots):
    page.add_init_script(BURST)
    reload(page)
    open_flow(page, "Simple chain")
    expect(page.get_by_text("Valid", exact=True)).to_be_visible()
    page.get_by_role("tab", name="Split").click()
    expect(page.get_by_label("Flow JSON")).to_be_visible()
    snap(page, shots, "editor")
    page.get_by_role("tab", name="Form").click()
    # Record any "Running…" placeholder: steps whose result comes within its delay
    # must never show one.
    page.evaluate(
        """() => {
          window.sawPlaceholder = false;
          new MutationObserver((records) => {
            for (const r of records) for (const n of r.addedNodes) {
              if (n.classList && n.classList.contains("running")) {
                window.sawPlaceholder = true;
              }
            }
          }).observe(document.getElementById("run-dock"),
                     {childList: true, subtree: true});
        }"""
    )
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    assert page.evaluate("window.sawPlaceholder") is False
    expect(panel.locator(".progress-text")).to_have_text("2 / 2 steps")
    cards = panel.locator(".card")
    expect(cards).to_have_count(2)
    # Oldest first unless the person chooses newest first.
    expect(cards.nth(0)).to_contain_text("#1")
    panel.get_by_label("Step order").select_option("newest")
    expect(cards.nth(0)).to_contain_text("#2")
    expect(cards.nth(1)).to_contain_text("#1")
    expect(cards.nth(0)).to_contain_text("Success")
    expect(cards.nth(0)).to_contain_text("200")
    # Substituted values are highlighted by kind.
    expect(cards.nth(0).locator("mark.sub-response")).to_have_count(1)
    # Request and response are built when first opened (big bodies cost nothing
    # until then); the keyboard opens them as well as the mouse.
    expect(cards.nth(0).locator("table.kv")).to_have_count(0)
    cards.nth(0).get_by_text("Request", exact=True).click()
    expect(cards.nth(0).locator("table.kv").first).to_contain_text("Accept")
    cards.nth(0).locator("summary").filter(has_text="Response").focus()
    page.keyboard.press("Enter")
    expect(cards.nth(0).locator("pre.code")).to_contain_text('"name"')
    snap(page, shots, "run-finished")
    first_id = execution_id(page)

    # Copy a step as curl; download the execution log.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    cards.nth(1).get_by_role("button", name="Copy as curl").click()
    expect(page.get_by_text("curl command copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("curl --globoff -X GET ") and "/demo/items" in copied
    head = page.evaluate(
        """async () => (await import("/static/js/cards.js"))
          .curlFor({method: "HEAD", url: "http://h.test/x"})"""
    )
    # -I, not -X HEAD: curl would wait for a body that never comes.
    assert head == "curl --globoff -I 'http://h.test/x'"
    with page.expect_download() as download:
        panel.get_by_role("button", name="Download log").click()
    log = json.loads(Path(download.value.path()).read_text("utf-8"))
    assert log["executionId"] == first_id
    assert [e["event"] for e in log["events"]][-1] == "end"
    assert len(log["executionLog"]) == 2

    # Flow once again: a new execution of the same flow.
    page.get_by_role("button", name="Flow once again").click()
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    expect(panel.locator(".rv-meta")).not_to_have_text(first_id)
    expect(panel.locator(".card")).to_have_count(2)
    panel.get_by_label("Step order").select_option("oldest")


def test_prompt_modal_answered(page, shots):
    open_flow(page, "User input")
    count_handled(page)
    # The answer reaches the server; its response reaches the page only after the
    # run has ended (as across workers).
    late = hold_responses(page, "**/api/provide-input")
    go(page)
    prompt = page.get_by_role("dialog", name="Input needed")
    expect(prompt).to_be_visible()
    expect(prompt.get_by_label("Password for", exact=False)).to_have_attribute(
        "type", "password"
    )
    expect(prompt.get_by_label("Username", exact=False)).to_have_attribute(
        "type", "text"
    )
    fill_prompt(prompt, "grace")
    snap(page, shots, "prompt")
    page.keyboard.press("Enter")  # Enter submits
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    expect(panel.locator(".card.success")).to_have_count(2)
    expect(
        panel.locator(".sub-chip.sub-input").filter(has_text="grace")
    ).to_be_visible()
    # In the request body too, substituted values are marked by kind.
    step1 = panel.locator('.card[data-step-index="0"]')
    step1.get_by_text("Request", exact=True).click()
    expect(
        step1.locator("pre mark.sub-input").filter(has_text='"grace"')
    ).to_be_visible()
    # The late answer must not turn "Completed" back into "Running".
    route, response = wait_held(page, late, "the answer's response")
    route.fulfill(response=response)
    wait_until(lambda: handled(page, "/api/provide-input"), 15, message="the answer")
    expect(state_pill(page)).to_have_text("Completed")


def test_prompt_cancel_keeps_a_card_that_reopens_it(page):
    open_flow(page, "User input")
    go(page)
    prompt = page.get_by_role("dialog", name="Input needed")
    expect(prompt).to_be_visible()
    prompt.get_by_role("button", name="Answer later").click()
    expect(prompt).to_be_hidden()
    page.get_by_role("button", name="Answer prompt").click()
    expect(prompt).to_be_visible()
    # Interrupt works while the prompt is open.
    prompt.get_by_role("button", name="Interrupt the Flow").click()
    panel = run_view(page)
    expect(panel.get_by_text("Flow interrupted")).to_be_visible()
    expect(prompt).to_be_hidden()
    # The step that waited and the one after it: both Not Run, both counted.
    expect(panel.locator(".card.notrun")).to_have_count(2)
    expect(panel.locator(".stat").filter(has_text="not run")).to_contain_text("2")


def test_interrupt_five_slow_steps(page, hits, shots):
    open_flow(page, "Slow steps")
    hits.hold_path("/demo/slow", after=1, key="step 2")  # in flight until released
    go(page)
    panel = run_view(page)
    # Wait until step 2's request is in flight at the target.
    wait_until(lambda: hits.held("step 2"), 10, message="step 2's request")
    assert len(hits.paths()) == 2
    with page.expect_response("**/stop"):
        page.get_by_role("button", name="Interrupt the Flow").click()
    interrupting = page.get_by_role("button", name="Interrupting the Flow...")
    expect(interrupting).to_be_visible()
    expect(interrupting).to_be_disabled()
    # The 800 ms rule: step 2's placeholder appears while its request is slow.
    expect(panel.get_by_text("Running…")).to_be_visible()
    snap(page, shots, "run-in-progress")
    hits.release("step 2")
    expect(panel.get_by_text("Flow interrupted")).to_be_visible()
    # The in-flight step completed; every later one shows as Not Run.
    step2 = panel.locator('.card[data-step-index="1"]')
    expect(step2).to_contain_text("Success")
    not_run = panel.locator(".card.notrun")
    expect(not_run).to_have_count(3)
    expect(not_run.first).to_contain_text("Not Run")
    expect(not_run.first).to_contain_text("Slow step 3")
    expect(panel.locator(".card")).to_have_count(5)
    expect(panel.locator(".summary")).to_contain_text("slow-3, slow-4, slow-5")
    snap(page, shots, "interrupted")
    queries = [h["query"] for h in hits.hits if h["path"] == "/demo/slow"]
    assert queries == ["ms=1500", "ms=1500"]  # steps 1 and 2, nothing after

    # History lists the interrupted run and reopens it read-only.
    page.get_by_role("button", name="Close run panel").click()
    page.get_by_role("button", name="History").click()
    history = page.get_by_role("dialog", name="History")
    history.get_by_label("This flow only").check()
    item = history.get_by_role("button").filter(has_text="interrupted").first
    expect(item).to_contain_text("Slow steps")
    expect(history.get_by_role("button").filter(has_text="completed")).to_have_count(0)
    item.click()
    expect(history.get_by_role("heading", name="History: Slow steps")).to_be_visible()
    expect(history.locator(".card.notrun")).to_have_count(3)
    # Stored not-run steps read as templates too.
    expect(history.locator(".card.notrun .ph.sub-variable")).to_have_count(3)
    expect(history.locator(".card.notrun .ph").first).to_have_text("{{ .vars.ms }}")
    expect(history.locator(".card.success")).to_have_count(2)
    expect(history.locator(".summary")).to_contain_text("total time")
    expect(page.get_by_role("button", name="Interrupt the Flow")).to_be_hidden()


def test_edit_node_json_view_and_validation(page, shots):
    open_flow(page, "Simple chain")
    page.get_by_role("tab", name="Split").click()
    json_view = page.get_by_label("Flow JSON")
    step2 = page.get_by_role("region", name="Step 2", exact=False)
    url = step2.get_by_label("URL")
    url.fill("/items/{{ .responses.list.items[0].id }}?view=full")
    expect(json_view).to_have_value(re.compile(r"\?view=full"))
    expect(page.get_by_text("Unsaved", exact=True)).to_be_visible()

    # A duplicate id: the error shows next to the ID field, then clears.
    ident = step2.get_by_label("ID", exact=True)
    ident.fill("list")
    error = step2.get_by_role("alert").filter(has_text="duplicate id")
    expect(error).to_be_visible()
    expect(ident).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#validity")).to_contain_text("problem")
    ident.blur()
    snap(page, shots, "validation")
    # Running it lists the errors (checked first: no 400 in the console).
    go(page)
    panel = run_view(page)
    expect(panel.get_by_role("heading", name="The flow is not valid")).to_be_visible()
    expect(panel.locator(".error-list")).to_contain_text("duplicate id")
    page.get_by_role("button", name="Close run panel").click()
    ident.fill("first")
    expect(error).to_have_count(0)
    expect(page.locator("#validity")).to_have_text("Valid")

    # A body that is not JSON yet never reaches the flow: no run with a stale one.
    step1 = page.get_by_role("region", name="Step 1", exact=False)
    step1.get_by_role("button", name="Edit as JSON").first.click()
    body = step1.get_by_label("Body", exact=True)
    body.fill('{"half":')
    go(page)
    expect(page.get_by_text("Not run: Body of step 1 (List items)")).to_be_visible()
    expect(run_view(page)).to_be_hidden()
    body.fill("")

    # Reorder: drag step 2 onto step 1 (the ↑/↓ buttons do the same).
    page.locator('.node[data-index="0"] .node-toggle').click()  # fold step 1
    page.locator('.node[data-index="1"] .drag-handle').drag_to(
        page.locator('.node[data-index="0"] .node-head')
    )
    expect(page.locator('.node[data-index="0"] .node-id')).to_have_text("first")
    expect(json_view).to_have_value(re.compile(r'"id": "first"[\s\S]*"id": "list"'))
    page.get_by_role("button", name="Move step 2 up").click()
    expect(page.locator('.node[data-index="0"] .node-id')).to_have_text("list")

    # And the other way round: the JSON view updates the form.
    doc = json.loads(json_view.input_value())
    doc["nodes"][0]["name"] = "Renamed in JSON"
    json_view.fill(json.dumps(doc, indent=2))
    expect(
        page.get_by_role("region", name="Step 1", exact=False).locator(".node-name")
    ).to_have_text("Renamed in JSON")


def test_import_flow_file(page, tmp_path):
    doc = {
        "name": "Imported flow",
        "defaults": {"baseUrl": "http://127.0.0.1:9/demo"},
        "nodes": [{"id": "ping", "name": "Ping", "method": "GET", "url": "/items"}],
    }
    path = tmp_path / "imported.json"
    # As Windows editors save it: UTF-16 with a byte-order mark.
    path.write_text(json.dumps(doc), "utf-16")
    page.get_by_label("Import flow file").set_input_files(str(path))
    expect(page.get_by_role("region", name="Step 1: Ping")).to_be_visible()
    expect(page.get_by_text("Unsaved", exact=True)).to_be_visible()
    page.get_by_role("button", name="Save").click()
    dialog = page.get_by_role("dialog", name="Save flow")
    expect(dialog.get_by_label("File name in the workspace")).to_have_value(
        "imported-flow"
    )
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Unsaved", exact=True)).to_be_hidden()
    expect(
        page.get_by_role("list", name="Workspace flows").get_by_role(
            "button", name="Imported flow"
        )
    ).to_be_visible()

    # Rename the file, then delete it.
    page.get_by_role("button", name="Rename").click()
    dialog = page.get_by_role("dialog", name="Rename flow file")
    dialog.get_by_label("New file name").fill("renamed-flow")
    dialog.get_by_role("button", name="Rename").click()
    expect(page.locator("#doc-file")).to_have_text("renamed-flow.json")
    flows = page.get_by_role("list", name="Workspace flows")
    expect(flows.get_by_text("renamed-flow.json", exact=False)).to_be_visible()
    expect(flows.get_by_text("imported-flow.json", exact=False)).to_have_count(0)
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog", name="Delete renamed-flow.json?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(flows.get_by_text("renamed-flow.json", exact=False)).to_have_count(0)


def test_response_values_render_as_text(page):
    open_flow(page, "Echo")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    step = panel.locator(".card").first
    expect(step.locator(".card-name")).to_have_text(f"Echo {XSS}")
    response = step.locator("details").filter(
        has=page.get_by_text("Response", exact=True)
    )
    response.get_by_text("Response", exact=True).click()
    expect(response.locator("pre.code")).to_contain_text(XSS)
    step.get_by_text("Request", exact=True).click()
    expect(step.locator("pre.code").first).to_have_text(XSS)
    assert page.locator("img[src='x']").count() == 0
    assert page.problems == []


def test_dark_theme_toggle_persists(page, studio, shots):
    open_flow(page, "Simple chain")
    page.get_by_role("button", name="Toggle dark theme").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    reload(page)
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    # The last opened flow reopens on reload.
    expect(page.locator("#doc-file")).to_have_text("simple-chain.json")
    snap(page, shots, "dark")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    panel.locator(".card").first.get_by_text("Request", exact=True).click()
    snap(page, shots, "dark-run")
    page.get_by_role("button", name="Close run panel").click()
    page.get_by_role("button", name="Toggle dark theme").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"


def test_large_screen_and_keyboard(browser, studio):
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    pg = context.new_page()
    errors = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.goto(studio + "/")
    expect(pg.get_by_role("list", name="Workspace flows")).to_be_visible()
    # Keyboard: Tab reaches the run button, which shows a visible focus ring.
    pg.keyboard.press("Tab")
    for _ in range(12):
        if pg.evaluate("document.activeElement.id") == "btn-run":
            break
        pg.keyboard.press("Tab")
    assert pg.evaluate("document.activeElement.id") == "btn-run"
    outline = pg.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    context.close()
    assert errors == []


def test_step_by_step_mode(page, shots):
    open_flow(page, "Simple chain")
    page.get_by_label("Run mode").select_option("step")
    go(page)
    panel = run_view(page)
    for step in (1, 2):
        expect(panel.get_by_text(f"Paused before step #{step}")).to_be_visible()
        expect(panel.locator(".card")).to_have_count(step - 1)
        if step == 2:
            snap(page, shots, "step-mode")
        panel.get_by_role("button", name="Continue", exact=True).click()
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    expect(panel.locator(".card.success")).to_have_count(2)


def test_try_it_out_and_autocomplete(page, shots):
    open_flow(page, "Simple chain")
    step2 = page.get_by_role("region", name="Step 2", exact=False)
    # Autocomplete offers earlier node ids after "{{".
    url = step2.get_by_label("URL")
    url.fill("/items/")
    # Low in the window, the suggestions open above the field, not cut off.
    url.evaluate("(e) => e.scrollIntoView({block: 'end'})")
    url.press("End")
    url.type("{{ .responses.li")
    suggestions = page.get_by_role("listbox", name="Placeholder suggestions")
    expect(suggestions.get_by_role("option").first).to_contain_text(".responses.list")
    box, field = suggestions.bounding_box(), url.bounding_box()
    assert box["y"] + box["height"] <= 800 and box["y"] + box["height"] <= field["y"]
    page.keyboard.press("Enter")
    expect(url).to_have_value("/items/{{ .responses.list }}")
    url.fill("/items/{{ .responses.list.items[0].id }}")

    step2.get_by_role("button", name="Try it out").click()
    dialog = page.get_by_role("dialog", name="Try it out: Fetch the first item")
    body = dialog.get_by_label("Response body of list")
    # Prefilled with the fields the step uses.
    expect(body).to_have_value(re.compile(r'"name"'))
    body.fill('{"items": [{"id": 2, "name": "banana"}]}')
    dialog.get_by_role("button", name="Send request").click()
    result = dialog.locator(".card")
    expect(result).to_contain_text("Success")
    expect(result.locator(".step-no")).to_have_text("#2")
    expect(result.locator(".card-url")).to_contain_text("/items/2")
    snap(page, shots, "try-it")


def test_launch_browser_opens_a_tab(page, studio):
    doc = {
        "name": "OAuth-like",
        "defaults": {"baseUrl": f"{studio}/demo"},
        "nodes": [
            {
                "id": "auth",
                "name": "Authorize",
                "method": "GET",
                "url": "/authorize",
                "launchBrowser": ".authorizeUrl",
            }
        ],
    }
    save_and_open(page, "oauth-like", doc, "OAuth-like")
    with page.expect_popup() as popup:
        go(page)
    popup.value.wait_for_load_state()
    assert "/demo/items?state=demo" in popup.value.url
    link = run_view(page).locator(".card").get_by_role("link")
    expect(link).to_have_text(re.compile(r"/demo/items\?state=demo$"))


def test_closing_the_tab_mid_run_stops_the_flow(browser, studio, hits):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.goto(studio + "/")
    open_flow(pg, "Slow steps")
    pg.get_by_role("button", name="Go with the Flow").click()
    wait_until(hits.paths, 10, message="step 1's request")
    # The target can see step 1 before the page has read the run's first event.
    expect(run_view(pg).locator(".rv-meta")).to_have_text(re.compile(r"^exec-"))
    eid = run_view(pg).locator(".rv-meta").inner_text()
    context.close()  # the tab goes away while step 1 is in flight

    def ended():
        with urllib.request.urlopen(f"{studio}/api/executions/{eid}") as resp:
            found = json.load(resp)
        return found if found["status"] != "running" else None

    record = wait_until(ended, 15, message="the run to end")
    # The in-flight step completed; no later step started.
    assert hits.paths() == ["/demo/slow"]
    assert record["status"] == "interrupted"


@pytest.fixture
def token_studio(tmp_path):
    """Studio behind FLOWRUN_TOKEN, on a development server in a thread."""
    import threading

    from werkzeug.serving import make_server

    from flowrun import create_app

    app = create_app(
        {
            "FLOWRUN_TOKEN": "s3cret-token",
            "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    app.extensions["flowrun"].store.close()


def test_token_sign_in_through_the_page(browser, token_studio):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(INFLIGHT)
    pg = context.new_page()
    pg.goto(token_studio + "/")
    expect(pg.get_by_role("alert").filter(has_text="requires a token")).to_be_visible()
    # The tokenless page's own 401s must be over before errors are collected.
    settle(pg)
    errors = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.goto(token_studio + "/?token=s3cret-token")
    # The cookie set by /?token= makes every same-origin API call work.
    flows = pg.get_by_role("list", name="Workspace flows")
    expect(flows.get_by_role("button").first).to_be_visible()
    expect(pg.get_by_role("alert").filter(has_text="requires a token")).to_be_hidden()
    # A run streams too (the template calls this server's own demo API).
    pg.get_by_role("button", name="+ New").click()
    pg.get_by_role("menuitem", name="Simple chain").click()
    pg.get_by_role("button", name="Go with the Flow").click()
    expect(run_view(pg).get_by_text("Flow completed")).to_be_visible()
    context.close()
    assert errors == []


def test_failed_step_ends_the_flow(page, studio):
    page.get_by_role("button", name="+ New").click()
    page.get_by_role("menuitem", name="Empty flow").click()
    page.get_by_role("tab", name="JSON").click()
    doc = {
        "name": "Fails",
        "defaults": {"baseUrl": f"{studio}/demo"},
        "nodes": [
            {
                "id": "boom",
                "name": "Server error",
                "method": "GET",
                "url": "/status/500",
            },
            {
                "id": "after",
                "name": "Never sent",
                "method": "GET",
                "url": "/items/{{ .responses.boom.id }}?v={{ $guid }}&t=\\{{x}}",
            },
        ],
    }
    page.get_by_label("Flow JSON").fill(json.dumps(doc, indent=2))
    page.get_by_role("tab", name="Form").click()
    expect(page.get_by_role("region", name="Step 2: Never sent")).to_be_visible()
    go(page)
    panel = run_view(page)
    expect(panel.get_by_role("heading", name="Flow failed")).to_be_visible()
    failed = panel.locator(".card.failure")
    expect(failed).to_contain_text("500")
    expect(failed.get_by_role("listitem").filter(has_text="failed:")).to_have_count(1)
    not_run = panel.locator(".card.notrun")
    expect(not_run).to_contain_text("Never sent")
    # Its URL reads as a template: as written, each placeholder a chip of its kind.
    url = not_run.locator(".card-url")
    expect(url.locator(".url-tag")).to_have_text("as written")
    expect(url.locator(".url-text")).to_have_text(
        "/items/{{ .responses.boom.id }}?v={{ $guid }}&t=\\{{x}}"
    )
    expect(url.locator(".ph.sub-response")).to_have_text("{{ .responses.boom.id }}")
    expect(url.locator(".ph.sub-dynamic")).to_have_text("{{ $guid }}")
    # An escaped \{{ is text, not a placeholder: no chip.
    expect(url.locator(".ph")).to_have_count(2)
    expect(not_run).to_contain_text("placeholders were never resolved")


def test_import_postman_collection(page, studio, tmp_path):
    collection = {
        "info": {
            "name": "Demo collection",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/"
            "collection.json",
        },
        "item": [
            {
                "name": "List items",
                "request": {"method": "GET", "url": f"{studio}/demo/items"},
            }
        ],
    }
    path = tmp_path / "demo.postman_collection.json"
    path.write_text(json.dumps(collection), "utf-8-sig")  # a byte-order mark
    page.get_by_label("Import flow file").set_input_files(str(path))
    preview = page.get_by_role("dialog", name="Import preview")
    expect(preview).to_contain_text("Demo collection")
    # The import's counts are shown; its report does not become part of the flow.
    expect(preview).to_contain_text("(1 request: 1 as they were)")
    preview.get_by_role("button", name="Create flow").click()
    expect(page.get_by_role("region", name="Step 1: List items")).to_be_visible()
    expect(
        page.get_by_text("Imported demo.postman_collection.json (1 request: 1 as")
    ).to_be_visible()
    page.get_by_role("tab", name="JSON").click()
    expect(page.get_by_label("Flow JSON")).not_to_have_value(re.compile("importReport"))
    page.get_by_role("tab", name="Form").click()
    go(page)
    expect(run_view(page).get_by_text("Flow completed")).to_be_visible()


def test_import_curl_command(page, studio):
    # Both imports read as actions and look alike: the curl one is no bare label.
    imports = page.get_by_role("group", name="Import")
    expect(imports.locator("label.file-btn")).to_have_text("Import file…")
    curl = imports.get_by_role("button", name="Import curl…", exact=True)
    look = """(e) => { const s = getComputedStyle(e);
      return [s.backgroundColor, s.borderColor, s.color, s.height]; }"""
    assert curl.evaluate(look) == imports.locator("label.file-btn").evaluate(look)
    curl.click()
    dialog = page.get_by_role("dialog", name="Import from curl")
    dialog.get_by_label("curl command").fill(
        f"curl -H 'Accept: application/json' {studio}/demo/items"
    )
    dialog.get_by_role("button", name="Preview").click()
    preview = page.get_by_role("dialog", name="Import preview")
    expect(preview).to_contain_text("/demo/items")
    preview.get_by_role("button", name="Create flow").click()
    expect(page.get_by_role("region", name="Step 1", exact=False)).to_be_visible()
    expect(page.get_by_text("Unsaved", exact=True)).to_be_visible()
    go(page)
    expect(run_view(page).get_by_text("Flow completed")).to_be_visible()


def test_events_of_other_executions_are_ignored(page):
    """A stream carrying a foreign execution's events shows only its own run."""
    mine, other = "exec-1700000000000-aaaaaaaaa", "exec-1700000000000-bbbbbbbbb"

    def record(eid, name, status="completed"):
        return {
            "executionId": eid,
            "step": 1,
            "stepIndex": 0,
            "id": "list",
            "name": name,
            "status": status,
            "method": "GET",
            "url": "http://example.test/items",
            "request": {"headers": {}, "body": None},
            "response": {"status": 200, "statusText": "OK", "headers": {}, "body": {}},
            "validations": [],
            "substitutions": [],
            "duration": 0.01,
        }

    events = [
        ("start", {"executionId": mine, "totalSteps": 1, "flowName": "x"}),
        ("step", record(other, "Foreign step", "failed")),
        ("step_start", {"executionId": mine, "step": 1, "stepIndex": 0}),
        ("step", record(mine, "My step")),
        ("end", {"executionId": other, "success": False, "interrupted": True}),
        (
            "end",
            {
                "executionId": mine,
                "success": True,
                "interrupted": False,
                "stepsExecuted": 1,
                "stepsSkipped": 0,
                "stepsFailed": 0,
                "notRun": [],
                "duration": 0.02,
                "executionLog": [],
            },
        ),
    ]
    body = "".join(
        f"id: {i}\nevent: {name}\ndata: {json.dumps(data)}\n\n"
        for i, (name, data) in enumerate(events, 1)
    )
    page.route(
        "**/api/execute-stream",
        lambda route: route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream", "X-Execution-Id": mine},
            body=": keep-alive\n\n" + body,
        ),
    )
    open_flow(page, "Simple chain")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    expect(panel.locator(".card")).to_have_count(1)
    expect(panel.locator(".card")).to_contain_text("My step")
    expect(panel.locator(".rv-meta")).to_have_text(mine)


def test_auto_step_mode_continue_now(page):
    open_flow(page, "Simple chain")
    page.get_by_label("Run mode").select_option("auto")
    page.get_by_label("Auto-step delay (ms)").fill("20000")
    go(page)
    panel = run_view(page)
    countdown = panel.get_by_text(re.compile(r"Auto-step: step #2 .* in \d+\.\d s"))
    expect(countdown).to_be_visible()
    expect(panel.locator(".card")).to_have_count(1)
    panel.get_by_role("button", name="Continue now").click()
    expect(panel.get_by_text("Flow completed")).to_be_visible()


def test_every_control_has_a_name(page):
    """Inputs are labelled and buttons named, in the editor and the run panel."""
    open_flow(page, "User input")
    page.get_by_role("button", name="Flow settings").click()
    go(page)
    expect(page.get_by_role("dialog", name="Input needed")).to_be_visible()
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
          .filter((el) => el.getClientRects().length)
          .filter((el) => {
            if (el.matches("button")) {
              return !(el.textContent.trim() || el.getAttribute("aria-label"));
            }
            return !(el.labels && el.labels.length) && !el.getAttribute("aria-label");
          })
          .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []


def test_import_flowsphere_steps_and_prompts(page, tmp_path):
    """FlowSphere's older spellings: `steps`, `prompts`, a single `condition`."""
    doc = {
        "name": "Legacy FlowSphere",
        "defaults": {"baseUrl": "http://127.0.0.1:9/demo"},
        "steps": [
            {
                "id": "login",
                "name": "Log in",
                "method": "post",
                "url": "/login",
                "prompts": {"password": "Password:"},
                "body": {"password": "{{ .input.password }}"},
            },
            {
                "id": "me",
                "name": "Me",
                "method": "GET",
                "url": "/me",
                "condition": {"source": "node", "node": "login", "statusCode": 200},
            },
        ],
    }
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(doc), "utf-8")

    # Imported while the last flow is still loading: the import stays.
    held = []
    page.route(
        "**/api/flows/*",
        lambda route: (
            held.append(route)
            if route.request.method == "GET" and not held
            else route.continue_()
        ),
    )
    page.add_init_script(HANDLED)
    reload(page, opened=False)
    loading = wait_held(page, held, "the last flow's request")
    page.get_by_label("Import flow file").set_input_files(str(path))
    step1 = page.get_by_role("region", name="Step 1: Log in")
    expect(step1).to_be_visible()
    loading.continue_()
    path = urlsplit(loading.request.url).path
    wait_until(lambda: handled(page, path), 15, message="the last flow's answer")
    expect(step1).to_be_visible()
    expect(step1.get_by_label("Prompts key 1")).to_have_value("password")
    expect(page.get_by_role("region", name="Step 2: Me")).to_be_visible()
    expect(page.locator("#validity")).to_have_text("Valid")
    page.get_by_role("tab", name="JSON").click()
    text = page.get_by_label("Flow JSON").input_value()
    assert '"steps"' not in text and '"userPrompts"' in text and '"conditions"' in text


def test_server_unreachable_is_said_plainly(page):
    open_flow(page, "Simple chain")
    # Requests aborted on purpose are logged by the browser, now or a moment later.
    page.tolerated = ("net::ERR_FAILED",)
    page.route("**/api/**", lambda route: route.abort())
    page.get_by_role("button", name="Validate").click()
    expect(page.locator("#validity")).to_have_text("Not checked: server unreachable")
    expect(
        page.get_by_text("Could not reach the flowrun server: is it running?")
    ).to_be_visible()
    offline = page.get_by_role("alert").filter(has_text="cannot be reached")
    expect(offline).to_be_visible()
    go(page)
    panel = run_view(page)
    expect(panel.get_by_role("heading", name="The run could not start")).to_be_visible()
    expect(panel).to_contain_text("Could not reach the flowrun server")
    # The server answers again: Studio notices by itself.
    page.unroute("**/api/**")
    expect(offline).to_be_hidden()
    expect(page.locator("#validity")).to_have_text("Valid")
    # Only the aborted requests were logged, nothing thrown.
    assert all("net::ERR_FAILED" in p for p in page.problems), page.problems


def test_leaving_with_unsaved_edits_asks_first(browser, studio):
    # Its own context: the page really closes once the question is accepted.
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.goto(studio + "/")
    open_flow(pg, "Simple chain")
    pg.get_by_role("button", name="Flow settings").click()
    pg.get_by_label("Flow name").fill("Edited, not saved")
    expect(pg.get_by_text("Unsaved", exact=True)).to_be_visible()
    asked = []
    pg.on("dialog", lambda d: (asked.append(d.type), d.accept()))
    with pg.expect_event("close"):
        pg.close(run_before_unload=True)
    assert asked == ["beforeunload"]
    context.close()


def test_a_click_as_the_first_flow_opens_is_not_lost(browser, studio):
    # Pressed on one flow while the first flow loads, released once it has opened:
    # the list must not be drawn again in between (the click would go nowhere).
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    held = []
    pg.route(
        "**/api/flows/*",
        lambda route: route.continue_() if held else held.append(route),
    )
    pg.goto(studio + "/")
    flows = pg.get_by_role("list", name="Workspace flows")
    item = flows.get_by_role("button", name="Slow steps")
    item.wait_for()
    wait_held(pg, held, "the first flow's request")
    assert "slow-steps" not in held[0].request.url  # another flow opens first
    box = item.bounding_box()
    pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    pg.mouse.down()
    held[0].continue_()
    expect(flows.locator('[aria-current="true"]')).to_have_count(1)
    pg.mouse.up()
    expect(item).to_have_attribute("aria-current", "true")
    expect(pg.get_by_label("Flow name")).to_have_value("Slow steps")
    context.close()


def test_edits_made_while_another_flow_loads_are_kept(page):
    flows = page.get_by_role("list", name="Workspace flows")
    expect(flows.locator('[aria-current="true"]')).to_have_count(1)
    opened = flows.locator('[aria-current="true"]').inner_text()
    held = []
    page.route("**/api/flows/user-input", lambda route: held.append(route))
    flows.get_by_role("button", name="User input").click()
    wait_held(page, held, "the flow's request")
    # Nothing to discard at the click; then an edit, before the file arrives.
    url = page.get_by_role("region", name="Step 1", exact=False).get_by_label("URL")
    url.fill("/edited-while-loading")
    held[0].continue_()
    expect(
        page.get_by_text("Kept your changes: user-input.json was not opened.")
    ).to_be_visible()
    expect(url).to_have_value("/edited-while-loading")
    expect(page.get_by_text("Unsaved", exact=True)).to_be_visible()
    assert flows.locator('[aria-current="true"]').inner_text() == opened


def test_a_broken_workspace_file_is_marked_not_opened(page):
    def listing(route):
        flows = route.fetch().json()["flows"]
        bad = {"name": "aaa-broken.json", "flowName": None, "nodes": 0, "invalid": True}
        route.fulfill(json={"flows": [bad, *flows]})

    page.route("**/api/flows", listing)
    page.evaluate("localStorage.clear()")
    reload(page)
    flows = page.get_by_role("list", name="Workspace flows")
    broken = flows.get_by_role("button").filter(has_text="aaa-broken.json")
    expect(broken).to_contain_text("not a valid flow")
    # On a first visit the first *usable* flow opens, not an unsaved template.
    expect(flows.locator('[aria-current="true"]')).to_have_count(1)
    expect(page.get_by_text("Unsaved", exact=True)).to_be_hidden()
    broken.click()
    expect(page.get_by_text("aaa-broken.json is not valid JSON")).to_be_visible()


def test_step_mode_prompt_answer_keeps_the_pause(page):
    """The next `paused` may arrive before the answer's response: it keeps the word."""
    open_flow(page, "User input")
    count_handled(page)
    # A slow server: the answer's response lands after the next `paused`.
    late = hold_responses(page, "**/api/provide-input")
    panel, prompt = answer_first_prompt_in_step_mode(page, "bob")
    expect(panel.get_by_text("Paused before step #2")).to_be_visible()
    route, response = wait_held(page, late, "the answer's response")
    route.fulfill(response=response)
    wait_until(lambda: handled(page, "/api/provide-input"), 15, message="the answer")
    expect(state_pill(page)).to_have_text("Paused")
    panel.get_by_role("button", name="Continue", exact=True).click()
    expect(panel.get_by_text("Flow completed")).to_be_visible()


def test_run_panel_closes_while_a_prompt_waits(page):
    """A waiting prompt traps nobody: the panel closes, the run waits for later."""
    open_flow(page, "User input")
    go(page)
    panel = run_view(page)
    prompt = page.get_by_role("dialog", name="Input needed")
    expect(prompt).to_be_visible()
    eid = execution_id(page)
    prompt.get_by_role("button", name="Answer later").click()
    page.get_by_role("button", name="Close run panel").click()
    expect(panel).to_be_hidden()
    # The top bar says what the run is doing and brings it back.
    show = page.get_by_role("button", name="Show run")
    expect(show).to_contain_text("Waiting for input")
    expect(show).to_be_focused()
    expect(page.get_by_text("The flow is waiting for your input")).to_be_visible()
    # History cannot swap the live run out: its own entry brings it back.
    page.get_by_role("button", name="History").click()
    history = page.get_by_role("dialog", name="History")
    history.get_by_role("button").filter(has_text=eid).click()
    expect(history).to_be_hidden()
    expect(prompt).to_be_visible()
    expect(prompt.get_by_label("Username", exact=False)).to_be_focused()
    # Escape closes the prompt first (a card keeps it), then the panel.
    page.keyboard.press("Escape")
    expect(prompt).to_be_hidden()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(show).to_be_visible()
    # Go with the Flow returns to the same run; the prompt is still answerable.
    go(page)
    expect(panel.locator(".rv-meta")).to_have_text(eid)
    expect(show).to_be_hidden()
    panel.get_by_role("button", name="Answer prompt").click()
    fill_prompt(prompt, "grace")
    page.keyboard.press("Enter")
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    expect(panel.locator(".card.success")).to_have_count(2)


def test_run_goes_on_while_the_panel_is_closed(page, hits):
    open_flow(page, "Slow steps")
    hits.hold_path("/demo/slow", after=1, key="step 2")  # in flight until released
    go(page)
    panel = run_view(page)
    page.get_by_role("button", name="Close run panel").click()
    expect(panel).to_be_hidden()
    show = page.get_by_role("button", name="Show run")
    expect(show).to_contain_text("Running")
    expect(page.get_by_text("The flow keeps running")).to_be_visible()
    # Not stopped: the next step starts with the panel closed.
    wait_until(lambda: hits.held("step 2"), 10, message="step 2's request")
    assert len(hits.paths()) == 2
    show.click()
    expect(panel.locator('.card[data-step-index="0"]')).to_contain_text("Success")
    with page.expect_response("**/stop"):
        page.get_by_role("button", name="Interrupt the Flow").click()
    page.get_by_role("button", name="Close run panel").click()
    expect(panel).to_be_hidden()
    hits.release("step 2")  # only now can the run end: unseen
    # It ends unseen: the top bar keeps the outcome until the panel is opened.
    expect(show).to_contain_text("Interrupted")
    expect(
        page.get_by_text("Flow interrupted: Show run has the details.")
    ).to_be_visible()
    show.click()
    expect(panel.get_by_text("Flow interrupted")).to_be_visible()
    page.get_by_role("button", name="Close run panel").click()
    expect(show).to_be_hidden()


# A fetch wrapper that holds the stream's `end` frame back until the test calls
# releaseEnd(), as a slow network or a large execution log would: the run is over
# on the server, and the page does not know it yet.
HOLD_END = """(() => {
  let release;
  const released = new Promise((r) => { release = r; });
  window.releaseEnd = () => release();
  const f = window.fetch;
  window.fetch = async (u, init) => {
    const res = await f(u, init);
    if (!String(u).endsWith("/execute-stream") || !res.ok) return res;
    const dec = new TextDecoder(), enc = new TextEncoder();
    let held = false;
    const body = res.body.pipeThrough(new TransformStream({
      async transform(chunk, out) {
        const text = dec.decode(chunk, {stream: true});
        const at = held ? -1 : text.indexOf("event: end");
        if (at < 0) return out.enqueue(enc.encode(text));
        held = true;
        out.enqueue(enc.encode(text.slice(0, at)));
        await released;
        out.enqueue(enc.encode(text.slice(at)));
      },
    }));
    return new Response(body, {status: res.status, headers: res.headers});
  };
})()"""


def test_interrupt_after_the_last_step_asks_nothing(page):
    """After the last step's result, Interrupt sends no stop the server would refuse."""
    page.add_init_script(HOLD_END)
    reload(page)
    open_flow(page, "Simple chain")
    stops = []
    page.on("request", lambda r: stops.append(r.url) if "/stop" in r.url else None)
    go(page)
    panel = run_view(page)
    expect(panel.locator(".card.success")).to_have_count(2)
    expect(panel.locator(".summary")).to_be_hidden()
    page.get_by_role("button", name="Interrupt the Flow").click()
    expect(page.get_by_text("Nothing left to interrupt")).to_be_visible()
    expect(page.get_by_role("button", name="Interrupt the Flow")).to_be_enabled()
    page.evaluate("releaseEnd()")
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    assert stops == []  # and no 409 in the console (the page fixture checks)


def test_prompt_answered_elsewhere_closes(page, studio, hits):
    """Once the prompt's step starts, its form closes: an answer would be a 409."""
    doc = {
        "name": "Slow prompt",
        "defaults": {"baseUrl": f"{hits.url}/demo"},
        "nodes": [
            {
                "id": "ask",
                "name": "Ask, then wait",
                "method": "GET",
                "url": "/slow?ms=0&hold=answered",
                "userPrompts": {"note": "Anything:"},
            }
        ],
    }
    save_and_open(page, "slow-prompt", doc, "Slow prompt")
    go(page)
    prompt = page.get_by_role("dialog", name="Input needed")
    expect(prompt).to_be_visible()
    eid = execution_id(page)
    # Another client (a second tab, the API) answers it.
    answer = {"executionId": eid, "stepIndex": 0, "userInput": {"note": "x"}}
    request = urllib.request.Request(
        f"{studio}/api/provide-input",
        data=json.dumps(answer).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 200
    # Closed when the step starts, while its request is still held at the target.
    expect(prompt).to_be_hidden()
    expect(
        page.get_by_text("The prompt of step #1 was answered elsewhere.")
    ).to_be_visible()
    # The step_start event comes before its request is sent: wait for it to arrive.
    wait_until(lambda: hits.held("answered"), 10, message="the step's request")
    assert hits.paths() == ["/demo/slow"]
    hits.release("answered")
    expect(run_view(page).get_by_text("Flow completed")).to_be_visible()


def test_conflicts_the_server_reports_are_quiet(page):
    """409 (no longer paused, already answered) is no failure; a 500 still is."""
    open_flow(page, "User input")
    page.evaluate(
        """() => {
          window.shown = [];
          const error = document.getElementById("prompt-error");
          new MutationObserver(() => {
            if (!error.hidden) window.shown.push("prompt: " + error.textContent);
          }).observe(error, {attributes: true, childList: true, characterData: true});
          new MutationObserver((records) => {
            for (const r of records) for (const n of r.addedNodes) {
              window.shown.push(n.className + ": " + n.textContent);
            }
          }).observe(document.getElementById("toasts"), {childList: true});
        }"""
    )

    def continue_then_409(route):
        route.fetch()  # the run goes on, but this client hears "not paused"
        route.fulfill(status=409, json={"error": "Execution is not paused"})

    answers = []

    def answer(route):
        answers.append(route.request.post_data_json)
        if len(answers) == 1:
            route.fulfill(status=500, json={"error": "Server trouble"})
        else:  # answered meanwhile through another worker
            route.fulfill(status=409, json={"error": "Prompt of step 0 was answered"})

    page.route("**/api/executions/*/continue", continue_then_409)
    page.route("**/api/provide-input", answer)
    panel, prompt = answer_first_prompt_in_step_mode(page, "grace")
    # A real failure is reported, and the prompt stays for another try.
    expect(
        prompt.get_by_text("Could not send the answer: Server trouble")
    ).to_be_visible()
    page.keyboard.press("Enter")
    expect(prompt).to_be_hidden()
    expect(
        page.get_by_text("The prompt of step #1 was already answered.")
    ).to_be_visible()
    # The answer that won (sent here through the API) lets the run go on.
    page.unroute("**/api/provide-input")
    page.evaluate(
        """(body) => fetch("/api/provide-input", {method: "POST", body:
          JSON.stringify(body), headers: {"Content-Type": "application/json"}})""",
        answers[-1],
    )
    expect(panel.get_by_text("Paused before step #2")).to_be_visible()
    panel.get_by_role("button", name="Continue", exact=True).click()
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    shown = page.evaluate("window.shown")
    assert not [s for s in shown if "toast-error" in s], shown
    assert [s for s in shown if s.startswith("prompt:")] == [
        "prompt: Could not send the answer: Server trouble"
    ], shown
    # Chromium itself logs every 4xx/5xx response it receives as a console error,
    # whatever the page does with it: those lines, and only those, are expected.
    logged = [p for p in page.problems if "Failed to load resource" not in p]
    assert logged == [] and len(page.problems) == 4, page.problems
    page.problems.clear()


def test_copy_as_curl_gives_a_command_curl_runs(page, hits):
    """Studio's "Copy as curl" text, run by the real curl against the target."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    command = page.evaluate(
        """async (base) => {
            const { curlFor } = await import("/static/js/cards.js");
            return curlFor({
                method: "POST",
                url: base + "/demo/echo?filter[name]=a b&x={y}",
                request: {
                    headers: {"Content-Type": "application/json", "X-Empty": "",
                              "X-Quote": "it's"},
                    body: {a: "it's", b: [1]},
                },
            });
        }""",
        hits.url,
    )
    ran = subprocess.run(
        ["bash", "-c", command + " --silent --show-error"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ran.returncode == 0, (command, ran.stderr)
    echoed = json.loads(ran.stdout)
    assert echoed["args"] == {"filter[name]": ["a b"], "x": ["{y}"]}
    assert echoed["json"] == {"a": "it's", "b": [1]}
    assert echoed["headers"]["X-Empty"] == ""
    assert echoed["headers"]["X-Quote"] == "it's"
