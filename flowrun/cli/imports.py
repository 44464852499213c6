"""``flowrun import``: a Postman collection, curl commands or an OpenAPI document to a
flow."""

from __future__ import annotations

import json
import sys

import click

from flowrun import importers, text
from flowrun.cli.common import UserError, load_settings, read_text
from flowrun.errors import FlowInvalid

# Notes printed under the summary; the rest are in the nodes' descriptions.
SHOWN_NOTES = 50


@click.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(list(importers.FORMATS)))
@click.argument(
    "source", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True)
)
@click.option(
    "-o",
    "--output",
    metavar="FLOW.json",
    type=click.Path(dir_okay=False),
    help="Write the flow to this file instead of standard output.",
)
def import_(fmt, source, output):
    """Convert a Postman collection, curl commands or an OpenAPI document to a flow.

    FORMAT is postman (collection v2.0 or v2.1), curl or openapi (3.x or Swagger
    2.0, JSON or YAML). FILE may be - to read standard input. The flow is printed,
    or written with -o; a summary (requests found, imported as they were, with
    notes, skipped by default, left out) and the notes go to standard error.
    Requests flowrun cannot send as they are come in as close as possible, with a
    note naming them. Exit 0 when anything was imported, 2 when nothing could be.
    """
    values = load_settings()
    if source == "-":
        try:
            content = text.decode(sys.stdin.buffer.read())
        except UnicodeDecodeError:
            raise UserError(f"standard input: not {text.ENCODINGS} text") from None
    else:
        content = read_text(source)
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
    flow_text = json.dumps(result.flow, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(flow_text, nl=False)
    else:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(flow_text)
        except OSError as exc:
            raise UserError(f"{output}: cannot write: {exc.strerror or exc}") from None
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
