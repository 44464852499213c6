"""Steering a live execution: stop, answer a prompt, continue.

A request first tries this worker's own registry (the fast path); otherwise it goes
through the control channel to whichever worker (or host) holds the execution.
"""

from __future__ import annotations

import logging

from flask import Blueprint, request

from flowrun.errors import located
from flowrun.store.sealing import seal, secret_keys
from flowrun.web.api.common import body, execution_state, get_state
from flowrun.web.errors import ApiError

bp = Blueprint("control", __name__)
log = logging.getLogger("flowrun")


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
    if get_state().channel.input_claimed(execution_id, step_index):
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
    sent = body()
    execution_id, step_index = sent.get("executionId"), sent.get("stepIndex")
    values = sent.get("userInput")
    errors = []
    if not isinstance(execution_id, str):
        errors.append(located("executionId", "required: a string"))
    if isinstance(step_index, bool) or not isinstance(step_index, int):
        errors.append(located("stepIndex", "required: an integer"))
    if not isinstance(values, dict):
        errors.append(located("userInput", "required: an object"))
    if errors:
        raise ApiError(400, "Invalid request", errors)
    state = get_state()
    channel = state.channel
    answered = ApiError(409, f"Prompt of step {step_index} was already answered")
    # What waits in the channel: secret answers sealed to the run's prompt key.
    waiting = values
    if secret_keys(values, state.secret_vars):
        public = channel.prompt_key(execution_id, step_index)
        waiting = seal(values, public, state.secret_vars)
    local = state.registry.get(execution_id)
    if local is not None and local.controls.waiting_input == step_index:
        prompt = local.recorder.prompt
        keys = prompt[1] if prompt is not None and prompt[0] == step_index else None
        _check_answer(execution_id, step_index, keys, values, answered)
        # Claim the prompt in the shared channel first: the same prompt may be
        # answered through another worker at the same moment. A channel that
        # cannot be written (a full disk) does not keep this worker's own run
        # from its answer: its controls take only the first one anyway.
        try:
            claimed = channel.send_input(execution_id, step_index, waiting)
        except Exception:
            log.exception("claiming the prompt of %s failed", execution_id)
            claimed = True
        if not claimed:
            raise answered
        if local.controls.answer(step_index, values) == "answered":
            raise answered
        return {"success": True}
    remote = execution_state(execution_id)
    if remote["status"] == "running" and remote["promptStep"] == step_index:
        keys = remote.get("promptKeys")
        _check_answer(execution_id, step_index, keys, values, answered)
        if channel.send_input(execution_id, step_index, waiting):
            return {"success": True}
        raise answered
    if channel.input_claimed(execution_id, step_index):
        raise answered
    if remote["status"] != "running":
        # Ended, or recorded interrupted because its host died: nothing waits.
        raise ApiError(409, f"Execution {execution_id} is already {remote['status']}")
    raise ApiError(404, f"No pending prompt for step {step_index} of {execution_id}")


def _force() -> bool:
    """``{"force": true}`` in the stop request's body (none: a graceful stop)."""
    if not request.get_data(cache=True).strip():
        return False
    force = body().get("force", False)
    if not isinstance(force, bool):
        raise ApiError(
            400, "Invalid request", [located("force", "must be true or false")]
        )
    return force


@bp.post("/executions/<execution_id>/stop")
def stop(execution_id):
    """Stop after the step in flight, or with ``{"force": true}`` abort it now.

    A 202 means the run ends ``interrupted``; a run that has ended (or is ending)
    otherwise answers 409.
    """
    force = _force()
    state = get_state()
    ended = ApiError(409, f"Execution {execution_id} has already ended")
    local = state.registry.get(execution_id)
    if local is not None and not local.finished:
        if not local.controls.stop(force):
            raise ended
        return {"stopping": True}, 202
    remote = execution_state(execution_id)
    if remote["status"] != "running":
        raise ApiError(409, f"Execution {execution_id} is already {remote['status']}")
    # Recorded before the 202 leaves: the holder checks it before every step, and
    # says whether the stop came in time (None: it did not say; the stop stands).
    if state.channel.request_stop(execution_id, force) is False:
        raise ended
    return {"stopping": True}, 202


@bp.post("/executions/<execution_id>/continue")
def continue_(execution_id):
    state = get_state()
    local = state.registry.get(execution_id)
    if local is not None and local.controls.resume():
        return {"success": True}
    remote = execution_state(execution_id)
    if remote["status"] != "running" or remote["pausedStep"] is None:
        raise ApiError(409, f"Execution {execution_id} is not paused")
    if local is None and state.channel.send_continue(
        execution_id, remote["pausedStep"]
    ):
        return {"success": True}
    raise ApiError(409, f"Execution {execution_id} is not paused")
