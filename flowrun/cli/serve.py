"""``flowrun serve``: Studio and the API on gunicorn with gevent workers.

The command becomes ``gunicorn -c gunicorn.conf.py`` (the file shipped with flowrun),
the same deployment a server runs: it replaces this process, so that Ctrl-C and a
service manager's signals reach gunicorn directly, and so that nothing this process
imported (``ssl``, ``requests``) is loaded before a worker's gevent patching.
``--dev`` runs Flask's reloading development server instead.
"""

from __future__ import annotations

import os
import sys

import click

from flowrun.cli.common import load_settings
from flowrun.web.addresses import is_loopback, studio_url

# The app gunicorn serves: flowrun's factory, so no app.py is needed outside a
# checkout.
WSGI_APP = "flowrun:create_app()"


@click.command()
@click.option(
    "--host",
    envvar="FLOWRUN_BIND",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (FLOWRUN_BIND). Anything but loopback should have "
    "FLOWRUN_TOKEN set.",
)
@click.option(
    "--port",
    envvar="PORT",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on (PORT).",
)
@click.option(
    "--workers",
    envvar="WEB_CONCURRENCY",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="gunicorn worker processes (WEB_CONCURRENCY); each holds thousands of "
    "streams.",
)
@click.option(
    "--data-dir",
    envvar="FLOWRUN_DATA_DIR",
    type=click.Path(file_okay=False),
    help="History directory (FLOWRUN_DATA_DIR; default ./.flowrun).",
)
@click.option(
    "--flows-dir",
    envvar="FLOWRUN_FLOWS_DIR",
    type=click.Path(file_okay=False),
    help="Workspace of flow files (FLOWRUN_FLOWS_DIR; default ./flows).",
)
@click.option(
    "--token",
    envvar="FLOWRUN_TOKEN",
    help="Require this bearer token on the API (FLOWRUN_TOKEN). Prefer the "
    "environment variable: other users of the machine can read command lines.",
)
@click.option(
    "--dev",
    is_flag=True,
    help="Flask's development server, reloading on code changes (one person, "
    "never a deployment).",
)
def serve(host, port, workers, data_dir, flows_dir, token, dev):
    """Serve Studio, the API and the demo API on gunicorn + gevent.

    Prints the address to open once the server is ready. Every FLOWRUN_* setting
    of the environment applies (docs/settings.md).
    """
    overrides = {"PORT": str(port), "FLOWRUN_BIND": host}
    if data_dir:
        overrides["FLOWRUN_DATA_DIR"] = data_dir
    if flows_dir:
        overrides["FLOWRUN_FLOWS_DIR"] = flows_dir
    if token:
        overrides["FLOWRUN_TOKEN"] = token
    os.environ.update(overrides)
    values = load_settings()  # a bad setting is a message here, not a traceback
    if not is_loopback(host) and not values["FLOWRUN_TOKEN"]:
        click.secho(
            f"WARNING: listening on {host} without FLOWRUN_TOKEN: anyone who can "
            "reach this port can run requests from this machine.",
            fg="red",
            bold=True,
            err=True,
        )
    if dev:
        _serve_dev(host, port)
        return
    os.environ["WEB_CONCURRENCY"] = str(workers)
    from flowrun import resources

    argv = [sys.executable, "-m", "gunicorn", "-c", str(resources.gunicorn_config())]
    os.execv(sys.executable, [*argv, WSGI_APP])


def _serve_dev(host: str, port: int) -> None:
    from flowrun import create_app

    app = create_app()  # the seeded samples call this port's demo (PORT)
    click.echo(f"flowrun (development server): open {studio_url(host, port)}")
    app.run(host=host, port=port, threaded=True, use_reloader=True)
