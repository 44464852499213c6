"""The abuse and fault suite: what a hostile client, flow or target and an unlucky
operator can do to a deployment, class by class, and whether flowrun held.

Starts ``gunicorn -c gunicorn.conf.py app:app`` (two gevent workers, no token: the
default loopback setup) on a temporary data directory, a raw target on 127.0.0.1
that answers bytes no well-behaved server sends, and, for some inputs, more servers
of its own (a token and a proxy, a full data disk, a damaged database copy). Then it
tries several inputs of each of the seven classes below, and for each says whether
flowrun held: the answer is a clear 4xx/503 or a step with a clear error, never a
500, a hang, a dead worker, a lost or wrong history row, a secret where it must not
be, or memory that stays. Meanwhile it polls ``/api/health`` every 20 ms and samples
each worker's RSS after every input.

    .venv/bin/python bench/abuse.py            # every input, more repetitions
    .venv/bin/python bench/abuse.py --quick    # fewer repetitions (the test suite)
    .venv/bin/python bench/abuse.py --json out.json

Classes: encoding, cpu, memory, trickle, secrets, server address, degraded. Exit
status 1 if any input did not hold.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402
from check_limits import Poller, slow_flow  # noqa: E402

CLASSES = (
    "encoding",
    "cpu",
    "memory",
    "trickle",
    "secrets",
    "server address",
    "degraded",
)
RSS_SLACK = 50 * 2**20  # a worker's RSS after an input: within this of its baseline
ABORTED = "Stopped now: the request in flight was aborted"
PROBE_SECRET = "env-probe-secret-5150"
TOKEN = "abuse-token-8086"


@dataclass
class Outcome:
    cls: str
    name: str
    held: bool
    note: str = ""


# -- a raw target: bodies no well-behaved server sends ------------------------------

RAW = {
    "surrogate": b'{"a":"\\ud800"}',
    "low-surrogate-key": b'{"\\udfff":1}',
    "nul-escape": b'{"a":"x\\u0000y"}',
    "invalid-utf8": b"\xff\xfe\xc3(",
    "nul-byte": b"a\x00b",
    "deep": b'{"n":' * 900 + b"{}" + b"}" * 900,
}


class _RawHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().decode("latin-1")
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        name = line.split(" ")[1].strip("/").split("?")[0]
        body = RAW.get(name, b"{}")
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )


class RawTarget:
    def __init__(self):
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RawHandler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    """A TCP listener standing for an HTTP proxy: counts connections, answers 502."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

    def close(self):
        self.sock.close()


# -- a server under test ----------------------------------------------------------


def new_session() -> requests.Session:
    """A session of its own (no cookies yet) that ignores proxy settings."""
    session = requests.Session()
    session.trust_env = False
    return session


class Server:
    """A gunicorn deployment of this checkout, with its own data directory."""

    def __init__(self, workdir: Path, workers: int = 2, env=None, ready=(200,)):
        self.workdir = workdir
        self.port = _common.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "gunicorn.log"
        self.token = (env or {}).get("FLOWRUN_TOKEN")
        workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        extra = {"FLOWRUN_HEARTBEAT_S": "1", **(env or {})}
        self.proc = _common.start_server(
            self.port, workdir, workers, extra_env=extra, log=self._log, ready=ready
        )
        self.session = new_session()

    def workers(self) -> list[int]:
        return sorted(_common.children(self.proc.pid))

    def headers(self, extra=None) -> dict:
        hdrs = {"Content-Type": "application/json"}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        hdrs.update(extra or {})
        return hdrs

    def call(self, method, path, body=None, headers=None, data=None, timeout=60):
        if body is not None:
            data = json.dumps(body)
        return self.session.request(
            method,
            self.url + path,
            data=data,
            headers=self.headers(headers),
            timeout=timeout,
        )

    def stream(self, flow, options=None, on_event=None, on_open=None, timeout=120):
        """Run a flow through /api/execute-stream: ``(status, events, id)``.

        ``on_open(headers)`` sees the response's headers (the worker that holds the
        run), ``on_event(name, data)`` each event as it comes.
        """
        body = json.dumps({"config": flow, "options": options or {}})
        events = []
        with self.session.post(
            self.url + "/api/execute-stream",
            data=body,
            headers=self.headers(),
            stream=True,
            timeout=timeout,
        ) as resp:
            eid = resp.headers.get("X-Execution-Id")
            if resp.status_code != 200:
                return resp.status_code, [("http", resp.json())], eid
            if on_open is not None:
                on_open(resp.headers)
            for name, data in sse(resp):
                events.append((name, data))
                if on_event is not None:
                    on_event(name, data)
                if name == "end":
                    break
        return 200, events, eid

    def session_on(self, worker=None, not_worker=None) -> requests.Session:
        """A keep-alive session whose connection a given worker serves (or any
        but one): a new connection lands on either."""
        for _ in range(200):
            session = new_session()
            got = session.get(self.url + "/api/health", timeout=30)
            pid = got.headers.get("X-Flowrun-Worker")
            if (worker is None or pid == worker) and pid != not_worker:
                return session
            session.close()
        raise RuntimeError("no connection reached the wanted worker")

    def history(self, eid) -> dict:
        return self.call("GET", f"/api/executions/{eid}").json()

    def close(self):
        _common.stop(self.proc)
        self._log.close()


def sse(resp):
    """The ``(name, data)`` of each event of a streamed response.

    Read in large pieces: a step event of tens of megabytes, read 512 bytes at a
    time, costs requests' line splitting minutes.
    """
    name = None
    for line in resp.iter_lines(chunk_size=1 << 20):
        line = line.decode("utf-8")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


def flow(base, *nodes, name="abuse", **extra):
    return {
        "name": name,
        "defaults": {"baseUrl": base},
        "nodes": [
            {"id": nid, "name": nid, "method": "GET", "url": url, **more}
            for nid, url, more in nodes
        ],
        **extra,
    }


def ended(events) -> dict | None:
    return events[-1][1] if events and events[-1][0] == "end" else None


def steps(events) -> list[dict]:
    return [d for n, d in events if n == "step"]


# -- the suite --------------------------------------------------------------------


class Suite:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.quick = args.quick
        self.workdir = workdir
        self.outcomes: list[Outcome] = []
        self.rss: dict[int, dict] = {}  # worker pid: {"base", "max", "last"}
        self.raw = RawTarget()
        self.main = Server(workdir / "main")
        self.demo = self.main.url + "/demo"

    def close(self):
        self.main.close()
        self.raw.close()
        if self._guarded is not None:
            self._guarded.close()

    _guarded = None

    def guarded(self) -> Server:
        """A second deployment, with a token (started on first use)."""
        if self._guarded is None:
            self._guarded = Server(
                self.workdir / "token", workers=1, env={"FLOWRUN_TOKEN": TOKEN}
            )
        return self._guarded

    # -- bookkeeping
    def check(self, cls, name, fn):
        try:
            result = fn()
            held, note = result if isinstance(result, tuple) else (bool(result), "")
        except Exception as exc:  # a hang ends in a timeout, a 500 in a raise
            held, note = False, f"{type(exc).__name__}: {exc}"[:300]
        if held and not self._workers_alive():
            held, note = False, "a worker died: " + note
        self.outcomes.append(Outcome(cls, name, held, note))
        self._sample_rss()
        mark = "held" if held else "NOT HELD"
        print(f"  {cls:14s} {name:52s} {mark}  {note[:90]}", flush=True)

    def _workers_alive(self) -> bool:
        return set(self.main.workers()) == set(self.rss)

    def baseline(self):
        """Warm up (every module imported, every path taken once); note RSS."""
        for _ in range(3):
            self.main.stream(flow(self.demo, ("a", "/items", {})))
        self.main.call("POST", "/api/validate", {"config": {"nodes": []}})
        time.sleep(1)
        for pid in self.main.workers():
            rss = _common.rss_bytes(pid)
            self.rss[pid] = {"base": rss, "max": rss, "last": rss}

    def _sample_rss(self):
        for pid, seen in self.rss.items():
            rss = _common.rss_bytes(pid)
            seen["last"] = rss
            seen["max"] = max(seen["max"], rss)

    def rss_back(self, timeout=10.0) -> tuple[bool, str]:
        """Whether every worker's RSS is back within RSS_SLACK of its baseline."""
        deadline = time.monotonic() + timeout
        while True:
            over = {
                pid: _common.rss_bytes(pid) - seen["base"]
                for pid, seen in self.rss.items()
            }
            if all(d <= RSS_SLACK for d in over.values()):
                return True, "RSS +" + ", +".join(
                    f"{d / 2**20:.0f}" for d in over.values()
                ) + " MiB"
            if time.monotonic() > deadline:
                worst = max(over.values()) / 2**20
                return False, f"RSS stays {worst:.0f} MiB over its baseline"
            time.sleep(0.25)

    # -- 1. encoding
    def encoding(self):
        for name in RAW:
            self.check("encoding", f"target body: {name}", lambda n=name: self._odd(n))
        for label, text in (("lone surrogate", "x\ud800y"), ("NUL", "a\x00b")):
            self.check(
                "encoding",
                f"flow name with a {label}: PUT, list, Studio, run, history",
                lambda t=text: self._odd_name(t),
            )
        self.check(
            "encoding",
            "40 normal runs beside 5 bad ones keep every step",
            self._bad_beside_good,
        )

    def _odd(self, name):
        f = flow(
            self.demo,
            ("odd", f"{self.raw.url}/{name}", {}),
            (
                "echo",
                "/echo",
                {"method": "POST", "body": {"v": "{{ .responses.odd }}"}},
            ),
        )
        status, events, eid = self.main.stream(f)
        end = ended(events)
        found = self.main.history(eid)
        ok = (
            end is not None
            and end["success"]
            and found["status"] == "completed"
            and len(found["steps"]) == 2
        )
        return ok, f"end {bool(end)}, history {found['status']}"

    def _odd_name(self, text):
        f = flow(self.demo, ("a", "/items", {}), name=text)
        codes = [
            self.main.call("PUT", "/api/flows/abuse-odd", f).status_code,
            self.main.call("GET", "/api/flows/abuse-odd").status_code,
            self.main.call("GET", "/api/flows").status_code,
            self.main.call("GET", "/").status_code,
        ]
        status, events, eid = self.main.stream(f)
        codes.append(self.main.call("GET", "/api/executions").status_code)
        codes.append(self.main.call("GET", f"/api/executions/{eid}").status_code)
        self.main.call("DELETE", "/api/flows/abuse-odd")
        ok = all(c in (200, 201) for c in codes) and ended(events) is not None
        return ok, f"answers {codes}"

    def _bad_beside_good(self):
        good = flow(self.demo, *[(f"g{i}", "/items", {}) for i in range(3)])
        bad = flow(self.demo, ("b", f"{self.raw.url}/surrogate", {}), name="\ud800")
        ids, lock = [], threading.Lock()

        def one(f):
            _, events, eid = self.main.stream(f)
            with lock:
                ids.append((f is good, eid, len(steps(events))))

        threads = [threading.Thread(target=one, args=(good,)) for _ in range(40)]
        threads += [threading.Thread(target=one, args=(bad,)) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        lost = 0
        for _is_good, eid, seen in ids:
            found = self.main.history(eid)
            if len(found["steps"]) != seen or found["status"] == "running":
                lost += 1
        return lost == 0 and len(ids) == 45, f"{lost} of {len(ids)} runs lost steps"

    # -- 2. cpu
    def cpu(self):
        nodes = slow_flow(self.main.url)["nodes"]
        recursive = {
            "$ref": "#/$defs/n",
            "$defs": {"n": {"properties": {"n": {"$ref": "#/$defs/n"}}}},
        }
        nodes.append(
            {
                "id": "deep",
                "name": "deep",
                "method": "GET",
                "url": f"{self.raw.url}/deep",
                "validations": [{"schema": recursive}],
            }
        )
        for node in nodes:
            self.check(
                "cpu", f"step of {node['id']}", lambda n=node: self._slow_step(n)
            )
        self.check("cpu", "a flow body nested 900 deep", self._deep_flow)

    def _deep_flow(self):
        nested = {}
        for _ in range(900):
            nested = {"n": nested}
        f = flow(self.demo, ("deep", "/echo", {"method": "POST", "body": nested}))
        resp = self.main.call("POST", "/api/execute-stream", {"config": f})
        errors = resp.json().get("errors") or [{}]
        path = errors[0].get("path") or ""
        return resp.status_code == 400 and path.startswith("nodes[0].body"), (
            f"{resp.status_code} at {path[:30]}…"
        )

    def _slow_step(self, node):
        f = {"name": "cpu", "variables": {"s": "a" * 40 + "b"}, "nodes": [node]}
        status, events, eid = self.main.stream(f, {"continueOnFailure": True})
        (step,) = steps(events) or [None]
        if step is None or ended(events) is None:
            return False, "no step or no end"
        error = step["error"] or ""
        failed = [v["message"] for v in step["validations"] if not v["passed"]]
        note = (error or step.get("skipReason") or "; ".join(failed))[:100]
        return "Internal error" not in note, note

    # -- 3. memory
    def memory(self):
        programs = 2 if self.quick else 5
        for i in range(programs):
            self.check(
                "memory",
                f"jq building a 400 MB constant via /api/validate #{i + 1}",
                lambda i=i: self._jq_constant(i),
            )
        big = "x" * 100_000
        forms = {
            "typed JSON body": {
                "body": {f"k{i}": "{{ .vars.big }}" for i in range(1000)},
                "method": "POST",
            },
            "one string body": {"body": "{{ .vars.big }}" * 1000, "method": "POST"},
            "header": {"headers": {"X-Big": "{{ .vars.big }}" * 1000}},
        }
        for label, extra in forms.items():
            self.check(
                "memory",
                f"placeholder amplification: {label}",
                lambda e=extra: self._amplified(big, e),
            )
        self.check("memory", "a 64 MB response body", self._big_response)

    def _jq_constant(self, i):
        node = {
            "id": "a",
            "name": "A",
            "method": "GET",
            "url": f"{self.demo}/items",
            "validations": [
                {"jq": f'"x1" * {200_000_000 + i} | length', "greaterThan": 0}
            ],
        }
        resp = self.main.call("POST", "/api/validate", {"config": {"nodes": [node]}})
        back, note = self.rss_back()
        return resp.status_code == 200 and back, f"{resp.status_code}, {note}"

    def _amplified(self, big, extra):
        f = flow(self.demo, ("amp", "/echo", extra), variables={"big": big})
        status, events, eid = self.main.stream(f)
        (step,) = steps(events)
        stored = self.main.call("GET", f"/api/executions/{eid}").content
        back, note = self.rss_back()
        ok = (step["error"] or "").startswith("Request too large") and back
        return ok, f"history {len(stored) / 2**20:.1f} MiB, {note}"

    def _big_response(self):
        f = flow(self.demo, ("big", f"/big?bytes={64 * 2**20}", {}))
        status, events, eid = self.main.stream(f)
        (step,) = steps(events)
        back, note = self.rss_back()
        ok = step["status"] == "completed" and step["response"]["truncated"] and back
        return ok, note

    # -- 4. trickle
    def trickle(self):
        self.check("trickle", "1 byte every 2 s, timeout 5", self._trickle_timeout)
        self.check("trickle", "stop, then a forced stop", lambda: self._forced(True))
        self.check("trickle", "a forced stop at once", lambda: self._forced(False))
        self.check(
            "trickle",
            "a forced stop through the other worker",
            lambda: self._forced(False, other=True),
        )
        self.check(
            "trickle", "a restart (SIGTERM) while a step trickles", self._restart
        )

    def _trickle_timeout(self):
        f = flow(self.demo, ("t", "/trickle?bytes=30&ms=2000", {"timeout": 5}))
        began = time.monotonic()
        status, events, eid = self.main.stream(f)
        took = time.monotonic() - began
        (step,) = steps(events)
        ok = step["error"] == "Request timeout after 5s"
        return ok, f"{step['error']} after {took:.1f} s"

    def _forced(self, graceful_first, other=False):
        f = flow(self.demo, ("t", "/trickle?bytes=60&ms=1000", {"timeout": 120}))
        answers = []

        def on_event(name, data):
            if name != "step_start":
                return
            time.sleep(1)
            path = f"/api/executions/{data['executionId']}/stop"
            if other:
                session = self.main.session_on(not_worker=holder[0])
            else:
                session = self.main.session_on(worker=holder[0])
            if graceful_first:
                resp = session.post(self.main.url + path, headers=self.main.headers())
                answers.append(resp.status_code)
            resp = session.post(
                self.main.url + path,
                data=json.dumps({"force": True}),
                headers=self.main.headers(),
                timeout=30,
            )
            answers.append(resp.status_code)
            reached.append(resp.headers.get("X-Flowrun-Worker") != holder[0])

        holder, reached = [None], []
        began = time.monotonic()
        _, events, _ = self.main.stream(
            f,
            on_event=on_event,
            on_open=lambda headers: holder.__setitem__(0, headers["X-Flowrun-Worker"]),
        )
        took = time.monotonic() - began
        (step,) = steps(events)
        end = ended(events)
        ok = (
            step["error"] == ABORTED
            and end["interrupted"]
            and all(a == 202 for a in answers)
            and reached == [other]
        )
        where = "the other worker" if other else "its own worker"
        return ok, f"stops {answers} through {where}, ended after {took:.1f} s"

    def _restart(self):
        server = Server(
            self.workdir / "restart",
            workers=1,
            env={"GUNICORN_CMD_ARGS": "--graceful-timeout 6"},
        )
        try:
            demo = server.url + "/demo"
            f = flow(demo, ("t", "/trickle?bytes=60&ms=1000", {"timeout": 120}))
            began = []

            def on_event(name, data):
                if name == "step_start":
                    began.append(time.monotonic())
                    os.kill(server.proc.pid, signal.SIGTERM)

            _, events, eid = server.stream(f, on_event=on_event)
            took = time.monotonic() - began[0]
            server.proc.wait(30)
        finally:
            server.close()
        (step,) = steps(events)
        end = ended(events)
        from flowrun.store.history import Store

        store = Store(server.workdir / "data")
        status = store.get(eid)["status"]
        store.close()
        ok = step["error"] == ABORTED and end["interrupted"] and status == "interrupted"
        return ok, f"end after {took:.1f} s (graceful_timeout 6 s), history {status}"

    # -- 5. secrets
    def secrets(self):
        self.check("secrets", "jq $ENV of the server", self._jq_env)
        self.check(
            "secrets", "jq env.FLOWRUN_PROBE_SECRET", lambda: self._jq_env("env")
        )
        self.check(
            "secrets",
            "a secret prompt answer through the other worker",
            self._secret_answer,
        )
        for fmt in ("form-urlencoded", "json", "text"):
            self.check(
                "secrets",
                f"a secret variable in a {fmt} body, in history",
                lambda f=fmt: self._secret_body(f),
            )
        for path in ("/?token=" + TOKEN, "/api/executions?token=" + TOKEN):
            self.check(
                "secrets",
                f"GET {path.split('?')[0]}?token=… in the access log",
                lambda p=path: self._token_in_log(p),
            )

    def _jq_env(self, how="$ENV"):
        f = flow(
            self.demo,
            (
                "e",
                "/items",
                {"validations": [{"jq": f"{how}.FLOWRUN_PROBE_SECRET", "equals": "x"}]},
            ),
        )
        status, events, eid = self.main.stream(f)
        shown = (
            json.dumps(events) + self.main.call("GET", f"/api/executions/{eid}").text
        )
        return PROBE_SECRET not in shown, "not in the events nor history"

    def _secret_answer(self):
        secret = "pw-" + os.urandom(6).hex()
        f = flow(
            self.demo,
            ("ask", "/items", {"userPrompts": {"password": "Password?"}}),
        )
        holder = [None]
        answers = []

        def on_event(name, data):
            if name != "input_required":
                return
            body = json.dumps(
                {
                    "executionId": data["executionId"],
                    "stepIndex": 0,
                    "userInput": {"password": secret},
                }
            )
            session = self.main.session_on(not_worker=holder[0])
            resp = session.post(
                self.main.url + "/api/provide-input",
                data=body,
                headers=self.main.headers(),
                timeout=30,
            )
            answers.append(resp.status_code)

        self.main.stream(
            f,
            on_event=on_event,
            on_open=lambda headers: holder.__setitem__(0, headers["X-Flowrun-Worker"]),
        )
        data = self.workdir / "main" / "data"
        leaked = any(
            secret.encode() in p.read_bytes() for p in data.iterdir() if p.is_file()
        )
        return answers[-1:] == [
            200
        ] and not leaked, f"answers {answers}, in files: {leaked}"

    def _secret_body(self, fmt):
        secret = "sv-" + os.urandom(6).hex()
        f = flow(
            self.demo,
            (
                "post",
                "/echo",
                {
                    "method": "POST",
                    "body": {"key": "{{ .vars.apiKey }}", "n": 1},
                    "bodyFormat": fmt,
                },
            ),
            variables={"apiKey": secret},
            secrets=["apiKey"],
        )
        status, events, eid = self.main.stream(f)
        stored = self.main.call("GET", f"/api/executions/{eid}").text
        return secret not in stored and status == 200, f"stream {status}"

    def _token_in_log(self, path):
        server = self.guarded()
        server.session.get(server.url + path, allow_redirects=False, timeout=30)
        time.sleep(0.5)  # the access line is written after the answer
        text = server.log_path.read_bytes()
        return TOKEN.encode() not in text, "not in the log"

    # -- 6. the server's own address
    def server_address(self):
        for host in ("attacker.example", "127.0.0.1.nip.io", "localhost.evil"):
            self.check(
                "server address",
                f"Host: {host} with a matching Origin",
                lambda h=host: self._rebinding(h),
            )
        for how in ("bearer", "query", "cookie"):
            self.check(
                "server address",
                f"a non-ASCII token ({how})",
                lambda h=how: self._credentials(h),
            )

    def _credentials(self, how):
        server = self.guarded()
        bad = "tøken-ünicode"
        # Not the server's session: a Studio cookie it got earlier would let it in.
        session = new_session()
        if how == "bearer":
            resp = session.get(
                server.url + "/api/executions",
                headers={"Authorization": "Bearer " + bad},
                timeout=30,
            )
        elif how == "query":
            resp = session.get(
                server.url + "/?token=" + quote(bad), allow_redirects=False, timeout=30
            )
        else:
            resp = session.get(
                server.url + "/api/executions",
                headers={"Cookie": "flowrun_token=" + bad},
                timeout=30,
            )
        return resp.status_code == 401, f"{resp.status_code}"

    def _rebinding(self, host):
        headers = {"Host": host, "Origin": f"http://{host}"}
        codes = [
            self.main.call("GET", "/api/executions", headers=headers).status_code,
            self.main.call(
                "POST",
                "/api/execute",
                {"config": flow(self.demo, ("a", "/items", {}))},
                headers=headers,
            ).status_code,
        ]
        return all(400 <= c < 500 for c in codes), f"answers {codes}"

    # -- 7. degraded
    def degraded(self):
        races = 40 if self.quick else 120
        self.check(
            "degraded",
            f"{races} stops racing the end of a run",
            lambda: self._stop_races(races),
        )
        self.check(
            "degraded",
            "a target name that does not resolve, through a proxy",
            self._proxy,
        )
        self.check(
            "degraded",
            "a 300 MB unauthenticated POST",
            self._huge_body,
        )
        self.check("degraded", "a full data disk", self._full_disk)
        self.check(
            "degraded",
            "a damaged database (a copy with pages overwritten)",
            self._damaged,
        )

    def _stop_races(self, count):
        f = flow(self.demo, ("only", "/slow?ms=50", {}))
        wrong, seen = 0, {}
        other = new_session()
        for _ in range(count):
            resp, events, eid = self._race_once(f, other)
            end = ended(events)
            final = self.main.history(eid)["status"]
            seen[resp.status_code] = seen.get(resp.status_code, 0) + 1
            if resp.status_code not in (202, 409):
                wrong += 1
            elif (resp.status_code == 202) != (final == "interrupted"):
                wrong += 1
            elif end["interrupted"] != (final == "interrupted"):
                wrong += 1
        return wrong == 0, f"answers {seen}, {wrong} wrong"

    def _huge_body(self):
        """Announce 300 MB, send 1 MB: the answer must come without the rest."""
        with socket.create_connection(("127.0.0.1", self.main.port), timeout=10) as c:
            head = (
                "POST /api/execute HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {300 * 2**20}\r\n\r\n"
            )
            c.sendall(head.encode())
            with contextlib.suppress(OSError):
                c.sendall(b" " * 2**20)
            answer = c.recv(200).decode("latin-1")
        status = answer.split(" ", 2)[1] if answer.startswith("HTTP/") else answer
        return status == "413", f"answered {status} after 1 MB of 300"

    def _race_once(self, f, other):
        """Run ``f``; stop it through ``other`` about when its last step ends."""
        stops, racers = [], []

        def stop(eid):
            time.sleep(random.uniform(0, 0.1))
            stops.append(
                other.post(
                    f"{self.main.url}/api/executions/{eid}/stop",
                    headers=self.main.headers({"Connection": "close"}),
                    timeout=30,
                )
            )

        def on_event(name, data):
            if name == "step_start":
                racer = threading.Thread(target=stop, args=(data["executionId"],))
                racer.start()
                racers.append(racer)

        _, events, eid = self.main.stream(f, on_event=on_event)
        for racer in racers:
            racer.join(30)
        (resp,) = stops
        return resp, events, eid

    def _proxy(self):
        proxy = Proxy()
        server = Server(
            self.workdir / "proxy",
            workers=1,
            env={
                "HTTP_PROXY": f"http://127.0.0.1:{proxy.port}",
                "NO_PROXY": "127.0.0.1,localhost",
            },
        )
        try:
            f = flow("http://no-such-host.invalid", ("p", "/", {}))
            status, events, eid = server.stream(f)
            (step,) = steps(events)
            ok = step["status"] == "failed" and proxy.connections == 0
            return ok, f"{step['error'][:60]}; proxy saw {proxy.connections}"
        finally:
            server.close()
            proxy.close()

    @contextlib.contextmanager
    def _small_disk(self, path: Path):
        """A data directory on a 32 MB tmpfs, or None where mounting is refused."""
        path.mkdir(parents=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(path)],
            capture_output=True,
        )
        if done.returncode != 0:
            yield None
            return
        try:
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)

    def _full_disk(self):
        with self._small_disk(self.workdir / "disk") as disk:
            if disk is None:
                return self._full_by_limit()
            server = Server(disk / "srv", workers=2)
            try:
                return self._fill_and_check(server, disk)
            finally:
                server.close()

    def _fill_and_check(self, server, disk, fill=None):
        demo = server.url + "/demo"
        ask = flow(
            demo,
            ("ask", "/items", {"userPrompts": {"word": "Word?"}}),
            ("after", "/items", {}),
        )
        waiting = {}

        def on_event(name, data):
            if name == "input_required":
                waiting["id"] = data["executionId"]
            elif name == "end":
                waiting["end"] = data

        def run_waiting():
            server.stream(
                ask,
                on_event=on_event,
                on_open=lambda h: waiting.__setitem__("worker", h["X-Flowrun-Worker"]),
                timeout=60,
            )

        thread = threading.Thread(target=run_waiting, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while "id" not in waiting and time.monotonic() < deadline:
            time.sleep(0.05)
        (fill or self._fill)(disk)
        refused = server.stream(flow(demo, ("a", "/items", {})))
        health = server.call("GET", "/api/health").status_code  # the same worker
        answer = {
            "executionId": waiting["id"],
            "stepIndex": 0,
            "userInput": {"word": "w"},
        }
        codes = []
        # The other worker cannot reach the run (503), its own worker can (200).
        for session in (
            server.session_on(not_worker=waiting["worker"]),
            server.session_on(worker=waiting["worker"]),
        ):
            resp = session.post(
                server.url + "/api/provide-input",
                data=json.dumps(answer),
                headers=server.headers(),
                timeout=30,
            )
            codes.append(resp.status_code)
        thread.join(30)
        (fill or self._fill)(disk, free=True)
        # Once there is room again, each worker's poller writes the end it kept
        # (once a second): every worker then shows the run ended.
        deadline = time.monotonic() + 15
        final = server.history(waiting["id"])["status"]
        while final == "running" and time.monotonic() < deadline:
            time.sleep(0.25)
            final = server.history(waiting["id"])["status"]
        ok = (
            refused[0] == 503
            and health == 503
            and codes == [503, 200]
            and "end" in waiting
            and final != "running"
        )
        note = f"new run {refused[0]}, health {health}, answers {codes}, then {final}"
        return ok, note

    @staticmethod
    def _fill(disk: Path, free=False):
        filler = disk / "filler"
        if free:
            filler.unlink(missing_ok=True)
            return
        with open(filler, "wb") as f:
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 2**20)
                    f.flush()

    def _full_by_limit(self):
        """Where mount is refused: writes past 1 byte fail in the workers
        (RLIMIT_FSIZE through prlimit), as on a full disk."""
        import resource

        server = Server(self.workdir / "limited", workers=2)
        limits = {}

        def fill(_disk, free=False):
            for pid in server.workers():
                if free:
                    resource.prlimit(pid, resource.RLIMIT_FSIZE, limits[pid])
                else:
                    limits[pid] = resource.prlimit(pid, resource.RLIMIT_FSIZE)
                    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, limits[pid][1]))

        try:
            held, note = self._fill_and_check(server, None, fill)
            return held, "RLIMIT_FSIZE (no mount here): " + note
        finally:
            server.close()

    def _damaged(self):
        source = self.workdir / "main" / "data" / "flowrun.sqlite3"
        copy = self.workdir / "damaged" / "data"
        copy.mkdir(parents=True)
        db = copy / "flowrun.sqlite3"
        # A consistent copy (the WAL checkpointed into it), then damage.
        subprocess.run(
            [sys.executable, "-c", _BACKUP, str(source), str(db)], check=True
        )
        size = db.stat().st_size
        with open(db, "r+b") as f:
            for page in range(size // 4096 // 2, size // 4096, 3):
                f.seek(page * 4096)
                f.write(os.urandom(4096))
        server = Server(self.workdir / "damaged", workers=1, ready=(503,))
        try:
            demo = server.url + "/demo"
            codes = [server.stream(flow(demo, ("a", "/items", {})))[0]]
            codes.append(
                server.call(
                    "POST", "/api/execute", {"config": flow(demo, ("a", "/items", {}))}
                ).status_code
            )
            reads = [server.call("GET", p) for p in ("/api/executions", "/api/health")]
            json_reads = all(
                r.headers.get("Content-Type", "").startswith("application/json")
                for r in reads
            )
            ok = (
                codes == [503, 503]
                and json_reads
                and reads[0].status_code in (200, 503)
                and reads[1].status_code == 503
            )
            return ok, f"runs {codes}, reads {[r.status_code for r in reads]}"
        finally:
            server.close()

    # -- the report
    def report(self, poller: Poller) -> dict:
        print()
        print(f"{'class':16s} {'tried':>5s} {'held':>5s}")
        counts = {}
        for cls in CLASSES:
            mine = [o for o in self.outcomes if o.cls == cls]
            held = sum(1 for o in mine if o.held)
            counts[cls] = {"tried": len(mine), "held": held}
            print(f"{cls:16s} {len(mine):5d} {held:5d}")
        lat = sorted(poller.latencies) or [float("nan")]
        health = {
            "answers": len(poller.latencies),
            "missed": poller.missed,
            "p50_ms": round(statistics.median(lat) * 1000, 1),
            "p99_ms": round(_common.pct(lat, 99) * 1000, 1),
            "max_ms": round(lat[-1] * 1000, 1),
        }
        print(
            f"/api/health during the suite: {health['answers']} answers, "
            f"{health['missed']} missed; p50 {health['p50_ms']} ms, "
            f"p99 {health['p99_ms']} ms, max {health['max_ms']} ms"
        )
        rss = {}
        for pid, seen in self.rss.items():
            rss[pid] = {k: round(v / 2**20, 1) for k, v in seen.items()}
            print(
                f"worker {pid}: RSS baseline {rss[pid]['base']} MiB, "
                f"max {rss[pid]['max']} MiB, at the end {rss[pid]['last']} MiB"
            )
        return {
            "counts": counts,
            "health": health,
            "rss_mib": rss,
            "outcomes": [asdict(o) for o in self.outcomes],
        }


_BACKUP = """
import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.execute("PRAGMA journal_mode=WAL")
dst.close()
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--json", help="write the outcomes and figures here")
    parser.add_argument("--only", action="append", choices=CLASSES, help="a class")
    args = parser.parse_args(argv)
    # A TERM (a test's timeout) still stops every server this script started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # The servers cannot look up names off this machine (a .invalid target).
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(
            None,
            [str(_common.ROOT / "tests" / "offline"), os.environ.get("PYTHONPATH")],
        )
    )
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    os.environ["FLOWRUN_PROBE_SECRET"] = PROBE_SECRET  # the servers inherit it
    workdir = Path(tempfile.mkdtemp(prefix="flowrun-abuse-"))
    suite = None
    try:
        suite = Suite(args, workdir)
        suite.baseline()
        poller = Poller(suite.main.url + "/api/health")
        poller.start()
        for cls in args.only or CLASSES:
            getattr(suite, cls.replace(" ", "_"))()
        poller.stop.set()
        poller.join()
        result = suite.report(poller)
    finally:
        if suite is not None:
            suite.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    failed = [o for o in suite.outcomes if o.held is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
