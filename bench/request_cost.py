"""Server CPU per request on a new connection: gunicorn against bare gevent.

What a burst of new streams costs before any flow runs (the time-to-first-event
target is bounded by it): each POST of a 1,000-flow burst is a new
connection, and a worker has to accept, parse and answer it. This measures, one
request at a time from this process, the server's CPU per ``GET /api/health`` on a new
connection (``Connection: close``), for:

- ``gunicorn``: ``gunicorn -c gunicorn.conf.py --workers 1 app:app`` (flowrun's
  deployment: the gevent worker, Flask, the access log);
- ``pywsgi``: gevent's own WSGI server with a trivial app (what a WSGI server in
  Python costs);
- ``raw``: a gevent ``StreamServer`` that reads the request and writes fixed bytes
  (the floor of accepting, reading and writing under gevent).

CPU is read from ``/proc/<pid>/task/*/schedstat`` before and after, so it is the
server process's own, whatever else runs on the box.

    .venv/bin/python bench/request_cost.py
    .venv/bin/python bench/request_cost.py --requests 5000
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as c  # noqa: E402
from sse_overhead import task_cpu_ns  # noqa: E402

_BARE = """
from gevent import monkey
monkey.patch_all()
import sys
from gevent.server import StreamServer
from gevent.pywsgi import WSGIServer

BODY = b'{"status":"ok"}'
REPLY = (
    b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
    b"Content-Length: 15\\r\\nConnection: close\\r\\n\\r\\n" + BODY
)

def raw(sock, addr):
    sock.recv(65536)
    sock.sendall(REPLY)
    sock.close()

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [BODY]

if sys.argv[1] == "raw":
    server = StreamServer(("127.0.0.1", 0), raw)
else:
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
server.start()
print(server.server_port, flush=True)
server.serve_forever()
"""

REQUEST = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def one(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(REQUEST)
        while s.recv(65536):
            pass


def measure(pid: int, port: int, count: int) -> float:
    """Server CPU µs per request, after a warm-up."""
    for _ in range(200):
        one(port)
    before = task_cpu_ns(pid)
    for _ in range(count):
        one(port)
    return (task_cpu_ns(pid) - before) / 1000 / count


def gunicorn(count: int) -> float:
    port = c.free_port()
    workdir = Path(tempfile.mkdtemp(prefix="flowrun-bench-"))
    try:
        proc = c.start_server(port, workdir, 1, log=subprocess.DEVNULL)
        try:
            return measure(c.children(proc.pid)[0], port, count)
        finally:
            c.stop(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def bare(kind: str, count: int) -> float:
    proc = c.start([c.PYTHON, "-c", _BARE, kind], stdout=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline())
        return measure(proc.pid, port, count)
    finally:
        c.stop(proc)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = [
        (
            "gunicorn -c gunicorn.conf.py (flowrun, /api/health)",
            gunicorn(args.requests),
        ),
        ("gevent.pywsgi, trivial app", bare("pywsgi", args.requests)),
        ("gevent StreamServer, fixed bytes", bare("raw", args.requests)),
    ]
    print(f"server CPU per request on a new connection ({args.requests} requests):")
    for label, us in results:
        print(f"  {label:52s} {us:6.0f} us")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
