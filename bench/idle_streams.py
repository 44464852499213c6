"""How many idle open streams one gevent worker holds, and RSS per stream.

Starts ``gunicorn -c gunicorn.conf.py --workers 1 app:app`` on 127.0.0.1 (temporary
data and flows directories), then a load generator in a separate process
(bench/_loadgen.py, idle mode) that opens streams of a flow whose first node asks for
input (``userPrompts``): each stream gets ``start`` and ``input_required`` and then sits
idle, heartbeating, holding an execution that waits for an answer that never comes.

Streams are opened in levels (default 1,000 → 5,000 → 10,000, at most --concurrency
POSTs in flight). At each level it prints the streams open, failures, the worker's RSS
and open file descriptors, RSS per stream over the warmed-up baseline, and the worker's
CPU while idle (heartbeats, prompt polling) over --idle-window seconds. Then the load
generator closes every stream from the client side, and the script checks that the
server cleans up: the worker's descriptors fall back, and history says the executions
ended ``interrupted`` (bounded wait: 2 × heartbeat + 30 s). Once that settled it samples
the worker's RSS once a second for --after-close seconds (default 10): whether the
memory the streams held goes back to the OS.

Targets: ≥ 10,000 streams on one worker, ≤ 50 KB RSS each.

    .venv/bin/python bench/idle_streams.py                    # 1000,5000,10000
    .venv/bin/python bench/idle_streams.py --levels 500,2000 --heartbeat 2
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402


def get_json(url: str, timeout: float = 30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def executions(base_url: str, limit: int) -> list[dict]:
    data = get_json(f"{base_url}/api/executions?limit={limit}", timeout=60)
    if isinstance(data, dict):
        for key in ("executions", "items", "results"):
            if isinstance(data.get(key), list):
                return data[key]
        return []
    return data


def db_counts(data_dir: Path, ids: set[str]) -> dict[str, int]:
    """Status of the streamed executions, read from the store itself (read-only).

    The API lists at most 1,000 executions; this counts all of them.
    """
    path = data_dir / "flowrun.sqlite3"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT id, status FROM executions").fetchall()
    finally:
        db.close()
    counts: dict[str, int] = {}
    for ident, st in rows:
        if ident in ids:
            counts[st] = counts.get(st, 0) + 1
    return counts


def status_counts(rows: list[dict], ids: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        ident = row.get("executionId") or row.get("id")
        if ids and ident not in ids:
            continue
        st = row.get("status", "?")
        counts[st] = counts.get(st, 0) + 1
    return counts


def run_loadgen_level(lg, what: str = "next"):
    lg.stdin.write(f"{what}\n".encode())
    lg.stdin.flush()


def read_line(lg) -> dict:
    line = lg.stdout.readline()
    if not line:
        raise RuntimeError("load generator ended early")
    return json.loads(line)


def open_and_close(args, base_url, flow_file, levels: str, on_level=None):
    """Run the idle load generator through ``levels``; returns (levels, summary)."""
    cmd = [c.PYTHON, str(c.BENCH / "_loadgen.py"), "idle", "--url", base_url]
    cmd += ["--flow-file", str(flow_file), "--levels", levels]
    cmd += ["--concurrency", str(args.concurrency), "--settle", str(args.settle)]
    cmd += ["--deadline", str(args.deadline), "--timeout", str(args.deadline)]
    lg = c.start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    seen = []
    try:
        n_levels = len(levels.split(","))
        for i in range(n_levels):
            lv = read_line(lg)
            if on_level is not None:
                lv.update(on_level(lv))
            seen.append(lv)
            last = i == n_levels - 1
            if not last and lv["open"] < lv["level"]:
                last = True  # failures: do not push further
            run_loadgen_level(lg, "close" if last else "next")
            if last:
                break
        summary = read_line(lg)
        lg.wait(timeout=60)
    finally:
        c.stop(lg)
    return seen, summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--levels", default="1000,5000,10000")
    p.add_argument("--concurrency", type=int, default=200, help="POSTs in flight")
    p.add_argument("--heartbeat", type=float, default=10.0, help="FLOWRUN_HEARTBEAT_S")
    p.add_argument("--idle-window", type=float, default=10.0, help="CPU sample, s")
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--deadline", type=float, default=300.0)
    p.add_argument(
        "--after-close",
        type=float,
        default=10.0,
        help="seconds to keep sampling the worker's RSS once the close settled",
    )
    p.add_argument("--env", action="append", default=[], help="extra server KEY=VAL")
    p.add_argument(
        "--repo", metavar="DIR", help="serve another checkout (default: this one)"
    )
    p.add_argument("--keep-logs", metavar="DIR")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--mock", action="store_true", help="self-test stand-in server")
    args = p.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x]
    top = max(levels)
    limit = c.raise_nofile()
    if top + 64 > limit:
        p.error(f"ulimit -n is {limit}; too low for {top} streams")

    out: dict = {"args": vars(args), "levels": []}
    with tempfile.TemporaryDirectory(prefix="flowrun-idle-") as tmp:
        tmp = Path(tmp)
        logdir = Path(args.keep_logs) if args.keep_logs else tmp
        logdir.mkdir(parents=True, exist_ok=True)
        log = open(logdir / "server-idle.log", "wb")
        server = None
        try:
            port = c.free_port()
            (tmp / "flows").mkdir()
            extra = {
                "FLOWRUN_MAX_EXECUTIONS": str(top + 1000),
                "FLOWRUN_HISTORY_LIMIT": str(2 * top + 1000),
                "FLOWRUN_HEARTBEAT_S": str(args.heartbeat),
                "FLOWRUN_INPUT_TIMEOUT_S": "3600",
            }
            for kv in args.env:
                k, _, v = kv.partition("=")
                extra[k] = v
            if args.mock:
                server = c.start_target(port, log=log)
                probe = c.ServerProbe(server.pid, self_only=True)
            else:
                server = c.start_server(port, tmp, 1, extra, log=log, repo=args.repo)
                probe = c.ServerProbe(server.pid)
            base_url = f"http://127.0.0.1:{port}"
            # the flow never reaches its target: the first node waits for input
            flow = c.step_flow("http://127.0.0.1:9", 3, 200, prompt=True)
            flow_file = tmp / "flow.json"
            flow_file.write_text(json.dumps({"config": flow, "options": {}}))
            (worker,) = probe.workers()
            print(
                f"one worker (pid {worker}) on {base_url}; heartbeat "
                f"{args.heartbeat} s; ulimit -n {limit}; env {extra}"
            )

            # warm-up: a few streams opened and closed, then the baseline
            open_and_close(args, base_url, flow_file, "50")
            time.sleep(args.heartbeat * 2 + 1)
            base_rss = c.rss_bytes(worker)
            base_fds = c.open_fds(worker)
            print(f"baseline after warm-up: RSS {c.mib(base_rss)}, {base_fds} fds")

            def on_level(lv):
                rss = c.rss_bytes(worker)
                fds = c.open_fds(worker)
                cpu0 = c.cpu_seconds(worker)
                time.sleep(args.idle_window)
                cpu1 = c.cpu_seconds(worker)
                rss_after_idle = c.rss_bytes(worker)
                per = (rss - base_rss) / lv["open"] if lv["open"] else None
                row = {
                    "rss": rss,
                    "rss_after_idle": rss_after_idle,
                    "fds": fds,
                    "rss_per_stream_kb": None if per is None else per / 1024,
                    "idle_cpu_pct": 100 * (cpu1 - cpu0) / args.idle_window,
                }
                print(
                    f"  {lv['open']:>6} open / {lv['level']} asked "
                    f"({lv['failed']} failed, ramp {lv['ramp_s']:.1f} s): "
                    f"RSS {c.mib(rss)} = {row['rss_per_stream_kb'] or 0:.1f} KB per "
                    f"stream over baseline; {fds} fds; idle CPU "
                    f"{row['idle_cpu_pct']:.1f} % of a core over {args.idle_window:g} s"
                    f" (RSS then {c.mib(rss_after_idle)})"
                )
                for err in lv["errors"]:
                    print(f"         error: {err}")
                return row

            t_close = time.monotonic()
            seen, summary = open_and_close(
                args, base_url, flow_file, args.levels, on_level
            )
            out["levels"] = seen
            t_closed = time.monotonic()
            ids = set(summary.pop("execution_ids"))
            print(
                f"closed {summary['closed']} streams from the client side in "
                f"{summary['close_s']:.1f} s; {summary['heartbeats']} heartbeats seen"
            )
            # cleanup: descriptors back near baseline, executions interrupted
            deadline = time.monotonic() + 2 * args.heartbeat + 30
            counts: dict = {}
            fds = c.open_fds(worker)
            while time.monotonic() < deadline:
                fds = c.open_fds(worker)
                if not args.mock:
                    counts = db_counts(tmp / "data", ids)
                    done = sum(counts.values()) - counts.get("running", 0)
                    if done >= len(ids) and fds <= base_fds + 20:
                        break
                elif fds <= base_fds + 20:
                    break
                time.sleep(1.0)
            cleanup_s = time.monotonic() - t_close
            after_close_s = time.monotonic() - t_closed
            rss_end = c.rss_bytes(worker)
            # RSS once the cleanup settled, then sampled for --after-close seconds:
            # does the worker give the freed memory back, and how soon?
            rss_samples = [(0.0, rss_end)]
            t_settled = time.monotonic()
            for _ in range(int(args.after_close)):
                time.sleep(1.0)
                rss_samples.append((time.monotonic() - t_settled, c.rss_bytes(worker)))
            rss_later = rss_samples[-1][1]
            api = {}
            if not args.mock:  # the API's view of the newest (at most 1,000)
                api = status_counts(executions(base_url, 1000), ids)
            peak = max((lv["rss"] for lv in seen), default=0)
            print(
                f"RSS after close: {c.mib(rss_end)} when settled, "
                f"{c.mib(rss_later)} {rss_samples[-1][0]:.0f} s later "
                f"(baseline {c.mib(base_rss)}, peak {c.mib(peak)}; "
                f"{c.mib(rss_later - base_rss)} over baseline); samples: "
                + ", ".join(f"{t:.0f} s {r / 1048576:.0f}" for t, r in rss_samples)
            )
            print(
                f"after close: {fds} fds (baseline {base_fds}), RSS {c.mib(rss_end)}; "
                f"history of the {len(ids)} streamed executions: {counts or '-'} "
                f"(store; settled {after_close_s:.1f} s after the load generator "
                f"exited, {cleanup_s:.0f} s after the first open); "
                f"GET /api/executions?limit=1000 shows {api or '-'}"
            )
            out.update(
                baseline_rss=base_rss,
                baseline_fds=base_fds,
                after_close_fds=fds,
                after_close_rss=rss_end,
                after_close_rss_later=rss_later,
                after_close_rss_samples=rss_samples,
                history=counts,
                history_api_newest_1000=api,
                settled_after_close_s=after_close_s,
                close=summary,
            )
        finally:
            c.stop(server)
            log.close()
    if args.json:
        Path(args.json).write_text(c.dump(out))
    best = [lv for lv in out["levels"] if lv["open"] == lv["level"]]
    if best:
        top_ok = max(best, key=lambda lv: lv["open"])
        print(
            f"\nheld {top_ok['open']} idle streams on one worker at "
            f"{top_ok['rss_per_stream_kb']:.1f} KB each "
            f"(targets: ≥ 10,000 streams, ≤ 50 KB each); after they closed, RSS "
            f"{c.mib(out['after_close_rss_later'])} (baseline "
            f"{c.mib(out['baseline_rss'])})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
