"""The flow document in memory: FlowSphere aliases folded in, run options parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flowrun.errors import FlowInvalid, located

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MODES = ("run", "step", "auto")
MAX_WAIT_MS = 86_400_000  # a day: delayMs, retry.intervalMs, autoStepDelayMs
DEFAULT_TIMEOUT = 30
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def normalize(flow: dict) -> dict:
    """Return a copy with FlowSphere's legacy spellings mapped to the current ones.

    ``steps`` → ``nodes``, ``prompts`` → ``userPrompts``, a single ``condition`` → a
    one-element ``conditions``, conditions' ``statusCode`` → ``httpStatusCode``, and
    methods upper-cased. Unknown shapes are left for validation to report. Only the
    containers it changes are copied (a deep copy cost more than the check itself);
    the caller's document is never modified.
    """
    if not isinstance(flow, dict):
        return flow
    flow = dict(flow)
    if "nodes" not in flow and isinstance(flow.get("steps"), list):
        flow["nodes"] = flow.pop("steps")
    nodes = flow.get("nodes")
    if isinstance(nodes, list):
        flow["nodes"] = [_normalize_node(n) for n in nodes]
    return flow


def _normalize_node(node):
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "userPrompts" not in node and isinstance(node.get("prompts"), dict):
        node["userPrompts"] = node.pop("prompts")
    if "conditions" not in node and isinstance(node.get("condition"), dict):
        node["conditions"] = [node.pop("condition")]
    conditions = node.get("conditions")
    if isinstance(conditions, list) and any(
        isinstance(c, dict) and "statusCode" in c for c in conditions
    ):
        node["conditions"] = [
            _rename_status(c) if isinstance(c, dict) else c for c in conditions
        ]
    if isinstance(node.get("method"), str):
        node["method"] = node["method"].upper()
    return node


def _rename_status(cond: dict) -> dict:
    cond = dict(cond)
    if "statusCode" in cond:
        cond.setdefault("httpStatusCode", cond.pop("statusCode"))
    return cond


def header(headers: dict, name: str):
    """Look a header up case-insensitively; None when absent."""
    lower = name.lower()
    for k, v in headers.items():
        if k.lower() == lower:
            return v
    return None


def merge_headers(defaults: dict, own: dict) -> dict:
    """Default headers under the node's own; names compared case-insensitively."""
    merged = {k: v for k, v in defaults.items()}
    for k, v in own.items():
        for existing in [e for e in merged if e.lower() == k.lower()]:
            del merged[existing]
        merged[k] = v
    return merged


def join_url(base: str, url: str) -> str:
    """Join a relative URL to baseUrl with exactly one '/' between them."""
    if not base or _ABSOLUTE.match(url):
        return url
    if not url or url.startswith(("?", "#")):
        return base + url
    return base.rstrip("/") + "/" + url.lstrip("/")


@dataclass
class RunOptions:
    """How to run a flow (``options`` in API requests; flags of ``flowrun run``)."""

    start_step: int = 0
    variables: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    mode: str = "run"
    auto_step_delay_ms: int = 2000
    continue_on_failure: bool = False

    @classmethod
    def from_dict(cls, data: dict | None) -> RunOptions:
        """Parse API ``options``; raise FlowInvalid naming each bad field."""
        data = data or {}
        errors = []

        def bad(name, message):
            errors.append(located(f"options.{name}", message))

        if not isinstance(data, dict):
            raise FlowInvalid(
                [located("options", "must be an object")], "Invalid options"
            )
        opts = cls()
        known = {
            "startStep",
            "variables",
            "inputs",
            "mode",
            "autoStepDelayMs",
            "continueOnFailure",
        }
        for key in data:
            if key not in known:
                bad(key, f"unknown option (known: {', '.join(sorted(known))})")
        start = data.get("startStep", 0)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            bad("startStep", "must be a non-negative integer")
        else:
            opts.start_step = start
        for name in ("variables", "inputs"):
            value = data.get(name, {})
            if not isinstance(value, dict):
                bad(name, "must be an object")
            else:
                setattr(opts, name, dict(value))
        mode = data.get("mode", "run")
        if mode not in MODES:
            bad("mode", f"must be one of {', '.join(MODES)}")
        else:
            opts.mode = mode
        delay = data.get("autoStepDelayMs", opts.auto_step_delay_ms)
        if (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not 0 <= delay <= MAX_WAIT_MS
        ):
            bad("autoStepDelayMs", f"must be a number from 0 to {MAX_WAIT_MS}")
        else:
            opts.auto_step_delay_ms = delay
        cof = data.get("continueOnFailure", False)
        if not isinstance(cof, bool):
            bad("continueOnFailure", "must be true or false")
        else:
            opts.continue_on_failure = cof
        if errors:
            raise FlowInvalid(errors, "Invalid options")
        return opts
