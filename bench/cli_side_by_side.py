"""``flowrun run`` side by side with Newman and Step CI: startup and cost per step.

The same workload for the three, against the same local target
(``bench/target.py``, in its own process):

- **one step**: ``POST /login``, one status check: what starting the tool costs;
- **100-step chain**: ``POST /login`` → ``POST /token`` (the session id from the
  login) → 98 × ``GET /items/N`` with ``Authorization: Bearer <token>``, each checked
  for status 200, ``.id`` equal to N and a JSON Content-Type (as in
  ``engine_overhead.py``); per step = (chain − one step) / 99;
- **10 flows**: ten one-step flows, ``flowrun run`` with ``--jobs 4`` (and ``--jobs
  1``); Newman and Step CI run one collection / workflow per process, so theirs is
  ten processes one after the other: measured with ``--npm-ten``, otherwise shown as
  ten times their one-step median (the processes are the same).

flowrun runs as ``python -m flowrun run FILE`` with this interpreter (bytecode caching
on, as for a user); Newman and Step CI are installed from npm into a temporary
directory that is removed afterwards (``--npm-dir DIR`` keeps and reuses one;
``--only flowrun`` skips them). Each measurement alternates the tools, ``--rounds``
times, and reports the median and the minimum wall time and the peak RSS of the
process (``wait4``). The machine's ``uptime`` is printed first and last: other work
on the box shows in the numbers, so compare the tools within one run.

    .venv/bin/python bench/cli_side_by_side.py
    .venv/bin/python bench/cli_side_by_side.py --rounds 11 --npm-dir /tmp/cli-bench-npm
    .venv/bin/python bench/cli_side_by_side.py --only flowrun
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine_overhead import make_flow, start_target  # noqa: E402

NEWMAN = "newman@6.2.2"
STEPCI = "stepci@2.8.2"
HEADERS = {"Accept": "application/json", "X-Client": "flowrun-bench"}


# -- the workload in each tool's format ----------------------------------------------
def flowrun_flows(base: str, folder: Path) -> dict[str, list[str]]:
    one = make_flow(base, 2)
    one["nodes"] = one["nodes"][:1]
    one["nodes"][0]["validations"] = [{"httpStatusCode": 200}]
    paths = {"one": folder / "one.json", "chain": folder / "chain.json"}
    paths["one"].write_text(json.dumps(one))
    paths["chain"].write_text(json.dumps(make_flow(base, 100)))
    many = folder / "ten"
    many.mkdir()
    for i in range(10):
        (many / f"flow-{i:02d}.json").write_text(json.dumps({**one, "name": f"f{i}"}))
    return {
        "one": [str(paths["one"])],
        "chain": [str(paths["chain"])],
        "ten": [str(many)],
    }


def _pm_request(name, method, url, body=None, headers=None, tests=()):
    header = [{"key": k, "value": v} for k, v in {**HEADERS, **(headers or {})}.items()]
    request = {"method": method, "header": header, "url": url}
    if body is not None:
        header.append({"key": "Content-Type", "value": "application/json"})
        request["body"] = {"mode": "raw", "raw": json.dumps(body)}
    item = {"name": name, "request": request}
    if tests:
        item["event"] = [
            {"listen": "test", "script": {"type": "text/javascript", "exec": tests}}
        ]
    return item


def postman_collection(base: str, steps: int) -> dict:
    status = "pm.test('status', () => pm.response.to.have.status(200));"
    items = [
        _pm_request(
            "Log in",
            "POST",
            f"{base}/login",
            body={"username": "bench", "password": "secret"},
            tests=[
                status,
                "const b = pm.response.json();",
                "pm.test('session', () => pm.expect(b.sessionId).to.exist);",
                "pm.collectionVariables.set('session', b.sessionId);",
            ],
        )
    ]
    if steps > 1:
        items.append(
            _pm_request(
                "Token",
                "POST",
                f"{base}/token",
                body={"session": "{{session}}"},
                tests=[
                    status,
                    "const b = pm.response.json();",
                    "pm.test('token', () => pm.expect(b.token).to.exist);",
                    "pm.collectionVariables.set('token', b.token);",
                ],
            )
        )
    for i in range(1, steps - 1):
        items.append(
            _pm_request(
                f"Item {i}",
                "GET",
                f"{base}/items/{i}",
                headers={"Authorization": "Bearer {{token}}"},
                tests=[
                    status,
                    "pm.test('id', () => "
                    f"pm.expect(pm.response.json().id).to.eql({i}));",
                    "pm.test('type', () => pm.expect(pm.response.headers"
                    ".get('Content-Type')).to.include('application/json'));",
                ],
            )
        )
    return {
        "info": {
            "name": "chain",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/"
            "collection.json",
        },
        "item": items,
        "variable": [{"key": "session", "value": ""}, {"key": "token", "value": ""}],
    }


def stepci_workflow(base: str, steps: int) -> dict:
    login = {
        "name": "Log in",
        "http": {
            "url": f"{base}/login",
            "method": "POST",
            "headers": HEADERS,
            "json": {"username": "bench", "password": "secret"},
            "captures": {"session": {"jsonpath": "$.sessionId"}},
            "check": {"status": 200, "jsonpath": {"$.sessionId": [{"isString": True}]}},
        },
    }
    chain = [login]
    if steps > 1:
        chain.append(
            {
                "name": "Token",
                "http": {
                    "url": f"{base}/token",
                    "method": "POST",
                    "headers": HEADERS,
                    "json": {"session": "${{captures.session}}"},
                    "captures": {"token": {"jsonpath": "$.token"}},
                    "check": {
                        "status": 200,
                        "jsonpath": {"$.token": [{"isString": True}]},
                    },
                },
            }
        )
    for i in range(1, steps - 1):
        chain.append(
            {
                "name": f"Item {i}",
                "http": {
                    "url": f"{base}/items/{i}",
                    "method": "GET",
                    "headers": {
                        **HEADERS,
                        "Authorization": "Bearer ${{captures.token}}",
                    },
                    "check": {
                        "status": 200,
                        "jsonpath": {"$.id": i},
                        "headers": {"Content-Type": [{"match": "application/json"}]},
                    },
                },
            }
        )
    return {"version": "1.1", "name": "chain", "tests": {"chain": {"steps": chain}}}


def npm_flows(base: str, folder: Path) -> tuple[dict, dict]:
    """Newman's collections and Step CI's workflows, by scenario: ``{"one": [file],
    "chain": [file], "ten": [file × 10]}`` each."""
    pm, sc = {}, {}
    for name, steps in (("one", 1), ("chain", 100)):
        path = folder / f"{name}.postman_collection.json"
        path.write_text(json.dumps(postman_collection(base, steps)))
        pm[name] = [str(path)]
        path = folder / f"{name}.stepci.json"  # Step CI reads JSON workflows too
        path.write_text(json.dumps(stepci_workflow(base, steps)))
        sc[name] = [str(path)]
    pm["ten"], sc["ten"] = pm["one"] * 10, sc["one"] * 10
    return pm, sc


# -- running and measuring ------------------------------------------------------
def timed(cmd: list[str], env: dict) -> tuple[float, int]:
    """Run ``cmd`` to its end: ``(wall seconds, peak RSS bytes)``; it must pass."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}… exited {proc.returncode}: {err[-800:]}")
    return wall, usage.ru_maxrss * 1024


def run_all(commands: list[list[str]], env: dict) -> tuple[float, int]:
    """Several processes one after the other: total wall, largest peak RSS."""
    wall, rss = 0.0, 0
    for cmd in commands:
        w, r = timed(cmd, env)
        wall, rss = wall + w, max(rss, r)
    return wall, rss


def tools(flows_dir: Path, base: str, npm_dir: Path | None, npm_ten: bool) -> dict:
    """``{tool: {scenario: [commands]}}``."""
    py = [sys.executable, "-m", "flowrun", "run"]
    fr = flowrun_flows(base, flows_dir)
    out = {
        "flowrun": {
            "one": [py + fr["one"]],
            "chain": [py + fr["chain"]],
            "ten --jobs 4": [py + fr["ten"] + ["--jobs", "4"]],
            "ten --jobs 1": [py + fr["ten"]],
        }
    }
    if npm_dir is None:
        return out
    pm, sc = npm_flows(base, flows_dir)
    newman = [str(npm_dir / "node_modules" / ".bin" / "newman"), "run"]
    stepci = [str(npm_dir / "node_modules" / ".bin" / "stepci"), "run"]
    out["newman"] = {"one": [newman + pm["one"]], "chain": [newman + pm["chain"]]}
    out["stepci"] = {"one": [stepci + sc["one"]], "chain": [stepci + sc["chain"]]}
    if npm_ten:
        out["newman"]["ten (10 processes)"] = [newman + [f] for f in pm["ten"]]
        out["stepci"]["ten (10 processes)"] = [stepci + [f] for f in sc["ten"]]
    return out


def npm_install(folder: Path) -> None:
    if (folder / "node_modules" / ".bin" / "stepci").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    print(f"installing {NEWMAN} and {STEPCI} into {folder} …", flush=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            NEWMAN,
            STEPCI,
        ],
        cwd=folder,
        check=True,
    )


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=["flowrun"], help="skip Newman and Step CI")
    parser.add_argument("--npm-dir", type=Path, help="install into (and keep) DIR")
    parser.add_argument(
        "--npm-ten",
        action="store_true",
        help="also run Newman and Step CI ten times in a row (slow)",
    )
    args = parser.parse_args()

    print("uptime:", uptime())
    work = Path(tempfile.mkdtemp(prefix="cli-bench-"))
    npm_dir = None
    if args.only is None:
        npm_dir = args.npm_dir or work / "npm"
        npm_install(npm_dir)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        FLOWRUN_FLOWS_DIR=str(work / "workspace"),
        STEPCI_DISABLE_ANALYTICS="1",
        NO_COLOR="1",
    )
    proc, base = start_target("asyncio")
    results: dict = {}
    try:
        flows_dir = work / "flows"
        flows_dir.mkdir()
        table = tools(flows_dir, base, npm_dir, args.npm_ten)
        for scenarios in table.values():  # warm up: bytecode, caches
            for commands in scenarios.values():
                run_all(commands, env)
        names = list(table)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for tool in order:
                for scenario, commands in table[tool].items():
                    wall, rss = run_all(commands, env)
                    results.setdefault((tool, scenario), []).append((wall, rss))
    finally:
        proc.kill()
        proc.wait()
        if args.npm_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work / "flows", ignore_errors=True)

    print(f"\n{'tool':8} {'scenario':20} {'median':>10} {'min':>10} {'peak RSS':>9}")
    medians = {}
    for (tool, scenario), runs in results.items():
        walls = [w for w, _ in runs]
        medians[(tool, scenario)] = statistics.median(walls)
        rss = max(r for _, r in runs) / 2**20
        print(
            f"{tool:8} {scenario:20} {statistics.median(walls) * 1000:8.0f} ms "
            f"{min(walls) * 1000:8.0f} ms {rss:6.0f} MiB"
        )
    tools_seen = list(dict.fromkeys(t for t, _ in results))
    print("\nper step of the chain ((chain − one step) / 99, medians):")
    for tool in tools_seen:
        per = (medians[(tool, "chain")] - medians[(tool, "one")]) / 99
        print(f"  {tool:8} {per * 1000:6.2f} ms")
    if not args.npm_ten and len(tools_seen) > 1:
        print("\nten one-step flows (10 × the one-step median for Newman, Step CI):")
        for tool in tools_seen[1:]:
            print(f"  {tool:8} {10 * medians[(tool, 'one')] * 1000:8.0f} ms")
    print("\nuptime:", uptime())


if __name__ == "__main__":
    main()
