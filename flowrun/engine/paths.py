"""The PATH grammar shared by placeholders, validations and conditions.

``.a.b``, ``.a[0].b``, ``.[0]``, ``.`` (the whole value), keys with ``-``, negative
indexes (``.items[-1]``) and a trailing ``| length`` (with or without spaces). A leading
``$`` (``$.a.b``, as Postman users write it) is accepted as the root.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import lru_cache

_LENGTH = re.compile(r"\|\s*length\s*$")
# A key runs until the next '.', '[' or whitespace; an index is [int].
_TOKEN = re.compile(
    r"\.([^.\[\]\s|]+)|\[\s*(-?\d+)\s*\]|\[\s*\"([^\"]*)\"\s*\]|\.(?=\[)"
)


class PathSyntaxError(ValueError):
    pass


class Missing(LookupError):
    """A path did not lead to a value; ``str()`` says where it stopped and why."""


@lru_cache(maxsize=4096)
def parse(path: str) -> tuple[tuple, bool]:
    """Parse PATH into ``(steps, length)``; each step is a str key or an int index."""
    text = path.strip()
    length = False
    m = _LENGTH.search(text)
    if m:
        length = True
        text = text[: m.start()].strip()
    if text.startswith("$"):
        text = text[1:]
    if text in ("", "."):
        return (), length
    if not text.startswith((".", "[")):
        text = "." + text
    steps: list = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise PathSyntaxError(f"bad path {path!r} at position {pos}")
        key, index, quoted = m.group(1), m.group(2), m.group(3)
        if key is not None:
            steps.append(key)
        elif index is not None:
            steps.append(int(index))
        elif quoted is not None:
            steps.append(quoted)
        pos = m.end()
    return tuple(steps), length


def render(steps) -> str:
    out = ""
    for s in steps:
        out += f"[{s}]" if isinstance(s, int) else f".{s}"
    return out or "."


def resolve(value, path: str):
    """Return the value at PATH inside ``value``; raise Missing if there is none."""
    steps, length = parse(path)
    cur = value
    for i, step in enumerate(steps):
        if isinstance(step, int):
            if isinstance(cur, list) and -len(cur) <= step < len(cur):
                cur = cur[step]
                continue
            where = render(steps[:i]) if i else "the value"
            if isinstance(cur, list):
                raise Missing(
                    f"index {step} out of range at {where} (length {len(cur)})"
                )
            raise Missing(f"{where} is {kind(cur)}, not an array")
        if isinstance(cur, dict):
            if step in cur:
                cur = cur[step]
                continue
            raise Missing(
                f"no field '{step}' at {render(steps[:i]) if i else 'top level'}"
            )
        if isinstance(cur, list) and step.lstrip("-").isdigit():
            # FlowSphere-style `.items.0.id`
            idx = int(step)
            if -len(cur) <= idx < len(cur):
                cur = cur[idx]
                continue
            raise Missing(f"index {idx} out of range (length {len(cur)})")
        where = render(steps[:i]) if i else "the value"
        raise Missing(f"{where} is {kind(cur)}, so it has no field '{step}'")
    if length:
        if isinstance(cur, (list, dict, str)):
            return len(cur)
        raise Missing(f"cannot take the length of {kind(cur)}")
    return cur


def kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def js_str(value) -> str:
    """Render a value as JavaScript's ``String(value)`` would (FlowSphere equality)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return ",".join("" if v is None else js_str(v) for v in value)
    return "[object Object]"


def _js_number(value: float) -> str:
    """JavaScript's Number#toString: shortest digits, exponent only past 1e21/1e-7."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0")
    exponent += len(digits) - len(ds)
    k = len(ds)
    n = exponent + k  # where the decimal point goes, counted from the first digit
    if k <= n <= 21:
        out = ds + "0" * (n - k)
    elif 0 < n <= 21:
        out = ds[:n] + "." + ds[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + ds
    else:
        e = n - 1
        out = (
            ds[0]
            + ("." + ds[1:] if k > 1 else "")
            + f"e{'+' if e >= 0 else '-'}{abs(e)}"
        )
    return ("-" if sign else "") + out


def text(value) -> str:
    """Render a value inside a longer string: objects and arrays as JSON."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return js_str(value)
