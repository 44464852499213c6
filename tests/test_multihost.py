"""Several hosts: separate gunicorn processes, each with its own data directory, on
loopback ports, sharing one PostgreSQL (and Redis for the control channel).

A run started on host A is answered, stopped and read from host B; history is the
same from every host; a host killed outright (SIGKILL, no chance to record
anything) is noticed by the others through its lease. The servers are real
(``tests/services.py``): skipped where PostgreSQL is not installed, failures in CI.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .test_deploy import LATE_S, STARTED, TOKEN, Gunicorn, Stream, flow_of, started_at
from .waits import wait_until

LEASE_S = 3.0  # short, for the test; with room for a busy CI machine's stalls

# Each test starts two or three gunicorn hosts (and the session's PostgreSQL).
pytestmark = pytest.mark.timeout(300)


def _hosts(tmp: Path, count: int, database_url: str, redis_url=None, **env):
    hosts = []
    try:
        for name in "abc"[:count]:
            extra = {"FLOWRUN_DATABASE_URL": database_url, **env}
            if redis_url:
                extra["FLOWRUN_REDIS_URL"] = redis_url
            hosts.append(Gunicorn(tmp / name, workers=1, **extra))
    except BaseException:
        for host in hosts:
            host.close()
        raise
    return hosts


@pytest.fixture(params=["postgres", "postgres+redis"])
def hosts(request, tmp_path, postgres_url):
    """Hosts A and B: control through PostgreSQL (LISTEN/NOTIFY), or Redis."""
    redis = request.getfixturevalue("redis_url") if "redis" in request.param else None
    for name in "ab":
        (tmp_path / name).mkdir()
    started = _hosts(tmp_path, 2, postgres_url, redis)
    yield started
    for host in started:
        host.close()


def test_a_run_on_one_host_is_answered_stopped_and_read_from_another(hosts, hits):
    a, b = hosts
    ask = ("ask", "/items?run=mh", {"userPrompts": {"word": "Word?"}})
    slow = [(f"s{i}", f"/slow?ms=300&run=mh&n={i}&{STARTED}", {}) for i in range(4)]
    # s0 is in flight until the stop is answered, however busy the machine is.
    slow[0] = ("s0", slow[0][1] + "&hold=mh", {})
    stream = Stream(a, flow_of(hits, "mh", ask, *slow))
    try:
        stream.until("input_required")
        answer = {"executionId": stream.id, "stepIndex": 0, "userInput": {"word": "x"}}
        sent = time.time()
        status, reply, _ = b.call("POST", "/api/provide-input", answer)
        assert (status, reply) == (200, {"success": True})
        assert stream.until("step_start")[2] - sent < 2.0
        assert b.call("POST", "/api/provide-input", answer)[0] == 409
        assert a.call("POST", "/api/provide-input", answer)[0] == 409
        assert stream.until("step_start")[1]["id"] == "s0"
        wait_until(lambda: hits.held("mh"), message="s0's request")
        status, reply, _ = b.call("POST", f"/api/executions/{stream.id}/stop")
        answered = time.time()
        hits.release("mh")
        assert (status, reply) == (202, {"stopping": True})
        end = stream.until("end")[1]
        assert end["interrupted"] is True and end["success"] is False
        assert end["notRun"] == ["s1", "s2", "s3"]
        timed = [
            h for h in hits.hits if "started=" in h["query"] and "run=mh" in h["query"]
        ]
        assert timed and all(started_at(h) <= answered + LATE_S for h in timed)
    finally:
        hits.release("mh")
        stream.close()
    detail = b.wait_status(stream.id)
    assert detail["status"] == "interrupted"
    assert [s["status"] for s in detail["steps"]] == [
        "completed",
        "completed",
        "not_run",
        "not_run",
        "not_run",
    ]
    assert a.call("GET", f"/api/executions/{stream.id}")[1] == detail
    assert b.call("POST", f"/api/executions/{stream.id}/stop")[0] == 409


def test_a_forced_stop_from_another_host_aborts_the_request_in_flight(hosts, hits):
    a, b = hosts
    held = ("held", "/items?run=fs&hold=fs", {"timeout": 60})
    stream = Stream(a, flow_of(hits, "fs", held, ("next", "/items?run=fs", {})))
    try:
        stream.until("step_start")
        wait_until(lambda: hits.held("fs"), message="the held request")
        path = f"/api/executions/{stream.id}/stop"
        status, reply, _ = b.call("POST", path, {"force": True})
        assert (status, reply) == (202, {"stopping": True})
        # Not released: only the forced stop can end the step.
        step = stream.until("step")[1]
        end = stream.until("end")[1]
    finally:
        hits.release("fs")
        stream.close()
    assert step["status"] == "failed"
    assert step["error"] == "Stopped now: the request in flight was aborted"
    assert end["interrupted"] is True and end["notRun"] == ["next"]
    assert b.wait_status(stream.id)["status"] == "interrupted"
    assert b.call("POST", path, {"force": True})[0] == 409


def test_history_is_the_same_from_every_host(hosts, hits):
    a, b = hosts
    ids = []
    for i, host in enumerate([a, b, a, b]):
        flow = flow_of(hits, f"hist{i}", ("one", f"/items?run=hist{i}", {}))
        status, end, _ = host.call("POST", "/api/execute", {"config": flow})
        assert status == 200 and end["success"] is True
        ids.append(end["executionId"])
    listed_a = a.call("GET", "/api/executions?limit=10")[1]["executions"]
    listed_b = b.call("GET", "/api/executions?limit=10")[1]["executions"]
    assert listed_a == listed_b
    assert [e["executionId"] for e in listed_a] == ids[::-1]
    for execution_id in ids:
        detail = a.call("GET", f"/api/executions/{execution_id}")[1]
        assert detail == b.call("GET", f"/api/executions/{execution_id}")[1]
        assert detail["status"] == "completed"


def _kill_host(host: Gunicorn) -> None:
    """SIGKILL the master and its workers at once, as a host that loses power."""
    master = host.proc.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in [master, *map(int, children)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    host.proc.wait(10)


def test_a_killed_host_is_noticed_by_the_others(tmp_path, postgres_url, hits):
    for name in "abc":
        (tmp_path / name).mkdir()
    a, b, c = _hosts(tmp_path, 3, postgres_url, FLOWRUN_LEASE_S=str(LEASE_S))
    try:
        waiting = Stream(
            a,
            flow_of(hits, "kw", ("ask", "/items?run=kw", {"userPrompts": {"x": "?"}})),
        )
        waiting.until("input_required")
        # The first step is in flight when the host dies (the target holds it).
        steps = [(f"s{i}", f"/items?run=kr&n={i}", {}) for i in range(3)]
        steps[0] = ("s0", steps[0][1] + "&hold=kr", {})
        running = Stream(a, flow_of(hits, "kr", *steps))
        running.until("step_start")
        wait_until(lambda: hits.held("kr"), message="s0's request")
        # A run's row is committed with the next group, a moment after its first
        # events: the host is killed once the others know both runs.
        for stream in (waiting, running):

            def known(execution_id=stream.id):
                status, detail, _ = c.call("GET", f"/api/executions/{execution_id}")
                return status == 200 and detail["status"] == "running"

            wait_until(known, 10, message=f"{stream.id} known to host C")
        killed = time.monotonic()
        _kill_host(a)
        for stream in (waiting, running):
            detail = c.wait_status(stream.id, timeout=6 * LEASE_S + 10)
            noticed = time.monotonic() - killed
            assert detail["status"] == "interrupted", detail
            assert noticed < 6 * LEASE_S + 5
            assert "stopped renewing its lease" in detail["summary"]["reason"]
            assert b.call("GET", f"/api/executions/{stream.id}")[1] == detail
        # Nothing waits any more: a clear conflict, at once, from any host.
        answer = {"executionId": waiting.id, "stepIndex": 0, "userInput": {"x": "1"}}
        began = time.monotonic()
        status, reply, _ = b.call("POST", "/api/provide-input", answer)
        assert status == 409 and "interrupted" in reply["error"]
        status, reply, _ = c.call("POST", f"/api/executions/{running.id}/stop")
        assert status == 409 and "interrupted" in reply["error"]
        assert time.monotonic() - began < 5
        # The other hosts go on serving runs.
        flow = flow_of(hits, "after", ("one", "/items?run=after", {}))
        status, end, _ = b.call("POST", "/api/execute", {"config": flow})
        assert status == 200 and end["success"] is True
        waiting.close()
        running.close()
    finally:
        hits.release("kr")
        for host in (a, b, c):
            host.close()


def test_a_burst_of_runs_shares_the_redis_connections(tmp_path, redis_url, hits):
    # 200 runs start at once on one worker, each announcing itself in Redis: they
    # wait for one of the worker's connections rather than fail (a 500).
    host = Gunicorn(tmp_path, workers=1, FLOWRUN_REDIS_URL=redis_url)
    flow = flow_of(hits, "burst", ("one", "/slow?ms=300&run=burst", {}))
    barrier = threading.Barrier(200, timeout=60)
    body = json.dumps({"config": flow})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    def one(_):
        barrier.wait()
        # A slow machine may take a while to answer 200 streams at once.
        conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=120)
        try:
            conn.request("POST", "/api/execute-stream", body, headers)
            resp = conn.getresponse()
            text = resp.read().decode()  # the whole stream, to its end
            end = text.partition("event: end\ndata: ")[2].partition("\n")[0]
            return resp.status, bool(end) and json.loads(end)["success"]
        except (OSError, http.client.HTTPException) as exc:
            return repr(exc), False
        finally:
            conn.close()

    try:
        with ThreadPoolExecutor(200) as pool:
            results = list(pool.map(one, range(200)))
    finally:
        host.close()
    assert results == [(200, True)] * 200
