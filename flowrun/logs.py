"""Logs as JSON lines (``FLOWRUN_LOG_FORMAT=json``), for log collectors.

- ``JsonFormatter``: one JSON object per line, ``time``, ``level``, ``logger``,
  ``message``, and ``executionId`` for every line written while a run is going on
  (the run's thread sets ``execution_id``), or that names one;
- gunicorn's error and access logs use it (``gunicorn_logconfig``, read by
  ``gunicorn.conf.py``): an access line has the request's method, path, status,
  bytes, duration and the execution id a stream answered with;
- event lines, written by the recorder of each run: ``run started``, ``step``, ``run
  ended``, with counts and statuses, never a URL, a body or an error message, which
  may hold secrets.

Text stays the default: gunicorn's own formats, no event lines.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import time

# The run whose thread (greenlet) is writing: every line it logs carries its id.
execution_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flowrun_execution_id", default=None
)

# gunicorn's access atoms a JSON access line keeps (never the query string or the
# request line, which may hold a token).
_ACCESS = {
    "h": "remote",
    "m": "method",
    "U": "path",
    "s": "status",
    "B": "bytes",
    "M": "durationMs",
    "{x-execution-id}o": "executionId",
    "p": "worker",
}
# A format naming each atom, so that gunicorn builds them all.
ACCESS_FORMAT = " ".join(f"%({atom})s" for atom in _ACCESS)
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "executionId",
}


def json_wanted(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get("FLOWRUN_LOG_FORMAT", "").strip().lower() == "json"


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            out["message"] = "request"
            out.update(_access_fields(record.args))
        else:
            out["message"] = record.getMessage()
        running = getattr(record, "executionId", None) or execution_id.get()
        if running and "executionId" not in out:
            out["executionId"] = running
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def _access_fields(atoms) -> dict:
    fields = {}
    for atom, name in _ACCESS.items():
        value = atoms.get(atom)
        if value in (None, "-", ""):
            continue
        if name in ("status", "bytes", "durationMs"):
            try:
                value = int(value)
            except (TypeError, ValueError):
                pass
        fields[name] = value
    return fields


def gunicorn_logconfig() -> dict:
    """gunicorn's ``logconfig_dict``: its error and access logs as JSON lines."""
    stream = {"class": "logging.StreamHandler", "formatter": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "flowrun.logs.JsonFormatter"}},
        "handlers": {
            "error_console": {**stream, "stream": "ext://sys.stderr"},
            "console": {**stream, "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "gunicorn.error": {
                "level": "INFO",
                "handlers": ["error_console"],
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            "gunicorn.access": {
                "level": "INFO",
                "handlers": ["console"],
                "propagate": False,
                "qualname": "gunicorn.access",
            },
        },
        "root": {"level": "INFO", "handlers": ["error_console"]},
    }


class EventLog:
    """Event lines of one run (JSON mode only): start, each step, the end."""

    __slots__ = ("execution_id",)
    log = logging.getLogger("flowrun.events")

    def __init__(self, execution_id: str, flow_name: str, total_steps: int):
        self.execution_id = execution_id
        self.log.info(
            "run started",
            extra={
                "executionId": execution_id,
                "flowName": flow_name,
                "totalSteps": total_steps,
            },
        )

    def step(self, record: dict) -> None:
        response = record.get("response") or {}
        duration = record.get("duration")
        self.log.info(
            "step",
            extra={
                "executionId": self.execution_id,
                "step": record.get("step"),
                "id": record.get("id"),
                "status": record.get("status"),
                "httpStatus": response.get("status"),
                "durationMs": None if duration is None else round(duration * 1000),
            },
        )

    def end(self, status: str, data: dict) -> None:
        self.log.info(
            "run ended",
            extra={
                "executionId": self.execution_id,
                "status": status,
                "stepsExecuted": data.get("stepsExecuted"),
                "stepsFailed": data.get("stepsFailed"),
                "stepsSkipped": data.get("stepsSkipped"),
                "durationMs": round((data.get("duration") or 0) * 1000),
            },
        )
