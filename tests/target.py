"""A real HTTP target for tests: the demo API on 127.0.0.1 in a thread."""

from __future__ import annotations

import socket
import threading
import time

from flask import Flask, jsonify
from werkzeug.serving import make_server

from flowrun.web.demo import bp as demo_bp


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """A running target server; ``url`` is its base, ``hits`` what it received."""

    def __init__(self):
        self.hits: list[dict] = []
        self.lock = threading.Lock()
        app = Flask("target")
        # Tests redirect through the target to other hosts (guard, DNS errors).
        app.config["DEMO_OFF_SITE_REDIRECTS"] = True
        app.register_blueprint(demo_bp, url_prefix="/demo")

        @app.get("/hits")
        def hits():
            return jsonify(self.hits)

        self.app = app
        self._server = make_server(
            "127.0.0.1", 0, self._record(app.wsgi_app), threaded=True
        )
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _record(self, wsgi):
        def app(environ, start_response):
            with self.lock:
                self.hits.append(
                    {
                        "method": environ["REQUEST_METHOD"],
                        "path": environ.get("PATH_INFO", ""),
                        "query": environ.get("QUERY_STRING", ""),
                        "at": time.time(),
                    }
                )
            return wsgi(environ, start_response)

        return app

    def paths(self) -> list[str]:
        with self.lock:
            return [h["path"] for h in self.hits if h["path"] != "/hits"]

    def clear(self) -> None:
        with self.lock:
            self.hits.clear()

    def close(self) -> None:
        self._server.shutdown()


def run_events(doc, options=None, controls=None, settings=None, **opts):
    """Normalize ``doc``, run it to the end and return ``[(name, data), …]``."""
    from flowrun.engine.flow import RunOptions, normalize
    from flowrun.engine.run import Run

    if options is None:
        options = RunOptions(**opts)
    run = Run(normalize(doc), options, controls, settings)
    return [(e.name, e.to_dict()) for e in run.events()]


def steps_of(events) -> list[dict]:
    """The ``step`` records of a run, in order."""
    return [data for name, data in events if name == "step"]


def end_of(events) -> dict:
    name, data = events[-1]
    assert name == "end"
    return data
