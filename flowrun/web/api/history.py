"""Recorded executions: the list, and one execution with every step."""

from __future__ import annotations

from flask import Blueprint, request

from flowrun.errors import located
from flowrun.web.api.common import find, get_state
from flowrun.web.errors import ApiError

bp = Blueprint("history", __name__)


@bp.get("/executions")
def executions():
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError:
        raise ApiError(
            400, "Invalid limit", [located("limit", "must be an integer")]
        ) from None
    limit = min(max(limit, 1), 1000)
    return {"executions": get_state().store.list(limit, request.args.get("flow"))}


@bp.get("/executions/<execution_id>")
def execution(execution_id):
    found = find(get_state().store.get, execution_id)
    if found is None:
        raise ApiError(404, f"No execution {execution_id}")
    return found
