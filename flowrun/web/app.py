"""The application factory: ``create_app``.

Settings are read once (defaults → ``FLOWRUN_*`` environment → ``test_config``), the
workspace is seeded with the sample flows on first start, and the blueprints are
registered: ``api`` (``/api``, JSON + SSE), ``studio`` (``/``), ``demo`` (``/demo``,
the built-in target API). Requests from a trusted reverse proxy have its
``X-Forwarded-*`` headers applied first (``proxies.TrustedProxies``).
"""

from __future__ import annotations

import logging

from flask import Flask

from flowrun import resources
from flowrun import settings as settings_mod
from flowrun.logs import JsonFormatter
from flowrun.web import errors, security
from flowrun.web.addresses import Networks, ServerHosts, is_loopback
from flowrun.web.proxies import TrustedProxies
from flowrun.web.state import State
from flowrun.workspace import Workspace

log = logging.getLogger("flowrun")


def create_app(test_config: dict | None = None) -> Flask:
    """Build the flowrun app: settings (defaults → environment → ``test_config``)."""
    app = Flask(
        "flowrun",
        root_path=str(resources.root()),
        template_folder=str(resources.templates_dir()),
        static_folder=str(resources.static_dir()),
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
    _log_with_gunicorn(config["FLOWRUN_LOG_FORMAT"])
    Workspace(config["FLOWRUN_FLOWS_DIR"]).seed(int(config["PORT"]))
    app.extensions["flowrun.hosts"] = ServerHosts(
        config["FLOWRUN_SERVER_HOSTS"], config["FLOWRUN_BIND"]
    )
    app.wsgi_app = TrustedProxies(
        app.wsgi_app, Networks(config["FLOWRUN_TRUSTED_PROXIES"])
    )
    app.extensions["flowrun"] = State(config)
    _warn_if_exposed(config)

    from flowrun.web.api import bp as api_bp
    from flowrun.web.demo import bp as demo_bp
    from flowrun.web.prometheus import bp as metrics_bp
    from flowrun.web.studio import bp as studio_bp

    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(studio_bp)
    app.register_blueprint(demo_bp, url_prefix="/demo")
    app.register_blueprint(metrics_bp)
    app.before_request(security.check_request)
    app.after_request(security.tag_worker)
    errors.register(app)
    return app


def _log_with_gunicorn(log_format: str) -> None:
    """Under gunicorn, flowrun's log lines go where gunicorn's go, in its format.

    Otherwise the ``flowrun`` logger has no handler there: warnings and errors
    reach stderr bare (Python's last-resort handler) and INFO lines are dropped.
    Elsewhere (the development server), ``FLOWRUN_LOG_FORMAT=json`` gives it a
    JSON handler of its own.
    """
    gunicorn_log = logging.getLogger("gunicorn.error")
    if log.handlers:
        return
    if gunicorn_log.handlers:
        log.handlers = list(gunicorn_log.handlers)
    elif str(log_format).strip().lower() == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        log.handlers = [handler]
    else:
        return
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
