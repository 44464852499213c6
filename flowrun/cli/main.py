"""The ``flowrun`` command line: run, validate, serve, import, export.

The CLI drives the same engine as the web API and prints its events (``report``).
Outcomes and errors become exit codes in one place (``common.exit_code``); user
mistakes are ``click`` exceptions (a message, no traceback). Each command lives in a
module of its own.
"""

from __future__ import annotations

import click

from flowrun.cli import export, imports, report, run, serve, validate
from flowrun.cli.common import EXIT_HELP, exit_code
from flowrun.errors import FlowError, FlowInvalid
from flowrun.version import __version__


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


cli.add_command(run.run)
cli.add_command(validate.validate)
cli.add_command(serve.serve)
cli.add_command(imports.import_)
cli.add_command(export.export)
