"""``flowrun run``: run flows in a terminal or in CI; one line per step, reports.

Every flow given (files, directories, globs, ``-``) is read and checked first:
nothing runs unless all are valid and every declared secret has a value. Flows
then run one after the other, or ``--jobs`` at a time, each printed as one block.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import click

from flowrun.cli import report, sources
from flowrun.cli import variables as cli_variables
from flowrun.cli.common import (
    EXIT_HELP,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    UserError,
    is_tty,
    load_settings,
    overall_code,
    prepare_report_path,
    run_code,
    use_color,
)
from flowrun.documents import DocumentError, decode, is_yaml, parse
from flowrun.engine import validation
from flowrun.engine.controls import Controls
from flowrun.engine.flow import RunOptions
from flowrun.engine.run import EngineSettings, Run
from flowrun.environments import parse_dotenv
from flowrun.environments import resolve as missing_secrets
from flowrun.errors import FlowInvalid, InputMissing
from flowrun.store.masking import looks_secret


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


def _hidden(key: str) -> bool:
    """Answers read without echo: secret-looking keys, and PINs."""
    return looks_secret(key) or "pin" in key.lower()


class TerminalControls(Controls):
    """Steer a run from a terminal: prompts on a TTY, Ctrl-C stops gracefully."""

    def __init__(self, interactive: bool, why_not: str = "stdin is not a terminal"):
        super().__init__()
        self.interactive = interactive
        self.why_not = why_not
        self.prompting = False

    def ask(self, step_index: int, prompts: dict, timeout: float) -> dict | None:
        if not self.interactive:
            flags = " ".join(f"--input {key}=..." for key in prompts)
            raise InputMissing(
                f"step #{step_index + 1} asks for {', '.join(prompts)} and "
                f"{self.why_not}: pass {flags}"
            )
        answers = {}
        self.prompting = True
        try:
            for key, text in prompts.items():
                text = str(text).strip() or key
                answers[key] = click.prompt(
                    text,
                    prompt_suffix=" " if text[-1] in ":?" else ": ",
                    hide_input=_hidden(key),
                    err=True,
                )
        except click.Abort:
            self.stop()
            return None
        finally:
            self.prompting = False
        return answers


class Stopper:
    """Ctrl-C for every run of the command: the first stops them all after their
    step in flight (and starts no other flow); a second one (or one at a prompt)
    quits at once."""

    def __init__(self):
        self.stopping = False
        self.live: list[TerminalControls] = []

    def handler(self, signum, frame):
        if self.stopping or any(c.prompting for c in self.live):
            raise KeyboardInterrupt
        self.stopping = True
        for controls in list(self.live):
            controls.stop()
        # Not click.echo: a signal handler may interrupt a write to the same stream.
        os.write(
            2,
            b"\nInterrupting: the step in flight finishes, then the run stops "
            b"(Ctrl-C again to quit at once)\n",
        )

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self.handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


@dataclass
class Item:
    """A checked flow, ready to run."""

    label: str
    flow: dict
    options: RunOptions
    warnings: list = field(default_factory=list)


@click.command(epilog=EXIT_HELP)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--env",
    "env_name",
    metavar="NAME",
    help="Run in the workspace environment NAME "
    "(FLOWRUN_FLOWS_DIR/environments/NAME.json, .yaml, .yml or .env).",
)
@click.option(
    "--env-file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Run in the environment of this file (JSON, YAML or .env); over --env's "
    "when both are given.",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_pairs(typed=True),
    help="Set a flow variable (over FLOWRUN_VAR_<KEY>, --vars-file, the "
    "environment and the flow). VALUE is read as JSON when it parses (5, true, "
    "[1,2]), else as text. Repeatable.",
)
@click.option(
    "--vars-file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Variables from a file: a JSON or YAML object, or a .env file.",
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
    help="Keep going after a failed step (the exit code still says it failed).",
)
@click.option(
    "-j",
    "--jobs",
    metavar="N",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run up to N flows at once; each flow's lines are printed together when "
    "it ends (prompts then need --input).",
)
@click.option(
    "--junit",
    "junit_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write a JUnit XML report (a test suite per flow, a test case per step).",
)
@click.option(
    "--json",
    "json_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write each flow's execution log as a line of JSON; - writes to standard "
    "output (the step lines then go to standard error).",
)
@click.option(
    "--report-html",
    "html_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write one self-contained HTML page: every flow, step, request and response.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Print each step's request and response (masked, bodies cut at "
    f"{report.VERBOSE_BODY} bytes).",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour the output: auto means on a terminal unless NO_COLOR is set.",
)
@click.option(
    "-k",
    "--insecure",
    is_flag=True,
    help="Do not verify TLS certificates of the targets.",
)
@click.option(
    "--cacert",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Verify TLS certificates with the CA bundle in FILE (PEM).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print every request that can be rendered without sending anything "
    "(those that need an earlier response say so).",
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
    paths,
    env_name,
    env_file,
    variables,
    vars_file,
    inputs,
    start_step,
    continue_on_failure,
    jobs,
    junit_file,
    json_file,
    html_file,
    verbose,
    color,
    insecure,
    cacert,
    dry_run,
    quiet,
):
    """Run flows and print one line per step as it finishes.

    PATH is a flow file (JSON or YAML), a directory (every flow file in it), a
    glob ('flows/*.yaml', quoted), or - for standard input. Variables come from
    the flow, then the environment (--env, --env-file), then --vars-file,
    FLOWRUN_VAR_<name> variables of this process and --var, each over the one
    before. Prompts (userPrompts) are asked on the terminal; answer them in
    advance with --input KEY=VALUE (required when stdin is not a terminal).
    Ctrl-C stops gracefully: the step in flight finishes, the rest are reported
    as not run.
    """
    values = load_settings()
    if insecure and cacert:
        raise click.UsageError("--insecure and --cacert cannot be used together")
    out = sys.stderr if json_file == "-" else sys.stdout
    color_out, color_err = use_color(color, out), use_color(color, sys.stderr)
    files = sources.paths(paths)
    env = cli_variables.environment(env_name, env_file, values["FLOWRUN_FLOWS_DIR"])
    run_vars, run_secrets = _vars_file(vars_file) if vars_file else ({}, [])
    run_vars.update(cli_variables.from_process())
    run_vars.update(variables)

    items = _check(files, env, run_vars, inputs, start_step, continue_on_failure)
    for _label, _doc, options in items:
        options.env_secrets = (*options.env_secrets, *run_secrets)
    items = _usable(items, values["FLOWRUN_MAX_STEPS"], color_err)
    if not quiet:
        for item in items:
            for line in report.located(item.warnings, item.label, "warning"):
                click.secho(line, fg="yellow", err=True, color=color_err)

    # Before running anything: a report that cannot be written would otherwise be
    # found out only after the whole run (and its side effects) has happened.
    for path, hint in (
        (junit_file, "'--junit'"),
        (json_file, "'--json'"),
        (html_file, "'--report-html'"),
    ):
        if path and path != "-":
            prepare_report_path(path, hint)

    settings = EngineSettings.from_settings(values)
    if insecure:
        import urllib3

        # The person asked for it: no warning per request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        settings.verify_tls = False
    elif cacert:
        settings.verify_tls = os.path.abspath(cacert)

    printing = {"quiet": quiet, "verbose": verbose, "color": color_out, "stream": out}
    if dry_run:
        _dry_run(items, settings, printing)
        ctx.exit(EXIT_OK)

    started = time.perf_counter()
    outcomes, not_started, aborted = _run_all(items, settings, jobs, printing)
    if aborted:
        click.secho("\nAborted.", fg="yellow", err=True, color=color_err)
        ctx.exit(EXIT_INTERRUPTED)
    if len(items) > 1:
        click.echo(
            report.totals_line(outcomes, not_started, time.perf_counter() - started),
            file=out,
            color=color_out,
        )
    try:
        if junit_file and outcomes:
            report.write_junit(junit_file, outcomes)
        if json_file and outcomes:
            report.write_json(json_file, outcomes)
        if html_file:
            from flowrun.cli import html

            html.write(html_file, outcomes, not_started)
    except OSError as exc:
        raise UserError(f"cannot write report: {exc}") from None
    codes = [o.code for o in outcomes] + [EXIT_INTERRUPTED] * len(not_started)
    ctx.exit(overall_code(codes))


def _vars_file(path: str) -> tuple[dict, list[str]]:
    """``--vars-file``: an object of variables (JSON, YAML) or a ``.env`` file,
    and the names that are secrets (those a ``.env`` file makes secret)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        text = decode(data, path)
        if path.lower().endswith(".env"):
            env = parse_dotenv("", text, path)
            return dict(env.variables), list(env.secrets)
        doc = parse(text, path, yaml=is_yaml(path))
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except DocumentError as exc:
        raise UserError(str(exc)) from None
    if not isinstance(doc, dict):
        raise click.BadParameter(
            f"{path} must hold a JSON object", param_hint="'--vars-file'"
        )
    if isinstance(doc.get("values"), list) and "_postman_variable_scope" in doc:
        raise click.BadParameter(
            f"{path} is a Postman environment: convert it with "
            "'flowrun import postman-env' and pass it with --env-file",
            param_hint="'--vars-file'",
        )
    return dict(doc), []


def _check(files, env, run_vars, inputs, start_step, continue_on_failure):
    """Read every flow: a list of ``(label, document or DocumentError, options)``."""
    checked = []
    for path in files:
        options = RunOptions(
            start_step=start_step,
            variables=dict(run_vars),
            inputs=dict(inputs),
            continue_on_failure=continue_on_failure,
        )
        if env is not None:
            options.use_environment(env)
        try:
            source = sources.load(path)
        except DocumentError as exc:
            checked.append((path, exc, options))
            continue
        checked.append((source.label, source.doc, options))
    return checked


def _usable(checked, max_steps: int, color: bool) -> list[Item]:
    """Validate every flow; print every problem and exit 2 if there is one."""
    items, problems = [], 0
    for label, doc, options in checked:
        if isinstance(doc, DocumentError):
            click.secho(str(doc), fg="red", err=True, color=color)
            problems += 1
            continue
        # Variables the run supplies are defined, whatever the flow says.
        supplied = {*options.env_variables, *options.variables}
        try:
            flow, warnings = validation.load_with_warnings(
                cli_variables.declaring(doc, supplied), max_steps
            )
        except FlowInvalid as exc:
            for line in report.located(exc.errors, label):
                click.echo(line, err=True, color=color)
            problems += len(exc.errors)
            continue
        errors = []
        nodes = len(flow["nodes"])
        if options.start_step >= nodes:
            errors.append(
                f"Invalid value for '--start-step': {options.start_step} is past "
                f"the last node of {label} (it has {nodes}: 0-{nodes - 1})"
            )
        for name in missing_secrets(flow, options):
            errors.append(
                f"{label}: secret '{name}' has no value: give it with --var "
                f"{name}=…, FLOWRUN_VAR_{name}, or in the environment"
            )
        for line in errors:
            click.secho(line, fg="red", err=True, color=color)
        problems += len(errors)
        if not errors:
            items.append(Item(label, flow, options, warnings))
    if problems:
        files = f" in {len(checked)} files" if len(checked) > 1 else ""
        click.secho(
            f"✗ Invalid flow: nothing was run ({problems} "
            f"error{'s' if problems != 1 else ''}{files})",
            fg="red",
            err=True,
            color=color,
        )
        raise click.exceptions.Exit(EXIT_INVALID)
    return items


def _printer(item: Item, printing: dict, several: bool, buffered: bool):
    stream = printing["stream"]
    return report.Printer(
        quiet=printing["quiet"],
        live=is_tty(stream) and not buffered,
        verbose=printing["verbose"],
        color=printing["color"],
        stream=stream,
        buffered=buffered,
        label=item.label if several else "",
    )


def _run_all(items: list[Item], settings, jobs: int, printing: dict):
    """Run the flows; ``(outcomes, labels not started, aborted)``."""
    stopper = Stopper()
    several = len(items) > 1
    buffered = jobs > 1 and several
    interactive = (
        is_tty(sys.stdin)
        and not buffered
        and not any(item.label == sources.STDIN_LABEL for item in items)
    )
    why_not = (
        "flows run side by side (--jobs)" if buffered else "stdin is not a terminal"
    )
    outcomes: list[report.Outcome] = []

    def one(item: Item) -> report.Outcome | None:
        if stopper.stopping:
            return None
        controls = TerminalControls(interactive, why_not)
        stopper.live.append(controls)
        printer = _printer(item, printing, several, buffered)
        try:
            return _execute(item, settings, controls, printer)
        finally:
            stopper.live.remove(controls)
            if buffered:
                printer.flush()

    try:
        with stopper.installed():
            if not buffered:
                for i, item in enumerate(items):
                    if i and not stopper.stopping:
                        click.echo(file=printing["stream"])
                    outcome = one(item)
                    if outcome is not None:
                        outcomes.append(outcome)
            else:
                outcomes = _in_parallel(items, jobs, one)
    except KeyboardInterrupt:
        return outcomes, [], True
    done = {o.label for o in outcomes}
    return outcomes, [i.label for i in items if i.label not in done], False


def _in_parallel(items: list[Item], jobs: int, one) -> list[report.Outcome]:
    """``one(item)`` for every item, ``jobs`` at a time, in threads that do not
    hold the process up if it has to quit at once (a second Ctrl-C)."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    results: queue.SimpleQueue = queue.SimpleQueue()

    def worker():
        while True:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results.put((item, one(item), None))
            except BaseException as exc:  # reported by the main thread
                results.put((item, None, exc))

    for _ in range(min(jobs, len(items))):
        threading.Thread(target=worker, daemon=True).start()
    finished: dict[str, report.Outcome | None] = {}
    while len(finished) < len(items):
        try:
            item, outcome, exc = results.get(timeout=0.2)
        except queue.Empty:
            continue
        if exc is not None:
            raise exc
        finished[item.label] = outcome
    return [finished[i.label] for i in items if finished.get(i.label) is not None]


def _execute(item: Item, settings, controls, printer) -> report.Outcome:
    """Run one flow to its end, printing as it goes."""
    engine = Run(item.flow, item.options, controls, settings)
    outcome = report.Outcome(item.label, item.flow)
    for event in engine.events():
        printer(event)
        if event.name == "start":
            outcome.started_at = event.startedAt
        elif event.name == "end":
            outcome.end = event
    outcome.records = printer.records
    outcome.code = run_code(outcome.end, engine.failures)
    return outcome


def _dry_run(items: list[Item], settings, printing: dict) -> None:
    """Print each flow's requests as they would be sent; send nothing."""
    for i, item in enumerate(items):
        printer = _printer(item, printing, len(items) > 1, False)
        if i:
            printer.echo()
        engine = Run(item.flow, item.options, Controls(), settings)
        nodes = len(item.flow["nodes"])
        where = f"{item.label}, " if len(items) > 1 else ""
        printer.echo(
            click.style(item.flow.get("name") or "flow", bold=True)
            + click.style(
                f" ({nodes} step{'s' if nodes != 1 else ''}, {where}dry run: "
                "nothing is sent)",
                dim=True,
            )
        )
        for record in engine.preview():
            if printer.masker.needed(record):
                record = printer.masker.mask(record)
            for line in report.preview_lines(record):
                printer.echo(line)
