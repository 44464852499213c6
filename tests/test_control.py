"""The cross-worker control channel: two apps stand for two workers (or hosts).

The SQLite channel is shared through one data directory; the Redis and PostgreSQL
channels through a real ``redis-server`` and PostgreSQL (skipped when they are not
installed, except in CI), with separate data directories, as on two hosts.
"""

from __future__ import annotations

import threading
import time

import pytest

from flowrun import create_app

from .streams import assert_error, frames, make_flow, node
from .waits import wait_until

# The first test to use PostgreSQL starts the session's server.
pytestmark = pytest.mark.timeout(180)


def two_workers(tmp_path, redis_url=None, database_url=None):
    apps = []
    for name in ("a", "b"):
        shared = not (redis_url or database_url)
        data = tmp_path / ("shared" if shared else name)
        apps.append(
            create_app(
                {
                    "FLOWRUN_DATA_DIR": str(data),
                    "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
                    "FLOWRUN_REDIS_URL": redis_url,
                    "FLOWRUN_DATABASE_URL": database_url,
                    "FLOWRUN_TOKEN": None,
                    "FLOWRUN_HEARTBEAT_S": 0.5,
                }
            )
        )
    return apps


class Reader(threading.Thread):
    """Read a stream of worker A in the background."""

    def __init__(self, resp):
        super().__init__(daemon=True)
        self.resp = resp
        self.events = []
        self.seen = threading.Condition()

    def run(self):
        try:
            for name, data in frames(self.resp.response):
                with self.seen:
                    self.events.append((name, data, time.monotonic()))
                    self.seen.notify_all()
                if name == "end":
                    break
        finally:
            self.resp.close()

    def wait_for(self, name, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.seen:
            while True:
                for event in self.events:
                    if event[0] == name:
                        return event
                left = deadline - time.monotonic()
                assert left > 0, f"no {name} event; got {[e[0] for e in self.events]}"
                self.seen.wait(left)


@pytest.fixture(params=["sqlite", "redis", "postgres", "postgres+redis"])
def workers(request, tmp_path):
    """Two apps: one host's workers (SQLite), or two hosts sharing Redis,
    PostgreSQL (LISTEN/NOTIFY), or PostgreSQL for history and Redis for control."""
    backends = request.param.split("+")
    url = request.getfixturevalue("redis_url") if "redis" in backends else None
    db = request.getfixturevalue("postgres_url") if "postgres" in backends else None
    apps = two_workers(tmp_path, url, db)
    yield apps
    for app in apps:
        app.extensions["flowrun"].close()


def start(app, flow, options=None):
    body = {"config": flow, "options": options or {}}
    resp = app.test_client().post("/api/execute-stream", json=body, buffered=False)
    assert resp.status_code == 200
    reader = Reader(resp)
    reader.start()
    return resp.headers["X-Execution-Id"], reader


def test_input_through_the_other_worker(workers, hits):
    a, b = workers
    flow = make_flow(
        hits,
        node("ask", "/echo?w={{ .input.word }}", userPrompts={"word": "Word?"}),
    )
    eid, reader = start(a, flow)
    reader.wait_for("input_required")
    body = {"executionId": eid, "stepIndex": 0, "userInput": {"word": "hey"}}
    sent = time.monotonic()
    resp = b.test_client().post("/api/provide-input", json=body)
    assert resp.status_code == 200 and resp.get_json() == {"success": True}
    started = reader.wait_for("step_start")
    assert started[2] - sent < 1.0  # poll interval 50 ms; BLPOP ~ms
    assert_error(b.test_client().post("/api/provide-input", json=body), 409)
    end = reader.wait_for("end")[1]
    assert end["success"] is True
    reader.join(5)
    assert end["executionLog"][0]["response"]["body"]["args"]["w"] == ["hey"]
    # Finished: a stop through the other worker is a conflict, unknown ids are 404.
    assert_error(b.test_client().post(f"/api/executions/{eid}/stop"), 409)
    assert_error(b.test_client().post("/api/executions/exec-0-none/stop"), 404)


def test_stop_through_the_other_worker(workers, hits):
    a, b = workers
    flow = make_flow(
        hits, node("slow", "/slow?ms=300&hold=slow"), node("next", "/items")
    )
    eid, reader = start(a, flow)
    reader.wait_for("step_start")
    try:  # stopped while the slow step is in flight, however busy the machine
        wait_until(lambda: hits.held("slow"), message="the slow step's request")
        resp = b.test_client().post(f"/api/executions/{eid}/stop")
    finally:
        hits.release("slow")
    assert resp.status_code == 202 and resp.get_json() == {"stopping": True}
    end = reader.wait_for("end")[1]
    reader.join(5)
    assert end["interrupted"] is True and end["notRun"] == ["next"]
    assert hits.paths() == ["/demo/slow"]


def test_stop_and_continue_while_waiting(workers, hits):
    a, b = workers
    flow = make_flow(hits, node("p", "/items"), node("q", "/items"))
    eid, reader = start(a, flow, {"mode": "step"})
    reader.wait_for("paused")
    assert b.test_client().post(f"/api/executions/{eid}/continue").status_code == 200
    reader.wait_for("step")
    wait_until(lambda: _paused_at(reader, 1), message="the second pause")
    sent = time.monotonic()
    assert b.test_client().post(f"/api/executions/{eid}/stop").status_code == 202
    end = reader.wait_for("end")
    assert end[2] - sent < 1.0  # the waiting run is woken, not left to time out
    assert end[1]["interrupted"] is True and end[1]["notRun"] == ["q"]
    reader.join(5)
    assert hits.paths() == ["/demo/items"]


def test_partial_answer_through_the_other_worker_is_400_and_the_prompt_waits(
    workers, hits
):
    a, b = workers
    url = "/echo?u={{ .input.user }}&p={{ .input.pin }}"
    flow = make_flow(hits, node("ask", url, userPrompts={"user": "U?", "pin": "P?"}))
    eid, reader = start(a, flow)
    reader.wait_for("input_required")
    base = {"executionId": eid, "stepIndex": 0}
    partial = {**base, "userInput": {"other": "x"}}
    body = assert_error(b.test_client().post("/api/provide-input", json=partial), 400)
    assert [e["path"] for e in body["errors"]] == ["userInput.user", "userInput.pin"]
    assert "user" in body["error"] and "pin" in body["error"]
    # Not claimed: the prompt still waits, as both workers see it.
    for app in (a, b):
        state = app.extensions["flowrun"].channel.state(eid)
        assert (state["promptStep"], state["promptKeys"]) == (0, ["user", "pin"])
    whole = {**base, "userInput": {"user": "ada", "pin": "42", "other": "x"}}
    resp = b.test_client().post("/api/provide-input", json=whole)
    assert resp.status_code == 200 and resp.get_json() == {"success": True}
    # Answered: another answer is a conflict, whole or not.
    for again in (partial, whole):
        assert_error(b.test_client().post("/api/provide-input", json=again), 409)
    end = reader.wait_for("end")[1]
    reader.join(5)
    assert end["success"] is True
    assert [e[0] for e in reader.events if e[0] != ":"] == [
        "start",
        "input_required",
        "step_start",
        "step",
        "end",
    ]
    args = end["executionLog"][0]["response"]["body"]["args"]
    assert (args["u"], args["p"]) == (["ada"], ["42"])
    state = b.extensions["flowrun"].channel.state(eid)
    assert (state["promptStep"], state["promptKeys"]) == (None, None)


# -- a stop answered by the other worker, at each moment a run can be in ------------
# Worker A's poller is made too slow to matter: the stop recorded by worker B can
# reach A's run in time only through the check the engine makes, synchronously,
# before each step starts (and in each wait). So each case fails every time that
# check is missing, instead of when a random moment happens to hit its window.
MOMENTS = {
    # (the held/prompting/paused step, what ends the wait after the 202)
    "during the first request": (0, "release"),
    "during a middle request": (1, "release"),
    "during the last request": (2, "release"),
    "while a prompt waits, answered after the stop": (1, "answer"),
    "while paused, continued after the stop": (1, "continue"),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_stop_through_the_other_worker_starts_no_later_step(tmp_path, hits, moment):
    index, then = MOMENTS[moment]
    a, b = two_workers(tmp_path)
    a.extensions["flowrun"].channel.interval = 3600  # A learns only by checking
    try:
        nodes = [node(f"s{i}", f"/items?n={i}") for i in range(3)]
        if then == "release":
            nodes[index]["url"] += "&hold=stop"
        elif then == "answer":
            nodes[index]["userPrompts"] = {"word": "Word?"}
        options = {"mode": "step"} if then == "continue" else {}
        eid, reader = start(a, make_flow(hits, *nodes), options)
        try:
            _reach(a, eid, reader, hits, index, then)
            resp = b.test_client().post(f"/api/executions/{eid}/stop")
            assert resp.status_code == 202
            if then == "answer":
                body = {
                    "executionId": eid,
                    "stepIndex": index,
                    "userInput": {"word": "x"},
                }
                a.test_client().post("/api/provide-input", json=body)
            elif then == "continue":
                a.test_client().post(f"/api/executions/{eid}/continue")
        finally:
            hits.release("stop")
        end = reader.wait_for("end")[1]
        reader.join(5)
    finally:
        for app in (a, b):
            app.extensions["flowrun"].close()
    ran = index + 1 if then == "release" else index
    started = [d["id"] for n, d, _ in reader.events if n == "step_start"]
    assert started == [f"s{i}" for i in range(ran)]
    assert hits.paths() == ["/demo/items"] * ran  # nothing started after the 202
    assert end["interrupted"] is True and end["success"] is False
    assert end["notRun"] == [f"s{i}" for i in range(ran, 3)]


def _reach(app, eid, reader, hits, index, then):
    """Bring the run to its moment: step ``index`` held, prompting or paused."""
    if then == "release":
        wait_until(lambda: hits.held("stop"), message=f"s{index}'s request")
    elif then == "answer":
        reader.wait_for("input_required")
    else:
        for step in range(index):
            wait_until(lambda s=step: _paused_at(reader, s), message=f"pause {step}")
            app.test_client().post(f"/api/executions/{eid}/continue")
        wait_until(lambda: _paused_at(reader, index), message=f"pause {index}")


def _paused_at(reader, index) -> bool:
    return any(n == "paused" and d["stepIndex"] == index for n, d, _ in reader.events)
