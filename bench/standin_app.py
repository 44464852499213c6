"""A stand-in WSGI app shaped like flowrun's stream, for gunicorn's own floor.

``concurrent_flows.py --gunicorn-floor`` serves this instead of flowrun with the
same ``gunicorn -c gunicorn.conf.py`` (gevent worker, access log, every setting):
what a burst of new streams costs when the app does nothing. ``POST
/api/execute-stream`` reads the body, parses it as JSON and answers ``start`` at
once, then ``step_start``/``step`` per node after sleeping the node's ``ms=`` (no
request is made to the target), then ``end``. ``GET /api/health`` answers ok.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs

import gevent


def _frames(nodes: list, seq: list):
    def frame(name: str, data: dict) -> bytes:
        seq[0] += 1
        data["executionId"] = "exec-standin"
        return f"id: {seq[0]}\nevent: {name}\ndata: {json.dumps(data)}\n\n".encode()

    yield frame("start", {"totalSteps": len(nodes)})
    for i, node in enumerate(nodes):
        yield frame("step_start", {"step": i + 1, "stepIndex": i})
        query = parse_qs(str(node.get("url", "")).partition("?")[2])
        gevent.sleep(int(query.get("ms", ["200"])[0]) / 1000)
        yield frame("step", {"step": i + 1, "stepIndex": i, "status": "completed"})
    yield frame(
        "end", {"success": True, "interrupted": False, "stepsExecuted": len(nodes)}
    )


def app(environ, start_response):
    worker = ("X-Flowrun-Worker", str(os.getpid()))
    if environ["PATH_INFO"] == "/api/execute-stream":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size) or b"{}")
        nodes = body.get("config", {}).get("nodes", [])
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-cache"),
                ("X-Execution-Id", "exec-standin"),
                worker,
            ],
        )
        return _frames(nodes, [0])
    body = b'{"status":"ok"}'
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            worker,
        ],
    )
    return [body]
