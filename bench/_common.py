"""Shared helpers for the server benchmarks: processes, ports, /proc sampling, stats.

Everything here talks only to 127.0.0.1 and to processes the benchmark started itself.
Nothing here imports gevent: the orchestrating scripts stay unpatched; the load
generators and the target server patch themselves in their own processes.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_nofile() -> int:
    """Raise this process's open-file limit to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, env=None, cwd=None, stdout=None, stderr=None, stdin=None):
    """Start a process in its own process group (so it can be ended as a whole)."""
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        stdin=stdin,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """End a process group started by :func:`start`: TERM, then KILL after grace."""
    if proc is None or proc.poll() is not None and not _group_alive(proc.pid):
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _group_alive(proc.pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_http(url: str, timeout: float = 30.0, proc=None, statuses=(200,)) -> None:
    """Wait until ``url`` answers with one of ``statuses`` (bounded), or raise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in statuses:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code in statuses:
                return
            last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {last}")


# --- /proc ------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers of its master)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the ')' the fields start at index 3 (state); utime=14, stime=15 (1-based)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def box_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class ServerProbe:
    """CPU and RSS of a gunicorn master's worker children (workers summed)."""

    def __init__(self, master_pid: int, self_only: bool = False):
        self.master = master_pid
        self.self_only = self_only  # a single-process stand-in (no workers)

    def workers(self) -> list[int]:
        if self.self_only:
            return [self.master]
        return sorted(children(self.master))

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.workers())

    def rss(self) -> int:
        return sum(rss_bytes(p) for p in self.workers())

    def per_worker(self) -> dict[int, dict]:
        return {
            p: {"cpu_s": cpu_seconds(p), "rss": rss_bytes(p), "fds": open_fds(p)}
            for p in self.workers()
        }


# --- stats --------------------------------------------------------------------------


def pct(values, q: float):
    """The q-th percentile (0–100) by nearest rank; None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def fmt_ms(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def fmt_s(seconds) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


# --- the processes ----------------------------------------------------------------


def start_target(port: int, log=None, procs: int = 1):
    """Start bench/target_server.py on 127.0.0.1:port and wait for it."""
    cmd = [PYTHON, str(BENCH / "target_server.py"), "--port", str(port)]
    if procs > 1:
        cmd += ["--procs", str(procs)]
    proc = start(cmd, stdout=log, stderr=log or subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc=proc)
    except Exception:
        stop(proc)
        raise
    return proc


def server_env(port: int, workdir: Path, workers: int, extra=None) -> dict:
    env = dict(os.environ)
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        env.pop(k, None)
    env.update(
        PORT=str(port),
        WEB_CONCURRENCY=str(workers),
        FLOWRUN_BIND="127.0.0.1",
        FLOWRUN_DATA_DIR=str(workdir / "data"),
        FLOWRUN_FLOWS_DIR=str(workdir / "flows"),
    )
    env.update(extra or {})
    return env


def start_server(
    port: int,
    workdir: Path,
    workers: int,
    extra_env=None,
    log=None,
    repo=None,
    app: str = "app:app",
    ready=(200,),
):
    """Start ``gunicorn -c gunicorn.conf.py app:app`` in the repo; wait for health.

    ``repo``: another checkout to serve (e.g. a patched copy), default this one.
    ``app``: another WSGI app; ``standin_app:app`` is found in ``bench/``.
    ``ready``: the health statuses that mean it is up (503: up, but it cannot
    record history).
    """
    env = server_env(port, workdir, workers, extra_env)
    repo = Path(repo) if repo else ROOT
    paths = [str(repo)] if repo != ROOT else []  # its flowrun, not the installed one
    if app.startswith("standin_app:"):
        paths.append(str(Path(__file__).resolve().parent))
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    gunicorn = str(Path(PYTHON).parent / "gunicorn")
    cmd = [gunicorn, "-c", "gunicorn.conf.py", "--workers", str(workers), app]
    proc = start(cmd, env=env, cwd=str(repo), stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}/api/health"
        wait_http(url, timeout=60, proc=proc, statuses=ready)
        # all workers up (the first health answer can come while others boot)
        deadline = time.monotonic() + 30
        while len(children(proc.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    except Exception:
        stop(proc)
        raise
    return proc


def step_flow(target: str, steps: int, step_ms: int, prompt: bool = False) -> dict:
    """The benchmark flow: ``steps`` GETs of target's /step?ms=step_ms.

    With ``prompt``, the first node asks for input first (so the stream idles).
    """
    nodes = []
    for i in range(steps):
        node = {
            "id": f"s{i + 1}",
            "name": f"Step {i + 1}",
            "method": "GET",
            "url": f"/step?ms={step_ms}&i={i + 1}",
            "validations": [{"httpStatusCode": 200}],
        }
        if prompt and i == 0:
            node["userPrompts"] = {"code": "Code?"}
        nodes.append(node)
    return {
        "name": f"bench {steps}x{step_ms}ms",
        "defaults": {"baseUrl": target, "timeout": 30},
        "nodes": nodes,
    }


def dump(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)


# --- py-spy raw (collapsed) stacks ---------------------------------------------


def pyspy_top(path: str, limit: int = 25, contains: str = "") -> str:
    """Summarise a ``py-spy record -f raw`` file: self and inclusive % per function."""
    selfc: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        selfc[frames[-1]] = selfc.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    if not total:
        return f"{path}: no samples"
    out = [f"{path}: {total} samples"]
    out.append("  inclusive %:")
    rows = sorted(incl.items(), key=lambda kv: -kv[1])
    for f, n in [r for r in rows if contains in r[0]][:limit]:
        out.append(f"    {100 * n / total:5.1f}  {f}")
    out.append("  self %:")
    for f, n in sorted(selfc.items(), key=lambda kv: -kv[1])[:limit]:
        out.append(f"    {100 * n / total:5.1f}  {f}")
    return "\n".join(out)


def _short(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` → ``func (pkg/mod.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{name} ({file})"


if __name__ == "__main__":
    # python bench/_common.py PROFILE.txt [LIMIT] [SUBSTRING]: summarise a py-spy file
    print(
        pyspy_top(
            sys.argv[1],
            int(sys.argv[2]) if len(sys.argv) > 2 else 25,
            sys.argv[3] if len(sys.argv) > 3 else "",
        )
    )
