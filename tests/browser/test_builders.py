"""Checks and conditions built as rows, every field of the format in the form, and
the whole way a new user goes: build, run, fix and run again a five-step flow
without typing JSON and without losing anything across a reload."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from .helpers import go, open_flow, reload, run_view, snap, step_region


def add_check(step, n: int, kind: str, target: str | None = None, op=None, value=None):
    """Add check ``n`` to ``step``: its kind, then path/name/number, operator, value."""
    checks = step.locator(".checks-field").first
    checks.get_by_role("button", name="+ Add check").click()
    row = step.get_by_role("group", name=f"Check {n}", exact=True)
    row.get_by_label(f"Check {n} kind").select_option(label=kind)
    if kind == "Status code":
        row.get_by_label(f"Check {n} status code").fill(target or "200")
    elif kind == "Max duration":
        row.get_by_label(f"Check {n} milliseconds").fill(target)
    elif kind in ("JSON path", "Header", "jq"):
        word = {"JSON path": "path", "Header": "header name", "jq": "jq program"}[kind]
        row.get_by_label(f"Check {n} {word}").fill(target)
        if op:
            row.get_by_label(f"Check {n} operator 1").select_option(label=op)
        if value is not None:
            row.get_by_label(f"Check {n} expected value 1").fill(value)
    return row


def flow_json(page) -> dict:
    return page.evaluate(
        "async () => (await import('/static/js/state.js')).store.get().flow"
    )


def test_checks_and_conditions_are_rows_in_sync_with_the_json(page, shots):
    open_flow(page, "Simple chain")
    step2 = step_region(page, 2)
    rows = step2.locator(".checks-field").first
    # The flow's own checks read as rows: kind, path, operator, expected value.
    expect(rows.get_by_label("Check 2 path")).to_have_value(".id")
    expect(rows.get_by_label("Check 2 operator 1")).to_have_value("equals")
    add_check(step2, 4, "Header", "Content-Type", "contains", "json")
    add_check(step2, 5, "Max duration", "2000")
    add_check(step2, 6, "jq", ".name | length", "greater than", "3")
    checks = flow_json(page)["nodes"][1]["validations"]
    assert checks[3:] == [
        {"header": "Content-Type", "contains": "json"},
        {"maxDurationMs": 2000},
        {"jq": ".name | length", "greaterThan": 3},
    ]
    # A second operator in one check, and a number typed as a number.
    row = step2.get_by_role("group", name="Check 2", exact=True)
    row.get_by_role("button", name="+ operator").click()
    row.get_by_label("Check 2 operator 2").select_option("notEquals")
    row.get_by_label("Check 2 expected value 2").fill("99")
    assert flow_json(page)["nodes"][1]["validations"][1]["notEquals"] == 99

    # Conditions: a step's status or a field, with the format's own key names.
    step2.get_by_text("More options").click()
    conditions = step2.locator(".checks-field").nth(1)
    conditions.get_by_role("button", name="+ Add condition").click()
    cond = step2.get_by_role("group", name="Condition 1", exact=True)
    expect(cond.get_by_label("Condition 1 step")).to_have_value("list")
    cond.get_by_label("Condition 1 test").select_option("field")
    cond.get_by_label("Condition 1 field").fill(".count")
    cond.get_by_label("Condition 1 operator 1").select_option("greaterThan")
    cond.get_by_label("Condition 1 expected value 1").fill("0")
    assert flow_json(page)["nodes"][1]["conditions"] == [
        {"source": "node", "node": "list", "field": ".count", "greaterThan": 0}
    ]
    rows.scroll_into_view_if_needed()
    snap(page, shots, "checks")

    # The JSON is one click away, and both ways in sync.
    rows.get_by_role("button", name="Edit as JSON").click()
    text = rows.get_by_label("Checks (JSON)")
    assert json.loads(text.input_value())[4] == {"maxDurationMs": 2000}
    text.fill('[{"httpStatusCode": [200, 201]}, {"jsonpath": ".id", "exists": false}]')
    rows.get_by_role("button", name="Edit as JSON").click()  # back to rows
    expect(rows.get_by_label("Check 1 status code")).to_have_value("200, 201")
    expect(rows.get_by_label("Check 2 exists 1")).to_have_value("false")
    expect(rows.locator(".check-row")).to_have_count(2)


def test_path_suggestions_come_from_known_responses(page):
    open_flow(page, "Simple chain")
    go(page)
    expect(run_view(page).get_by_text("Flow completed")).to_be_visible()
    step1 = step_region(page, 1)
    path = step1.get_by_label("Check 2 path")
    suggested = path.evaluate("(e) => [...e.list.options].map((o) => o.value)")
    assert ".items[0].name" in suggested and ".count" in suggested


def test_every_field_of_the_format_is_reachable_from_the_form(page):
    open_flow(page, "Simple chain")
    page.get_by_role("button", name="Flow settings").click()
    settings = page.get_by_role("region", name="Flow settings")
    settings.get_by_label("Description").fill("Everything from the form")
    settings.get_by_label("Default body format").select_option("form-urlencoded")
    settings.get_by_label("Default retry count").fill("2")
    settings.get_by_label("Default retry interval (ms)").fill("250")
    settings.get_by_label("Default timeout (s)").fill("12")
    secrets = settings.get_by_label("Secret variables")
    secrets.fill("password, api key")
    error = settings.get_by_role("alert").filter(has_text="Not a variable name")
    expect(error).to_contain_text("api key")
    expect(secrets).to_have_value("password, api key")  # kept as typed
    secrets.fill("password, apiKey")
    step1 = step_region(page, 1)
    step1.get_by_label("Description").fill("What this step is for")
    step1.get_by_label("Body format").select_option("text")
    step1.get_by_label("Do not fall back to the flow's default checks").check()
    step1.get_by_text("More options").click()
    step1.get_by_label("Do not add the flow's default headers").check()
    step1.get_by_label("Retry count").fill("3")
    step1.get_by_label("Retry interval (ms)").fill("100")
    step1.get_by_label("Delay (ms)").fill("10")
    step1.get_by_label("Timeout (s)").fill("5")
    step1.get_by_label("Open in browser (response path)").fill(".url")
    flow = flow_json(page)
    assert flow["description"] == "Everything from the form"
    assert flow["defaults"]["bodyFormat"] == "form-urlencoded"
    assert flow["defaults"]["retry"] == {"count": 2, "intervalMs": 250}
    assert flow["defaults"]["timeout"] == 12
    assert flow["secrets"] == ["password", "apiKey"]
    node = flow["nodes"][0]
    assert {k: node[k] for k in node if k not in ("id", "name", "method", "url")} == {
        "description": "What this step is for",
        "bodyFormat": "text",
        "validations": node["validations"],
        "skipDefaultValidations": True,
        "skipDefaultHeaders": True,
        "retry": {"count": 3, "intervalMs": 100},
        "delayMs": 10,
        "timeout": 5,
        "launchBrowser": ".url",
    }
    # Cleared, a field leaves no empty object behind.
    step1.get_by_label("Retry count").fill("")
    step1.get_by_label("Retry interval (ms)").fill("")
    assert "retry" not in flow_json(page)["nodes"][0]


def test_new_user_builds_runs_fixes_and_reruns_a_five_step_flow(page, studio):
    """A login, a prompt, a condition, four kinds of check; no JSON typed; a reload
    on the way loses nothing."""
    page.get_by_role("button", name="+ New").click()
    page.get_by_role("menuitem", name="Empty flow").click()
    page.get_by_role("button", name="Flow settings").click()
    settings = page.get_by_role("region", name="Flow settings")
    settings.get_by_label("Flow name").fill("Shop journey")
    settings.get_by_role("button", name="+ Variable").click()
    settings.get_by_label("Variables name 1").fill("user")
    settings.get_by_label("Variables value 1").fill("ada")
    expect(settings.locator(".flow-summary")).to_contain_text("1 variable")

    # 1: log in with a prompted password.
    s1 = step_region(page, 1)
    s1.get_by_label("Name", exact=True).fill("Log in")
    s1.get_by_label("ID", exact=True).fill("login")
    s1.get_by_label("Method").select_option("POST")
    s1.get_by_label("URL").fill("/login")
    s1.get_by_role("button", name="+ Prompt").click()
    s1.get_by_label("Prompts key 1").fill("password")
    s1.get_by_label("Prompts question 1").fill("Password (hint: secret)")
    s1.get_by_role("button", name="+ Field").click()
    s1.get_by_label("Body fields field 1").fill("username")
    s1.get_by_label("Body fields value 1").fill("{{ .vars.user }}")
    s1.get_by_role("button", name="+ Field").click()
    s1.get_by_label("Body fields field 2").fill("password")
    s1.get_by_label("Body fields value 2").fill("{{ .input.password }}")
    add_check(s1, 1, "Status code", "200")
    add_check(s1, 2, "JSON path", ".token", "exists")

    # 2: the profile, with the token.
    page.get_by_role("button", name="+ Add step").click()
    s2 = step_region(page, 2)
    s2.get_by_label("Name", exact=True).fill("Profile")
    s2.get_by_label("ID", exact=True).fill("me")
    s2.get_by_label("URL").fill("/me")
    s2.get_by_role("button", name="+ Header").click()
    s2.get_by_label("Headers name 1").fill("Authorization")
    s2.get_by_label("Headers value 1").fill("Bearer {{ .responses.login.token }}")
    add_check(s2, 1, "Header", "Content-Type", "contains", "json")
    add_check(s2, 2, "JSON path", ".username", "equals", "{{ .vars.user }}")

    # The tab reloads half-way: nothing is lost.
    reload(page, unsaved=True)
    page.get_by_role("region", name="Kept changes").get_by_role(
        "button", name="Restore"
    ).click()
    expect(step_region(page, 2).get_by_label("Headers value 1")).to_have_value(
        "Bearer {{ .responses.login.token }}"
    )

    # 3: the items, quickly.
    page.get_by_role("button", name="+ Add step").click()
    s3 = step_region(page, 3)
    s3.get_by_label("Name", exact=True).fill("Items")
    s3.get_by_label("ID", exact=True).fill("items")
    s3.get_by_label("URL").fill("/items")
    add_check(s3, 1, "Max duration", "5000")
    add_check(s3, 2, "JSON path", ".count", "greater than", "0")

    # 4: only for admins (ada is not one): a condition skips it.
    page.get_by_role("button", name="+ Add step").click()
    s4 = step_region(page, 4)
    s4.get_by_label("Name", exact=True).fill("Admins delete an item")
    s4.get_by_label("ID", exact=True).fill("admin")
    s4.get_by_label("Method").select_option("DELETE")
    s4.get_by_label("URL").fill("/items/1")
    s4.get_by_text("More options").click()
    s4.get_by_role("button", name="+ Add condition").click()
    cond = s4.get_by_role("group", name="Condition 1", exact=True)
    cond.get_by_label("Condition 1 step").select_option("me")
    cond.get_by_label("Condition 1 test").select_option("field")
    cond.get_by_label("Condition 1 field").fill(".roles[0]")
    cond.get_by_label("Condition 1 operator 1").select_option("equals")
    cond.get_by_label("Condition 1 expected value 1").fill("admin")

    # 5: the first item, with a check that is wrong on purpose.
    page.get_by_role("button", name="+ Add step").click()
    s5 = step_region(page, 5)
    s5.get_by_label("Name", exact=True).fill("First item")
    s5.get_by_label("ID", exact=True).fill("first")
    s5.get_by_label("URL").fill("/items/{{ .responses.items.items[0].id }}")
    add_check(s5, 1, "JSON path", ".name", "equals", "banana")

    expect(page.locator("#validity")).to_have_text("Valid")
    page.keyboard.press("Control+s")
    save = page.get_by_role("dialog", name="Save flow")
    expect(save.get_by_label("File name in the workspace")).to_have_value(
        "shop-journey"
    )
    save.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved shop-journey.json")).to_be_visible()

    # Run: the prompt asks, the wrong check fails the last step.
    go(page)
    prompt = page.get_by_role("dialog", name="Input needed")
    prompt.get_by_label("Password (hint: secret)").fill("secret")
    page.keyboard.press("Enter")
    panel = run_view(page)
    expect(panel.get_by_role("heading", name="Flow failed")).to_be_visible()
    expect(panel.locator('.card[data-step-index="3"]')).to_contain_text("Skipped")
    failed = panel.locator('.card[data-step-index="4"]')
    expect(failed).to_contain_text("Failed")
    # Fix it from the card: the step opens at its checks.
    failed.get_by_role("button", name="Edit this step").click()
    expected = step_region(page, 5).get_by_label("Check 1 expected value 1")
    expect(expected).to_be_focused()
    expected.fill("apple")
    # The first save's note may still be up: wait for this save itself.
    with page.expect_response(
        lambda r: r.request.method == "PUT" and r.url.endswith("/flows/shop-journey")
    ):
        page.keyboard.press("Control+s")
    expect(page.get_by_text("Unsaved", exact=True)).to_be_hidden()
    page.get_by_role("button", name="Flow once again").click()
    prompt.get_by_label("Password (hint: secret)").fill("secret")
    page.keyboard.press("Enter")
    expect(panel.get_by_role("heading", name="Flow completed")).to_be_visible()
    expect(panel.locator(".card.success")).to_have_count(4)

    saved = page.evaluate("async () => (await fetch('/api/flows/shop-journey')).json()")
    nodes = saved["nodes"]
    assert nodes[0]["body"] == {
        "username": "{{ .vars.user }}",
        "password": "{{ .input.password }}",
    }
    assert nodes[0]["userPrompts"] == {"password": "Password (hint: secret)"}
    kinds = {next(iter(c)) for n in nodes for c in n.get("validations", [])}
    assert {"httpStatusCode", "jsonpath", "header", "maxDurationMs"} <= kinds
    assert nodes[3]["conditions"] == [
        {"source": "node", "node": "me", "field": ".roles[0]", "equals": "admin"}
    ]
