"""The docs name every setting (with its default) and every SSE event, and their
links lead somewhere."""

from __future__ import annotations

import re
import subprocess
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


# -- links between the documents --------------------------------------------------
ROOT = DOCS.parent
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted(DOCS.glob("*.md"))]
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """``text`` without code blocks and code spans (their brackets are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _anchors(page: Path) -> set[str]:
    """The anchors a page's headings get, as GitHub makes them."""
    found: set[str] = set()
    for heading in re.findall(
        r"^#{1,6}\s+(.+?)\s*#*$", _FENCE.sub("", page.read_text()), re.M
    ):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(
            " ", "-"
        )
        anchor, n = slug, 0
        while anchor in found:
            n += 1
            anchor = f"{slug}-{n}"
        found.add(anchor)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_something_that_exists(page):
    broken = []
    for target in _LINK.findall(_prose(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)}: links to nothing: {broken}"


def test_no_file_cites_the_contract_kept_outside_the_repository():
    # The repository's own docs are the reference: no file names the product
    # contract it was once written against.
    word = "SP" + "EC"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = listed.stdout.decode().split("\0")
    offenders = []
    for name in filter(None, tracked):
        path = ROOT / name
        if path.suffix in {".png", ".jpg", ".ico", ".woff2"} or not path.is_file():
            continue
        text = path.read_text("utf-8", errors="replace")
        if re.search(rf"(?<![A-Z]){word}(?![A-Za-z])", text):
            offenders.append(name)
    assert offenders == []
