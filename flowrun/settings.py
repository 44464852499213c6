"""Every setting of flowrun in one table: name, default, help.

Settings are read once, when the app (or the CLI) starts: defaults, then ``FLOWRUN_*``
environment variables, then explicit overrides (``create_app(test_config)``).
Nothing here reads the environment at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    default: object
    help: str
    kind: type = str


SETTINGS = (
    Setting("FLOWRUN_DATA_DIR", "./.flowrun", "Directory of the SQLite history store."),
    Setting(
        "FLOWRUN_FLOWS_DIR",
        "./flows",
        "Workspace directory of flow files (*.json); environments in its "
        "environments/ folder.",
    ),
    Setting(
        "FLOWRUN_HEARTBEAT_S",
        10.0,
        "Seconds of silence before an SSE `: keep-alive` comment; also bounds how "
        "long a closed connection goes unnoticed.",
        float,
    ),
    Setting(
        "FLOWRUN_INPUT_TIMEOUT_S",
        600.0,
        "How long a prompt waits for an answer.",
        float,
    ),
    Setting(
        "FLOWRUN_HISTORY_LIMIT",
        1000,
        "Executions kept in history (oldest pruned).",
        int,
    ),
    Setting(
        "FLOWRUN_MAX_BODY_BYTES",
        1_048_576,
        "Response body bytes kept in events and history.",
        int,
    ),
    Setting(
        "FLOWRUN_MAX_VALIDATE_BYTES",
        16_777_216,
        "Response body bytes read for validations.",
        int,
    ),
    Setting(
        "FLOWRUN_MAX_REQUEST_BYTES",
        10_485_760,
        "Largest request a step may send (URL, headers and body, after placeholders); "
        "a larger one fails the step before anything is sent, and its placeholders "
        "are substituted no further.",
        int,
    ),
    Setting(
        "FLOWRUN_MAX_CONFIG_BYTES",
        5_242_880,
        "Largest request body accepted (413 above).",
        int,
    ),
    Setting("FLOWRUN_MAX_STEPS", 1000, "Most nodes a flow may have.", int),
    Setting(
        "FLOWRUN_STEP_CPU_S",
        2.0,
        "Seconds of computing a step's conditions, placeholders and validations "
        "(regexes, JSON Schemas, jq programs) may take together; past it the step "
        "fails.",
        float,
    ),
    Setting(
        "FLOWRUN_MAX_EXECUTIONS",
        10_000,
        "Concurrent executions per worker (503 above).",
        int,
    ),
    Setting(
        "FLOWRUN_TOKEN",
        None,
        "If set, every /api/* call but health needs `Authorization: Bearer <token>`.",
    ),
    Setting(
        "FLOWRUN_ALLOWED_ORIGINS",
        "",
        "Comma-separated extra origins allowed to POST (same origin always is).",
    ),
    Setting(
        "FLOWRUN_SERVER_HOSTS",
        "",
        "Comma-separated host names (`name` or `name:port`) a request's `Host` may "
        "name besides the loopback names and `FLOWRUN_BIND`, which are always "
        "allowed; `*` allows any. Other hosts get 400 (DNS-rebinding defence).",
    ),
    Setting(
        "FLOWRUN_TRUSTED_PROXIES",
        "127.0.0.1,::1",
        "Comma-separated addresses or networks of the reverse proxies whose "
        "`X-Forwarded-For/-Proto/-Host/-Prefix` headers are honoured; from any "
        "other peer they are ignored.",
    ),
    Setting(
        "FLOWRUN_BLOCKED_NETWORKS",
        "169.254.0.0/16,fd00:ec2::254/128",
        "Comma-separated networks steps may not reach (resolved address checked, "
        "redirects too).",
    ),
    Setting(
        "FLOWRUN_ALLOWED_HOSTS",
        "",
        "If set, comma-separated host names that are the only allowed targets.",
    ),
    Setting(
        "FLOWRUN_REDIS_URL",
        None,
        "Redis URL for the cross-host control channel (stop/input/continue).",
    ),
    Setting(
        "FLOWRUN_DATABASE_URL",
        None,
        "`postgresql://user:password@host/db`: history and the control channel in "
        "PostgreSQL, shared by several hosts (unset: SQLite in FLOWRUN_DATA_DIR).",
    ),
    Setting(
        "FLOWRUN_LEASE_S",
        15.0,
        "With FLOWRUN_DATABASE_URL: seconds after which the runs of a host that "
        "stopped renewing its lease are recorded interrupted.",
        float,
    ),
    Setting(
        "FLOWRUN_LOG_FORMAT",
        "text",
        "`json`: access and event logs as JSON lines, with the execution id.",
    ),
    Setting(
        "FLOWRUN_SECRET_VARS",
        "",
        "Comma-separated variable names whose values are masked in events, history "
        "and reports.",
    ),
    Setting("PORT", 8000, "Port gunicorn.conf.py binds.", int),
    Setting("WEB_CONCURRENCY", 2, "gunicorn worker processes.", int),
    Setting("FLOWRUN_BIND", "127.0.0.1", "Address gunicorn.conf.py binds (with PORT)."),
)


def _convert(setting: Setting, raw):
    if raw is None or raw == "":
        return (
            setting.default
            if raw is None
            else (None if setting.default is None else setting.default)
        )
    if setting.kind is str or isinstance(raw, setting.kind):
        return raw
    try:
        return setting.kind(raw)
    except (TypeError, ValueError):
        raise ValueError(
            f"{setting.name}={raw!r} is not a valid {setting.kind.__name__}"
        ) from None


def load(overrides: dict | None = None, environ=None) -> dict:
    """Return ``{NAME: value}`` for every setting: default → environment → overrides."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    values = {}
    for s in SETTINGS:
        raw = overrides.get(s.name, environ.get(s.name))
        values[s.name] = _convert(s, raw)
    return values


def split(value) -> list[str]:
    """Split a comma-separated setting into its non-empty items."""
    if not value:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [item.strip() for item in str(value).split(",") if item.strip()]
