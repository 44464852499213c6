"""Running flows: streamed (SSE), to the end, and one node (Try it out)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from flowrun.engine import validation
from flowrun.engine.flow import RunOptions
from flowrun.engine.placeholders import NodeResult
from flowrun.engine.run import Run
from flowrun.errors import InputMissing, located
from flowrun.web import sse
from flowrun.web.api.common import (
    body_and_bytes,
    flow_and_options,
    get_state,
    use_environment,
)
from flowrun.web.errors import ApiError
from flowrun.web.executions import NoPrompts

bp = Blueprint("runs", __name__)


@bp.post("/execute-stream")
def execute_stream():
    state = get_state()
    flow, options = flow_and_options(*body_and_bytes())
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
    state = get_state()
    flow, options = flow_and_options(*body_and_bytes())
    environ = request.environ
    end = state.run_to_end(
        flow, options, lambda on_close: state.disconnects.watch(environ, on_close)
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
    state = get_state()
    body, raw = body_and_bytes()
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
    # options.environment and options.variables as for a whole run; the
    # top-level variables (Try it out's own) go over them.
    options = RunOptions.from_dict(body.get("options"))
    options.variables.update(variables)
    options.inputs.update(inputs)
    node = flow["nodes"][ids.index(node_id)]
    use_environment(dict(flow, nodes=[node]), options)
    controls = _TryItPrompts("", None)
    run = Run(dict(flow, nodes=[node]), options, controls, state.engine_settings())
    # The one node runs in the context of the whole flow, earlier nodes answered by
    # the given bodies: references to them resolve, others fail with their names.
    run.ctx.node_ids = frozenset(ids)
    for mock_id, mock_body in mocks.items():
        run.ctx.results[mock_id] = NodeResult("completed", mock_body, {}, 200)
    # The request in flight always completes, but a `delayMs` or the waits between
    # `retry` attempts can last a day each: a client that went away ends them.
    record = None
    # counts against FLOWRUN_MAX_EXECUTIONS like any run; a shutdown stops it too
    with state.registry.slot(controls):
        unwatch = state.disconnects.watch(request.environ, controls.stop)
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
