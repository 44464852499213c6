"""``flowrun validate``: check flow files without running them."""

from __future__ import annotations

import click

from flowrun.cli import report, sources
from flowrun.cli import variables as cli_variables
from flowrun.cli.common import EXIT_HELP, EXIT_INVALID, EXIT_OK, load_settings
from flowrun.documents import DocumentError
from flowrun.engine import validation


@click.command(epilog=EXIT_HELP)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--env",
    "env_name",
    metavar="NAME",
    help="Check as for a run in the workspace environment NAME (its variables "
    "are defined).",
)
@click.option(
    "--env-file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Check as for a run in the environment of this file.",
)
@click.pass_context
def validate(ctx, paths, env_name, env_file):
    """Check flows without running them.

    PATH is a flow file (JSON or YAML), a directory (every flow file in it), a
    glob, or - for standard input. Prints each problem as FILE: PATH: MESSAGE
    (HINT); warnings are marked as such and do not make a file invalid. Exit 0
    when every file is valid, else 2.
    """
    values = load_settings()
    env = cli_variables.environment(env_name, env_file, values["FLOWRUN_FLOWS_DIR"])
    names = {*env.variables, *env.secrets} if env is not None else set()
    all_valid = True
    for path in sources.paths(paths):
        try:
            source = sources.load(path)
        except DocumentError as exc:
            click.secho(str(exc), fg="red")
            all_valid = False
            continue
        label = source.label
        doc = cli_variables.declaring(source.doc, names)
        errors, warnings = validation.check(doc, values["FLOWRUN_MAX_STEPS"])
        for line in report.located(errors, label):
            click.secho(line, fg="red")
        for line in report.located(warnings, label, "warning"):
            click.secho(line, fg="yellow")
        if errors:
            all_valid = False
            n = len(errors)
            click.secho(
                f"{label}: invalid ({n} error{'s' if n != 1 else ''})", bold=True
            )
        else:
            n = len(warnings)
            note = f" ({n} warning{'s' if n != 1 else ''})" if n else ""
            click.secho(f"{label}: valid{note}", fg="green")
    ctx.exit(EXIT_OK if all_valid else EXIT_INVALID)
