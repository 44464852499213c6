"""The ``flowrun`` command line: run, validate, serve, import, export.

The CLI drives the same engine as the web API and prints its events (``report``).
Outcomes and errors become exit codes in one place (``common``); user mistakes are
``click`` exceptions (a message, no traceback). Each command lives in a module of
its own, imported only when that command runs: ``flowrun run`` loads neither Flask
nor the importers.
"""

from __future__ import annotations

from importlib import import_module

import click

from flowrun.cli.common import EXIT_HELP, EXIT_INVALID, exit_code
from flowrun.errors import FlowError, FlowInvalid
from flowrun.version import __version__

# command name -> "module:function" under flowrun.cli
COMMANDS = {
    "run": "run:run",
    "validate": "validate:validate",
    "serve": "serve:serve",
    "import": "imports:import_",
    "export": "export:export",
}


class FlowrunGroup(click.Group):
    """A click group that loads each command when it is used, and turns flowrun
    errors into messages and exit codes."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(import_module(f"flowrun.cli.{module}"), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FlowInvalid as exc:
            from flowrun.cli import report

            source = getattr(exc, "source", None) or "flow"
            for line in report.located(exc.errors, source):
                click.echo(line, err=True)
            count = len(exc.errors)
            click.secho(
                f"✗ {exc.message} ({count} error{'s' if count != 1 else ''})",
                fg="red",
                err=True,
            )
            ctx.exit(EXIT_INVALID)
        except FlowError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            ctx.exit(exit_code(exc))
        except KeyboardInterrupt as exc:  # before a run's own handler is in place
            click.secho("\nAborted.", fg="yellow", err=True)
            ctx.exit(exit_code(exc))


@click.group(cls=FlowrunGroup, epilog=EXIT_HELP)
@click.version_option(__version__, prog_name="flowrun")
def cli():
    """Run multi-step HTTP API flows.

    A flow is a JSON (or YAML) document of steps (HTTP requests) whose URLs,
    headers and bodies use values from earlier responses; each response is checked
    by validations. Run flows here (for CI) or in Studio (flowrun serve).
    """
