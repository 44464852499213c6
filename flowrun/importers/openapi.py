"""OpenAPI 3.x / Swagger 2.0 (JSON or YAML) → a flow, one node per operation.

Path and required query/header/cookie parameters become ``{{ .vars.NAME }}``
placeholders with defaults from the document's examples; a request body comes from
its example or is sketched from its schema (``allOf`` merged, the first usable
``oneOf``/``anyOf`` alternative); the first security alternative flowrun can apply
becomes headers or query parameters; each node checks the first 2xx response code.
A 3.1 document's ``webhooks`` become nodes too (skipped by default: they post to a
receiver you name). ``$ref``s are followed within the document and, when it was read
from a file, into neighbouring files (through ``referencing``).
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit
from urllib.request import url2pathname

import referencing
import referencing.exceptions
import referencing.jsonschema
import yaml

from flowrun import text
from flowrun.engine.flow import METHODS
from flowrun.importers._common import (
    Collector,
    Imported,
    describe,
    invalid,
    literal,
    var_name,
    var_ref,
)

LABEL = "OpenAPI document"
_HINT = "Give an OpenAPI 3.x or Swagger 2.0 document, as JSON or YAML."
_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE = re.compile(r"\{([^{}]+)\}")
# Parameters OpenAPI says to ignore: they are set from other fields.
_RESERVED_HEADERS = {"accept", "content-type", "authorization"}
_MAX_NODES = 1_000_000
_MAX_DEPTH = 200
# A file a $ref points to is read only if it is one of these, and this small.
_REF_SUFFIXES = (".json", ".yaml", ".yml")
_MAX_REF_BYTES = 16 * 1024 * 1024
# libyaml's loader when PyYAML was built with it: the same result, much faster.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SAMPLE_DEPTH = 12
# Schemas sketched for one body at most: wide, deep $ref trees multiply fast.
_SAMPLE_BUDGET = 5000
_STRING_SAMPLES = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "uri": "https://example.com",
    "url": "https://example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "password": "password",
}


def read(content, max_nodes: int, path=None) -> Imported:
    """Import an OpenAPI/Swagger document (JSON or YAML text, or parsed).

    ``path``: the file it was read from; ``$ref``s to other files are followed
    relative to it (never over the network).
    """
    doc = _load(content) if isinstance(content, str) else content
    if not isinstance(doc, dict):
        raise invalid(LABEL, "the document must be a JSON or YAML object", hint=_HINT)
    if "openapi" in doc:
        version = str(doc["openapi"])
        if not version.startswith("3."):
            raise invalid(
                LABEL,
                f"OpenAPI {version} is not supported",
                path="content.openapi",
                hint=_HINT,
            )
    elif "swagger" in doc:
        version = str(doc["swagger"])
        if version != "2.0":
            raise invalid(
                LABEL,
                f"Swagger {version} is not supported",
                path="content.swagger",
                hint=_HINT,
            )
    else:
        raise invalid(
            LABEL, "not an OpenAPI document (no 'openapi' or 'swagger')", hint=_HINT
        )
    if not isinstance(doc.get("paths"), dict) and not isinstance(
        doc.get("webhooks"), dict
    ):
        raise invalid(
            LABEL, "the document has no 'paths' (nor 'webhooks')", path="content.paths"
        )
    return _Converter(doc, max_nodes, path).flow()


def _load(text: str):
    """Parse JSON, else YAML; return plain JSON data (string keys, no dates)."""
    if not text.strip():
        raise invalid(LABEL, "the document is empty", hint=_HINT)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise invalid(
            LABEL, f"not valid JSON or YAML: {exc.problem}{where}", hint=_HINT
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise invalid(LABEL, f"not valid JSON or YAML: {exc}", hint=_HINT) from None
    _check_size(data)
    return _plain(data)


def _check_size(data) -> None:
    """Refuse YAML data too large to copy, too deep, or referring to itself.

    Aliases let a small text stand for an enormous tree (or a cycle). Sizes are
    summed once per distinct object, so this costs what the text costs.
    """
    sizes: dict[int, int | None] = {}
    too_big = invalid(LABEL, "the document is too large or nested too deeply")

    def size(value, depth: int) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        if depth > _MAX_DEPTH:
            raise too_big
        key = id(value)
        if key in sizes:
            if sizes[key] is None:  # still being summed: the value contains itself
                raise too_big
            return sizes[key]
        sizes[key] = None
        children = value.values() if isinstance(value, dict) else value
        total = 1 + sum(size(child, depth + 1) for child in children)
        if total > _MAX_NODES:
            raise too_big
        sizes[key] = total
        return total

    size(data, 0)


def _plain(value):
    """Copy YAML data as JSON data: string keys, dates as ISO text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class _Files:
    """Documents a ``$ref`` points into, read through ``referencing``.

    Only files next to (or below, or above) the imported one are read, never a URL.
    Each file read has its own relative ``$ref``s made absolute, so a value taken
    from it can be followed without knowing where it came from.
    """

    def __init__(self, path):
        self.base = Path(path).resolve().as_uri()
        self.registry = referencing.Registry(retrieve=self._retrieve)
        self._read: dict[str, referencing.Resource] = {}

    def lookup(self, ref: str):
        """The value ``ref`` (relative to the imported file) points to."""
        resolved = self.registry.resolver(base_uri=self.base).lookup(
            urljoin(self.base, ref)
        )
        return resolved.contents

    def _retrieve(self, uri: str):
        if uri not in self._read:
            self._read[uri] = self._resource(uri)
        return self._read[uri]

    def _resource(self, uri: str):
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise referencing.exceptions.NoSuchResource(uri)
        path = Path(url2pathname(parts.path))
        if path.suffix.lower() not in _REF_SUFFIXES or not path.is_file():
            raise referencing.exceptions.NoSuchResource(uri)
        if path.stat().st_size > _MAX_REF_BYTES:
            raise referencing.exceptions.NoSuchResource(uri)
        doc = _absolute_refs(_load(text.read(path)), uri)
        return referencing.Resource.from_contents(
            doc, default_specification=referencing.jsonschema.DRAFT202012
        )


def _absolute_refs(value, base: str):
    """``value`` with every ``$ref`` made absolute against ``base``."""
    if isinstance(value, dict):
        out = {k: _absolute_refs(v, base) for k, v in value.items()}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = urljoin(base, out["$ref"])
        return out
    if isinstance(value, list):
        return [_absolute_refs(v, base) for v in value]
    return value


class _Converter:
    def __init__(self, doc: dict, max_nodes: int, path):
        self.doc = doc
        self.swagger = "swagger" in doc
        self.files = _Files(path) if path is not None else None
        self.collector = Collector(LABEL, max_nodes)
        self.variables: dict = {}
        self.notes: list[str] = []  # of the operation being converted
        self.budget = _SAMPLE_BUDGET

    def flow(self) -> Imported:
        info = self.doc.get("info") if isinstance(self.doc.get("info"), dict) else {}
        version = self.doc.get("swagger") or self.doc.get("openapi")
        flow = {
            "name": str(info.get("title") or "Imported OpenAPI document"),
            "description": describe(
                info.get("description")
                if isinstance(info.get("description"), str)
                else "",
                f"Imported from {'Swagger' if self.swagger else 'OpenAPI'} {version}.",
            ),
            "variables": self.variables,
            "defaults": {"baseUrl": self.base_url()},
        }
        for group, webhook in (("paths", False), ("webhooks", True)):
            # (Bundlers' inputs write even the whole group as a $ref.)
            self.notes = []
            items = self.deref(self.doc.get(group))
            for note in self.notes:
                self.collector.note(group, note)
            for name, item in (items if isinstance(items, dict) else {}).items():
                self.notes = []
                item = self.deref(item)
                if not isinstance(item, dict):
                    why = "; ".join(self.notes) or "it is not an object"
                    self.collector.leave_out(f"{group} {name}", f"left out: {why}")
                    continue
                shared = self.notes
                for method, op in item.items():
                    if method in _OPERATIONS and isinstance(op, dict):
                        self.notes = list(shared)
                        if "$ref" in op:
                            # An operation kept in another file, beside its id.
                            found = self.deref(op)
                            own = {k: v for k, v in op.items() if k != "$ref"}
                            op = {**found, **own} if isinstance(found, dict) else own
                        self.operation(name, method.upper(), item, op, webhook)
        return self.collector.finish(flow)

    # -- references -----------------------------------------------------------
    def deref(self, value, seen: frozenset = frozenset()):
        """Follow ``$ref``s; None (with a note) for a cycle or what cannot be read."""
        while isinstance(value, dict) and "$ref" in value:
            ref = value["$ref"]
            if not isinstance(ref, str) or ref in seen:
                return None
            seen = seen | {ref}
            if ref.startswith("#"):
                value = self._pointer(ref)
            else:
                value = self._external(ref)
            if value is None:
                return None
        return value

    def _pointer(self, ref: str):
        value = self.doc
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                self._note(f"$ref {ref} points to nothing: left out.")
                return None
        return value

    def _external(self, ref: str):
        if self.files is None:
            self._note(
                f"$ref {ref} (another document) was not followed: import the file "
                "with `flowrun import openapi FILE` to follow it."
            )
            return None
        try:
            return self.files.lookup(ref)
        except (referencing.exceptions.Unresolvable, OSError, ValueError) as exc:
            self._note(f"$ref {ref} could not be followed ({type(exc).__name__}).")
            return None

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    # -- base URL ---------------------------------------------------------------
    def base_url(self) -> str:
        if self.swagger:
            base_path = str(self.doc.get("basePath") or "").rstrip("/")
            host = self.doc.get("host")
            if host:
                schemes = self.doc.get("schemes")
                schemes = schemes if isinstance(schemes, list) else []
                scheme = (
                    "http" if "http" in schemes and "https" not in schemes else "https"
                )
                return f"{scheme}://{host}{base_path}"
            return self._base_variable(base_path, "the document has no 'host'")
        servers = self.doc.get("servers")
        url = (
            self.server_url(servers[0]) if isinstance(servers, list) and servers else ""
        )
        if re.match(r"^https?://", url, re.I):
            return url.rstrip("/")
        return self._base_variable(url.rstrip("/"), "servers[0].url is not absolute")

    @staticmethod
    def server_url(server) -> str:
        if not isinstance(server, dict):
            return ""
        url = str(server.get("url") or "")
        variables = server.get("variables") or {}

        def repl(m):
            spec = variables.get(m.group(1)) if isinstance(variables, dict) else None
            return str(spec.get("default", "")) if isinstance(spec, dict) else ""

        return _TEMPLATE.sub(repl, url)

    def _base_variable(self, value: str, why: str) -> str:
        self.variables["baseUrl"] = value
        self.collector.note(
            "servers",
            f"The base URL comes from the 'baseUrl' variable ({why}): set it to the "
            "API's address.",
        )
        return var_ref("baseUrl")

    # -- operations -------------------------------------------------------------
    def operation(self, path: str, method: str, item: dict, op: dict, webhook: bool):
        op_id = op.get("operationId")
        where = f"{'webhook ' if webhook else ''}{method} {path}" + (
            f" ({op_id})" if op_id else ""
        )
        node_id = (
            self.collector.ids(str(op_id), lower=False)
            if op_id
            else self.collector.ids(f"{method} {path}")
        )
        skip = None
        if method not in METHODS:
            skip = f"method {method} is not one flowrun sends"
            self.notes.append(
                f"Method {method}: flowrun sends {', '.join(METHODS)}, so this node "
                "is a GET, skipped by default."
            )
            method = "GET"
        headers, query, cookies, path_values, form = {}, [], [], {}, {}
        body = None
        for param in self.parameters(item.get("parameters"), op.get("parameters")):
            name, where_in = str(param.get("name")), param.get("in")
            if where_in == "path":
                path_values[name] = self.param_value(param)
            elif where_in == "query" and param.get("required"):
                var = self.variable(name, self.param_value(param))
                query.append(f"{quote(name, safe='')}={var_ref(var)}")
            elif where_in == "header" and param.get("required"):
                if name.lower() not in _RESERVED_HEADERS:
                    var = self.variable(name, self.param_value(param))
                    headers[name] = var_ref(var)
            elif where_in == "cookie" and param.get("required"):
                var = self.variable(name, self.param_value(param))
                cookies.append(f"{name}={var_ref(var)}")
            elif where_in == "body":
                body = self.sketch(param.get("schema"))
            elif where_in == "formData":
                if param.get("type") == "file":
                    self.notes.append(f"File field '{name}' cannot be sent: left out.")
                else:
                    form[name] = self.param_value(param)

        def fill(m):
            name = m.group(1)
            return var_ref(self.variable(name, path_values.get(name, "")))

        if webhook:
            url = var_ref(self.variable("webhookUrl", ""))
            skip = skip or "a webhook: set 'webhookUrl' to the receiver to send it"
        else:
            url = _TEMPLATE.sub(fill, path)
            override = self.operation_server(item, op)
            if override:
                url = override + url
        content_type = None
        if not self.swagger:
            body, content_type = self.request_body(op.get("requestBody"))
        elif form:
            body, content_type = form, "application/x-www-form-urlencoded"
        elif body is not None:
            content_type = _swagger_type(op.get("consumes") or self.doc.get("consumes"))
            if content_type and "json" not in content_type.lower():
                self.notes.append(
                    f"The body is described for {content_type}; it is sent as JSON."
                )
                content_type = None
        if body is not None and method in ("GET", "HEAD"):
            self.notes.append(
                f"The document gives this {method} a request body; flowrun sends none "
                "on a GET or HEAD, so it is left out."
            )
            body = content_type = None
        if content_type and content_type != "application/json":
            headers["Content-Type"] = content_type
        self.security(op, headers, query)
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        if query:
            url += "?" + "&".join(query)
        if isinstance(body, (int, float, bool)) or (
            isinstance(body, str) and "json" in (content_type or "application/json")
        ):
            # A JSON body that is not an object or array is sent as its JSON text.
            body = json.dumps(body)
        summary = str(op.get("summary") or "").strip()
        node = {
            "id": node_id,
            "name": summary or str(op_id or "").strip() or f"{method} {path}",
            "method": method,
            "url": url,
        }
        if headers:
            node["headers"] = headers
        if body is not None:
            node["body"] = literal(body)
        code = self.success_code(op.get("responses"))
        if code is not None:
            node["validations"] = [{"httpStatusCode": code}]
        description = op.get("description")
        if isinstance(description, str) and description.strip():
            node["description"] = description
        self.collector.add(node, where, self.notes, skip)

    def parameters(self, shared, own) -> list[dict]:
        """Path-item parameters overridden by the operation's (same name and in)."""
        merged: dict = {}
        for group in (shared, own):
            for param in group if isinstance(group, list) else []:
                param = self.deref(param)
                if isinstance(param, dict) and "name" in param and "in" in param:
                    merged[(param["name"], param["in"])] = param
        return list(merged.values())

    def param_value(self, param: dict):
        """A parameter's example or default value, or ""."""
        if "example" in param:
            return literal(param["example"])
        examples = param.get("examples")
        if isinstance(examples, dict):
            for example in examples.values():
                example = self.deref(example)
                if isinstance(example, dict) and "value" in example:
                    return literal(example["value"])
        if "x-example" in param:
            return literal(param["x-example"])
        schema = self.deref(param.get("schema")) if "schema" in param else param
        if isinstance(schema, dict):
            for key in ("example", "default"):
                if key in schema:
                    return literal(schema[key])
            if isinstance(schema.get("enum"), list) and schema["enum"]:
                return literal(schema["enum"][0])
        return ""

    def variable(self, name: str, value) -> str:
        name = var_name(name)
        if value is None:
            value = ""
        self.variables.setdefault(name, value)
        return name

    def operation_server(self, item: dict, op: dict) -> str:
        """An absolute server URL an operation or path item sets for itself."""
        for owner in (op, item):
            servers = owner.get("servers")
            if isinstance(servers, list) and servers:
                url = self.server_url(servers[0]).rstrip("/")
                if re.match(r"^https?://", url, re.I):
                    return url
        return ""

    def request_body(self, request_body):
        """Return ``(body, content type)`` for an OpenAPI 3 requestBody."""
        request_body = self.deref(request_body)
        if not isinstance(request_body, dict):
            return None, None
        content = request_body.get("content")
        if not isinstance(content, dict) or not content:
            return None, None
        types = [t for t in content if isinstance(t, str)]
        base = {t: t.split(";")[0].strip().lower() for t in types}
        json_type = next((t for t in types if base[t].endswith("json")), None)
        form_type = next((t for t in types if "x-www-form-urlencoded" in base[t]), None)
        text_type = next(
            (
                t
                for t in types
                if base[t].startswith("text/") or base[t].endswith("xml")
            ),
            None,
        )
        chosen = json_type or form_type or text_type
        if chosen is None:
            self.notes.append(
                f"Request body of type {', '.join(types)} not imported: flowrun "
                "sends JSON, URL-encoded forms and text."
            )
            return None, None
        media = self.deref(content[chosen])
        media = media if isinstance(media, dict) else {}
        body = self.example(media)
        if body is None and chosen != text_type:
            body = self.sketch(media.get("schema"))
        if chosen == form_type and not isinstance(body, dict):
            self.notes.append("The form body has no example or schema: left out.")
            return None, None
        if chosen == text_type and not isinstance(body, str):
            self.notes.append(f"The {chosen} body has no text example: left out.")
            return None, None
        if body is None:
            self.notes.append("The request body has no example and no usable schema.")
            return None, None
        return body, chosen

    def example(self, media: dict):
        if "example" in media:
            return self.deref(media["example"])
        examples = media.get("examples")
        if isinstance(examples, dict):
            for example in examples.values():
                example = self.deref(example)
                if isinstance(example, dict) and "value" in example:
                    return self.deref(example["value"])
        return None

    def sketch(self, schema):
        """A body built from a schema, within a budget (noted when cut short)."""
        self.budget = _SAMPLE_BUDGET
        value = self.sample(schema)
        if self.budget < 0:
            self.notes.append(
                "The body sketched from the schema was cut short: too large."
            )
        return value

    def sample(self, schema, seen: frozenset = frozenset(), depth: int = 0):
        """An example value for a schema: its example, default, or a typed sketch."""
        self.budget -= 1
        if depth > _SAMPLE_DEPTH or self.budget < 0:
            return None
        if isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                return None
            seen = seen | {ref}
            schema = self.deref(schema)
        if not isinstance(schema, dict):
            return None
        for key in ("example", "default", "const"):
            if key in schema:
                return schema[key]
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return schema["examples"][0]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        if isinstance(schema.get("allOf"), list):
            merged: dict = {}
            for part in schema["allOf"]:
                value = self.sample(part, seen, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
            extra = {k: v for k, v in schema.items() if k != "allOf"}
            if extra.get("properties"):
                merged.update(self.sample(extra, seen, depth + 1) or {})
            return merged
        for key in ("oneOf", "anyOf"):
            choices = schema.get(key)
            if isinstance(choices, list) and choices:
                # The first alternative that gives a value (not the "null" one).
                for choice in choices:
                    value = self.sample(choice, seen, depth + 1)
                    if value is not None:
                        return value
                return None
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            if "properties" in schema:
                kind = "object"
            elif "items" in schema:
                kind = "array"
        if kind == "object":
            out = {}
            properties = schema.get("properties")
            for name, prop in (
                properties if isinstance(properties, dict) else {}
            ).items():
                resolved = self.deref(prop, seen) if isinstance(prop, dict) else prop
                if isinstance(resolved, dict) and resolved.get("readOnly"):
                    continue
                out[name] = self.sample(prop, seen, depth + 1)
            return out
        if kind == "array":
            item = self.sample(schema.get("items"), seen, depth + 1)
            return [] if item is None else [item]
        if kind == "string":
            return _STRING_SAMPLES.get(schema.get("format"), "string")
        if kind in ("integer", "number"):
            minimum = schema.get("minimum")
            return minimum if isinstance(minimum, (int, float)) else 0
        if kind == "boolean":
            return True
        return None

    # -- security ---------------------------------------------------------------
    def security(self, op: dict, headers: dict, query: list) -> None:
        """Apply the first security alternative flowrun can send (a note if none)."""
        requirements = op.get("security", self.doc.get("security"))
        if not isinstance(requirements, list) or not requirements:
            return
        if self.swagger:
            schemes = self.doc.get("securityDefinitions")
        else:
            schemes = (self.doc.get("components") or {}).get("securitySchemes")
        schemes = schemes if isinstance(schemes, dict) else {}
        names = []
        for requirement in requirements:
            if not isinstance(requirement, dict):
                continue
            if not requirement:
                return  # {}: this alternative needs no credentials
            plans = [self._credential(name, schemes.get(name)) for name in requirement]
            names.append(" + ".join(str(n) for n in requirement))
            if all(plan is not None for plan in plans):
                for where, name, value in plans:
                    if where == "header":
                        headers.setdefault(name, value)
                    else:
                        query.append(f"{quote(name, safe='')}={value}")
                return
        self.notes.append(
            f"None of its security alternatives ({'; '.join(names)}) can be sent by "
            "flowrun (they are signed or negotiated): add the credentials by hand."
        )

    def _credential(self, name, scheme):
        """``(where, name, value)`` to send for one security scheme, or None."""
        scheme = self.deref(scheme)
        if not isinstance(scheme, dict):
            return None
        kind = scheme.get("type")
        http = str(scheme.get("scheme", "")).lower()
        if kind in ("oauth2", "openIdConnect") or (kind == "http" and http == "bearer"):
            return (
                "header",
                "Authorization",
                "Bearer " + var_ref(self.variable("token", "")),
            )
        if kind == "basic" or (kind == "http" and http == "basic"):
            var = self.variable("basicAuth", "")
            self._note(
                f"Basic auth: set the variable '{var}' to the base64 encoding of "
                "user:password."
            )
            return "header", "Authorization", "Basic " + var_ref(var)
        if kind == "apiKey" and scheme.get("name"):
            key = str(scheme["name"])
            value = var_ref(self.variable(key, ""))
            where = scheme.get("in")
            if where == "header":
                return "header", key, value
            if where == "query":
                return "query", key, value
            if where == "cookie":
                return "header", "Cookie", f"{key}={value}"
        return None

    @staticmethod
    def success_code(responses):
        if not isinstance(responses, dict):
            return None
        for code in responses:
            text = str(code).strip().upper()
            if re.fullmatch(r"2\d\d", text):
                return int(text)
            if text == "2XX":
                return 200
        return None


def _swagger_type(consumes) -> str | None:
    """The Content-Type of a Swagger 2.0 body parameter (JSON unless it says else)."""
    if isinstance(consumes, list) and consumes:
        kinds = [str(c) for c in consumes]
        return next((c for c in kinds if "json" in c.lower()), kinds[0])
    return None
