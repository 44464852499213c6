"""What the importers share: the report, the nodes being built, ids, variables.

An importer turns each request it finds into a node and hands it to a
:class:`Collector` with the notes saying what could not be carried over. Nothing is
dropped silently and one bad request never sinks the file: a request that cannot be
sent faithfully is imported as close as possible (a body sent as written, a node
skipped by default) or, when not even that is possible, left out with a note.
:func:`Collector.finish` builds the flow, checks it, and repairs or leaves out (with
a note) any node the checks still refuse.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

from flowrun.engine.flow import normalize
from flowrun.engine.placeholders import escape
from flowrun.errors import FlowInvalid, located

_ID_BAD = re.compile(r"[^A-Za-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")
# A URL's origin: a leading placeholder (Postman's ``{{baseUrl}}`` once translated)
# or scheme://host[:port].
_ORIGIN = re.compile(
    r"^(?:\{\{[^{}]*\}\}|https?://(?:\{\{[^{}]*\}\}|[^/?#\s{}\\])+)", re.I
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# The variable a node skipped by default waits for: set it to true (``--var
# runSkipped=true``) to run those nodes too.
SKIP_VARIABLE = "runSkipped"
DEFAULT_MAX_NODES = 1000


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


def literal(value):
    """``value`` with every ``{{`` in its strings escaped: sent as written."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def label(text: str) -> str:
    """A node's name or description: braces that would read as a placeholder are
    spaced apart (they are shown, never substituted)."""
    return re.sub(r"([{}])(?=\1)", r"\1 ", str(text))


def absolute(url: str, scheme: str = "http") -> str:
    """Give a host-first URL a scheme, as Postman and curl do; leave others alone."""
    if not url or url.startswith(("{{", "/", "?", "\\{{")) or _SCHEME.match(url):
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


def describe(*parts) -> str:
    """Join the non-empty parts of a description with blank lines."""
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def multipart(fields: list[tuple[str, str]]) -> tuple[str, str]:
    """``(Content-Type, body)`` of a multipart/form-data body of text fields.

    The body is text with CRLF line ends, as curl and Postman send it; the boundary
    is fixed per body, so the flow stays the same when saved again.
    """
    seed = json.dumps(fields, ensure_ascii=False)
    boundary = "flowrun-" + uuid.uuid5(uuid.NAMESPACE_URL, seed).hex[:24]
    lines = []
    for name, value in fields:
        lines += [
            f"--{boundary}",
            f'Content-Disposition: form-data; name="{name}"',
            "",
            value,
        ]
    lines += [f"--{boundary}--", ""]
    return f"multipart/form-data; boundary={boundary}", "\r\n".join(lines)


@dataclass
class Note:
    """One thing an import could not carry over as it was, and where."""

    where: str  # the request, as the input names it ("Orders / Create", "line 3")
    message: str
    node_id: str | None = None

    def as_dict(self) -> dict:
        return {"where": self.where, "nodeId": self.node_id, "message": self.message}


@dataclass
class Report:
    """What an import found and what became of each request."""

    requests: int = 0
    as_is: int = 0
    with_notes: int = 0
    skipped: int = 0
    left_out: int = 0
    notes: list[Note] = field(default_factory=list)

    def counts(self) -> dict:
        return {
            "requests": self.requests,
            "asIs": self.as_is,
            "withNotes": self.with_notes,
            "skipped": self.skipped,
            "leftOut": self.left_out,
        }

    def as_dict(self) -> dict:
        return {**self.counts(), "notes": [n.as_dict() for n in self.notes]}

    def summary(self) -> str:
        """``12 requests: 9 as they were, 2 with notes, 1 skipped by default``."""
        parts = [f"{self.as_is} as they were"]
        if self.with_notes:
            parts.append(f"{self.with_notes} with notes")
        if self.skipped:
            parts.append(f"{self.skipped} skipped by default")
        if self.left_out:
            parts.append(f"{self.left_out} left out")
        noun = "request" if self.requests == 1 else "requests"
        return f"{self.requests} {noun}: " + ", ".join(parts)


@dataclass
class Imported:
    """An import's result: the flow and the report on how it went."""

    flow: dict
    report: Report


@dataclass
class _Entry:
    node: dict
    where: str
    notes: list[str]
    skip: str | None  # why the node is skipped by default


class Collector:
    """The nodes of one import, each with where it came from and its notes."""

    def __init__(self, label: str, max_nodes: int = DEFAULT_MAX_NODES):
        self.label = label
        self.max_nodes = max_nodes
        self.entries: list[_Entry] = []
        self.left_out: list[Note] = []
        self.general: list[Note] = []
        self.ids = Ids()

    def add(self, node: dict, where: str, notes=(), skip: str | None = None):
        """Add a node; ``skip``: why it must not run unless asked to."""
        node["name"] = label(node["name"])
        self.entries.append(_Entry(node, where, _unique(notes), skip))

    def leave_out(self, where: str, why: str) -> None:
        """Record a request that could not become a node at all."""
        self.left_out.append(Note(where, why))

    def note(self, where: str, message: str) -> None:
        """A note about the input as a whole (not about one request)."""
        if all(n.message != message for n in self.general):
            self.general.append(Note(where, message))

    def finish(self, flow: dict) -> Imported:
        """Build and check the flow from ``flow`` (its top-level fields) and the
        nodes; return it with the report."""
        entries = self.entries
        truncated = entries[self.max_nodes :]
        if truncated:
            entries = entries[: self.max_nodes]
            first = truncated[0].where
            self.general.append(
                Note(
                    first,
                    f"{len(truncated)} requests from '{first}' on were left out: a "
                    f"flow holds at most {self.max_nodes} nodes (FLOWRUN_MAX_STEPS); "
                    "raise it to import them all",
                )
            )
        entries = self._checked(flow, entries)
        if not entries:
            notes = self.left_out + self.general
            detail = ""
            if len(self.left_out) == 1:
                detail = f": {self.left_out[0].message}"
            elif not self.left_out:
                detail = ": no request found"
            raise FlowInvalid(
                [located("content", n.message, n.where) for n in notes]
                or [located("content", "no request found")],
                f"Cannot import {self.label}: nothing to import{detail}",
            )
        doc = normalize(self._document(flow, entries))
        return Imported(doc, self._report(entries, len(truncated)))

    # -- building ---------------------------------------------------------------
    def _document(self, flow: dict, entries: list[_Entry]) -> dict:
        doc = dict(flow)
        nodes = []
        skipping = False
        for entry in entries:
            node = dict(entry.node)
            text = describe(node.get("description"), *entry.notes)
            if text:
                # Shown, never substituted: braces must not read as placeholders.
                node["description"] = label(text)
            if entry.skip:
                skipping = True
                node["conditions"] = [
                    {
                        "variable": SKIP_VARIABLE,
                        "equals": True,
                        "_why": f"skipped by default: {entry.skip}",
                    }
                ]
            nodes.append(node)
        if skipping:
            variables = dict(doc.get("variables") or {})
            variables.setdefault(SKIP_VARIABLE, False)
            doc["variables"] = variables
        defaults = dict(doc.get("defaults") or {})
        if "baseUrl" not in defaults:
            base = split_base_url(nodes)
            if base:
                defaults["baseUrl"] = base
        if defaults:
            doc["defaults"] = defaults
        general = [n.message for n in self.general]
        doc["description"] = describe(doc.get("description"), *general)
        doc["nodes"] = nodes
        return doc

    def _checked(self, flow: dict, entries: list[_Entry]) -> list[_Entry]:
        """The entries whose nodes pass the checks: what they refuse is made
        sendable once (a body sent as written, a header left out), else the node is
        left out with a note."""
        from flowrun.engine.validation import check

        mended: set[int] = set()
        while entries:
            doc = self._document(flow, entries)
            errors, _warnings = check(doc, max(self.max_nodes, len(entries)))
            if not errors:
                return entries
            if any(not e["path"].startswith("nodes[") for e in errors):
                first = errors[0]
                raise FlowInvalid(
                    errors,
                    f"Cannot import {self.label}: the result is not a valid flow "
                    f"({first['path']}: {first['message']})",
                )
            by_node: dict[int, list[dict]] = {}
            for error in errors:
                index = int(re.match(r"nodes\[(\d+)\]", error["path"]).group(1))
                by_node.setdefault(index, []).append(error)
            kept = []
            for index, entry in enumerate(entries):
                problems = by_node.get(index)
                if problems is None:
                    kept.append(entry)
                elif id(entry) not in mended and _mend(entry, problems):
                    mended.add(id(entry))
                    kept.append(entry)
                else:
                    said = "; ".join(
                        f"{p['path'].split('.', 1)[-1]}: {p['message']}"
                        for p in problems
                    )
                    self.left_out.append(
                        Note(entry.where, f"left out: flowrun cannot send it ({said})")
                    )
            entries = kept
        return entries

    def _report(self, entries: list[_Entry], truncated: int) -> Report:
        report = Report(requests=len(entries) + len(self.left_out) + truncated)
        for entry in entries:
            node_id = entry.node["id"]
            if entry.skip:
                report.skipped += 1
                report.notes.append(
                    Note(entry.where, f"skipped by default: {entry.skip}", node_id)
                )
            elif entry.notes:
                report.with_notes += 1
            else:
                report.as_is += 1
            report.notes += [Note(entry.where, n, node_id) for n in entry.notes]
        report.left_out = len(self.left_out) + truncated
        report.notes += self.left_out + self.general
        return report


# What the checks refuse that a node can be changed to send anyway.
_MENDABLE = (
    "not valid JSON",
    "a JSON body with a form Content-Type",
    "without a matching '{{'",
    "is not a valid header name",
    "cannot contain a line break",
)


def _mend(entry: _Entry, problems: list[dict]) -> bool:
    """Change a node the checks refuse so it can be sent, noting what changed;
    False if it cannot be."""
    node = entry.node
    for problem in problems:
        message = problem["message"]
        part = problem["path"].split(".", 1)[1] if "." in problem["path"] else ""
        if not any(m in message for m in _MENDABLE):
            return False
        if part.startswith("body") and "body" in node:
            if isinstance(node["body"], (dict, list)):
                node["body"] = json.dumps(node["body"], ensure_ascii=False)
            node["bodyFormat"] = "text"
            entry.notes.append(f"The body is sent as written ({message}).")
        elif part.startswith("headers") and isinstance(node.get("headers"), dict):
            name = _header_of(part, node["headers"])
            if name is None:
                return False
            del node["headers"][name]
            if not node["headers"]:
                del node["headers"]
            entry.notes.append(f"Header {name!r} left out: {message}.")
        elif part == "url":
            # What the HTTP client sends anyway: the braces percent-encoded.
            node["url"] = node["url"].replace("}}", "%7D%7D")
            entry.notes.append(
                "The URL's stray closing braces are sent percent-encoded."
            )
        else:
            return False
    return True


def _header_of(part: str, headers: dict) -> str | None:
    for name in headers:
        if part in (f"headers.{name}", f"headers[{json.dumps(name)}]"):
            return name
    return None


def _unique(notes) -> list[str]:
    out: list[str] = []
    for note in notes:
        if note and note not in out:
            out.append(note)
    return out
