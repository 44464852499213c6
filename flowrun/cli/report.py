"""What the CLI shows and writes: the live terminal printer and the report files.

``Printer`` takes the engine's events (the same objects the SSE writer gets) and prints
one line per finished step plus a summary; ``write_junit`` and ``write_json`` turn the
``end`` event into files for CI. ``located`` formats validation errors as
``file: path: message (hint)``.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import click

from flowrun.engine import events

MARKS = {
    "completed": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("⊘", "yellow"),
}


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


class Printer:
    """Print a run as it happens: one line per finished step, then a summary.

    ``quiet`` keeps only failed steps and the summary. ``live`` (stdout is a
    terminal) shows the step in flight on a line that its result then replaces.
    Colour is applied with ``click.style`` and stripped by ``click.echo`` when stdout
    is not a terminal.
    """

    def __init__(self, quiet: bool = False, live: bool = False):
        self.quiet = quiet
        self.live = live and not quiet
        self.total = 0
        self.failed_at: int | None = None
        self._pending = 0  # length of the in-flight line shown

    def __call__(self, event: events.Event) -> None:
        handler = getattr(self, "on_" + event.name, None)
        if handler is not None:
            handler(event)

    def on_start(self, ev: events.Start) -> None:
        self.total = ev.totalSteps
        if not self.quiet:
            name = ev.flowName or "flow"
            steps = f"{ev.totalSteps} step{'s' if ev.totalSteps != 1 else ''}"
            click.echo(
                click.style(f"{name}", bold=True)
                + click.style(f" ({steps}, {ev.executionId})", dim=True)
            )

    def on_step_start(self, ev: events.StepStart) -> None:
        if not self.live:
            return
        width = shutil.get_terminal_size().columns - 1
        text = f"… #{ev.step} {ev.name_}  {ev.method} {ev.url}"
        if len(text) > width:
            text = text[: max(width - 1, 0)] + "…"
        click.echo(click.style(text, dim=True), nl=False)
        self._pending = len(text)

    def _clear(self) -> None:
        if self._pending:
            click.echo("\r" + " " * self._pending + "\r", nl=False)
            self._pending = 0

    def on_input_required(self, ev: events.InputRequired) -> None:
        self._clear()

    def on_step(self, ev: events.StepEvent) -> None:
        self._clear()
        record = ev.record
        status = record["status"]
        if status == "failed" and self.failed_at is None:
            self.failed_at = record["step"]
        if self.quiet and status != "failed":
            return
        for line in step_lines(record):
            click.echo(line)

    def on_end(self, ev: events.End) -> None:
        self._clear()
        click.echo(summary_line(ev, self.failed_at))


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


# -- report files ---------------------------------------------------------------------
def write_json(path: str, end: events.End) -> None:
    """Write the execution log: the ``end`` event's data."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(end.to_dict(), fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")


def junit_tree(flow: dict, end: events.End, started_at: str = "") -> ET.ElementTree:
    """Build JUnit XML: one testsuite per flow, one testcase per node.

    Test case names are ``#<step> <name> [<METHOD> <url as written>]``: the URL as
    written in the flow (not substituted), so names stay stable between environments
    and CI servers can track a step's history.
    """
    name = flow.get("name") or "flow"
    by_id = {r["id"]: r for r in end.executionLog}
    skipped = sum(1 for r in end.executionLog if r["status"] == "skipped")
    skipped += len(end.notRun)
    attrs = {
        "name": name,
        "tests": str(len(flow["nodes"])),
        "failures": str(end.stepsFailed),
        "errors": "0",
        "skipped": str(skipped),
        "time": f"{end.duration:.3f}",
    }
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", dict(attrs, timestamp=started_at))
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="executionId", value=end.executionId)
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
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: str, flow: dict, end: events.End, started_at: str = "") -> None:
    """Write JUnit XML that CI servers (GitHub, GitLab, Jenkins) read."""
    junit_tree(flow, end, started_at).write(
        path, encoding="utf-8", xml_declaration=True
    )


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
