"""Postman Collection v2.1 / v2.0 JSON → a flow.

Requests become nodes in folder order; collection, folder and request variables
become flow variables; ``{{var}}`` becomes ``{{ .vars.var }}`` (a literal ``{{`` is
escaped); the query comes from ``url.query`` and path variables from
``url.variable``, as Newman sends them; every auth type Postman exports becomes a
header or query parameter where flowrun can send it, and a note where it cannot
(signatures computed per request); test scripts' common assertions become
validations and the values they save from a response become response references
(see ``_scripts``). A request flowrun cannot send as it is is imported as close as
possible (a body sent as written, a node skipped by default) with a note located by
folder and request name.
"""

from __future__ import annotations

import base64
import json
import re

from flowrun.engine.flow import METHODS, header
from flowrun.engine.placeholders import as_literal, escape
from flowrun.importers._common import (
    Collector,
    Imported,
    absolute,
    describe,
    invalid,
    load_json,
    multipart,
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
# Auth schemes whose header is a signature computed for each request (or a
# challenge-response): flowrun cannot produce it.
_SIGNED = {
    "oauth1": "OAuth 1.0 signs each request",
    "digest": "Digest answers the server's challenge",
    "hawk": "Hawk signs each request",
    "awsv4": "AWS Signature v4 signs each request",
    "ntlm": "NTLM is a challenge-response handshake",
    "edgegrid": "Akamai EdgeGrid signs each request",
    "akamai": "Akamai EdgeGrid signs each request",
    "asap": "ASAP signs a token for each request",
    "jwt": "a JWT is generated for each request",
}


def read(content, max_nodes: int, path=None) -> Imported:
    """Import a Postman collection (JSON text or the parsed object)."""
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
    if not isinstance(doc["item"], list):
        raise invalid(LABEL, "item must be an array", path="content.item")
    return _Converter(doc, max_nodes).flow()


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
    def __init__(self, doc: dict, max_nodes: int):
        self.doc = doc
        self.collector = Collector(LABEL, max_nodes)
        self.variables: dict = {}
        # Variables whose value uses other variables: written where they are used.
        self.composite: dict[str, str] = {}
        self.bare: set[str] = set()
        # Variables a test script sets from a response: name -> placeholder body.
        self.chained: dict[str, str] = {}
        self.notes: list[str] = []  # of the request being converted
        self.declare(doc.get("variable"), "the collection")

    def flow(self) -> Imported:
        info = self.doc["info"]
        self.walk(self.doc["item"], [], self.doc.get("auth"), self._events(self.doc))
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
        for name in self.composite:
            self.variables.pop(name, None)
        flow = {
            "name": str(info.get("name") or "Imported Postman collection"),
            "description": describe(
                _text(info.get("description")), "Imported from a Postman collection."
            ),
            "variables": self.variables,
        }
        return self.collector.finish(flow)

    # -- variables and placeholders -------------------------------------------
    def declare(self, entries, owner: str) -> None:
        """Add a collection's, folder's or request's variables."""
        for entry in _enabled(entries):
            name, value = var_name(entry["key"]), entry.get("value")
            value = "" if value is None else value
            if isinstance(value, str) and "{{" in value:
                self.composite.setdefault(name, value)
            elif name in self.variables and self.variables[name] not in ("", value):
                self.collector.note(
                    owner,
                    f"Variable '{name}' is set again by {owner} "
                    f"({json.dumps(value)}): the flow keeps "
                    f"{json.dumps(self.variables[name])}.",
                )
            else:
                self.variables[name] = value

    def sub(self, text, _seen: frozenset = frozenset()) -> str:
        """Translate Postman ``{{var}}`` placeholders in a string; escape the rest."""
        if not isinstance(text, str):
            return "" if text is None else str(text)
        out, last = [], 0
        for m in _PM_VAR.finditer(text):
            out.append(escape(text[last : m.start()]))
            out.append(self._placeholder(m.group(1), m.group(0), _seen))
            last = m.end()
        out.append(escape(text[last:]))
        return "".join(out)

    def _placeholder(self, name: str, written: str, seen: frozenset) -> str:
        if name in _DYNAMIC:
            return "{{ " + _DYNAMIC[name] + " }}"
        key = var_name(name)
        if key in self.chained:
            return "{{ " + self.chained[key] + " }}"
        if key in self.composite:
            if key in seen:
                self.notes.append(f"Variable '{name}' refers to itself: sent as text.")
                return escape(written)
            self.notes.append(
                f"Variable '{name}' is made of other variables: its value "
                f"({self.composite[key]}) is written where it is used."
            )
            return self.sub(self.composite[key], seen | {key})
        if name.startswith("$"):
            self.notes.append(
                f"Postman's dynamic variable {name} has no flowrun equivalent: it "
                f"became the variable '{var_name(name[1:])}'."
            )
            name = name[1:]
        return var_ref(self.use(name))

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
        events = item.get("event")
        return (
            [e for e in events if isinstance(e, dict)]
            if isinstance(events, list)
            else []
        )

    def walk(self, items, folders: list[str], auth, events: list) -> None:
        for index, item in enumerate(items):
            name = str(item.get("name") or "").strip() if isinstance(item, dict) else ""
            where = " / ".join([*folders, name or f"item {index + 1}"])
            if not isinstance(item, dict):
                self.collector.leave_out(where, "left out: not a folder or request")
                continue
            own_auth = item.get("auth")
            if not isinstance(own_auth, dict) or own_auth.get("type") == "inherit":
                own_auth = auth
            scripts = events + self._events(item)
            if "item" in item:
                self.declare(item.get("variable"), f"folder '{where}'")
                children = item["item"]
                if isinstance(children, list):
                    self.walk(children, [*folders, name or "folder"], own_auth, scripts)
                else:
                    self.collector.leave_out(where, "left out: its item is not a list")
            elif "request" in item:
                self.declare(item.get("variable"), f"request '{where}'")
                self.notes = []
                self.request(item, where, own_auth, scripts)
            else:
                self.collector.leave_out(
                    where, "left out: neither a folder ('item') nor a request"
                )

    def request(self, item: dict, where: str, auth, scripts: list) -> None:
        req = item["request"]
        if isinstance(req, str):
            req = {"url": req}
        if not isinstance(req, dict):
            self.collector.leave_out(where, "left out: its request is not an object")
            return
        notes = self.notes
        skip = None
        name = str(item.get("name") or "").strip() or "Request"
        method = str(req.get("method") or "GET").upper()
        url = self.url(req.get("url"))
        if not url or url.startswith(("/", "?")):
            self.collector.leave_out(where, "left out: it has no URL with a host")
            return
        headers = self.headers(req.get("header"))
        own_auth = req.get("auth")
        if isinstance(own_auth, dict) and own_auth.get("type") != "inherit":
            auth = own_auth
        url = self.auth(auth, headers, url)
        body, why = self.body(req.get("body"), headers)
        skip = skip or why
        if method not in METHODS:
            skip = f"method {method} is not one flowrun sends"
            notes.append(
                f"Method {method}: flowrun sends {', '.join(METHODS)}, so this node "
                f"is a {'POST' if body is not None else 'GET'}, skipped by default."
            )
            method = "POST" if body is not None else "GET"
        node = {
            "id": self.collector.ids(name),
            "name": name,
            "method": method,
            "url": url,
        }
        if headers:
            node["headers"] = headers
        if body is not None:
            node["body"] = body
            if isinstance(body, str) and _needs_text(body, headers):
                node["bodyFormat"] = "text"
            if method in ("GET", "HEAD"):
                notes.append(
                    f"Postman sends this {method} request's body; flowrun does not."
                )
        validations = self.validations(scripts, node["id"])
        if validations:
            node["validations"] = validations
        self.behaviour(req, item.get("protocolProfileBehavior"))
        text = describe(_text(req.get("description") or item.get("description")))
        if text:
            node["description"] = text
        self.collector.add(node, where, notes, skip)

    def behaviour(self, req: dict, profile) -> None:
        """Note request settings flowrun does not share."""
        profile = profile if isinstance(profile, dict) else {}
        if profile.get("followRedirects") is False:
            self.notes.append("Postman does not follow redirects here; flowrun does.")
        if profile.get("strictSSL") is False:
            self.notes.append(
                "Postman skips TLS verification here: run with --insecure to do the "
                "same."
            )
        if req.get("certificate") or req.get("proxy"):
            self.notes.append("The request's client certificate or proxy is not used.")

    # -- URL ------------------------------------------------------------------
    def url(self, url) -> str:
        if isinstance(url, dict):
            raw = url.get("raw")
            if not isinstance(raw, str) or not raw.strip():
                raw = self._url_from_parts(url)
            query = url.get("query")
            if isinstance(query, list):
                # Newman sends url.query, whatever url.raw says.
                raw = raw.split("?", 1)[0].split("#", 1)[0] + _query(query)
            values = {
                str(e["key"]): e.get("value") for e in _enabled(url.get("variable"))
            }
        elif isinstance(url, str):
            raw, values = url, {}
        else:
            return ""
        raw = raw.strip()

        def path_var(m):
            value = values.get(m.group(1))
            if value is None or value == "":
                self.notes.append(
                    f"Path variable ':{m.group(1)}' has no value: it became the "
                    f"variable '{var_name(m.group(1))}'."
                )
                return "{{" + m.group(1) + "}}"
            return str(value)

        head, sep, tail = raw.partition("?")
        head = _PATH_VAR.sub(path_var, head)
        return absolute(self.sub(head + sep + tail))

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

    # -- auth -----------------------------------------------------------------
    def auth(self, auth, headers: dict, url: str) -> str:
        """Add the request's auth as a header (or query parameter); return the URL."""
        if not isinstance(auth, dict) or auth.get("type") in (None, "noauth"):
            return url
        kind = str(auth["type"])
        params = _params(auth, kind)
        if header(headers, "Authorization") is not None and kind != "apikey":
            return url
        if kind == "bearer":
            headers["Authorization"] = "Bearer " + self.sub(params.get("token"))
        elif kind == "oauth2":
            return self.oauth2(params, headers, url)
        elif kind == "basic":
            self.basic(params, headers)
        elif kind == "apikey":
            key, value = self.sub(params.get("key")), self.sub(params.get("value"))
            if params.get("in") == "query":
                url += ("&" if "?" in url else "?") + f"{key}={value}"
            elif key and header(headers, key) is None:
                headers[key] = value
        elif kind in _SIGNED:
            self.notes.append(
                f"Auth '{kind}' cannot be reproduced ({_SIGNED[kind]}): no "
                "Authorization header is sent; add one by hand."
            )
        else:
            self.notes.append(
                f"Auth type '{kind}' is not supported: add its header by hand."
            )
        return url

    def oauth2(self, params: dict, headers: dict, url: str) -> str:
        token = params.get("accessToken")
        if not token:
            self.notes.append(
                "OAuth 2.0: the collection holds no access token; get one and set "
                "the variable 'accessToken'."
            )
            token = "{{accessToken}}"
        token = self.sub(token)
        if params.get("addTokenTo") == "queryParams":
            return url + ("&" if "?" in url else "?") + f"access_token={token}"
        prefix = params.get("headerPrefix")
        prefix = "Bearer" if prefix is None else str(prefix)
        headers["Authorization"] = f"{prefix} {token}".strip()
        return url

    def basic(self, params: dict, headers: dict) -> None:
        user, password = params.get("username") or "", params.get("password") or ""
        if "{{" in f"{user}{password}":
            # flowrun cannot base64-encode at run time: the encoded pair is a
            # variable to fill in.
            name = self.use("basicAuth")
            headers["Authorization"] = f"Basic {var_ref(name)}"
            self.notes.append(
                f"Basic auth from variables ({user}:{password}): set the variable "
                f"'{name}' to their base64 encoding."
            )
        else:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"

    # -- body -----------------------------------------------------------------
    def body(self, body, headers: dict):
        """``(body, why the node is skipped by default or None)``."""
        if not isinstance(body, dict) or body.get("disabled"):
            return None, None
        mode = body.get("mode")
        if mode == "raw":
            return self.raw(body, headers), None
        if mode == "urlencoded":
            form = {
                str(e["key"]): self.sub(e.get("value"))
                for e in _enabled(body.get("urlencoded"))
            }
            if not form:
                return None, None
            if header(headers, "Content-Type") is None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            return form, None
        if mode == "formdata":
            return self.formdata(body.get("formdata"), headers)
        if mode == "graphql":
            graphql = (
                body.get("graphql") if isinstance(body.get("graphql"), dict) else {}
            )
            variables = graphql.get("variables") or {}
            if isinstance(variables, str):
                parsed = _json_template(variables) if variables.strip() else ({}, [])
                if parsed is None:
                    self.notes.append("The GraphQL variables are not JSON: left out.")
                variables = parsed[0] if parsed else {}
            if header(headers, "Content-Type") is None:
                headers["Content-Type"] = "application/json"
            return self.sub_all(
                {"query": graphql.get("query") or "", "variables": variables}
            ), None
        if mode == "file":
            self.notes.append("The body is a file, which flowrun cannot send.")
            return None, "its body is a file"
        if mode:
            self.notes.append(
                f"Body mode '{mode}' is not supported: the body was left out."
            )
        return None, None

    def raw(self, body: dict, headers: dict):
        raw = body.get("raw")
        if not isinstance(raw, str) or not raw.strip():
            return None
        options = body.get("options")
        options = options.get("raw") if isinstance(options, dict) else None
        language = options.get("language") if isinstance(options, dict) else None
        content_type = header(headers, "Content-Type")
        if content_type is None and language in _IMPLIED_TYPES:
            # Postman sends these Content-Types without showing them as headers.
            content_type = headers["Content-Type"] = _IMPLIED_TYPES[language]
        if content_type and "json" in content_type.lower():
            parsed = _json_template(raw)
            if parsed is not None:
                value, names = parsed
                self.bare.update(var_name(n) for n in names if not n.startswith("$"))
                return self.sub_all(value)
            self.notes.append(
                "The body is not valid JSON: it is sent as written, as Postman does."
            )
        return self.sub(raw)

    def formdata(self, entries, headers: dict):
        fields, files = [], []
        for entry in _enabled(entries):
            if entry.get("type") == "file":
                files.append(str(entry["key"]))
            else:
                fields.append((str(entry["key"]), self.sub(entry.get("value"))))
        for name in [k for k in headers if k.lower() == "content-type"]:
            del headers[name]
        if files:
            self.notes.append(
                "File field(s) " + ", ".join(f"'{f}'" for f in files) + " cannot be "
                "sent: the form goes without them."
            )
        if not fields and not files:
            return None, None
        headers["Content-Type"], text = multipart(fields)
        return text, ("its form has a file field" if files else None)

    # -- scripts --------------------------------------------------------------
    def validations(self, scripts: list, node_id: str) -> list[dict]:
        """Translate what the request's test scripts check and save."""
        reader = Reader(node_id)
        for event in scripts:
            script = event.get("script") or {}
            lines = script.get("exec") if isinstance(script, dict) else None
            if isinstance(lines, str):
                lines = lines.splitlines()
            lines = (
                [str(line) for line in lines if line is not None]
                if isinstance(lines, list)
                else []
            )
            if event.get("listen") != "test":
                if any(line.strip() for line in lines):
                    self.notes.append("Pre-request script ignored: scripts cannot run.")
                continue
            for line in lines:
                reader.read(line)
        for name, ref in reader.saved.items():
            # Later requests refer to the response directly: the variable would
            # only ever hold that value.
            self.chained[var_name(name)] = ref
            self.notes.append(
                f"The test script sets '{name}'; later requests use the response "
                f"value it holds ({ref}) instead."
            )
        self.notes += reader.notes
        if reader.untranslated:
            self.notes.append(
                f"Test script: {reader.untranslated} line(s) not translated (scripts "
                "cannot run; write what they check as validations)."
            )
        return reader.validations()


def _query(entries) -> str:
    """``?a=1&b`` from Postman's ``url.query`` (disabled ones left out)."""
    parts = []
    for entry in _enabled(entries):
        value = entry.get("value")
        parts.append(str(entry["key"]) if value is None else f"{entry['key']}={value}")
    return "?" + "&".join(parts) if parts else ""


def _needs_text(body: str, headers: dict) -> bool:
    """Whether a text body must be marked to be sent as written: JSON under a form
    Content-Type, or not JSON under a JSON one."""
    content_type = (header(headers, "Content-Type") or "").lower()
    if "json" not in content_type and "x-www-form-urlencoded" not in content_type:
        return False
    try:
        parsed = json.loads(as_literal(body, "0"))
    except ValueError:
        return "json" in content_type
    return "x-www-form-urlencoded" in content_type and isinstance(parsed, (dict, list))
