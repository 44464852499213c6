"""Postman test scripts, read for what a flow can say without running JavaScript.

Scripts cannot run in flowrun. The common one-line patterns are translated:
status assertions (``pm.response.to.have.status``, ``pm.expect(pm.response.code)…``
with or without a message, ``oneOf``, the legacy ``tests[…] = responseCode.code ===
200 || …``) become ``httpStatusCode`` validations; ``pm.expect`` assertions on the JSON
body, a header or the response time become ``jsonpath``/``header``/``maxDurationMs``
validations; the legacy ``responseBody.has("x")`` becomes a check of the body's text;
``pm.environment.set("x", <response value>)`` (and ``pm.collectionVariables.set``,
``postman.setEnvironmentVariable``…) becomes a reference later requests use instead of
the variable. Every other line is counted so the importer can say how much was left
out.
"""

from __future__ import annotations

import json
import re

# An assertion's optional message argument: ``(200, "message")``.
_MESSAGE = r"\s*(?:,\s*(?:\"[^\"]*\"|'[^']*'|`[^`]*`)\s*)?\)"
_STATUS = [
    re.compile(r"pm\.response\.to\.(?:have\.|be\.)?status\(\s*(\d{3})" + _MESSAGE),
    re.compile(
        r"pm\.expect\(\s*pm\.response\s*\)\.to\.(?:have\.|be\.)?status\(\s*(\d{3})"
        + _MESSAGE
    ),
    re.compile(
        r"pm\.expect\(\s*pm\.response\.(?:code|status)\s*(?:,[^)]*)?\)\s*\.to\."
        r"(?:be\.|deep\.)*(?:eql|equal|equals|eq)\(\s*(\d{3})" + _MESSAGE
    ),
    re.compile(r"responseCode\.code\s*===?\s*(\d{3})"),
    re.compile(r"pm\.response\.code\s*===?\s*(\d{3})"),
]
_SUCCESS = [200, 201, 202, 203, 204, 205, 206, 207, 208, 226]
_IS_SUCCESS = re.compile(r"pm\.response\.to\.(?:be|have)\.success\b")
_IS_JSON = re.compile(
    r"pm\.response\.to\.(?:be|have)\.(?:json|jsonBody\(\s*\))\s*;?\s*$"
)
_HAS_TEXT = re.compile(
    r"^\s*tests\s*\[[^\]]*\]\s*=\s*responseBody\.has\(\s*([\"'])(.*?)\1\s*\)\s*;?\s*$"
)
_ONE_OF = re.compile(
    r"pm\.expect\(\s*pm\.response\.(?:code|status)\s*(?:,[^)]*)?\)\s*\.to\.(?:be\.)?"
    r"oneOf\(\s*(?:\[([\d\s,]+)\]|([A-Za-z_$][\w$]*))"
)
# A list of status codes kept in a variable, for oneOf(expectedCodes).
_CODES = re.compile(
    r"^\s*(?:var|let|const)\s+([A-Za-z_$][\w$]*)\s*=\s*\[([\d\s,]+)\]\s*;?\s*$"
)
_OK = re.compile(r"pm\.response\.to\.be\.ok\b")
_HAS_HEADER = re.compile(
    r"pm\.response\.to\.have\.header\(\s*([\"'])([^\"']+)\1\s*"
    r"(?:,\s*([\"'])([^\"']*)\3\s*)?\)"
)
_JSON_BODY = re.compile(r"pm\.response\.to\.have\.jsonBody\(\s*([\"'])([^\"']+)\1\s*\)")
# A JavaScript property path: .a, ["a-b"], ['a'], [0].
_JS_PATH = re.compile(
    r"(?:\s*\.\s*[A-Za-z_$][\w$]*|\s*\[\s*(?:\d+|\"[^\"]*\"|'[^']*')\s*\])*"
)
_BODY = re.compile(r"^(?:pm\.response\.json\(\s*\)|JSON\.parse\(\s*responseBody\s*\))")
_ALIAS = re.compile(
    r"^\s*(?:var|let|const)\s+([A-Za-z_$][\w$]*)\s*=\s*"
    r"(?:pm\.response\.json\(\s*\)|JSON\.parse\(\s*responseBody\s*\))\s*;?\s*$"
)
_SET = re.compile(
    r"(?:pm\.(?:environment|collectionVariables|globals|variables)\.set|"
    r"postman\.set(?:Environment|Global)Variable)\(\s*([\"'])([^\"']+)\1\s*,"
    r"\s*(.+?)\s*\)\s*;?\s*$"
)
_HEADER_GET = re.compile(r"^pm\.response\.headers\.get\(\s*([\"'])([^\"']+)\1\s*\)$")
_CODE = re.compile(r"^pm\.response\.code$")
_TIME = re.compile(r"^pm\.response\.responseTime$")
_EXPECT = "pm.expect("
# Script lines that carry no check of their own: blank, comments, test wrappers.
_STRUCTURAL = re.compile(
    r"^\s*(?://.*|/?\*.*|pm\.test\(.*(?:function\s*\(\s*\)|=>)\s*\{\s*|[{}()\[\];,\s]*"
    r"|break\s*;?|\}?\s*else\s*\{?|try\s*\{|\}\s*catch\s*\(\s*\w*\s*\)\s*\{)\s*$"
)
# Chai words that only make an assertion read well.
_FILLER = {
    "to", "be", "been", "is", "that", "which", "and", "has", "have", "with", "at",
    "of", "same", "but", "does", "still", "deep", "a", "an",
}  # fmt: skip
_COMPARE = {
    "eql": "equals",
    "equal": "equals",
    "equals": "equals",
    "eq": "equals",
    "above": "greaterThan",
    "gt": "greaterThan",
    "greaterThan": "greaterThan",
    "below": "lessThan",
    "lt": "lessThan",
    "lessThan": "lessThan",
    "least": "greaterThanOrEqual",
    "gte": "greaterThanOrEqual",
    "most": "lessThanOrEqual",
    "lte": "lessThanOrEqual",
    "include": "contains",
    "includes": "contains",
    "contain": "contains",
    "contains": "contains",
    "match": "matches",
}
_NEGATED = {"equals": "notEquals"}


class Reader:
    """Read the test-script lines of one request (node ``node_id``)."""

    def __init__(self, node_id: str):
        self.node_id = node_id
        self.codes: list = []
        self.checks: list[dict] = []
        self.notes: list[str] = []
        self._code_lists: dict[str, list[int]] = {}
        self.saved: dict[str, str] = {}  # variable name -> placeholder expression
        self.untranslated = 0
        self._aliases: set[str] = set()

    def validations(self) -> list[dict]:
        return [{"httpStatusCode": code} for code in self.codes] + self.checks

    def read(self, line: str) -> None:
        found: list = [int(c) for p in _STATUS for c in p.findall(line)]
        if len(found) > 1 and "||" in line:
            # One assertion accepting any of them (``code === 200 || code === 201``).
            found = [sorted(set(found))]
        for listed, name in _ONE_OF.findall(line):
            codes = (
                re.findall(r"\d{3}", listed) if listed else self._code_lists.get(name)
            )
            if codes:
                found.append(sorted({int(c) for c in codes}))
        if _OK.search(line):
            found.append(200)
        if _IS_SUCCESS.search(line):
            found.append(_SUCCESS)
        for code in found:
            if code not in self.codes:
                self.codes.append(code)
        if found or _STRUCTURAL.match(line):
            return
        if _IS_JSON.search(line):
            self._add({"header": "Content-Type", "contains": "json"})
            return
        if m := _HAS_TEXT.match(line):
            self._has_text(_literal(m.group(1) + m.group(2) + m.group(1)))
            return
        if m := _ALIAS.match(line):
            self._aliases.add(m.group(1))
            return
        if m := _CODES.match(line):
            self._code_lists[m.group(1)] = re.findall(r"\d{3}", m.group(2))
            return
        if not (self._save(line) or self._check(line)):
            self.untranslated += 1

    def _add(self, check: dict) -> None:
        if check not in self.checks:
            self.checks.append(check)

    def _has_text(self, needle) -> None:
        """``responseBody.has("x")``: the body's text contains x."""
        if not isinstance(needle, str):
            self.untranslated += 1
            return
        # jq's tostring is the text of a string body and the compact JSON text of
        # a JSON one (Postman looks at the body as received).
        self._add({"jq": "tostring", "contains": needle})
        if any(c in needle for c in ':,{["'):
            note = (
                "responseBody.has(…) is checked against the body's compact JSON text "
                "(spacing may differ from the response as sent)."
            )
            if note not in self.notes:
                self.notes.append(note)

    # -- values saved for later requests ----------------------------------------
    def _save(self, line: str) -> bool:
        m = _SET.search(line)
        if not m:
            return False
        ref = self._reference(m.group(3).strip())
        if ref is None:
            return False
        self.saved[m.group(2)] = ref
        return True

    def _reference(self, expr: str) -> str | None:
        """``{{ … }}`` contents for a response value, e.g. ``.responses.x.token``."""
        if h := _HEADER_GET.match(expr):
            return f".headers.{self.node_id}.{h.group(2)}"
        if _CODE.match(expr):
            return f".status.{self.node_id}"
        path = self._body_path(expr)
        return None if path is None else f".responses.{self.node_id}{path}"

    def _body_path(self, expr: str) -> str | None:
        """The flowrun PATH of a JavaScript expression into the JSON body, or None."""
        root = _BODY.match(expr)
        if root is None:
            word = re.match(r"^[A-Za-z_$][\w$]*", expr)
            root = word if word and word.group(0) in self._aliases else None
        if root is None:
            return None
        rest = expr[root.end() :]
        if not _JS_PATH.fullmatch(rest):
            return None
        path = re.sub(r"\s+", "", rest).replace("'", '"')
        if path.endswith(".length"):
            return (path[: -len(".length")] or ".") + " | length"
        return path

    # -- assertions -------------------------------------------------------------
    def _check(self, line: str) -> bool:
        if m := _HAS_HEADER.search(line):
            check = {"header": m.group(2)}
            if m.group(4) is None:
                check["exists"] = True
            else:
                check["equals"] = m.group(4)
            self.checks.append(check)
            return True
        if m := _JSON_BODY.search(line):
            path = "." + m.group(2).lstrip(".")
            self.checks.append({"jsonpath": path, "exists": True})
            return True
        parsed = _expect(line)
        if parsed is None:
            return False
        expr, words, arg = parsed
        negated = "not" in words
        words = [w for w in words if w not in _FILLER and w != "not"]
        if len(words) != 1:
            return False
        word = words[0]
        if _TIME.match(expr):
            if word in ("below", "lt", "lessThan", "most", "lte"):
                limit = _literal(arg)
                if isinstance(limit, (int, float)) and not negated:
                    self.checks.append({"maxDurationMs": limit})
                    return True
            return False
        if h := _HEADER_GET.match(expr):
            target = {"header": h.group(2)}
        else:
            path = self._body_path(expr)
            if path is None:
                return False
            target = {"jsonpath": path if path.startswith(".") else "." + path}
        if word in ("lengthOf", "length") and "jsonpath" in target:
            count = _literal(arg)
            if isinstance(count, bool) or not isinstance(count, int) or negated:
                return False
            path = target["jsonpath"]
            self.checks.append({"jsonpath": f"{path} | length", "equals": count})
            return True
        check = _assertion(word, arg, negated)
        if check is None:
            return False
        self.checks.append({**target, **check})
        return True


def _assertion(word: str, arg: str | None, negated: bool) -> dict | None:
    """The operator and value of a chai assertion, or None when flowrun lacks it."""
    if arg is None:
        if word == "exist":
            return {"exists": not negated}
        if word == "undefined":
            return {"exists": negated}
        if word in ("true", "false", "null") and not negated:
            return {"equals": word}
        return None
    op = _COMPARE.get(word)
    if op is None:
        return None
    if op == "matches":
        m = re.fullmatch(r"/(.+)/([a-z]*)", arg.strip())
        if m is None or negated:
            return None
        return {"matches": ("(?i)" if "i" in m.group(2) else "") + m.group(1)}
    value = _literal(arg)
    if value is _NOTHING:
        return None
    if negated:
        if op not in _NEGATED:
            return None
        op = _NEGATED[op]
    if op in ("greaterThan", "lessThan", "greaterThanOrEqual", "lessThanOrEqual"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
    if op == "contains" and not isinstance(value, str):
        return None
    return {op: value}


_NOTHING = object()


def _literal(text: str | None):
    """A JavaScript literal (number, string, true/false/null) as Python, or _NOTHING."""
    if text is None:
        return _NOTHING
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = json.dumps(text[1:-1].replace("\\'", "'"))
    try:
        value = json.loads(text)
    except ValueError:
        return _NOTHING
    return value if not isinstance(value, (dict, list)) else _NOTHING


def _expect(line: str):
    """Split ``pm.expect(EXPR).to.WORDS(ARG)`` into ``(EXPR, [WORDS], ARG or None)``."""
    start = line.find(_EXPECT)
    if start == -1:
        return None
    end = _close(line, start + len(_EXPECT) - 1)
    if end is None:
        return None
    expr = _first_argument(line[start + len(_EXPECT) : end]).strip()
    rest = line[end + 1 :]
    m = re.match(r"((?:\s*\.\s*[A-Za-z_$][\w$]*)+)", rest)
    if not m:
        return None
    words = [w.strip() for w in m.group(1).split(".") if w.strip()]
    rest = rest[m.end() :].lstrip()
    arg = None
    if rest.startswith("("):
        close = _close(rest, 0)
        if close is None:
            return None
        arg = _first_argument(rest[1:close]).strip()
        rest = rest[close + 1 :]
    # Nothing may follow but the end of the statement (and of a pm.test wrapper).
    if not re.fullmatch(r"[\s;)}]*", rest):
        return None
    return expr, words, arg


def _first_argument(args: str) -> str:
    """The first of a call's arguments (a chai assertion's message comes second)."""
    depth, quote = 0, None
    for i, c in enumerate(args):
        if quote:
            if c == quote and args[i - 1] != "\\":
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            return args[:i]
    return args


def _close(text: str, open_at: int) -> int | None:
    """Index of the parenthesis closing the one at ``open_at`` (quotes respected)."""
    depth, quote, i = 0, None, open_at
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None
