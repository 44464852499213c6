"""What the browser tests do again and again: open a flow, find the run view."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import expect

from ..waits import wait_until
from .conftest import ready


def snap(page, shots: Path, name: str) -> None:
    """Screenshot with animations finished, so cards are fully drawn."""
    page.screenshot(path=shots / f"{name}.png", animations="disabled")


def settle(page, quiet_s: float = 0.6) -> None:
    """Wait until none of the page's fetches has been in flight for ``quiet_s``
    (a streamed run counts until its stream ends; a debounced check may start a
    moment after the last edit)."""
    calm = {"since": None}

    def quiet():
        now = time.monotonic()
        if page.evaluate("window.__inflight || 0"):
            calm["since"] = None
        elif calm["since"] is None:
            calm["since"] = now
        return calm["since"] is not None and now - calm["since"] >= quiet_s

    wait_until(quiet, 20, message="the page's requests to end", interval=0.05)


# Counts, per API path, the responses the page has read and acted on: the count goes
# up a task after the body is read, once the page's code awaiting it has run. Lets a
# test say "this late answer changed nothing" without sleeping past it.
HANDLED = """(() => {
  window.__handled = {};
  const f = window.fetch;
  window.fetch = async (u, init) => {
    const res = await f(u, init);
    const path = new URL(String(u), location.href).pathname;
    const text = res.text.bind(res);
    res.text = () => text().finally(() => setTimeout(() => {
      window.__handled[path] = (window.__handled[path] || 0) + 1;
    }));
    return res;
  };
})()"""


def count_handled(page) -> None:
    """Start counting the responses the page acts on (see ``handled``)."""
    page.evaluate(HANDLED)


def handled(page, path: str) -> int:
    """How many responses for ``path`` the page has read and acted on so far."""
    return page.evaluate("(p) => window.__handled[p] || 0", path)


def hold_responses(page, pattern: str) -> list:
    """Send the requests matching ``pattern`` on to the server, and hold each
    response back: the list gets (route, response) for the test to fulfill."""
    held: list = []
    page.route(pattern, lambda route: held.append((route, route.fetch())))
    return held


def wait_held(page, held: list, what: str):
    """Wait until a route handler has put a request in ``held`` and return it.

    Route handlers run only while the test calls into Playwright, hence the page
    call on each look."""
    return wait_until(lambda: page.evaluate("true") and held, 15, message=what)[0]


def open_flow(page, title: str) -> None:
    item = page.get_by_role("list", name="Workspace flows").get_by_role(
        "button", name=title
    )
    item.click()
    expect(item).to_have_attribute("aria-current", "true")
    expect(page.get_by_role("region", name="Flow settings")).to_be_visible()
    # The flow Studio opened by itself may still be on its way.
    settle(page)


def reload(page, *, unsaved: bool = False, opened: bool = True) -> None:
    """Reload once nothing is in flight (a request cut short by the reload would
    be a failed request). ``unsaved``: the page holds unsaved work, and the
    question Studio asks before leaving it is answered "leave". ``opened``: wait
    until a flow is open too (not for a test that holds the flow back)."""
    settle(page)
    page.leaving = unsaved
    try:
        page.reload()
    finally:
        page.leaving = False
    expect(page.get_by_role("list", name="Workspace flows")).to_be_visible()
    if opened:
        ready(page)


def put_flow(page, name: str, doc: dict) -> None:
    page.evaluate(
        """async ([name, doc]) => {
          await fetch(`/api/flows/${name}`, {method: "PUT",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify(doc)});
        }""",
        [name, doc],
    )


def save_and_open(page, name: str, doc: dict, title: str) -> None:
    """Save ``doc`` in the workspace as ``name`` (through the API), reload Studio
    and open it."""
    put_flow(page, name, doc)
    reload(page)
    open_flow(page, title)


def run_view(page):
    """The run view docked beside (or under) the editor."""
    return page.get_by_role("region", name="Run", exact=True)


def execution_id(page) -> str:
    return run_view(page).locator(".rv-meta").inner_text().split(" ")[0]


def state_pill(page):
    return run_view(page).locator(".rv-title .pill")


def go(page) -> None:
    page.get_by_role("button", name="Go with the Flow").click()


def step_region(page, n: int):
    return page.get_by_role("region", name=f"Step {n}", exact=False)


def fill_prompt(prompt, username: str) -> None:
    """Answer the User input flow's prompt: a username and the password 'secret'."""
    prompt.get_by_label("Username", exact=False).fill(username)
    prompt.get_by_label("Password for", exact=False).fill("secret")


def answer_first_prompt_in_step_mode(page, username: str):
    """Run the open flow in step mode, continue to its prompt and answer it."""
    page.get_by_label("Run mode").select_option("step")
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Paused before step #1")).to_be_visible()
    panel.get_by_role("button", name="Continue", exact=True).click()
    prompt = page.get_by_role("dialog", name="Input needed")
    fill_prompt(prompt, username)
    page.keyboard.press("Enter")
    return panel, prompt
