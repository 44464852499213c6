"""Validations (does the response pass?) and conditions (should the node run?)."""

from __future__ import annotations

import contextvars
import time
from functools import lru_cache

import jq
import jsonschema
import referencing
import referencing.exceptions
import regex

from flowrun.engine import paths
from flowrun.engine.jq import JqTimeout, run_jq
from flowrun.engine.placeholders import Context, substitute
from flowrun.errors import UnresolvedPlaceholder

OPERATORS = (
    "exists",
    "equals",
    "notEquals",
    "greaterThan",
    "lessThan",
    "greaterThanOrEqual",
    "lessThanOrEqual",
    "contains",
    "matches",
)
NUMERIC = {
    "greaterThan": (">", lambda a, b: a > b),
    "lessThan": ("<", lambda a, b: a < b),
    "greaterThanOrEqual": (">=", lambda a, b: a >= b),
    "lessThanOrEqual": ("<=", lambda a, b: a <= b),
}
VALIDATION_KINDS = (
    "httpStatusCode",
    "jsonpath",
    "header",
    "jq",
    "schema",
    "maxDurationMs",
)
_ABSENT = object()


@lru_cache(maxsize=512)
def compile_jq(program: str):
    """Compile a jq program in-process (flow validation: compiling runs nothing)."""
    return jq.compile(program)


# `matches` runs patterns from the flow on response text; a pattern that
# backtracks catastrophically (`^(a+)+$`) would hold the worker, and every stream
# on it, for minutes. The regex library can stop a search after a time limit.
REGEX_TIMEOUT_S = 1.0
RegexError = regex.error

# A jq program from the flow can loop for ever (`last(range(1e9))`, `def f: f; f`),
# and jq holds the GIL while it runs: programs run in a helper process (jqrun),
# killed after this long.
JQ_TIMEOUT_S = 1.0


@lru_cache(maxsize=512)
def compile_regex(pattern: str):
    return regex.compile(pattern)


def _number(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        # Python's float() also reads "1_000", "nan" and "inf"; JSON numbers don't
        if "_" in text or not text[-1:].isdigit() and not text.endswith("."):
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _same(a, b) -> bool:
    """FlowSphere equality: equal JavaScript string forms.

    Objects are compared by content instead (their JavaScript string form is always
    ``[object Object]``, so any two objects would be "equal").
    """
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_same(a[k], b[k]) for k in a)
        )
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, list) or isinstance(b, list):
        if any(isinstance(v, dict) for v in (a if isinstance(a, list) else b)):
            return False
    return paths.js_str(a) == paths.js_str(b)


# A response body may be up to FLOWRUN_MAX_VALIDATE_BYTES: what a result quotes of it
# is cut, so step events and history stay bounded (the body itself is cut apart).
MAX_QUOTED = 200  # characters of a value quoted in a message
MAX_ACTUAL = 4096  # characters of a result's ``actual``


def _q(text: str) -> str:
    """``repr`` of a value's text for a message, cut after MAX_QUOTED characters."""
    if len(text) <= MAX_QUOTED:
        return repr(text)
    return f"{text[:MAX_QUOTED] + '…'!r} ({len(text)} characters)"


def _bounded(value):
    """A result's ``actual``: a value longer than MAX_ACTUAL as text becomes that
    text, cut, with its full length."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (dict, list)) and value:
        text = paths.text(value)
    else:
        return value
    if len(text) <= MAX_ACTUAL:
        return value
    return f"{text[:MAX_ACTUAL]}… ({len(text)} characters)"


def _shown(value) -> str:
    return paths.text(value) if isinstance(value, dict) else paths.js_str(value)


def compare(op: str, actual, expected) -> tuple[bool, str]:
    """Apply one operator; return ``(passed, message)``. ``actual`` may be _ABSENT."""
    present = actual is not _ABSENT
    if op == "exists":
        exists = present and actual is not None
        want = bool(expected)
        if exists == want:
            return True, "exists" if want else "does not exist"
        return False, "expected to exist, but it does not" if want else (
            f"expected not to exist, but got {_q(paths.text(actual))}"
        )
    if not present:
        return False, "not found"
    if op in ("equals", "notEquals"):
        same = _same(actual, expected)
        want, got = _shown(expected), _shown(actual)
        if op == "equals":
            if same:
                return True, f"equals {_q(want)}"
            return False, f"expected {_q(want)}, got {_q(got)}"
        if not same:
            return True, f"not equal to {_q(want)}"
        return False, f"should not equal {_q(want)}, but it does"
    if op in NUMERIC:
        symbol, fn = NUMERIC[op]
        a, b = _number(actual), _number(expected)
        if a is None:
            return False, f"expected a number, got {_q(paths.text(actual))}"
        if b is None:
            return False, f"expected value {_q(paths.text(expected))} is not a number"
        if fn(a, b):
            return True, f"{paths.js_str(a)} {symbol} {paths.js_str(b)}"
        return False, f"expected {symbol} {paths.js_str(b)}, got {paths.js_str(a)}"
    if op == "contains":
        if isinstance(actual, list):
            ok = any(paths.js_str(v) == paths.js_str(expected) for v in actual)
        elif isinstance(actual, dict):
            ok = paths.js_str(expected) in actual
        else:
            ok = paths.js_str(expected) in paths.text(actual)
        if ok:
            return True, f"contains {_q(paths.text(expected))}"
        return False, f"expected to contain {_q(paths.text(expected))}"
    if op == "matches":
        try:
            rx = compile_regex(str(expected))
        except RegexError as exc:
            return False, f"bad regex {expected!r}: {exc}"
        try:
            found = rx.search(paths.text(actual), timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            return False, (
                f"/{expected}/ gave up after {REGEX_TIMEOUT_S:g}s on this value "
                "(a pattern that backtracks heavily, like (a+)+$?)"
            )
        if found:
            return True, f"matches /{expected}/"
        return False, f"expected to match /{expected}/, got {_q(paths.text(actual))}"
    return False, f"unknown operator '{op}'"


def _operators(spec: dict) -> list[str]:
    ops = [k for k in OPERATORS if k in spec]
    return ops or ["exists"]


def _expected(spec: dict, op: str, ctx: Context):
    if op not in spec:
        return True  # implicit `exists: true`
    return substitute(spec[op], ctx, op, None)


def _operator_results(kind, path, actual, spec, ctx) -> list[dict]:
    out = []
    for op in _operators(spec):
        expected = _expected(spec, op, ctx)
        passed, message = compare(op, actual, expected)
        out.append(
            {
                "type": kind,
                "path": path,
                "operator": op,
                "expected": _bounded(expected),
                "actual": None if actual is _ABSENT else _bounded(actual),
                "passed": passed,
                "message": f"{path}: {message}",
            }
        )
    return out


def validate_response(
    validations: list[dict],
    *,
    status: int,
    headers: dict,
    body,
    duration_ms: float,
    ctx: Context,
) -> list[dict]:
    """Run every validation against a response and return all results."""
    results: list[dict] = []
    for spec in validations:
        try:
            results.extend(_validate_one(spec, status, headers, body, duration_ms, ctx))
        except UnresolvedPlaceholder as exc:
            results.append(
                {"type": _kind_of(spec), "passed": False, "message": str(exc)}
            )
    return results


def _kind_of(spec: dict) -> str:
    return next((k for k in VALIDATION_KINDS if k in spec), "unknown")


def _validate_one(spec, status, headers, body, duration_ms, ctx):
    kind = _kind_of(spec)
    if kind == "httpStatusCode":
        expected = substitute(spec["httpStatusCode"], ctx, kind, None)
        allowed = expected if isinstance(expected, list) else [expected]
        passed = any(str(status) == paths.js_str(c) for c in allowed)
        shown = " or ".join(paths.js_str(c) for c in allowed)
        return [
            {
                "type": kind,
                "expected": expected,
                "actual": status,
                "passed": passed,
                "message": f"status {status}"
                + ("" if passed else f", expected {shown}"),
            }
        ]
    if kind == "jsonpath":
        path = spec["jsonpath"]
        try:
            actual = paths.resolve(body, path)
        except paths.Missing:
            actual = _ABSENT
        except paths.PathSyntaxError as exc:
            return [{"type": kind, "path": path, "passed": False, "message": str(exc)}]
        return _operator_results(kind, path, actual, spec, ctx)
    if kind == "header":
        name = spec["header"]
        actual = headers.get(name.lower(), _ABSENT)
        return _operator_results(kind, name, actual, spec, ctx)
    if kind == "jq":
        program = spec["jq"]
        try:
            out = run_jq(program, body, timeout=JQ_TIMEOUT_S)
        except JqTimeout:
            return [
                {
                    "type": kind,
                    "path": program,
                    "passed": False,
                    "message": f"jq {program!r} gave up after {JQ_TIMEOUT_S:g}s "
                    "(the time limit for a jq program)",
                }
            ]
        except Exception as exc:  # jq's message for both compile and runtime errors
            return [
                {
                    "type": kind,
                    "path": program,
                    "passed": False,
                    "message": f"jq {program!r}: {exc}",
                }
            ]
        actual = _ABSENT if not out else out[0] if len(out) == 1 else out
        return _operator_results(kind, program, actual, spec, ctx)
    if kind == "schema":
        try:
            error = _schema_error(spec["schema"], body)
        except referencing.exceptions.Unresolvable as exc:
            return [
                {
                    "type": kind,
                    "expected": spec["schema"],
                    "passed": False,
                    "message": f"schema: cannot resolve $ref {exc.ref!r} (only "
                    "references within the schema are followed)",
                }
            ]
        except PatternTimeout as exc:
            return [
                {
                    "type": kind,
                    "expected": spec["schema"],
                    "passed": False,
                    "message": (
                        f"schema: /{exc.pattern}/ gave up after {REGEX_TIMEOUT_S:g}s "
                        "(the time limit for all the schema's patterns together) "
                        f"on {_q(exc.text)} (a pattern that backtracks heavily, "
                        "like (a+)+$?)"
                    ),
                }
            ]
        except jsonschema.exceptions.SchemaError as exc:
            return [
                {
                    "type": kind,
                    "expected": spec["schema"],
                    "passed": False,
                    "message": f"invalid schema: {exc.message}",
                }
            ]
        if error is None:
            message = "body matches the schema"
        else:
            where = paths.render(list(error.absolute_path))
            detail = error.message  # quotes the failing value, which may be huge
            if len(detail) > 2 * MAX_QUOTED:
                detail = f"{detail[: 2 * MAX_QUOTED]}… ({len(detail)} characters)"
            message = f"schema: {detail} at {where}"
        return [
            {
                "type": kind,
                "expected": spec["schema"],
                "passed": error is None,
                "message": message,
            }
        ]
    if kind == "maxDurationMs":
        limit = substitute(spec["maxDurationMs"], ctx, kind, None)
        number = _number(limit)
        passed = number is not None and duration_ms <= number
        return [
            {
                "type": kind,
                "expected": limit,
                "actual": round(duration_ms, 1),
                "passed": passed,
                "message": f"took {duration_ms:.0f} ms"
                + ("" if passed else f", limit {limit} ms"),
            }
        ]
    return [
        {"type": "unknown", "passed": False, "message": f"unknown validation {spec}"}
    ]


def _schema_error(schema, body):
    """The most relevant schema violation of ``body``, or None.

    Raises PatternTimeout when the schema's patterns use up REGEX_TIMEOUT_S.
    """
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    token = _pattern_budget.set([REGEX_TIMEOUT_S])
    try:
        _bound_jsonschema_patterns()
        validator = cls(schema, registry=_LOCAL_REFS)
        errors = validator.iter_errors(body)
        return jsonschema.exceptions.best_match(errors)
    finally:
        _pattern_budget.reset(token)


# A `$ref` resolves within the schema and to the standard meta-schemas only: by
# default jsonschema fetches any other URL with urllib, past the network guard and
# with no timeout.
_LOCAL_REFS = referencing.Registry()


# jsonschema searches the patterns of `pattern`, `patternProperties`,
# `additionalProperties` and `unevaluatedProperties` with Python's `re`, which holds
# the GIL (and so the gevent worker) for as long as a backtracking search lasts.
# Its keyword modules use `re` only as `re.search(pattern, text)`; they are given
# `_BoundedRe` instead, whose search is the regex library's with a time limit
# shared by all the searches of one validation (a schema applying a slow pattern
# to many values is bounded too). `format: regex` only compiles patterns (in
# check_schema), which does not backtrack.
_pattern_budget: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "flowrun_pattern_budget", default=None
)


class PatternTimeout(Exception):
    """A schema pattern's search ran out of time."""

    def __init__(self, pattern: str, text: str):
        super().__init__(pattern)
        self.pattern = pattern
        self.text = text


def _search(pattern: str, text: str):
    """``re.search(pattern, text)`` with the regex library, within the budget."""
    budget = _pattern_budget.get()
    left = REGEX_TIMEOUT_S if budget is None else budget[0]
    if left <= 0:
        raise PatternTimeout(pattern, text)
    try:
        rx = compile_regex(pattern)
    except RegexError as exc:
        # `re` accepted it (check_schema compiles patterns); `regex` does not
        raise jsonschema.exceptions.SchemaError(
            f"bad regex {pattern!r}: {exc}"
        ) from None
    began = time.monotonic()
    try:
        return rx.search(text, timeout=left)
    except TimeoutError:
        raise PatternTimeout(pattern, text) from None
    finally:
        if budget is not None:
            budget[0] -= time.monotonic() - began


class _BoundedRe:
    """``re`` as jsonschema's keyword modules see it: a bounded ``search``."""

    def __init__(self, re_module):
        self._re = re_module

    def search(self, pattern, string, flags=0):
        if flags:
            return self._re.search(pattern, string, flags)
        return _search(pattern, string)

    def __getattr__(self, name):
        return getattr(self._re, name)


_KEYWORD_MODULES = ("_keywords", "_legacy_keywords", "_utils")


def _bound_jsonschema_patterns() -> None:
    """Give jsonschema's keyword modules the bounded ``re`` (once per process)."""
    import importlib

    for name in _KEYWORD_MODULES:
        module = importlib.import_module(f"jsonschema.{name}")
        if not isinstance(getattr(module, "re", None), _BoundedRe):
            module.re = _BoundedRe(module.re)


def condition_holds(cond: dict, ctx: Context) -> tuple[bool, str]:
    """Evaluate one condition; return ``(holds, reason)``."""
    source = cond.get("source") or (
        "node" if "node" in cond else "variable" if "variable" in cond else "input"
    )
    try:
        if source == "node":
            node_id = cond.get("node")
            result = ctx.results.get(node_id)
            if result is None:
                if node_id not in ctx.node_ids:
                    return False, f"node '{node_id}' does not exist"
                return False, f"node '{node_id}' has not run"
            if result.status == "skipped":
                return False, f"node '{node_id}' was skipped"
            code = cond.get("httpStatusCode", cond.get("statusCode"))
            if code is not None:
                expected = substitute(code, ctx, "httpStatusCode", None)
                if paths.js_str(result.http_status) == paths.js_str(expected):
                    return True, ""
                return False, (
                    f"node '{node_id}' HTTP status: expected {paths.js_str(expected)}, "
                    f"got {result.http_status}"
                )
            what = f"node '{node_id}' field {cond.get('field', '.')}"
            actual = _maybe(result.body, cond.get("field", "."))
        else:
            key = "variable" if source == "variable" else "input"
            name = cond.get(key)
            pool = ctx.vars if source == "variable" else ctx.inputs
            what = f"{'variable' if source == 'variable' else 'input'} '{name}'"
            actual = pool.get(name, _ABSENT)
            if actual is not _ABSENT and cond.get("field"):
                actual = _maybe(actual, cond["field"])
        for op in _operators(cond):
            passed, message = compare(op, actual, _expected(cond, op, ctx))
            if not passed:
                return False, f"{what}: {message}"
        return True, ""
    except (UnresolvedPlaceholder, paths.PathSyntaxError) as exc:
        return False, str(exc)


def _maybe(value, path):
    try:
        return paths.resolve(value, path)
    except paths.Missing:
        return _ABSENT
