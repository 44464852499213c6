"""What the importers share: located errors, ids, variable names, the finished flow."""

from __future__ import annotations

import json
import re

from flowrun.engine.flow import normalize
from flowrun.errors import FlowInvalid, located

_ID_BAD = re.compile(r"[^A-Za-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")
# A URL's origin: a leading placeholder (Postman's ``{{baseUrl}}`` once translated)
# or scheme://host[:port].
_ORIGIN = re.compile(
    r"^(?:\{\{[^{}]*\}\}|https?://(?:\{\{[^{}]*\}\}|[^/?#\s{}])+)", re.I
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def invalid(label: str, message: str, path: str = "content", hint: str = ""):
    """Return the FlowInvalid raised for content that cannot be imported."""
    return FlowInvalid(
        [located(path, message, hint)],
        f"Cannot import {label}: {message}",
    )


def load_json(label: str, content: str, hint: str = ""):
    """Parse JSON text; a syntax error becomes FlowInvalid with line and column."""
    try:
        return json.loads(content)
    except json.JSONDecodeError as exc:
        raise invalid(
            label,
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            hint=hint,
        ) from None
    except (ValueError, RecursionError):
        raise invalid(
            label, "not valid JSON (or nested too deeply)", hint=hint
        ) from None


def slug(text: str, lower: bool = True, fallback: str = "request") -> str:
    """Make a node id: letters, digits, ``_`` and ``-`` only."""
    text = _DASHES.sub("-", _ID_BAD.sub("-", str(text))).strip("-_")
    if lower:
        text = text.lower()
    return text[:64].strip("-_") or fallback


class Ids:
    """Hand out unique node ids (compared case-insensitively)."""

    def __init__(self):
        self._used: set[str] = set()

    def __call__(self, text: str, lower: bool = True) -> str:
        base = slug(text, lower)
        candidate, n = base, 2
        while candidate.lower() in self._used:
            candidate, n = f"{base}-{n}", n + 1
        self._used.add(candidate.lower())
        return candidate


def var_name(name: str) -> str:
    """Make a name usable in ``{{ .vars.NAME }}`` (letters, digits, ``_``, ``-``)."""
    return _ID_BAD.sub("_", str(name).strip()) or "var"


def var_ref(name: str) -> str:
    return "{{ .vars." + name + " }}"


def absolute(url: str, scheme: str = "http") -> str:
    """Give a host-first URL a scheme, as Postman and curl do; leave others alone."""
    if not url or url.startswith(("{{", "/", "?")) or _SCHEME.match(url):
        return url
    return f"{scheme}://{url}"


def split_base_url(nodes: list[dict]) -> str | None:
    """Move the origin every node's URL starts with into a base URL.

    Returns the base (and makes the nodes' URLs relative), or None when the nodes do
    not all share one, in which case they are left unchanged.
    """
    if not nodes:
        return None
    origins = set()
    for node in nodes:
        m = _ORIGIN.match(node["url"])
        if not m:
            return None
        origins.add(m.group(0))
    if len(origins) != 1:
        return None
    base = origins.pop()
    rests = []
    for node in nodes:
        rest = node["url"][len(base) :]
        # ``https://host`` and ``https://host/`` are the same request; a placeholder
        # base may carry a path, where an added '/' would change it.
        if not rest and not base.startswith("{{"):
            rest = "/"
        if not rest.startswith(("/", "?")):
            return None
        rests.append(rest)
    for node, rest in zip(nodes, rests, strict=True):
        node["url"] = rest
    return base


def finish(label: str, flow: dict) -> dict:
    """Normalise the built flow and check it; it must come out valid."""
    from flowrun.engine.validation import check

    flow = normalize(flow)
    errors, _ = check(flow)
    if errors:
        first = errors[0]
        raise FlowInvalid(
            errors,
            f"Cannot import {label}: the result is not a valid flow "
            f"({first.get('path')}: {first.get('message')})",
        )
    return flow


def describe(*parts) -> str:
    """Join the non-empty parts of a description with blank lines."""
    return "\n\n".join(p.strip() for p in parts if p and p.strip())
