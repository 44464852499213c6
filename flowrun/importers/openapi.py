"""OpenAPI 3.x / Swagger 2.0 (JSON or YAML) → a flow, one node per operation.

Path and required query/header parameters become ``{{ .vars.NAME }}`` placeholders
with defaults from the document's examples; a JSON request body comes from its
example or is sketched from its schema (local ``$ref`` resolved); each node checks
the first 2xx response code.
"""

from __future__ import annotations

import datetime
import json
import re
from urllib.parse import quote

import yaml

from flowrun.engine.flow import METHODS
from flowrun.importers._common import Ids, describe, finish, invalid, var_name, var_ref

LABEL = "OpenAPI document"
_HINT = "Give an OpenAPI 3.x or Swagger 2.0 document, as JSON or YAML."
_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE = re.compile(r"\{([^{}]+)\}")
# Parameters OpenAPI says to ignore: they are set from other fields.
_RESERVED_HEADERS = {"accept", "content-type", "authorization"}
_MAX_NODES = 1_000_000
_MAX_DEPTH = 200
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


def convert(content) -> dict:
    """Convert an OpenAPI/Swagger document (JSON or YAML text, or parsed) to a flow."""
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
    if not isinstance(doc.get("paths"), dict):
        raise invalid(LABEL, "'paths' must be an object", path="content.paths")
    return _Converter(doc).flow()


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


class _Converter:
    def __init__(self, doc: dict):
        self.doc = doc
        self.swagger = "swagger" in doc
        self.variables: dict = {}
        self.ids = Ids()
        self.notes: list[str] = []
        self.budget = _SAMPLE_BUDGET

    def flow(self) -> dict:
        info = self.doc.get("info") if isinstance(self.doc.get("info"), dict) else {}
        flow = {
            "name": str(info.get("title") or "Imported OpenAPI document"),
            "description": "",
            "variables": self.variables,
            "defaults": {"baseUrl": self.base_url()},
        }
        nodes = []
        for path, item in self.doc["paths"].items():
            item = self.deref(item)
            if not isinstance(item, dict):
                continue
            for method, op in item.items():
                if method not in _OPERATIONS or not isinstance(op, dict):
                    continue
                if method.upper() not in METHODS:
                    self.notes.append(
                        f"Skipped {method.upper()} {path}: not supported."
                    )
                    continue
                nodes.append(self.node(path, method.upper(), item, op))
        if not nodes:
            raise invalid(LABEL, "the document has no operations", path="content.paths")
        version = self.doc.get("swagger") or self.doc.get("openapi")
        flow["description"] = describe(
            info.get("description") if isinstance(info.get("description"), str) else "",
            f"Imported from {'Swagger' if self.swagger else 'OpenAPI'} {version}.",
            *self.notes,
        )
        flow["nodes"] = nodes
        return finish(LABEL, flow)

    # -- references -----------------------------------------------------------
    def deref(self, value, seen: frozenset = frozenset()):
        """Follow local ``$ref``s; None for a cycle, a remote or a missing target."""
        while isinstance(value, dict) and "$ref" in value:
            ref = value["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
                if isinstance(ref, str) and not ref.startswith("#/"):
                    note = f"External $ref {ref} was not followed."
                    if note not in self.notes:
                        self.notes.append(note)
                return None
            seen = seen | {ref}
            value = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(value, dict) and part in value:
                    value = value[part]
                elif (
                    isinstance(value, list)
                    and part.isdigit()
                    and int(part) < len(value)
                ):
                    value = value[int(part)]
                else:
                    raise invalid(
                        LABEL, f"$ref {ref} points to nothing", path="content"
                    )
        return value

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
        self.notes.append(
            f"The base URL comes from the 'baseUrl' variable ({why}): set it to the "
            "API's address."
        )
        return var_ref("baseUrl")

    # -- operations -------------------------------------------------------------
    def node(self, path: str, method: str, item: dict, op: dict) -> dict:
        params = self.parameters(item.get("parameters"), op.get("parameters"))
        headers: dict = {}
        query: list[str] = []
        path_values: dict = {}
        form: dict = {}
        body = None
        notes: list[str] = []
        for param in params:
            name, where = str(param.get("name")), param.get("in")
            if where == "path":
                path_values[name] = self.param_value(param)
            elif where == "query" and param.get("required"):
                var = self.variable(name, self.param_value(param))
                query.append(f"{quote(name, safe='')}={var_ref(var)}")
            elif where == "header" and param.get("required"):
                if name.lower() not in _RESERVED_HEADERS:
                    var = self.variable(name, self.param_value(param))
                    headers[name] = var_ref(var)
            elif where == "body":
                body = self.sketch(param.get("schema"), notes)
            elif where == "formData":
                if param.get("type") == "file":
                    notes.append(f"File field '{name}' dropped: uploads not supported.")
                else:
                    form[name] = self.param_value(param)

        def fill(m):
            name = m.group(1)
            return var_ref(self.variable(name, path_values.get(name, "")))

        url = _TEMPLATE.sub(fill, path)
        override = self.operation_server(item, op)
        if override:
            url = override + url
        if query:
            url += "?" + "&".join(query)
        if not self.swagger:
            body, content_type = self.request_body(op.get("requestBody"), notes)
            if content_type and content_type != "application/json":
                headers["Content-Type"] = content_type
        elif form:
            body = form
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.security(op, headers)
        if isinstance(body, (str, int, float, bool)):
            # A JSON body that is not an object or array is sent as its JSON text.
            body = json.dumps(body)
        op_id = op.get("operationId")
        node_id = (
            self.ids(str(op_id), lower=False) if op_id else self.ids(f"{method} {path}")
        )
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
            node["body"] = body
        code = self.success_code(op.get("responses"))
        if code is not None:
            node["validations"] = [{"httpStatusCode": code}]
        text = op.get("description") if isinstance(op.get("description"), str) else ""
        if text or notes:
            node["description"] = describe(text, *notes)
        return node

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
            return param["example"]
        examples = param.get("examples")
        if isinstance(examples, dict):
            for example in examples.values():
                example = self.deref(example)
                if isinstance(example, dict) and "value" in example:
                    return example["value"]
        if "x-example" in param:
            return param["x-example"]
        schema = self.deref(param.get("schema")) if "schema" in param else param
        if isinstance(schema, dict):
            for key in ("example", "default"):
                if key in schema:
                    return schema[key]
            if isinstance(schema.get("enum"), list) and schema["enum"]:
                return schema["enum"][0]
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

    def request_body(self, request_body, notes: list):
        """Return ``(body, content type)`` for an OpenAPI 3 requestBody."""
        request_body = self.deref(request_body)
        if not isinstance(request_body, dict):
            return None, None
        content = request_body.get("content")
        if not isinstance(content, dict) or not content:
            return None, None
        json_type = next(
            (t for t in content if t.split(";")[0].strip().lower().endswith("json")),
            None,
        )
        form_type = next(
            (t for t in content if "x-www-form-urlencoded" in t.lower()), None
        )
        chosen = json_type or form_type
        if chosen is None:
            notes.append(
                f"Request body of type {', '.join(content)} not imported: only JSON "
                "and URL-encoded forms are."
            )
            return None, None
        media = content[chosen] if isinstance(content[chosen], dict) else {}
        if "example" in media:
            body = media["example"]
        else:
            body = None
            examples = media.get("examples")
            if isinstance(examples, dict):
                for example in examples.values():
                    example = self.deref(example)
                    if isinstance(example, dict) and "value" in example:
                        body = example["value"]
                        break
            if body is None:
                body = self.sketch(media.get("schema"), notes)
        if chosen == form_type and not isinstance(body, dict):
            body = None
        return body, chosen

    def sketch(self, schema, notes: list):
        """A body built from a schema, within a budget (noted when cut short)."""
        self.budget = _SAMPLE_BUDGET
        value = self.sample(schema)
        if self.budget < 0:
            notes.append("The body sketched from the schema was cut short: too large.")
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
            if isinstance(schema.get(key), list) and schema[key]:
                return self.sample(schema[key][0], seen, depth + 1)
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

    def security(self, op: dict, headers: dict) -> None:
        """Add the header the operation's first security requirement asks for."""
        requirements = op.get("security", self.doc.get("security"))
        if not isinstance(requirements, list) or not requirements:
            return
        first = requirements[0]
        if not isinstance(first, dict):
            return
        if self.swagger:
            schemes = self.doc.get("securityDefinitions") or {}
        else:
            schemes = (self.doc.get("components") or {}).get("securitySchemes") or {}
        for name in first:
            scheme = (
                self.deref(schemes.get(name)) if isinstance(schemes, dict) else None
            )
            if not isinstance(scheme, dict):
                continue
            kind = scheme.get("type")
            bearer = kind in ("oauth2", "openIdConnect") or (
                kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer"
            )
            if bearer:
                headers.setdefault(
                    "Authorization", "Bearer " + var_ref(self.variable("token", ""))
                )
            elif (
                kind == "apiKey" and scheme.get("in") == "header" and scheme.get("name")
            ):
                header_name = str(scheme["name"])
                headers.setdefault(header_name, var_ref(self.variable(header_name, "")))
            else:
                note = (
                    f"Security scheme '{name}' ({kind}) is not applied: add it by hand."
                )
                if note not in self.notes:
                    self.notes.append(note)

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
