"""What the CLI shows and writes: the live terminal printer and the report files.

``Printer`` takes the engine's events (the same objects the SSE writer gets) and prints
one line per finished step plus a summary (with ``verbose``, each request and
response too); ``write_junit`` and ``write_json`` turn finished runs into files for
CI (``flowrun.cli.html`` writes the HTML page). ``located`` formats validation
errors as ``file: path: message (hint)``.

Everything shown is masked as history is: secret variables and answers by the
engine, and secret header values (Authorization, Cookie…) by a ``Masker`` per flow.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from flowrun.engine import events
from flowrun.store.masking import Masker

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

MARKS = {
    "completed": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("⊘", "yellow"),
}
# Bytes of a body --verbose prints; the rest is counted, not shown.
VERBOSE_BODY = 2048


def located(errors: list[dict], source: str, kind: str = "") -> list[str]:
    """Format located validation errors (or warnings) one per line."""
    lines = []
    for err in errors:
        where = err.get("path") or "(flow)"
        hint = f" ({err['hint']})" if err.get("hint") else ""
        label = f"{kind}: " if kind else ""
        lines.append(f"{source}: {where}: {label}{err.get('message', '')}{hint}")
    return lines


def _ms(seconds) -> str:
    return f"{round((seconds or 0) * 1000)} ms"


def _seconds(seconds) -> str:
    return f"{seconds or 0:.2f} s"


@dataclass
class Outcome:
    """One flow's run, for the summary and the reports."""

    label: str  # the file as given, or "-"
    flow: dict
    end: events.End | None = None
    started_at: str = ""
    code: int = 0  # its exit code
    records: list = field(default_factory=list)  # masked as reports show them

    @property
    def name(self) -> str:
        return self.flow.get("name") or "flow"

    def log(self) -> dict:
        """The execution log: ``end``'s data, records masked, the file first."""
        data = self.end.to_dict()
        data["executionLog"] = self.records
        return {"file": self.label, "flowName": self.flow.get("name") or "", **data}


class Printer:
    """Print a run as it happens: one line per finished step, then a summary.

    ``quiet`` keeps only failed steps and the summary. ``live`` (the output is a
    terminal) shows the step in flight on a line that its result then replaces.
    ``verbose`` adds each request and response. ``buffered`` keeps the lines until
    ``flush()`` (flows running side by side print one block each). ``color``:
    True/False, or None for click's default (a terminal).
    """

    # Blocks of flows that ran side by side are written one at a time.
    _flushing = threading.Lock()

    def __init__(
        self,
        quiet: bool = False,
        live: bool = False,
        verbose: bool = False,
        color: bool | None = None,
        stream=None,
        buffered: bool = False,
        label: str = "",
    ):
        self.quiet = quiet
        self.live = live and not quiet and not buffered
        self.verbose = verbose
        self.color = color
        self.stream = stream
        self.buffered = buffered
        self.label = label
        self.lines: list[tuple[str, bool]] = []
        self.total = 0
        self.failed_at: int | None = None
        self.masker = Masker((), {}, {})
        self.records: list[dict] = []
        self._pending = 0  # length of the in-flight line shown

    def echo(self, text: str = "", nl: bool = True) -> None:
        if self.buffered:
            self.lines.append((text, nl))
        else:
            click.echo(text, file=self.stream, nl=nl, color=self.color)

    def flush(self) -> None:
        lines, self.lines = self.lines, []
        with self._flushing:
            for text, nl in lines:
                click.echo(text, file=self.stream, nl=nl, color=self.color)

    def __call__(self, event: events.Event) -> None:
        handler = getattr(self, "on_" + event.name, None)
        if handler is not None:
            handler(event)

    def on_start(self, ev: events.Start) -> None:
        self.total = ev.totalSteps
        if not self.quiet or self.label:
            name = ev.flowName or "flow"
            steps = f"{ev.totalSteps} step{'s' if ev.totalSteps != 1 else ''}"
            where = f"{self.label}, " if self.label else ""
            self.echo(
                click.style(f"{name}", bold=True)
                + click.style(f" ({steps}, {where}{ev.executionId})", dim=True)
            )

    def on_step_start(self, ev: events.StepStart) -> None:
        if not self.live:
            return
        width = _columns() - 1
        text = f"… #{ev.step} {ev.name_}  {ev.method} {ev.url}"
        if len(text) > width:
            text = text[: max(width - 1, 0)] + "…"
        self.echo(click.style(text, dim=True), nl=False)
        self._pending = len(text)

    def _clear(self) -> None:
        if self._pending:
            self.echo("\r" + " " * self._pending + "\r", nl=False)
            self._pending = 0

    def on_input_required(self, ev: events.InputRequired) -> None:
        self._clear()

    def on_step(self, ev: events.StepEvent) -> None:
        self._clear()
        record = ev.record
        if self.masker.needed(record):
            record = self.masker.mask(record)
        self.records.append(record)
        status = record["status"]
        if status == "failed" and self.failed_at is None:
            self.failed_at = record["step"]
        if self.quiet and status != "failed":
            return
        for line in step_lines(record):
            self.echo(line)
        if self.verbose and status != "skipped":
            for line in exchange_lines(record):
                self.echo(line)

    def on_end(self, ev: events.End) -> None:
        self._clear()
        self.echo(summary_line(ev, self.failed_at))


def _columns() -> int:
    """The terminal's width (what shutil.get_terminal_size finds, for less)."""
    try:
        return int(os.environ.get("COLUMNS") or os.get_terminal_size(1).columns)
    except (OSError, ValueError):
        return 80


def step_lines(record: dict) -> list[str]:
    """The line for one step record, plus indented details when it did not pass."""
    status = record["status"]
    mark, colour = MARKS.get(status, ("?", None))
    head = click.style(mark, fg=colour, bold=True)
    number = click.style(f"#{record['step']}", bold=True)
    target = f"{record['method']} {record['url']}"
    if status == "skipped":
        reason = record.get("skipReason") or "skipped"
        return [
            f"{head} {number} {record['name']}  "
            + click.style(f"{target}  skipped: {reason}", dim=True)
        ]
    response = record.get("response") or {}
    code = response.get("status")
    code_text = "—" if code is None else str(code)
    if code is not None:
        code_text = click.style(
            code_text, fg="green" if 200 <= code < 400 else "red", bold=True
        )
    line = f"{head} {number} {record['name']}  {target}  {code_text}  " + click.style(
        _ms(record.get("duration")), dim=True
    )
    if record.get("attempts", 1) > 1:
        line += click.style(f"  ({record['attempts']} attempts)", dim=True)
    lines = [line]
    if status == "failed":
        failed = [v for v in record.get("validations") or [] if not v.get("passed")]
        for v in failed:
            lines.append("    " + click.style("✗ " + str(v.get("message")), fg="red"))
        if not failed and record.get("error"):
            lines.append("    " + click.style(str(record["error"]), fg="red"))
    return lines


def exchange_lines(record: dict) -> list[str]:
    """``--verbose``: the request and the response of a step, headers and bodies
    (each body cut at VERBOSE_BODY bytes), as curl -v shows them."""
    lines = []
    request = record.get("request")
    if request is not None:
        lines.append(_dim(f"    > {record['method']} {record['url']}"))
        lines += [_dim(f"    > {k}: {v}") for k, v in request["headers"].items()]
        lines += _body_lines(request.get("body"), "    > ")
    response = record.get("response")
    if response is not None:
        status = f"{response.get('status')} {response.get('statusText') or ''}"
        lines.append(_dim(f"    < {status.rstrip()}"))
        lines += [_dim(f"    < {k}: {v}") for k, v in response["headers"].items()]
        lines += _body_lines(response.get("body"), "    < ", response)
    return lines


def _dim(text: str) -> str:
    return click.style(text, dim=True)


def body_text(body, indent: int | None = None) -> str:
    """A body as text: JSON values as JSON (compact, or indented), text as it is."""
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    return json.dumps(body, ensure_ascii=False, indent=indent)


def bounded(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut at ``limit`` UTF-8 bytes, and how many bytes were left out."""
    data = text.encode()
    if len(data) <= limit:
        return text, 0
    return data[:limit].decode("utf-8", "ignore"), len(data) - limit


def _body_lines(body, prefix: str, response: dict | None = None) -> list[str]:
    text, cut = bounded(body_text(body), VERBOSE_BODY)
    if not text:
        return []
    lines = [prefix + line for line in text.splitlines()] or [prefix]
    if response is not None and response.get("truncated"):
        cut = max(cut, (response.get("size") or 0) - len(text.encode()))
    if cut:
        lines.append(prefix + f"… ({cut} more bytes)")
    return lines


def preview_lines(record: dict) -> list[str]:
    """``--dry-run``: a node's request as it would be sent, or why not yet."""
    number = click.style(f"#{record['step']}", bold=True)
    if record.get("error"):
        return [
            f"{click.style('?', fg='yellow', bold=True)} {number} {record['name']}  "
            f"{record['method']} {record['url']}",
            "    " + click.style(f"not rendered: {record['error']}", fg="yellow"),
        ]
    lines = [
        f"{click.style('→', bold=True)} {number} {record['name']}  "
        f"{record['method']} {record['url']}"
    ]
    request = record["request"]
    lines += [_dim(f"    > {k}: {v}") for k, v in request["headers"].items()]
    lines += _body_lines(request.get("body"), "    > ")
    return lines


def summary_line(ev: events.End, failed_at: int | None = None) -> str:
    """``✓ Passed: 3 executed, 1 skipped, 0 failed in 0.12 s`` and friends."""
    counts = (
        f"{ev.stepsExecuted} executed, {ev.stepsSkipped} skipped, "
        f"{ev.stepsFailed} failed"
    )
    if ev.notRun:
        counts += f", {len(ev.notRun)} not run"
    counts += f" in {_seconds(ev.duration)}"
    if ev.interrupted:
        label, mark, colour = "Interrupted", "⊘", "yellow"
    elif ev.success:
        label, mark, colour = "Passed", "✓", "green"
    else:
        label, mark, colour = "Failed", "✗", "red"
        if failed_at is not None:
            label += f" at step #{failed_at}"
    return click.style(f"{mark} {label}: ", fg=colour, bold=True) + counts


def totals_line(outcomes: list[Outcome], not_started: list[str], seconds) -> str:
    """The last line when several flows ran: how many passed, which did not."""
    by_code: dict[int, list[str]] = {}
    for outcome in outcomes:
        by_code.setdefault(outcome.code, []).append(outcome.label)
    passed = len(by_code.pop(0, []))
    total = len(outcomes) + len(not_started)
    parts = [f"{passed} of {total} flows passed"]
    names = {1: "failed", 2: "need input", 3: "could not reach their target"}
    for code in (1, 2, 3):
        if code in by_code:
            parts.append(f"{names[code]}: {', '.join(by_code[code])}")
    if 130 in by_code:
        parts.append(f"interrupted: {', '.join(by_code[130])}")
    if not_started:
        parts.append(f"not run: {', '.join(not_started)}")
    if passed == total:
        mark, colour = "✓", "green"
    elif 130 in by_code or not_started:
        mark, colour = "⊘", "yellow"
    else:
        mark, colour = "✗", "red"
    return click.style(f"{mark} ", fg=colour, bold=True) + (
        "; ".join(parts) + f" in {_seconds(seconds)}"
    )


# -- report files ---------------------------------------------------------------------
def write_json(path: str, outcomes: list[Outcome]) -> None:
    """Write each flow's execution log as one line of JSON (JSON Lines); ``-``
    writes to standard output."""
    text = "".join(
        json.dumps(o.log(), ensure_ascii=False, default=str) + "\n" for o in outcomes
    )
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def junit_tree(outcomes: list[Outcome]) -> ET.ElementTree:
    """Build JUnit XML: one testsuite per flow, one testcase per node.

    Test case names are ``#<step> <name> [<METHOD> <url as written>]``: the URL as
    written in the flow (not substituted), so names stay stable between environments
    and CI servers can track a step's history.
    """
    import xml.etree.ElementTree as ET  # only when a report is asked for

    suites = [_suite(o) for o in outcomes]
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time = 0.0
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key))
        time += float(suite.get("time"))
    name = outcomes[0].name if len(outcomes) == 1 else "flowrun"
    attrs = {k: str(v) for k, v in totals.items()}
    root = ET.Element("testsuites", {"name": name, **attrs, "time": f"{time:.3f}"})
    root.extend(suites)
    ET.indent(root)
    return ET.ElementTree(root)


def _suite(outcome: Outcome) -> ET.Element:
    import xml.etree.ElementTree as ET

    flow, end, name = outcome.flow, outcome.end, outcome.name
    by_id = {r["id"]: r for r in outcome.records}
    skipped = sum(1 for r in outcome.records if r["status"] == "skipped")
    skipped += len(end.notRun)
    suite = ET.Element(
        "testsuite",
        {
            "name": name,
            "tests": str(len(flow["nodes"])),
            "failures": str(end.stepsFailed),
            "errors": "0",
            "skipped": str(skipped),
            "time": f"{end.duration:.3f}",
            "timestamp": outcome.started_at,
        },
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="executionId", value=end.executionId)
    ET.SubElement(props, "property", name="file", value=outcome.label)
    if end.interrupted:
        ET.SubElement(props, "property", name="interrupted", value="true")
    if flow.get("description"):
        ET.SubElement(props, "property", name="description", value=flow["description"])
    why_not_run = (
        "not run: the flow was interrupted"
        if end.interrupted
        else ("not run: an earlier step failed")
    )
    for index, node in enumerate(flow["nodes"]):
        record = by_id.get(node["id"])
        method = (node.get("method") or "GET").upper()
        case = ET.SubElement(
            suite,
            "testcase",
            classname=name,
            name=f"#{index + 1} {node.get('name', node['id'])} "
            f"[{method} {node.get('url', '')}]",
            time=f"{(record or {}).get('duration') or 0:.3f}",
        )
        if record is None:
            ET.SubElement(case, "skipped", message=why_not_run)
            continue
        if record["status"] == "skipped":
            ET.SubElement(case, "skipped", message=record.get("skipReason") or "")
        elif record["status"] == "failed":
            failure = ET.SubElement(
                case,
                "failure",
                message=record.get("error") or "failed",
                type="ValidationFailed" if _validation_failed(record) else "StepError",
            )
            failure.text = _details(record)
        out = _details(record) if record["status"] == "completed" else None
        if out:
            ET.SubElement(case, "system-out").text = out
    return suite


def write_junit(path: str, outcomes: list[Outcome]) -> None:
    """Write JUnit XML that CI servers (GitHub, GitLab, Jenkins) read."""
    junit_tree(outcomes).write(path, encoding="utf-8", xml_declaration=True)


def _validation_failed(record: dict) -> bool:
    return any(not v.get("passed") for v in record.get("validations") or [])


def _details(record: dict) -> str:
    """Plain-text detail of a step: request line, status, every validation."""
    response = record.get("response") or {}
    lines = [f"{record['method']} {record['url']}"]
    if response:
        lines.append(
            f"HTTP {response.get('status')} {response.get('statusText') or ''}"
        )
    if record.get("error") and not _validation_failed(record):
        lines.append(str(record["error"]))
    for v in record.get("validations") or []:
        lines.append(f"{'✓' if v.get('passed') else '✗'} {v.get('message')}")
    return "\n".join(line.rstrip() for line in lines)
