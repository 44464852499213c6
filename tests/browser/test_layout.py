"""Any screen, any hand: usable at 390, 1024 and 1440 px, keyboard-only with a
visible focus, and WCAG AA contrast in both themes (measured in the page)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import new_page
from .helpers import go, run_view, settle, snap, step_region

VIEWPORTS = [(390, 844), (1024, 768), (1440, 900)]


def box(locator) -> dict:
    return locator.bounding_box()


def inside(b: dict, width: int, height: int) -> bool:
    return (
        b["x"] >= 0
        and b["y"] >= 0
        and b["x"] + b["width"] <= width + 0.5
        and (b["y"] + b["height"] <= height + 0.5)
    )


def apart(a: dict, b: dict) -> bool:
    return (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def pick_flow(page, title: str, width: int) -> None:
    """Open a flow from the list (on a phone, from the drawer)."""
    if width < 760:
        flows = page.get_by_role("button", name="Flows", exact=True)
        expect(page.get_by_role("list", name="Workspace flows")).to_be_hidden()
        flows.click()
        drawer = page.locator("#sidebar")
        expect(drawer).to_be_visible()
        assert box(drawer)["width"] <= 0.9 * width
    item = page.get_by_role("list", name="Workspace flows").get_by_role(
        "button", name=title
    )
    item.click()
    expect(page.locator(".flow-item[aria-current=true]")).to_contain_text(title)
    settle(page)
    if width < 760:
        expect(page.get_by_role("list", name="Workspace flows")).to_be_hidden()


def no_sideways_scroll(page) -> None:
    wide = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert wide <= 0
    # No control sticks out of the window either.
    out = page.evaluate(
        """(w) => [...document.querySelectorAll("button, input, select, textarea")]
          .filter((e) => e.checkVisibility())
          .filter((e) => !e.closest(".topbar-actions, .rv-tools, .history-filters"))
          .filter((e) => e.getBoundingClientRect().right > w + 0.5)
          .map((e) => e.outerHTML.slice(0, 80))""",
        page.viewport_size["width"],
    )
    assert out == []


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_studio_is_usable_at(browser, studio, shots, width, height):
    page = new_page(browser, studio, width=width, height=height)
    go_button = page.get_by_role("button", name="Go with the Flow")
    assert inside(box(go_button), width, height)
    pick_flow(page, "Simple chain", width)
    no_sideways_scroll(page)
    # A step's title never runs under its tools.
    step = step_region(page, 1)
    assert apart(box(step.locator(".node-id")), box(step.get_by_text("Try it out")))
    assert apart(box(step.locator(".node-name")), box(step.locator(".node-tools")))
    # Split view fits: both halves inside the window.
    page.get_by_role("tab", name="Split").click()
    json_view = page.get_by_label("Flow JSON")
    assert inside(box(json_view), width, height + 2000)
    assert box(json_view)["x"] + box(json_view)["width"] <= width
    no_sideways_scroll(page)
    page.get_by_role("tab", name="Form").click()
    go(page)
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    assert inside(box(panel), width, height)
    editor = page.get_by_role("region", name="Flow editor")
    if width >= 1200:
        assert box(panel)["x"] >= box(editor)["x"] + box(editor)["width"] - 1
    elif width >= 760:
        assert box(panel)["y"] >= box(editor)["y"] + box(editor)["height"] - 1
    else:
        # A phone shows the run, and the editor again when it is closed.
        expect(editor).to_be_hidden()
        snap(page, shots, "phone")
        panel.get_by_role("button", name="Close run panel").click()
        expect(editor).to_be_visible()
        assert inside(box(go_button), width, height)
    no_sideways_scroll(page)
    problems = list(page.problems)
    page.context.close()
    assert problems == []


FOCUS_SHOWN = """() => {
  const e = document.activeElement;
  const s = getComputedStyle(e);
  const ring = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  return ring || (s.boxShadow && s.boxShadow !== "none");
}"""


def tab_to(page, predicate: str, limit: int = 80) -> list[str]:
    """Press Tab until ``predicate`` holds for the focused element; each element
    passed on the way must show where the focus is."""
    unseen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if not page.evaluate(FOCUS_SHOWN):
            unseen.append(
                page.evaluate("document.activeElement.outerHTML.slice(0, 90)")
            )
        if page.evaluate(
            f"(() => {{ const e = document.activeElement; {predicate} }})()"
        ):
            return unseen
    raise AssertionError(f"Tab never reached: {predicate}")


def test_keyboard_only_open_edit_run_and_read(page):
    unseen = tab_to(
        page, "return e.matches('.flow-item') && e.textContent.includes('User input')"
    )
    page.keyboard.press("Enter")
    expect(page.locator("#doc-file")).to_have_text("user-input.json")
    unseen += tab_to(page, "return e.labels && e.labels[0]?.textContent === 'URL'")
    page.keyboard.press("End")
    page.keyboard.type("?k=1")
    expect(step_region(page, 1).get_by_label("URL")).to_have_value("/login?k=1")
    page.keyboard.press("Control+z")
    expect(step_region(page, 1).get_by_label("URL")).to_have_value("/login")
    page.keyboard.press("Control+Enter")
    prompt = page.get_by_role("dialog", name="Input needed")
    expect(prompt.get_by_label("Username", exact=False)).to_be_focused()
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    page.keyboard.type("secret")
    page.keyboard.press("Enter")
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    # Into the run view: open a card's response from the keyboard.
    unseen += tab_to(page, "return e.matches('summary') && e.closest('#run-dock')")
    page.keyboard.press("Enter")
    expect(panel.locator("details[open]")).to_have_count(1)
    # Escape closes the run view; focus goes back to Go with the Flow.
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Go with the Flow")).to_be_focused()
    assert unseen == []


CONTRAST = """() => {
  const parse = (c) => {
    let m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (m) {
      const p = m[1].split(/[\\s,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = /color\\(srgb ([^)]+)\\)/.exec(c);
    if (m) {
      const p = m[1].split(/[\\s/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    return null;
  };
  const over = (t, b) => {
    const a = t[3] + b[3] * (1 - t[3]);
    const mix = (i) => (t[i] * t[3] + b[i] * b[3] * (1 - t[3])) / a;
    return [mix(0), mix(1), mix(2), a];
  };
  const lum = (c) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const background = (el) => {
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.unshift(e);
    let color = [255, 255, 255, 1];
    for (const e of chain) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) color = over(c, color);
    }
    return color;
  };
  const exempt = (el) => el.closest(
    "[disabled], :disabled, .visually-hidden, option, [inert], .is-blocked, .brand"
  );
  const found = [];
  const check = (el, fgText, need, what) => {
    const bg = background(el);
    const fg = over(parse(fgText), bg);
    const r = ratio(fg, bg);
    if (r < need - 0.005) {
      const words = (el.textContent || el.placeholder || "").trim().slice(0, 30);
      const cls = String(el.className).slice(0, 40);
      found.push(`${what} "${words}" .${cls} ${r.toFixed(2)} < ${need}`);
    }
  };
  for (const el of document.querySelectorAll("body *")) {
    const shown = { visibilityProperty: true, opacityProperty: true };
    const seen = el.checkVisibility(shown);
    if (!seen || exempt(el)) continue;
    const s = getComputedStyle(el);
    const text = [...el.childNodes].some(
      (n) => n.nodeType === 3 && n.textContent.trim()
    );
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (Number(s.fontWeight) >= 700 && size >= 18.66);
    if (text) check(el, s.color, large ? 3 : 4.5, "text");
    const field = el.matches("input:not([type=checkbox]), textarea");
    if (field && !el.value && el.placeholder) {
      check(el, getComputedStyle(el, "::placeholder").color, 4.5, "placeholder");
    }
    // The edge of a field or check box is what shows it is there: 3:1.
    if (el.matches("input, select, textarea") && s.borderTopStyle !== "none") {
      const what = `edge of ${el.tagName.toLowerCase()}`;
      check(el.parentElement, s.borderTopColor, 3, what);
    }
  }
  return found;
}"""


def contrast_problems(page) -> list[str]:
    return page.evaluate(CONTRAST)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_contrast_meets_wcag_aa(browser, studio, scheme):
    page = new_page(browser, studio, width=1440, height=900, scheme=scheme)
    found = []
    # The editor, with problems shown and every kind of field open.
    page.get_by_role("list", name="Workspace flows").get_by_role(
        "button", name="User input"
    ).click()
    settle(page)
    page.get_by_role("button", name="Flow settings").click()
    step1 = step_region(page, 1)
    step1.get_by_text("More options").click()
    step1.get_by_label("ID", exact=True).fill("me")  # a duplicate: an error shows
    expect(page.locator(".field-error.remote").first).to_be_visible()
    found += contrast_problems(page)
    step1.get_by_label("ID", exact=True).fill("login")
    # A prompt, then a finished run with its cards open.
    go(page)
    prompt = page.get_by_role("dialog", name="Input needed")
    prompt.get_by_label("Username", exact=False).fill("ada")
    found += contrast_problems(page)
    prompt.get_by_label("Password for", exact=False).fill("secret")
    page.keyboard.press("Enter")
    panel = run_view(page)
    expect(panel.get_by_text("Flow completed")).to_be_visible()
    for summary in panel.locator(".card summary").all():
        summary.click()
    found += contrast_problems(page)
    # Notices of each kind.
    page.evaluate(
        """async () => { const { toast } = await import("/static/js/dom.js");
          toast("Saved", "success"); toast("Failed", "error"); toast("Note", "info");
          toast("Deleted", "info", {label: "Undo", run() {}}); }"""
    )
    found += contrast_problems(page)
    # History, with a run open.
    page.get_by_role("button", name="History").click()
    history = page.get_by_role("dialog", name="History")
    history.locator(".history-item").first.click()
    expect(history.locator(".summary")).to_be_visible()
    found += contrast_problems(page)
    problems = list(page.problems)
    page.context.close()
    assert sorted(set(found)) == [], "\n".join(sorted(set(found)))
    assert problems == []
