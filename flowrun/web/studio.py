"""The Studio blueprint: the one HTML page (templates/, static/)."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for

from flowrun.version import __version__

bp = Blueprint("studio", __name__)


@bp.get("/")
def index():
    """Render Studio; values for the scripts travel as one JSON data attribute."""
    config = {
        "version": __version__,
        "api": url_for("studio.index") + "api",
        "demoUrl": url_for("studio.index", _external=True) + "demo",
    }
    return render_template("index.html", studio_config=config)
