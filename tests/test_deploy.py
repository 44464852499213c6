"""What only the deployment shows: real ``gunicorn -c gunicorn.conf.py`` with gevent.

Disconnects, graceful stops at each moment of a run, prompts and stops delivered through
the other worker (``-w 2``), many concurrent streams on one worker, token, Origin,
blocked targets and body limits, over real sockets.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import pytest

from .target import free_port
from .waits import wait_until

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "deploy-token"
HEARTBEAT_S = 1.0
INPUT_TIMEOUT_S = 15


class Gunicorn:
    """A gunicorn process serving app:app on 127.0.0.1:<free port>."""

    def __init__(self, tmp: Path, workers: int, args=(), port=None, **env):
        self.port = port or free_port()
        self.log_path = tmp / f"gunicorn-{self.port}.log"
        environ = dict(
            os.environ,
            PORT=str(self.port),
            FLOWRUN_BIND="127.0.0.1",
            WEB_CONCURRENCY=str(workers),
            FLOWRUN_DATA_DIR=str(tmp / f"data-{self.port}"),
            FLOWRUN_FLOWS_DIR=str(tmp / f"flows-{self.port}"),
            FLOWRUN_HEARTBEAT_S=str(HEARTBEAT_S),
            # A prompt whose answer got lost fails the step in seconds, so a
            # broken cross-worker answer fails its test instead of hanging it.
            FLOWRUN_INPUT_TIMEOUT_S=str(INPUT_TIMEOUT_S),
            FLOWRUN_TOKEN=TOKEN,
            FLOWRUN_MAX_CONFIG_BYTES="100000",
        )
        environ.update(env)
        if "FLOWRUN_REDIS_URL" not in env:
            environ.pop("FLOWRUN_REDIS_URL", None)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                *args,
                "app:app",
            ],
            cwd=ROOT,
            env=environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            self._wait_ready(workers)
        except BaseException:
            self.close()  # never leave the process or its log file open
            raise

    def _wait_ready(self, workers: int) -> None:
        pids = set()

        def all_answer():
            if self.proc.poll() is not None:
                raise RuntimeError(self.tail())
            try:
                status, _, worker = self.call("GET", "/api/health")
            except (OSError, http.client.HTTPException):
                return False
            if status == 200:
                pids.add(worker)
            return len(pids) >= workers

        wait_until(all_answer, 30, message=f"{workers} worker(s) to answer")

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def call(self, method, path, body=None, headers=None, conn=None):
        """One request (on a new connection unless ``conn``): status, JSON, worker."""
        own = conn is None
        conn = conn or self.connect()
        try:
            hdrs = {"Authorization": f"Bearer {TOKEN}"}
            if body is not None:
                hdrs["Content-Type"] = "application/json"
                body = json.dumps(body) if not isinstance(body, bytes) else body
            hdrs.update(headers or {})
            conn.request(method, path, body, hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            data = json.loads(raw) if raw else None
            return resp.status, data, resp.getheader("X-Flowrun-Worker")
        finally:
            if own:
                conn.close()

    def connection_to(self, want_other_than: str | None, same_as: str | None = None):
        """A keep-alive connection served by a worker other than (or the same as)."""
        for _ in range(200):
            conn = self.connect()
            _, _, worker = self.call("GET", "/api/health", conn=conn)
            if (want_other_than and worker != want_other_than) or (
                same_as and worker == same_as
            ):
                return conn
            conn.close()
        raise AssertionError("no connection reached the wanted worker")

    def wait_status(self, execution_id, statuses=("interrupted",), timeout=10.0):
        def reached():
            _, detail, _ = self.call("GET", f"/api/executions/{execution_id}")
            return detail if detail["status"] in statuses else None

        return wait_until(reached, timeout, message=f"{execution_id} in {statuses}")

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            self.log.close()


class Stream:
    """An SSE stream read over a raw HTTP connection."""

    def __init__(self, server: Gunicorn, flow: dict, options=None, headers=None):
        self.conn = server.connect()
        body = json.dumps({"config": flow, "options": options or {}})
        hdrs = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        hdrs.update(headers or {})
        self.conn.request("POST", "/api/execute-stream", body, hdrs)
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.id = self.resp.getheader("X-Execution-Id")
        self.worker = self.resp.getheader("X-Flowrun-Worker")
        self.headers = dict(self.resp.getheaders())
        self.events: list[tuple[str, dict, float]] = []
        self.comments = 0

    def next(self):
        """The next event as ``(name, data, arrival time)``; None at end of stream."""
        name, data = None, None
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and name is not None:
                event = (name, data, time.time())
                self.events.append(event)
                return event

    def until(self, wanted: str):
        while True:
            event = self.next()
            if event is None or event[0] == wanted:
                return event

    def names(self):
        return [e[0] for e in self.events]

    def close(self) -> None:
        """Vanish like a browser tab: close the socket."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.resp.close()
        self.conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    gunicorn = Gunicorn(tmp_path_factory.mktemp("gunicorn"), workers=2)
    yield gunicorn
    gunicorn.close()


def flow_of(target, run, *nodes):
    return {
        "name": f"deploy {run}",
        "defaults": {"baseUrl": target.url + "/demo"},
        "nodes": [
            {"id": nid, "name": nid, "method": "GET", "url": url, **extra}
            for nid, url, extra in nodes
        ],
    }


def run_hits(target, run):
    with target.lock:
        return [h for h in target.hits if f"run={run}&" in h["query"] + "&"]


def test_stream_headers_and_heartbeats(server, hits):
    flow = flow_of(hits, "hb", ("slow", "/slow?ms=2300&run=hb", {}))
    stream = Stream(server, flow)
    try:
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["X-Accel-Buffering"] == "no"
        assert stream.headers["Cache-Control"] == "no-cache"
        assert stream.until("end")[1]["success"] is True
        assert stream.comments >= 1  # keep-alive while the step was slow
    finally:
        stream.close()


def assert_stopped_after_the_slow_step(server, execution_id, target, run):
    """The client went away while the first (slow) of three steps ran: it completed
    with its full result, in history; the other two never started."""
    detail = server.wait_status(execution_id)
    assert detail["status"] == "interrupted"
    assert [s["status"] for s in detail["steps"]] == ["completed", "not_run", "not_run"]
    assert detail["steps"][0]["response"]["status"] == 200  # full result kept
    assert [h["path"] for h in run_hits(target, run)] == ["/demo/slow"]


def test_disconnect_mid_step(server, hits):
    flow = flow_of(
        hits,
        "dc",
        ("slow", "/slow?ms=800&run=dc", {}),
        ("next", "/items?run=dc", {}),
        ("last", "/items?run=dc", {}),
    )
    stream = Stream(server, flow)
    assert stream.until("step_start")[1]["id"] == "slow"
    stream.close()
    assert_stopped_after_the_slow_step(server, stream.id, hits, "dc")


def test_disconnect_while_a_prompt_waits(server, hits):
    flow = flow_of(hits, "dp", ("ask", "/items?run=dp", {"userPrompts": {"x": "X?"}}))
    stream = Stream(server, flow)
    assert stream.until("input_required") is not None
    closed = time.monotonic()
    stream.close()
    detail = server.wait_status(stream.id, timeout=2 * HEARTBEAT_S + 5)
    noticed = time.monotonic() - closed
    assert detail["status"] == "interrupted"
    assert noticed < 2 * HEARTBEAT_S + 3  # heartbeats bound it; the EOF watch is ms
    assert [s["status"] for s in detail["steps"]] == ["not_run"]
    assert run_hits(hits, "dp") == []


# Each request carries the server's clock at the moment its step started (right
# after the engine's stop check), so "no step started after the 202" is judged on
# the server's time, not on when this busy test process got to record the hit.
STARTED = "started={{ $isoTimestamp }}"
LATE_S = 0.005  # the timestamp has millisecond resolution


def started_at(hit) -> float:
    """The server's clock when the step of this hit started (epoch seconds)."""
    stamp = dict(p.split("=", 1) for p in hit["query"].split("&"))["started"]
    return datetime.fromisoformat(unquote(stamp)).timestamp()


# (the held/prompting/paused step, what ends the wait after the 202)
STOP_MOMENTS = {
    "first-request": (0, "release"),
    "middle-request": (1, "release"),
    "last-request": (2, "release"),
    "prompt-answered-after": (1, "answer"),
    "pause-continued-after": (1, "continue"),
}


@pytest.mark.parametrize("moment", STOP_MOMENTS)
def test_a_stop_through_the_other_worker_starts_no_later_step(server, hits, moment):
    # The stop is answered by the worker that does not hold the run, at a moment
    # the test controls (the target holds the request, or the run waits); then
    # the run is let go at once, before that worker's poller (50 ms) could pass
    # the stop on: what stops it is the check before each step. (test_control.py
    # has the same cases with the poller out of the way, which fail every time
    # that check is missing.)
    index, then = STOP_MOMENTS[moment]
    steps = [(f"s{i}", f"/items?run={moment}&n={i}&{STARTED}", {}) for i in range(3)]
    if then == "release":
        steps[index] = (steps[index][0], steps[index][1] + f"&hold={moment}", {})
    elif then == "answer":
        steps[index] = (*steps[index][:2], {"userPrompts": {"word": "Word?"}})
    options = {"mode": "step"} if then == "continue" else {}
    stream = Stream(server, flow_of(hits, moment, *steps), options)
    other = server.connection_to(want_other_than=stream.worker)
    same = server.connection_to(None, same_as=stream.worker)
    try:
        if then == "release":
            wait_until(lambda: hits.held(moment), message=f"s{index}'s request")
        elif then == "answer":
            stream.until("input_required")
        else:
            for step in range(index + 1):
                assert stream.until("paused")[1]["stepIndex"] == step
                if step < index:
                    server.call(
                        "POST", f"/api/executions/{stream.id}/continue", conn=same
                    )
        status, _, worker = server.call(
            "POST", f"/api/executions/{stream.id}/stop", conn=other
        )
        answered = time.time()
        assert status == 202 and worker != stream.worker
        if then == "answer":
            body = {
                "executionId": stream.id,
                "stepIndex": index,
                "userInput": {"word": "x"},
            }
            server.call("POST", "/api/provide-input", body, conn=same)
        elif then == "continue":
            server.call("POST", f"/api/executions/{stream.id}/continue", conn=same)
        hits.release(moment)
        end = stream.until("end")[1]
    finally:
        hits.release(moment)
        stream.close()
        other.close()
        same.close()
    ran = index + 1 if then == "release" else index
    started = [d["id"] for n, d, _ in stream.events if n == "step_start"]
    assert started == [f"s{i}" for i in range(ran)]
    assert end["interrupted"] is True and end["success"] is False
    assert end["notRun"] == [f"s{i}" for i in range(ran, 3)]
    late = [h for h in run_hits(hits, moment) if started_at(h) > answered + LATE_S]
    assert late == [] and len(run_hits(hits, moment)) == ran


def test_input_and_stop_through_the_other_worker(server, hits):
    ask = ("ask", "/items?run=xi", {"userPrompts": {"word": "Word?"}})
    echo = ("echo", "/echo?run=xi&w={{ .input.word }}", {})
    stream = Stream(server, flow_of(hits, "xi", ask, echo))
    try:
        stream.until("input_required")
        other = server.connection_to(want_other_than=stream.worker)
        body = {"executionId": stream.id, "stepIndex": 0, "userInput": {"word": "hi"}}
        sent = time.time()
        status, reply, worker = server.call(
            "POST", "/api/provide-input", body, conn=other
        )
        assert (status, reply) == (200, {"success": True})
        assert worker != stream.worker
        step_start = stream.until("step_start")
        assert step_start[2] - sent < 1.0  # poller delivers within ~50 ms
        again = server.call("POST", "/api/provide-input", body, conn=other)
        assert again[0] == 409
        same = server.connection_to(None, same_as=stream.worker)
        assert server.call("POST", "/api/provide-input", body, conn=same)[0] == 409
        end = stream.until("end")[1]
        assert end["success"] is True
        echoed = end["executionLog"][1]["response"]["body"]["args"]["w"]
        assert echoed == ["hi"]
        other.close()
        same.close()
    finally:
        stream.close()

    steps = [(f"s{i}", f"/slow?ms=300&run=xs&n={i}&{STARTED}", {}) for i in range(5)]
    steps[0] = ("s0", steps[0][1] + "&hold=xs", {})  # in flight until stopped
    stream = Stream(server, flow_of(hits, "xs", *steps))
    try:
        stream.until("step_start")
        other = server.connection_to(want_other_than=stream.worker)
        wait_until(lambda: hits.held("xs"), message="s0's request")
        status, reply, worker = server.call(
            "POST", f"/api/executions/{stream.id}/stop", conn=other
        )
        answered = time.time()
        hits.release("xs")
        assert (status, reply) == (202, {"stopping": True}) and worker != stream.worker
        end = stream.until("end")[1]
        assert end["interrupted"] is True and end["notRun"] == ["s1", "s2", "s3", "s4"]
        assert [s["id"] for s in end["executionLog"]] == ["s0"]
        assert all(started_at(h) <= answered + LATE_S for h in run_hits(hits, "xs"))
        assert (
            server.call("POST", f"/api/executions/{stream.id}/stop", conn=other)[0]
            == 409
        )
        other.close()
    finally:
        hits.release("xs")
        stream.close()
    assert server.wait_status(stream.id)["status"] == "interrupted"


def test_the_other_worker_knows_a_run_from_its_first_event(server, hits):
    # The holding worker commits a new run's row a few ms after `start`; a request
    # through the other worker in between waits for it (never a 404).
    first = server.connect()
    by_worker = {server.call("GET", "/api/health", conn=first)[2]: first}
    second = server.connection_to(want_other_than=next(iter(by_worker)))
    by_worker[server.call("GET", "/api/health", conn=second)[2]] = second
    nodes = [(name, "/slow?ms=300&run=xf", {}) for name in ("a", "b")]
    for trial in range(6):
        stream = Stream(server, flow_of(hits, "xf", *nodes))
        try:
            other = next(c for w, c in by_worker.items() if w != stream.worker)
            status, found, _ = server.call(
                "GET", f"/api/executions/{stream.id}", conn=other
            )
            assert status == 200, (trial, found)
            assert found["status"] == "running"
            status, reply, _ = server.call(
                "POST", f"/api/executions/{stream.id}/stop", conn=other
            )
            assert status == 202, (trial, reply)
            assert stream.until("end")[1]["interrupted"] is True
        finally:
            stream.close()
    first.close()
    second.close()


def test_stop_and_continue_through_the_other_worker_while_waiting(server, hits):
    steps = [(f"p{i}", f"/items?run=xc&n={i}", {}) for i in range(3)]
    stream = Stream(server, flow_of(hits, "xc", *steps), {"mode": "step"})
    try:
        stream.until("paused")
        other = server.connection_to(want_other_than=stream.worker)
        status, _, worker = server.call(
            "POST", f"/api/executions/{stream.id}/continue", conn=other
        )
        assert status == 200 and worker != stream.worker
        assert stream.until("step")[1]["id"] == "p0"
        stream.until("paused")
        status, _, _ = server.call(
            "POST", f"/api/executions/{stream.id}/stop", conn=other
        )
        assert status == 202
        end = stream.until("end")[1]
        assert end["interrupted"] is True and end["notRun"] == ["p1", "p2"]
        other.close()
    finally:
        stream.close()
    assert len(run_hits(hits, "xc")) == 1


def test_token_origin_and_body_limit(server):
    assert server.call("GET", "/api/health", headers={"Authorization": ""})[0] == 200
    status, body, _ = server.call(
        "GET", "/api/executions", headers={"Authorization": ""}
    )
    assert status == 401 and body["error"] and body["errors"] == []
    status, body, _ = server.call(
        "POST", "/api/validate", {"nodes": []}, headers={"Origin": "https://evil.test"}
    )
    assert status == 403 and body["error"]
    same = f"http://127.0.0.1:{server.port}"
    assert (
        server.call("POST", "/api/validate", {"nodes": []}, {"Origin": same})[0] == 200
    )
    big = json.dumps({"config": {"nodes": [], "pad": "x" * 150_000}}).encode()
    status, body, _ = server.call("POST", "/api/execute-stream", big)
    assert status == 413 and "FLOWRUN_MAX_CONFIG_BYTES" in body["error"]
    status, _, _ = server.call(
        "POST", "/api/validate", b"{}", headers={"Content-Type": "text/plain"}
    )
    assert status == 415


def test_blocked_metadata_address(server):
    flow = {
        "nodes": [
            {
                "id": "meta",
                "name": "meta",
                "method": "GET",
                "url": "http://169.254.169.254/latest/meta-data/",
                "timeout": 20,
            }
        ]
    }
    stream = Stream(server, flow)
    try:
        step = stream.until("step")[1]
    finally:
        stream.close()
    assert step["status"] == "failed" and "169.254.169.254" in step["error"]
    assert "Blocked" in step["error"] and step["duration"] < 0.5


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    gunicorn = Gunicorn(tmp_path_factory.mktemp("gunicorn1"), workers=1)
    yield gunicorn
    gunicorn.close()


def test_300_concurrent_flows_on_one_worker(one_worker):
    base = one_worker.url + "/demo"
    flow = {
        "name": "concurrent",
        "defaults": {"baseUrl": base},
        "nodes": [
            {"id": f"n{i}", "name": f"n{i}", "method": "GET", "url": "/slow?ms=200"}
            for i in range(5)
        ],
    }
    barrier = threading.Barrier(300, timeout=60)

    def one(_):
        barrier.wait()
        started = time.monotonic()
        stream = Stream(one_worker, flow)
        try:
            stream.next()
            ttfe = time.monotonic() - started
            end = stream.until("end")
        finally:
            stream.close()
        return stream.worker, ttfe, end[1] if end else None

    with ThreadPoolExecutor(300) as pool:
        results = list(pool.map(one, range(300)))
    assert len({w for w, _, _ in results}) == 1
    assert all(end is not None and end["success"] for _, _, end in results)
    ttfes = sorted(t for _, t, _ in results)
    p50, p99 = ttfes[150] * 1000, ttfes[296] * 1000
    print(f"300 flows: TTFE p50 {p50:.0f} ms, p99 {p99:.0f} ms")


def test_a_spinning_jq_program_does_not_freeze_the_worker(one_worker, hits):
    spin = flow_of(
        hits,
        "jqspin",
        (
            "spin",
            "/items?run=jqspin",
            {
                "validations": [
                    {"jq": "last(range(1e9))"},
                    {"jq": "def f: f; f"},
                    {"jq": "[limit(1e9; repeat(1))]"},
                ]
            },
        ),
        ("after", "/items?run=jqspin", {}),
    )
    short = flow_of(
        hits,
        "jqshort",
        (
            "one",
            "/items?run=jqshort",
            {"validations": [{"jq": ".items | length", "greaterThan": 0}]},
        ),
    )
    began = time.monotonic()
    stream = Stream(one_worker, spin, options={"continueOnFailure": True})
    try:
        assert stream.until("step_start")[1]["id"] == "spin"
        _wait_for_hits(hits, "jqspin", 1)
        time.sleep(0.3)  # the response is in: its jq validations spin, ~2 s
        # Frozen, the worker would answer neither (in-process jq holds the GIL
        # for minutes on these programs).
        conn = http.client.HTTPConnection("127.0.0.1", one_worker.port, timeout=5)
        status, _, worker = one_worker.call("GET", "/api/health", conn=conn)
        conn.close()
        answered = time.monotonic()
        assert status == 200 and worker == stream.worker
        other = Stream(one_worker, short)
        try:
            assert other.worker == stream.worker
            end = other.until("end")
            assert end is not None and end[1]["success"] is True, other.events
        finally:
            other.close()
        step = stream.until("step")[1]
        ended = time.monotonic()
        assert stream.until("end")[1]["success"] is False
    finally:
        stream.close()
    assert answered - began < ended - began - 1  # answered while jq still ran
    assert step["id"] == "spin" and step["status"] == "failed"
    # the first takes the step's whole budget; the others are not run
    assert [v["message"] for v in step["validations"]] == [
        f"jq 'last(range(1e9))' gave up: {BUDGET_USED_UP}"
    ]
    assert len(run_hits(hits, "jqspin")) == 2  # the run went on to "after"
    assert ended - began < 15


BUDGET_USED_UP = (
    "the step used up its CPU budget of 2s (FLOWRUN_STEP_CPU_S, shared by its "
    "conditions, placeholders and validations)"
)
SLOW_TEXT = "a" * 40 + "b"  # ^(a|aa)+$ backtracks for minutes on it


# Three steps each compute for their whole budget (2 CPU-seconds): on a busy
# machine that is several times longer on the wall clock.
@pytest.mark.timeout(240)
def test_slow_checks_leave_the_worker_responsive(one_worker, hits):
    # Each node's checks used to hold the worker for seconds to minutes (40
    # backtracking searches, 8 backtracking schema patterns, uniqueItems over
    # 3,000 objects, 40 backtracking conditions); now each slow one stops at the
    # step's budget, and /api/health answers throughout.
    slow = "^(a|aa)+$"
    objects = [{"i": i} for i in range(3000)]
    nodes = [
        ("matches", {"validations": [{"jsonpath": ".json.s", "matches": slow}] * 40}),
        (
            "patterns",
            {
                "validations": [
                    {
                        "schema": {
                            "properties": {
                                "json": {
                                    "properties": {"s": {"pattern": slow + "|" * i}}
                                }
                            }
                        }
                    }
                    for i in range(8)
                ]
            },
        ),
        (
            "unique",
            {
                "body": {"s": SLOW_TEXT, "objects": objects},
                "validations": [
                    {
                        "schema": {
                            "properties": {
                                "json": {
                                    "properties": {"objects": {"uniqueItems": True}}
                                }
                            }
                        }
                    }
                ],
            },
        ),
        ("conditions", {"conditions": [{"variable": "s", "matches": slow}] * 40}),
    ]
    flow = {
        "name": "slow checks",
        "variables": {"s": SLOW_TEXT},
        "nodes": [
            {
                "id": nid,
                "name": nid,
                "method": "POST",
                "url": f"{hits.url}/demo/echo?run=slowchecks",
                "body": {"s": SLOW_TEXT},
                **extra,
            }
            for nid, extra in nodes
        ],
    }
    latencies: list[float] = []
    errors: list[str] = []
    done = threading.Event()

    def poll():
        conn = http.client.HTTPConnection("127.0.0.1", one_worker.port, timeout=2)
        try:
            while not done.is_set():
                began = time.monotonic()
                try:
                    status, _, _ = one_worker.call("GET", "/api/health", conn=conn)
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(repr(exc))
                    conn.close()
                    conn = http.client.HTTPConnection(
                        "127.0.0.1", one_worker.port, timeout=2
                    )
                    continue
                latencies.append(time.monotonic() - began)
                if status != 200:
                    errors.append(f"status {status}")
                time.sleep(0.02)
        finally:
            conn.close()

    poller = threading.Thread(target=poll)
    poller.start()
    began = time.monotonic()
    try:
        stream = Stream(one_worker, flow, options={"continueOnFailure": True})
        try:
            assert stream.status == 200, stream.resp.read()
            end = stream.until("end")
            steps = [e[1] for e in stream.events if e[0] == "step"]
        finally:
            stream.close()
    finally:
        done.set()
        poller.join(10)
    took = time.monotonic() - began
    assert end is not None and end[1]["stepsFailed"] == 3
    by_id = {step["id"]: step for step in steps}
    for nid in ("matches", "patterns", "conditions"):
        assert by_id[nid]["status"] == "failed", by_id[nid]
        assert BUDGET_USED_UP in by_id[nid]["error"], by_id[nid]["error"]
    assert by_id["unique"]["status"] == "completed"  # hashed, not compared pairwise
    assert errors == []
    assert len(latencies) >= 20
    print(
        f"slow checks: {took:.1f} s; /api/health {len(latencies)} answers, "
        f"max {max(latencies) * 1000:.0f} ms"
    )


def test_sigterm_ends_runs_gracefully(tmp_path, hits):
    """A restart stops runs after their step in flight, with `end`, not a cut."""
    from flowrun.store.history import Store

    gunicorn = Gunicorn(tmp_path, workers=1)
    try:
        steps = [(f"t{i}", f"/slow?ms=600&run=term&n={i}", {}) for i in range(3)]
        stream = Stream(gunicorn, flow_of(hits, "term", *steps))
        stream.until("step_start")
        gunicorn.proc.send_signal(signal.SIGTERM)
        end = stream.until("end")
        stream.close()
        assert end is not None, "the stream was cut without an end event"
        assert end[1]["interrupted"] is True and end[1]["notRun"] == ["t1", "t2"]
        assert [s["status"] for s in end[1]["executionLog"]] == ["completed"]
        gunicorn.proc.wait(20)
    finally:
        gunicorn.close()
    store = Store(tmp_path / f"data-{gunicorn.port}")
    assert store.state(stream.id)["status"] == "interrupted"
    store.close()
    assert len(run_hits(hits, "term")) == 1


def test_sigterm_aborts_a_step_that_would_outlast_the_graceful_timeout(tmp_path, hits):
    """A run stuck on a long step still ends with `end`, recorded, before the
    worker exits: its request is aborted a few seconds before graceful_timeout."""
    from flowrun.store.history import Store

    gunicorn = Gunicorn(tmp_path, workers=1, args=("--graceful-timeout", "6"))
    try:
        held = [("stuck", "/items?hold=sigterm-stuck&run=stuck", {"timeout": 60})]
        stream = Stream(
            gunicorn, flow_of(hits, "stuck", *held, ("after", "/items", {}))
        )
        stream.until("step_start")
        wait_until(lambda: hits.held("sigterm-stuck"), message="the held request")
        gunicorn.proc.send_signal(signal.SIGTERM)
        step = stream.until("step")
        end = stream.until("end")
        stream.close()
        assert end is not None, "the stream was cut without an end event"
        assert step[1]["status"] == "failed"
        assert step[1]["error"] == "Stopped now: the request in flight was aborted"
        assert end[1]["interrupted"] is True and end[1]["notRun"] == ["after"]
        assert gunicorn.proc.wait(20) == 0
    finally:
        hits.release("sigterm-stuck")
        gunicorn.close()
    store = Store(tmp_path / f"data-{gunicorn.port}")
    found = store.get(stream.id)
    store.close()
    assert found["status"] == "interrupted"
    assert [s["status"] for s in found["steps"]] == ["failed", "not_run"]


def test_a_forced_stop_through_either_worker(server, hits):
    for n in range(2):
        key = f"force-{n}"
        stream = Stream(server, flow_of(hits, key, ("held", f"/items?hold={key}", {})))
        try:
            stream.until("step_start")
            wait_until(lambda key=key: hits.held(key), message="the held request")
            conn = (server.connection_to if n else server.connection_to)(
                stream.worker if n else None, None if n else stream.worker
            )
            status, body, worker = server.call(
                "POST", f"/api/executions/{stream.id}/stop", {"force": True}, conn=conn
            )
            conn.close()
            assert status == 202 and (worker != stream.worker) == bool(n)
            step = stream.until("step")
            end = stream.until("end")
        finally:
            hits.release(key)
            stream.close()
        assert step[1]["error"] == "Stopped now: the request in flight was aborted"
        assert end[1]["interrupted"] is True
        assert server.wait_status(stream.id)["status"] == "interrupted"


@pytest.fixture(scope="module")
def redis_workers(tmp_path_factory, redis_url):
    gunicorn = Gunicorn(
        tmp_path_factory.mktemp("gunicorn-redis"),
        workers=2,
        FLOWRUN_REDIS_URL=redis_url,
    )
    yield gunicorn
    gunicorn.close()


def test_redis_channel_under_gunicorn(redis_workers, hits):
    """The Redis channel from gevent workers: input and stop via the other one."""
    server = redis_workers
    ask = ("ask", "/items?run=rd", {"userPrompts": {"word": "Word?"}})
    slow = [(f"s{i}", f"/slow?ms=300&run=rd&n={i}&{STARTED}", {}) for i in range(3)]
    stream = Stream(server, flow_of(hits, "rd", ask, *slow))
    try:
        stream.until("input_required")
        other = server.connection_to(want_other_than=stream.worker)
        body = {"executionId": stream.id, "stepIndex": 0, "userInput": {"word": "x"}}
        status, _, worker = server.call("POST", "/api/provide-input", body, conn=other)
        assert status == 200 and worker != stream.worker
        assert server.call("POST", "/api/provide-input", body, conn=other)[0] == 409
        stream.until("step")
        assert stream.until("step_start")[1]["id"] == "s0"
        status, _, _ = server.call(
            "POST", f"/api/executions/{stream.id}/stop", conn=other
        )
        answered = time.time()
        assert status == 202
        end = stream.until("end")[1]
        assert end["interrupted"] is True and end["notRun"] == ["s1", "s2"]
        assert all(
            started_at(h) <= answered + LATE_S
            for h in run_hits(hits, "rd")
            if "started" in h["query"]
        )
        other.close()
    finally:
        stream.close()
    assert server.wait_status(stream.id)["status"] == "interrupted"


@pytest.mark.parametrize("workers", ["server", "redis_workers"])
def test_partial_answer_through_the_other_worker(request, workers, hits):
    """A 400 names the missing key, the prompt keeps waiting, the whole answer runs."""
    server = request.getfixturevalue(workers)
    run = f"pa-{workers}"
    url = f"/echo?run={run}&u={{{{ .input.user }}}}&p={{{{ .input.pin }}}}"
    ask = ("ask", url, {"userPrompts": {"user": "User?", "pin": "PIN?"}})
    stream = Stream(server, flow_of(hits, run, ask))
    try:
        stream.until("input_required")
        other = server.connection_to(want_other_than=stream.worker)
        base = {"executionId": stream.id, "stepIndex": 0}
        partial = {**base, "userInput": {"user": "ada"}}
        status, reply, worker = server.call(
            "POST", "/api/provide-input", partial, conn=other
        )
        assert worker != stream.worker
        assert status == 400, reply
        assert [e["path"] for e in reply["errors"]] == ["userInput.pin"]
        assert "pin" in reply["error"]
        whole = {**base, "userInput": {"user": "ada", "pin": "42"}}
        status, reply, _ = server.call("POST", "/api/provide-input", whole, conn=other)
        assert (status, reply) == (200, {"success": True})
        end = stream.until("end")[1]
        assert end["success"] is True
        assert stream.names() == [
            "start",
            "input_required",
            "step_start",
            "step",
            "end",
        ]
        args = end["executionLog"][0]["response"]["body"]["args"]
        assert (args["u"], args["p"]) == (["ada"], ["42"])
        other.close()
    finally:
        stream.close()
    assert len(run_hits(hits, run)) == 1


def _post_raw(server, path, payload) -> socket.socket:
    """Send a POST on a raw socket and return it without reading the answer."""
    body = json.dumps(payload).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    return sock


def _vanish(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _wait_for_hits(target, run, count, timeout=10.0) -> None:
    wait_until(
        lambda: len(run_hits(target, run)) >= count,
        timeout,
        message=f"{count} request(s) of run {run}",
    )


def test_execute_stops_when_the_client_disconnects_mid_step(server, hits):
    flow = flow_of(
        hits,
        "xd",
        ("slow", "/slow?ms=800&run=xd", {}),
        ("next", "/slow?ms=800&run=xd", {}),
        ("last", "/items?run=xd", {}),
    )
    sock = _post_raw(server, "/api/execute", {"config": flow})
    _wait_for_hits(hits, "xd", 1)  # step 1 is in flight
    _vanish(sock)
    status, listed, _ = server.call("GET", "/api/executions?flow=deploy%20xd")
    assert status == 200 and len(listed["executions"]) == 1, listed
    eid = listed["executions"][0]["executionId"]
    assert_stopped_after_the_slow_step(server, eid, hits, "xd")


def test_execute_answers_a_client_that_stays(server, hits):
    flow = flow_of(
        hits, "xs", ("slow", "/slow?ms=300&run=xs", {}), ("next", "/items?run=xs", {})
    )
    status, end, _ = server.call("POST", "/api/execute", {"config": flow})
    assert status == 200, end
    assert (end["success"], end["interrupted"], end["stepsExecuted"]) == (
        True,
        False,
        2,
    )
    assert (
        server.call("GET", f"/api/executions/{end['executionId']}")[1]["status"]
        == "completed"
    )
    assert len(run_hits(hits, "xs")) == 2


def test_execute_node_stops_retrying_when_the_client_disconnects(server, hits):
    # One step: the attempt in flight completes, but the retries (up to 100, a day
    # apart) end with the client.
    node = {"retry": {"count": 100, "intervalMs": 100}}
    flow = flow_of(hits, "nd", ("flaky", "/status/500?run=nd", node))
    sock = _post_raw(server, "/api/execute-node", {"config": flow, "nodeId": "flaky"})
    _wait_for_hits(hits, "nd", 2)
    _vanish(sock)
    # Retries 100 ms apart must stop: nothing marks a retry that does not happen,
    # so give the server time to notice, then watch the count stay still.
    time.sleep(0.5)
    seen = len(run_hits(hits, "nd"))
    time.sleep(1.0)
    assert len(run_hits(hits, "nd")) == seen < 20


def test_execute_node_never_sends_when_the_client_leaves_during_its_delay(server, hits):
    flow = flow_of(hits, "ny", ("later", "/items?run=ny", {"delayMs": 1500}))
    logged = server.log_path.stat().st_size
    sock = _post_raw(server, "/api/execute-node", {"config": flow, "nodeId": "later"})
    # Nothing outside marks the run's delay: leave well inside its 1.5 s (leaving
    # before it started must not send either), then outlast it.
    time.sleep(0.3)
    _vanish(sock)
    time.sleep(1.7)
    assert run_hits(hits, "ny") == []
    with open(server.log_path, "rb") as log:
        log.seek(logged)
        assert b"Traceback" not in log.read()


def test_flowrun_logs_in_gunicorns_format(tmp_path):
    # flowrun thinks it is exposed (FLOWRUN_BIND, no token) and warns at start-up;
    # gunicorn binds loopback all the same (-b wins). The warning must come out
    # through gunicorn's error log, with its timestamp and level, not bare.
    port = free_port()
    server = Gunicorn(
        tmp_path,
        1,
        args=("-b", f"127.0.0.1:{port}"),
        port=port,
        FLOWRUN_BIND="0.0.0.0",
        FLOWRUN_TOKEN="",
    )
    try:
        log = server.log_path.read_text(errors="replace")
        assert re.search(
            r"\] \[WARNING\] \n!{72}\nflowrun binds 0\.0\.0\.0 without FLOWRUN_TOKEN",
            log,
        ), log[-2000:]
    finally:
        server.close()


def _access_line(server: Gunicorn, needle: str) -> str:
    """The access line containing ``needle`` (written just after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        log = server.log_path.read_text(errors="replace")
        lines = [line for line in log.splitlines() if needle in line]
        if lines:
            return lines[-1]
        assert time.monotonic() < deadline, log[-2000:]
        time.sleep(0.02)


def test_tokens_never_reach_the_log(server):
    conn = server.connect()
    try:
        conn.request("GET", f"/?view=1&token={TOKEN}")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 302
    finally:
        conn.close()
    assert server.call("GET", "/api/executions")[0] == 200  # Authorization: Bearer
    line = _access_line(server, "GET /?view=1&token=")
    assert '"GET /?view=1&token=[redacted] HTTP/1.1" 302' in line
    log = server.log_path.read_text(errors="replace")
    assert TOKEN not in log
    assert "flowrun: gunicorn" not in log  # the worker found every hook it uses


BIG = 300_000_000


def _big_post_head(server: Gunicorn, length: int = BIG) -> bytes:
    """An unauthenticated POST announcing ``length`` body bytes."""
    return (
        f"POST /api/execute-stream HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_an_oversized_body_is_answered_and_its_connection_closed_unread(one_worker):
    sock = socket.create_connection(("127.0.0.1", one_worker.port), timeout=30)
    try:
        sock.sendall(_big_post_head(one_worker))  # and not one body byte
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes
            answer += chunk
    finally:
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer
    assert b"\r\nConnection: close\r\n" in head
    assert b"FLOWRUN_MAX_CONFIG_BYTES" in body


def test_a_huge_upload_does_not_freeze_the_worker(one_worker):
    """Another client is answered while a 300 MB body is being sent; the upload
    is cut off instead of read to its end after the 413."""
    progress = {"sent": 0, "error": None}
    started = threading.Event()

    def upload():
        chunk = b"x" * 65536
        sock = socket.create_connection(("127.0.0.1", one_worker.port), timeout=60)
        try:
            sock.sendall(_big_post_head(one_worker))
            while progress["sent"] < BIG:  # bounded: 300 MB at most
                sock.sendall(chunk)
                progress["sent"] += len(chunk)
                if progress["sent"] >= 1_000_000:
                    started.set()
        except OSError as exc:
            progress["error"] = exc
        finally:
            started.set()
            sock.close()

    sender = threading.Thread(target=upload)
    sender.start()
    try:
        assert started.wait(60)
        conn = http.client.HTTPConnection("127.0.0.1", one_worker.port, timeout=60)
        status, body, _ = one_worker.call("GET", "/api/health", conn=conn)
        conn.close()
    finally:
        sender.join(120)
    assert (status, body["status"]) == (200, "ok")
    assert isinstance(progress["error"], OSError)  # cut off, not drained
    assert progress["sent"] < BIG


def test_a_body_of_unknown_length_closes_its_connection(one_worker):
    sock = socket.create_connection(("127.0.0.1", one_worker.port), timeout=30)
    try:
        sock.sendall(
            (
                f"POST /api/validate HTTP/1.1\r\nHost: 127.0.0.1:{one_worker.port}\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                'Transfer-Encoding: chunked\r\n\r\nD\r\n{"nodes": []}\r\n0\r\n\r\n'
            ).encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert b"\r\nConnection: close\r\n" in answer
