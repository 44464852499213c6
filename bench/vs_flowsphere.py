"""flowrun against FlowSphere, side by side in one session.

flowrun's server targets are ratios against FlowSphere measured side by side
on the same machine: wall time ≤ 0.7×, server CPU per step ≤ 0.75×, chain ms/step
≤ 0.6×, time to first event p99 < 250 ms and ≤ 0.1×, every flow succeeds. This
script measures both servers with the same load generator (``bench/_loadgen.py``)
and the same targets, in alternating rounds, and prints those ratios.

Prepare FlowSphere once, OUTSIDE this repository (never commit any of its files):

    git clone https://github.com/ymoud/flowsphere.git /tmp/flowsphere
    npm --prefix /tmp/flowsphere install --no-audit --no-fund

(any checkout or local mirror of it will do; this harness was written against its
0.2.0, commit da10cab, on Node 20). Then, from this repository's root:

    .venv/bin/python bench/vs_flowsphere.py --flowsphere /tmp/flowsphere --rounds 3
    .venv/bin/python bench/vs_flowsphere.py --flowsphere /tmp/flowsphere --rounds 1 \\
        --shape chain
    .venv/bin/python bench/vs_flowsphere.py --flowsphere /tmp/flowsphere \\
        --repo . --repo before=/tmp/flowrun-old        # several flowrun trees, labelled

Each round runs FlowSphere, then every flowrun tree (``--repo [LABEL=]PATH``,
repeatable; default this checkout), for each load shape (``--shape``):

burst   N (1,000) concurrent flows of 10 GETs of ``bench/target_server.py``'s
        ``/step?ms=200``, every stream opened at once by the load generator
        (``concurrent_flows.run_batch``, the batch ``concurrent_flows.py`` runs).
        flowrun: ``gunicorn -c gunicorn.conf.py app:app`` with its default 2 gevent
        workers; FlowSphere: ``node bin/flowsphere.js studio --port P``, its own
        Express server (one process). Figures: completion p50 ("wall p50") and the
        time of the last ``end`` from the instant every stream was started; time to
        first event p50/p99; server CPU ms per step served (utime+stime from
        /proc/<pid>/stat of the server's processes — flowrun's gunicorn master and
        workers, FlowSphere's node process with all its threads — before the batch
        and after it settled, divided by the steps the target served); peak RSS;
        and every flow must end with success and 10 steps executed.
chain   the 100-step chain of ``bench/engine_overhead.py`` (POST /login → POST
        /token → 98 × GET /items/N with a Bearer token from a placeholder and three
        validations each) against ``bench/target.py``, on one stream at a time
        (``--chain-runs`` streams one after another, each through the same load
        generator with N = 1): ms per step end to end (POST → ``end``) / 100, and
        server CPU ms per step (/proc/<pid>/task/*/schedstat, ns).

Every server is started fresh for each shape in each round, warmed up (a small burst
of 16 flows, or 4 concurrent chains), measured, and stopped. The servers take turns
in the order given in odd rounds and in the reverse order in even ones, so that no
server always runs right after another one (the target and the kernel carry some
state from one batch to the next). Both servers run with
their defaults, except that each writes its log to a file (flowrun's access log,
FlowSphere's console lines per step) and that FlowSphere is started with
``node --require bench/flowsphere_preload.js``, which makes it listen on 127.0.0.1
instead of every interface and replaces the browser it opens at start (xdg-open)
by a no-op; nothing of what it does per request changes. Its per-execution temporary
files go to this run's temporary directory (TMPDIR).

What the load generator reads — both servers answer ``POST /api/execute-stream``
with ``{"config": flow, "options": {}}`` and stream SSE frames:

- first event: both send ``start`` first. FlowSphere writes it right after the
  response head, before it reads the flow (``sendEvent('start', {totalSteps})``);
  flowrun sends it once the flow is checked and the execution registered. A
  ``: keep-alive`` comment is not an event (flowrun only, after 15 s of silence).
- end of a run: both end with ``event: end`` whose data has ``success`` and
  ``stepsExecuted``; the load generator stops reading there. FlowSphere then ends the
  response (``res.end()``); on a failed step it sends ``step``, ``error``, ``end``
  with ``success: false``; if its handler throws before the head, it answers HTTP
  500 JSON (no stream). flowrun closes the stream after ``end`` too.
- FlowSphere has no header validation: the chain's third check per item
  (``{"header": "Content-Type", "contains": ...}``) is skipped silently by it, so
  it does two checks per item where flowrun does three.

Everything talks to 127.0.0.1 only; every process started here is in its own
process group and is ended (TERM, then KILL) on exit, including Ctrl-C; the
temporary directory is removed. The machine has 2 cores shared by the targets, the
load generator and the server under test: compare the ratios from one session, and
look at the load average printed with each round and the "others" column (cores
taken by processes that are none of ours during the batch).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402
import concurrent_flows as cf  # noqa: E402

FLOWSPHERE = "FlowSphere"
PRELOAD = c.BENCH / "flowsphere_preload.js"
PREPARE = (
    "git clone https://github.com/ymoud/flowsphere.git /tmp/flowsphere\n"
    "    npm --prefix /tmp/flowsphere install --no-audit --no-fund"
)
# The targets (flowrun / FlowSphere, side by side): metric → the largest ratio allowed
TARGETS = {
    "wall_p50": 0.7,
    "last_end": 0.7,
    "cpu_ms_per_step": 0.75,
    "ttfe_p99": 0.1,
    "chain_ms_per_step": 0.6,
}
TTFE_P99_ABS = 0.250
_PROXY_VARS = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)


class TreeProbe(c.ServerProbe):
    """Every process of a server: gunicorn's master and its workers, or one node."""

    def workers(self) -> list[int]:
        if self.self_only:
            return [self.master]
        return [self.master, *sorted(c.children(self.master))]

    def cpu_ns(self) -> int:
        """On-CPU time of all threads of all the server's processes (schedstat, ns)."""
        total = 0
        for pid in self.workers():
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    total += int((task / "schedstat").read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    pass
        return total


# --- the servers ------------------------------------------------------------------


class Server:
    """One server under test: how to start it, its label, and what it is."""

    def __init__(self, label: str, kind: str, path: Path, named: bool = True):
        self.label, self.kind, self.path = label, kind, path
        self.named = named  # False: the label is flowrun@<its commit>

    def start(self, port: int, work: Path, log) -> tuple[subprocess.Popen, TreeProbe]:
        if self.kind == "flowsphere":
            proc = start_flowsphere(self.path, port, work, log)
            return proc, TreeProbe(proc.pid, self_only=True)
        (work / "flows").mkdir(parents=True, exist_ok=True)
        # what concurrent_flows.py sets for 1,000 flows; both are flowrun's
        # defaults or above them (FLOWRUN_MAX_EXECUTIONS 10000, HISTORY_LIMIT 1000)
        extra = {"FLOWRUN_MAX_EXECUTIONS": "10000", "FLOWRUN_HISTORY_LIMIT": "2000"}
        repo = None if self.path == c.ROOT else self.path
        proc = c.start_server(port, work, 2, extra, log=log, repo=repo)
        return proc, TreeProbe(proc.pid)


def start_flowsphere(path: Path, port: int, work: Path, log) -> subprocess.Popen:
    """``node bin/flowsphere.js studio --port P`` on 127.0.0.1, answering."""
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    tmp = work / "tmp"  # its per-execution flowsphere-<ms>.json files
    tmp.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(tmp)
    env["FLOWSPHERE_BENCH_HOST"] = "127.0.0.1"
    cmd = ["node", "--require", str(PRELOAD), "bin/flowsphere.js", "studio"]
    cmd += ["--port", str(port)]
    proc = c.start(cmd, env=env, cwd=str(path), stdout=log, stderr=log)
    try:
        c.wait_http(f"http://127.0.0.1:{port}/", timeout=30, proc=proc)
    except Exception:
        c.stop(proc)
        raise
    return proc


def check_flowsphere(path: Path) -> str:
    """A short description of the checkout, or SystemExit saying how to prepare it."""
    if not (path / "bin" / "flowsphere.js").is_file():
        raise SystemExit(
            f"no FlowSphere checkout at {path} (bin/flowsphere.js); prepare one "
            f"outside this repository:\n    {PREPARE}"
        )
    if not (path / "node_modules" / "express").is_dir():
        raise SystemExit(
            f"{path} has no node_modules/express: run\n"
            f"    npm --prefix {path} install --no-audit --no-fund"
        )
    if c.ROOT in path.resolve().parents or path.resolve() == c.ROOT:
        raise SystemExit("keep FlowSphere outside this repository (--flowsphere)")
    try:
        node = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError as exc:
        raise SystemExit(f"node not found: {exc}") from exc
    version = json.loads((path / "package.json").read_text()).get("version", "?")
    return f"FlowSphere {version} @ {git_rev(path)}, node {node}"


def git_rev(path: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        rev = out.stdout.strip() or "?"
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def parse_repos(values: list[str]) -> list[Server]:
    """``--repo [LABEL=]PATH`` values → flowrun servers (default: this checkout)."""
    servers = []
    for value in values or [str(c.ROOT)]:
        label, sep, path = value.partition("=")
        if not sep:
            label, path = "", value
        repo = Path(path).resolve()
        if not (repo / "gunicorn.conf.py").is_file() or not (repo / "app.py").is_file():
            raise SystemExit(f"--repo {value}: no gunicorn.conf.py and app.py there")
        servers.append(
            Server(label or f"flowrun@{git_rev(repo)}", "flowrun", repo, bool(label))
        )
    labels = [s.label for s in servers]
    if len(set(labels)) != len(labels) or FLOWSPHERE in labels:
        raise SystemExit(f"labels must differ (--repo LABEL=PATH): {labels}")
    return servers


# --- the two load shapes ----------------------------------------------------------


def burst(args, server: Server, target_url: str, flow_file: Path, work: Path, log):
    """Start ``server``, warm it up, run one batch of ``args.n`` flows, stop it."""
    port = c.free_port()
    proc, probe = server.start(port, work, log)
    base = f"http://127.0.0.1:{port}"
    ns = argparse.Namespace(
        distinct=False,
        deadline=args.deadline,
        settle=args.settle,
        steps=args.steps,
        step_ms=args.step_ms,
        mock=False,
        gunicorn_floor=None,
        profile=None,
        profile_idle=False,
    )
    try:
        cf.run_batch(ns, base, target_url, probe, flow_file, 16)  # warm-up
        time.sleep(0.5)
        drops0 = listen_drops()
        r = cf.run_batch(ns, base, target_url, probe, flow_file, args.n)
        drops = {k: v - drops0.get(k, 0) for k, v in listen_drops().items()}
    finally:
        c.stop(proc)
    return {
        "ok": r["ok"],
        "n": r["n"],
        "errors": r["errors"],
        "wall_p50": r["completion_p50_s"],
        "last_end": r["completion_max_s"],
        "batch_wall": r["wall_s"],
        "ttfe_p50": r["ttfe_p50_s"],
        "ttfe_p99": r["ttfe_p99_s"],
        "cpu_ms_per_step": r["server_cpu_ms_per_step"],
        "steps_served": r["target_steps_served"],
        "rss_peak": r["server_rss_peak"],
        "others": r["other_processes_cores"],
        "processes": len(probe.workers()),
        "connect_p99": r["connect_p99_s"],
        "headers_p99": r["headers_p99_s"],
        "ttfe_arrival_p99": r["ttfe_arrival_p99_s"],
        "listen_drops": drops,
        "target_peak": r["target_peak_concurrency"],
    }


def listen_drops() -> dict[str, int]:
    """The kernel's counters of connections a full accept queue refused (netns-wide)."""
    keys = ("ListenOverflows", "ListenDrops", "TCPReqQFullDrop")
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return {k: int(row.get(k, 0)) for k in keys}
    return {}


def one_stream_batch(args, base: str, flow_file: Path, n: int, probe: TreeProbe):
    """``n`` concurrent streams through the load generator; records and CPU ns."""
    cmd = [c.PYTHON, str(c.BENCH / "_loadgen.py"), "flows", "--url", base]
    cmd += ["--flow-file", str(flow_file), "--n", str(n), "--wait-go"]
    cmd += ["--deadline", str(args.deadline), "--timeout", str(args.deadline)]
    lg = c.start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        ready = json.loads(lg.stdout.readline() or b"{}")
        if not ready.get("ready"):
            raise RuntimeError("load generator did not start")
        ns0 = probe.cpu_ns()
        lg.stdin.write(b"go\n")
        lg.stdin.flush()
        line = lg.stdout.readline()
        time.sleep(args.chain_settle)  # what the server does right after `end`
        ns1 = probe.cpu_ns()
        lg.wait(timeout=30)
    finally:
        c.stop(lg)
    if not line:
        raise RuntimeError("load generator printed no result")
    return json.loads(line)["records"], (ns1 - ns0) / 1e9


def chain(args, server: Server, flow_file: Path, work: Path, log):
    """Start ``server``, warm it up, stream the chain ``chain_runs`` times, stop it."""
    port = c.free_port()
    proc, probe = server.start(port, work, log)
    base = f"http://127.0.0.1:{port}"
    per_step, cpu_per_step, ttfe, errors = [], [], [], {}
    try:
        one_stream_batch(args, base, flow_file, 4, probe)  # warm-up, both workers
        for _ in range(args.chain_runs):
            (rec,), cpu_s = one_stream_batch(args, base, flow_file, 1, probe)
            if (
                rec["success"] is True
                and rec["stepsExecuted"] == args.chain_steps
                and not rec["error"]
            ):
                per_step.append((rec["end"] - rec["t0"]) * 1000 / args.chain_steps)
                cpu_per_step.append(cpu_s * 1000 / args.chain_steps)
                ttfe.append(rec["first"] - rec["t0"])
            else:
                key = rec["error"] or (
                    f"success={rec['success']} steps={rec['stepsExecuted']}"
                )
                errors[key[:160]] = errors.get(key[:160], 0) + 1
    finally:
        c.stop(proc)
    return {
        "ok": len(per_step),
        "n": args.chain_runs,
        "errors": errors,
        "chain_ms_per_step": statistics.median(per_step) if per_step else None,
        "chain_ms_per_step_all": per_step,
        "chain_cpu_ms_per_step": (
            statistics.median(cpu_per_step) if cpu_per_step else None
        ),
        "chain_ttfe": statistics.median(ttfe) if ttfe else None,
    }


# --- printing ---------------------------------------------------------------------


def _f(value, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def _ms(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def print_burst(rows: dict[str, dict], width: int) -> None:
    print(
        f"  {'server':<{width}} {'ok':>11} {'wall p50':>9} {'last end':>9} "
        f"{'TTFE p50':>9} {'TTFE p99':>9} {'CPU/step':>9} {'RSS peak':>10} "
        f"{'others':>7}"
    )
    for label, r in rows.items():
        print(
            f"  {label:<{width}} {r['ok']:>5}/{r['n']:<5} {_f(r['wall_p50'], ' s'):>9}"
            f" {_f(r['last_end'], ' s'):>9} {_ms(r['ttfe_p50']):>9}"
            f" {_ms(r['ttfe_p99']):>9} {_f(r['cpu_ms_per_step'], ' ms', 3):>9}"
            f" {c.mib(r['rss_peak']):>10} {_f(r['others'], '', 2):>7}"
        )
        drops = ", ".join(f"{k} {v}" for k, v in r["listen_drops"].items() if v)
        print(
            f"  {'':<{width}}   TTFE p99 parts: TCP connect {_ms(r['connect_p99'])},"
            f" response head {_ms(r['headers_p99'])}, first event by kernel receive"
            f" time {_ms(r['ttfe_arrival_p99'])}; steps in flight at the target at"
            f" most {r['target_peak']}; accept queue drops: {drops or 'none'}"
        )
        for err, count in list(r["errors"].items())[:5]:
            print(f"  {'':<{width}}   {count} × {err}")


def print_chain(rows: dict[str, dict], width: int) -> None:
    print(
        f"  {'server':<{width}} {'ok':>7} {'ms/step':>9} {'CPU ms/step':>12} "
        f"{'TTFE':>7}   ms/step of each stream"
    )
    for label, r in rows.items():
        each = " ".join(f"{x:.2f}" for x in r["chain_ms_per_step_all"])
        print(
            f"  {label:<{width}} {r['ok']:>3}/{r['n']:<3} "
            f"{_f(r['chain_ms_per_step'], '', 3):>9} "
            f"{_f(r['chain_cpu_ms_per_step'], '', 3):>12} "
            f"{_ms(r['chain_ttfe']):>7}   {each}"
        )
        for err, count in list(r["errors"].items())[:5]:
            print(f"  {'':<{width}}   {count} × {err}")


SUMMARY = [
    # (key, shape, label, unit; for seconds shown as ms: "ms")
    ("wall_p50", "burst", "wall p50 (completion)", "s"),
    ("last_end", "burst", "last end", "s"),
    ("cpu_ms_per_step", "burst", "server CPU ms/step", ""),
    ("ttfe_p50", "burst", "TTFE p50", "ms"),
    ("ttfe_p99", "burst", "TTFE p99", "ms"),
    ("failed", "burst", "failed flows (all rounds)", "n"),
    ("others", "burst", "other processes (cores)", "cores"),
    ("chain_ms_per_step", "chain", "chain ms/step", ""),
    ("chain_cpu_ms_per_step", "chain", "chain server CPU ms/step", ""),
]


def _show(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value * 1000:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "n":
        return str(int(value))
    if unit == "cores":
        return f"{value:.2f}"
    return f"{value:.3f}"


def summarize(rounds: list[dict], labels: list[str]) -> list[str]:
    """Medians over rounds per server, and flowrun/FlowSphere ratios of the medians."""
    out = []
    width = max(len(x) for x in labels) + 2
    head = f"  {'':<27}{FLOWSPHERE:>{width}}"
    for label in labels[1:]:
        head += f"{label:>{width}}{'ratio':>8}"
    head += "   target"
    out.append(head)
    for key, shape, name, unit in SUMMARY:
        per_server = {}
        for label in labels:
            rows = [rd[shape][label] for rd in rounds if label in rd.get(shape, {})]
            if not rows:
                continue
            if key == "failed":
                per_server[label] = sum(r["n"] - r["ok"] for r in rows)
            else:
                vals = [r[key] for r in rows if r.get(key) is not None]
                per_server[label] = statistics.median(vals) if vals else None
        if not per_server:
            continue
        fs = per_server.get(FLOWSPHERE)
        line = f"  {name:<27}{_show(fs, unit):>{width}}"
        for label in labels[1:]:
            v = per_server.get(label)
            ratio = "-"
            if key not in ("failed", "others") and v is not None and fs:
                ratio = f"{v / fs:.2f}×"
            line += f"{_show(v, unit):>{width}}{ratio:>8}"
        target = TARGETS.get(key)
        if key == "ttfe_p99":
            line += f"   ≤ {target}× and < {TTFE_P99_ABS * 1000:.0f} ms"
        elif key == "failed":
            line += "   0"
        elif key == "others":
            line += "   (noise: cores busy during the batch, none of ours)"
        elif target:
            line += f"   ≤ {target}×"
        out.append(line)
    # per-round ratios, to see the spread behind the medians
    for label in labels[1:]:
        for key, shape, name, _unit in SUMMARY:
            if key in ("failed", "others"):
                continue
            ratios = []
            for rd in rounds:
                rows = rd.get(shape, {})
                a, b = rows.get(label, {}).get(key), rows.get(FLOWSPHERE, {}).get(key)
                if a is not None and b:
                    ratios.append(f"{a / b:.2f}")
            if ratios and len(rounds) > 1:
                out.append(f"  {label} {name} by round: {' '.join(ratios)}")
    return out


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def reproduce(args, servers: list[Server]) -> str:
    cmd = [".venv/bin/python", "bench/vs_flowsphere.py"]
    cmd += ["--flowsphere", str(args.flowsphere), "--rounds", str(args.rounds)]
    cmd += ["--shape", args.shape, "--n", str(args.n), "--steps", str(args.steps)]
    cmd += ["--step-ms", str(args.step_ms), "--chain-runs", str(args.chain_runs)]
    for s in servers[1:]:  # the flowrun trees (servers[0] is FlowSphere)
        cmd += ["--repo", f"{s.label}={s.path}" if s.named else str(s.path)]
    return shlex.join(cmd)


# --- main -------------------------------------------------------------------------


def stop_plain(proc: subprocess.Popen | None) -> None:
    """End a child that is not a process-group leader (engine_overhead's target)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # run every finally: stop what was started


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--flowsphere",
        required=True,
        type=Path,
        metavar="DIR",
        help="a FlowSphere checkout with node_modules, outside this repository",
    )
    p.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="[LABEL=]PATH",
        help="a flowrun tree to serve (repeatable; default this checkout)",
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--shape", choices=("burst", "chain", "both"), default="both")
    p.add_argument("--n", type=int, default=1000, help="concurrent flows (burst)")
    p.add_argument("--steps", type=int, default=10, help="steps per flow (burst)")
    p.add_argument("--step-ms", type=int, default=200, help="target delay (burst)")
    p.add_argument("--chain-steps", type=int, default=100, help=argparse.SUPPRESS)
    p.add_argument("--chain-runs", type=int, default=5, help="chain streams per round")
    p.add_argument("--deadline", type=float, default=180.0, help="seconds per batch")
    p.add_argument("--settle", type=float, default=0.5, help="wait before CPU read")
    p.add_argument("--chain-settle", type=float, default=0.2, help=argparse.SUPPRESS)
    p.add_argument("--keep-logs", metavar="DIR", help="keep the servers' logs here")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.n < 1 or args.steps < 1 or args.chain_runs < 1:
        p.error("--rounds, --n, --steps and --chain-runs must be at least 1")
    args.flowsphere = args.flowsphere.resolve()
    fs_desc = check_flowsphere(args.flowsphere)
    servers = [Server(FLOWSPHERE, "flowsphere", args.flowsphere)]
    servers += parse_repos(args.repo)
    labels = [s.label for s in servers]
    width = max(len(x) for x in labels)
    limit = c.raise_nofile()
    if args.n + 64 > limit:
        p.error(f"ulimit -n is {limit}; too low for {args.n} streams")
    shapes = ["burst", "chain"] if args.shape == "both" else [args.shape]

    # Ctrl-C raises KeyboardInterrupt even where SIGINT was ignored at start (a
    # background job of a script); TERM and HUP end the run the same way
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    print(f"reproduce: {reproduce(args, servers)}")
    print(f"{fs_desc}; {', '.join(f'{s.label} = {s.path}' for s in servers[1:])}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {loadavg()}")

    rounds: list[dict] = []
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="flowrun-vs-flowsphere-") as tmp:
        tmp = Path(tmp)
        logdir = Path(args.keep_logs) if args.keep_logs else tmp / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        chain_target = tlog = None
        try:
            files = {}
            if "burst" in shapes:
                tport = c.free_port()
                tlog = open(logdir / "target_server.log", "wb")
                procs.append(c.start_target(tport, log=tlog))
                target_url = f"http://127.0.0.1:{tport}"
                config = c.step_flow(target_url, args.steps, args.step_ms)
                files["burst"] = tmp / "burst.json"
                files["burst"].write_text(json.dumps({"config": config, "options": {}}))
            if "chain" in shapes:
                from engine_overhead import make_flow, start_target

                # its own process, not a group leader: ended by stop_plain below
                chain_target, chain_base = start_target("asyncio")
                config = make_flow(chain_base, args.chain_steps)
                files["chain"] = tmp / "chain.json"
                files["chain"].write_text(json.dumps({"config": config, "options": {}}))
            for i in range(args.rounds):
                rd: dict = {"load": loadavg()}
                print(f"\nround {i + 1}/{args.rounds} (load average {rd['load']})")
                for shape in shapes:
                    rows = rd.setdefault(shape, {})
                    turns = list(enumerate(servers))
                    for j, server in turns if i % 2 == 0 else reversed(turns):
                        work = tmp / f"r{i}-{shape}-{j}"
                        work.mkdir()
                        name = f"r{i + 1}-{shape}-{server.label}.log"
                        with open(logdir / name.replace("/", "_"), "wb") as log:
                            if shape == "burst":
                                rows[server.label] = burst(
                                    args, server, target_url, files[shape], work, log
                                )
                            else:
                                rows[server.label] = chain(
                                    args, server, files[shape], work, log
                                )
                        time.sleep(1.0)  # let the sockets of the last batch go
                    rd[shape] = rows = {s.label: rows[s.label] for s in servers}
                    if shape == "burst":
                        print(
                            f" burst: {args.n} concurrent flows × {args.steps} × "
                            f"{args.step_ms} ms (flowrun: 2 gevent workers)"
                        )
                        print_burst(rows, width)
                    else:
                        print(
                            f" chain: {args.chain_steps}-step chain, "
                            f"{args.chain_runs} streams one after another"
                        )
                        print_chain(rows, width)
                rounds.append(rd)
        finally:
            for proc in reversed(procs):
                c.stop(proc)
            stop_plain(chain_target)
            if tlog is not None:
                tlog.close()
    print(
        f"\nsummary over {len(rounds)} round(s): medians; ratio = flowrun / "
        f"FlowSphere (below 1: flowrun is faster or cheaper)"
    )
    print("\n".join(summarize(rounds, labels)))
    print(f"load average at the end: {loadavg()}")
    print(f"reproduce: {reproduce(args, servers)}")
    if args.json:
        Path(args.json).write_text(
            c.dump(
                {
                    "args": vars(args) | {"flowsphere": str(args.flowsphere)},
                    "rounds": rounds,
                }
            )
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every process started here was stopped", file=sys.stderr)
        sys.exit(130)
