"""Health, the flow schema, validation and import."""

from __future__ import annotations

from flask import Blueprint, jsonify

from flowrun import text
from flowrun.engine import validation
from flowrun.errors import located
from flowrun.web.api.common import body, get_state
from flowrun.web.errors import ApiError

bp = Blueprint("tools", __name__)


@bp.get("/health")
def health():
    """The store, the control channel and this worker; 503 with the reason."""
    report = get_state().health()
    if report["status"] == "ok":
        return report
    return report, 503, {"Retry-After": "10"}


@bp.get("/schema")
def schema():
    return jsonify(validation.SCHEMA)


@bp.post("/validate")
def validate():
    sent = body()
    doc = sent["config"] if "config" in sent else sent
    if "content" in sent and "config" not in sent:
        doc = sent["content"]
    if isinstance(doc, str):
        # The text of a flow file, as an editor holds it (byte-order mark and all).
        try:
            doc = validation.parse_json(text.unmarked(doc))
        except (ValueError, RecursionError) as exc:
            error = located("content", f"not valid JSON: {exc}")
            return {"valid": False, "errors": [error], "warnings": []}
    errors, warnings = validation.check(doc, get_state().max_steps)
    return {"valid": not errors, "errors": errors, "warnings": warnings}


@bp.post("/import")
def import_():
    """The imported flow, with ``importReport``: the counts and the notes."""
    # Loaded on the first import, not with the server: the importers and YAML take
    # ~0.2 s and a few MiB in every worker, and most servers never import.
    from flowrun import importers

    sent = body()
    fmt, content = sent.get("format"), sent.get("content")
    errors = []
    if fmt not in importers.FORMATS:
        errors.append(located("format", "must be " + " or ".join(importers.FORMATS)))
    if not isinstance(content, str):
        errors.append(located("content", "required: the text to import"))
    if errors:
        raise ApiError(400, "Invalid import request", errors)
    result = importers.load(fmt, content, max_steps=get_state().max_steps)
    return jsonify({**result.flow, "importReport": result.report.as_dict()})
