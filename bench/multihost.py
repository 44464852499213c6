"""One host against two hosts sharing PostgreSQL and Redis, and the control channel
across hosts.

Starts, all on 127.0.0.1 and all ended at exit: the fast target
(bench/target_server.py), a PostgreSQL and a Redis server of their own
(tests/services.py: temporary directories, free ports), and flowrun hosts, each a
``gunicorn -c gunicorn.conf.py`` with its own data directory and
``FLOWRUN_DATABASE_URL`` (and ``FLOWRUN_REDIS_URL``) set.

1. **Burst**: the 1,000-flow burst of ``concurrent_flows.py`` (its ``run_batch``, and
   the same load generator, which hands the flows to the hosts in turn as a load
   balancer would) on one host, then on two. The box has 2 cores for everything:
   each host is pinned to a core of its own (``taskset``), so "two hosts" has twice
   the server CPU of "one host", as two machines would; the target, the load
   generator, PostgreSQL and Redis share both cores. Printed: wall time, flows and
   steps per second, completion and first-event p50/p99, server CPU per step.
2. **Control latency across hosts**, with the control channel in PostgreSQL
   (LISTEN/NOTIFY) and in Redis: a run on host A waits for a prompt; host B is sent
   the answer (time until A's stream shows the next ``step_start``), or a stop (time
   until A's stream ends). ``--trials`` of each, one at a time, p50/p99/max.

    .venv/bin/python bench/multihost.py                     # both parts
    .venv/bin/python bench/multihost.py --n 1000 --repeat 3
    .venv/bin/python bench/multihost.py --skip-burst --trials 200
    .venv/bin/python bench/multihost.py --skip-latency --workers 2  # 2 per host
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c  # noqa: E402
import concurrent_flows as cf  # noqa: E402

from tests.services import Postgres, Redis  # noqa: E402


class Hosts:
    """Several gunicorn masters seen as one server by ``run_batch``."""

    def __init__(self, procs):
        self.probes = [c.ServerProbe(p.pid) for p in procs]

    def workers(self) -> list[int]:
        return [w for p in self.probes for w in p.workers()]

    def cpu(self) -> float:
        return sum(p.cpu() for p in self.probes)

    def rss(self) -> int:
        return sum(p.rss() for p in self.probes)

    def per_worker(self) -> dict:
        out = {}
        for p in self.probes:
            out.update(p.per_worker())
        return out


def pin(proc, core: int) -> None:
    """Pin a gunicorn master and its workers (and their threads) to one core."""
    for pid in [proc.pid, *c.children(proc.pid)]:
        subprocess.run(
            ["taskset", "-a", "-c", "-p", str(core), str(pid)],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def start_hosts(tmp: Path, count: int, workers: int, env: dict, cores, logs):
    procs = []
    for i in range(count):
        port = c.free_port()
        work = tmp / f"host{i}-{port}"
        (work / "flows").mkdir(parents=True)
        log = open(logs / f"host{i}-{port}.log", "wb")
        proc = c.start_server(port, work, workers, env, log=log)
        if cores:
            pin(proc, cores[i % len(cores)])
        procs.append((proc, f"http://127.0.0.1:{port}", log))
    return procs


def stop_hosts(procs) -> None:
    for proc, _url, log in procs:
        c.stop(proc)
        log.close()


# -- control latency across hosts


def _post(url: str, path: str, body=None) -> tuple[int, float]:
    host, port = url.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        conn.request("POST", path, data, headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.perf_counter()
    finally:
        conn.close()


class Stream:
    """One SSE stream read line by line (the latency probe's; no load)."""

    def __init__(self, url: str, flow: dict):
        host, port = url.rsplit("/", 1)[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.conn.request(
            "POST",
            "/api/execute-stream",
            json.dumps({"config": flow}),
            {"Content-Type": "application/json"},
        )
        self.resp = self.conn.getresponse()
        self.id = self.resp.getheader("X-Execution-Id")

    def until(self, wanted: str) -> float | None:
        """Read until event ``wanted``; when its line arrived (perf_counter)."""
        while True:
            line = self.resp.readline()
            if not line:
                return None
            if line.decode().rstrip("\n") == f"event: {wanted}":
                return time.perf_counter()

    def close(self) -> None:
        self.conn.close()


def latency(hosts, target_url: str, trials: int) -> dict[str, list[float]]:
    (_, a, _), (_, b, _) = hosts[0], hosts[1]
    flow = {
        "name": "latency",
        "defaults": {"baseUrl": target_url},
        "nodes": [
            {"id": "ask", "name": "ask", "method": "GET", "url": "/step?ms=0",
             "userPrompts": {"code": "Code?"}},
        ],
    }  # fmt: skip
    out: dict[str, list[float]] = {"answer": [], "stop": []}
    for trial in range(trials):
        for kind in ("answer", "stop"):
            stream = Stream(a, flow)
            try:
                stream.until("input_required")
                time.sleep(0.02)  # the prompt is on record for every host
                sent = time.perf_counter()
                if kind == "answer":
                    body = {
                        "executionId": stream.id,
                        "stepIndex": 0,
                        "userInput": {"code": str(trial)},
                    }
                    status, _ = _post(b, "/api/provide-input", body)
                    seen = stream.until("step_start")
                else:
                    status, _ = _post(b, f"/api/executions/{stream.id}/stop")
                    seen = stream.until("end")
                if status not in (200, 202) or seen is None:
                    raise RuntimeError(f"{kind}: status {status}, no event")
                out[kind].append(seen - sent)
                stream.until("end")
            finally:
                stream.close()
    return out


def delivered(url: str) -> dict[str, str]:
    """Host A's own view (``flowrun_control_latency_seconds``): from a control
    recorded by host B to its delivery to the run, p50 and p99 as bucket bounds."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    buckets: dict[str, list[tuple[float, float]]] = {}
    for m in re.finditer(
        r'^flowrun_control_latency_seconds_bucket\{kind="(\w+)",le="([^"]+)"\} (\S+)$',
        text,
        re.M,
    ):
        buckets.setdefault(m[1], []).append((float(m[2]), float(m[3])))
    out = {}
    for kind, rows in buckets.items():
        rows.sort()
        total = rows[-1][1]
        if not total:
            continue

        def bound(q, rows=rows, total=total):
            le = next(le for le, n in rows if n >= q * total)
            return "> 2.5 s" if le == float("inf") else f"≤ {le * 1000:g} ms"

        out[kind] = f"p50 {bound(0.5)}, p99 {bound(0.99)} ({total:.0f})"
    return out


def fmt_latency(values: list[float]) -> str:
    return (
        f"p50 {c.fmt_ms(c.pct(values, 50))}  p99 {c.fmt_ms(c.pct(values, 99))}  "
        f"max {c.fmt_ms(max(values))}  ({len(values)} trials)"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--n", type=int, default=1000, help="flows in the burst")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--step-ms", type=int, default=200)
    p.add_argument("--workers", type=int, default=1, help="gunicorn workers per host")
    p.add_argument("--repeat", type=int, default=1, help="bursts per setup")
    p.add_argument("--trials", type=int, default=50, help="latency trials per kind")
    p.add_argument("--no-pin", action="store_true", help="do not pin hosts to cores")
    p.add_argument("--skip-burst", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--deadline", type=float, default=180.0, help="seconds per batch")
    p.add_argument("--settle", type=float, default=0.5)
    p.add_argument("--keep-logs", metavar="DIR", help="write server logs here")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    args = p.parse_args(argv)
    # what run_batch reads from concurrent_flows' own options
    args.distinct, args.mock, args.gunicorn_floor, args.profile = (
        False,
        False,
        None,
        None,
    )
    limit = c.raise_nofile()
    cores = None if args.no_pin else [0, 1]
    results: dict = {"burst": [], "latency": {}}
    services, procs = [], []
    with tempfile.TemporaryDirectory(prefix="flowrun-multihost-") as tmp:
        tmp = Path(tmp)
        logs = Path(args.keep_logs) if args.keep_logs else tmp
        logs.mkdir(parents=True, exist_ok=True)
        target_log = open(logs / "target.log", "wb")
        try:
            tport = c.free_port()
            procs.append(c.start_target(tport, log=target_log))
            target_url = f"http://127.0.0.1:{tport}"
            pg, redis = Postgres(), Redis()
            services += [pg, redis]
            print(
                f"target {target_url}; PostgreSQL {pg.port}, Redis {redis.port}; "
                f"ulimit -n {limit}; hosts pinned to cores: {cores or 'no'}"
            )
            base_env = {
                "FLOWRUN_MAX_EXECUTIONS": str(max(10_000, args.n * 2)),
                "FLOWRUN_HISTORY_LIMIT": str(max(1000, args.n * 2)),
            }
            if not args.skip_burst:
                flow_file = tmp / "flow.json"
                flow_file.write_text(
                    json.dumps(
                        {
                            "config": c.step_flow(target_url, args.steps, args.step_ms),
                            "options": {},
                        }
                    )
                )
                for count in (1, 2):
                    url = pg.fresh_database(f"burst{count}")
                    env = {
                        **base_env,
                        "FLOWRUN_DATABASE_URL": url,
                        "FLOWRUN_REDIS_URL": redis.url,
                    }
                    hosts = start_hosts(tmp, count, args.workers, env, cores, logs)
                    try:
                        probe = Hosts([h[0] for h in hosts])
                        urls = ",".join(h[1] for h in hosts)
                        print(f"{count} host(s) × {args.workers} worker(s): {urls}")
                        cf.run_batch(args, urls, target_url, probe, flow_file, 8)
                        for rep in range(args.repeat):
                            r = cf.run_batch(
                                args, urls, target_url, probe, flow_file, args.n
                            )
                            r.update(hosts=count, repeat=rep)
                            steps = r["target_steps_served"]
                            r["flows_per_s"] = r["ok"] / r["wall_s"]
                            r["steps_per_s"] = steps / r["wall_s"]
                            results["burst"].append(r)
                            cf.print_row(r)
                            print(
                                f"           throughput {r['flows_per_s']:.0f} flows/s"
                                f", {r['steps_per_s']:.0f} steps/s"
                            )
                            time.sleep(1.0)
                    finally:
                        stop_hosts(hosts)
                ones = [r for r in results["burst"] if r["hosts"] == 1]
                twos = [r for r in results["burst"] if r["hosts"] == 2]
                if ones and twos:
                    best1 = max(r["steps_per_s"] for r in ones)
                    best2 = max(r["steps_per_s"] for r in twos)
                    print(
                        f"two hosts / one host, steps per second: {best2 / best1:.2f}×"
                        f" (best of {args.repeat} each)"
                    )
            if not args.skip_latency:
                for channel in ("postgres", "redis"):
                    url = pg.fresh_database(f"latency_{channel}")
                    env = {**base_env, "FLOWRUN_DATABASE_URL": url}
                    if channel == "redis":
                        env["FLOWRUN_REDIS_URL"] = redis.url
                    hosts = start_hosts(tmp, 2, args.workers, env, cores, logs)
                    try:
                        lat = latency(hosts, target_url, args.trials)
                        seen_by_a = delivered(hosts[0][1])
                    finally:
                        stop_hosts(hosts)
                    results["latency"][channel] = lat
                    print(f"control channel {channel}, host B → run on host A:")
                    print(
                        f"  answer posted → step starts: {fmt_latency(lat['answer'])}"
                    )
                    print(f"  stop posted → run ends:      {fmt_latency(lat['stop'])}")
                    for kind, figures in sorted(seen_by_a.items()):
                        print(f"  recorded on B → delivered on A ({kind}): {figures}")
        finally:
            for proc in procs:
                c.stop(proc)
            for service in services:
                service.stop()
            target_log.close()
    if args.json:
        Path(args.json).write_text(c.dump({"args": vars(args), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
