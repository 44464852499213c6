"""The one error shape of the HTTP API, and the handlers that produce it.

Every error leaves as ``{"error": "message", "errors": [located errors]}`` with a 4xx
(or 5xx) status, whatever raised it: ``ApiError`` (a bad request), ``FlowInvalid`` (a
bad flow or options), ``Busy`` (no room for another run) or werkzeug's own
``HTTPException`` (404, 405, 413…). Nothing else reaches a client as an HTML page.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from flowrun.errors import FlowInvalid, LocatedError

log = logging.getLogger("flowrun")


class ApiError(Exception):
    """An error answered as ``{"error", "errors"}`` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[LocatedError] | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.headers = headers or {}


class Busy(Exception):
    """This worker already runs ``FLOWRUN_MAX_EXECUTIONS`` executions (503)."""


def error_response(status: int, message: str, errors=None, headers=None):
    resp = jsonify(error=message, errors=errors or [])
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def register(app: Flask) -> None:
    """Install the handlers that shape every error."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(FlowInvalid, _flow_invalid)
    app.register_error_handler(Busy, _busy)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(sqlite3.Error, _store_error)
    app.register_error_handler(Exception, _internal_error)


def _api_error(exc: ApiError):
    return error_response(exc.status, exc.message, exc.errors, exc.headers)


def _flow_invalid(exc: FlowInvalid):
    return error_response(400, exc.message, exc.errors)


def _busy(exc: Busy):
    return error_response(503, str(exc), headers={"Retry-After": "1"})


def _http_error(exc: HTTPException):
    message = exc.description or exc.name
    if exc.code == 413:
        message = "Request body too large (FLOWRUN_MAX_CONFIG_BYTES)"
    return error_response(exc.code or 500, message)


def _store_error(exc: Exception):
    """The database failed (full disk, damaged or read-only file, PostgreSQL out of
    reach): a 503 that says so, not an internal error."""
    log.error("history store failed: %s: %s", type(exc).__name__, exc)
    return error_response(
        503,
        f"History cannot be read or written now ({exc})",
        headers={"Retry-After": "10"},
    )


def _internal_error(exc: Exception):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if _is_postgres_error(exc):
        return _store_error(exc)
    log.exception("unhandled error")
    return error_response(500, "Internal server error")


def _is_postgres_error(exc: Exception) -> bool:
    """Whether ``exc`` is psycopg's (the PostgreSQL store, FLOWRUN_DATABASE_URL).

    psycopg is not imported to find out: it and its C library take ~9 MiB in every
    worker, and a server on SQLite never loads it. Where it is not loaded, nothing
    can have raised one of its errors.
    """
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)
