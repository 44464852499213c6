"""``flowrun run``: run a flow in the terminal, one line per step, reports for CI."""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

import click

from flowrun.cli import report
from flowrun.cli.common import (
    EXIT_HELP,
    UserError,
    exit_code,
    is_tty,
    load_settings,
    prepare_report_path,
    read_json,
)
from flowrun.engine import validation
from flowrun.engine.controls import Controls
from flowrun.engine.flow import RunOptions
from flowrun.engine.run import EngineSettings, Run
from flowrun.errors import FlowInvalid, InputMissing

# Prompt keys containing one of these are read without echo.
SECRET_WORDS = ("pass", "secret", "token", "otp", "pin")


def _json_or_text(raw: str):
    try:
        return validation.parse_json(raw)
    except (ValueError, RecursionError):
        return raw


def _pairs(typed: bool):
    """Click callback: ``KEY=VALUE`` options into a dict (JSON values if typed)."""

    def callback(ctx, param, values):
        out = {}
        for item in values:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise click.BadParameter(
                    f"{item!r} is not KEY=VALUE", ctx=ctx, param=param
                )
            out[key] = _json_or_text(raw) if typed else raw
        return out

    return callback


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_WORDS)


class TerminalControls(Controls):
    """Steer a run from a terminal: prompts on a TTY, Ctrl-C stops gracefully."""

    def __init__(self, interactive: bool):
        super().__init__()
        self.interactive = interactive
        self.prompting = False

    def ask(self, step_index: int, prompts: dict, timeout: float) -> dict | None:
        if not self.interactive:
            flags = " ".join(f"--input {key}=..." for key in prompts)
            raise InputMissing(
                f"step #{step_index + 1} asks for {', '.join(prompts)} and stdin is "
                f"not a terminal: pass {flags}"
            )
        answers = {}
        self.prompting = True
        try:
            for key, text in prompts.items():
                text = str(text).strip() or key
                answers[key] = click.prompt(
                    text,
                    prompt_suffix=" " if text[-1] in ":?" else ": ",
                    hide_input=_is_secret(key),
                    err=True,
                )
        except click.Abort:
            self.stop()
            return None
        finally:
            self.prompting = False
        return answers


@contextmanager
def _ctrl_c_stops(controls: TerminalControls):
    """First Ctrl-C: stop after the step in flight. Second (or at a prompt): abort."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if controls.prompting or controls.cancelled.is_set():
            raise KeyboardInterrupt
        controls.stop()
        # Not click.echo: a signal handler may interrupt a write to the same stream.
        os.write(
            2,
            b"\nInterrupting: the step in flight finishes, then the run stops "
            b"(Ctrl-C again to quit at once)\n",
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _warn(warnings: list[dict], source: str) -> None:
    for line in report.located(warnings, source, "warning"):
        click.secho(line, fg="yellow", err=True)


@click.command(epilog=EXIT_HELP)
@click.argument("flow_file", metavar="FLOW.json", type=click.Path(dir_okay=False))
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_pairs(typed=True),
    help="Set a flow variable (overrides the flow's and --vars-file's). VALUE is "
    "read as JSON when it parses (5, true, [1,2]), else as text. Repeatable.",
)
@click.option(
    "--vars-file",
    type=click.Path(dir_okay=False),
    help="JSON object of variables, applied over the flow's variables.",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_pairs(typed=False),
    help="Answer a userPrompts prompt in advance (no question is asked). "
    "Repeatable. Needed for every prompt when stdin is not a terminal.",
)
@click.option(
    "--start-step",
    metavar="N",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="0-based index of the first node to run; earlier nodes are skipped "
    "(--start-step 2 starts at step #3).",
)
@click.option(
    "--continue-on-failure",
    is_flag=True,
    help="Keep going after a failed step (the exit code is still 1 if any failed).",
)
@click.option(
    "--junit",
    "junit_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write a JUnit XML report (one test case per step) for CI servers.",
)
@click.option(
    "--json",
    "json_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write the execution log as JSON (the data of the run's end event).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print only failed steps and the summary line.",
)
@click.pass_context
def run(
    ctx,
    flow_file,
    variables,
    vars_file,
    inputs,
    start_step,
    continue_on_failure,
    junit_file,
    json_file,
    quiet,
):
    """Run a flow and print one line per step as it finishes.

    Prompts (userPrompts) are asked on the terminal; answer them in advance with
    --input KEY=VALUE (required when stdin is not a terminal). Ctrl-C stops
    gracefully: the step in flight finishes, the rest are reported as not run.
    """
    values = load_settings()
    merged = {}
    if vars_file:
        from_file = read_json(vars_file)
        if not isinstance(from_file, dict):
            raise click.BadParameter(
                f"{vars_file} must hold a JSON object", param_hint="'--vars-file'"
            )
        merged.update(from_file)
    merged.update(variables)

    doc = read_json(flow_file)
    try:
        flow, warnings = validation.load_with_warnings(doc, values["FLOWRUN_MAX_STEPS"])
    except FlowInvalid as exc:
        _invalid(exc.errors, flow_file)
    if warnings and not quiet:
        _warn(warnings, flow_file)
    count = len(flow["nodes"])
    if start_step >= count:
        raise click.BadParameter(
            f"{start_step} is past the last node (the flow has {count}: 0-{count - 1})",
            param_hint="'--start-step'",
        )

    # Before running anything: a report that cannot be written would otherwise be
    # found out only after the whole run (and its side effects) has happened.
    for path, hint in ((junit_file, "'--junit'"), (json_file, "'--json'")):
        if path:
            prepare_report_path(path, hint)

    options = RunOptions(
        start_step=start_step,
        variables=merged,
        inputs=inputs,
        continue_on_failure=continue_on_failure,
    )
    controls = TerminalControls(interactive=is_tty(sys.stdin))
    printer = report.Printer(quiet=quiet, live=is_tty(sys.stdout))
    engine = Run(flow, options, controls, EngineSettings.from_settings(values))
    end, started_at = None, ""
    try:
        with _ctrl_c_stops(controls):
            for event in engine.events():
                printer(event)
                if event.name == "start":
                    started_at = event.startedAt
                elif event.name == "end":
                    end = event
    except KeyboardInterrupt as exc:
        click.secho("\nAborted.", fg="yellow", err=True)
        ctx.exit(exit_code(exc))

    try:
        if junit_file:
            report.write_junit(junit_file, flow, end, started_at)
        if json_file:
            report.write_json(json_file, end)
    except OSError as exc:
        raise UserError(f"cannot write report: {exc}") from None
    ctx.exit(exit_code(end))


def _invalid(errors: list[dict], source: str):
    exc = FlowInvalid(errors, "Invalid flow: nothing was run")
    exc.source = source
    raise exc
