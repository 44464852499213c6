"""The workspace's environments: list, read, save, delete (``flowrun.workspace``).

Secret values are part of what an authorised user reads back (Studio shows them as
dots, with a reveal); they are never part of a run's events or history.
"""

from __future__ import annotations

from flask import Blueprint

from flowrun.documents import DocumentError
from flowrun.environments import from_document
from flowrun.errors import FlowInvalid
from flowrun.web.api.common import body, get_state
from flowrun.web.errors import ApiError
from flowrun.workspace import environment_name

bp = Blueprint("environments", __name__)


@bp.get("/environments")
def environments():
    return {"environments": get_state().workspace.list_environments()}


@bp.get("/environments/<path:name>")
def environment_get(name):
    try:
        env = get_state().workspace.environment(name)
    except DocumentError as exc:
        raise ApiError(422, str(exc)) from None
    except FlowInvalid as exc:
        source = getattr(exc, "source", None)
        if source is None:  # the name, not the file
            raise
        raise ApiError(422, f"{source}: {exc.message}", exc.errors) from None
    if env is None:
        raise ApiError(404, f"No environment {environment_name(name)!r}")
    return env.to_dict()


@bp.put("/environments/<path:name>")
def environment_put(name):
    env = from_document(environment_name(name), body())
    created = get_state().workspace.write_environment(env)
    return {"name": env.name, "saved": True}, 201 if created else 200


@bp.delete("/environments/<path:name>")
def environment_delete(name):
    if not get_state().workspace.delete_environment(name):
        raise ApiError(404, f"No environment {environment_name(name)!r}")
    return {"name": environment_name(name), "deleted": True}
