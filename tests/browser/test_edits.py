"""No edit is ever lost: text that does not parse is kept and refused, unsaved work
is marked, guarded and kept across a reload, and every edit can be undone."""

from __future__ import annotations

import json
import urllib.request

from playwright.sync_api import expect

from ..waits import wait_until
from .conftest import new_page
from .helpers import go, open_flow, reload, run_view, settle, step_region


def stored(studio: str, name: str) -> dict:
    with urllib.request.urlopen(f"{studio}/api/flows/{name}") as resp:
        return json.load(resp)


def test_invalid_checks_are_kept_and_save_refuses(page, studio):
    open_flow(page, "Simple chain")
    before = stored(studio, "simple-chain")["nodes"][0]["validations"]
    step1 = step_region(page, 1)
    checks = step1.locator(".checks-field").first
    checks.get_by_role("button", name="Edit as JSON").click()
    text = checks.get_by_label("Checks (JSON)")
    text.fill('[{"httpStatusCode": 200}, {"jsonpath": ".count"')
    page.keyboard.press("Control+s")
    expect(page.get_by_text("Not saved: Checks of step 1 (List items)")).to_be_visible()
    # Nothing claims it is fine: not "Valid", marked unsaved, the field marked.
    expect(page.locator("#validity")).to_have_text("1 field not valid yet")
    expect(page.get_by_text("Unsaved", exact=True)).to_be_visible()
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(checks.get_by_role("alert")).to_contain_text("Not valid JSON")
    # What was typed is still there, and the file kept its old checks.
    expect(text).to_have_value('[{"httpStatusCode": 200}, {"jsonpath": ".count"')
    assert stored(studio, "simple-chain")["nodes"][0]["validations"] == before
    # Fixed, it saves.
    text.fill('[{"httpStatusCode": 200}, {"jsonpath": ".count", "exists": true}]')
    page.keyboard.press("Control+s")
    expect(page.get_by_text("Saved simple-chain.json")).to_be_visible()
    assert stored(studio, "simple-chain")["nodes"][0]["validations"][1] == {
        "jsonpath": ".count",
        "exists": True,
    }
    put_back = stored(studio, "simple-chain")
    put_back["nodes"][0]["validations"] = before
    page.evaluate(
        """(doc) => fetch("/api/flows/simple-chain", {method: "PUT",
          headers: {"Content-Type": "application/json"}, body: JSON.stringify(doc)})""",
        put_back,
    )


def test_json_view_syntax_error_is_kept_and_blocks_the_form(page):
    open_flow(page, "Simple chain")
    page.get_by_role("tab", name="JSON").click()
    json_view = page.get_by_label("Flow JSON")
    broken = json_view.input_value().replace('"List items"', '"Listed items" oops', 1)
    json_view.fill(broken)
    expect(page.get_by_role("alert").filter(has_text="Not valid JSON")).to_be_visible()
    # The form shows the last valid flow and says why it waits, instead of
    # showing stale data as if it were current.
    page.get_by_role("tab", name="Form").click()
    blocked = page.get_by_role("alert").filter(has_text="does not parse yet")
    expect(blocked).to_be_visible()
    # Run refuses and shows the view that has the problem.
    go(page)
    expect(page.get_by_text("Not run: The JSON view is not valid yet")).to_be_visible()
    expect(json_view).to_be_visible()
    expect(json_view).to_be_focused()
    expect(json_view).to_have_value(broken)
    expect(run_view(page)).to_be_hidden()
    # Fixed in the JSON, the form follows.
    json_view.fill(broken.replace('"Listed items" oops', '"Listed items"'))
    page.get_by_role("tab", name="Form").click()
    expect(blocked).to_be_hidden()
    expect(step_region(page, 1).locator(".node-name")).to_have_text("Listed items")


def test_a_draft_is_guarded_on_switch_and_on_leave(browser, studio):
    pg = new_page(browser, studio)
    open_flow(pg, "Simple chain")
    step1 = step_region(pg, 1)
    # A header with a value and no name yet: kept as typed, not a header.
    step1.get_by_role("button", name="+ Header").click()
    step1.get_by_label("Headers value 1").fill("no name yet")
    expect(step1.get_by_role("alert").filter(has_text="no name")).to_be_visible()
    expect(pg.get_by_text("Unsaved", exact=True)).to_be_visible()
    # Switching flows asks; cancelling keeps the text.
    pg.get_by_role("list", name="Workspace flows").get_by_role(
        "button", name="User input"
    ).click()
    ask = pg.get_by_role("dialog", name="Discard unsaved changes?")
    expect(ask).to_be_visible()
    # The question starts on Cancel, never on the destructive answer.
    expect(ask.get_by_role("button", name="Cancel")).to_be_focused()
    pg.keyboard.press("Enter")
    expect(step1.get_by_label("Headers value 1")).to_have_value("no name yet")
    # So does a new flow.
    pg.get_by_role("button", name="+ New").click()
    pg.get_by_role("menuitem", name="Empty flow").click()
    expect(ask).to_be_visible()
    ask.get_by_role("button", name="Cancel").click()
    # And leaving the page.
    asked = []
    pg.on("dialog", lambda d: asked.append(d.type))
    pg.leaving = True
    with pg.expect_event("close"):
        pg.close(run_before_unload=True)
    assert asked == ["beforeunload"]
    assert pg.problems == []
    pg.context.close()


def test_delete_move_duplicate_and_typing_undo_and_redo(page):
    open_flow(page, "Simple chain")
    names = page.locator(".nodes > .node .node-name")
    expect(names).to_have_text(["List items", "Fetch the first item"])
    page.get_by_role("button", name="Delete step 2").click()
    expect(names).to_have_text(["List items"])
    # The notice offers Undo; so does Ctrl+Z. Focus is never left on a delete.
    notice = page.get_by_role("status").filter(has_text="Deleted")
    expect(notice.get_by_role("button", name="Undo")).to_be_visible()
    focused = page.evaluate("document.activeElement.getAttribute('aria-label') || ''")
    assert not focused.startswith("Delete")
    notice.get_by_role("button", name="Undo").click()
    expect(names).to_have_text(["List items", "Fetch the first item"])

    page.get_by_role("button", name="Move step 2 up").click()
    expect(names).to_have_text(["Fetch the first item", "List items"])
    page.get_by_role("button", name="Duplicate step 1").click()
    expect(names).to_have_text(
        ["Fetch the first item", "Fetch the first item (copy)", "List items"]
    )
    url = step_region(page, 1).get_by_label("URL")
    url.fill("/typed")
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("Control+z")  # the typing
    expect(url).to_have_value("/items/{{ .responses.list.items[0].id }}")
    page.keyboard.press("Control+z")  # the duplicate
    expect(names).to_have_text(["Fetch the first item", "List items"])
    page.keyboard.press("Control+z")  # the move
    expect(names).to_have_text(["List items", "Fetch the first item"])
    expect(page.get_by_text("Unsaved", exact=True)).to_be_hidden()  # as saved
    page.keyboard.press("Control+Shift+z")
    expect(names).to_have_text(["Fetch the first item", "List items"])
    page.get_by_role("button", name="Redo").click()
    expect(names).to_have_text(
        ["Fetch the first item", "Fetch the first item (copy)", "List items"]
    )
    page.get_by_role("button", name="Undo").click()
    page.get_by_role("button", name="Undo").click()
    expect(names).to_have_text(["List items", "Fetch the first item"])


def test_unsaved_work_and_drafts_survive_a_reload(page):
    open_flow(page, "Simple chain")
    page.get_by_role("button", name="Flow settings").click()
    page.get_by_label("Flow name").fill("Renamed, not saved")
    step1 = step_region(page, 1)
    step1.get_by_role("button", name="Edit as JSON").first.click()
    body = step1.get_by_label("Body", exact=True)
    body.fill('{"half": ')
    expect(page.locator("#validity")).to_have_text("1 field not valid yet")
    reload(page, unsaved=True)
    # The file opens as saved, and the work kept in this browser is offered back.
    kept = page.get_by_role("region", name="Kept changes")
    expect(kept).to_contain_text("Unsaved changes to simple-chain.json")
    kept.get_by_role("button", name="Restore").click()
    expect(kept).to_be_hidden()
    expect(page.get_by_label("Flow name")).to_have_value("Renamed, not saved")
    body = step_region(page, 1).get_by_label("Body", exact=True)
    expect(body).to_have_value('{"half": ')
    expect(body).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("Unsaved", exact=True)).to_be_visible()
    # Discarded on purpose, it is gone for good.
    open_discarding(page, "User input")
    open_flow(page, "Simple chain")
    expect(kept).to_be_hidden()
    expect(page.get_by_label("Flow name")).to_have_value("Simple chain")


def test_an_unsaved_new_flow_survives_a_closed_tab(browser, studio):
    pg = new_page(browser, studio)
    pg.get_by_role("button", name="+ New").click()
    pg.get_by_role("menuitem", name="Empty flow").click()
    step_region(pg, 1).get_by_label("URL").fill("/never-saved")
    settle(pg)
    # Kept as it is made (a moment later), not when the page goes.
    wait_until(
        lambda: (
            "/never-saved"
            in (pg.evaluate("localStorage.getItem('flowrun.draft:~unsaved')") or "")
        ),
        10,
        message="the draft to be kept",
    )
    # The tab goes away without a word (a crash): nothing asks, nothing waits.
    pg.close()
    again = pg.context.new_page()
    again.goto(studio + "/")
    kept = again.get_by_role("region", name="Kept changes")
    expect(kept).to_contain_text("the unsaved flow “New flow”")
    kept.get_by_role("button", name="Restore").click()
    expect(step_region(again, 1).get_by_label("URL")).to_have_value("/never-saved")
    expect(again.locator("#doc-file")).to_have_text("unsaved flow")
    again.context.close()


def test_discarded_work_is_not_kept_again_by_a_write_still_pending(page):
    """Work is kept in this browser a moment (300 ms) after each edit. Discarded
    within that moment, it must not be kept again when the moment comes."""
    open_flow(page, "Simple chain")
    page.get_by_role("button", name="Flow settings").click()
    held = []  # the next flow's file, until the moment has passed
    page.route("**/api/flows/user-input", lambda route: held.append(route))
    page.get_by_label("Flow name").fill("Edited, then discarded")
    open_discarding(page, "User input")
    # Nothing to wait on: what is checked is that nothing happens.
    page.wait_for_timeout(600)
    kept = page.evaluate("localStorage.getItem('flowrun.draft:simple-chain')")
    wait_until(lambda: held, 10, message="Studio to ask for the next flow")
    held[0].continue_()
    page.unroute("**/api/flows/user-input")
    expect(page.get_by_label("Flow name")).to_have_value("User input")
    assert kept is None
    open_flow(page, "Simple chain")
    expect(page.get_by_role("region", name="Kept changes")).to_be_hidden()
    expect(page.get_by_label("Flow name")).to_have_value("Simple chain")


def open_discarding(page, title: str) -> None:
    """Open another flow, answering Discard when Studio asks about unsaved work."""
    page.get_by_role("list", name="Workspace flows").get_by_role(
        "button", name=title
    ).click()
    page.get_by_role("dialog", name="Discard unsaved changes?").get_by_role(
        "button", name="Discard"
    ).click()
