"""The Studio blueprint: the one HTML page (templates/, static/)."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("studio", __name__)


@bp.get("/")
def index():
    return render_template("index.html")
