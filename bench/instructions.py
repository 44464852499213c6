"""Instructions a gunicorn worker executes per run or per step (callgrind).

Time and CPU figures move by ±10 % between runs on a shared machine; the number of
instructions executed for the same work does not (within about 1 %). This script
serves each tree with ONE gevent worker under ``valgrind --tool=callgrind``, warms it
up, sends the work and stops it; the same server sending no work is subtracted, and
the rest divided:

- ``start``: ``--runs`` one-step streams one after another (a step against the
  fast target): instructions per run, start to ``end``;
- ``burst``: ``--runs`` concurrent flows of 10 × 200 ms steps: per step;
- ``chain``: ``--runs`` streams of the 100-step chain one after another: per step.

Needs ``valgrind`` (``apt-get install valgrind``); the worker runs about 50 times
slower under it, so a round takes minutes. Compare trees measured by one command:

    .venv/bin/python bench/instructions.py --repo before=/path/to/earlier --repo after=.
    .venv/bin/python bench/instructions.py --shape burst --runs 100
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as c  # noqa: E402

SHAPES = {  # name: (steps per flow, ms per step, concurrent, warm-up flows)
    "start": (1, 0, False, 20),
    "burst": (10, 200, True, 20),
    "chain": (100, 0, False, 3),
}


def _stream(url: str, flow: dict) -> int:
    """Post one flow and read its stream to the end; the number of steps."""
    resp = requests.post(url, json={"config": flow, "options": {}}, stream=True)
    body = b"".join(resp.iter_content(65536))
    if resp.status_code != 200 or b"event: end" not in body:
        raise RuntimeError(f"the stream failed: {resp.status_code} {body[-300:]!r}")
    return body.count(b"event: step\n")


def _send(url: str, flow: dict, n: int, concurrent: bool) -> int:
    if not concurrent:
        return sum(_stream(url, flow) for _ in range(n))
    counts: list[int] = []
    threads = [
        threading.Thread(target=lambda: counts.append(_stream(url, flow)))
        for _ in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(counts) != n:
        raise RuntimeError(f"{n - len(counts)} of {n} streams failed")
    return sum(counts)


def _totals(path: Path) -> int:
    text = path.read_text(errors="replace")
    found = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no totals in {path}")
    return int(found.group(1))


def _worker_total(repo: Path, shape: str, runs: int, target: str, workdir: Path):
    """Serve under callgrind, warm up, send ``runs`` flows, stop: the worker's
    instructions over its whole life, and the steps the streams reported."""
    steps, step_ms, concurrent, warm = SHAPES[shape]
    out = workdir / "callgrind"
    out.mkdir(parents=True)
    port = c.free_port()
    env = c.server_env(port, workdir, 1, {"PYTHONHASHSEED": "0", "FLOWRUN_TOKEN": ""})
    if repo != c.ROOT:
        env["PYTHONPATH"] = str(repo)
    gunicorn = str(Path(c.PYTHON).parent / "gunicorn")
    cmd = [
        *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p"),
        *(c.PYTHON, gunicorn, "-c", "gunicorn.conf.py", "--workers", "1"),
        *("--timeout", "900", "--access-logfile", "/dev/null", "app:app"),
    ]
    with open(workdir / "server.log", "wb") as log:
        proc = c.start(cmd, env=env, cwd=str(repo), stdout=log, stderr=log)
    try:
        c.wait_http(f"http://127.0.0.1:{port}/api/health", timeout=300, proc=proc)
        [worker] = c.children(proc.pid)
        url = f"http://127.0.0.1:{port}/api/execute-stream"
        flow = c.step_flow(target, steps, step_ms)
        _send(url, flow, warm, concurrent)
        done = _send(url, flow, runs, concurrent) if runs else 0
        time.sleep(2)  # the last group commit and the streams' ends
    finally:
        c.stop(proc, grace=120)  # callgrind writes its counts as the worker exits
    return _totals(out / f"cg.{worker}"), done


def measure(repo: Path, shape: str, runs: int, target: str) -> dict:
    """Instructions per run (``start``) or per step: a server that served ``runs``
    flows less one that served none (the same start-up, warm-up and stop).

    callgrind cannot be asked for its counts in a forked worker
    (``callgrind_control`` does not reach it), hence two servers.
    """
    totals = []
    for n in (0, runs):
        with tempfile.TemporaryDirectory() as tmp:
            totals.append(_worker_total(repo, shape, n, target, Path(tmp)))
    (base, _), (total, steps) = totals
    units = runs if shape == "start" else steps
    return {
        "instructions": total - base,
        "units": units,
        "per_unit": (total - base) / units,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--repo",
        action="append",
        metavar="[LABEL=]PATH",
        help="a flowrun tree to serve (repeatable; default this checkout)",
    )
    p.add_argument("--shape", choices=[*SHAPES, "all"], default="all")
    p.add_argument(
        "--runs",
        type=int,
        default=0,
        help="flows per shape (default: 200 starts, 100 flows of the burst, 20 chains)",
    )
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    repos = []
    for item in args.repo or [str(c.ROOT)]:
        label, _, path = item.rpartition("=")
        repos.append((label or Path(path).name, Path(path).resolve()))
    shapes = list(SHAPES) if args.shape == "all" else [args.shape]
    defaults = {"start": 200, "burst": 100, "chain": 20}
    port = c.free_port()
    target = c.start_target(port)
    results: dict[str, dict[str, dict]] = {}
    try:
        for shape in shapes:
            runs = args.runs or defaults[shape]
            for label, repo in repos:
                r = measure(repo, shape, runs, f"http://127.0.0.1:{port}")
                results.setdefault(shape, {})[label] = r
                per = "run" if shape == "start" else "step"
                print(
                    f"{shape:6} {label:12} {r['per_unit'] / 1e6:7.3f} M instructions "
                    f"per {per} ({r['instructions']:,} over {r['units']} {per}s)",
                    flush=True,
                )
    finally:
        c.stop(target)
    if len(repos) > 1:
        first = repos[0][0]
        for shape, rows in results.items():
            for label, r in rows.items():
                if label != first:
                    change = r["per_unit"] / rows[first]["per_unit"] - 1
                    print(f"{shape:6} {label} against {first}: {change:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
