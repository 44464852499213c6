"""The ``flowrun`` command line: run, validate, serve, import.

The CLI drives the same engine as the web API and prints its events (``report``).
Outcomes and errors become exit codes in one place, ``exit_code()``; user mistakes are
``click`` exceptions (a message, no traceback).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from contextlib import contextmanager

import click

from flowrun import settings as settings_mod
from flowrun.cli import report
from flowrun.engine import validation
from flowrun.engine.controls import Controls
from flowrun.engine.events import End
from flowrun.engine.flow import RunOptions
from flowrun.engine.run import EngineSettings, Run
from flowrun.errors import FlowError, FlowInvalid, InputMissing
from flowrun.version import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130

EXIT_HELP = """
\b
Exit codes:
  0    every step passed (validate: every file is valid)
  1    a step failed
  2    invalid flow, unreadable file or JSON, or bad usage
  130  interrupted with Ctrl-C (the step in flight finishes first)
"""

# Prompt keys containing one of these are read without echo.
SECRET_WORDS = ("pass", "secret", "token", "otp", "pin")
FORMATS = ("postman", "curl", "openapi")


class UserError(click.ClickException):
    """A mistake in what the user gave us (a file, a value): message, exit 2."""

    exit_code = EXIT_INVALID


def exit_code(outcome) -> int:
    """Map a run's ``end`` event or a flowrun error to the process exit code."""
    if isinstance(outcome, End):
        if outcome.success:
            return EXIT_OK
        return EXIT_INTERRUPTED if outcome.interrupted else EXIT_FAILED
    if isinstance(outcome, FlowInvalid):
        return EXIT_INVALID
    if isinstance(outcome, FlowError):
        return EXIT_FAILED
    if isinstance(outcome, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_FAILED


class FlowrunGroup(click.Group):
    """A click group that turns flowrun errors into messages and exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FlowInvalid as exc:
            source = getattr(exc, "source", None) or "flow"
            for line in report.located(exc.errors, source):
                click.echo(line, err=True)
            count = len(exc.errors)
            click.secho(
                f"✗ {exc.message} ({count} error{'s' if count != 1 else ''})",
                fg="red",
                err=True,
            )
            ctx.exit(exit_code(exc))
        except FlowError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            ctx.exit(exit_code(exc))


@click.group(cls=FlowrunGroup, epilog=EXIT_HELP)
@click.version_option(__version__, prog_name="flowrun")
def cli():
    """Run multi-step HTTP API flows.

    A flow is a JSON document of steps (HTTP requests) whose URLs, headers and
    bodies use values from earlier responses; each response is checked by
    validations. Run flows here (for CI) or in Studio (flowrun serve).
    """


# -- helpers --------------------------------------------------------------------------
def load_settings() -> dict:
    try:
        return settings_mod.load()
    except ValueError as exc:
        raise UserError(str(exc)) from None


def read_json(path: str):
    """Read a JSON file; a clear UserError when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    try:
        return validation.parse_json(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:  # NaN, Infinity, 1e400
        raise UserError(f"{path}: invalid JSON: {exc}") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply") from None


def _prepare_report_path(path: str, hint: str) -> None:
    """Create the report's directory (CI jobs write to reports/…); refuse early a
    path that cannot be written."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot create the directory {parent}: {exc.strerror or exc}",
            param_hint=hint,
        ) from None
    if not os.access(parent, os.W_OK) or (
        os.path.exists(path) and not os.access(path, os.W_OK)
    ):
        raise click.BadParameter(f"{path} is not writable", param_hint=hint)


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


# -- commands -------------------------------------------------------------------------
@cli.command(epilog=EXIT_HELP)
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
    errors, warnings = validation.check(doc, values["FLOWRUN_MAX_STEPS"])
    if errors:
        _invalid(errors, flow_file)
    try:
        flow = validation.load(doc, values["FLOWRUN_MAX_STEPS"])
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
            _prepare_report_path(path, hint)

    options = RunOptions(
        start_step=start_step,
        variables=merged,
        inputs=inputs,
        continue_on_failure=continue_on_failure,
    )
    controls = TerminalControls(interactive=_is_tty(sys.stdin))
    printer = report.Printer(quiet=quiet, live=_is_tty(sys.stdout))
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


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _invalid(errors: list[dict], source: str):
    exc = FlowInvalid(errors, "Invalid flow: nothing was run")
    exc.source = source
    raise exc


@cli.command(epilog=EXIT_HELP)
@click.argument(
    "files", nargs=-1, required=True, metavar="FLOW.json...", type=click.Path()
)
@click.pass_context
def validate(ctx, files):
    """Check flow files without running them.

    Prints each problem as FILE: PATH: MESSAGE (HINT); warnings are marked as
    such and do not make a file invalid. Exit 0 when every file is valid, else 2.
    """
    values = load_settings()
    all_valid = True
    for path in files:
        try:
            doc = read_json(path)
        except UserError as exc:
            click.secho(exc.message, fg="red")
            all_valid = False
            continue
        errors, warnings = validation.check(doc, values["FLOWRUN_MAX_STEPS"])
        for line in report.located(errors, path):
            click.secho(line, fg="red")
        for line in report.located(warnings, path, "warning"):
            click.secho(line, fg="yellow")
        if errors:
            all_valid = False
            n = len(errors)
            click.secho(
                f"{path}: invalid ({n} error{'s' if n != 1 else ''})", bold=True
            )
        else:
            n = len(warnings)
            note = f" ({n} warning{'s' if n != 1 else ''})" if n else ""
            click.secho(f"{path}: valid{note}", fg="green")
    ctx.exit(EXIT_OK if all_valid else EXIT_INVALID)


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback should have FLOWRUN_TOKEN set.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
def serve(host, port):
    """Serve Studio and the API on Flask's development server.

    For deployment use gunicorn: gunicorn -c gunicorn.conf.py app:app
    """
    from flowrun import create_app

    values = load_settings()
    if host not in ("127.0.0.1", "localhost", "::1") and not values["FLOWRUN_TOKEN"]:
        click.secho(
            f"WARNING: listening on {host} without FLOWRUN_TOKEN: anyone who can "
            "reach this port can run requests from this machine.",
            fg="red",
            bold=True,
            err=True,
        )
    try:
        app = create_app({"PORT": port})  # the seeded samples call this port's demo
    except ModuleNotFoundError as exc:
        if exc.name != "flowrun.web":
            raise
        raise UserError("the web app (flowrun.web) is not installed") from None
    app.run(host=host, port=port, threaded=True)


@cli.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(FORMATS))
@click.argument("source", metavar="FILE", type=click.File("r", encoding="utf-8"))
@click.option(
    "-o",
    "--output",
    metavar="FLOW.json",
    type=click.Path(dir_okay=False),
    help="Write the flow to this file instead of standard output.",
)
def import_(fmt, source, output):
    """Convert a Postman collection, curl command or OpenAPI document to a flow.

    FORMAT is postman (collection v2.1), curl or openapi. FILE may be - to read
    standard input. The flow is printed, or written with -o.
    """
    try:
        from flowrun import importers
    except ModuleNotFoundError as exc:
        if exc.name != "flowrun.importers":
            raise
        raise UserError(
            "importing is not available: flowrun.importers is missing"
        ) from None
    convert = getattr(importers, "convert", None)
    if convert is None:
        raise UserError(
            "importing is not available: flowrun.importers.convert is missing"
        )
    try:
        text = source.read()
    except UnicodeDecodeError:
        raise UserError(f"{source.name}: not UTF-8 text") from None
    try:
        flow = convert(fmt, text)
    except FlowInvalid as exc:
        exc.source = source.name
        raise
    except ValueError as exc:
        raise UserError(f"{source.name}: cannot import as {fmt}: {exc}") from None
    text = json.dumps(flow, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UserError(f"{output}: cannot write: {exc.strerror or exc}") from None
    n = len(flow.get("nodes") or [])
    click.echo(f"Wrote {output} ({n} node{'s' if n != 1 else ''})", err=True)
