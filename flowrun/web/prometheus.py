"""``GET /metrics``: the server's metrics in Prometheus's text format.

Behind the token when one is set (``security.check_request``), like the API.
"""

from __future__ import annotations

from flask import Blueprint, Response

from flowrun import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics_():
    return Response(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
