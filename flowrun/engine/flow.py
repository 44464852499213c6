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

    ``steps`` → ``nodes``, ``prompts`` → ``userPrompts``, ``expect`` →
    ``validations``, a single ``condition`` → a one-element ``conditions``,
    conditions' ``statusCode`` → ``httpStatusCode`` and ``response`` (a node index)
    or ``step`` → ``node``, validations' ``status`` → ``httpStatusCode``,
    ``"true"``/``"false"`` → booleans, and methods upper-cased. In the old ``steps``
    format (where they belong), ``{{ .responses[N]… }}`` becomes
    ``{{ .responses.<id of node N>… }}``. Unknown shapes are left for validation to
    report (it also warns about each legacy form). Only the containers it changes
    are copied (a deep copy cost more than the check itself); the caller's document
    is never modified.
    """
    if not isinstance(flow, dict):
        return flow
    flow = dict(flow)
    legacy = "nodes" not in flow and isinstance(flow.get("steps"), list)
    if legacy:
        flow["nodes"] = flow.pop("steps")
    if _BOOL_TEXT.get(flow.get("enableDebug")) is not None:
        flow["enableDebug"] = _BOOL_TEXT[flow["enableDebug"]]
    defaults = flow.get("defaults")
    if isinstance(defaults, dict) and (
        "expect" in defaults or isinstance(defaults.get("validations"), list)
    ):
        flow["defaults"] = _normalize_checks(dict(defaults), None)
    nodes = flow.get("nodes")
    if isinstance(nodes, list):
        nodes = [_normalize_node(n, defaults) for n in nodes]
        ids = [n.get("id") if isinstance(n, dict) else None for n in nodes]
        flow["nodes"] = [_normalize_conditions(n, ids, legacy) for n in nodes]
    return flow


# FlowSphere's older configs wrote booleans as strings.
_BOOL_TEXT = {"true": True, "false": False}
_BOOL_FIELDS = ("skipDefaultValidations", "skipDefaultHeaders")
# ``{{ .responses[N]… }}``: the response of the N-th node (0-based), the old
# ``steps`` format's only way to refer to one.
INDEX_PLACEHOLDER = re.compile(r"\{\{\s*\.responses\[(\d+)\]")


def _normalize_node(node, defaults):
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "userPrompts" not in node and isinstance(node.get("prompts"), dict):
        node["userPrompts"] = node.pop("prompts")
    if "conditions" not in node and isinstance(node.get("condition"), dict):
        node["conditions"] = [node.pop("condition")]
    for name in _BOOL_FIELDS:
        if _BOOL_TEXT.get(node.get(name)) is not None:
            node[name] = _BOOL_TEXT[node[name]]
    if isinstance(node.get("method"), str):
        node["method"] = node["method"].upper()
    if "expect" in node or isinstance(node.get("validations"), list):
        node = _normalize_checks(node, defaults)
    return node


def _normalize_checks(owner: dict, defaults) -> dict:
    """``owner``'s validations with ``expect`` and ``status`` in today's words."""
    expect = owner.get("expect")
    if "validations" not in owner and isinstance(expect, dict):
        owner["validations"] = _from_expect(owner.pop("expect"), defaults)
    validations = owner.get("validations")
    if isinstance(validations, list) and any(
        isinstance(v, dict)
        and ("status" in v or _BOOL_TEXT.get(v.get("exists")) is not None)
        for v in validations
    ):
        owner["validations"] = [_modern_check(v, "status") for v in validations]
    return owner


def _from_expect(expect: dict, defaults) -> list:
    """The validations a FlowSphere ``expect`` block stood for.

    ``expect`` always checked the status (its own, the defaults', else 200) and,
    with a ``jsonpath``, that field (exists, or ``equals``).
    """
    default = defaults.get("expect") if isinstance(defaults, dict) else None
    status = expect.get("status")
    if status is None and isinstance(default, dict):
        status = default.get("status")
    checks = [{"httpStatusCode": 200 if status is None else status}]
    if "jsonpath" in expect:
        check = {k: v for k, v in expect.items() if k != "status"}
        if "equals" not in check:
            check.setdefault("exists", True)
        checks.append(_modern_check(check, "status"))
    return checks


def _modern_check(check, status_key: str):
    """A validation or condition with its old status key (``status``,
    ``statusCode``) and string booleans in today's spelling."""
    if not isinstance(check, dict):
        return check
    check = dict(check)
    if status_key in check and "httpStatusCode" not in check:
        check["httpStatusCode"] = check.pop(status_key)
    if _BOOL_TEXT.get(check.get("exists")) is not None:
        check["exists"] = _BOOL_TEXT[check["exists"]]
    return check


def _normalize_conditions(node, ids: list, legacy: bool):
    """Conditions in today's words; old-format index placeholders as node ids."""
    if not isinstance(node, dict):
        return node
    conditions = node.get("conditions")
    if isinstance(conditions, list) and any(
        isinstance(c, dict) and _LEGACY_CONDITION_KEYS.intersection(c)
        for c in conditions
    ):
        node["conditions"] = [_modern_condition(c, ids) for c in conditions]
    if legacy:
        for key, value in node.items():
            if key not in ("id", "name"):
                node[key] = _index_placeholders(value, ids)
    return node


_LEGACY_CONDITION_KEYS = frozenset(("statusCode", "response", "step", "exists"))


def _modern_condition(cond, ids: list):
    cond = _modern_check(cond, "statusCode")
    if not isinstance(cond, dict) or "node" in cond:
        return cond
    name = cond.get("step")
    index = cond.get("response")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(ids):
        name = ids[index] if "step" not in cond else None
    if not isinstance(name, str):
        return cond
    rest = {k: v for k, v in cond.items() if k not in ("step", "response")}
    return {"node": name, **rest}


def _index_placeholders(value, ids: list):
    """``value`` with ``{{ .responses[N]`` written as ``{{ .responses.<id>``."""
    if isinstance(value, str):
        if "{{" not in value or ".responses[" not in value:
            return value

        def repl(m):
            index = int(m.group(1))
            if index < len(ids) and isinstance(ids[index], str):
                return "{{ .responses." + ids[index]
            return m.group(0)  # validation names it

        return INDEX_PLACEHOLDER.sub(repl, value)
    if isinstance(value, dict):
        return {k: _index_placeholders(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_index_placeholders(v, ids) for v in value]
    return value


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


# What a node checks when neither it nor the defaults say.
DEFAULT_VALIDATIONS = ({"httpStatusCode": 200},)


def node_validations(node: dict, defaults: dict):
    """The validations a node runs: its own, else the defaults', else status 200."""
    if "validations" in node and node["validations"]:
        return node["validations"]
    if node.get("skipDefaultValidations"):
        return node.get("validations") or []
    return defaults.get("validations") or DEFAULT_VALIDATIONS


def node_headers(node: dict, defaults: dict) -> dict:
    """A node's headers with the defaults' merged under them (unless it skips them)."""
    base = {} if node.get("skipDefaultHeaders") else defaults.get("headers") or {}
    return merge_headers(base, node.get("headers") or {})


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
    # A workspace environment, by name (resolved by the caller, which fills in the
    # two fields below; the engine reads no files).
    environment: str | None = None
    env_variables: dict = field(default_factory=dict)
    env_secrets: tuple = ()

    def use_environment(self, env) -> None:
        """Run with ``env`` (a ``flowrun.environments.Environment``)."""
        self.environment = env.name
        self.env_variables = dict(env.variables)
        self.env_secrets = tuple(env.secrets)

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
            "environment",
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
        environment = data.get("environment")
        if environment is not None and (
            not isinstance(environment, str) or not environment
        ):
            bad("environment", "must be the name of an environment")
        else:
            opts.environment = environment
        if errors:
            raise FlowInvalid(errors, "Invalid options")
        return opts
