"""``flowrun validate``: check flow files without running them."""

from __future__ import annotations

import click

from flowrun.cli import report
from flowrun.cli.common import (
    EXIT_HELP,
    EXIT_INVALID,
    EXIT_OK,
    UserError,
    load_settings,
    read_json,
)
from flowrun.engine import validation


@click.command(epilog=EXIT_HELP)
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
