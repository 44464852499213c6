"""History that scales: every stored run a page at a time, search, filters, run
again, open the flow, and two runs compared side by side."""

from __future__ import annotations

import datetime

import pytest
from playwright.sync_api import expect

from flowrun.store.history import Store

from .helpers import fill_prompt, go, open_flow, run_view, snap


@pytest.fixture(scope="module")
def seeded(server):
    """208 stored runs of "Old flow" (one failed in ten), as a busy team leaves."""
    store = Store(server.base / "data")
    ids = []
    for i in range(208):
        eid = f"exec-{1700000000000 + i}-seed{i:05d}"
        row = store.create(eid, "Old flow", 1)
        status = "failed" if i % 10 == 0 else "completed"
        summary = {"success": status == "completed", "stepsExecuted": 1}
        store.finish(row, status, summary, [])
        ids.append(eid)
    store.flush()
    store.close()
    return ids


def history(page):
    page.get_by_role("button", name="History").click()
    dialog = page.get_by_role("dialog", name="History")
    expect(dialog).to_be_visible()
    return dialog


def search(page, dialog, text: str) -> None:
    """Search History, and wait until the list drawn is the answer (typing waits a
    moment before asking; until the answer is drawn the list says "Loading…")."""
    asked = "q=" + text.replace(" ", "+")
    with page.expect_response(lambda r: "/api/executions?" in r.url and asked in r.url):
        dialog.get_by_label("Search runs").fill(text)
    loading = dialog.locator(".history-list li").filter(has_text="Loading…")
    expect(loading).to_have_count(0)


def test_every_stored_run_is_reachable(page, seeded):
    dialog = history(page)
    search(page, dialog, "old flow")
    items = dialog.locator(".history-item")
    expect(items).to_have_count(50)
    expect(dialog.get_by_text("50 runs shown, more below")).to_be_visible()
    # Scrolling to the end of the list brings the next page, and the next.
    for shown in (100, 150, 200, 208):
        items.last.scroll_into_view_if_needed()
        expect(items).to_have_count(shown)
    expect(dialog.get_by_text("208 runs shown")).to_be_visible()
    expect(items.last).to_contain_text(seeded[0])  # the oldest of all
    # A status filter, and dates.
    dialog.get_by_label("Status").select_option("failed")
    expect(items).to_have_count(21)
    today = datetime.date.today()
    day = datetime.timedelta(days=1)
    since = dialog.get_by_label("From", exact=True)
    until = dialog.get_by_label("To", exact=True)
    since.fill(str(today + day))
    expect(dialog.get_by_text("No runs match.")).to_be_visible()
    since.fill(str(today - day))
    expect(items).to_have_count(21)
    until.fill(str(today - day))
    expect(dialog.get_by_text("No runs match.")).to_be_visible()


def test_run_again_and_open_the_flow_from_history(page):
    open_flow(page, "Simple chain")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    open_flow(page, "User input")
    dialog = history(page)
    search(page, dialog, "simple")
    dialog.locator(".history-item").first.click()
    detail = dialog.get_by_role("region", name="History: Simple chain")
    expect(detail.locator(".card.success")).to_have_count(2)
    detail.get_by_role("button", name="Open flow").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#doc-file")).to_have_text("simple-chain.json")
    dialog = history(page)
    search(page, dialog, "simple")
    before = dialog.locator(".history-item").count()
    dialog.locator(".history-item").first.click()
    dialog.get_by_role("button", name="Run again").click()
    expect(dialog).to_be_hidden()
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    dialog = history(page)
    search(page, dialog, "simple")
    expect(dialog.locator(".history-item")).to_have_count(before + 1)


def test_two_runs_compared_side_by_side(page, shots):
    open_flow(page, "User input")
    prompt = page.get_by_role("dialog", name="Input needed")
    panel = run_view(page)
    go(page)
    fill_prompt(prompt, "grace")
    page.keyboard.press("Enter")
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    go(page)
    prompt.get_by_label("Username", exact=False).fill("bob")
    prompt.get_by_label("Password for", exact=False).fill("wrong")
    page.keyboard.press("Enter")
    expect(panel.get_by_role("heading", name="Flow failed")).to_be_visible()

    dialog = history(page)
    dialog.get_by_label("This flow only").check()
    picks = dialog.locator(".history-pick")
    expect(picks).to_have_count(2)
    picks.nth(0).check()
    picks.nth(1).check()
    dialog.get_by_role("button", name="Compare").click()
    comparison = dialog.get_by_role("region", name="Comparison")
    expect(comparison.locator(".compare-title")).to_contain_text(
        "Comparing two runs: 2 of 2 steps changed"
    )
    rows = comparison.locator(".compare-table tbody tr")
    login = rows.filter(has_text="Log in with your answers")
    # Newest is A: the failed run; statuses and HTTP codes side by side.
    expect(login.locator("td").nth(0)).to_have_text("failed · 401")
    expect(login.locator("td").nth(1)).to_have_text("completed · 200")
    expect(login).to_contain_text("changed")
    expect(login.locator(".changes")).to_contain_text('{{ .input.username }}: "bob"')
    expect(login.locator(".changes")).to_contain_text('"grace"')
    # The password differed too: never shown.
    expect(login.locator(".changes")).not_to_contain_text("wrong")
    expect(login.locator(".changes")).to_contain_text(
        "check httpStatusCode: failed → passed"
    )
    expect(login.locator("td").nth(2)).to_contain_text("→")
    profile = rows.filter(has_text="Profile")
    expect(profile.locator("td").nth(0)).to_have_text("not run")
    # The two runs themselves, in the same view as live runs.
    sides = comparison.locator(".runview")
    expect(sides).to_have_count(2)
    expect(sides.nth(0).locator(".summary h3")).to_have_text("Flow failed")
    expect(sides.nth(1).locator(".summary h3")).to_have_text("Flow completed")
    snap(page, shots, "history")
