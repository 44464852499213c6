"""Flow validation: structure against the JSON Schema, then the values.

``check()`` collects every problem in one pass, each located by a path into the
document as the person wrote it (``nodes[3].validations[0].httpStatusCode``, or
``steps[3]…`` in a FlowSphere file) and carrying a hint on how to fix it. Errors
block a run; warnings (``"severity": "warning"``) never do.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
import re
import time
from pathlib import Path

import jsonschema_rs

from flowrun.engine import paths
from flowrun.engine.budget import RegexError, compile_regex
from flowrun.engine.checks import OPERATORS, VALIDATION_KINDS
from flowrun.engine.flow import (
    INDEX_PLACEHOLDER,
    METHODS,
    header,
    merge_headers,
    normalize,
)
from flowrun.engine.jq import TIMEOUT_S as JQ_TIMEOUT_S
from flowrun.engine.jq import JqHelperDied, JqTimeout, jq_error
from flowrun.engine.placeholders import (
    as_literal,
    expressions,
    parse_ref,
    stray_braces,
)
from flowrun.errors import FlowInvalid, LocatedError, located

# Beside this module (package data; importlib.resources costs a short CLI run more
# than reading the file does).
SCHEMA: dict = json.loads(
    Path(__file__).with_name("flow.schema.json").read_text("utf-8")
)
_DEFS = SCHEMA["$defs"]


@functools.cache
def _validator():
    """jsonschema's validator of the flow schema (compiled once), which says what is
    wrong with a document that fails; made, and jsonschema imported, only then: a
    run of a valid flow in the CLI never loads it."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(SCHEMA)


def __getattr__(name: str):
    if name == "_VALIDATOR":
        return _validator()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The verdict comes from jsonschema-rs (compiled Rust): a flow is checked before
# every run that sends new bytes, and jsonschema's pure-Python check of a 10-node
# flow costs about 100 times as much (bench/flow_check.py). jsonschema itself
# describes what is wrong, on the rare documents that fail.
_FAST = jsonschema_rs.validator_for(SCHEMA)


def schema_valid(doc) -> bool:
    """Whether ``doc`` matches the flow schema."""
    try:
        return _FAST.is_valid(doc)
    except (ValueError, OverflowError):
        # A value jsonschema-rs cannot read (an integer past 64 bits): ask
        # jsonschema, which reads any Python value.
        return _validator().is_valid(doc)


def _remember(kept: dict, key, most: int) -> None:
    """Add ``key`` to ``kept``, dropping the oldest beyond ``most``."""
    if len(kept) >= most:
        try:  # the oldest; another thread may be at it too
            del kept[next(iter(kept))]
        except (KeyError, RuntimeError, StopIteration):
            pass
    kept[key] = None


NUMERIC_OPERATORS = (
    "greaterThan",
    "lessThan",
    "greaterThanOrEqual",
    "lessThanOrEqual",
)
OPERATOR_KINDS = ("jsonpath", "header", "jq")
CONDITION_KEYS = ("source", "node", "variable", "input", "httpStatusCode", "field")
# What a condition tests: one of these (``response`` and ``step`` are FlowSphere's
# old ways to name a node; normalising turns a resolvable one into ``node``).
CONDITION_SOURCES = ("node", "variable", "input", "response", "step")
NODE_SOURCES = ("responses", "headers", "status")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_$@-]+$")
_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}
_FIELD_HINTS = {
    "id": 'give the node a unique "id" (letters, digits, _ and -)',
    "name": 'add "name": a label shown in Studio and logs',
    "method": 'add "method": one of ' + ", ".join(METHODS),
    "url": 'add "url": an absolute http(s):// URL, or a path relative to '
    "defaults.baseUrl",
    "nodes": 'add "nodes": a non-empty array of steps',
    "node": 'add "node": the id of an earlier node',
    "variable": 'add "variable": a name from variables',
    "input": 'add "input": a key of userPrompts',
}


def parse_json(text):
    """``json.loads`` for documents people send: NaN, Infinity and numbers too
    large for a float are refused (ValueError), as JSON does — they would come back
    out as ``NaN``/``Infinity``, which no JSON parser reads."""
    return json.loads(text, parse_constant=_not_json, parse_float=_finite)


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text} is too large")
    return value


def check(doc, max_steps: int = 1000) -> tuple[list[dict], list[dict]]:
    """Return ``(errors, warnings)``, each ``{"path", "nodeId", "message", "hint"}``.

    Warnings also carry ``"severity": "warning"`` (errors ``"error"``).
    """
    errors, warnings, _ = _check(doc, max_steps)
    return errors, warnings


def load(doc, max_steps: int = 1000, source: bytes | None = None) -> dict:
    """Return the normalised flow, or raise FlowInvalid with every error found.

    ``source``: bytes that wholly determine ``doc`` (the request body it was
    parsed from). A document found valid from the same bytes before, with the
    same ``max_steps``, is only normalised: the checks cost ~0.1 ms for a
    10-node flow, normalising ~4 µs.
    """
    key = None
    if source is not None:
        key = (hashlib.blake2b(source, digest_size=16).digest(), max_steps)
        if key in _valid_sources:
            return normalize(_normalizable(doc))
    errors, _, flow = _check(doc, max_steps)
    if errors:
        raise FlowInvalid(errors)
    if key is not None:
        _remember(_valid_sources, key, _VALID_SOURCES_KEPT)
    return flow


def load_with_warnings(doc, max_steps: int = 1000) -> tuple[dict, list[dict]]:
    """``load()``, and the warnings found on the way."""
    errors, warnings, flow = _check(doc, max_steps)
    if errors:
        raise FlowInvalid(errors)
    return flow, warnings


# Digests of the sources of the last documents found valid, oldest first.
_valid_sources: dict[tuple[bytes, int], None] = {}
_VALID_SOURCES_KEPT = 256


def _check(doc, max_steps):
    if not isinstance(doc, dict):
        message = f"flow must be a JSON object, not {_type_name(doc)}"
        hint = 'write {"name": …, "nodes": [ … ]}'
        return [_entry((), None, message, hint, "error")], [], None
    too_deep = _too_deep(doc)
    if too_deep is not None:
        # Checked first and alone: substitution, the schema and the store all walk
        # values recursively, and would fail mid-run with a RecursionError.
        message = f"nested more than {MAX_DEPTH} levels deep"
        hint = "flatten this value (bodies, variables and expected values)"
        node_id = None
        if len(too_deep) > 1 and too_deep[0] in ("nodes", "steps"):
            node = doc[too_deep[0]][too_deep[1]]
            node_id = node.get("id") if isinstance(node.get("id"), str) else None
        return [_entry(too_deep, node_id, message, hint, "error")], [], None
    checker = _Checker(doc, max_steps)
    checker.structure()
    checker.values()
    # Document order: flow-level problems first, then node by node.
    checker.errors.sort(key=checker.node_order)
    checker.warnings.sort(key=checker.node_order)
    return checker.errors, checker.warnings, checker.flow


MAX_DEPTH = 100


def _too_deep(doc) -> tuple | None:
    """The path of the first value nested deeper than MAX_DEPTH, else None."""
    if not _deeper_than(doc, MAX_DEPTH):
        return None
    stack = [(doc, ())]
    while stack:
        value, parts = stack.pop()
        if len(parts) > MAX_DEPTH:
            return parts[: MAX_DEPTH + 1]
        if isinstance(value, dict):
            stack.extend((v, (*parts, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*parts, i)) for i, v in enumerate(value))
    return None


def _deeper_than(doc, limit: int) -> bool:
    """Whether some value sits more than ``limit`` levels deep: containers only,
    no paths (the check before every run; the path is found only if needed)."""
    stack = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth >= limit and children:
            return True
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def render_path(parts) -> str:
    """``("nodes", 3, "url")`` → ``nodes[3].url``; odd keys are quoted."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _entry(parts, node_id, message, hint, severity) -> LocatedError:
    return located(render_path(parts), message, hint, node_id, severity)


def _type_name(value) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _in_checks(where) -> bool:
    return any(p in ("validations", "conditions", "condition") for p in where)


def _suggest(word, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]}? " if close else ""


def _normalizable(doc: dict) -> dict:
    """Drop what ``normalize()`` cannot walk; the schema reports it anyway."""
    nodes = doc.get("nodes", doc.get("steps"))
    if not isinstance(nodes, list):
        return {k: v for k, v in doc.items() if k not in ("nodes", "steps")}
    if all(
        not isinstance(n, dict) or isinstance(n.get("conditions", []), list)
        for n in nodes
    ):
        return doc
    doc = dict(doc)
    doc["nodes" if "nodes" in doc else "steps"] = [
        {k: v for k, v in n.items() if k != "conditions"}
        if isinstance(n, dict) and not isinstance(n.get("conditions", []), list)
        else n
        for n in nodes
    ]
    return doc


# A document's jq programs are compiled in a helper process (never in this one),
# each within JQ_TIMEOUT_S, and all of them within JQ_CHECKS_S.
JQ_CHECKS_S = 10.0


class _JqChecks:
    """jq's verdicts on the programs of one document, each program checked once."""

    def __init__(self):
        self.left = JQ_CHECKS_S
        self.verdicts: dict[str, str | None] = {}

    def problem(self, program: str) -> str | None:
        """What is wrong with ``program``, or None if it compiles."""
        if program not in self.verdicts:
            self.verdicts[program] = self._compile(program)
        return self.verdicts[program]

    def _compile(self, program: str) -> str | None:
        if self.left <= 0:
            return (
                "not checked: this document's jq programs took more than "
                f"{JQ_CHECKS_S:g}s to compile"
            )
        began = time.monotonic()
        try:
            message = jq_error(program, timeout=min(JQ_TIMEOUT_S, self.left))
        except JqTimeout:
            return f"jq took more than {JQ_TIMEOUT_S:g}s to compile this program"
        except JqHelperDied as exc:
            return f"bad jq program: {exc}"
        finally:
            self.left -= time.monotonic() - began
        if message is None:
            return None
        return "bad jq program: " + message.splitlines()[0].removeprefix("jq: error: ")


_OLD_NODE_KEYS = ("response", "step")


def _raw_checks(out: list, at: int, owner) -> tuple:
    """Map ``…validations[j].key`` (``out[at]`` is ``validations``) back to the
    ``expect`` block or the ``status`` key the document wrote."""
    owner = owner if isinstance(owner, dict) else {}
    key = out[at + 2] if len(out) > at + 2 else None
    if "validations" not in owner and isinstance(owner.get("expect"), dict):
        key = "status" if key == "httpStatusCode" else key
        return tuple([*out[:at], "expect", *([key] if key in owner["expect"] else [])])
    if key == "httpStatusCode":
        checks = owner.get("validations")
        j = out[at + 1]
        check = checks[j] if isinstance(checks, list) and j < len(checks) else None
        if isinstance(check, dict) and key not in check and "status" in check:
            out[at + 2] = "status"
    return tuple(out)


def _strings(value, where=()):
    """Yield ``(path, text)`` for every string in ``value`` (keys excluded)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*where, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*where, i))


# Node fields whose text the value checks read themselves (placeholders and all).
_TEXT_FIELDS = frozenset(
    ("url", "headers", "userPrompts", "prompts", "body", "validations", "conditions")
)


class _Scope:
    """Where a placeholder sits: which node (None: defaults) and what it may use."""

    def __init__(self, index, prompted):
        self.index = index
        self.prompted = prompted


class _Checker:
    """One pass over one document: schema errors first, then the value checks.

    Value checks walk the normalised flow; ``_raw`` maps their paths back to the
    spelling the document uses, so every entry points at what the person wrote.
    """

    def __init__(self, doc: dict, max_steps: int):
        self.doc = doc
        self.max_steps = max_steps
        self.flow = normalize(_normalizable(doc))
        self.errors: list[dict] = []
        self.warnings: list[dict] = []
        self.jq = _JqChecks()
        raw_nodes = doc.get("nodes")
        self.nodes_key = "nodes"
        if "nodes" not in doc and isinstance(doc.get("steps"), list):
            self.nodes_key, raw_nodes = "steps", doc["steps"]
        self.raw_nodes = raw_nodes if isinstance(raw_nodes, list) else []
        nodes = self.flow.get("nodes")
        self.nodes = nodes if isinstance(nodes, list) else []
        self.variables = self.flow.get("variables")
        if not isinstance(self.variables, dict):
            self.variables = {}
        secrets = self.flow.get("secrets")
        if isinstance(secrets, list):  # declared secrets are given at run time
            self.variables = {**dict.fromkeys(map(str, secrets)), **self.variables}
        self.defaults = self.flow.get("defaults")
        if not isinstance(self.defaults, dict):
            self.defaults = {}
        self.first: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            node_id = node.get("id") if isinstance(node, dict) else None
            if isinstance(node_id, str):
                self.first.setdefault(node_id, i)

    # -- reporting ------------------------------------------------------------------
    def node_order(self, entry: dict) -> int:
        m = re.match(rf"^{self.nodes_key}\[(\d+)\]", entry["path"])
        return int(m.group(1)) if m else -1

    def _node_id(self, raw_parts) -> str | None:
        if len(raw_parts) >= 2 and raw_parts[0] in ("nodes", "steps"):
            index = raw_parts[1]
            nodes = self.doc.get(raw_parts[0])
            if isinstance(index, int) and isinstance(nodes, list):
                if index < len(nodes) and isinstance(nodes[index], dict):
                    node_id = nodes[index].get("id")
                    return node_id if isinstance(node_id, str) else None
        return None

    def _raw(self, parts: tuple) -> tuple:
        """Map a path in the normalised flow back to the document's spelling."""
        if len(parts) >= 2 and parts[:2] == ("defaults", "validations"):
            return _raw_checks(list(parts), 1, self.doc.get("defaults"))
        if not parts or parts[0] != "nodes":
            return parts
        out = [self.nodes_key, *parts[1:]]
        if len(out) < 3 or not isinstance(out[1], int):
            return tuple(out)
        raw = self.raw_nodes[out[1]] if out[1] < len(self.raw_nodes) else None
        if not isinstance(raw, dict):
            return tuple(out)
        if out[2] == "userPrompts" and "userPrompts" not in raw and "prompts" in raw:
            out[2] = "prompts"
        if out[2] == "validations":
            return _raw_checks(out, 2, raw)
        if out[2] == "conditions":
            conds = raw.get("conditions")
            if "conditions" not in raw and isinstance(raw.get("condition"), dict):
                out[2:4] = ["condition"]
                conds = [raw["condition"]]
                at = 3
            else:
                at = 4
            if len(out) > at:
                j = out[3] if at == 4 else 0
                cond = conds[j] if isinstance(conds, list) and j < len(conds) else {}
                cond = cond if isinstance(cond, dict) else {}
                if out[at] not in cond:
                    # Written in FlowSphere's older words.
                    old = {"httpStatusCode": ("statusCode",), "node": _OLD_NODE_KEYS}
                    for key in old.get(out[at], ()):
                        if key in cond:
                            out[at] = key
                            break
        return tuple(out)

    def error(self, parts, message, hint="", raw=False):
        parts = tuple(parts) if raw else self._raw(tuple(parts))
        self.errors.append(_entry(parts, self._node_id(parts), message, hint, "error"))

    def warn(self, parts, message, hint="", raw=False):
        parts = tuple(parts) if raw else self._raw(tuple(parts))
        self.warnings.append(
            _entry(parts, self._node_id(parts), message, hint, "warning")
        )

    # -- structure (JSON Schema) ----------------------------------------------------
    def structure(self):
        if schema_valid(self.doc):
            return
        for err in _validator().iter_errors(self.doc):
            self._schema_error(err)

    def _schema_error(self, err):
        where = tuple(err.absolute_path)
        kind, value, inst = err.validator, err.validator_value, err.instance
        # The value checks report these with better messages and hints.
        if (
            len(where) == 3
            and where[0] in ("nodes", "steps")
            and where[2]
            in (
                "method",
                "body",
            )
        ):
            return
        if where and where[-1] in OPERATORS and _in_checks(where):
            return
        if kind == "additionalProperties" and (
            err.schema is _DEFS["validation"] or err.schema is _DEFS["condition"]
        ):
            return
        name = where[-1] if where and isinstance(where[-1], str) else None
        if kind == "required":
            for field in value:
                if isinstance(inst, dict) and field not in inst:
                    self.error(
                        (*where, field),
                        f"missing required field '{field}'",
                        _FIELD_HINTS.get(field, f'add "{field}"'),
                        raw=True,
                    )
            return
        if kind == "anyOf" and value is SCHEMA["anyOf"]:
            self.error(
                ("nodes",),
                "missing required field 'nodes'",
                _FIELD_HINTS["nodes"],
                True,
            )
            return
        if kind == "anyOf" and value is _DEFS["validation"]["anyOf"]:
            self.error(
                where,
                "a validation needs one of: " + ", ".join(VALIDATION_KINDS),
                'e.g. {"httpStatusCode": 200} or {"jsonpath": ".id", "exists": true}',
                raw=True,
            )
            return
        if kind == "anyOf" and value is _DEFS["condition"]["anyOf"]:
            self.error(
                where,
                "a condition needs 'node', 'variable' or 'input'",
                'e.g. {"node": "login", "httpStatusCode": 200}',
                raw=True,
            )
            return
        if name == "httpStatusCode" and kind == "oneOf":
            self.error(
                where,
                f"{json.dumps(inst)} is not an HTTP status code (100-599) "
                "or a non-empty list of them",
                'e.g. "httpStatusCode": 201 or [200, 204]',
                raw=True,
            )
            return
        message, hint = self._schema_message(err, name)
        self.error(where, message, hint or "see docs/flow-format.md", raw=True)

    def _schema_message(self, err, name):
        kind, value, inst = err.validator, err.validator_value, err.instance
        about = (
            err.schema.get("description", "") if isinstance(err.schema, dict) else ""
        )
        if kind == "type":
            wanted = [value] if isinstance(value, str) else value
            words = {
                "object": "an object",
                "array": "an array",
                "string": "a string",
                "number": "a number",
                "integer": "an integer",
                "boolean": "true or false",
            }
            shown = " or ".join(words.get(t, t) for t in wanted)
            if not about and "string" in wanted and not isinstance(inst, dict | list):
                about = f"write it as a string: {json.dumps(json.dumps(inst))}"
            return f"must be {shown}, not {_type_name(inst)}", about
        if kind == "enum":
            options = ", ".join(str(v) for v in value)
            return (
                f"{json.dumps(inst)} is not one of {options}",
                _suggest(inst, [str(v) for v in value]) + f"use one of {options}",
            )
        if kind == "pattern" and name in ("id", "node"):
            fixed = re.sub(r"[^A-Za-z0-9_-]+", "_", str(inst)) or "step1"
            return (
                f"id {json.dumps(inst, ensure_ascii=False)} may only contain "
                "letters, digits, _ and -",
                f"e.g. {json.dumps(fixed)}",
            )
        if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            symbol = {
                "minimum": ">=",
                "exclusiveMinimum": ">",
                "maximum": "<=",
                "exclusiveMaximum": "<",
            }[kind]
            return f"must be {symbol} {value}, not {json.dumps(inst)}", about
        if kind == "minItems":
            if name in ("nodes", "steps"):
                return "the flow has no nodes", "add at least one node"
            return "must not be empty", about
        if kind == "minLength":
            return "must not be empty", about
        if kind == "additionalProperties":
            extra = sorted(k for k in inst if k not in err.schema.get("properties", {}))
            known = ", ".join(err.schema.get("properties", {}))
            return (
                "unknown field " + ", ".join(f"'{k}'" for k in extra),
                _suggest(extra[0], err.schema.get("properties", {})) + f"use {known}"
                if extra
                else "",
            )
        return err.message, about

    # -- FlowSphere's older forms ----------------------------------------------------
    def _legacy(self):
        """Warn about each of FlowSphere's older forms (they run as the newer ones)."""
        doc = self.doc
        if self.nodes_key == "steps":
            self.warn(
                ("steps",),
                "'steps' is FlowSphere's old name for 'nodes'",
                'rename it to "nodes"',
                raw=True,
            )
        if isinstance(doc.get("enableDebug"), str):
            self._bool_text(("enableDebug",), doc["enableDebug"])
        defaults = doc.get("defaults")
        if isinstance(defaults, dict):
            self._legacy_checks(("defaults",), defaults, self.defaults)
        for i, raw in enumerate(self.raw_nodes):
            if not isinstance(raw, dict) or i >= len(self.nodes):
                continue
            at = (self.nodes_key, i)
            node = self.nodes[i]
            if "prompts" in raw and "userPrompts" not in raw:
                self.warn(
                    (*at, "prompts"),
                    "'prompts' is FlowSphere's old name for 'userPrompts'",
                    'rename it to "userPrompts"',
                    raw=True,
                )
            for name in ("skipDefaultValidations", "skipDefaultHeaders"):
                if isinstance(raw.get(name), str):
                    self._bool_text((*at, name), raw[name])
            self._legacy_checks(at, raw, node)
            modern = node.get("conditions")
            modern = modern if isinstance(modern, list) else []
            if "condition" in raw and "conditions" not in raw:
                self._legacy_condition(at, raw["condition"], modern[:1], single=True)
            elif isinstance(raw.get("conditions"), list):
                for j, cond in enumerate(raw["conditions"]):
                    self._legacy_condition(
                        (*at, "conditions", j), cond, modern[j : j + 1]
                    )
            if self.nodes_key == "steps":
                for where, text in _strings(raw):
                    if where[:1] in (("id",), ("name",)) or "[" not in text:
                        continue
                    for m in INDEX_PLACEHOLDER.finditer(text):
                        self._index_placeholder((*at, *where), int(m.group(1)))

    def _bool_text(self, where, value):
        if value in ("true", "false"):
            self.warn(
                where,
                f'"{value}" in quotes is FlowSphere\'s old spelling of {value}',
                f"write {value} without quotes",
                raw=True,
            )

    def _legacy_checks(self, at, raw: dict, now: dict):
        """``expect``, ``status`` and string booleans in validations."""
        if "expect" in raw and "validations" not in raw:
            modern = json.dumps(now.get("validations"), ensure_ascii=False)
            self.warn(
                (*at, "expect"),
                "'expect' is FlowSphere's oldest form of validations",
                f'write "validations": {modern}',
                raw=True,
            )
            return
        checks = raw.get("validations")
        for j, check in enumerate(checks if isinstance(checks, list) else []):
            if not isinstance(check, dict):
                continue
            if "status" in check and "httpStatusCode" not in check:
                self.warn(
                    (*at, "validations", j, "status"),
                    "'status' is FlowSphere's old name for 'httpStatusCode'",
                    f'write {{"httpStatusCode": {json.dumps(check["status"])}}}',
                    raw=True,
                )
            if isinstance(check.get("exists"), str):
                self._bool_text((*at, "validations", j, "exists"), check["exists"])

    def _legacy_condition(self, at, cond, modern: list, single=False):
        """One warning per condition written in FlowSphere's older words."""
        if not isinstance(cond, dict):
            return
        old = []
        if single:
            old.append("a single 'condition' is FlowSphere's old form")
        if "node" not in cond and "step" in cond:
            old.append("'step' is its old name for 'node'")
        index = cond.get("response")
        if "node" not in cond and isinstance(index, int) and modern:
            if modern[0].get("node") is not None:
                old.append(f"'response': {index} names a node by its position")
        if cond.get("exists") in ("true", "false"):
            old.append(f'"{cond["exists"]}" in quotes is its old spelling of a boolean')
        if not old:
            return
        shown = json.dumps(modern[0] if modern else cond, ensure_ascii=False)
        self.warn(
            (*at, "condition") if single else at,
            "; ".join(old),
            f'write "conditions": [{shown}]' if single else f"write {shown}",
            raw=True,
        )

    def _index_placeholder(self, where, index: int):
        if index >= len(self.nodes) or not isinstance(self.nodes[index], dict):
            return  # the placeholder check reports it
        node_id = self.nodes[index].get("id")
        self.warn(
            where,
            f"{{{{ .responses[{index}]… }}}} is FlowSphere's old way to refer to a "
            "response (by the node's position)",
            f"write {{{{ .responses.{node_id}… }}}}",
            raw=True,
        )

    # -- values ---------------------------------------------------------------------
    def values(self):
        self._legacy()
        nodes = self.nodes
        if len(nodes) > self.max_steps:
            self.error(
                ("nodes",),
                f"the flow has {len(nodes)} nodes; the most allowed is "
                f"{self.max_steps}",
                "split it into smaller flows, or raise FLOWRUN_MAX_STEPS",
            )
        all_prompts = set()
        for node in nodes:
            if isinstance(node, dict) and isinstance(node.get("userPrompts"), dict):
                all_prompts.update(node["userPrompts"])
        flow_scope = _Scope(None, frozenset(all_prompts))
        defaults = self.defaults
        base = defaults.get("baseUrl")
        if isinstance(base, str):
            self._text(("defaults", "baseUrl"), base, flow_scope)
            text = base.strip()
            if text and not text.startswith("{{") and "://" not in text[:12]:
                self.error(
                    ("defaults", "baseUrl"),
                    f"baseUrl '{base}' is not an absolute URL",
                    f"write it with its scheme, e.g. http://{text.lstrip('/')}",
                )
            elif text and not text.startswith("{{"):
                self._scheme(("defaults", "baseUrl"), text)
        if isinstance(defaults.get("headers"), dict):
            self._headers(("defaults", "headers"), defaults["headers"])
            self._text(("defaults", "headers"), defaults["headers"], flow_scope)
        if isinstance(defaults.get("validations"), list):
            self._validations(
                ("defaults", "validations"), defaults["validations"], flow_scope
            )
        seen: set[str] = set()
        prompted: set[str] = set()
        for i, node in enumerate(nodes):
            if not isinstance(node, dict):
                continue
            node_id = node.get("id")
            if isinstance(node_id, str):
                if node_id in seen:
                    self.error(
                        ("nodes", i, "id"),
                        f"duplicate id '{node_id}' (first used by "
                        f"{self.nodes_key}[{self.first[node_id]}])",
                        "give every node its own id",
                    )
                seen.add(node_id)
            if isinstance(node.get("userPrompts"), dict):
                prompted.update(node["userPrompts"])
            self._node(i, node, _Scope(i, frozenset(prompted)))

    def _node(self, i: int, node: dict, scope: _Scope):
        at = ("nodes", i)
        method = node.get("method")
        if "method" in node and (not isinstance(method, str) or method not in METHODS):
            shown = method if isinstance(method, str) else json.dumps(method)
            self.error(
                (*at, "method"),
                f"unknown method '{shown}'",
                _suggest(str(shown).upper(), METHODS) + "use " + ", ".join(METHODS),
            )
        url = node.get("url")
        if isinstance(url, str):
            self._url(at, url)
            self._text((*at, "url"), url, scope)
        if isinstance(node.get("headers"), dict):
            self._headers((*at, "headers"), node["headers"])
            self._text((*at, "headers"), node["headers"], scope)
        if isinstance(node.get("userPrompts"), dict):
            self._text((*at, "userPrompts"), node["userPrompts"], scope)
        if "body" in node:
            self._body(at, node, scope)
        if isinstance(node.get("validations"), list):
            self._validations((*at, "validations"), node["validations"], scope)
        if isinstance(node.get("conditions"), list):
            self._conditions((*at, "conditions"), node["conditions"], scope)
        if isinstance(node.get("launchBrowser"), str):
            self._path((*at, "launchBrowser"), node["launchBrowser"])
        raw = self.raw_nodes[i] if i < len(self.raw_nodes) else None
        for key, value in raw.items() if isinstance(raw, dict) else ():
            if key not in _TEXT_FIELDS and key != "condition":
                for where, text in _strings(value, (self.nodes_key, i, key)):
                    self._braces(where, text, raw=True)

    def _headers(self, where, headers: dict):
        # What the HTTP client would refuse (or a server misread) at run time.
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                self.error(
                    (*where, name),
                    f"{json.dumps(name, ensure_ascii=False)} is not a valid "
                    "header name",
                    "header names are letters, digits and !#$%&'*+-.^_`|~ "
                    "(no spaces or colons)",
                )
            elif isinstance(value, str) and ("\r" in value or "\n" in value):
                self.error(
                    (*where, name),
                    "a header value cannot contain a line break",
                    "write the value on one line",
                )

    def _url(self, at, url: str):
        text = url.strip()
        if text.startswith("{{"):
            return  # the whole URL comes from a placeholder: known only at run time
        if "://" in text[:12]:
            self._scheme((*at, "url"), text)
        elif not self.defaults.get("baseUrl"):
            self.error(
                (*at, "url"),
                f"relative URL '{url}' but defaults.baseUrl is not set",
                "write an absolute http(s):// URL, or set defaults.baseUrl",
            )

    def _scheme(self, where, url: str):
        scheme = url.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            self.error(
                where,
                f"unsupported URL scheme '{scheme}'",
                "use an http:// or https:// URL",
            )

    def _body(self, at, node, scope):
        body = node["body"]
        where = (*at, "body")
        if not isinstance(body, (dict, list, str)):
            self.error(
                where,
                f"body must be an object, an array or a string, not {_type_name(body)}",
                f"to send the text {json.dumps(body)}, write it as a string: "
                f"{json.dumps(json.dumps(body))}",
            )
            return
        # JSON text nests braces: a '}}' in a body written as text is likely one.
        self._text(where, body, scope, loose_close=isinstance(body, str))
        method = node.get("method")
        if method in ("GET", "HEAD"):
            self.warn(
                where,
                f"a body on {method} will not be sent",
                "remove the body, or use POST/PUT/PATCH",
            )
            return
        headers = node.get("headers") if isinstance(node.get("headers"), dict) else {}
        default_headers = self.defaults.get("headers")
        if node.get("skipDefaultHeaders") or not isinstance(default_headers, dict):
            default_headers = {}
        content_type = header(merge_headers(default_headers, headers), "Content-Type")
        if not isinstance(content_type, str) or "{{" in content_type:
            return
        content_type = content_type.lower()
        is_form = "x-www-form-urlencoded" in content_type
        is_json = "json" in content_type.split(";")[0]
        body_format = node.get("bodyFormat")
        if isinstance(body, str):
            # Placeholders become a number: valid JSON inside quotes and outside.
            try:
                parsed = json.loads(as_literal(body, "0"))
            except ValueError as exc:
                parsed = exc
            # bodyFormat text: the person says the text is to be sent as written.
            report = self.warn if body_format == "text" else self.error
            if is_json and isinstance(parsed, ValueError):
                report(
                    where,
                    f"body is not valid JSON ({parsed}) but Content-Type is "
                    f"{content_type}",
                    "fix the JSON, write the body as an object, or change the "
                    "Content-Type"
                    + (
                        ""
                        if body_format == "text"
                        else ' (or say "bodyFormat": "text" to send it as written)'
                    ),
                )
            elif is_form and isinstance(parsed, (dict, list)):
                report(
                    where,
                    f"a JSON body with a form Content-Type ({content_type})",
                    "write the body as an object (it is then form-encoded), or use "
                    "Content-Type: application/json",
                )
        elif is_form and body_format == "json":
            self.error(
                (*at, "bodyFormat"),
                f"bodyFormat is json but Content-Type is {content_type}",
                "remove bodyFormat (the body is then form-encoded), or use "
                "Content-Type: application/json",
            )
        elif is_json and body_format == "form-urlencoded":
            self.error(
                (*at, "bodyFormat"),
                f"bodyFormat is form-urlencoded but Content-Type is {content_type}",
                "use Content-Type: application/x-www-form-urlencoded, or remove "
                "bodyFormat",
            )

    # -- placeholders ---------------------------------------------------------------
    def _text(self, where, value, scope, loose_close=False):
        """Check every placeholder in a value (any depth; keys excluded).

        ``loose_close``: a '}}' without its '{{' is a warning, not an error.
        """
        if isinstance(value, dict):
            for k, v in value.items():
                self._text((*where, k), v, scope, loose_close)
        elif isinstance(value, list):
            for j, v in enumerate(value):
                self._text((*where, j), v, scope, loose_close)
        elif isinstance(value, str) and ("{{" in value or "}}" in value):
            self._braces(where, value, loose_close)
            for expr in expressions(value):
                self._placeholder(where, expr, scope)

    def _braces(self, where, text: str, loose_close=False, raw=False):
        """Report a '{{' or '}}' without its partner (FlowSphere refuses both)."""
        stray = stray_braces(text)
        if stray == "{{":
            self.error(
                where,
                "'{{' is not closed",
                "close each placeholder with '}}', e.g. {{ .vars.name }}; to send "
                "'{{' as text, write \\{{",
                raw=raw,
            )
        elif stray == "}}":
            (self.warn if loose_close else self.error)(
                where,
                "'}}' without a matching '{{'",
                "open each placeholder with '{{', e.g. {{ .vars.name }}",
                raw=raw,
            )

    def _placeholder(self, where, expr: str, scope: _Scope):
        shown = "{{ " + expr.strip() + " }}"
        if not expr.strip():
            self.error(
                where,
                "empty placeholder '{{ }}'",
                "write e.g. {{ .vars.name }} or {{ .responses.ID.field }}",
            )
            return
        try:
            ref = parse_ref(expr)
        except ValueError as exc:
            hint = (
                "placeholders are $guid, $timestamp, $isoTimestamp, $randomInt, "
                ".vars.NAME, .input.NAME, .responses.ID.PATH, .headers.ID.Name, "
                ".status.ID"
            )
            kind = re.match(r"\.(vars|input|responses|headers|status)\.", expr.strip())
            index = re.match(r"\.responses\[(\d+)\]", expr.strip())
            if index:
                n = int(index.group(1))
                target = self.nodes[n] if n < len(self.nodes) else None
                node_id = target.get("id") if isinstance(target, dict) else None
                hint = (
                    f"write {{{{ .responses.{node_id}… }}}} (a response by its "
                    "node's id; {{ .responses[N] }} is FlowSphere's oldest form, "
                    'read only in flows that use "steps")'
                    if isinstance(node_id, str)
                    else f"there is no node {n}: refer to a node by its id, "
                    "{{ .responses.ID.PATH }}"
                )
            elif kind:
                # e.g. {{ .vars.ключ }} or {{ .vars.my var }}: the name is the problem.
                what = "NAME" if kind.group(1) in ("vars", "input") else "ID"
                hint = (
                    f"the {what} after .{kind.group(1)}. may only contain ASCII "
                    "letters, digits, _ and -; " + hint
                )
            self.error(where, str(exc), hint)
            return
        if ref.source in NODE_SOURCES:
            self._node_ref(where, ref.name, scope, shown + ": ")
        elif ref.source == "vars" and ref.name not in self.variables:
            self._unknown_variable(where, ref.name, shown)
        elif ref.source == "input" and ref.name not in scope.prompted:
            self._unknown_input(where, ref.name, scope, shown)

    def _node_ref(self, where, name, scope: _Scope, shown: str):
        if name not in self.first:
            earlier = list(self.first)
            if scope.index is not None:
                earlier = [k for k, v in self.first.items() if v < scope.index]
            self.error(
                where,
                f"{shown}no node has the id '{name}'",
                _suggest(name, self.first)
                + (
                    "earlier nodes: " + ", ".join(earlier)
                    if earlier
                    else "only nodes that run before this one can be referenced"
                ),
            )
            return
        if scope.index is None:
            return
        index = self.first[name]
        if index == scope.index:
            self.error(
                where,
                f"{shown}a node cannot refer to itself",
                "refer to a node that runs before this one",
            )
        elif index > scope.index:
            self.error(
                where,
                f"{shown}node '{name}' runs later ({self.nodes_key}[{index}])",
                f"move '{name}' before this node, or refer to an earlier node",
            )

    def _unknown_variable(self, where, name, shown):
        self.warn(
            where,
            f"{shown}: variable '{name}' is not defined in variables",
            _suggest(name, self.variables)
            + "add it to variables, or give it when running (options.variables, "
            "--var)",
        )

    def _unknown_input(self, where, name, scope, shown):
        asked = "this node or an earlier one" if scope.index is not None else "any node"
        self.warn(
            where,
            f"{shown}: input '{name}' is not asked for by {asked}",
            _suggest(name, scope.prompted)
            + "add it to userPrompts, or give it in advance (options.inputs, --input)",
        )

    def _path(self, where, path: str):
        try:
            paths.parse(path)
        except ValueError as exc:
            self.error(
                where,
                str(exc),
                "PATH looks like .a.b, .items[0].id, . or .list | length",
            )
            return
        text = path.strip()
        if text.startswith("."):
            return
        if text.startswith("$"):
            # flowrun reads a JSONPath-style root; FlowSphere does not.
            rest = text[1:]
            modern = rest if rest.startswith(".") else "." + rest
            self.warn(
                where,
                f"path '{path}' does not start with '.' (FlowSphere refuses it)",
                f"write {modern}",
            )
        else:
            self.error(where, f"path '{path}' must start with '.'", f"write .{text}")

    # -- validations and conditions -------------------------------------------------
    def _validations(self, where, validations: list, scope: _Scope):
        for j, spec in enumerate(validations):
            if not isinstance(spec, dict):
                continue
            at = (*where, j)
            kinds = [k for k in VALIDATION_KINDS if k in spec]
            if len(kinds) > 1:
                self.error(
                    at,
                    "one validation combines " + " and ".join(kinds),
                    "write one validation object per check",
                )
            kind = kinds[0] if kinds else None
            for key, value in spec.items():
                if key in VALIDATION_KINDS or key.startswith("_"):
                    continue
                if key not in OPERATORS:
                    self._unknown_operator((*at, key), key, VALIDATION_KINDS)
                elif kind is not None and kind not in OPERATOR_KINDS:
                    self.error(
                        (*at, key),
                        f"operator '{key}' does not apply to a {kind} validation",
                        "operators work with jsonpath, header and jq validations",
                    )
                else:
                    self._operator((*at, key), key, value, scope)
            if kind in OPERATOR_KINDS and not any(op in spec for op in OPERATORS):
                self.warn(
                    (*at, kind),
                    f"no operator: this {kind} validation checks that the value exists",
                    'say so with "exists": true (FlowSphere reads it the same way)',
                )
            if isinstance(spec.get("jsonpath"), str):
                self._path((*at, "jsonpath"), spec["jsonpath"])
            if isinstance(spec.get("jq"), str):
                problem = self.jq.problem(spec["jq"])
                if problem is not None:
                    self.error(
                        (*at, "jq"),
                        problem,
                        "check it with the jq command line, e.g. .items | length",
                    )
            if isinstance(spec.get("schema"), dict):
                self._json_schema((*at, "schema"), spec["schema"])

    def _json_schema(self, where, schema: dict):
        hint = "see https://json-schema.org/understanding-json-schema"
        if not isinstance(schema.get("$schema", ""), str):
            self.error((*where, "$schema"), "$schema must be a URL string", hint)
            return
        from flowrun.engine import schemas  # only flows with schema validations

        exc = schemas.schema_problem(schema)
        if exc is not None:
            self.error(
                (*where, *exc.path), f"not a valid JSON Schema: {exc.message}", hint
            )

    def _conditions(self, where, conditions: list, scope: _Scope):
        for j, cond in enumerate(conditions):
            if not isinstance(cond, dict):
                continue
            at = (*where, j)
            for key, value in cond.items():
                if key in CONDITION_KEYS or key in _OLD_NODE_KEYS or key[:1] == "_":
                    continue
                if key not in OPERATORS:
                    self._unknown_operator((*at, key), key, CONDITION_KEYS)
                else:
                    self._operator((*at, key), key, value, scope)
            if "httpStatusCode" in cond:
                self._text((*at, "httpStatusCode"), cond["httpStatusCode"], scope)
            if isinstance(cond.get("field"), str):
                self._path((*at, "field"), cond["field"])
            sources = [k for k in CONDITION_SOURCES if k in cond]
            if len(sources) > 1:
                self.error(
                    at,
                    "a condition tests one thing: it has "
                    + " and ".join(f"'{k}'" for k in sources),
                    "write one condition per node, variable or input (all must hold)",
                )
                continue
            if "response" in cond:
                self._old_response(at, cond["response"])
                continue
            source = cond.get("source") or (
                "node"
                if "node" in cond
                else "variable"
                if "variable" in cond
                else "input"
            )
            if source not in ("node", "variable", "input"):
                continue  # the schema reports it
            self._condition_test(at, cond, source)
            name = cond.get(source)
            if not isinstance(name, str):
                continue
            if source == "node":
                self._node_ref((*at, "node"), name, scope, "")
            elif source == "variable" and name not in self.variables:
                self._unknown_variable((*at, "variable"), name, f"variable '{name}'")
            elif source == "input" and name not in scope.prompted:
                self._unknown_input((*at, "input"), name, scope, f"input '{name}'")

    def _condition_test(self, at, cond: dict, source: str):
        """A condition must say what it tests (FlowSphere refuses it otherwise)."""
        if source == "node" and "httpStatusCode" in cond:
            return
        if source == "node" and "field" not in cond:
            self.error(
                at,
                "a node condition tests the node's httpStatusCode or a field",
                'e.g. {"node": "login", "httpStatusCode": 200} or {"node": '
                '"login", "field": ".token", "exists": true}',
            )
        elif not any(op in cond for op in OPERATORS):
            self.error(
                at,
                "the condition has no operator",
                "add one of: " + ", ".join(OPERATORS) + ' (e.g. "exists": true)',
            )

    def _old_response(self, at, index):
        """A ``response`` index normalising could not turn into a node."""
        count = len(self.nodes)
        self.error(
            (*at, "response"),
            f"'response': {json.dumps(index)} names no node (nodes are numbered 0 "
            f"to {count - 1})",
            'name the node by its id: "node": "ID"',
        )

    def _unknown_operator(self, where, key, structural):
        close = difflib.get_close_matches(key, (*OPERATORS, *structural), n=1)
        if close and close[0] in structural:
            self.error(
                where,
                f"unknown key '{key}'",
                f"did you mean {close[0]}? keys: " + ", ".join(structural),
            )
            return
        self.error(
            where,
            f"unknown operator '{key}'",
            _suggest(key, OPERATORS) + "valid operators: " + ", ".join(OPERATORS),
        )

    def _operator(self, where, op, value, scope):
        if op == "exists":
            if not isinstance(value, bool):
                self.error(
                    where,
                    f"exists must be true or false, not {json.dumps(value)}",
                    'write "exists": true (or false)',
                )
            return
        self._text(where, value, scope)
        placeholder = isinstance(value, str) and "{{" in value
        if op in NUMERIC_OPERATORS and not placeholder:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if isinstance(value, str):
                try:
                    float(value.strip())
                    number = True
                except ValueError:
                    pass
            if not number:
                self.error(
                    where,
                    f"{op} needs a number, not {json.dumps(value)}",
                    f'e.g. "{op}": 10',
                )
        elif op == "matches" and not placeholder:
            if not isinstance(value, str):
                self.error(
                    where,
                    f"matches needs a regular expression string, not "
                    f"{json.dumps(value)}",
                    'e.g. "matches": "^[a-z]+$"',
                )
                return
            try:
                compile_regex(value)
            except RegexError as exc:
                self.error(
                    where,
                    f"bad regular expression {value!r}: {exc}",
                    'escape special characters with \\\\ (in JSON), e.g. "\\\\d+"',
                )
