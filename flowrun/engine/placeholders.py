"""``{{ … }}`` placeholders: parsing, resolution and typed substitution.

What a substitution renders is bounded by ``FLOWRUN_MAX_REQUEST_BYTES``: a value used
a thousand times (``{{ .vars.big }}`` of 100,000 characters) would otherwise build
a request of hundreds of megabytes before anything could refuse it. The values are
counted as they are put in (``Room``), and the substitution stops with
``RequestTooLarge`` as soon as they pass the limit: for a step's request, its URL,
headers and body together; for a prompt or a check, each value on its own.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flowrun.engine import paths
from flowrun.engine.budget import Budget
from flowrun.errors import RequestTooLarge, UnresolvedPlaceholder

# What a string's text is made of, read left to right: ``\{{`` is a literal ``{{``
# (with the ``}}`` that closes it on the same line, if any, kept as text too), and
# ``{{ … }}`` is a placeholder (group 1: its expression). Reading escapes and
# placeholders in one pass is what makes ``\{{ .vars.x }}`` text, not a placeholder.
TOKEN = re.compile(r"\\\{\{(?:(?:(?!\{\{).)*?\}\})?|\{\{\s*(.*?)\s*\}\}")
_WHOLE = re.compile(r"^\{\{\s*(.*?)\s*\}\}$", re.S)
_REF = re.compile(
    r"^\.(vars|input|responses|headers|status)\.([A-Za-z0-9_\-]+)(.*)$", re.S
)
DYNAMIC = ("$guid", "$timestamp", "$isoTimestamp", "$randomInt")
_KIND = {
    "vars": "variable",
    "input": "input",
    "responses": "response",
    "headers": "header",
    "status": "status",
}


@dataclass
class NodeResult:
    """What later steps may reference of an executed (or skipped) node."""

    status: str  # completed | failed | skipped
    body: object = None
    headers: dict = field(default_factory=dict)  # lower-cased names
    http_status: int | None = None


MAX_BYTES = 10_485_760  # FLOWRUN_MAX_REQUEST_BYTES's default


class Room:
    """How much more a rendering may take, in characters (``FLOWRUN_MAX_REQUEST_BYTES``;
    UTF-8 takes at least a byte for each, and the client counts the exact bytes
    of what it sends)."""

    __slots__ = ("limit", "left", "what")

    def __init__(self, limit: int, what: str = "Value"):
        self.limit = limit
        self.left = limit
        self.what = what

    def take(self, value, shown: str, where: str) -> None:
        """Count ``value`` in; raise RequestTooLarge once past the limit."""
        self.left -= size_of(value, self.left + 1)
        if self.left < 0:
            raise RequestTooLarge(
                f"{self.what} too large: substituting {shown} at {where} takes it "
                f"past FLOWRUN_MAX_REQUEST_BYTES ({self.limit} bytes)"
            )


def size_of(value, cap: int) -> int:
    """About how many characters ``value`` takes in a request (as text or JSON),
    counted only until past ``cap``."""
    if isinstance(value, str):
        return len(value)
    total, todo = 0, [value]
    while todo and total <= cap:
        item = todo.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 4 * len(item) + sum(len(str(k)) for k in item)
            todo.extend(item.values())
        elif isinstance(item, list):
            total += 2 + len(item)
            todo.extend(item)
        else:  # a number, true, false or null
            total += len(str(item))
    return total


@dataclass
class Context:
    """Everything a placeholder can refer to during one run, and the step's budget."""

    vars: dict
    inputs: dict
    results: dict = field(default_factory=dict)  # node id -> NodeResult
    node_ids: frozenset = frozenset()
    now: float = 0.0  # the step's clock, so `$timestamp` is stable within a step
    # what the current step's placeholders and checks may still spend (the run
    # gives each step its own)
    budget: Budget = field(default_factory=Budget)
    # FLOWRUN_MAX_REQUEST_BYTES; ``room`` is what the rendering under way may
    # still take (``rendering``), None between renderings
    max_bytes: int = MAX_BYTES
    room: Room | None = None

    def rendering(self, what: str = "Request") -> _Rendering:
        """``with ctx.rendering():`` counts every substitution inside against one
        ``Room`` (a request's URL, headers and body together)."""
        return _Rendering(self, what)


class _Rendering:
    """``Context.rendering``: a class, as it runs several times in every step."""

    __slots__ = ("ctx", "what")

    def __init__(self, ctx: Context, what: str):
        self.ctx = ctx
        self.what = what

    def __enter__(self) -> None:
        self.ctx.room = Room(self.ctx.max_bytes, self.what)

    def __exit__(self, *exc) -> None:
        self.ctx.room = None


@dataclass(frozen=True)
class Ref:
    """A parsed placeholder expression."""

    source: str  # dynamic | vars | input | responses | headers | status
    name: str
    path: str = ""


def parse_ref(expr: str) -> Ref:
    """Parse the inside of ``{{ }}``; raise ValueError naming what is wrong."""
    expr = expr.strip()
    if expr in DYNAMIC:
        return Ref("dynamic", expr)
    m = _REF.match(expr)
    if not m:
        raise ValueError(
            f"unknown placeholder '{{{{ {expr} }}}}': expected $guid, $timestamp, "
            "$isoTimestamp, $randomInt, .vars.NAME, .input.NAME, .responses.ID.PATH, "
            ".headers.ID.Name or .status.ID"
        )
    source, name, rest = m.groups()
    rest = rest.strip()
    if source == "status" and rest and not paths._LENGTH.fullmatch(rest):
        raise ValueError(f"'{{{{ {expr} }}}}': .status.ID takes no path")
    if source == "headers":
        if not rest.startswith(".") or len(rest) < 2:
            raise ValueError(f"'{{{{ {expr} }}}}': write .headers.ID.Header-Name")
    elif rest:
        paths.parse(rest)  # raises PathSyntaxError (a ValueError)
    return Ref(source, name, rest)


def _dynamic(name: str, ctx: Context):
    if name == "$guid":
        return str(uuid.uuid4())
    if name == "$timestamp":
        return int(ctx.now)
    if name == "$isoTimestamp":
        return (
            datetime.fromtimestamp(ctx.now, UTC).isoformat(timespec="milliseconds")[:-6]
            + "Z"
        )
    return random.randint(0, 1000)


def lookup(expr: str, ctx: Context):
    """Return the value of one placeholder expression or raise UnresolvedPlaceholder."""
    shown = "{{ " + expr.strip() + " }}"
    try:
        ref = parse_ref(expr)
    except ValueError as exc:
        raise UnresolvedPlaceholder(str(exc)) from None
    if ref.source == "dynamic":
        return _dynamic(ref.name, ctx)
    if ref.source in ("vars", "input"):
        pool = ctx.vars if ref.source == "vars" else ctx.inputs
        if ref.name not in pool:
            what = "variable" if ref.source == "vars" else "input"
            raise UnresolvedPlaceholder(f"{shown}: no {what} named '{ref.name}'")
        return _walk(pool[ref.name], ref.path, shown)
    result = ctx.results.get(ref.name)
    if result is None:
        why = "has not run" if ref.name in ctx.node_ids else "does not exist"
        raise UnresolvedPlaceholder(f"{shown}: node '{ref.name}' {why}")
    if result.status == "skipped":
        raise UnresolvedPlaceholder(f"{shown}: node '{ref.name}' was skipped")
    if ref.source == "status":
        if result.http_status is None:
            raise UnresolvedPlaceholder(f"{shown}: node '{ref.name}' got no response")
        return _walk(result.http_status, ref.path, shown)
    if ref.source == "headers":
        steps, length = paths.parse(ref.path)
        header = str(steps[0]).lower() if steps else ""
        if header not in result.headers:
            raise UnresolvedPlaceholder(
                f"{shown}: node '{ref.name}' response has no header '{steps[0]}'"
            )
        value = result.headers[header]
        return len(value) if length else value
    if result.http_status is None:
        raise UnresolvedPlaceholder(f"{shown}: node '{ref.name}' got no response")
    return _walk(result.body, ref.path or ".", shown)


def _walk(value, path: str, shown: str):
    if not path:
        return value
    try:
        return paths.resolve(value, path)
    except paths.Missing as exc:
        raise UnresolvedPlaceholder(f"{shown}: {exc}") from None


def substitute(value, ctx: Context, where: str, records: list | None, typed=True):
    """Return ``value`` with placeholders replaced, recording each in ``records``.

    A string that is exactly one placeholder takes the value's JSON type when
    ``typed``; otherwise values are rendered as text. ``\\{{`` becomes a literal
    ``{{``. Dict keys are not touched. Raise RequestTooLarge once what is rendered
    passes ``ctx.max_bytes`` (inside ``ctx.rendering()``: with what it rendered
    before).
    """
    if ctx.room is not None:
        return _substitute(value, ctx, where, records, typed)
    if not isinstance(value, (str, dict, list)) or (
        isinstance(value, str) and "{{" not in value
    ):
        return value  # nothing to substitute, so nothing to count either
    with ctx.rendering("Value"):
        return _substitute(value, ctx, where, records, typed)


def _substitute(value, ctx: Context, where: str, records: list | None, typed: bool):
    if isinstance(value, str):
        if "{{" not in value:
            return value
        if typed:
            m = _WHOLE.match(value)
            if m and "{{" not in m.group(1):
                return _one(m.group(1), value, ctx, where, records)

        def repl(m):
            if m.group(1) is None:
                return m.group(0)[1:]  # an escaped ``{{``: the text without its ``\\``
            return paths.text(_one(m.group(1), m.group(0), ctx, where, records))

        return TOKEN.sub(repl, value)
    if isinstance(value, dict):
        return {
            k: _substitute(v, ctx, f"{where}.{k}", records, typed)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _substitute(v, ctx, f"{where}[{i}]", records, typed)
            for i, v in enumerate(value)
        ]
    return value


def expressions(text: str) -> list[str]:
    """The expressions of the placeholders in ``text`` (escaped ``{{`` left out)."""
    return [m.group(1) for m in TOKEN.finditer(text) if m.group(1) is not None]


def stray_braces(text: str) -> str | None:
    """``"{{"`` or ``"}}"`` when ``text`` has one without its partner, else None.

    Placeholders and escaped ``\\{{ … }}`` spans are taken out first.
    """
    rest = TOKEN.sub("", text)
    if "{{" in rest:
        return "{{"
    if "}}" in rest:
        return "}}"
    return None


def as_literal(text: str, placeholder: str = "") -> str:
    """``text`` with escaped ``{{`` as sent and each placeholder as ``placeholder``."""
    return TOKEN.sub(
        lambda m: m.group(0)[1:] if m.group(1) is None else placeholder, text
    )


def escape(text: str) -> str:
    """Text to send as written: each ``{{`` escaped as ``\\{{``."""
    return text.replace("{{", "\\{{") if "{{" in text else text


def _one(expr: str, shown: str, ctx: Context, where: str, records: list | None):
    ctx.budget.tick()
    value = lookup(expr, ctx)
    ctx.room.take(value, shown, where)
    if records is not None:
        source = expr.strip().split(".")[1] if expr.strip().startswith(".") else ""
        records.append(
            {
                "placeholder": shown,
                "value": value,
                "type": _KIND.get(source, "dynamic"),
                "path": where,
            }
        )
    return value
