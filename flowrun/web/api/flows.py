"""The workspace's flow files: list, read, save, delete (``flowrun.workspace``)."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify

from flowrun import text
from flowrun.web.api.common import body, get_state
from flowrun.web.errors import ApiError

bp = Blueprint("flows", __name__)


@bp.get("/flows")
def flows():
    return {"flows": get_state().workspace.list()}


@bp.get("/flows/<path:name>")
def flow_get(name):
    path = get_state().workspace.path(name)
    if not path.is_file():
        raise ApiError(404, f"No flow {path.name}")
    try:
        return jsonify(json.loads(text.read(path)))
    except ValueError as exc:  # UnicodeDecodeError too
        raise ApiError(422, f"{path.name} is not valid JSON: {exc}") from None


@bp.put("/flows/<path:name>")
def flow_put(name):
    workspace = get_state().workspace
    path = workspace.path(name)
    created = workspace.write(name, body())
    return {"name": path.name, "saved": True}, 201 if created else 200


@bp.delete("/flows/<path:name>")
def flow_delete(name):
    path = get_state().workspace.path(name)
    if not path.is_file():
        raise ApiError(404, f"No flow {path.name}")
    path.unlink()
    return {"name": path.name, "deleted": True}
