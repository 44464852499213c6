"""The ``api`` blueprint (``/api``): run flows (SSE and not), control them, history,
validation, schema, workspace flow files and import.

Status codes are listed in docs/api.md. Errors are raised as ``ApiError`` /
``FlowInvalid`` and shaped in one place (``web.py``).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request

from . import __version__, sse, validation
from .engine import Run
from .errors import FlowInvalid, InputMissing
from .executions import NoPrompts
from .flow import RunOptions, normalize
from .placeholders import NodeResult
from .web import ApiError, located

bp = Blueprint("api", __name__)
FLOW_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _state():
    return current_app.extensions["flowrun"]


def _body() -> dict:
    """The request's JSON object (400 if it does not parse or is not an object)."""
    return _body_and_bytes()[0]


def _body_and_bytes() -> tuple[dict, bytes]:
    """``_body()`` and the bytes it was parsed from."""
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


def _flow_and_options(body: dict, raw: bytes):
    if "config" not in body:
        raise ApiError(
            400,
            "Missing config",
            [located("config", "required: the flow document", 'send {"config": …}')],
        )
    # The body determines the flow: posted again unchanged (a re-run, a load
    # test), it is not checked again.
    flow = validation.load(body["config"], _state().max_steps, source=raw)
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
    return flow, options


# -- health and schema
@bp.get("/health")
def health():
    return {"status": "ok", "version": __version__}


@bp.get("/schema")
def schema():
    return jsonify(validation.SCHEMA)


# -- running
@bp.post("/execute-stream")
def execute_stream():
    state = _state()
    flow, options = _flow_and_options(*_body_and_bytes())
    execution = state.start(flow, options)
    headers = sse.headers(execution.id)
    content_type = headers.pop("Content-Type")
    resp = Response(
        sse.stream(execution, state.heartbeat, request.environ),
        content_type=content_type,
        headers=headers,
    )
    resp.call_on_close(execution.client_gone)
    return resp


@bp.post("/execute")
def execute():
    state = _state()
    flow, options = _flow_and_options(*_body_and_bytes())
    environ = request.environ
    end = state.run_to_end(
        flow, options, lambda on_close: sse.watch(environ, on_close, state)
    )
    return {
        "success": end["success"],
        "interrupted": end["interrupted"],
        "stepsExecuted": end["stepsExecuted"],
        "stepsSkipped": end["stepsSkipped"],
        "stepsFailed": end["stepsFailed"],
        "notRun": end["notRun"],
        "duration": end["duration"],
        "executionLog": end["executionLog"],
        "executionId": end["executionId"],
    }


class _TryItPrompts(NoPrompts):
    """Try it out answers prompts from the request's top-level ``inputs``."""

    def ask(self, step_index, prompts, timeout):
        raise InputMissing(
            "No answer for prompt(s) " + ", ".join(prompts) + ": give them in inputs"
        )


@bp.post("/execute-node")
def execute_node():
    """Try it out: run one node, earlier nodes' bodies given as ``mockResponses``."""
    state = _state()
    body, raw = _body_and_bytes()
    if "config" not in body:
        raise ApiError(400, "Missing config", [located("config", "required")])
    flow = validation.load(body["config"], state.max_steps, source=raw)
    node_id = body.get("nodeId")
    ids = [n["id"] for n in flow["nodes"]]
    if not isinstance(node_id, str):
        raise ApiError(
            400, "Missing nodeId", [located("nodeId", "required: a node's id")]
        )
    if node_id not in ids:
        raise ApiError(
            400, "Unknown nodeId", [located("nodeId", f"no node with id {node_id!r}")]
        )
    mocks = body.get("mockResponses") or {}
    inputs = body.get("inputs") or {}
    variables = body.get("variables") or {}
    errors = []
    for name, value in (("mockResponses", mocks), ("inputs", inputs)):
        if not isinstance(value, dict):
            errors.append(located(name, "must be an object"))
    if not isinstance(variables, dict):
        errors.append(located("variables", "must be an object"))
    if isinstance(mocks, dict):
        errors += [
            located(f"mockResponses.{k}", f"no node with id {k!r}")
            for k in mocks
            if k not in ids
        ]
    if errors:
        raise ApiError(400, "Invalid request", errors)
    node = flow["nodes"][ids.index(node_id)]
    controls = _TryItPrompts("", None)
    run = Run(
        dict(flow, nodes=[node]),
        RunOptions(inputs=inputs, variables=variables),
        controls,
        state.engine_settings(),
    )
    # The one node runs in the context of the whole flow, earlier nodes answered by
    # the given bodies: references to them resolve, others fail with their names.
    run.ctx.node_ids = frozenset(ids)
    for mock_id, mock_body in mocks.items():
        run.ctx.results[mock_id] = NodeResult("completed", mock_body, {}, 200)
    # The request in flight always completes, but a `delayMs` or the waits between
    # `retry` attempts can last a day each: a client that went away ends them.
    record = None
    with state.slot():  # counts against FLOWRUN_MAX_EXECUTIONS like any run
        unwatch = sse.watch(request.environ, controls.stop, state)
        try:
            for ev in run.events():
                if ev.name == "step":
                    record = ev.to_dict()
        finally:
            if unwatch is not None:
                unwatch()
    if record is None:  # stopped during `delayMs`: nobody is there to read this
        raise ApiError(409, "The client went away before the step started")
    # The run saw a one-node flow; report the node's place in the real one.
    index = ids.index(node_id)
    record["step"], record["stepIndex"] = index + 1, index
    return record


# -- controlling a live execution
# A worker commits a new execution's row with the next group of history rows, a
# few milliseconds after its `start` event: another worker asked about it in
# between waits for it rather than answer 404.
NEW_ROW_WAIT_S = 1.0
_EXECUTION_MS = re.compile(r"exec-(\d{13})-")


def _found(look, execution_id: str):
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


def _execution_state(execution_id: str) -> dict:
    found = _found(_state().channel.state, execution_id)
    if found is None:
        raise ApiError(404, f"No execution {execution_id}")
    return found


def _check_answer(execution_id, step_index, keys, values, answered) -> None:
    """Refuse (400) an answer that lacks some of the prompt's keys.

    Checked before the prompt is claimed, so it keeps waiting for a whole answer.
    Keys beyond the prompt's are accepted (and not used). ``keys`` is None when
    they are not known (recorded by an earlier version, or not recorded yet): the
    answer is then taken, and the engine fails the step naming any missing key.
    """
    missing = [key for key in keys or () if key not in values]
    if not missing:
        return
    # An answer to a prompt already answered is a conflict, whatever it holds.
    if _state().channel.input_claimed(execution_id, step_index):
        raise answered
    raise ApiError(
        400,
        f"No answer given for prompt(s): {', '.join(missing)}",
        [
            located(
                f"userInput.{key}",
                "required: the prompt asks for it",
                "send every key of the prompt; it is still waiting",
            )
            for key in missing
        ],
    )


@bp.post("/provide-input")
def provide_input():
    body = _body()
    execution_id, step_index = body.get("executionId"), body.get("stepIndex")
    values = body.get("userInput")
    errors = []
    if not isinstance(execution_id, str):
        errors.append(located("executionId", "required: a string"))
    if isinstance(step_index, bool) or not isinstance(step_index, int):
        errors.append(located("stepIndex", "required: an integer"))
    if not isinstance(values, dict):
        errors.append(located("userInput", "required: an object"))
    if errors:
        raise ApiError(400, "Invalid request", errors)
    state = _state()
    channel = state.channel
    answered = ApiError(409, f"Prompt of step {step_index} was already answered")
    local = state.registry.get(execution_id)
    if local is not None and local.controls.waiting_input == step_index:
        prompt = local.recorder.prompt
        keys = prompt[1] if prompt is not None and prompt[0] == step_index else None
        _check_answer(execution_id, step_index, keys, values, answered)
        # Claim the prompt in the shared channel first: the same prompt may be
        # answered through another worker at the same moment.
        if not channel.send_input(execution_id, step_index, values):
            raise answered
        if local.controls.answer(step_index, values) == "answered":
            raise answered
        return {"success": True}
    remote = _execution_state(execution_id)
    if remote["status"] == "running" and remote["promptStep"] == step_index:
        keys = remote.get("promptKeys")
        _check_answer(execution_id, step_index, keys, values, answered)
        if channel.send_input(execution_id, step_index, values):
            return {"success": True}
        raise answered
    if channel.input_claimed(execution_id, step_index):
        raise answered
    raise ApiError(404, f"No pending prompt for step {step_index} of {execution_id}")


@bp.post("/executions/<execution_id>/stop")
def stop(execution_id):
    state = _state()
    local = state.registry.get(execution_id)
    if local is not None and not local.finished:
        local.controls.stop()
        return {"stopping": True}, 202
    remote = _execution_state(execution_id)
    if remote["status"] != "running":
        raise ApiError(409, f"Execution {execution_id} is already {remote['status']}")
    # Recorded before the 202 leaves: the holder checks it before every step.
    state.channel.request_stop(execution_id)
    return {"stopping": True}, 202


@bp.post("/executions/<execution_id>/continue")
def continue_(execution_id):
    state = _state()
    local = state.registry.get(execution_id)
    if local is not None and local.controls.resume():
        return {"success": True}
    remote = _execution_state(execution_id)
    if remote["status"] != "running" or remote["pausedStep"] is None:
        raise ApiError(409, f"Execution {execution_id} is not paused")
    if local is None and state.channel.send_continue(
        execution_id, remote["pausedStep"]
    ):
        return {"success": True}
    raise ApiError(409, f"Execution {execution_id} is not paused")


# -- history
@bp.get("/executions")
def executions():
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError:
        raise ApiError(
            400, "Invalid limit", [located("limit", "must be an integer")]
        ) from None
    limit = min(max(limit, 1), 1000)
    return {"executions": _state().store.list(limit, request.args.get("flow"))}


@bp.get("/executions/<execution_id>")
def execution(execution_id):
    found = _found(_state().store.get, execution_id)
    if found is None:
        raise ApiError(404, f"No execution {execution_id}")
    return found


# -- validation
@bp.post("/validate")
def validate():
    body = _body()
    doc = body["config"] if "config" in body else body
    errors, warnings = validation.check(doc, _state().max_steps)
    return {"valid": not errors, "errors": errors, "warnings": warnings}


# -- workspace flow files
MAX_FLOW_NAME = 200  # file systems refuse names over 255 bytes (with ".json" added)


def _flow_path(name: str) -> Path:
    if len(name) > MAX_FLOW_NAME:
        raise ApiError(
            400,
            "Invalid flow name",
            [
                located(
                    "name",
                    f"the name is {len(name)} characters long",
                    f"use at most {MAX_FLOW_NAME}",
                )
            ],
        )
    if not FLOW_NAME.match(name) or name.startswith("."):
        raise ApiError(
            400,
            "Invalid flow name",
            [
                located(
                    "name",
                    f"{name!r} is not a valid flow name",
                    "letters, digits, '_', '-' and '.', not starting with '.'",
                )
            ],
        )
    if not name.endswith(".json"):
        name += ".json"
    return _state().flows_dir / name


@bp.get("/flows")
def flows():
    found = []
    for path in sorted(_state().flows_dir.glob("*.json")):
        if path.name.startswith("."):
            continue
        entry = {
            "name": path.name,
            "modified": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime)
            ),
        }
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            entry["flowName"] = doc.get("name") if isinstance(doc, dict) else None
            nodes = normalize(doc).get("nodes") if isinstance(doc, dict) else None
            entry["nodes"] = len(nodes) if isinstance(nodes, list) else 0
        except (OSError, ValueError):
            entry["flowName"], entry["nodes"], entry["invalid"] = None, 0, True
        found.append(entry)
    return {"flows": found}


@bp.get("/flows/<path:name>")
def flow_get(name):
    path = _flow_path(name)
    if not path.is_file():
        raise ApiError(404, f"No flow {path.name}")
    try:
        return jsonify(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as exc:
        raise ApiError(422, f"{path.name} is not valid JSON: {exc}") from None


@bp.put("/flows/<path:name>")
def flow_put(name):
    path = _flow_path(name)
    doc = _body()
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)
    return {"name": path.name, "saved": True}, 201 if created else 200


@bp.delete("/flows/<path:name>")
def flow_delete(name):
    path = _flow_path(name)
    if not path.is_file():
        raise ApiError(404, f"No flow {path.name}")
    path.unlink()
    return {"name": path.name, "deleted": True}


# -- import
@bp.post("/import")
def import_():
    body = _body()
    fmt, content = body.get("format"), body.get("content")
    errors = []
    if fmt not in ("postman", "curl", "openapi"):
        errors.append(located("format", "must be postman, curl or openapi"))
    if not isinstance(content, str):
        errors.append(located("content", "required: the text to import"))
    if errors:
        raise ApiError(400, "Invalid import request", errors)
    try:
        from . import importers
    except ImportError:
        raise ApiError(501, "Import is not available in this version") from None
    try:
        flow = importers.convert(fmt, content)
    except FlowInvalid:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, f"Could not import {fmt}: {exc}") from None
    return jsonify(flow)
