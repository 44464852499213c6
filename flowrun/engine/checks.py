"""Validations (does the response pass?) and conditions (should the node run?)."""

from __future__ import annotations

from typing import NamedTuple

from flowrun.engine import paths
from flowrun.engine.budget import Budget, RegexError, compile_regex
from flowrun.engine.jq import JqFailure, JqTimeout, run_jq
from flowrun.engine.placeholders import Context, substitute
from flowrun.errors import BudgetExceeded, RequestTooLarge, UnresolvedPlaceholder

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
VALIDATION_KINDS = (
    "httpStatusCode",
    "jsonpath",
    "header",
    "jq",
    "schema",
    "maxDurationMs",
)
_ABSENT = object()
# `matches` patterns, schemas and jq programs come from the flow and run on
# response bodies: each may take as long as the step's budget leaves it
# (flowrun.engine.budget), and no longer.
BACKTRACKS = "a pattern that backtracks heavily, like (a+)+$?"


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


def compare(op: str, actual, expected, budget: Budget | None = None):
    """Apply one operator; return ``(passed, message)``. ``actual`` may be _ABSENT.

    ``matches`` searches within ``budget`` (a fresh one if None) and raises
    BudgetExceeded when the budget ends before the search does.
    """
    check = _COMPARE.get(op)
    if check is None:
        return False, f"unknown operator '{op}'"
    if actual is _ABSENT and op != "exists":
        return False, "not found"
    return check(actual, expected, budget)


def _exists(actual, expected, budget):
    exists = actual is not _ABSENT and actual is not None
    want = bool(expected)
    if exists == want:
        return True, "exists" if want else "does not exist"
    if want:
        return False, "expected to exist, but it does not"
    return False, f"expected not to exist, but got {_q(paths.text(actual))}"


def _equals(actual, expected, budget):
    want = _shown(expected)
    if _same(actual, expected):
        return True, f"equals {_q(want)}"
    return False, f"expected {_q(want)}, got {_q(_shown(actual))}"


def _not_equals(actual, expected, budget):
    want = _shown(expected)
    if not _same(actual, expected):
        return True, f"not equal to {_q(want)}"
    return False, f"should not equal {_q(want)}, but it does"


def _numeric(symbol: str, holds):
    def check(actual, expected, budget):
        a, b = _number(actual), _number(expected)
        if a is None:
            return False, f"expected a number, got {_q(paths.text(actual))}"
        if b is None:
            return False, f"expected value {_q(paths.text(expected))} is not a number"
        if holds(a, b):
            return True, f"{paths.js_str(a)} {symbol} {paths.js_str(b)}"
        return False, f"expected {symbol} {paths.js_str(b)}, got {paths.js_str(a)}"

    return check


def _contains(actual, expected, budget):
    if isinstance(actual, list):
        ok = any(paths.js_str(v) == paths.js_str(expected) for v in actual)
    elif isinstance(actual, dict):
        ok = paths.js_str(expected) in actual
    else:
        ok = paths.js_str(expected) in paths.text(actual)
    if ok:
        return True, f"contains {_q(paths.text(expected))}"
    return False, f"expected to contain {_q(paths.text(expected))}"


def _matches(actual, expected, budget):
    try:
        rx = compile_regex(str(expected))
    except RegexError as exc:
        return False, f"bad regex {expected!r}: {exc}"
    budget = budget or Budget()
    try:
        found = budget.search(rx, paths.text(actual))
    except BudgetExceeded:
        raise budget.exceeded(
            f"/{expected}/ gave up on this value ({BACKTRACKS})"
        ) from None
    if found:
        return True, f"matches /{expected}/"
    return False, f"expected to match /{expected}/, got {_q(paths.text(actual))}"


_COMPARE = {
    "exists": _exists,
    "equals": _equals,
    "notEquals": _not_equals,
    "greaterThan": _numeric(">", lambda a, b: a > b),
    "lessThan": _numeric("<", lambda a, b: a < b),
    "greaterThanOrEqual": _numeric(">=", lambda a, b: a >= b),
    "lessThanOrEqual": _numeric("<=", lambda a, b: a <= b),
    "contains": _contains,
    "matches": _matches,
}


def _operators(spec: dict) -> list[str]:
    ops = [k for k in OPERATORS if k in spec]
    return ops or ["exists"]


def _expected(spec: dict, op: str, ctx: Context):
    if op not in spec:
        return True  # implicit `exists: true`
    return substitute(spec[op], ctx, op, None)


def _operator_results(kind, path, actual, spec, ctx) -> list[dict]:
    """One result per operator; the one the budget ran out in is the last."""
    out = []
    for op in _operators(spec):
        expected = _expected(spec, op, ctx)
        try:
            passed, message = compare(op, actual, expected, ctx.budget)
        except BudgetExceeded as exc:
            passed, message = False, str(exc)
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
        if ctx.budget.out:
            break
    return out


class Response(NamedTuple):
    """What validations look at."""

    status: int
    headers: dict  # lower-cased names
    body: object
    duration_ms: float


def validate_response(
    validations: list[dict],
    *,
    status: int,
    headers: dict,
    body,
    duration_ms: float,
    ctx: Context,
) -> list[dict]:
    """Run every validation against a response and return all results.

    Within the step's budget (``ctx.budget``): once it is used up, the result
    that ran out says so and the validations after it are not run.
    """
    response = Response(status, headers, body, duration_ms)
    results: list[dict] = []
    with ctx.budget as budget:
        for spec in validations:
            kind = _kind_of(spec)
            try:
                budget.tick()  # the costly kinds check the budget themselves
                results.extend(_KINDS.get(kind, _unknown)(spec, response, ctx))
            except (UnresolvedPlaceholder, RequestTooLarge) as exc:
                results.append({"type": kind, "passed": False, "message": str(exc)})
            except BudgetExceeded as exc:
                results.append({"type": kind, "passed": False, "message": str(exc)})
            if budget.out:
                break
    return results


def _kind_of(spec: dict) -> str:
    for kind in VALIDATION_KINDS:
        if kind in spec:
            return kind
    return "unknown"


def _status(spec: dict, response: Response, ctx: Context) -> list[dict]:
    status = response.status
    expected = substitute(spec["httpStatusCode"], ctx, "httpStatusCode", None)
    allowed = expected if isinstance(expected, list) else [expected]
    passed = any(str(status) == paths.js_str(c) for c in allowed)
    shown = " or ".join(paths.js_str(c) for c in allowed)
    message = f"status {status}" + ("" if passed else f", expected {shown}")
    return [
        {
            "type": "httpStatusCode",
            "expected": expected,
            "actual": status,
            "passed": passed,
            "message": message,
        }
    ]


def _jsonpath(spec: dict, response: Response, ctx: Context) -> list[dict]:
    path = spec["jsonpath"]
    try:
        actual = paths.resolve(response.body, path)
    except paths.Missing:
        actual = _ABSENT
    except paths.PathSyntaxError as exc:
        return [
            {"type": "jsonpath", "path": path, "passed": False, "message": str(exc)}
        ]
    return _operator_results("jsonpath", path, actual, spec, ctx)


def _header(spec: dict, response: Response, ctx: Context) -> list[dict]:
    name = spec["header"]
    actual = response.headers.get(name.lower(), _ABSENT)
    return _operator_results("header", name, actual, spec, ctx)


def _jq(spec: dict, response: Response, ctx: Context) -> list[dict]:
    program = spec["jq"]
    try:
        out = run_jq(program, response.body, budget=ctx.budget)
    except JqTimeout:
        message = str(ctx.budget.exceeded(f"jq {program!r} gave up"))
    except JqFailure as exc:  # jq's message for compile and runtime errors
        message = f"jq {program!r}: {exc}"
    else:
        actual = _ABSENT if not out else out[0] if len(out) == 1 else out
        return _operator_results("jq", program, actual, spec, ctx)
    return [{"type": "jq", "path": program, "passed": False, "message": message}]


def _schema(spec: dict, response: Response, ctx: Context) -> list[dict]:
    # Imported here: only flows with schema validations need jsonschema (a short
    # CLI run of other flows never loads it).
    import jsonschema
    import referencing.exceptions

    from flowrun.engine import schemas

    schema = spec["schema"]
    try:
        error = schemas.first_error(schema, response.body, ctx.budget)
    except referencing.exceptions.Unresolvable as exc:
        message = (
            f"schema: cannot resolve $ref {exc.ref!r} (only references within the "
            "schema are followed)"
        )
    except schemas.PatternGaveUp as exc:
        message = (
            f"schema: /{exc.pattern}/ gave up on {_q(exc.text)}: {exc} ({BACKTRACKS})"
        )
    except BudgetExceeded as exc:
        message = f"schema: {exc}"
    except schemas.TooDeep:
        message = (
            f"schema: references followed more than {schemas.MAX_REF_DEPTH} levels "
            "deep (a recursive schema on a body nested that deeply)"
        )
    except jsonschema.exceptions.SchemaError as exc:
        message = f"invalid schema: {exc.message}"
    else:
        if error is None:
            message = "body matches the schema"
        else:
            where = paths.render(list(error.absolute_path))
            detail = error.message  # quotes the failing value, which may be huge
            if len(detail) > 2 * MAX_QUOTED:
                detail = f"{detail[: 2 * MAX_QUOTED]}… ({len(detail)} characters)"
            message = f"schema: {detail} at {where}"
        passed = error is None
        return [
            {"type": "schema", "expected": schema, "passed": passed, "message": message}
        ]
    return [{"type": "schema", "expected": schema, "passed": False, "message": message}]


def _duration(spec: dict, response: Response, ctx: Context) -> list[dict]:
    limit = substitute(spec["maxDurationMs"], ctx, "maxDurationMs", None)
    number = _number(limit)
    took = response.duration_ms
    passed = number is not None and took <= number
    return [
        {
            "type": "maxDurationMs",
            "expected": limit,
            "actual": round(took, 1),
            "passed": passed,
            "message": f"took {took:.0f} ms"
            + ("" if passed else f", limit {limit} ms"),
        }
    ]


def _unknown(spec: dict, response: Response, ctx: Context) -> list[dict]:
    return [
        {"type": "unknown", "passed": False, "message": f"unknown validation {spec}"}
    ]


_KINDS = {
    "httpStatusCode": _status,
    "jsonpath": _jsonpath,
    "header": _header,
    "jq": _jq,
    "schema": _schema,
    "maxDurationMs": _duration,
}


def condition_holds(cond: dict, ctx: Context) -> tuple[bool, str]:
    """Evaluate one condition; return ``(holds, reason)``.

    Within the step's budget (``ctx.budget``): BudgetExceeded once it is used up.
    """
    with ctx.budget as budget:
        budget.check()
        return _holds(cond, ctx)


def _holds(cond: dict, ctx: Context) -> tuple[bool, str]:
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
            expected = _expected(cond, op, ctx)
            passed, message = compare(op, actual, expected, ctx.budget)
            if not passed:
                return False, f"{what}: {message}"
        return True, ""
    except (UnresolvedPlaceholder, RequestTooLarge, paths.PathSyntaxError) as exc:
        return False, str(exc)


def _maybe(value, path):
    try:
        return paths.resolve(value, path)
    except paths.Missing:
        return _ABSENT
