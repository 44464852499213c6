"""JSON Schema checks of response bodies, bounded in time and in depth.

A ``schema`` validation applies a schema from the flow to a body from the target,
and either can be made to take for ever. jsonschema's validator classes are
extended (``jsonschema.validators.extend``) so that:

- ``pattern`` and ``patternProperties``, and the pattern look-ups of
  ``additionalProperties`` and ``unevaluatedProperties``, search with the ``regex``
  library within the step's budget (a search in Python's ``re`` cannot be stopped);
- ``uniqueItems`` hashes each item once, where jsonschema compares every pair of
  items that cannot be sorted (objects);
- ``$ref``, ``$dynamicRef`` and ``$recursiveRef`` nest at most MAX_REF_DEPTH deep:
  a recursive schema on a deeply nested body fails with a message, not with
  Python's RecursionError;
- every keyword is a checkpoint of the step's budget, so a long check ends when
  the budget does, and gives other greenlets a turn meanwhile.

The classes are registered for their drafts (``jsonschema.validators.validates``),
so a subschema, or a referenced meta-schema, that names its draft in ``$schema`` is
checked by them too. Outside ``first_error``/``schema_problem`` they behave as
jsonschema's own (with no time limit). A ``$ref`` resolves within the schema and
to the standard meta-schemas only.
"""

from __future__ import annotations

import functools
import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import jsonschema
import referencing
from jsonschema import validators
from jsonschema.exceptions import SchemaError, ValidationError

from flowrun.engine.budget import (
    MAX_PATTERN_CHARS,
    Budget,
    RegexError,
    compile_regex,
)
from flowrun.errors import BudgetExceeded

# By default jsonschema fetches any other URL with urllib, past the network guard
# and with no timeout.
_LOCAL_REFS = referencing.Registry()

# Each level of a recursive schema takes some five Python frames; Python stops at
# 1,000, and a request handler has used some already.
MAX_REF_DEPTH = 100
_REFS = ("$ref", "$dynamicRef", "$recursiveRef")


class TooDeep(Exception):
    """The schema's references nested deeper than MAX_REF_DEPTH."""


class PatternGaveUp(BudgetExceeded):
    """A pattern's search was running when the step's budget ran out."""

    def __init__(self, exceeded: BudgetExceeded, pattern: str, text: str):
        super().__init__(str(exceeded))
        self.pattern = pattern
        self.text = text


@dataclass
class _Check:
    """The budget and state of the schema check running in this greenlet."""

    budget: Budget
    depth: int = 0  # references being followed
    probe: dict | None = None  # see _target()


_CHECK: ContextVar[_Check | None] = ContextVar("flowrun_schema_check", default=None)


def first_error(schema: dict, body, budget: Budget) -> ValidationError | None:
    """The most relevant violation of ``schema`` by ``body``, or None.

    Raises SchemaError (not a valid schema), referencing's Unresolvable (a
    ``$ref`` to elsewhere), BudgetExceeded (PatternGaveUp when a pattern was
    searching) or TooDeep.
    """
    cls = validator_class(schema)
    _refuse_long_patterns(schema)
    with _checking(budget):
        cls.check_schema(schema)
        errors = cls(schema, registry=_LOCAL_REFS).iter_errors(body)
        return jsonschema.exceptions.best_match(errors)


def schema_problem(schema: dict) -> SchemaError | None:
    """What makes ``schema`` not a valid JSON Schema (jsonschema's verdict), or None.

    For flow validation: no time limit (the document's size bounds the work), but
    a turn for other greenlets now and then, and the depth bound.
    """
    cls = validator_class(schema)
    try:
        _refuse_long_patterns(schema)
        with _checking(Budget(math.inf)):
            cls.check_schema(schema)
    except SchemaError as exc:
        return exc
    except TooDeep:
        return SchemaError(f"nested more than {MAX_REF_DEPTH} levels deep")
    return None


def validator_class(schema: dict):
    """The bounded class for the draft ``schema`` names (2020-12 by default)."""
    return validators.validator_for(schema, default=_classes()[-1])


@contextmanager
def _checking(budget: Budget):
    """Run a check in this greenlet with ``budget``."""
    token = _CHECK.set(_Check(budget))
    try:
        with budget:
            yield
    except RecursionError:
        # The depth bound holds for references; this is the backstop for whatever
        # else nests (a body nested thousands of levels deep).
        raise TooDeep() from None
    finally:
        _CHECK.reset(token)


def _refuse_long_patterns(schema) -> None:
    """SchemaError for a pattern longer than MAX_PATTERN_CHARS.

    Checked before jsonschema's own check of the schema, which compiles every
    pattern with Python's ``re`` (as slow to compile as ``regex``).
    """
    stack = [schema]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
            patterns = value.get("patternProperties")
            patterns = list(patterns) if isinstance(patterns, dict) else []
            if isinstance(value.get("pattern"), str):
                patterns.append(value["pattern"])
            for pattern in patterns:
                if len(pattern) > MAX_PATTERN_CHARS:
                    raise SchemaError(
                        f"a pattern of {len(pattern)} characters, more than the "
                        f"{MAX_PATTERN_CHARS} allowed"
                    )


def _found(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, within the budget."""
    try:
        rx = compile_regex(pattern)
    except RegexError as exc:
        # `re` accepted it (check_schema compiles patterns); `regex` does not
        raise SchemaError(f"bad regex {pattern!r}: {exc}") from None
    check = _CHECK.get()
    if check is None:
        return rx.search(text) is not None
    try:
        return check.budget.search(rx, text) is not None
    except BudgetExceeded as exc:
        raise PatternGaveUp(exc, pattern, text) from None


# -- keywords -------------------------------------------------------------------
# Each does what jsonschema's keyword of the same name does (same errors, same
# messages), bounded as the module docstring says.


def _pattern(validator, patrn, instance, schema):
    if validator.is_type(instance, "string") and not _found(patrn, instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator, patternProperties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patternProperties.items():
        for k, v in instance.items():
            if _found(pattern, k):
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


def _additional_properties(validator, aP, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    extras = set(_additional(instance, schema))
    if validator.is_type(aP, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], aP, path=extra)
    elif not aP and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(
                repr(each) for each in sorted(schema["patternProperties"])
            )
            yield ValidationError(
                f"{joined} {verb} not match any of the regexes: {patterns}"
            )
        else:
            error = "Additional properties are not allowed (%s %s unexpected)"
            yield ValidationError(error % _extras_msg(sorted(extras, key=str)))


def _additional(instance: dict, schema: dict):
    """The properties that neither ``properties`` nor ``patternProperties`` name."""
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    for name in instance:
        if name not in properties and not any(_found(p, name) for p in patterns):
            yield name


def _unevaluated_properties(legacy: bool):
    """``unevaluatedProperties``: draft 2020-12's, or 2019-09's if ``legacy``."""

    def keyword(validator, uP, instance, schema):
        if not validator.is_type(instance, "object"):
            return
        evaluated = _evaluated_keys(validator, instance, schema, legacy)
        unevaluated = []
        for name in instance:
            if name not in evaluated:
                # once per error, as jsonschema counts them
                for _ in validator.descend(
                    instance[name], uP, path=name, schema_path=name
                ):
                    unevaluated.append(name)
        if not unevaluated:
            return
        if uP is False:
            error = "Unevaluated properties are not allowed (%s %s unexpected)"
            extras = sorted(unevaluated, key=str)
            yield ValidationError(error % _extras_msg(extras))
        else:
            error = (
                "Unevaluated properties are not valid under "
                "the given schema (%s %s unevaluated and invalid)"
            )
            yield ValidationError(error % _extras_msg(unevaluated))

    return keyword


def _evaluated_keys(validator, instance: dict, schema, legacy: bool) -> list:
    """The properties of ``instance`` that ``schema`` evaluates, as jsonschema
    finds them for ``unevaluatedProperties`` (its rules, draft by draft)."""
    if validator.is_type(schema, "boolean"):
        return []
    keys: list = []
    for name in _REFS:
        if schema.get(name) is not None:
            found = _target(validator, name, schema[name], instance)
            if found is not None:
                keys += _evaluated_keys(found[0], instance, found[1], legacy)
    if legacy:
        for keyword in ("properties", "additionalProperties", "unevaluatedProperties"):
            value = schema.get(keyword)
            if validator.is_type(value, "boolean") and value:
                keys += instance.keys()
            elif validator.is_type(value, "object"):
                keys += [name for name in value if name in instance]
    else:
        properties = schema.get("properties")
        if validator.is_type(properties, "object"):
            keys += properties.keys() & instance.keys()
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            if (subschema := schema.get(keyword)) is not None:
                keys += [
                    name
                    for name, value in instance.items()
                    if next(validator.descend(value, subschema), None) is None
                ]
    for pattern in schema.get("patternProperties", ()):
        keys += [name for name in instance if _found(pattern, name)]
    for name, subschema in schema.get("dependentSchemas", {}).items():
        if name in instance:
            keys += _evaluated_keys(validator, instance, subschema, legacy)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, ()):
            if next(validator.descend(instance, subschema), None) is None:
                keys += _evaluated_keys(validator, instance, subschema, legacy)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys += _evaluated_keys(validator, instance, schema["if"], legacy)
            if "then" in schema:
                keys += _evaluated_keys(validator, instance, schema["then"], legacy)
        elif "else" in schema:
            keys += _evaluated_keys(validator, instance, schema["else"], legacy)
    return keys


class _Found(Exception):
    def __init__(self, validator, schema):
        self.validator = validator
        self.schema = schema


def _target(validator, keyword: str, ref, instance):
    """``(validator, schema)`` where the reference ``{keyword: ref}`` leads, or None
    if that schema has no keywords (it evaluates nothing).

    The reference is followed by jsonschema itself (its scope, base URI and
    dynamic scope as at this point of the check): the check descends into
    ``{keyword: ref}``, and the first keyword called beyond it reports the
    validator and schema it was called with (``_checkpoint``) and stops there.
    """
    check = _CHECK.get()
    if check is None:  # a check outside first_error(): no time limit
        with _checking(Budget(math.inf)):
            return _target(validator, keyword, ref, instance)
    probe = {keyword: ref}
    outer, check.probe = check.probe, probe
    try:
        for _ in validator.descend(instance, probe):
            break
    except _Found as found:
        return found.validator, found.schema
    finally:
        check.probe = outer
    return None


def _bounded_ref(keyword):
    """A reference keyword that nests at most MAX_REF_DEPTH deep."""

    def ref(validator, value, instance, schema):
        check = _CHECK.get()
        if check is None:
            yield from keyword(validator, value, instance, schema)
            return
        if check.depth >= MAX_REF_DEPTH:
            raise TooDeep()
        check.depth += 1
        try:
            yield from keyword(validator, value, instance, schema)
        finally:
            check.depth -= 1

    return ref


def _unique_items(validator, uI, instance, schema):
    if uI and validator.is_type(instance, "array") and not _distinct(instance):
        yield ValidationError(f"{instance!r} has non-unique elements")


def _distinct(items: list) -> bool:
    """Whether no two items are equal as JSON Schema compares (1 == 1.0,
    true != 1, objects by content): one hashable stand-in per item."""
    check = _CHECK.get()
    tick = check.budget.tick if check is not None else _nothing
    seen = set()
    for item in items:
        key = _key(item, tick)
        if key in seen:
            return False
        seen.add(key)
    return True


# Python has True == 1: booleans get stand-ins of their own.
_TRUE, _FALSE = object(), object()


def _key(value, tick):
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if isinstance(value, list):
        tick()
        return tuple(_key(v, tick) for v in value)
    if isinstance(value, dict):
        tick()
        return frozenset((k, _key(v, tick)) for k, v in value.items())
    return value


def _nothing() -> None:
    pass


def _extras_msg(extras) -> tuple[str, str]:
    verb = "was" if len(extras) == 1 else "were"
    return ", ".join(repr(extra) for extra in extras), verb


def _checkpoint(keyword):
    """``keyword``, called at a checkpoint of the budget (see ``_target`` too)."""

    def checked(validator, value, instance, schema):
        check = _CHECK.get()
        if check is not None:
            if check.probe is not None and schema is not check.probe:
                raise _Found(validator, schema)
            check.budget.tick()
        return keyword(validator, value, instance, schema)

    return checked


_STOCK = {
    "draft3": validators.Draft3Validator,
    "draft4": validators.Draft4Validator,
    "draft6": validators.Draft6Validator,
    "draft7": validators.Draft7Validator,
    "draft2019-09": validators.Draft201909Validator,
    "draft2020-12": validators.Draft202012Validator,
}


@functools.cache
def _classes() -> tuple:
    """The bounded classes, oldest draft first, registered for their drafts."""
    bounded = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "uniqueItems": _unique_items,
    }
    classes = []
    for version, stock in _STOCK.items():
        keywords = dict(stock.VALIDATORS)
        keywords.update((k, v) for k, v in bounded.items() if k in keywords)
        if "unevaluatedProperties" in keywords:
            legacy = version == "draft2019-09"
            keywords["unevaluatedProperties"] = _unevaluated_properties(legacy)
        for name in _REFS:
            if name in keywords:
                keywords[name] = _bounded_ref(keywords[name])
        keywords = {k: _checkpoint(v) for k, v in keywords.items()}
        classes.append(validators.extend(stock, keywords, version=version))
    return tuple(classes)
