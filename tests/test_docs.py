"""The docs name every setting (with its default) and every SSE event."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowrun.engine.events import NAMES
from flowrun.settings import SETTINGS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _default(value) -> str:
    if value is None or value == "":
        return "unset"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_the_settings_table(setting):
    text = (DOCS / "settings.md").read_text()
    row = re.search(rf"^\| `{setting.name}` \| (.+?) \| (.+) \|$", text, re.M)
    assert row, f"{setting.name} is not documented in docs/settings.md"
    assert row.group(1) == _default(setting.default)


@pytest.mark.parametrize("name", NAMES)
def test_every_event_is_documented(name):
    text = (DOCS / "sse.md").read_text()
    assert f"| `{name}` |" in text, f"event {name} missing from the table"
    assert f"### {name}\n" in text, f"event {name} has no section with an example"
    assert f"event: {name}\n" in text, f"event {name} has no example frame"


def test_api_doc_lists_every_route(tmp_path):
    from flowrun import create_app

    text = (DOCS / "api.md").read_text()
    app = create_app(
        {"FLOWRUN_DATA_DIR": str(tmp_path / "d"), "FLOWRUN_FLOWS_DIR": str(tmp_path)}
    )
    try:
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/api"):
                continue
            path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: f"<{m.group(1)}>", rule.rule)
            path = path.replace("<execution_id>", "<id>")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert f"`{method} {path}`" in text, f"{method} {path} not in api.md"
    finally:
        app.extensions["flowrun"].close()


def test_deploy_recipes_are_the_files_the_proxy_tests_run():
    # tests/test_proxy.py starts nginx and Caddy with the files in docs/deploy/:
    # the page must show those files exactly, each of them.
    text = (DOCS / "deploy.md").read_text()
    shown = re.findall(r"^```(?:nginx|caddy)\n(.*?)^```$", text, re.M | re.S)
    files = sorted((DOCS / "deploy").iterdir())
    assert len(files) == 4
    assert sorted(shown) == sorted(f.read_text() for f in files)
