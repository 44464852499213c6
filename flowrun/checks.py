"""Validations (does the response pass?) and conditions (should the node run?)."""

from __future__ import annotations

import contextvars
import time
from functools import lru_cache

import jq
import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
import regex

from . import paths
from .errors import UnresolvedPlaceholder
from .placeholders import Context, substitute

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
    return jq.compile(program)


# `matches` runs patterns from the flow on response text; a pattern that
# backtracks catastrophically (`^(a+)+$`) would hold the worker, and every stream
# on it, for minutes. The regex library can stop a search after a time limit.
REGEX_TIMEOUT_S = 1.0
RegexError = regex.error


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
            out = compile_jq(program).input_value(body).all()
        except Exception as exc:  # jq raises ValueError for both compile and runtime
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
        validator = _bounded_patterns(cls)(schema, registry=_LOCAL_REFS)
        errors = validator.iter_errors(body)
        return jsonschema.exceptions.best_match(errors)
    finally:
        _pattern_budget.reset(token)


# A `$ref` resolves within the schema and to the standard meta-schemas only: by
# default jsonschema fetches any other URL with urllib, past the network guard and
# with no timeout.
_LOCAL_REFS = referencing.Registry()


# jsonschema runs `pattern` and `patternProperties` with Python's `re`, which holds
# the GIL (and so the gevent worker) for as long as a backtracking search lasts. The
# keywords below do what jsonschema's do, with the regex library and a time limit
# shared by all the searches of one validation: a schema applying a slow pattern to
# many values is bounded too. (`format: regex` only compiles, and only in
# check_schema: compiling does not backtrack.)
_pattern_budget: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "flowrun_pattern_budget", default=None
)


class PatternTimeout(Exception):
    """A schema pattern's search ran out of time."""

    def __init__(self, pattern: str, text: str):
        super().__init__(pattern)
        self.pattern = pattern
        self.text = text


def _search(pattern: str, text: str) -> bool:
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
        return rx.search(text, timeout=left) is not None
    except TimeoutError:
        raise PatternTimeout(pattern, text) from None
    finally:
        if budget is not None:
            budget[0] -= time.monotonic() - began


def _pattern(validator, patrn, instance, schema):
    if validator.is_type(instance, "string") and not _search(patrn, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for k, v in instance.items():
            if _search(pattern, k):
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


def _additional_properties(validator, ap, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    # jsonschema searches the patterns joined with "|": the same for any pattern
    # that is a regex on its own, and here a slow one can be named
    extras = {
        k
        for k in instance
        if k not in properties and not any(_search(p, k) for p in patterns)
    }
    if validator.is_type(ap, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], ap, path=extra)
    elif not ap and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            shown = ", ".join(repr(each) for each in sorted(patterns))
            error = f"{joined} {verb} not match any of the regexes: {shown}"
            yield jsonschema.ValidationError(error)
        else:
            shown = ", ".join(repr(each) for each in sorted(extras, key=str))
            verb = "was" if len(extras) == 1 else "were"
            yield jsonschema.ValidationError(
                f"Additional properties are not allowed ({shown} {verb} unexpected)"
            )


def _unevaluated_properties(validator, up, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    draft2019 = validator.VALIDATORS.get("$recursiveRef") is not None
    evaluated = _evaluated_keys(validator, instance, schema, draft2019)
    # a key is listed once per error, as jsonschema does
    unevaluated = [
        k
        for k in instance
        if k not in evaluated
        for _ in validator.descend(instance[k], up, path=k, schema_path=k)
    ]
    if unevaluated:
        if up is False:
            extras, tail = sorted(unevaluated, key=str), "unexpected"
            error = "Unevaluated properties are not allowed"
        else:
            extras, tail = unevaluated, "unevaluated and invalid"
            error = "Unevaluated properties are not valid under the given schema"
        shown = ", ".join(repr(each) for each in extras)
        verb = "was" if len(extras) == 1 else "were"
        yield jsonschema.ValidationError(f"{error} ({shown} {verb} {tail})")


def _valid(errors) -> bool:
    return next(errors, None) is None


def _evaluated_keys(validator, instance, schema, draft2019: bool) -> list:
    """The keys of ``instance`` that ``schema`` evaluates (for unevaluatedProperties).

    jsonschema 4.26's ``find_evaluated_property_keys_by_schema`` (and its draft
    2019-09 variant), with bounded pattern searches.
    """
    if validator.is_type(schema, "boolean"):
        return []
    keys: list = []
    resolver = validator._resolver
    targets = []
    if schema.get("$ref") is not None:
        targets.append(resolver.lookup(schema["$ref"]))
    if draft2019 and "$recursiveRef" in schema:
        targets.append(referencing.jsonschema.lookup_recursive_ref(resolver))
    if not draft2019 and schema.get("$dynamicRef") is not None:
        targets.append(resolver.lookup(schema["$dynamicRef"]))
    for resolved in targets:
        evolved = validator.evolve(
            schema=resolved.contents, _resolver=resolved.resolver
        )
        keys += _evaluated_keys(evolved, instance, resolved.contents, draft2019)

    if draft2019:
        for keyword in ("properties", "additionalProperties", "unevaluatedProperties"):
            value = schema.get(keyword)
            if value is True:
                keys += instance.keys()
            elif validator.is_type(value, "object"):
                keys += [k for k in value if k in instance]
    else:
        properties = schema.get("properties")
        if validator.is_type(properties, "object"):
            keys += properties.keys() & instance.keys()
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            if (sub := schema.get(keyword)) is not None:
                keys += [
                    k for k, v in instance.items() if _valid(validator.descend(v, sub))
                ]

    for k in instance if "patternProperties" in schema else ():
        keys += [k for p in schema["patternProperties"] if _search(p, k)]

    for k, sub in schema.get("dependentSchemas", {}).items():
        if k in instance:
            keys += _evaluated_keys(validator, instance, sub, draft2019)

    for keyword in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(keyword, []):
            if _valid(validator.descend(instance, sub)):
                keys += _evaluated_keys(validator, instance, sub, draft2019)

    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys += _evaluated_keys(validator, instance, schema["if"], draft2019)
            if "then" in schema:
                keys += _evaluated_keys(validator, instance, schema["then"], draft2019)
        elif "else" in schema:
            keys += _evaluated_keys(validator, instance, schema["else"], draft2019)
    return keys


@lru_cache(maxsize=16)
def _bounded_patterns(cls):
    """``cls`` with the keywords that search patterns replaced by bounded ones."""
    keywords = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "unevaluatedProperties": _unevaluated_properties,
    }
    return jsonschema.validators.extend(
        cls, {k: fn for k, fn in keywords.items() if k in cls.VALIDATORS}
    )


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
