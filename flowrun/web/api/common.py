"""What the API's views share: the worker's state, and reading a request's JSON."""

from __future__ import annotations

import re
import time

from flask import current_app, request

from flowrun import environments
from flowrun.documents import DocumentError
from flowrun.engine import validation
from flowrun.engine.flow import RunOptions
from flowrun.errors import FlowInvalid, located
from flowrun.web.errors import ApiError
from flowrun.web.state import State


def get_state() -> State:
    """This worker's shared state (``flowrun.web.state.State``)."""
    return current_app.extensions["flowrun"]


def body() -> dict:
    """The request's JSON object (400 if it does not parse or is not an object)."""
    return body_and_bytes()[0]


def body_and_bytes() -> tuple[dict, bytes]:
    """``body()`` and the bytes it was parsed from."""
    raw = request.get_data(cache=False)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is None and limit and len(raw) >= limit:
        # A chunked body (no Content-Length): werkzeug stops reading at the limit
        # without an error, so see whether anything is left.
        if request.environ["wsgi.input"].read(1):
            raise ApiError(
                413, f"Request body over {limit} bytes (FLOWRUN_MAX_CONFIG_BYTES)"
            )
    if not raw.strip():
        raise ApiError(400, "Request body must be a JSON object")
    try:
        body = validation.parse_json(raw)
    except ValueError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "Request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body, raw


def flow_and_options(body: dict, raw: bytes):
    if "config" not in body:
        raise ApiError(
            400,
            "Missing config",
            [located("config", "required: the flow document", 'send {"config": …}')],
        )
    # The body determines the flow: posted again unchanged (a re-run, a load
    # test), it is not checked again.
    flow = validation.load(body["config"], get_state().max_steps, source=raw)
    options = RunOptions.from_dict(body.get("options"))
    count = len(flow["nodes"])
    if options.start_step >= count:
        # As the CLI's --start-step: a run that would skip every node is a mistake.
        raise FlowInvalid(
            [
                located(
                    "options.startStep",
                    f"{options.start_step} is past the last node "
                    f"(the flow has {count}: 0-{count - 1})",
                )
            ],
            "Invalid options",
        )
    use_environment(flow, options)
    return flow, options


def use_environment(flow: dict, options: RunOptions) -> None:
    """Resolve ``options.environment`` in the workspace; then every declared secret
    must have a value (400 naming each missing one)."""
    name = options.environment
    if name is not None:
        where = "options.environment"
        try:
            env = get_state().workspace.environment(name)
        except FlowInvalid as exc:
            first = exc.errors[0] if exc.errors else {}
            detail = f"{first.get('path')}: {first.get('message')}"
            raise ApiError(
                400, exc.message, [located(where, detail, first.get("hint", ""))]
            ) from None
        except DocumentError as exc:
            raise ApiError(
                400, "Invalid environment", [located(where, str(exc))]
            ) from None
        if env is None:
            known = [e["name"] for e in get_state().workspace.list_environments()]
            raise ApiError(
                400,
                f"No environment {name!r}",
                [
                    located(
                        where,
                        f"no environment {name!r}",
                        "environments: " + ", ".join(known)
                        if known
                        else "create one with PUT /api/environments/NAME",
                    )
                ],
            )
        options.use_environment(env)
    missing = environments.resolve(flow, options)
    if missing:
        raise ApiError(
            400,
            "Missing secret"
            + ("s" if len(missing) > 1 else "")
            + ": "
            + ", ".join(missing),
            [
                located(
                    f"options.variables.{secret}",
                    f"secret '{secret}' has no value",
                    "give it in options.variables (it is declared secret, with no "
                    "value, by the environment or the flow)",
                )
                for secret in missing
            ],
        )


# -- controlling a live execution
# A worker commits a new execution's row with the next group of history rows, a
# few milliseconds after its `start` event: another worker asked about it in
# between waits for it rather than answer 404.
NEW_ROW_WAIT_S = 1.0


_EXECUTION_MS = re.compile(r"exec-(\d{13})-")


def find(look, execution_id: str):
    """``look(execution_id)``, waiting for the row of a run started just now."""
    found = look(execution_id)
    if found is not None:
        return found
    started = _EXECUTION_MS.match(execution_id)
    if started is None or not -1000 < time.time() * 1000 - int(started[1]) < 5000:
        return None
    deadline = time.monotonic() + NEW_ROW_WAIT_S
    while found is None and time.monotonic() < deadline:
        time.sleep(0.01)
        found = look(execution_id)
    return found


def execution_state(execution_id: str) -> dict:
    found = find(get_state().channel.state, execution_id)
    if found is None:
        raise ApiError(404, f"No execution {execution_id}")
    return found
