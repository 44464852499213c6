"""``--report-html``: one self-contained HTML page for a CI run.

A summary of every flow, then each flow's steps: status, request and response
(headers and bodies, each body cut at ``BODY_LIMIT`` bytes), validations and
errors. No script, no external file: the page opens from a CI artifact as it is.
Every value is escaped; the records are the masked ones the other reports use.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from flowrun.cli.report import Outcome, body_text, bounded
from flowrun.version import __version__

BODY_LIMIT = 65536
_STATUS = {
    "completed": ("✓", "passed"),
    "failed": ("✗", "failed"),
    "skipped": ("⊘", "skipped"),
    "not_run": ("–", "skipped"),
}
_VERDICT = {
    0: ("passed", "Passed"),
    1: ("failed", "Failed"),
    2: ("failed", "Needs input"),
    3: ("failed", "Target unreachable"),
    130: ("skipped", "Interrupted"),
}
_CSS = """
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #57606a;
  --line: #d0d7de; --pass: #1a7f37; --fail: #cf222e; --skip: #9a6700;
  --code: #f6f8fa; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117;
  --muted: #9198a1; --line: #3d444d; --pass: #3fb950; --fail: #f85149;
  --skip: #d29922; --code: #161b22; } }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--fg);
  background: var(--bg); margin: 2rem auto; max-width: 70rem; padding: 0 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
.passed { color: var(--pass); } .failed { color: var(--fail); }
.skipped { color: var(--skip); } .muted { color: var(--muted); }
details { border: 1px solid var(--line); border-radius: 6px; margin: .4rem 0;
  padding: .3rem .6rem; }
summary { cursor: pointer; } summary span { margin-right: .5rem; }
pre { background: var(--code); padding: .5rem; overflow-x: auto;
  white-space: pre-wrap; word-break: break-all; margin: .3rem 0; }
h4 { margin: .6rem 0 .2rem; font-size: .95rem; }
"""


def write(path: str, outcomes: list[Outcome], not_started: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page(outcomes, not_started))


def page(outcomes: list[Outcome], not_started: list[str]) -> str:
    """The whole report as one HTML document."""
    passed = sum(1 for o in outcomes if o.code == 0)
    total = len(outcomes) + len(not_started)
    verdict = "passed" if passed == total else "failed"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>flowrun report: {passed} of {total} flows passed</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>flowrun report <span class='{verdict}'>{passed} of {total} flows "
        "passed</span></h1>",
        f"<p class='muted'>{_e(when)} · flowrun {_e(__version__)}</p>",
        "<table><thead><tr><th>Flow</th><th>File</th><th>Result</th><th>Steps</th>"
        "<th>Time</th></tr></thead><tbody>",
    ]
    for i, outcome in enumerate(outcomes):
        css, label = _VERDICT.get(outcome.code, ("failed", "Failed"))
        end = outcome.end
        steps = (
            f"{end.stepsExecuted} executed, {end.stepsSkipped} skipped, "
            f"{end.stepsFailed} failed"
            + (f", {len(end.notRun)} not run" if end.notRun else "")
        )
        parts.append(
            f"<tr><td><a href='#flow-{i}'>{_e(outcome.name)}</a></td>"
            f"<td>{_e(outcome.label)}</td><td class='{css}'>{label}</td>"
            f"<td>{steps}</td><td>{end.duration:.2f} s</td></tr>"
        )
    for label in not_started:
        parts.append(
            f"<tr><td></td><td>{_e(label)}</td><td class='skipped'>Not run</td>"
            "<td></td><td></td></tr>"
        )
    parts.append("</tbody></table>")
    for i, outcome in enumerate(outcomes):
        parts.append(_flow(i, outcome))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _flow(index: int, outcome: Outcome) -> str:
    end = outcome.end
    css, label = _VERDICT.get(outcome.code, ("failed", "Failed"))
    parts = [
        f"<h2 id='flow-{index}'>{_e(outcome.name)} <span class='{css}'>{label}"
        "</span></h2>",
        f"<p class='muted'>{_e(outcome.label)} · {_e(end.executionId)} · "
        f"{_e(outcome.started_at)}</p>",
    ]
    if outcome.flow.get("description"):
        parts.append(f"<p>{_e(outcome.flow['description'])}</p>")
    by_id = {r["id"]: r for r in outcome.records}
    for i, node in enumerate(outcome.flow["nodes"]):
        record = by_id.get(node["id"])
        if record is None:
            mark, css = _STATUS["not_run"]
            parts.append(
                f"<details><summary><span class='{css}'>{mark}</span>#{i + 1} "
                f"{_e(node.get('name', node['id']))} <span class='muted'>not run"
                "</span></summary></details>"
            )
            continue
        parts.append(_step(record))
    return "\n".join(parts)


def _step(record: dict) -> str:
    mark, css = _STATUS.get(record["status"], ("?", "failed"))
    response = record.get("response") or {}
    code = response.get("status")
    head = (
        f"<summary><span class='{css}'>{mark}</span>#{record['step']} "
        f"{_e(record['name'])} <span class='muted'>{_e(record['method'])} "
        f"{_e(record['url'])}"
        + (f" · {code}" if code is not None else "")
        + f" · {round((record.get('duration') or 0) * 1000)} ms</span></summary>"
    )
    open_ = " open" if record["status"] == "failed" else ""
    parts = [f"<details{open_}>{head}"]
    if record.get("skipReason"):
        parts.append(f"<p class='skipped'>Skipped: {_e(record['skipReason'])}</p>")
    if record.get("error"):
        parts.append(f"<p class='failed'>{_e(record['error'])}</p>")
    checks = record.get("validations") or []
    if checks:
        parts.append("<h4>Validations</h4><ul>")
        for check in checks:
            ok = check.get("passed")
            parts.append(
                f"<li class='{'passed' if ok else 'failed'}'>{'✓' if ok else '✗'} "
                f"{_e(check.get('message'))}</li>"
            )
        parts.append("</ul>")
    request = record.get("request")
    if request is not None:
        parts.append("<h4>Request</h4>")
        parts.append(_exchange(request.get("headers") or {}, request.get("body")))
    if response:
        parts.append(
            f"<h4>Response {_e(code)} {_e(response.get('statusText') or '')}</h4>"
        )
        parts.append(
            _exchange(response.get("headers") or {}, response.get("body"), response)
        )
    parts.append("</details>")
    return "".join(parts)


def _exchange(headers: dict, body, response: dict | None = None) -> str:
    lines = "\n".join(f"{k}: {v}" for k, v in headers.items())
    out = f"<pre>{_e(lines)}</pre>" if lines else ""
    text, cut = bounded(body_text(body, indent=2), BODY_LIMIT)
    if response is not None and response.get("truncated"):
        cut = max(cut, (response.get("size") or 0) - len(text.encode()))
    if text:
        out += f"<pre>{_e(text)}</pre>"
    if cut:
        out += f"<p class='muted'>… {cut} more bytes not shown</p>"
    return out or "<p class='muted'>no headers, no body</p>"


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)
