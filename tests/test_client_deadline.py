"""A step's timeout bounds its whole request; ``Client.abort`` cuts one short.

Targets that trickle or stall are real servers on 127.0.0.1: the demo API's
``/trickle``, ``/slow`` and ``/drip``, and a raw socket server that trickles headers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flowrun.errors import StepAborted, StepTimeout
from flowrun.http.client import Client

from .target import run_events, steps_of

ABORTED = "Stopped now: the request in flight was aborted"


def _send(url, timeout, client=None):
    client = client or Client()
    try:
        return client.send("GET", url, {}, None, timeout)
    finally:
        client.close()


def test_a_trickling_body_fails_at_the_deadline(target):
    # within the deadline, a body that comes a byte at a time is read whole
    reply = _send(target.url + "/demo/trickle?bytes=4&ms=50", 5)
    assert (reply.status, reply.body, reply.truncated) == (200, "xxxx", False)
    # 1 byte every 0.25 s for 6 s: every read is quick, the whole is not
    with pytest.raises(StepTimeout, match=r"^Request timeout after 1s$"):
        _send(target.url + "/demo/trickle?bytes=24&ms=250", 1)


class _Handler(BaseHTTPRequestHandler):
    """``/headers``: a status line, then the headers a byte every 0.1 s;
    ``/hop``: a redirect to ``/end`` after 0.4 s; ``/end``: 200 after 0.4 s."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for byte in b"X-Slow: " + b"y" * 40 + b"\r\nContent-Length: 0\r\n\r\n":
                if self.server.stopping.wait(0.1):
                    return
                self.wfile.write(bytes([byte]))
            return
        time.sleep(0.4)
        if self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", "/end")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    """The handler above on 127.0.0.1; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.stopping = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.stopping.set()
    server.shutdown()
    server.server_close()


def test_trickling_headers_fail_at_the_deadline(slow_server):
    # the headers take 6.7 s, each byte well within the timeout
    with pytest.raises(StepTimeout, match=r"^Request timeout after 0.8s$"):
        _send(slow_server + "/headers", 0.8)


def test_the_deadline_covers_redirects(slow_server):
    # each hop takes 0.4 s, within the timeout; both together do not
    assert _send(slow_server + "/hop", 5).status == 200
    with pytest.raises(StepTimeout, match=r"^Request timeout after 0.6s$"):
        _send(slow_server + "/hop", 0.6)


def test_a_step_with_a_trickling_target_fails_with_the_timeout_message(target):
    doc = {
        "defaults": {"baseUrl": target.url + "/demo"},
        "nodes": [
            {
                "id": "t",
                "method": "GET",
                "url": "/trickle?bytes=40&ms=200",
                "timeout": 1,
            }
        ],
    }
    [step] = steps_of(run_events(doc))
    assert step["status"] == "failed"
    assert step["error"] == "Request timeout after 1s"


def test_a_timeout_leaves_the_client_usable(target):
    client = Client()
    try:
        with pytest.raises(StepTimeout):
            client.send(
                "GET", target.url + "/demo/trickle?bytes=20&ms=200", {}, None, 0.5
            )
        reply = client.send("GET", target.url + "/demo/items", {}, None, 5)
    finally:
        client.close()
    assert reply.status == 200


# -- abort ---------------------------------------------------------------------------


def _wait_for_hit(target, path: str) -> None:
    deadline = time.monotonic() + 10
    while path not in target.paths():
        assert time.monotonic() < deadline, f"{path} never reached the target"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "path",
    [
        "/demo/slow?ms=30000",  # waiting for the headers
        "/demo/drip?ms=30000",  # reading the body
    ],
)
def test_abort_fails_the_request_in_flight_at_once(hits, path):
    client = Client()
    outcome = {}

    def send():
        try:
            client.send("GET", hits.url + path, {}, None, 60)
        except Exception as exc:  # noqa: BLE001 - the test reports what came
            outcome["error"] = exc

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    _wait_for_hit(hits, path.split("?")[0])
    client.abort()
    thread.join(10)  # far below the target's 30 s
    assert not thread.is_alive(), "the request in flight was not aborted"
    assert isinstance(outcome["error"], StepAborted)
    assert str(outcome["error"]) == ABORTED
    client.close()


def test_after_abort_nothing_more_is_sent(hits):
    client = Client()
    client.abort()
    with pytest.raises(StepAborted, match=f"^{ABORTED}$"):
        client.send("GET", hits.url + "/demo/items", {}, None, 5)
    assert hits.paths() == []


def test_abort_under_gevent(target):
    """The same in a process patched by gevent, the aborter another greenlet."""
    script = textwrap.dedent(
        f"""
        from gevent import monkey
        monkey.patch_all()
        import gevent, requests
        from flowrun.errors import StepAborted
        from flowrun.http.client import Client

        def hits():
            return [h["path"] for h in requests.get("{target.url}/hits").json()]

        for path in ("/demo/slow", "/demo/drip"):
            seen = hits().count(path)
            client = Client()

            def send():
                try:
                    client.send("GET", "{target.url}" + path + "?ms=30000", {{}},
                                None, 60)
                except StepAborted as exc:
                    return str(exc)

            # the deadline's lock is the OS's own even here (green.real_lock)
            assert type(client._flight._lock).__module__ == "_thread"
            greenlet = gevent.spawn(send)
            with gevent.Timeout(10):
                while hits().count(path) == seen:
                    gevent.sleep(0.01)
            client.abort()
            greenlet.join(10)
            assert greenlet.ready(), "not aborted"
            print(greenlet.value)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [ABORTED, ABORTED]


def test_a_deadline_under_gevent(target):
    script = textwrap.dedent(
        f"""
        from gevent import monkey
        monkey.patch_all()
        from flowrun.errors import StepTimeout
        from flowrun.http.client import Client

        try:
            Client().send("GET", "{target.url}/demo/trickle?bytes=24&ms=250", {{}},
                          None, 1)
        except StepTimeout as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Request timeout after 1s"


@pytest.mark.parametrize("gevent", [False, True], ids=["threads", "gevent"])
def test_a_shorter_deadline_than_those_armed_still_fires_on_time(target, gevent):
    """The deadline thread sleeps until the earliest deadline armed; a request with
    an earlier one must wake it, or that request runs on to the later one."""
    script = textwrap.dedent(
        f"""
        if {gevent}:
            from gevent import monkey
            monkey.patch_all()
        import threading, time
        from flowrun.errors import StepAborted, StepTimeout
        from flowrun.http.client import Client

        long = Client()

        def hold():
            try:
                long.send("GET", "{target.url}/demo/slow?ms=30000", {{}}, None, 60)
            except StepAborted:
                pass

        holder = threading.Thread(target=hold)
        holder.start()
        time.sleep(0.5)  # the deadline thread now sleeps until the 60 s deadline
        started = time.monotonic()
        try:
            Client().send("GET", "{target.url}/demo/trickle?bytes=24&ms=250", {{}},
                          None, 1)
        except StepTimeout as exc:
            print(exc, round(time.monotonic() - started))
        long.abort()
        holder.join(10)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Request timeout after 1s 1"
