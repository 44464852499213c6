"""A worker under slow checks and huge jq programs: /api/health latency and RSS.

Starts ``gunicorn -c gunicorn.conf.py app:app`` with ONE gevent worker, then:

1. polls ``/api/health`` (a 2 s timeout each, every 20 ms) for ``--idle`` seconds
   with nothing else running: the latency of an idle worker on this machine;
2. runs a flow whose steps would each hold the worker (40 backtracking
   ``matches``, 8 backtracking schema patterns, ``uniqueItems`` on 3,000 objects,
   40 backtracking conditions; its target is the server's own ``/demo/echo``)
   while polling the same way, and prints each step's outcome and time;
3. sends ``--programs`` distinct jq programs that build a 400 MB constant
   (``"x1" * 200000000``) to ``/api/validate`` and prints the worker's RSS
   before and after.

    .venv/bin/python bench/check_limits.py
    .venv/bin/python bench/check_limits.py --repo /path/to/other/checkout

Answers that did not come within the timeout are counted as missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

SLOW = "^(a|aa)+$"
SLOW_TEXT = "a" * 40 + "b"  # SLOW backtracks for minutes on it


def slow_flow(base: str) -> dict:
    patterns = [
        {"schema": {"properties": {"json": {"properties": {"s": {"pattern": p}}}}}}
        for p in (SLOW + "|" * i for i in range(8))
    ]
    unique = {"properties": {"json": {"properties": {"o": {"uniqueItems": True}}}}}
    nodes = [
        ("matches", {"validations": [{"jsonpath": ".json.s", "matches": SLOW}] * 40}),
        ("patterns", {"validations": patterns}),
        (
            "unique",
            {
                "body": {"s": SLOW_TEXT, "o": [{"i": i} for i in range(3000)]},
                "validations": [{"schema": unique}],
            },
        ),
        ("conditions", {"conditions": [{"variable": "s", "matches": SLOW}] * 40}),
    ]
    return {
        "name": "slow checks",
        "variables": {"s": SLOW_TEXT},
        "nodes": [
            {
                "id": nid,
                "name": nid,
                "method": "POST",
                "url": f"{base}/demo/echo",
                "body": {"s": SLOW_TEXT},
                **extra,
            }
            for nid, extra in nodes
        ],
    }


class Poller(threading.Thread):
    """Polls /api/health until stopped; keeps each latency, counts misses."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.missed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                began = time.perf_counter()
                try:
                    session.get(self.url, timeout=2).raise_for_status()
                    self.latencies.append(time.perf_counter() - began)
                except requests.RequestException:
                    self.missed += 1
                time.sleep(0.02)

    def report(self, what: str) -> None:
        lat = sorted(self.latencies) or [float("nan")]
        print(
            f"{what}: {len(self.latencies)} health answers, {self.missed} missed; "
            f"p50 {statistics.median(lat) * 1000:.0f} ms, "
            f"p99 {_common.pct(lat, 99) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
        )


def run_stream(url: str, flow: dict) -> list[tuple[dict, float]]:
    """POST the flow to /api/execute-stream; the step events and their times."""
    steps, began = [], time.perf_counter()
    body = json.dumps({"config": flow, "options": {"continueOnFailure": True}})
    with requests.post(
        url + "/api/execute-stream",
        data=body,
        headers={"Content-Type": "application/json"},
        stream=True,
        timeout=600,
    ) as resp:
        resp.raise_for_status()
        name = None
        for line in resp.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "step":
                steps.append((json.loads(line[6:]), time.perf_counter() - began))
            elif line.startswith("data: ") and name == "end":
                break
    return steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle first")
    parser.add_argument("--programs", type=int, default=10)
    parser.add_argument("--repo", help="serve this checkout instead of this one")
    args = parser.parse_args(argv)
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    workdir = Path(tempfile.mkdtemp(prefix="flowrun-limits-bench-"))
    server = None
    try:
        port = _common.free_port()
        url = f"http://127.0.0.1:{port}"
        with open(workdir / "gunicorn.log", "wb") as log:
            server = _common.start_server(port, workdir, 1, log=log, repo=args.repo)

            poller = Poller(url + "/api/health")
            poller.start()
            time.sleep(args.idle)
            poller.stop.set()
            poller.join()
            poller.report("idle")

            poller = Poller(url + "/api/health")
            poller.start()
            began = time.perf_counter()
            try:
                steps = run_stream(url, slow_flow(url))
            except requests.RequestException as exc:
                steps = []
                print(f"the stream failed: {exc!r}")
            took = time.perf_counter() - began
            poller.stop.set()
            poller.join()
            for step, at in steps:
                error = (step["error"] or "")[:110]
                print(f"  {step['id']:10s} {step['status']:9s} at {at:5.1f} s  {error}")
            poller.report(f"slow checks ({took:.1f} s)")

            if len(steps) < 4:
                print(f"  the stream ended after {len(steps)} of 4 steps")
            # a worker gunicorn killed meanwhile has been replaced
            _common.wait_http(url + "/api/health", timeout=60)
            (worker,) = _common.children(server.pid)
            before = _common.rss_bytes(worker)
            for i in range(args.programs):
                program = f'"x1" * {200_000_000 + i} | length'
                node = {
                    "id": "a",
                    "name": "A",
                    "method": "GET",
                    "url": url + "/demo/items",
                    "validations": [{"jq": program, "greaterThan": 0}],
                }
                resp = requests.post(
                    url + "/api/validate",
                    json={"config": {"nodes": [node]}},
                    timeout=120,
                )
                if resp.status_code != 200:
                    print(f"  /api/validate: {resp.status_code} {resp.text[:200]}")
            after = _common.rss_bytes(worker)
            print(
                f"worker RSS before {args.programs} huge jq programs "
                f"{_common.mib(before)}, after {_common.mib(after)} "
                f"({(after - before) / 2**20:+.1f} MiB)"
            )
    finally:
        _common.stop(server)
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
