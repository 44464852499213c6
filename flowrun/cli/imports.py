"""``flowrun import``: a Postman collection, curl commands or an OpenAPI document to a
flow, or a Postman environment to an environment."""

from __future__ import annotations

import json
import sys

import click

from flowrun import importers, text
from flowrun.cli.common import UserError, load_settings, read_text, write_output
from flowrun.errors import FlowInvalid
from flowrun.importers import postman_env

# Notes printed under the summary; the rest are in the nodes' descriptions.
SHOWN_NOTES = 50
ENVIRONMENT = "postman-env"


def _read(source: str) -> str:
    """The text of FILE, or of standard input for ``-``."""
    if source != "-":
        return read_text(source)
    try:
        return text.decode(sys.stdin.buffer.read())
    except UnicodeDecodeError:
        raise UserError(f"standard input: not {text.ENCODINGS} text") from None


def _environment(source: str) -> tuple[dict, list[str]]:
    try:
        return postman_env.convert(_read(source))
    except FlowInvalid as exc:
        exc.source = source
        raise


def _write(doc: dict, output: str | None) -> None:
    write_output(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", output)


@click.command("import")
@click.argument(
    "fmt", metavar="FORMAT", type=click.Choice([*importers.FORMATS, ENVIRONMENT])
)
@click.argument(
    "source", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True)
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write the flow (or environment) to this file instead of standard output.",
)
@click.option(
    "--env",
    "env_file",
    metavar="ENVFILE",
    type=click.Path(dir_okay=False),
    help="postman only: a Postman environment export whose values the flow "
    "uses (its secrets are declared in the flow, without their values).",
)
def import_(fmt, source, output, env_file):
    """Convert a Postman collection, curl commands or an OpenAPI document to a flow,
    or a Postman environment to an environment file.

    FORMAT is postman (collection v2.0 or v2.1), postman-env (an environment
    export: write it to FLOWRUN_FLOWS_DIR/environments/NAME.json), curl or
    openapi (3.x or Swagger 2.0, JSON or YAML). FILE may be - to read standard
    input. The result is printed, or written with -o; a summary (requests found,
    imported as they were, with notes, skipped by default, left out) and the
    notes go to standard error. Requests flowrun cannot send as they are come in
    as close as possible, with a note naming them. Exit 0 when anything was
    imported, 2 when nothing could be.
    """
    values = load_settings()
    if env_file is not None and fmt != "postman":
        raise click.BadParameter("only with postman", param_hint="'--env'")
    if fmt == ENVIRONMENT:
        env, notes = _environment(source)
        _write(env, output)
        n = len(env["variables"])
        click.echo(
            f"Imported {n} variable{'s' if n != 1 else ''} "
            f"({len(env['secrets'])} secret)",
            err=True,
        )
        for note in notes:
            click.echo(f"  note: {note}", err=True)
        return
    content = _read(source)
    try:
        result = importers.load(
            fmt,
            content,
            path=None if source == "-" else source,
            max_steps=values["FLOWRUN_MAX_STEPS"],
        )
    except FlowInvalid as exc:
        exc.source = source
        raise
    env_notes = []
    if env_file is not None:
        env, env_notes = _environment(env_file)
        env_notes += postman_env.apply(result.flow, env)
    _write(result.flow, output)
    report = result.report
    name = "standard input" if source == "-" else source
    target = f" into {output}" if output else ""
    click.echo(f"Imported {name}{target}: {report.summary()}", err=True)
    for note in report.notes[:SHOWN_NOTES]:
        click.echo(f"  {note.where}: {note.message}", err=True)
    if len(report.notes) > SHOWN_NOTES:
        more = len(report.notes) - SHOWN_NOTES
        click.echo(
            f"  … and {more} more notes (in the nodes' and the flow's descriptions)",
            err=True,
        )
    for note in env_notes:
        click.echo(f"  note: {note}", err=True)
