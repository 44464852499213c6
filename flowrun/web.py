"""The web app: ``create_app``, shared state, security hooks and the one error shape.

Blueprints: ``api`` (``/api``, JSON + SSE), ``studio`` (``/``), ``demo`` (``/demo``).
Every error leaves as ``{"error": "message", "errors": [located errors]}``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import threading
import weakref
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, redirect, request
from werkzeug.exceptions import HTTPException

from . import settings as settings_mod
from .control import RedisChannel, SQLiteChannel
from .engine import EngineSettings, Run, new_execution_id
from .errors import FlowInvalid
from .executions import Busy, Execution, NoPrompts, Recorder, Registry, WebControls
from .green import gevent_active
from .jsontext import dumps as _dumps
from .store import Store

log = logging.getLogger("flowrun")
ROOT = Path(__file__).resolve().parent.parent
COOKIE = "flowrun_token"
_BODY_METHODS = ("POST", "PUT", "PATCH")


class ApiError(Exception):
    """An error answered as ``{"error", "errors"}`` with an HTTP status."""

    def __init__(self, status: int, message: str, errors=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.headers = headers or {}


def located(path: str, message: str, hint: str = "", node_id=None) -> dict:
    return {"path": path, "nodeId": node_id, "message": message, "hint": hint}


class State:
    """What one worker process shares between requests (``app.extensions``)."""

    def __init__(self, config: dict):
        self.config = config
        self.heartbeat = float(config["FLOWRUN_HEARTBEAT_S"])
        self.max_steps = int(config["FLOWRUN_MAX_STEPS"])
        self.flows_dir = Path(config["FLOWRUN_FLOWS_DIR"])
        self.secret_vars = frozenset(settings_mod.split(config["FLOWRUN_SECRET_VARS"]))
        self.store = Store(
            config["FLOWRUN_DATA_DIR"], config["FLOWRUN_HISTORY_LIMIT"], _group_commit()
        )
        self.registry = Registry(int(config["FLOWRUN_MAX_EXECUTIONS"]))
        # Runs of POST /api/execute: not in the registry (nothing streams or
        # prompts), but they count against FLOWRUN_MAX_EXECUTIONS all the same.
        self.running_to_end = 0
        # Events a stream may have waiting for a client that does not read.
        self.backlog_limit = max(32 * 2**20, 8 * int(config["FLOWRUN_MAX_BODY_BYTES"]))
        if config.get("FLOWRUN_REDIS_URL"):
            self.channel = RedisChannel(
                config["FLOWRUN_REDIS_URL"], self.store, self.registry
            )
        else:
            self.channel = SQLiteChannel(self.store, self.registry)
        self.lock = threading.Lock()
        self.eof_poller = None
        self.store.reap()
        # A worker that exits (gunicorn restart, deploy) cannot finish its runs;
        # say so in history rather than leave them "running" for ever.
        atexit.register(_abandon_live, weakref.ref(self))

    def close(self) -> None:
        self.channel.close()
        self.store.close()

    def stop_all(self) -> None:
        """Stop every live execution of this process after its step in flight."""
        for execution in list(self.registry.live.values()):
            execution.controls.stop()

    def engine_settings(self) -> EngineSettings:
        return EngineSettings.from_settings(self.config)

    def _reserve(self) -> None:
        if len(self.registry) + self.running_to_end >= self.registry.limit:
            raise Busy(
                f"This worker already runs {self.registry.limit} executions "
                "(FLOWRUN_MAX_EXECUTIONS)"
            )

    def start(self, flow: dict, options) -> Execution:
        """Create, record and start a live execution (its own thread)."""
        self._reserve()
        self.registry.reserve()
        self.channel.ensure_started()
        execution_id = new_execution_id()
        controls = WebControls(execution_id, self.channel)
        run = Run(flow, options, controls, self.engine_settings(), execution_id)
        execution = Execution(self, run, controls)
        self.registry.add(execution)
        execution.start()
        return execution

    @contextlib.contextmanager
    def slot(self):
        """One of this worker's FLOWRUN_MAX_EXECUTIONS, for a run served inside its
        request (``/api/execute``, Try it out); Busy when there is none."""
        with self.lock:
            self._reserve()
            self.running_to_end += 1
        try:
            yield
        finally:
            with self.lock:
                self.running_to_end -= 1

    def run_to_end(self, flow: dict, options, watch=None) -> dict:
        """Run here to the end (prompts only from options.inputs); return ``end``.

        ``watch(on_close)``, if given, calls ``on_close()`` once the client closes
        its connection and returns an unwatch (or None, when it cannot tell).
        """
        with self.slot():
            return self._run_to_end(flow, options, watch)

    def _run_to_end(self, flow: dict, options, watch) -> dict:
        unwatch = None
        try:
            execution_id = new_execution_id()
            controls = NoPrompts(execution_id, self.channel)
            run = Run(flow, options, controls, self.engine_settings(), execution_id)
            recorder = Recorder(self.store, run, self.secret_vars, self.channel)
            # A client that went away stops the run after the step in flight, as a
            # closed stream does (SPEC §6): nobody would read the rest.
            if watch is not None:
                unwatch = watch(controls.stop)
            end = None
            for ev in run.events():
                data = ev.to_dict()
                text = _dumps(data) if ev.name == "step" else ""
                recorder.record(ev, data, text)
                if ev.name == "start":
                    # This client learns the run's id from the list only: commit
                    # its row before the first request goes out, not with the next
                    # group (no first event waits on it here).
                    self.store.flush()
                elif ev.name == "end":
                    end = data
            # The end may wait for the group commit: the answer must not come first.
            self.store.flush()
            return end
        finally:
            if unwatch is not None:
                unwatch()


def _abandon_live(state_ref) -> None:
    state = state_ref()
    if state is None:
        return
    try:
        state.store.flush()  # runs that ended in the last moment, still in a group
        if state.registry.live:
            state.store.abandon(list(state.registry.live), "the server process exited")
    except Exception:  # the store may already be closed
        pass


def create_app(test_config: dict | None = None) -> Flask:
    """Build the flowrun app: settings (defaults → environment → ``test_config``)."""
    app = Flask(
        "flowrun",
        root_path=str(ROOT),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        static_url_path="/static",
    )
    # Flows are documents people write: hand them back in their own key order.
    app.json.sort_keys = False
    test_config = dict(test_config or {})
    config = settings_mod.load(test_config)
    app.config.update(config)
    app.config.update(
        {k: v for k, v in test_config.items() if k not in config},
        MAX_CONTENT_LENGTH=int(config["FLOWRUN_MAX_CONFIG_BYTES"]),
    )
    _log_with_gunicorn()
    seed_flows(Path(config["FLOWRUN_FLOWS_DIR"]), int(config["PORT"]))
    app.extensions["flowrun"] = State(config)
    _warn_if_exposed(config)

    from .api import bp as api_bp
    from .demo import bp as demo_bp
    from .studio import bp as studio_bp

    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(studio_bp)
    app.register_blueprint(demo_bp, url_prefix="/demo")
    app.before_request(_guard)
    app.after_request(_tag_worker)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(FlowInvalid, _flow_invalid)
    app.register_error_handler(Busy, _busy)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)
    return app


EXAMPLES_DEMO_URL = "http://127.0.0.1:8000/demo"


def seed_flows(flows_dir: Path, port: int = 8000) -> None:
    """On first start (no workspace yet), copy the example flows into it.

    The examples call the demo API at 127.0.0.1:8000; the copies call this server's
    own port (the server sends the steps' requests, so loopback is always right).
    """
    if flows_dir.exists():
        return
    flows_dir.mkdir(parents=True, exist_ok=True)
    own = f"http://127.0.0.1:{port}/demo"
    for example in sorted((ROOT / "examples").glob("*.json")):
        target = flows_dir / example.name
        if not target.exists():
            tmp = flows_dir / f".{example.name}.{os.getpid()}.tmp"
            text = example.read_text("utf-8").replace(EXAMPLES_DEMO_URL, own)
            tmp.write_text(text, "utf-8")
            os.replace(tmp, target)


def _log_with_gunicorn() -> None:
    """Under gunicorn, flowrun's log lines go where gunicorn's go, in its format.

    Otherwise the ``flowrun`` logger has no handler there: warnings and errors
    reach stderr bare (Python's last-resort handler) and INFO lines are dropped.
    """
    gunicorn_log = logging.getLogger("gunicorn.error")
    if gunicorn_log.handlers and not log.handlers:
        log.handlers = list(gunicorn_log.handlers)
        log.setLevel(logging.INFO)
        log.propagate = False


def _warn_if_exposed(config: dict) -> None:
    bind = str(config.get("FLOWRUN_BIND") or "127.0.0.1")
    if not config.get("FLOWRUN_TOKEN") and not is_loopback(bind):
        log.warning(
            "\n%s\nflowrun binds %s without FLOWRUN_TOKEN: anyone who can reach it "
            "can run requests from this machine. Set FLOWRUN_TOKEN.\n%s",
            "!" * 72,
            bind,
            "!" * 72,
        )


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_value(token: str) -> str:
    """The Studio session cookie: derived from the token, not the token itself."""
    return hmac.new(token.encode(), b"flowrun-studio", hashlib.sha256).hexdigest()


# -- security hooks
def _guard():
    config = current_app.config
    path = request.path
    token = config.get("FLOWRUN_TOKEN")
    if path == "/" and token and "token" in request.args:
        if not hmac.compare_digest(request.args["token"], token):
            raise ApiError(401, "Wrong token", headers={"WWW-Authenticate": "Bearer"})
        resp = redirect("/", code=302)
        resp.set_cookie(
            COOKIE,
            cookie_value(token),
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
        )
        return resp
    if not path.startswith("/api/") and path != "/api":
        return None
    limit = config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413, f"Request body over {limit} bytes (FLOWRUN_MAX_CONFIG_BYTES)"
        )
    if token and path != "/api/health" and not _authorized(token):
        raise ApiError(
            401,
            "Missing or wrong token: send Authorization: Bearer <FLOWRUN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Browsers send Origin on cross-site requests (and on same-origin POSTs): a
    # page elsewhere cannot drive this server, whatever the method.
    origin = request.headers.get("Origin")
    if origin is not None and not _origin_allowed(origin, config):
        raise ApiError(403, f"Origin {origin} is not allowed")
    if request.method in _BODY_METHODS and request.mimetype != "application/json":
        # A POST without any body and Content-Type (curl -X POST …/stop) is not a
        # form a foreign page could send unnoticed: browsers add Origin to it.
        if request.mimetype or request.content_length:
            raise ApiError(415, "Content-Type must be application/json")
    return None


def _authorized(token: str) -> bool:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and hmac.compare_digest(
        auth[7:].strip().encode(), token.encode()
    ):
        return True
    cookie = request.cookies.get(COOKIE)
    return bool(cookie) and hmac.compare_digest(cookie, cookie_value(token))


def _origin_allowed(origin: str, config) -> bool:
    origin = origin.rstrip("/")
    if origin.lower() == "null":
        return False
    if urlsplit(origin).netloc.lower() == request.host.lower():
        return True
    allowed = settings_mod.split(config.get("FLOWRUN_ALLOWED_ORIGINS"))
    return origin in {a.rstrip("/") for a in allowed}


def _tag_worker(response):
    # Which worker process answered: lets tests (and operators) see cross-worker paths.
    response.headers["X-Flowrun-Worker"] = str(os.getpid())
    return response


# -- the one error shape
def error_response(status: int, message: str, errors=None, headers=None):
    resp = jsonify(error=message, errors=errors or [])
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


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


def _internal_error(exc: Exception):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    log.exception("unhandled error")
    return error_response(500, "Internal server error")


GROUP_COMMIT_S = 0.002


def _group_commit():
    """How the store defers step rows to commit them in groups: under gevent, a
    greenlet GROUP_COMMIT_S later (the SSE stream flushes sooner when it writes);
    elsewhere (threads, tests, the CLI) every row is committed at once."""
    if not gevent_active():
        return None
    import gevent

    return lambda flush: gevent.spawn_later(GROUP_COMMIT_S, flush)
