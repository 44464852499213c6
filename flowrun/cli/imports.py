"""``flowrun import``: a Postman collection, curl or OpenAPI document to a flow."""

from __future__ import annotations

import json

import click

from flowrun import importers
from flowrun.cli.common import UserError
from flowrun.errors import FlowInvalid


@click.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(list(importers.FORMATS)))
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
        text = source.read()
    except UnicodeDecodeError:
        raise UserError(f"{source.name}: not UTF-8 text") from None
    try:
        flow = importers.convert(fmt, text)
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
