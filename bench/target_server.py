"""A fast local load target for the server benchmarks (127.0.0.1 only).

Holds thousands of concurrent slow requests in one process: every request is a
greenlet, and ``/step?ms=200`` waits with ``gevent.sleep`` before answering.

Endpoints (any method):
  /step?ms=N     sleep N ms (default 200), answer {"ok": true, "n": <request no.>, ...}
  /login?ms=N    sleep N ms (default 0), answer {"token": "tok-<n>"}
  /health        {"status": "ok"}
  /stats         counters: requests, peak concurrency, CPU seconds of this process
  /reset         zero the counters
  POST /api/execute-stream
                 (raw only) a stand-in SSE stream, for self-testing the load generator
                 without flowrun: start, step_start/step per node (sleeping the node's
                 ms= value), end; a first node with userPrompts idles with heartbeats

Two implementations of the same endpoints:
  --impl raw   (default) a minimal HTTP/1.1 keep-alive server on gevent's StreamServer;
               the least CPU per request, so the box's two cores go to the server
               under test rather than to its target;
  --impl wsgi  the same as a WSGI app on gevent.pywsgi (a reference; ~2-3x the CPU).

  python bench/target_server.py --port 8765 [--impl raw|wsgi] [--procs 1]

With ``--procs N`` (raw or wsgi), N processes share the port (SO_REUSEPORT); /stats
then reports the process that answered it.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from gevent.server import StreamServer  # noqa: E402


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.requests = 0
        self.steps = 0
        self.logins = 0
        self.active = 0
        self.peak = 0
        self.connections = 0
        self.started = time.time()

    def as_dict(self):
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "pid": os.getpid(),
            "requests": self.requests,
            "steps": self.steps,
            "logins": self.logins,
            "active": self.active,
            "peak_active": self.peak,
            "connections": self.connections,
            "cpu_s": ru.ru_utime + ru.ru_stime,
            "maxrss_kb": ru.ru_maxrss,
            "since_s": time.time() - self.started,
        }


STATS = Stats()


def _ms(query: dict, default: int) -> float:
    try:
        return max(0.0, min(float(query.get("ms", [default])[0]), 60_000.0)) / 1000
    except ValueError:
        return default / 1000


def respond(path: str, query: dict) -> tuple[int, bytes]:
    """Do what ``path`` asks (sleeping as needed); return (status, JSON body)."""
    STATS.requests += 1
    STATS.active += 1
    if STATS.active > STATS.peak:
        STATS.peak = STATS.active
    try:
        n = STATS.requests
        if path == "/step":
            delay = _ms(query, 200)
            if delay:
                gevent.sleep(delay)
            STATS.steps += 1
            i = query.get("i", ["0"])[0]
            return 200, b'{"ok":true,"n":%d,"i":"%s","ms":%d}' % (
                n,
                i.encode()[:16],
                int(delay * 1000),
            )
        if path == "/login":
            delay = _ms(query, 0)
            if delay:
                gevent.sleep(delay)
            STATS.logins += 1
            return 200, b'{"token":"tok-%d","expiresIn":3600}' % n
        if path == "/health":
            return 200, b'{"status":"ok"}'
        if path == "/stats":
            return 200, json.dumps(STATS.as_dict()).encode()
        if path == "/reset":
            STATS.reset()
            return 200, b'{"reset":true}'
        return 404, b'{"error":"not found"}'
    finally:
        STATS.active -= 1


# --- raw HTTP/1.1 -----------------------------------------------------------------

_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}


def handle_raw(sock, _addr):
    """Serve one keep-alive connection: request line, headers, optional body."""
    STATS.connections += 1
    rfile = sock.makefile("rb")
    try:
        while True:
            line = rfile.readline(65537)
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            parts = line.split()
            if len(parts) != 3:
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            _method, target, version = parts
            keep = version == b"HTTP/1.1"
            length = 0
            while True:
                h = rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, _, value = h.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip() or 0)
                elif name == b"connection":
                    v = value.strip().lower()
                    keep = v == b"keep-alive" or (keep and v != b"close")
            rfile_body = rfile.read(length) if length else b""
            path, _, query = target.decode("latin-1").partition("?")
            if path == "/api/execute-stream":
                mock_stream(sock, rfile_body)
                return
            status, body = respond(path, parse_qs(query) if query else {})
            head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n" % (
                status,
                _REASONS.get(status, b"OK"),
            )
            head += b"Content-Length: %d\r\n" % len(body)
            if not keep:
                head += b"Connection: close\r\n"
            sock.sendall(head + b"\r\n" + body)
            if not keep:
                return
    except (OSError, ValueError):
        return
    finally:
        rfile.close()
        sock.close()


def mock_stream(sock, body: bytes, heartbeat_s: float = 5.0) -> None:
    """A minimal SSE stream shaped like flowrun's (see the module doc)."""
    nodes = json.loads(body or b"{}").get("config", {}).get("nodes", [])
    seq = 0

    def send(name, data):
        nonlocal seq
        seq += 1
        data["executionId"] = "exec-mock"
        frame = f"id: {seq}\nevent: {name}\ndata: {json.dumps(data)}\n\n".encode()
        sock.sendall(b"%x\r\n%s\r\n" % (len(frame), frame))

    sock.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Cache-Control: no-cache\r\nX-Execution-Id: exec-mock\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    send("start", {"totalSteps": len(nodes)})
    for i, node in enumerate(nodes):
        if i == 0 and node.get("userPrompts"):
            send("input_required", {"step": 1, "stepIndex": 0})
            beat = b": keep-alive\n\n"
            for _ in range(100_000):  # bounded: until the client goes away
                gevent.sleep(heartbeat_s)
                sock.sendall(b"%x\r\n%s\r\n" % (len(beat), beat))
        send("step_start", {"step": i + 1, "stepIndex": i})
        query = parse_qs(node.get("url", "").partition("?")[2])
        gevent.sleep(_ms(query, 200))
        send("step", {"step": i + 1, "stepIndex": i, "status": "completed"})
    send("end", {"success": True, "stepsExecuted": len(nodes)})
    sock.sendall(b"0\r\n\r\n")


# --- WSGI ------------------------------------------------------------------------


def wsgi_app(environ, start_response):
    """The same endpoints as a WSGI app (for pywsgi or any WSGI server)."""
    if environ.get("CONTENT_LENGTH"):
        environ["wsgi.input"].read()
    query = environ.get("QUERY_STRING", "")
    status, body = respond(environ["PATH_INFO"], parse_qs(query) if query else {})
    start_response(
        f"{status} {_REASONS.get(status, b'OK').decode()}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


# --- main ------------------------------------------------------------------------


def listener(host: str, port: int, reuseport: bool) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, port))
    s.listen(4096)
    return s


def serve(args) -> None:
    sock = listener(args.host, args.port, args.procs > 1)
    if args.impl == "raw":
        server = StreamServer(sock, handle_raw)
    else:
        server = WSGIServer(sock, wsgi_app, log=None, error_log=None)
    server.max_accept = 500
    gevent.signal_handler(signal.SIGTERM, server.stop, 1)
    gevent.signal_handler(signal.SIGINT, server.stop, 1)
    server.serve_forever()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--impl", choices=("raw", "wsgi"), default="raw")
    p.add_argument("--procs", type=int, default=1)
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        p.error("the target binds to the loopback only")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.procs <= 1:
        serve(args)
        return 0
    kids = []
    for _ in range(args.procs):
        pid = os.fork()
        if pid == 0:
            gevent.reinit()
            try:
                serve(args)
            finally:
                os._exit(0)
        kids.append(pid)

    def _end(*_):
        for k in kids:
            try:
                os.kill(k, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, _end)
    signal.signal(signal.SIGINT, _end)
    for k in kids:
        try:
            os.waitpid(k, 0)
        except ChildProcessError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
