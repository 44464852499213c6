"""The server goes away mid-run and comes back: Studio says so plainly, keeps the
work, and recovers by itself, showing the run as the server recorded it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ..waits import wait_until
from .conftest import Server, new_page
from .helpers import execution_id, go, open_flow, run_view, step_region


@pytest.fixture
def own_server(tmp_path, target):
    """A server of this test's own, to stop and start again."""
    srv = Server(tmp_path, target.url)
    srv.start()
    yield srv
    srv.stop()


def test_a_server_stopped_mid_run_is_recovered_from(browser, own_server, hits):
    page = new_page(browser, own_server.url)
    open_flow(page, "Slow steps")
    hits.hold_path("/demo/slow", after=1, key="step 2")  # in flight until released
    go(page)
    panel = run_view(page)
    expect(panel.locator('.card[data-step-index="0"]')).to_contain_text("Success")
    eid = execution_id(page)
    wait_until(lambda: hits.held("step 2"), 10, message="step 2's request")
    own_server.kill()  # mid step 2: no end, no goodbye
    hits.release("step 2")

    # Not "Failed": the connection is lost, and Studio waits for the server.
    expect(panel.get_by_role("heading", name="Connection lost")).to_be_visible()
    expect(panel.locator(".rv-title .pill")).to_have_text("Reconnecting…")
    offline = page.get_by_role("alert").filter(has_text="cannot be reached")
    expect(offline).to_be_visible()
    # An edit and a save while it is down: said in words, and nothing is lost.
    step_region(page, 1).get_by_label("Name", exact=True).fill("Edited offline")
    page.keyboard.press("Control+s")
    expect(
        page.get_by_text("Not saved: the flowrun server cannot be reached. Nothing")
    ).to_be_visible()
    expect(page.locator("#validity")).to_have_text("Not checked: server unreachable")

    own_server.start()  # the next process marks the dead worker's run interrupted
    expect(offline).to_be_hidden()
    expect(page.locator("#validity")).to_have_text("Valid")
    expect(panel.get_by_role("heading", name="Flow interrupted")).to_be_visible(
        timeout=30000
    )
    expect(panel.locator(".summary")).to_contain_text("process exited")
    live = panel.locator(".stats").inner_text()
    assert live.lower().split("\n")[:2] == ["1", "executed"]

    # History says the same as the page did.
    page.get_by_role("button", name="History").click()
    history = page.get_by_role("dialog", name="History")
    history.get_by_role("button").filter(has_text=eid).click()
    detail = history.get_by_role("region", name="History: Slow steps")
    expect(detail.locator(".summary h3")).to_have_text("Flow interrupted")
    assert detail.locator(".stats").inner_text() == live
    history.get_by_role("button", name="Close history").click()
    # And the edit saves now.
    page.keyboard.press("Control+s")
    expect(page.get_by_text("Saved slow-steps.json")).to_be_visible()
    # While it was down, only the requests that could not reach it failed.
    assert all(
        "net::ERR" in p or "Failed to load resource" in p for p in page.problems
    ), page.problems
    page.context.close()
