"""Stand-in WSGI apps shaped like flowrun's stream: the floors of the stack.

``concurrent_flows.py --gunicorn-floor KIND`` serves one of these instead of flowrun
with the same ``gunicorn -c gunicorn.conf.py`` (gevent worker, access log, every
setting). ``POST /api/execute-stream`` reads the body, parses it as JSON and answers
``start`` at once, then ``step_start``/``step`` per node, then ``end``:

- ``app`` (KIND ``sleep``): each step sleeps the node's ``ms=``; no request is made
  to the target. What gunicorn alone costs.
- ``requests_app`` (KIND ``requests``): each step is the node's GET to the target
  with a ``requests.Session`` per stream (``trust_env`` off), its body decoded as
  JSON: gunicorn and ``requests`` doing the flows' work, nothing of flowrun.
- ``flask_app`` (KIND ``flask``): the same as ``requests`` behind one Flask route.
- ``client_app`` (KIND ``client``): the same behind one Flask route, each GET sent
  by flowrun's own ``Client`` (``flowrun/http/client.py``: ``requests`` with its
  per-call work cut) instead of a plain ``Session``, from a greenlet of the run's
  own as flowrun does: the stack as flowrun drives it, without flowrun's checks,
  history, events, prompts or stop handling.

``GET /api/health`` answers ok.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs

import gevent

_HEADERS = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Execution-Id", "exec-standin"),
]


def _sleep_step(node: dict) -> dict:
    query = parse_qs(str(node.get("url", "")).partition("?")[2])
    gevent.sleep(int(query.get("ms", ["200"])[0]) / 1000)
    return {"status": "completed"}


def _frames(config: dict, seq: list, step=_sleep_step):
    def frame(name: str, data: dict) -> bytes:
        seq[0] += 1
        data["executionId"] = "exec-standin"
        return f"id: {seq[0]}\nevent: {name}\ndata: {json.dumps(data)}\n\n".encode()

    nodes = config.get("nodes", [])
    yield frame("start", {"totalSteps": len(nodes)})
    for i, node in enumerate(nodes):
        yield frame("step_start", {"step": i + 1, "stepIndex": i})
        yield frame("step", {"step": i + 1, "stepIndex": i, **step(node)})
    yield frame(
        "end", {"success": True, "interrupted": False, "stepsExecuted": len(nodes)}
    )


def _requested_frames(config: dict, seq: list):
    import requests  # in the worker, after gevent's patching

    base = config.get("defaults", {}).get("baseUrl", "")
    session = requests.Session()
    session.trust_env = False

    def step(node: dict) -> dict:
        reply = session.get(base + node["url"], timeout=(10, 30))
        return {
            "status": "completed",
            "statusCode": reply.status_code,
            "body": reply.json(),
        }

    try:
        yield from _frames(config, seq, step)
    finally:
        session.close()


def _client_frames(config: dict, seq: list):
    """As flowrun runs a flow: ``start`` from the request, the steps in a greenlet
    of their own that queues the frames, the request's generator writing them."""
    from gevent.queue import SimpleQueue

    from flowrun.http.client import Client  # in the worker, after gevent's patching

    base = config.get("defaults", {}).get("baseUrl", "")
    client = Client()

    def step(node: dict) -> dict:
        reply = client.send("GET", base + node["url"], {}, None, 30)
        return {"status": "completed", "statusCode": reply.status, "body": reply.body}

    frames, queued = _frames(config, seq, step), SimpleQueue()
    first = next(frames)

    def work():
        try:
            for item in frames:
                queued.put(item)
        finally:
            queued.put(None)
            client.close()

    gevent.spawn(work)
    yield first
    while (item := queued.get()) is not None:
        yield item


def _stream(environ, start_response, frames):
    size = int(environ.get("CONTENT_LENGTH") or 0)
    config = json.loads(environ["wsgi.input"].read(size) or b"{}").get("config", {})
    start_response("200 OK", [*_HEADERS, ("X-Flowrun-Worker", str(os.getpid()))])
    return frames(config, [0])


def requests_app(environ, start_response):
    if environ["PATH_INFO"] == "/api/execute-stream":
        return _stream(environ, start_response, _requested_frames)
    return app(environ, start_response)


def _flask_app(frames=_requested_frames):
    from flask import Flask, Response, request

    flask = Flask("standin")

    @flask.post("/api/execute-stream")
    def execute_stream():
        config = request.get_json().get("config", {})
        return Response(frames(config, [0]), headers=_HEADERS)

    @flask.get("/api/health")
    def health():
        return {"status": "ok"}

    @flask.after_request
    def worker(response):
        response.headers["X-Flowrun-Worker"] = str(os.getpid())
        return response

    return flask


_flask = {}  # made on the first request, in the worker


def flask_app(environ, start_response):
    if "requests" not in _flask:
        _flask["requests"] = _flask_app()
    return _flask["requests"](environ, start_response)


def client_app(environ, start_response):
    if "client" not in _flask:
        _flask["client"] = _flask_app(_client_frames)
    return _flask["client"](environ, start_response)


def app(environ, start_response):
    worker = ("X-Flowrun-Worker", str(os.getpid()))
    if environ["PATH_INFO"] == "/api/execute-stream":
        return _stream(environ, start_response, _frames)
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
