"""N concurrent streamed flows against real gunicorn.

Starts, all on 127.0.0.1 and all ended at exit:
  - the fast target (bench/target_server.py, one gevent process, /step?ms=200);
  - the flowrun server: ``gunicorn -c gunicorn.conf.py --workers W app:app`` with
    PORT, FLOWRUN_DATA_DIR and FLOWRUN_FLOWS_DIR in a temporary directory;
  - for each N, a load generator in a separate process (bench/_loadgen.py: gevent
    greenlets, each POSTing /api/execute-stream and reading the SSE until
    ``event: end``), all N streams started at once.

For each worker count and N it prints: completion time p50/p99 (POST → ``end``), time to
first event p50/p99 (POST → first ``event:`` frame), wall time of the batch, successes
and failures, server RSS (summed over the gunicorn workers, peak while running) and
server CPU ms per executed step (utime+stime of the workers from /proc, before/after
the batch). The box has 2 cores shared by target, load generator and server, so
the CPU per step and the ratios are the figures to compare, not absolute times.

The wall-time and CPU targets are ratios against FlowSphere run side
by side in the same session: ``bench/vs_flowsphere.py`` does that, with this
script's batch (``run_batch``) and the same load generator. This script only checks
the targets that stand alone, for N = 1,000 flows of 10 × 200 ms steps: time to first
event p99 < 250 ms, every flow succeeds.

    .venv/bin/python bench/concurrent_flows.py                  # N=50,200,1000; W=1,2
    .venv/bin/python bench/concurrent_flows.py --quick          # N=50,200; W=1
    .venv/bin/python bench/concurrent_flows.py --n 1000 --workers 2 --repeat 3
    .venv/bin/python bench/concurrent_flows.py --floor          # + bare requests floor
    .venv/bin/python bench/concurrent_flows.py --mock           # harness floor
    .venv/bin/python bench/concurrent_flows.py --gunicorn-floor # gunicorn's floor
    .venv/bin/python bench/concurrent_flows.py --n 500 --steps 1   # fixed cost per flow
    .venv/bin/python bench/concurrent_flows.py --n 1000 --workers 1 --profile /tmp/prof
    .venv/bin/python bench/concurrent_flows.py --repo /tmp/patched-copy   # A/B a copy
    .venv/bin/python bench/concurrent_flows.py --n 1000 --workers 2 --distinct

``--distinct`` gives every flow its own body (a numbered name), so the server
checks each one: by default all N post the same flow, which a worker checks once.

``--floor`` also runs each N as bare ``requests.Session`` greenlets (one process,
no server, no SSE): the CPU per step of the requests alone. ``--mock`` replaces
flowrun with target_server.py's stand-in SSE endpoint: the floor of the harness
(load generator, loopback). ``--gunicorn-floor [KIND]`` serves a stand-in from
``bench/standin_app.py`` with the same ``gunicorn -c gunicorn.conf.py``: ``sleep``
streams the same events without doing anything (gunicorn's gevent worker alone),
``requests`` also makes each step's GET with a ``requests.Session`` per stream
(gunicorn + requests, nothing of flowrun), ``flask`` does that behind a Flask route.
``--profile DIR`` records each worker with py-spy
(``pip install py-spy``; summarise with ``python bench/_common.py FILE``); under
gevent its samples charge hub time to the greenlet that last switched, so confirm a
hot spot with an A/B (``--repo``) before trusting its share. Each run prints how
many cores other processes took meanwhile: compare latencies only between runs
where that is small.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

# --gunicorn-floor KIND: the stand-in app served instead of flowrun
FLOORS = {
    "sleep": "standin_app:app",
    "requests": "standin_app:requests_app",
    "flask": "standin_app:flask_app",
    "client": "standin_app:client_app",
}


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class RssSampler(threading.Thread):
    """Peak of the workers' summed RSS, sampled every ``every`` seconds."""

    def __init__(self, probe: c.ServerProbe, every: float = 0.2):
        super().__init__(daemon=True)
        self.probe, self.every = probe, every
        self.peak = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, self.probe.rss())
            self.done.wait(self.every)

    def stop(self) -> int:
        self.done.set()
        self.join(5)
        self.peak = max(self.peak, self.probe.rss())
        return self.peak


def start_profilers(probe: c.ServerProbe, out_dir: Path, tag: str, idle=False) -> list:
    """py-spy (if installed in the venv) on each worker, raw collapsed stacks."""
    pyspy = Path(c.PYTHON).parent / "py-spy"
    if not pyspy.exists():
        print("  (no py-spy in the venv: pip install py-spy)", file=sys.stderr)
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for pid in probe.workers():
        out = out_dir / f"{tag}-w{pid}.txt"
        cmd = [str(pyspy), "record", "-p", str(pid), "-r", "200", "-f", "raw"]
        cmd += ["-o", str(out), "-d", "600", "--nonblocking"]
        if idle:
            cmd.append("--idle")  # also where the worker waits (blocking calls)
        procs.append((c.start(cmd, stdout=subprocess.DEVNULL), out))
    time.sleep(0.5)  # attached
    return procs


def stop_profilers(procs) -> list[Path]:
    import signal

    outs = []
    for proc, _out in procs:
        proc.send_signal(signal.SIGINT)
    for proc, out in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            c.stop(proc)
        outs.append(out)
    return outs


def _histogram(values, edges=(0.1, 0.25, 0.5, 1, 2, 4, 8)) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        key = next((f"<{e}" for e in edges if v < e), f">={edges[-1]}")
        out[key] = out.get(key, 0) + 1
    return {k: out[k] for k in sorted(out, key=lambda k: float(k.strip("<>=")))}


def run_batch(args, base_url, target_url, probe, flow_file, n, profile_tag=None):
    """One batch of n concurrent flows; returns the measured figures."""
    get_json(f"{target_url}/reset")
    t_stats0 = get_json(f"{target_url}/stats")
    cmd = [c.PYTHON, str(c.BENCH / "_loadgen.py"), "flows", "--url", base_url]
    cmd += ["--flow-file", str(flow_file), "--n", str(n), "--wait-go"]
    if args.distinct:
        cmd.append("--distinct")
    cmd += ["--deadline", str(args.deadline), "--timeout", str(args.deadline)]
    lg = c.start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    profilers = []
    try:
        ready = json.loads(lg.stdout.readline() or b"{}")
        if not ready.get("ready"):
            raise RuntimeError("load generator did not start")
        if profile_tag:
            profilers = start_profilers(
                probe, Path(args.profile), profile_tag, args.profile_idle
            )
        sampler = RssSampler(probe)
        rss0 = probe.rss()
        cpu0 = probe.cpu()
        per0 = probe.per_worker()
        box0 = c.box_busy_seconds()
        sampler.start()
        lg.stdin.write(b"go\n")
        lg.stdin.flush()
        line = lg.stdout.readline()
        cpu_end = probe.cpu()
        box1 = c.box_busy_seconds()
        time.sleep(args.settle)
        cpu1 = probe.cpu()
        per1 = probe.per_worker()
        peak = sampler.stop()
        rss1 = probe.rss()
        lg.wait(timeout=30)
        lg_cpu = c.cpu_seconds(lg.pid)  # 0 once reaped; loadgen reports its own
    finally:
        c.stop(lg)
        outs = stop_profilers(profilers) if profilers else []
    result = json.loads(line)
    recs = result["records"]
    t_stats1 = get_json(f"{target_url}/stats")
    ok = [
        r
        for r in recs
        if r["success"] is True and r["stepsExecuted"] == args.steps and not r["error"]
    ]
    errors: dict[str, int] = {}
    for r in recs:
        if r not in ok:
            key = (r["error"] or f"success={r['success']} steps={r['stepsExecuted']}")[
                :160
            ]
            errors[key] = errors.get(key, 0) + 1
    steps_done = sum(r["steps"] for r in recs)
    target_steps = t_stats1["steps"] - t_stats0["steps"]
    if args.mock or args.gunicorn_floor == "sleep":  # these never call the target
        target_steps = steps_done
    ends = [r["end"] for r in ok]
    firsts = [r["first"] for r in recs if r["first"] is not None]
    arrivals = [r["arrival"] for r in recs if r.get("arrival") is not None]
    connects = [r["connected"] - r["t0"] for r in recs if r["connected"] is not None]
    heads = [r["headers"] for r in recs if r["headers"] is not None]
    by_worker: dict[str, int] = {}
    ttfe_by_worker: dict[str, list] = {}
    for r in recs:
        w = str(r.get("worker"))
        by_worker[w] = by_worker.get(w, 0) + 1
        if r["first"] is not None:
            ttfe_by_worker.setdefault(w, []).append(r["first"])
    cpu_s = cpu1 - cpu0
    target_cpu = t_stats1["cpu_s"] - t_stats0["cpu_s"]
    lg_cpu = result.get("cpu_s", lg_cpu)
    # what the rest of the machine (other users of this box) took meanwhile
    others = (box1 - box0) - (cpu_end - cpu0) - target_cpu - lg_cpu
    out = {
        "n": n,
        "workers": len(probe.workers()),
        "steps_per_flow": args.steps,
        "step_ms": args.step_ms,
        "ok": len(ok),
        "failed": n - len(ok),
        "errors": errors,
        "wall_s": result["wall"],
        "completion_p50_s": c.pct(ends, 50),
        "completion_p99_s": c.pct(ends, 99),
        "completion_max_s": max(ends) if ends else None,
        "ttfe_p50_s": c.pct(firsts, 50),
        "ttfe_p99_s": c.pct(firsts, 99),
        "ttfe_max_s": max(firsts) if firsts else None,
        "ttfe_arrival_p50_s": c.pct(arrivals, 50),
        "ttfe_arrival_p99_s": c.pct(arrivals, 99),
        "connect_p50_s": c.pct(connects, 50),
        "connect_p99_s": c.pct(connects, 99),
        "headers_p50_s": c.pct(heads, 50),
        "headers_p99_s": c.pct(heads, 99),
        "streams_per_worker": by_worker,
        "ttfe_p50_p99_by_worker": {
            w: [c.pct(v, 50), c.pct(v, 99)] for w, v in ttfe_by_worker.items()
        },
        "ttfe_histogram_s": _histogram(firsts),
        "step_events": steps_done,
        "target_steps_served": target_steps,
        "server_cpu_s": cpu_s,
        "server_cpu_s_until_last_end": cpu_end - cpu0,
        "server_cpu_ms_per_step": 1000 * cpu_s / target_steps if target_steps else None,
        "server_cpu_per_worker_s": {
            str(p): round(per1[p]["cpu_s"] - per0.get(p, {"cpu_s": 0})["cpu_s"], 3)
            for p in per1
        },
        "server_rss_before": rss0,
        "server_rss_peak": peak,
        "server_rss_after": rss1,
        "target_cpu_ms_per_step": (
            1000 * (t_stats1["cpu_s"] - t_stats0["cpu_s"]) / target_steps
            if target_steps
            else None
        ),
        "target_peak_concurrency": t_stats1["peak_active"],
        "loadgen_cpu_s": lg_cpu,
        "box_busy_cores": (box1 - box0) / result["wall"],
        "other_processes_cores": max(0.0, others) / result["wall"],
        "profiles": [str(o) for o in outs],
    }
    return out


def run_floor(args, target_url, flow_file, n) -> dict:
    """The same steps without flowrun: bare requests.Session per flow (gevent)."""
    get_json(f"{target_url}/reset")
    t0 = get_json(f"{target_url}/stats")
    cmd = [
        c.PYTHON,
        str(c.BENCH / "_loadgen.py"),
        "bare",
        "--url",
        "http://127.0.0.1:1",
    ]
    cmd += ["--flow-file", str(flow_file), "--n", str(n)]
    cmd += ["--deadline", str(args.deadline), "--timeout", str(args.deadline)]
    out = subprocess.run(cmd, capture_output=True, timeout=args.deadline + 60)
    res = json.loads(out.stdout.decode().splitlines()[-1])
    t1 = get_json(f"{target_url}/stats")
    steps = res["steps"] or 1
    return {
        "n": n,
        "wall_s": res["wall"],
        "completion_p50_s": c.pct(res["ends"], 50),
        "completion_p99_s": c.pct(res["ends"], 99),
        "failed": res["failed"],
        "client_cpu_ms_per_step": 1000 * res["cpu_s"] / steps,
        "target_cpu_ms_per_step": 1000 * (t1["cpu_s"] - t0["cpu_s"]) / steps,
    }


def print_row(r: dict) -> None:
    cpu = r["server_cpu_ms_per_step"]
    print(
        f"  W={r['workers']} N={r['n']:>5}: ok {r['ok']}/{r['n']}  "
        f"done p50 {c.fmt_s(r['completion_p50_s'])} "
        f"p99 {c.fmt_s(r['completion_p99_s'])}"
        f"  TTFE p50 {c.fmt_ms(r['ttfe_p50_s'])} p99 {c.fmt_ms(r['ttfe_p99_s'])}"
        f"  wall {c.fmt_s(r['wall_s'])}"
    )
    print(
        f"           server CPU {r['server_cpu_s']:.2f} s = "
        f"{'-' if cpu is None else f'{cpu:.3f}'} ms/step "
        f"({r['target_steps_served']} steps served; per worker "
        f"{r['server_cpu_per_worker_s']})  RSS {c.mib(r['server_rss_before'])} → "
        f"peak {c.mib(r['server_rss_peak'])}; target "
        f"{r['target_cpu_ms_per_step'] or 0:.3f} ms/step, peak "
        f"{r['target_peak_concurrency']} in flight; loadgen CPU "
        f"{r['loadgen_cpu_s']:.2f} s"
    )
    print(
        f"           TTFE parts: TCP connect p50 {c.fmt_ms(r['connect_p50_s'])} p99 "
        f"{c.fmt_ms(r['connect_p99_s'])}; response headers p50 "
        f"{c.fmt_ms(r['headers_p50_s'])} p99 {c.fmt_ms(r['headers_p99_s'])}; "
        f"streams per worker {r['streams_per_worker']}"
    )
    if r.get("ttfe_arrival_p99_s") is not None:
        print(
            f"           TTFE by the kernel's receive time (not when this process "
            f"read the event): p50 {c.fmt_ms(r['ttfe_arrival_p50_s'])} p99 "
            f"{c.fmt_ms(r['ttfe_arrival_p99_s'])}"
        )
    if len(r["ttfe_p50_p99_by_worker"]) > 1:
        parts = ", ".join(
            f"{w}: {c.fmt_ms(a)}/{c.fmt_ms(b)}"
            for w, (a, b) in r["ttfe_p50_p99_by_worker"].items()
        )
        print(f"           TTFE p50/p99 by worker: {parts}")
    print(f"           TTFE histogram (s): {r['ttfe_histogram_s']}")
    print(
        f"           box busy {r['box_busy_cores']:.2f} of 2 cores, of which other "
        f"processes (not server/target/loadgen) {r['other_processes_cores']:.2f}"
    )
    for err, count in list(r["errors"].items())[:5]:
        print(f"           {count} × {err}")
    if r.get("floor") and r["server_cpu_ms_per_step"]:
        f = r["floor"]
        print(
            f"           vs bare requests floor: CPU/step "
            f"{r['server_cpu_ms_per_step'] / f['client_cpu_ms_per_step']:.2f}×, "
            f"p50 {(r['completion_p50_s'] or 0) / f['completion_p50_s']:.2f}×"
        )


def compare(results: list[dict]) -> list[str]:
    """The targets that need no FlowSphere run beside (N = 1,000 only)."""
    lines = []
    for r in results:
        if r["n"] != 1000 or r["steps_per_flow"] != 10 or r["step_ms"] != 200:
            continue
        checks = [
            ("TTFE p99 < 250 ms", (r["ttfe_p99_s"] or 1e9) < 0.25),
            ("every flow succeeds", r["failed"] == 0),
        ]
        lines.append(
            f"  W={r['workers']} N=1000: "
            + "; ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in checks)
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--n", default="50,200,1000", help="comma-separated flow counts")
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--step-ms", type=int, default=200)
    p.add_argument("--repeat", type=int, default=1, help="batches per N (all shown)")
    p.add_argument("--quick", action="store_true", help="N=50,200 with 1 worker")
    p.add_argument("--deadline", type=float, default=180.0, help="seconds per batch")
    p.add_argument("--settle", type=float, default=0.5, help="wait before CPU read")
    p.add_argument("--heartbeat", type=float, default=None, help="FLOWRUN_HEARTBEAT_S")
    p.add_argument("--env", action="append", default=[], help="extra server KEY=VAL")
    p.add_argument(
        "--floor",
        action="store_true",
        help="also run each N as bare requests.Session flows (no server, no SSE)",
    )
    p.add_argument("--profile", metavar="DIR", help="py-spy each worker per batch")
    p.add_argument(
        "--profile-idle",
        action="store_true",
        help="with --profile: sample idle/blocked time too (py-spy --idle)",
    )
    p.add_argument(
        "--repo", metavar="DIR", help="serve another checkout (default: this one)"
    )
    p.add_argument("--keep-logs", metavar="DIR", help="write server/target logs here")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument(
        "--distinct",
        action="store_true",
        help="each flow posts its own body (a numbered name): no reuse of a flow"
        " already validated",
    )
    p.add_argument(
        "--mock",
        action="store_true",
        help="self-test: a target_server.py stand-in SSE server instead of flowrun",
    )
    p.add_argument(
        "--gunicorn-floor",
        nargs="?",
        const="sleep",
        choices=sorted(FLOORS),
        help="serve a stand-in app from bench/standin_app.py with the same "
        "gunicorn -c gunicorn.conf.py: 'sleep' (default; steps only sleep: "
        "gunicorn alone), 'requests' (each step a requests.Session GET to the "
        "target: gunicorn + requests, nothing of flowrun), 'flask' (the same "
        "behind one Flask route), 'client' (that, each GET sent by flowrun's own "
        "Client)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.workers = "50,200", "1"
    ns = [int(x) for x in args.n.split(",") if x]
    ws = [int(x) for x in args.workers.split(",") if x]
    limit = c.raise_nofile()
    if max(ns) + 64 > limit:
        p.error(f"ulimit -n is {limit}; too low for {max(ns)} streams")

    results = []
    procs = []
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        tmp = Path(tmp)
        logdir = Path(args.keep_logs) if args.keep_logs else tmp
        logdir.mkdir(parents=True, exist_ok=True)
        target_log = open(logdir / "target.log", "wb")
        try:
            tport = c.free_port()
            target = c.start_target(tport, log=target_log)
            procs.append(target)
            target_url = f"http://127.0.0.1:{tport}"
            body = {
                "config": c.step_flow(target_url, args.steps, args.step_ms),
                "options": {},
            }
            flow_file = tmp / "flow.json"
            flow_file.write_text(json.dumps(body))
            print(
                f"flows of {args.steps} × {args.step_ms} ms steps; target {target_url};"
                f" ulimit -n {limit}"
            )
            floors = {}
            if args.floor:
                print("floor: the same steps by bare requests.Session greenlets")
                for n in ns:
                    f = run_floor(args, target_url, flow_file, n)
                    floors[n] = f
                    print(
                        f"  floor N={n:>5}: done p50 {c.fmt_s(f['completion_p50_s'])}"
                        f" p99 {c.fmt_s(f['completion_p99_s'])}, wall "
                        f"{c.fmt_s(f['wall_s'])}, failed {f['failed']}; client CPU "
                        f"{f['client_cpu_ms_per_step']:.3f} ms/step"
                    )
            for w in ws:
                extra = {
                    "FLOWRUN_MAX_EXECUTIONS": str(max(10_000, max(ns) * 2)),
                    "FLOWRUN_HISTORY_LIMIT": str(max(1000, max(ns) * 2)),
                }
                if args.heartbeat:
                    extra["FLOWRUN_HEARTBEAT_S"] = str(args.heartbeat)
                for kv in args.env:
                    k, _, v = kv.partition("=")
                    extra[k] = v
                sport = c.free_port()
                work = tmp / f"w{w}"
                (work / "flows").mkdir(parents=True)
                server_log = open(logdir / f"server-w{w}.log", "wb")
                if args.mock:
                    server = c.start_target(sport, log=server_log)
                    probe = c.ServerProbe(server.pid, self_only=True)
                else:
                    server = c.start_server(
                        sport,
                        work,
                        w,
                        extra,
                        log=server_log,
                        repo=args.repo,
                        app=FLOORS.get(args.gunicorn_floor, "app:app"),
                    )
                    probe = c.ServerProbe(server.pid)
                procs.append(server)
                base_url = f"http://127.0.0.1:{sport}"
                try:
                    print(f"workers={w}: pids {probe.workers()} on {base_url}")
                    # warm-up: every worker imports, compiles and opens its store
                    run_batch(args, base_url, target_url, probe, flow_file, 8 * w)
                    for n in ns:
                        for rep in range(args.repeat):
                            tag = f"w{w}-n{n}-r{rep}" if args.profile else None
                            r = run_batch(
                                args, base_url, target_url, probe, flow_file, n, tag
                            )
                            r["repeat"] = rep
                            if n in floors:
                                r["floor"] = floors[n]
                            results.append(r)
                            print_row(r)
                            for prof in r["profiles"]:
                                print(f"           profile: {prof}")
                            time.sleep(1.0)
                finally:
                    c.stop(server)
                    server_log.close()
        finally:
            for proc in procs:
                c.stop(proc)
            target_log.close()
    lines = compare(results)
    if lines:
        print("\nThe targets that stand alone:")
        print("\n".join(lines))
        print(
            "  wall time and CPU per step are targets relative to FlowSphere: run"
            " bench/vs_flowsphere.py --flowsphere DIR (both servers, same session)"
        )
    if args.json:
        Path(args.json).write_text(c.dump({"args": vars(args), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
