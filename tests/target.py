"""A real HTTP target for tests: the demo API on 127.0.0.1 in a thread."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import parse_qs

from flask import Flask, jsonify
from werkzeug.serving import make_server

from flowrun.web.demo import bp as demo_bp


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A held request is let go after this long even if no test releases it.
HOLD_LIMIT_S = 30


class Target:
    """A running target server; ``url`` is its base, ``hits`` what it received.

    A request whose query has ``hold=KEY`` (or that ``hold_path`` names) is
    recorded at once, then held until the test calls ``release(KEY)``: the test
    knows the step is in flight, and for as long as it needs.
    """

    def __init__(self):
        self.hits: list[dict] = []
        self.lock = threading.Lock()
        self._gates: dict[str, threading.Event] = {}
        self._held: set[str] = set()  # keys some request was held under
        self._path_holds: dict[str, tuple[int, str]] = {}  # path: (after, key)
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
            path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
            with self.lock:
                self.hits.append(
                    {
                        "method": environ["REQUEST_METHOD"],
                        "path": path,
                        "query": query,
                        "at": time.time(),
                    }
                )
                keys = parse_qs(query).get("hold", [])
                after, key = self._path_holds.get(path, (None, None))
                if key and sum(h["path"] == path for h in self.hits) > after:
                    keys.append(key)
                self._held.update(keys)
            for key in keys:
                self._gate(key).wait(HOLD_LIMIT_S)
            return wsgi(environ, start_response)

        return app

    def paths(self) -> list[str]:
        with self.lock:
            return [h["path"] for h in self.hits if h["path"] != "/hits"]

    def _gate(self, key: str) -> threading.Event:
        with self.lock:
            return self._gates.setdefault(key, threading.Event())

    def held(self, key: str) -> bool:
        """Whether a request held under ``key`` has arrived (and waits, unless
        released)."""
        with self.lock:
            return key in self._held

    def hold_path(self, path: str, after: int, key: str) -> None:
        """Hold the requests for ``path`` that come after the first ``after``
        under ``key`` (for flows whose URLs the test does not write)."""
        with self.lock:
            self._path_holds[path] = (after, key)

    def release(self, key: str) -> None:
        """Let the requests held under ``key`` (and later ones) through."""
        self._gate(key).set()

    def clear(self) -> None:
        """Forget the requests received; let every held request go."""
        with self.lock:
            self.hits.clear()
            self._held.clear()
            self._path_holds.clear()
            gates, self._gates = self._gates, {}
        for gate in gates.values():
            gate.set()

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
