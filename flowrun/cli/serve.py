"""``flowrun serve``: Studio and the API."""

from __future__ import annotations

import click

from flowrun.cli.common import load_settings


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback should have FLOWRUN_TOKEN set.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
def serve(host, port):
    """Serve Studio and the API on Flask's development server.

    For deployment use gunicorn: gunicorn -c gunicorn.conf.py app:app
    """
    from flowrun import create_app

    values = load_settings()
    if host not in ("127.0.0.1", "localhost", "::1") and not values["FLOWRUN_TOKEN"]:
        click.secho(
            f"WARNING: listening on {host} without FLOWRUN_TOKEN: anyone who can "
            "reach this port can run requests from this machine.",
            fg="red",
            bold=True,
            err=True,
        )
    # The seeded samples call this port's demo; the bound address is a host the
    # server answers to (FLOWRUN_SERVER_HOSTS).
    app = create_app({"PORT": port, "FLOWRUN_BIND": host})
    app.run(host=host, port=port, threaded=True)
