"""A flow as a bash script of curl commands, one per node, in order.

Variables and prompt answers are shell variables (``var_NAME``, ``input_NAME``; set
them in the environment to override the flow's values; prompts are asked with
``read``). The responses later steps refer to are kept in a temporary folder and
read with jq; a JSON body that holds placeholders is built with jq too, so every
value is encoded as JSON should be. Conditions on a status, a field, a variable or
an input become ``if`` tests. Validations are listed in a comment above their
command (curl does not check responses). ``\\{{`` in the flow is sent as ``{{``.
"""

from __future__ import annotations

import json
import re

from flowrun.engine import paths
from flowrun.engine.checks import OPERATORS
from flowrun.engine.flow import join_url, node_headers, node_validations
from flowrun.engine.placeholders import Ref
from flowrun.exporters.text import Part, parts, whole
from flowrun.http.forms import encode_form

_NAME_BAD = re.compile(r"[^A-Za-z0-9_]")
_SECRET = re.compile(r"pass|secret|token|otp|key", re.I)
_FORM = "x-www-form-urlencoded"


def script(flow: dict) -> str:
    """The bash script of curl commands for a normalised, valid flow."""
    return _Script(flow).text()


def quote(text: str) -> str:
    """``text`` as one single-quoted bash word."""
    return "'" + text.replace("'", "'\\''") + "'"


def _shell_name(kind: str, name: str) -> str:
    return f"{kind}_{_NAME_BAD.sub('_', name)}"


def jq_path(path: str) -> str:
    """A flowrun PATH as a jq filter (``.a[0]`` → ``.["a"][0]``)."""
    steps, length = paths.parse(path or ".")
    out = "." + "".join(
        f"[{s}]" if isinstance(s, int) else f"[{json.dumps(s)}]" for s in steps
    )
    return out + " | length" if length else out


class _Script:
    def __init__(self, flow: dict):
        self.flow = flow
        self.defaults = flow.get("defaults") or {}
        self.variables = flow.get("variables") or {}
        self.kept = self._kept()
        self.jq = False
        self.lines: list[str] = []

    def _kept(self) -> set[str]:
        """The nodes whose response a later step refers to."""
        kept = set()
        for node in self.flow["nodes"]:
            for text in _strings(node):
                for part in parts(text):
                    ref = part.ref
                    if ref and ref.source in ("responses", "headers", "status"):
                        kept.add(ref.name)
            for cond in node.get("conditions") or []:
                if cond.get("node"):
                    kept.add(cond["node"])
        return kept

    def text(self) -> str:
        body = []
        for index, node in enumerate(self.flow["nodes"]):
            body += self.node(index, node)
        head = [
            "#!/usr/bin/env bash",
            f"# {self.flow.get('name') or 'Flow'}: exported by flowrun as curl "
            "commands.",
            "# Override a variable from the environment: var_NAME=value bash "
            "this-script.sh",
        ]
        if self.jq:
            head.append(
                "# Needs jq (https://jqlang.org): later steps read earlier "
                "responses with it."
            )
        head += ["set -euo pipefail", ""]
        for name, value in self.variables.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            var = _shell_name("var", name)
            head.append(f'[ -n "${{{var}+x}}" ] || {var}={quote(shown)}')
        if self.kept:
            head += [
                'dir="$(mktemp -d)"',
                "trap 'rm -rf \"$dir\"' EXIT",
                '_header() { sed -n "s/^$2:[[:space:]]*//Ip" "$dir/$1.headers" '
                "| tr -d '\\r' | tail -n 1; }",
            ]
        return "\n".join(head + [""] + body).rstrip() + "\n"

    # -- one node -------------------------------------------------------------
    def node(self, index: int, node: dict) -> list[str]:
        out = [f"# {index + 1}. {node['name']} ({node['id']})"]
        checks = [_described(v) for v in node_validations(node, self.defaults)]
        if checks:
            out.append("#    checks: " + "; ".join(checks))
        for key, prompt in (node.get("userPrompts") or {}).items():
            var = _shell_name("input", key)
            silent = "-s " if _SECRET.search(key) else ""
            out.append(
                f'[ -n "${{{var}+x}}" ] || {{ read -r {silent}-p '
                f"{self.word(prompt, suffix=' ')} {var}; echo >&2; }}"
            )
        if node.get("delayMs"):
            out.append(f"sleep {node['delayMs'] / 1000:g}")
        command = self.command(node)
        if any(
            p.ref and p.ref.name == "$timestamp"
            for t in _strings(node)
            for p in parts(t)
        ):
            # $timestamp is the same for every use within a step.
            out.append("now=$(date +%s)")
        tests, skipped = self.conditions(node)
        out += [f"#    {line}" for line in skipped]
        if tests:
            out.append("if " + " && ".join(tests) + "; then")
            out += ["  " + line for line in command]
            out.append("fi")
        else:
            out += command
        out.append("")
        return out

    def command(self, node: dict) -> list[str]:
        method = node["method"]
        url = join_url(self.defaults.get("baseUrl", ""), node["url"])
        head = ["curl", "--silent", "--show-error", "--globoff"]
        head += ["--head"] if method == "HEAD" else ["-X", method]
        head.append(self.word(url))
        args = []
        headers = node_headers(node, self.defaults)
        for name, value in headers.items():
            if value == "":
                args += ["-H", quote(f"{name};")]
            else:
                args += ["-H", self.word(value, prefix=f"{name}: ")]
        args += self.body(node, headers)
        timeout = node.get("timeout", self.defaults.get("timeout"))
        if timeout:
            args += ["--max-time", f"{timeout:g}"]
        if node["id"] in self.kept:
            saved = f'"$dir/{node["id"]}'
            args += [
                "-D",
                saved + '.headers"',
                "-o",
                saved + '.body"',
                "-w",
                "'%{http_code}'",
            ]
            lines = _lines(head, args)
            lines[-1] += f' > {saved}.status"'
            return [*lines, f'cat {saved}.body"; echo']
        lines = _lines(head, args)
        lines[-1] += "; echo"
        return lines

    def body(self, node: dict, headers: dict) -> list[str]:
        body = node.get("body")
        if body is None or node["method"] in ("GET", "HEAD"):
            return []
        content_type = next(
            (v for k, v in headers.items() if k.lower() == "content-type"), ""
        )
        form = (
            _FORM in content_type.lower()
            or node.get("bodyFormat", self.defaults.get("bodyFormat"))
            == "form-urlencoded"
        )
        if isinstance(body, str):
            return ["--data-raw", self.word(body)]
        if node.get("bodyFormat") == "text":
            return ["--data-raw", self.word(paths.text(body))]
        if form:
            out = [] if content_type else ["-H", quote(f"Content-Type: {_FORM_TYPE}")]
            for key, value in encode_form(body):
                out += ["--data-urlencode", self.word(value, prefix=f"{key}=")]
            return out
        out = [] if content_type else ["-H", quote("Content-Type: application/json")]
        return [*out, "--data-raw", self.json_body(body)]

    def json_body(self, body) -> str:
        """The JSON text of a body: written out, or built by jq around the values
        placeholders give at run time."""
        args: list[str] = []

        def expr(value) -> str:
            if isinstance(value, dict):
                return (
                    "{"
                    + ", ".join(f"{json.dumps(k)}: {expr(v)}" for k, v in value.items())
                    + "}"
                )
            if isinstance(value, list):
                return "[" + ", ".join(expr(v) for v in value) + "]"
            if not isinstance(value, str):
                return json.dumps(value)
            ref = whole(value)
            if ref is not None:
                name = f"p{len(args) // 3}"
                typed = self._typed(ref)
                args.extend(
                    [
                        "--argjson" if typed else "--arg",
                        name,
                        self.word(value, json_value=typed),
                    ]
                )
                return "$" + name
            pieces = []
            for part in parts(value):
                if part.ref is None:
                    pieces.append(json.dumps(part.text))
                else:
                    name = f"p{len(args) // 3}"
                    args.extend(["--arg", name, self.word(value=None, part=part)])
                    pieces.append("$" + name)
            return "(" + " + ".join(pieces) + ")" if len(pieces) > 1 else pieces[0]

        program = expr(body)
        if not args:
            return quote(json.dumps(body, ensure_ascii=False).replace("\\\\{{", "{{"))
        self.jq = True
        return '"$(jq -nc ' + " ".join(args) + " " + quote(program) + ')"'

    def _typed(self, ref: Ref) -> bool:
        """Whether the value a placeholder stands for is JSON (not a text)."""
        if ref.source in ("responses", "status"):
            return True
        if ref.source == "vars":
            value = self.variables.get(ref.name)
            return ref.path != "" or not isinstance(value, str)
        return ref.source == "dynamic" and ref.name in ("$timestamp", "$randomInt")

    # -- words ------------------------------------------------------------------
    def word(
        self,
        value: str | None = None,
        json_value=False,
        part: Part | None = None,
        prefix: str = "",
        suffix: str = "",
    ):
        """A flow string as one bash word: text single-quoted, placeholders as
        expansions (``prefix``/``suffix``: text around it)."""
        pieces = [part] if part is not None else parts(value)
        pieces = _merged([Part(prefix), *pieces, Part(suffix)])
        out = []
        for piece in pieces:
            if piece.ref is None:
                out.append(quote(piece.text))
            else:
                out.append('"' + self.expansion(piece.ref, json_value) + '"')
        return "".join(out) or "''"

    def expansion(self, ref: Ref, json_value=False) -> str:
        """The shell expansion that gives a placeholder's value (its text, or its
        JSON with ``json_value``)."""
        flags = "-c" if json_value else "-rc"
        if ref.source == "dynamic":
            return {
                "$guid": "$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen)",
                "$timestamp": "$now",
                "$isoTimestamp": "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)",
                "$randomInt": "$((RANDOM % 1001))",
            }[ref.name]
        if ref.source in ("vars", "input"):
            var = _shell_name("var" if ref.source == "vars" else "input", ref.name)
            if not ref.path:
                return "$" + var
            self.jq = True
            return f'$(jq {flags} {quote(jq_path(ref.path))} <<<"${var}")'
        if ref.source == "status":
            return f'$(cat "$dir/{ref.name}.status")'
        if ref.source == "headers":
            steps, _ = paths.parse(ref.path)
            return f"$(_header {ref.name} {quote(str(steps[0]))})"
        self.jq = True
        return f'$(jq {flags} {quote(jq_path(ref.path))} "$dir/{ref.name}.body")'

    # -- conditions ---------------------------------------------------------------
    def conditions(self, node: dict) -> tuple[list[str], list[str]]:
        """``(shell tests, conditions the script cannot check)``."""
        tests, skipped = [], []
        for cond in node.get("conditions") or []:
            test = self.condition(cond)
            if test is None:
                skipped.append(
                    "condition not checked by this script: "
                    + json.dumps(cond, ensure_ascii=False)
                )
            else:
                tests.append(test)
        return tests, skipped

    def condition(self, cond: dict) -> str | None:
        source = cond.get("source") or next(
            (k for k in ("node", "variable", "input") if k in cond), None
        )
        if source == "node" and "httpStatusCode" in cond:
            expected = self.word(str(cond["httpStatusCode"]))
            return f'[ "$(cat "$dir/{cond["node"]}.status")" = {expected} ]'
        field = cond.get("field", ".")
        if source == "node":
            value = f'$(jq -rc {quote(jq_path(field))} "$dir/{cond["node"]}.body")'
            self.jq = True
        elif source in ("variable", "input"):
            kind = "var" if source == "variable" else "input"
            var = _shell_name(kind, cond.get(source, ""))
            value = f"${{{var}-}}"
            if field not in ("", "."):
                self.jq = True
                value = f'$(jq -rc {quote(jq_path(field))} <<<"${{{var}-}}")'
        else:
            return None
        ops = [op for op in OPERATORS if op in cond]
        if len(ops) != 1 or ops[0] not in ("exists", "equals", "notEquals"):
            return None
        op = ops[0]
        if op == "exists":
            # Absent and null read alike as text: jq prints null for both.
            if cond[op]:
                return f'[ -n "{value}" ] && [ "{value}" != null ]'
            return f'{{ [ -z "{value}" ] || [ "{value}" = null ]; }}'
        expected = cond[op]
        shown = expected if isinstance(expected, str) else paths.js_str(expected)
        check = "=" if op == "equals" else "!="
        return f'[ "{value}" {check} {self.word(shown)} ]'


_FORM_TYPE = "application/x-www-form-urlencoded"


def _described(check: dict) -> str:
    """A validation in a few words, for the comment above its command."""
    rest = {k: v for k, v in check.items() if not k.startswith("_")}
    return json.dumps(rest, ensure_ascii=False)


def _merged(pieces: list[Part]) -> list[Part]:
    """Adjacent texts as one (empty ones dropped)."""
    out: list[Part] = []
    for piece in pieces:
        if piece.ref is None and not piece.text:
            continue
        if out and piece.ref is None and out[-1].ref is None:
            out[-1] = Part(out[-1].text + piece.text)
        else:
            out.append(piece)
    return out


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _lines(head: list[str], args: list[str]) -> list[str]:
    """A command written over lines: curl and the URL on the first, then one
    option (and its value) per line."""
    lines, i = [" ".join(head)], 0
    while i < len(args):
        take = 2 if args[i].startswith("-") and i + 1 < len(args) else 1
        lines.append("  " + " ".join(args[i : i + take]))
        i += take
    return [line + " \\" for line in lines[:-1]] + [lines[-1]]
