"""Postman Collection v2.1 / v2.0 JSON → a flow.

Requests become nodes in folder order; collection variables become flow variables;
``{{var}}`` becomes ``{{ .vars.var }}``; bearer/basic/API-key auth becomes headers;
test scripts' common assertions become validations and the values they save from a
response become response references (see ``_scripts``). What cannot be carried over
is listed in the node's or the flow's description.
"""

from __future__ import annotations

import base64
import json
import re

from flowrun.engine.flow import METHODS, header
from flowrun.importers._common import (
    Ids,
    absolute,
    describe,
    finish,
    invalid,
    load_json,
    split_base_url,
    var_name,
    var_ref,
)
from flowrun.importers._scripts import Reader

LABEL = "Postman collection"
_HINT = "Export the collection from Postman as Collection v2.1 (JSON)."

_PM_VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
# Postman dynamic variables flowrun has too.
_DYNAMIC = {
    "$guid": "$guid",
    "$randomUUID": "$guid",
    "$timestamp": "$timestamp",
    "$isoTimestamp": "$isoTimestamp",
    "$randomInt": "$randomInt",
}
# ``/:id`` path variables (after a '/', so ``host:8080`` is left alone).
_PATH_VAR = re.compile(r"(?<=/):([A-Za-z_][A-Za-z0-9_.-]*)")
_IMPLIED_TYPES = {
    "json": "application/json",
    "text": "text/plain",
    "xml": "application/xml",
    "html": "text/html",
    "javascript": "application/javascript",
}


def convert(content) -> dict:
    """Convert a Postman collection (JSON text or the parsed object) to a flow."""
    doc = load_json(LABEL, content, _HINT) if isinstance(content, str) else content
    if isinstance(doc, dict) and isinstance(doc.get("collection"), dict):
        # The Postman API wraps exports in {"collection": …}.
        doc = doc["collection"]
    if not isinstance(doc, dict):
        raise invalid(LABEL, "a collection must be a JSON object", hint=_HINT)
    if "requests" in doc and "item" not in doc:
        raise invalid(LABEL, "Postman Collection v1 is not supported", hint=_HINT)
    if not isinstance(doc.get("info"), dict) or "item" not in doc:
        raise invalid(
            LABEL, "not a Postman collection (no 'info' and 'item')", hint=_HINT
        )
    return _Converter(doc).flow()


def _text(value) -> str:
    """A Postman description: a string or ``{"content": …}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def _params(auth: dict, kind: str) -> dict:
    """An auth block's parameters: a list of {key, value} (v2.1) or an object (v2.0)."""
    raw = auth.get(kind)
    if isinstance(raw, dict):
        return raw
    out = {}
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict) and "key" in entry:
            out[entry["key"]] = entry.get("value")
    return out


def _enabled(entries) -> list[dict]:
    return [
        e
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict) and not e.get("disabled") and e.get("key") is not None
    ]


def _json_template(raw: str):
    """Parse a JSON body whose values may be bare ``{{var}}`` placeholders.

    Returns ``(value, bare names)`` or None when it is not a JSON object or array.
    A bare placeholder becomes a string that is exactly that placeholder, which the
    engine replaces by the variable's value with its JSON type.
    """
    out, names, i, in_string = [], [], 0, False
    while i < len(raw):
        c = raw[i]
        if in_string:
            out.append(raw[i : i + 2] if c == "\\" else c)
            i += 2 if c == "\\" else 1
            in_string = c != '"'
            continue
        if c == '"':
            in_string = True
        elif raw.startswith("//", i) or raw.startswith("/*", i):
            # Postman strips comments from JSON bodies before sending them.
            close = "\n" if raw[i + 1] == "/" else "*/"
            end = raw.find(close, i + 2)
            i = len(raw) if end == -1 else end + len(close)
            continue
        elif c in "}]":
            # ... and so tolerates a trailing comma.
            j = len(out) - 1
            while j >= 0 and out[j].isspace():
                j -= 1
            if j >= 0 and out[j] == ",":
                del out[j]
        elif raw.startswith("{{", i) and (end := raw.find("}}", i + 2)) != -1:
            names.append(raw[i + 2 : end].strip())
            out.append(json.dumps(f"\x00{len(names) - 1}\x00"))
            i = end + 2
            continue
        out.append(c)
        i += 1
    try:
        value = json.loads("".join(out))
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, (dict, list)):
        return None

    def restore(v):
        if isinstance(v, dict):
            return {k: restore(x) for k, x in v.items()}
        if isinstance(v, list):
            return [restore(x) for x in v]
        if isinstance(v, str) and (m := re.fullmatch(r"\x00(\d+)\x00", v)):
            return "{{" + names[int(m.group(1))] + "}}"
        return v

    return restore(value), names


class _Converter:
    def __init__(self, doc: dict):
        self.doc = doc
        self.variables: dict = {}
        self.bare: set[str] = set()
        self.ids = Ids()
        self.nodes: list[dict] = []
        self.notes: list[str] = []
        # Variables a test script sets from a response: name -> placeholder body.
        self.chained: dict[str, str] = {}
        for entry in _enabled(doc.get("variable")):
            value = entry.get("value")
            self.variables[var_name(entry["key"])] = "" if value is None else value

    def flow(self) -> dict:
        info = self.doc["info"]
        self.walk(
            self.doc["item"], "item", self.doc.get("auth"), self._events(self.doc)
        )
        if not self.nodes:
            raise invalid(LABEL, "the collection has no requests", path="content.item")
        # Postman variables are strings; one written bare in a JSON body
        # (``{"id": {{id}}}``) stood for a number or boolean, so keep that type.
        for name in self.bare:
            value = self.variables.get(name)
            if isinstance(value, str):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    continue
                if not isinstance(parsed, (dict, list, str)):
                    self.variables[name] = parsed
        flow = {
            "name": str(info.get("name") or "Imported Postman collection"),
            "description": describe(
                _text(info.get("description")),
                "Imported from a Postman collection.",
                *self.notes,
            ),
            "variables": self.variables,
        }
        base = split_base_url(self.nodes)
        if base:
            flow["defaults"] = {"baseUrl": base}
        flow["nodes"] = self.nodes
        return finish(LABEL, flow)

    # -- placeholders ---------------------------------------------------------
    def sub(self, text) -> str:
        """Translate Postman ``{{var}}`` placeholders in a string."""
        if not isinstance(text, str):
            return "" if text is None else str(text)

        def repl(m):
            name = m.group(1)
            if name in _DYNAMIC:
                return "{{ " + _DYNAMIC[name] + " }}"
            if var_name(name) in self.chained:
                return "{{ " + self.chained[var_name(name)] + " }}"
            if name.startswith("$"):
                note = (
                    f"Postman dynamic variable {{{{{name}}}}} has no flowrun "
                    f"equivalent: it became the variable '{var_name(name[1:])}'."
                )
                if note not in self.notes:
                    self.notes.append(note)
                name = name[1:]
            return var_ref(self.use(name))

        return _PM_VAR.sub(repl, text)

    def use(self, name: str) -> str:
        name = var_name(name)
        self.variables.setdefault(name, "")
        return name

    def sub_all(self, value):
        """Translate placeholders in every string of a JSON value (keys excluded)."""
        if isinstance(value, dict):
            return {k: self.sub_all(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.sub_all(v) for v in value]
        return self.sub(value) if isinstance(value, str) else value

    # -- walking --------------------------------------------------------------
    @staticmethod
    def _events(item: dict) -> list:
        return [e for e in item.get("event") or [] if isinstance(e, dict)]

    def walk(self, items, path: str, auth, events: list) -> None:
        if not isinstance(items, list):
            raise invalid(LABEL, f"{path} must be an array", path=f"content.{path}")
        for index, item in enumerate(items):
            where = f"{path}[{index}]"
            if not isinstance(item, dict):
                raise invalid(
                    LABEL, f"{where} must be an object", path=f"content.{where}"
                )
            own_auth = item.get("auth")
            if not isinstance(own_auth, dict) or own_auth.get("type") == "inherit":
                own_auth = auth
            scripts = events + self._events(item)
            if "item" in item:
                self.walk(item["item"], f"{where}.item", own_auth, scripts)
            elif "request" in item:
                self.request(item, where, own_auth, scripts)
            else:
                raise invalid(
                    LABEL,
                    f"{where} is neither a folder ('item') nor a request ('request')",
                    path=f"content.{where}",
                )

    def request(self, item: dict, where: str, auth, scripts: list) -> None:
        req = item["request"]
        if isinstance(req, str):
            req = {"url": req}
        if not isinstance(req, dict):
            raise invalid(
                LABEL, f"{where}.request must be an object", path=f"content.{where}"
            )
        name = str(item.get("name") or "").strip() or "Request"
        method = str(req.get("method") or "GET").upper()
        if method not in METHODS:
            self.notes.append(f"Skipped '{name}': method {method} is not supported.")
            return
        notes: list[str] = []
        url = self.url(req.get("url"))
        if not url or url.startswith(("/", "?")):
            self.notes.append(f"Skipped '{name}': it has no URL with a host.")
            return
        headers = self.headers(req.get("header"))
        own_auth = req.get("auth")
        if isinstance(own_auth, dict) and own_auth.get("type") != "inherit":
            auth = own_auth
        url = self.auth(auth, headers, url)
        node = {"id": self.ids(name), "name": name, "method": method, "url": url}
        body = self.body(req.get("body"), headers, notes)
        if headers:
            node["headers"] = headers
        if body is not None:
            node["body"] = body
        validations = self.validations(scripts, notes, node["id"])
        if validations:
            node["validations"] = validations
        text = describe(_text(req.get("description") or item.get("description")))
        if text or notes:
            node["description"] = describe(text, *notes)
        self.nodes.append(node)

    def url(self, url) -> str:
        if isinstance(url, dict):
            raw = url.get("raw")
            if not isinstance(raw, str) or not raw.strip():
                raw = self._url_from_parts(url)
            for entry in _enabled(url.get("variable")):
                value = entry.get("value")
                self.variables.setdefault(var_name(entry["key"]), value or "")
        elif isinstance(url, str):
            raw = url
        else:
            return ""
        raw = raw.strip()
        raw = _PATH_VAR.sub(lambda m: "{{" + m.group(1) + "}}", raw)
        return absolute(self.sub(raw))

    @staticmethod
    def _url_from_parts(url: dict) -> str:
        host = url.get("host") or ""
        if isinstance(host, list):
            host = ".".join(str(h) for h in host)
        text = f"{url['protocol']}://{host}" if url.get("protocol") else str(host)
        if url.get("port"):
            text += f":{url['port']}"
        path = url.get("path") or ""
        if isinstance(path, list):
            # v2.0 path segments may be {"type": "string", "value": …}.
            path = "/".join(
                str(p.get("value", "")) if isinstance(p, dict) else str(p) for p in path
            )
        if path:
            text += "/" + str(path).lstrip("/")
        query = [
            f"{q['key']}={q.get('value') or ''}" for q in _enabled(url.get("query"))
        ]
        if query:
            text += "?" + "&".join(query)
        return text

    def headers(self, entries) -> dict:
        if isinstance(entries, str):
            # v2.0 allows one "Name: value" per line.
            entries = [
                {"key": k.strip(), "value": v.strip()}
                for k, _, v in (line.partition(":") for line in entries.splitlines())
                if k.strip()
            ]
        return {str(e["key"]): self.sub(e.get("value")) for e in _enabled(entries)}

    def auth(self, auth, headers: dict, url: str) -> str:
        """Add the request's auth as a header (or query parameter); return the URL."""
        if not isinstance(auth, dict) or auth.get("type") in (None, "noauth"):
            return url
        kind = auth["type"]
        params = _params(auth, kind)
        if header(headers, "Authorization") is not None and kind != "apikey":
            return url
        if kind == "bearer":
            headers["Authorization"] = "Bearer " + self.sub(params.get("token"))
        elif kind == "oauth2" and params.get("accessToken"):
            headers["Authorization"] = "Bearer " + self.sub(params["accessToken"])
        elif kind == "basic":
            user, password = params.get("username") or "", params.get("password") or ""
            if "{{" in f"{user}{password}":
                self.notes.append(
                    "Basic auth built from variables cannot be encoded ahead of "
                    "time: add an Authorization header where it is needed."
                )
            else:
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
        elif kind == "apikey":
            key, value = self.sub(params.get("key")), self.sub(params.get("value"))
            if params.get("in") == "query":
                url += ("&" if "?" in url else "?") + f"{key}={value}"
            elif key and header(headers, key) is None:
                headers[key] = value
        else:
            note = f"Auth type '{kind}' is not supported: add its header by hand."
            if note not in self.notes:
                self.notes.append(note)
        return url

    def body(self, body, headers: dict, notes: list):
        if not isinstance(body, dict) or body.get("disabled"):
            return None
        mode = body.get("mode")
        content_type = header(headers, "Content-Type")
        if mode == "raw":
            raw = body.get("raw")
            if not isinstance(raw, str) or not raw.strip():
                return None
            options = (body.get("options") or {}).get("raw") or {}
            language = options.get("language") if isinstance(options, dict) else None
            implied = content_type is None and language in _IMPLIED_TYPES
            if implied:
                # Postman sends these Content-Types without showing them as headers.
                content_type = headers["Content-Type"] = _IMPLIED_TYPES[language]
            if content_type and "json" in content_type.lower():
                parsed = _json_template(raw)
                if parsed is not None:
                    value, names = parsed
                    self.bare.update(
                        var_name(n) for n in names if not n.startswith("$")
                    )
                    return self.sub_all(value)
                if implied:
                    # Marked JSON but it is not: send the text as written, unlabelled.
                    del headers["Content-Type"]
                    notes.append("The body is marked JSON but does not parse as JSON.")
            return self.sub(raw)
        if mode in ("urlencoded", "formdata"):
            form = {}
            for entry in _enabled(body.get(mode)):
                if entry.get("type") == "file":
                    notes.append(
                        f"File field '{entry['key']}' dropped: file uploads are "
                        "not supported."
                    )
                    continue
                form[str(entry["key"])] = self.sub(entry.get("value"))
            if mode == "formdata":
                notes.append("Multipart form data is sent URL-encoded.")
                for name in [k for k in headers if k.lower() == "content-type"]:
                    del headers[name]
            if not form:
                return None
            if header(headers, "Content-Type") is None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            return form
        if mode == "graphql":
            graphql = body.get("graphql") or {}
            variables = graphql.get("variables") or {}
            if isinstance(variables, str):
                parsed = _json_template(variables) if variables.strip() else ({}, [])
                variables = parsed[0] if parsed else {}
            if content_type is None:
                headers["Content-Type"] = "application/json"
            return self.sub_all(
                {"query": graphql.get("query") or "", "variables": variables}
            )
        if mode:
            notes.append(f"Body mode '{mode}' is not supported: the body was dropped.")
        return None

    def validations(self, scripts: list, notes: list, node_id: str) -> list[dict]:
        """Translate what the request's test scripts check and save."""
        reader = Reader(node_id)
        for event in scripts:
            script = event.get("script") or {}
            lines = script.get("exec") if isinstance(script, dict) else None
            if isinstance(lines, str):
                lines = lines.splitlines()
            lines = [str(line) for line in lines or []]
            if event.get("listen") != "test":
                note = "Pre-request script ignored: scripts cannot run."
                if any(line.strip() for line in lines) and note not in notes:
                    notes.append(note)
                continue
            for line in lines:
                reader.read(line)
        for name, ref in reader.saved.items():
            # Later requests refer to the response directly: the variable would
            # only ever hold that value.
            self.chained[var_name(name)] = ref
            notes.append(
                f"The test script sets '{name}'; later requests use "
                f"{{{{ {ref} }}}} instead."
            )
        if reader.untranslated:
            notes.append(
                f"Test script: {reader.untranslated} line(s) not translated (scripts "
                "cannot run; write what they check as validations)."
            )
        return reader.validations()
