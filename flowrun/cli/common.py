"""What the CLI's commands share: exit codes, user errors, reading files."""

from __future__ import annotations

import os

import click

from flowrun import settings as settings_mod
from flowrun import text
from flowrun.errors import FlowError, FlowInvalid

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


EXIT_HELP = """
\b
Exit codes:
  0    every step passed (validate: every file is valid)
  1    a step failed: a validation did not hold, or another step error
  2    invalid flow or environment, unreadable file, a secret or a prompt
       answer not given, or bad usage
  3    a target could not be reached (timeout, refused, TLS, blocked) and
       no check failed
  130  interrupted with Ctrl-C (the step in flight finishes first)
"""


class UserError(click.ClickException):
    """A mistake in what the user gave us (a file, a value): message, exit 2."""

    exit_code = EXIT_INVALID


def exit_code(outcome) -> int:
    """Map a flowrun error (or Ctrl-C) to the process exit code."""
    if isinstance(outcome, FlowInvalid):
        return EXIT_INVALID
    if isinstance(outcome, FlowError):
        return EXIT_FAILED
    if isinstance(outcome, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def run_code(end, failures: dict) -> int:
    """A finished run's exit code, from its ``end`` event and ``Run.failures``.

    A failed check (or any step error but a missing answer or an unreachable
    target) is 1; an unanswered prompt 2; only unreachable targets 3.
    """
    from flowrun.engine.run import NO_INPUT, UNREACHABLE

    if end.interrupted:
        return EXIT_INTERRUPTED
    if end.success:
        return EXIT_OK
    kinds = set(failures.values())
    if kinds - {NO_INPUT, UNREACHABLE} or not kinds:
        return EXIT_FAILED
    return EXIT_INVALID if NO_INPUT in kinds else EXIT_UNREACHABLE


def overall_code(codes) -> int:
    """The exit code of several runs: interrupted, else the worst of 1, 2, 3."""
    codes = set(codes)
    for code in (EXIT_INTERRUPTED, EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE):
        if code in codes:
            return code
    return EXIT_OK


def load_settings() -> dict:
    try:
        return settings_mod.load()
    except ValueError as exc:
        raise UserError(str(exc)) from None


def read_text(path: str) -> str:
    """Read a text file (a byte-order mark allowed); UserError when it cannot be."""
    try:
        return text.read(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not {text.ENCODINGS} text") from None


def read_document(path: str):
    """Read a flow file (JSON, or YAML by its suffix) as ``run`` does; a UserError
    says what is wrong, and where."""
    from flowrun import documents

    try:
        return documents.read(path)
    except documents.DocumentError as exc:
        raise UserError(str(exc)) from None


def write_output(content: str, output: str | None) -> None:
    """Write ``content`` to the file ``output``, or to stdout when it is None."""
    if output is None:
        click.echo(content, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(content)
    except OSError as exc:
        raise UserError(f"{output}: cannot write: {exc.strerror or exc}") from None


def prepare_report_path(path: str, hint: str) -> None:
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


def is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def use_color(choice: str, stream) -> bool:
    """``--color``: always, never, or auto (a terminal, and NO_COLOR unset)."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    return is_tty(stream) and not os.environ.get("NO_COLOR")
