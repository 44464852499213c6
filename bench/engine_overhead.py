"""Engine overhead per step against a bare ``requests.Session`` (target ≤ 1.15×).

Starts the fast target (``bench/target.py``) in its own process so its CPU is not
counted against the client, then runs a 100-step chain — login → token → 98 item
fetches, each checked for status, a jsonpath ``equals`` and a header, the token sent
in ``Authorization`` through a placeholder — once through
``flowrun.engine.Run(normalize(flow)).events()`` and once as the same 100 requests on a
bare ``requests.Session`` (same headers and bodies, body read and JSON-decoded, the
same three checks in plain Python). After a warm-up the two alternate for ``--rounds``
rounds (the order flips every round so drift hits both sides alike).

Prints, per side, the median wall ms per step and the median client CPU ms per step
(``time.process_time``: this process only, the target excluded), and the ratio
engine/bare as the median of the per-round ratios. ``--serialize`` also turns each
event into JSON, as the SSE writer and the history store will. ``--profile FILE``
writes a cProfile of extra engine rounds for ``python -m pstats``. The last line is
the engine's own logic per step, measured with ``Client.send`` stubbed out.

A second floor, ``bare-noenv``, is the bare Session with ``trust_env = False``
(requests then skips its per-call proxy, .netrc and CA-bundle environment lookups).

    .venv/bin/python bench/engine_overhead.py
    .venv/bin/python bench/engine_overhead.py --rounds 9 --server gunicorn
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _common  # noqa: E402

from flowrun.engine.flow import normalize  # noqa: E402
from flowrun.engine.run import Run  # noqa: E402


# -- the target ---------------------------------------------------------------------
def _wait_listening(port: int, proc: subprocess.Popen, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"target exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("target did not start listening")


def start_target(kind: str) -> tuple[subprocess.Popen, str]:
    """Start the target in a child process; return it and its base URL."""
    if kind == "asyncio":
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "target.py"), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            proc.kill()
            raise SystemExit("target did not start")
        return proc, f"http://127.0.0.1:{line[1]}"
    port = _common.free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [
            str(gunicorn),
            "--chdir",
            str(HERE),
            "-k",
            "gevent",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--keep-alive",
            "30",
            "target:app",
        ],
    )
    _wait_listening(port, proc)
    return proc, f"http://127.0.0.1:{port}"


# -- the workload -------------------------------------------------------------------
def make_flow(base: str, steps: int) -> dict:
    """login → token → ``steps - 2`` item fetches, FlowSphere-style."""
    nodes = [
        {
            "id": "login",
            "name": "Log in",
            "method": "POST",
            "url": "/login",
            "body": {"username": "{{ .vars.user }}", "password": "secret"},
            "validations": [
                {"httpStatusCode": 200},
                {"jsonpath": ".sessionId", "exists": True},
            ],
        },
        {
            "id": "token",
            "name": "Token",
            "method": "POST",
            "url": "/token",
            "body": {"session": "{{ .responses.login.sessionId }}"},
            "validations": [
                {"httpStatusCode": 200},
                {"jsonpath": ".token", "exists": True},
            ],
        },
    ]
    for i in range(1, steps - 1):
        nodes.append(
            {
                "id": f"item{i}",
                "name": f"Item {i}",
                "method": "GET",
                "url": f"/items/{i}",
                "headers": {"Authorization": "Bearer {{ .responses.token.token }}"},
                "validations": [
                    {"httpStatusCode": 200},
                    {"jsonpath": ".id", "equals": i},
                    {"header": "Content-Type", "contains": "application/json"},
                ],
            }
        )
    return {
        "name": "engine overhead",
        "variables": {"user": "bench"},
        "defaults": {
            "baseUrl": base,
            "timeout": 10,
            "headers": {"Accept": "application/json", "X-Client": "flowrun-bench"},
        },
        "nodes": nodes,
    }


def run_engine(flow: dict, serialize: bool) -> None:
    last = None
    for event in Run(normalize(flow)).events():
        last = event
        if serialize:
            json.dumps({"event": event.name, **event.to_dict()}, default=str)
    if not last.success:
        failed = [r for r in last.executionLog if r["status"] != "completed"]
        raise SystemExit(f"engine run failed: {failed[:1]}")


def engine_logic_only(flow: dict, serialize: bool, rounds: int = 30) -> float:
    """CPU ms per step of the engine with ``Client.send`` stubbed out (no HTTP)."""
    from flowrun.http import client

    def fake_send(self, method, url, headers, data, timeout):
        last = url.rsplit("/", 1)[1]
        if last == "login":
            body = {"sessionId": "s-1234567890", "user": "bench"}
        elif last == "token":
            body = {"token": "tok-s-1234567890", "expiresIn": 3600}
        else:
            n = int(last)
            body = {"id": n, "name": f"item {n}", "price": n * 1.25, "tags": ["b"]}
        headers = {"Content-Type": "application/json", "X-Item-Id": last}
        lower = {k.lower(): v for k, v in headers.items()}
        return client.Reply(200, "OK", headers, lower, body, body, 80, False, 0.1)

    real = client.Client.send
    client.Client.send = fake_send
    try:
        for _ in range(5):
            run_engine(flow, serialize)
        times = []
        for _ in range(rounds):
            cpu = time.process_time()
            run_engine(flow, serialize)
            times.append(time.process_time() - cpu)
    finally:
        client.Client.send = real
    return statistics.median(times) * 1000 / len(flow["nodes"])


def run_bare(base: str, steps: int, trust_env: bool = True) -> None:
    """The physical floor: the same requests with a bare Session and plain checks.

    ``trust_env=False`` is a stricter floor: requests skips its per-call proxy,
    .netrc and CA-bundle lookups in the environment.
    """
    common = {"Accept": "application/json", "X-Client": "flowrun-bench"}
    timeout = (10, 10)
    with requests.Session() as s:
        s.trust_env = trust_env
        r = s.post(
            base + "/login",
            data=json.dumps({"username": "bench", "password": "secret"}).encode(),
            headers={**common, "Content-Type": "application/json"},
            timeout=timeout,
        )
        login = json.loads(r.content)
        assert r.status_code == 200 and login.get("sessionId")
        r = s.post(
            base + "/token",
            data=json.dumps({"session": login["sessionId"]}).encode(),
            headers={**common, "Content-Type": "application/json"},
            timeout=timeout,
        )
        token = json.loads(r.content)["token"]
        assert r.status_code == 200
        auth = {**common, "Authorization": f"Bearer {token}"}
        for i in range(1, steps - 1):
            r = s.get(f"{base}/items/{i}", headers=auth, timeout=timeout)
            item = json.loads(r.content)
            assert r.status_code == 200
            assert str(item["id"]) == str(i)
            assert "application/json" in r.headers["Content-Type"]


def measure(fn) -> tuple[float, float]:
    """Return ``(wall s, client CPU s)`` of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps in the chain")
    parser.add_argument("--rounds", type=int, default=11, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds")
    parser.add_argument(
        "--server",
        choices=("asyncio", "gunicorn"),
        default="asyncio",
        help="target: minimal asyncio server (default) or gunicorn + gevent",
    )
    parser.add_argument(
        "--serialize", action="store_true", help="also JSON-encode every event"
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile 3 engine rounds")
    args = parser.parse_args(argv)
    if args.steps < 3 or args.rounds < 1:
        parser.error("--steps must be at least 3 and --rounds at least 1")

    proc, base = start_target(args.server)
    try:
        flow = make_flow(base, args.steps)
        sides = {
            "engine": lambda: run_engine(flow, args.serialize),
            "bare": lambda: run_bare(base, args.steps),
            "bare-noenv": lambda: run_bare(base, args.steps, trust_env=False),
        }
        for _ in range(args.warmup):
            for fn in sides.values():
                fn()
        rounds = []
        names = list(sides)
        for i in range(args.rounds):
            # rotate the order so that drift and cache effects hit every side
            order = names[i % len(names) :] + names[: i % len(names)]
            rounds.append({name: measure(sides[name]) for name in order})
        if args.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
            for _ in range(3):
                sides["engine"]()
            prof.disable()
            prof.dump_stats(args.profile)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    report(args, rounds, names)
    logic = engine_logic_only(make_flow(base, args.steps), args.serialize)
    print(f"engine logic alone (Client.send stubbed): {logic:.3f} CPU ms/step")


def report(args, rounds: list[dict], names: list[str]) -> None:
    n = args.steps

    def per_step(name: str, which: int) -> float:
        return statistics.median(r[name][which] for r in rounds) * 1000 / n

    def ratio(a: str, b: str, which: int) -> float:
        return statistics.median(r[a][which] / r[b][which] for r in rounds)

    print(
        f"steps={n} rounds={args.rounds} warmup={args.warmup} server={args.server}"
        f" serialize={args.serialize} python={sys.version.split()[0]}"
        f" requests={requests.__version__} cpus={os.cpu_count()}"
    )
    print(f"{'':12}{'wall ms/step':>14}{'client CPU ms/step':>20}")
    for name in names:
        print(f"{name:12}{per_step(name, 0):14.3f}{per_step(name, 1):20.3f}")
    for floor in names[1:]:
        per_round = " ".join(f"{r['engine'][0] / r[floor][0]:.3f}" for r in rounds)
        print(
            f"engine/{floor} (median of rounds): wall {ratio('engine', floor, 0):.3f}"
            f"  CPU {ratio('engine', floor, 1):.3f}  [wall by round: {per_round}]"
        )


if __name__ == "__main__":
    main()
