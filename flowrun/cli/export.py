"""``flowrun export``: a flow as curl commands or a Postman collection."""

from __future__ import annotations

import click

from flowrun import exporters
from flowrun.cli.common import load_settings, read_document, write_output
from flowrun.errors import FlowInvalid


@click.command("export")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(exporters.FORMATS))
@click.argument("flow_file", metavar="FLOW", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write to this file instead of standard output.",
)
def export(fmt, flow_file, output):
    """Write a flow as curl commands or as a Postman collection.

    FORMAT curl prints a bash script, one curl command per step (jq reads earlier
    responses where later steps use them; set variables from the environment as
    var_NAME=value). FORMAT postman prints a Postman Collection v2.1 that Newman
    runs, the validations as tests. What the other tool cannot express is said in
    comments or descriptions.
    """
    values = load_settings()
    doc = read_document(flow_file)
    try:
        written = exporters.export(fmt, doc, values["FLOWRUN_MAX_STEPS"])
    except FlowInvalid as exc:
        exc.source = flow_file
        raise
    write_output(written, output)
    if output is not None:
        click.echo(f"Wrote {output}", err=True)
