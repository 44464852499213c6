"""The ``api`` blueprint (``/api``): JSON endpoints and the SSE stream.

- ``runs``: run a flow (streamed, or to the end), and Try it out (one node);
- ``control``: stop, answer a prompt, continue (from any worker);
- ``history``: recorded executions;
- ``flows``: the workspace's flow files;
- ``environments``: the workspace's environments;
- ``tools``: health, the flow schema, validation, import.

Each module has a blueprint of its own, nested here. Status codes are listed in
docs/api.md. Errors are raised as ``ApiError`` or ``FlowInvalid`` and shaped in one
place (``flowrun.web.errors``).
"""

from flask import Blueprint

from flowrun.web.api import control, environments, flows, history, runs, tools

bp = Blueprint("api", __name__)
for module in (runs, control, history, flows, environments, tools):
    bp.register_blueprint(module.bp)
