"""The Studio blueprint: the one HTML page (templates/, static/)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, url_for

from flowrun.store.masking import SECRET_WORDS
from flowrun.version import __version__

bp = Blueprint("studio", __name__)

# Studio loads only its own scripts, styles and API: no inline script, no eval, no
# other origin. Style attributes set from scripts (element.style) stay allowed; a
# `style="…"` written in markup would not be. Tabs Studio opens (a launchBrowser
# URL, a raw body) are navigations, which this policy does not govern.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def _has_environments() -> bool:
    """Whether this server answers ``GET /api/environments`` (Studio then shows
    its environment switcher; asking a server without it would be a failed request)."""
    return any(
        rule.rule == "/api/environments" and "GET" in (rule.methods or ())
        for rule in current_app.url_map.iter_rules()
    )


@bp.get("/")
def index():
    """Render Studio; values for the scripts travel as one JSON data attribute."""
    config = {
        "version": __version__,
        "api": url_for("studio.index") + "api",
        "demoUrl": url_for("studio.index", _external=True) + "demo",
        "environments": _has_environments(),
        "secretWords": list(SECRET_WORDS),
    }
    response = current_app.make_response(
        render_template("index.html", studio_config=config)
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
