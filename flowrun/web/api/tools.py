"""Health, the flow schema, validation and import."""

from __future__ import annotations

from flask import Blueprint, jsonify

from flowrun import importers
from flowrun.engine import validation
from flowrun.errors import FlowInvalid, located
from flowrun.version import __version__
from flowrun.web.api.common import body, get_state
from flowrun.web.errors import ApiError

bp = Blueprint("tools", __name__)


@bp.get("/health")
def health():
    return {"status": "ok", "version": __version__}


@bp.get("/schema")
def schema():
    return jsonify(validation.SCHEMA)


@bp.post("/validate")
def validate():
    sent = body()
    doc = sent["config"] if "config" in sent else sent
    errors, warnings = validation.check(doc, get_state().max_steps)
    return {"valid": not errors, "errors": errors, "warnings": warnings}


@bp.post("/import")
def import_():
    sent = body()
    fmt, content = sent.get("format"), sent.get("content")
    errors = []
    if fmt not in importers.FORMATS:
        errors.append(located("format", "must be " + " or ".join(importers.FORMATS)))
    if not isinstance(content, str):
        errors.append(located("content", "required: the text to import"))
    if errors:
        raise ApiError(400, "Invalid import request", errors)
    try:
        flow = importers.convert(fmt, content)
    except FlowInvalid:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, f"Could not import {fmt}: {exc}") from None
    return jsonify(flow)
