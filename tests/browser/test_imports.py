"""Imports show what they will create (with the importer's notes) before they
create it, and a paste that cannot be imported is kept with the reason."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from .helpers import step_region


def test_a_bad_curl_keeps_the_paste_and_says_why(page, studio):
    page.get_by_role("button", name="Import curl…").click()
    dialog = page.get_by_role("dialog", name="Import from curl")
    paste = dialog.get_by_label("curl command")
    paste.fill("curl -X POST --data '{\"a\": 1}'")  # no URL
    dialog.get_by_role("button", name="Preview").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Could not import")
    expect(dialog).to_be_visible()
    expect(paste).to_have_value("curl -X POST --data '{\"a\": 1}'")
    expect(paste).to_have_attribute("aria-invalid", "true")
    # Fixed in place, it goes through.
    paste.fill(f"curl -X POST --data '{{\"a\": 1}}' {studio}/demo/echo")
    dialog.get_by_role("button", name="Preview").click()
    preview = page.get_by_role("dialog", name="Import preview")
    expect(preview).to_contain_text("/demo/echo")
    preview.get_by_role("button", name="Create flow").click()
    expect(step_region(page, 1).get_by_label("Method")).to_have_value("POST")
    # The refused import logged its 400: Chromium reports every 4xx response.
    page.problems[:] = [p for p in page.problems if "status of 400" not in p]


def test_a_postman_import_is_previewed_with_its_notes(page, studio, tmp_path):
    collection = {
        "info": {
            "name": "Two requests",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/"
            "collection.json",
        },
        "item": [
            {
                "name": "List",
                "request": {"method": "GET", "url": f"{studio}/demo/items"},
            },
            {"name": "Trace it", "request": {"method": "TRACE", "url": f"{studio}/x"}},
        ],
    }
    path = tmp_path / "two.postman_collection.json"
    path.write_text(json.dumps(collection), "utf-8")
    page.get_by_label("Import flow file").set_input_files(str(path))
    preview = page.get_by_role("dialog", name="Import preview")
    expect(preview).to_contain_text("Two requests · 2 steps")
    expect(preview).to_contain_text(
        "(2 requests: 1 as they were, 1 skipped by default)"
    )
    expect(preview).to_contain_text("Method TRACE")
    # Cancelled: nothing was created.
    preview.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("region", name="Step 1: List", exact=True)).to_have_count(0)
    page.get_by_label("Import flow file").set_input_files(str(path))
    preview.get_by_role("button", name="Create flow").click()
    expect(page.get_by_role("region", name="Step 1: List", exact=True)).to_be_visible()
    expect(page.get_by_text("Unsaved", exact=True)).to_be_visible()
