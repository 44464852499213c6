"""Server CPU per step of the SSE path against the engine alone (target ≤ 0.4 ms).

Starts the fast target (``bench/target.py``) and real ``gunicorn -c gunicorn.conf.py
app:app`` with ONE gevent worker, each in its own process, then posts the 100-step
chain of ``engine_overhead.py`` (login → token → 98 checked item fetches) to
``/api/execute-stream`` ``--runs`` times per round, one after the other, reading
every SSE frame until ``end``. The worker's CPU is read from ``/proc/<pid>/stat``
(utime + stime, 10 ms ticks) and from ``/proc/<pid>/task/*/schedstat`` (ns) before
and after each round; per step = delta / (runs × steps).

Baselines, the same chain run by the engine directly (``Run(...).events()``):

- ``engine``: in this process (plain CPython, no gevent);
- ``engine+gevent``: in a child process that calls ``gevent.monkey.patch_all()``
  first, as the gevent worker does; the SSE path's own cost is the SSE figure minus
  this one (SSE framing, queue hand-off, history writes, Flask/gunicorn request).

    .venv/bin/python bench/sse_overhead.py
    .venv/bin/python bench/sse_overhead.py --rounds 5 --runs 10 --steps 100
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import _common  # noqa: E402
from engine_overhead import make_flow, run_engine, start_target  # noqa: E402

_GEVENT_ENGINE = """
from gevent import monkey
monkey.patch_all()
import json, statistics, sys, time
sys.path[:0] = [{root!r}, {bench!r}]
from engine_overhead import make_flow, run_engine
flow = make_flow({base!r}, {steps})
for _ in range(2):
    run_engine(flow, False)
times = []
for _ in range({rounds}):
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range({runs}):
        run_engine(flow, False)
    times.append((time.perf_counter() - wall, time.process_time() - cpu))
print(json.dumps(times))
"""


def task_cpu_ns(pid: int) -> int:
    """On-CPU time of all threads of ``pid`` in ns (``schedstat``)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def post_stream(session: requests.Session, url: str, flow: dict) -> dict:
    """POST a flow to /api/execute-stream; read frames to ``end``; return its data."""
    resp = session.post(
        url,
        data=json.dumps({"config": flow}),
        headers={"Content-Type": "application/json"},
        stream=True,
        timeout=(10, 120),
    )
    if resp.status_code != 200:
        raise SystemExit(f"execute-stream answered {resp.status_code}: {resp.text}")
    buf, at = bytearray(), -1
    try:
        for chunk in resp.iter_content(65536):
            if at < 0:
                start = max(0, len(buf) - 16)
                buf += chunk
                at = buf.find(b"event: end\n", start)
            else:
                buf += chunk
            if at >= 0 and buf.endswith(b"\n\n"):
                tail = bytes(buf[at:]).split(b"\n")
                data = next(x for x in tail if x.startswith(b"data: "))
                return json.loads(data[6:])
    finally:
        resp.close()
    raise SystemExit("stream ended without an 'end' event")


def engine_here(flow: dict, rounds: int, runs: int) -> list[tuple[float, float]]:
    for _ in range(2):
        run_engine(flow, False)
    times = []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(runs):
            run_engine(flow, False)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def engine_gevent(base: str, steps: int, rounds: int, runs: int):
    code = _GEVENT_ENGINE.format(
        root=str(HERE.parent),
        bench=str(HERE),
        base=base,
        steps=steps,
        rounds=rounds,
        runs=runs,
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        raise SystemExit(f"gevent engine child failed:\n{out.stderr[-2000:]}")
    return [tuple(x) for x in json.loads(out.stdout.strip().splitlines()[-1])]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps in the chain")
    parser.add_argument("--runs", type=int, default=10, help="flows per round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds")
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="also record the worker with py-spy (collapsed stacks) during the rounds;"
        " sampling skews the CPU figures a little",
    )
    args = parser.parse_args(argv)
    if args.steps < 3 or args.runs < 1 or args.rounds < 1:
        parser.error("--steps must be at least 3; --runs and --rounds at least 1")

    target, base = start_target("asyncio")
    server = log = None
    workdir = Path(tempfile.mkdtemp(prefix="flowrun-sse-bench-"))
    try:
        port = _common.free_port()
        log = open(workdir / "gunicorn.log", "wb")
        server = _common.start_server(port, workdir, 1, log=log)
        (worker,) = _common.children(server.pid)
        url = f"http://127.0.0.1:{port}/api/execute-stream"
        flow = make_flow(base, args.steps)
        n = args.runs * args.steps

        sse, spy = [], None
        with requests.Session() as session:
            for _ in range(3):  # warm-up: imports, connection pools, SQLite
                post_stream(session, url, flow)
            if args.py_spy:
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("py-spy")),
                        "record",
                        "--pid",
                        str(worker),
                        "--format",
                        "raw",
                        "--rate",
                        "250",
                        "--output",
                        args.py_spy,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1)
            for _ in range(args.rounds):
                ticks, ns = _common.cpu_seconds(worker), task_cpu_ns(worker)
                wall = time.perf_counter()
                for _ in range(args.runs):
                    end = post_stream(session, url, flow)
                    if not end.get("success"):
                        raise SystemExit(f"flow failed over SSE: {end}")
                wall = time.perf_counter() - wall
                sse.append(
                    (
                        wall,
                        _common.cpu_seconds(worker) - ticks,
                        (task_cpu_ns(worker) - ns) / 1e9,
                    )
                )
            rss = _common.rss_bytes(worker)
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
                spy.wait(30)
        here = engine_here(flow, args.rounds, args.runs)
        under_gevent = engine_gevent(base, args.steps, args.rounds, args.runs)
    finally:
        _common.stop(server)
        target.terminate()
        target.wait(10)
        if log is not None:
            log.close()
        shutil.rmtree(workdir, ignore_errors=True)

    def med(rows, i):
        return statistics.median(r[i] for r in rows) * 1000 / n

    print(
        f"steps={args.steps} runs/round={args.runs} rounds={args.rounds}"
        f" workers=1 (gevent) python={sys.version.split()[0]} cpus={os.cpu_count()}"
    )
    print(f"{'':34}{'wall ms/step':>13}{'CPU ms/step':>13}")
    print(f"{'engine (this process)':34}{med(here, 0):13.3f}{med(here, 1):13.3f}")
    print(
        f"{'engine + gevent patch (child)':34}"
        f"{med(under_gevent, 0):13.3f}{med(under_gevent, 1):13.3f}"
    )
    print(
        f"{'SSE path: gunicorn worker':34}{med(sse, 0):13.3f}{med(sse, 2):13.3f}"
        f"   (stat ticks: {med(sse, 1):.3f})"
    )
    overhead = med(sse, 2) - med(under_gevent, 1)
    print(
        f"SSE path over engine+gevent: {overhead:+.3f} CPU ms/step;"
        f" worker RSS after: {_common.mib(rss)}"
    )
    print(
        "target: server CPU per step ≤ 0.75 × FlowSphere's, side by side:"
        " bench/vs_flowsphere.py"
    )


if __name__ == "__main__":
    main()
