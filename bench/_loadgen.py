"""Load generator for the server benchmarks: gevent greenlets reading SSE streams.

Runs in its own process (so its CPU is not the server's) and talks only to 127.0.0.1.
Each stream is one ``POST /api/execute-stream`` over a raw HTTP/1.1 socket (chunked
responses decoded by hand, SSE frames split on blank lines) — cheaper than
http.client or requests, so more of the box's two cores go to the server.

Modes (the orchestrating scripts start it; it speaks JSON lines on stdout):

  flows  start N streams at once (after "go" on stdin), read each until ``event: end``;
         print one JSON document with a record per stream.
  bare   the floor: the same N flows' steps done directly by N greenlets, each with
         its own requests.Session (trust_env off), GET + body read + JSON decode per
         step, no server and no SSE; prints wall, CPU and per-flow completion times.
  idle   open streams in levels (e.g. 1000,5000,10000) up to ``event: input_required``,
         keep reading them (heartbeats); print a JSON line per level reached and wait
         for "next" on stdin; on "close" (or EOF) close them all and print a summary.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.lock  # noqa: E402
import gevent.pool  # noqa: E402
from gevent.fileobject import FileObjectPosix  # noqa: E402

now = time.perf_counter
SO_TIMESTAMPNS = 35  # Linux: SCM_TIMESTAMPNS ancillary data on every read


class Stream:
    """One SSE stream: connect, POST, decode chunks, split frames, note timings."""

    __slots__ = (
        "host",
        "port",
        "body",
        "headers",
        "t0",
        "t_connected",
        "t_headers",
        "t_first",
        "t_arrival",
        "real0",
        "_arrived",
        "t_end",
        "t_idle",
        "status",
        "events",
        "heartbeats",
        "steps",
        "end",
        "error",
        "execution_id",
        "sock",
        "idle_event",
        "closed_by_server",
        "worker",
    )

    def __init__(self, host, port, body: bytes, headers: dict, idle_event=None):
        self.host, self.port, self.body, self.headers = host, port, body, headers
        self.t0 = self.t_connected = self.t_headers = None
        self.t_first = self.t_end = self.t_idle = None
        # When the bytes that completed the first event reached this socket (the
        # kernel's receive timestamp): what the client saw, whatever this process's
        # own scheduling delay before it read them.
        self.t_arrival = self._arrived = None
        self.real0 = None
        self.status = None
        self.events = {}
        self.heartbeats = 0
        self.steps = 0
        self.end = None
        self.error = None
        self.execution_id = None
        self.sock = None
        self.idle_event = idle_event  # the event name after which the stream idles
        self.closed_by_server = False
        self.worker = None

    def run(self, timeout: float, on_idle=None):
        self.t0, self.real0 = now(), time.time()
        try:
            self._run(timeout, on_idle)
        except Exception as exc:  # noqa: BLE001 - recorded, reported
            if self.error is None:
                self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if self.sock is not None:
                try:
                    self.sock.close()
                except OSError:
                    pass
                self.sock = None

    def _run(self, timeout, on_idle):
        # an IP literal and a plain connect: gevent's create_connection would send
        # every connect through getaddrinfo on its resolver thread pool
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock = sock
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:  # not Linux: no arrival times
            pass
        sock.connect((self.host, self.port))
        self.t_connected = now()
        head = (
            f"POST /api/execute-stream HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"Content-Length: {len(self.body)}\r\n"
        )
        for k, v in self.headers.items():
            head += f"{k}: {v}\r\n"
        sock.sendall(head.encode() + b"\r\n" + self.body)
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = self._recv(sock)
            if not data:
                raise ConnectionError("closed before response headers")
            buf += data
        raw_head, _, buf = buf.partition(b"\r\n\r\n")
        self.t_headers = now()
        lines = raw_head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        self.execution_id = hdrs.get("x-execution-id")
        self.worker = hdrs.get("x-flowrun-worker")
        chunked = "chunked" in hdrs.get("transfer-encoding", "").lower()
        if self.status != 200:
            self.error = f"HTTP {self.status}: {buf[:300]!r}"
            return
        text = ""  # SSE text not yet split into frames
        pending = buf  # raw bytes not yet de-chunked
        while True:
            # de-chunk what we have
            if chunked:
                out = []
                while True:
                    crlf = pending.find(b"\r\n")
                    if crlf < 0:
                        break
                    size = int(pending[:crlf].split(b";")[0] or b"0", 16)
                    if size == 0:
                        self.closed_by_server = True
                        pending = b""
                        break
                    if len(pending) < crlf + 2 + size + 2:
                        break
                    out.append(pending[crlf + 2 : crlf + 2 + size])
                    pending = pending[crlf + 2 + size + 2 :]
                payload = b"".join(out)
            else:
                payload, pending = pending, b""
            if payload:
                text += payload.decode("utf-8")
                while "\n\n" in text:
                    frame, _, text = text.partition("\n\n")
                    if self._frame(frame, on_idle):
                        return
            if self.closed_by_server:
                break
            data = self._recv(sock) if self.t_first is None else sock.recv(65536)
            if not data:
                self.closed_by_server = True
                break
            pending += data
        if self.end is None:
            self.error = self.error or "stream closed before event: end"

    def _recv(self, sock) -> bytes:
        """``sock.recv``, noting the kernel's receive time of what it returns."""
        data, ancillary, _, _ = sock.recvmsg(65536, 64)
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", raw[:16])
                self._arrived = self.t0 + (sec + nsec / 1e9 - self.real0)
        return data

    def _frame(self, frame: str, on_idle) -> bool:
        """Handle one SSE frame; True when the stream is done."""
        name, data = None, None
        for line in frame.split("\n"):
            if line.startswith(":"):
                self.heartbeats += 1
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
        if name is None:
            return False
        t = now()
        if self.t_first is None:
            self.t_first = t
            self.t_arrival = self._arrived
        self.events[name] = self.events.get(name, 0) + 1
        if name == "step":
            self.steps += 1
        if name == self.idle_event and self.t_idle is None:
            self.t_idle = t
            if on_idle is not None:
                on_idle(self)
        if name == "end":
            self.t_end = t
            try:
                self.end = json.loads(data)
            except (TypeError, ValueError):
                self.end = {"unparsed": (data or "")[:200]}
            return True
        return False

    def record(self, base: float) -> dict:
        def rel(t):
            return None if t is None else round(t - base, 6)

        end = self.end or {}
        return {
            "t0": rel(self.t0),
            "connected": rel(self.t_connected),
            "headers": rel(self.t_headers),
            "first": rel(self.t_first),
            "arrival": rel(self.t_arrival),
            "idle": rel(self.t_idle),
            "end": rel(self.t_end),
            "status": self.status,
            "events": self.events,
            "heartbeats": self.heartbeats,
            "steps": self.steps,
            "success": end.get("success"),
            "stepsExecuted": end.get("stepsExecuted"),
            "error": self.error,
            "executionId": self.execution_id,
            "worker": self.worker,
        }


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def mode_flows(args, servers, body, stdin):
    """``servers``: ``[(host, port, headers)]``, given the flows in turn (several
    hosts behind a load balancer that takes turns)."""
    bodies = [body] * args.n
    if args.distinct:  # nothing the server could reuse from one flow to the next
        doc = json.loads(body)
        name = doc["config"].get("name", "flow")
        bodies = []
        for i in range(args.n):
            doc["config"]["name"] = f"{name} #{i + 1}"
            bodies.append(json.dumps(doc).encode())
    streams = [
        Stream(*servers[i % len(servers)][:2], b, servers[i % len(servers)][2])
        for i, b in enumerate(bodies)
    ]
    go = gevent.event.Event()

    def one(s):
        go.wait()
        s.run(args.timeout)

    group = gevent.pool.Group()
    for s in streams:
        group.spawn(one, s)
    gevent.sleep(0.1)  # every greenlet parked on the barrier
    emit({"ready": True, "n": args.n})
    if args.wait_go:
        stdin.readline()
    base = now()
    go.set()
    group.join(timeout=args.deadline)
    wall = now() - base
    group.kill(block=True, timeout=5)
    emit(
        {
            "wall": wall,
            "timed_out": sum(1 for s in streams if s.t_end is None and not s.error),
            "cpu_s": _cpu(),
            "records": [s.record(base) for s in streams],
        }
    )


def mode_bare(args, body):
    """The floor of the flows mode: what the steps alone cost with requests."""
    import requests

    config = json.loads(body)["config"]
    base = config["defaults"]["baseUrl"]
    urls = [base + n["url"] for n in config["nodes"]]
    if urlsplit(base).hostname != "127.0.0.1":
        raise SystemExit("bare mode only talks to 127.0.0.1")
    ends: list[float] = []
    errors: list[str] = []
    go = gevent.event.Event()

    def one():
        session = requests.Session()
        session.trust_env = False
        go.wait()
        try:
            for url in urls:
                r = session.get(url, timeout=(10, args.timeout))
                r.json()
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}")
            ends.append(now() - base_t[0])
        except Exception as exc:  # noqa: BLE001 - counted
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            session.close()

    base_t = [0.0]
    group = gevent.pool.Group()
    for _ in range(args.n):
        group.spawn(one)
    gevent.sleep(0.1)
    # warm-up outside the measurement: imports, first connection
    warm = requests.Session()
    warm.trust_env = False
    warm.get(urls[0].split("?")[0] + "?ms=0", timeout=10).json()
    warm.close()
    cpu0 = _cpu()
    base_t[0] = now()
    go.set()
    group.join(timeout=args.deadline)
    wall = now() - base_t[0]
    group.kill(block=True, timeout=5)
    emit(
        {
            "wall": wall,
            "cpu_s": _cpu() - cpu0,
            "steps": len(ends) * len(urls),
            "ends": ends,
            "errors": errors[:5],
            "failed": args.n - len(ends),
        }
    )


def mode_idle(args, host, port, body, headers, stdin):
    levels = [int(x) for x in args.levels.split(",") if x]
    streams: list[Stream] = []
    group = gevent.pool.Group()
    base = now()
    reached = gevent.event.Event()
    state = {"idle": 0, "target": 0}

    def on_idle(_s):
        state["idle"] += 1
        if state["idle"] >= state["target"]:
            reached.set()

    sem = gevent.lock.BoundedSemaphore(args.concurrency)

    def one(s):
        # at most `concurrency` streams connecting/validating at once
        with sem:
            s.t0 = now()
            ev = gevent.event.Event()

            def idle(st):
                on_idle(st)
                ev.set()

            g = gevent.spawn(s.run, args.timeout, idle)
            ev.wait(timeout=args.timeout)
        g.join()
        if s.t_idle is None:
            on_idle(s)  # count it as settled (failed) so the level is reached

    for level in levels:
        state["target"] = level
        reached.clear()
        t_level = now()
        for _ in range(level - len(streams)):
            s = Stream(host, port, body, headers, idle_event="input_required")
            streams.append(s)
            group.spawn(one, s)
        reached.wait(timeout=args.deadline)
        gevent.sleep(args.settle)
        emit(
            {
                "level": level,
                "open": sum(
                    1
                    for s in streams
                    if s.t_idle is not None and not s.closed_by_server and not s.error
                ),
                "failed": sum(1 for s in streams if s.error),
                "errors": sorted({s.error for s in streams if s.error})[:5],
                "ramp_s": now() - t_level,
                "heartbeats": sum(s.heartbeats for s in streams),
            }
        )
        cmd = stdin.readline().strip()
        if cmd != "next":
            break
    # close every stream from the client side (like closed tabs)
    t_close = now()
    for s in streams:
        sock = s.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    group.join(timeout=30)
    group.kill(block=True, timeout=5)
    emit(
        {
            "closed": len(streams),
            "close_s": now() - t_close,
            "heartbeats": sum(s.heartbeats for s in streams),
            "execution_ids": [s.execution_id for s in streams if s.execution_id],
            "since_start_s": now() - base,
        }
    )


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("flows", "idle", "bare"))
    p.add_argument(
        "--url",
        required=True,
        help="server base URL (127.0.0.1 only); flows: several, comma-separated, "
        "each given the flows in turn",
    )
    p.add_argument("--flow-file", required=True, help='JSON {"config":…,"options":…}')
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--levels", default="1000")
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--timeout", type=float, default=120.0, help="socket timeout")
    p.add_argument("--deadline", type=float, default=300.0, help="batch bound")
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--wait-go", action="store_true")
    p.add_argument(
        "--distinct",
        action="store_true",
        help="give each flow its own body (its number in the flow's name)",
    )
    args = p.parse_args(argv)
    urls = [urlsplit(u) for u in args.url.split(",") if u]
    if any(u.hostname != "127.0.0.1" for u in urls):
        p.error("the load generator only talks to 127.0.0.1")
    parts = urls[0]
    raise_nofile()
    with open(args.flow_file, "rb") as f:
        body = f.read()
    headers = {"Origin": f"http://{parts.hostname}:{parts.port}"}
    stdin = FileObjectPosix(sys.stdin.fileno(), "r", close=False)
    if args.mode == "bare":
        mode_bare(args, body)
    elif args.mode == "flows":
        servers = [
            (u.hostname, u.port, {"Origin": f"http://{u.hostname}:{u.port}"})
            for u in urls
        ]
        mode_flows(args, servers, body, stdin)
    else:
        mode_idle(args, parts.hostname, parts.port, body, headers, stdin)


if __name__ == "__main__":
    main()
