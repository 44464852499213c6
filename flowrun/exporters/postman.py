"""A flow as a Postman Collection v2.1 that Newman runs.

Each node becomes a request in order. Variables become collection variables
(``{{ .vars.user }}`` → ``{{user}}``); prompt answers are variables to set before
running; ``$guid``, ``$timestamp``, ``$isoTimestamp`` and ``$randomInt`` are
Postman's own. A value taken from an earlier response is saved by that request's
test script as a collection variable (``{{responses.login.token}}``, its JSON as
``{{json:responses.login.user.id}}`` where a body needs the value's type), as are
statuses and headers. Validations become ``pm.test`` assertions with flowrun's
semantics (equality of JavaScript string forms, as FlowSphere compares); conditions
become a pre-request script that skips the request (``pm.execution.skipRequest``,
Newman 6). What Postman cannot express (jq validations, retries, per-request
timeouts) is said in the request's description.
"""

from __future__ import annotations

import json
import re
import uuid

from flowrun.engine import paths
from flowrun.engine.checks import OPERATORS
from flowrun.engine.flow import join_url, node_headers, node_validations
from flowrun.engine.placeholders import Ref
from flowrun.exporters.text import parts, whole
from flowrun.http.forms import encode_form

SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
_FORM = "x-www-form-urlencoded"
_DYNAMIC = {
    "$guid": "$guid",
    "$timestamp": "$timestamp",
    "$isoTimestamp": "$isoTimestamp",
    "$randomInt": "$randomInt",
}
_NUMERIC = {
    "greaterThan": "above",
    "lessThan": "below",
    "greaterThanOrEqual": "at.least",
    "lessThanOrEqual": "at.most",
}
_SYMBOLS = {
    "greaterThan": ">",
    "lessThan": "<",
    "greaterThanOrEqual": ">=",
    "lessThanOrEqual": "<=",
}
# What the test and pre-request scripts share: the body, a PATH's value, and
# flowrun's comparisons (JavaScript string forms, as FlowSphere compares).
_PRELUDE = [
    "const fr = {",
    "  body: () => { try { return pm.response.json(); } "
    "catch (e) { return pm.response.text(); } },",
    "  at: (v, steps) => steps.reduce((x, k) => x === undefined || x === null ? "
    "undefined : typeof k === 'number' && k < 0 && Array.isArray(x) ? "
    "x[x.length + k] : x[k], v),",
    "  str: (v) => v === null ? 'null' : Array.isArray(v) ? v.map(fr.str).join(',') "
    ": typeof v === 'object' ? JSON.stringify(v) : String(v),",
    "  len: (v) => Array.isArray(v) || typeof v === 'string' ? v.length : v && "
    "typeof v === 'object' ? Object.keys(v).length : undefined,",
    "  has: (v, x) => Array.isArray(v) ? v.some((e) => fr.str(e) === fr.str(x)) : "
    "v && typeof v === 'object' ? fr.str(x) in v : fr.str(v).includes(fr.str(x)),",
    "  is: (v) => v !== undefined && v !== null,",
    "};",
]


def collection(flow: dict) -> dict:
    """The Postman collection (v2.1) for a normalised, valid flow."""
    return _Collection(flow).build()


def text(flow: dict) -> str:
    return json.dumps(collection(flow), indent=2, ensure_ascii=False) + "\n"


def _name(ref: Ref) -> str:
    """The Postman variable a placeholder becomes."""
    if ref.source == "dynamic":
        return _DYNAMIC[ref.name]
    if ref.source == "vars" and not ref.path:
        return ref.name
    if ref.source == "input" and not ref.path:
        return ref.name
    return f"{ref.source}.{ref.name}{ref.path.replace(' ', '')}"


def _steps(path: str) -> tuple[str, bool]:
    """A PATH as a JavaScript array of steps, and whether it ends in ``| length``."""
    steps, length = paths.parse(path or ".")
    return json.dumps(list(steps)), length


def _value(source: str, path: str) -> str:
    """JavaScript for the value at PATH in ``source`` (an expression)."""
    steps, length = _steps(path)
    value = f"fr.at({source}, {steps})"
    return f"fr.len({value})" if length else value


class _Collection:
    def __init__(self, flow: dict):
        self.flow = flow
        self.defaults = flow.get("defaults") or {}
        self.variables = dict(flow.get("variables") or {})
        self.saves: dict[str, list[str]] = {}  # node id -> script lines saving values
        self.prompts: list[str] = []
        self.literal_braces = False

    def build(self) -> dict:
        items = [self.item(node) for node in self.flow["nodes"]]
        for item, node in zip(items, self.flow["nodes"], strict=True):
            saves = self.saves.get(node["id"])
            if saves:
                script = self._script(item, "test")
                script.extend(saves)
        for item in items:
            for event in item.get("event", []):
                lines = event["script"]["exec"]
                if any("fr." in line for line in lines):
                    event["script"]["exec"] = _PRELUDE + lines
        notes = []
        if self.prompts:
            notes.append(
                "Prompt answers are collection variables here: set "
                + ", ".join(sorted(set(self.prompts)))
                + " before running (newman run … --env-var name=value)."
            )
        if self.literal_braces:
            notes.append(
                "Text written as \\{{ in the flow is sent as {{: Postman sends it as "
                "written when no variable has that name."
            )
        description = "\n\n".join(
            p for p in (self.flow.get("description"), *notes) if p
        )
        seed = json.dumps(self.flow, sort_keys=True, ensure_ascii=False, default=str)
        info = {
            "_postman_id": str(uuid.uuid5(uuid.NAMESPACE_URL, seed)),
            "name": self.flow.get("name") or "flowrun flow",
            "schema": SCHEMA,
        }
        if description:
            info["description"] = description
        variables = [
            {"key": k, "value": v if isinstance(v, str) else json.dumps(v)}
            for k, v in self.variables.items()
        ]
        variables += [{"key": k, "value": ""} for k in sorted(set(self.prompts))]
        out = {"info": info, "item": items}
        if self.saves.get(""):
            # Values inside variables (a PATH after .vars or .input): worked out
            # before every request.
            out["event"] = [
                {
                    "listen": "prerequest",
                    "script": {
                        "type": "text/javascript",
                        "exec": _PRELUDE + self.saves[""],
                    },
                }
            ]
        if variables:
            out["variable"] = variables
        return out

    # -- one request ----------------------------------------------------------
    def item(self, node: dict) -> dict:
        notes: list[str] = []
        headers = node_headers(node, self.defaults)
        url = join_url(self.defaults.get("baseUrl", ""), node["url"])
        request = {
            "method": node["method"],
            "header": [{"key": k, "value": self.text(v)} for k, v in headers.items()],
            "url": self.text(url),
        }
        body = self.body(node, headers, request)
        if body is not None:
            request["body"] = body
        item = {"name": node["name"], "request": request}
        for key in node.get("userPrompts") or {}:
            self.prompts.append(key)
        lines = [self.check(v, notes) for v in node_validations(node, self.defaults)]
        lines = [line for line in lines if line]
        if lines:
            self._script(item, "test").extend(lines)
        pre = self.conditions(node, notes)
        if node.get("delayMs"):
            pre.append(f"setTimeout(function () {{}}, {node['delayMs']:g});")
        if pre:
            self._script(item, "prerequest").extend(pre)
        if node.get("retry"):
            notes.append("flowrun retries this request; Postman does not.")
        if "timeout" in node:
            notes.append(
                f"flowrun gives it {node['timeout']:g}s; set Newman's "
                "--timeout-request for all requests."
            )
        description = "\n\n".join(p for p in (node.get("description"), *notes) if p)
        if description:
            request["description"] = description
        return item

    @staticmethod
    def _script(item: dict, listen: str) -> list[str]:
        for event in item.setdefault("event", []):
            if event["listen"] == listen:
                return event["script"]["exec"]
        lines: list[str] = []
        item["event"].append(
            {"listen": listen, "script": {"type": "text/javascript", "exec": lines}}
        )
        return lines

    def body(self, node: dict, headers: dict, request: dict):
        body = node.get("body")
        if body is None or node["method"] in ("GET", "HEAD"):
            return None
        content_type = next(
            (v for k, v in headers.items() if k.lower() == "content-type"), ""
        )
        body_format = node.get("bodyFormat", self.defaults.get("bodyFormat"))
        if isinstance(body, str) or body_format == "text":
            raw = body if isinstance(body, str) else paths.text(body)
            return {"mode": "raw", "raw": self.text(raw)}
        if _FORM in content_type.lower() or body_format == "form-urlencoded":
            return {
                "mode": "urlencoded",
                "urlencoded": [
                    {"key": k, "value": self.text(v)} for k, v in encode_form(body)
                ],
            }
        if not content_type:
            request["header"].append(
                {"key": "Content-Type", "value": "application/json"}
            )
        return {
            "mode": "raw",
            "raw": self.json_text(body),
            "options": {"raw": {"language": "json"}},
        }

    # -- text and placeholders ------------------------------------------------
    def text(self, value: str, form: str = "text") -> str:
        """A flow string in Postman's words (placeholders as ``{{name}}``);
        ``form="jsonin"``: placeholders as text escaped for a JSON string."""
        out = []
        for part in parts(value):
            if part.ref is None:
                self.literal_braces |= "{{" in part.text
                out.append(
                    json.dumps(part.text)[1:-1] if form == "jsonin" else part.text
                )
            else:
                out.append("{{" + self.variable(part.ref, form) + "}}")
        return "".join(out)

    def json_text(self, body) -> str:
        """A JSON body's raw text. A value a placeholder gives alone is written
        bare as its JSON (``{"id": {{json:responses.create.id}}}``: it keeps its
        type); inside a longer string, as text escaped for JSON."""
        bare: dict[str, str] = {}

        def walk(value):
            if isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            if not isinstance(value, str):
                return value
            ref = whole(value)
            if ref is not None:
                mark = f"\x00{len(bare)}\x00"
                written = "{{" + self.variable(ref, "json") + "}}"
                if ref.source == "dynamic" and ref.name in ("$guid", "$isoTimestamp"):
                    written = f'"{written}"'  # Postman's own: text, no quotes in it
                bare[mark] = written
                return mark
            mark = f"\x00{len(bare)}\x00"
            bare[mark] = '"' + self.text(value, "jsonin") + '"'
            return mark

        raw = json.dumps(walk(body), indent=2, ensure_ascii=False)
        for mark, written in bare.items():
            raw = raw.replace(json.dumps(mark), written, 1)
        return raw

    def variable(self, ref: Ref, form: str = "text") -> str:
        """The variable for a placeholder, arranging for it to be set: its text
        (``form="text"``), its JSON (``"json"``), or its text escaped for a JSON
        string (``"jsonin"``)."""
        name = _name(ref)
        if ref.source == "dynamic":
            return name
        if ref.source == "input":
            self.prompts.append(ref.name)
        if ref.source in ("vars", "input") and not ref.path and form == "text":
            return name
        if ref.source in ("vars", "input"):
            # Worked out before every request, from the variable's value.
            got = f"pm.variables.get({json.dumps(ref.name)})"
            typed = ref.source == "vars" and not isinstance(
                self.variables.get(ref.name), str
            )
            if ref.path:
                value = _value(
                    f"(() => {{ try {{ return JSON.parse({got}); }} catch "
                    f"(e) {{ return {got}; }} }})()",
                    ref.path,
                )
            else:
                value = f"JSON.parse({got})" if typed else got
        elif ref.source == "status":
            value = "pm.response.code"
        elif ref.source == "headers":
            steps, _ = paths.parse(ref.path)
            value = f"pm.response.headers.get({json.dumps(str(steps[0]))})"
        else:
            value = _value("fr.body()", ref.path)
        if form == "json":
            name, shown = "json:" + name, f"JSON.stringify({value})"
        elif form == "jsonin":
            name = "jsonin:" + name
            shown = f"JSON.stringify(fr.str({value})).slice(1, -1)"
        else:
            shown = f"fr.str({value})"
        line = f"pm.collectionVariables.set({json.dumps(name)}, {shown});"
        owner = ref.name if ref.source in ("responses", "headers", "status") else ""
        saves = self.saves.setdefault(owner, [])
        if line not in saves:
            saves.append(line)
        return name

    # -- validations ----------------------------------------------------------
    def check(self, spec: dict, notes: list[str]) -> str:
        """A validation as a ``pm.test`` (or a note when Postman cannot say it)."""
        title = json.dumps(
            json.dumps({k: v for k, v in spec.items() if k[:1] != "_"}),
            ensure_ascii=False,
        )
        if "httpStatusCode" in spec:
            codes = spec["httpStatusCode"]
            codes = codes if isinstance(codes, list) else [codes]
            listed = ", ".join(f"fr.str({self.expected(c)})" for c in codes)
            test = f"pm.expect(fr.str(pm.response.code)).to.be.oneOf([{listed}]);"
            return f"pm.test({title}, function () {{ {test} }});"
        if "maxDurationMs" in spec:
            limit = self.expected(spec["maxDurationMs"])
            test = (
                f"pm.expect(pm.response.responseTime).to.be.at.most(Number({limit}));"
            )
            return f"pm.test({title}, function () {{ {test} }});"
        if "schema" in spec:
            test = f"pm.response.to.have.jsonSchema({json.dumps(spec['schema'])});"
            return f"pm.test({title}, function () {{ {test} }});"
        if "jsonpath" in spec:
            value = _value("fr.body()", spec["jsonpath"])
        elif "header" in spec:
            value = f"pm.response.headers.get({json.dumps(spec['header'])})"
        else:
            notes.append(
                f"Not exported: the jq validation {json.dumps(spec['jq'])} "
                "(Postman has no jq)."
            )
            return ""
        asserts = []
        ops = [op for op in OPERATORS if op in spec] or ["exists"]
        for op in ops:
            line = self.operator(op, spec.get(op, True), notes)
            if line is None:
                return ""
            asserts.append(line)
        body = " ".join(asserts)
        return f"pm.test({title}, function () {{ const v = {value}; {body} }});"

    def operator(self, op: str, expected, notes: list[str]) -> str | None:
        if op == "exists":
            return f"pm.expect(fr.is(v)).to.equal({'true' if expected else 'false'});"
        want = self.expected(expected)
        if op == "equals":
            return f"pm.expect(fr.str(v)).to.equal(fr.str({want}));"
        if op == "notEquals":
            return f"pm.expect(fr.str(v)).to.not.equal(fr.str({want}));"
        if op in _NUMERIC:
            return f"pm.expect(Number(v)).to.be.{_NUMERIC[op]}(Number({want}));"
        if op == "contains":
            return f"pm.expect(fr.has(v, {want})).to.equal(true);"
        pattern, flags = str(expected), ""
        if pattern.startswith("(?i)"):
            pattern, flags = pattern[4:], "i"
        if re.search(r"\(\?[a-zA-Z]", pattern):
            notes.append(f"Not exported: the pattern {pattern!r} (Python-only flags).")
            return None
        source = (
            f"pm.variables.replaceIn({json.dumps(self.text(pattern))})"
            if "{{" in pattern
            else json.dumps(pattern)
        )
        return (
            f"pm.expect(fr.str(v)).to.match(new RegExp({source}, {json.dumps(flags)}));"
        )

    def expected(self, value) -> str:
        """JavaScript for an expected value (placeholders resolved when run)."""
        if isinstance(value, str) and "{{" in value:
            return f"pm.variables.replaceIn({json.dumps(self.text(value))})"
        if isinstance(value, str):
            return json.dumps(value.replace("\\{{", "{{"))
        return json.dumps(value)

    # -- conditions -----------------------------------------------------------
    def conditions(self, node: dict, notes: list[str]) -> list[str]:
        tests = []
        for cond in node.get("conditions") or []:
            source = cond.get("source") or next(
                (k for k in ("node", "variable", "input") if k in cond), None
            )
            if source == "node":
                target = cond["node"]
                status = f"status.{target}"
                saved = f"body.{target}"
                self.saves.setdefault(target, [])
                for line in (
                    f'pm.collectionVariables.set("{status}", '
                    "String(pm.response.code));",
                    f'pm.collectionVariables.set("{saved}", pm.response.text());',
                ):
                    if line not in self.saves[target]:
                        self.saves[target].append(line)
                ran = f'pm.collectionVariables.get("{status}") !== undefined'
                if "httpStatusCode" in cond:
                    want = self.expected(cond["httpStatusCode"])
                    tests.append(
                        f'({ran} && pm.collectionVariables.get("{status}") === '
                        f"fr.str({want}))"
                    )
                    continue
                value = (
                    f'(() => {{ const t = pm.collectionVariables.get("{saved}"); '
                    "try { return JSON.parse(t); } catch (e) { return t; } })()"
                )
                value = _value(value, cond.get("field", "."))
                tests.append(f"({ran} && {self.holds(cond, value)})")
            else:
                name = cond.get(source, "")
                if source == "input":
                    self.prompts.append(name)
                value = f"pm.variables.get({json.dumps(name)})"
                if cond.get("field"):
                    value = _value(
                        f"(() => {{ try {{ return JSON.parse({value}); }} catch (e) "
                        f"{{ return {value}; }} }})()",
                        cond["field"],
                    )
                tests.append(self.holds(cond, value))
        if not tests:
            return []
        return [
            "// flowrun conditions: the request runs only if all hold.",
            f"if (!({' && '.join(tests)})) {{ pm.execution.skipRequest(); }}",
        ]

    def holds(self, cond: dict, value: str) -> str:
        ops = [op for op in OPERATORS if op in cond] or ["exists"]
        out = []
        for op in ops:
            want = self.expected(cond.get(op, True))
            v = f"({value})"
            if op == "exists":
                out.append(f"fr.is{v} === {'true' if cond.get(op, True) else 'false'}")
            elif op == "equals":
                out.append(f"fr.str{v} === fr.str({want})")
            elif op == "notEquals":
                out.append(f"fr.str{v} !== fr.str({want})")
            elif op in _NUMERIC:
                out.append(f"Number{v} {_SYMBOLS[op]} Number({want})")
            elif op == "contains":
                out.append(f"fr.has({value}, {want})")
            else:
                out.append(f"new RegExp({want}).test(fr.str{v})")
        return " && ".join(out)
