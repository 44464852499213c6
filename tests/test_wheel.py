"""The installable package: a wheel built from the repository, installed into a new
virtual environment outside the checkout, serves Studio and runs a sample flow.

``flowrun serve`` there is gunicorn with gevent workers (the deployment), started
from another directory: it answers ``/api/health``, serves Studio's page and its
static files from inside the installed package, and ``flowrun run`` runs a seeded
sample flow against the served demo API.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .target import free_port

ROOT = Path(__file__).resolve().parent.parent

# Building the wheel and installing it into a new venv takes a minute or two.
pytestmark = pytest.mark.timeout(600)


def _run(*cmd, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _get(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read(), resp.headers.get("Content-Type", "")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A new venv with only the built wheel (and its dependencies) in it."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(dist),
        str(ROOT),
    )
    wheel = next(dist.glob("flowrun-*.whl"))
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    # The versions CI tests (requirements.txt) within the wheel's ranges; pip's
    # constraints take no extras.
    pins = tmp / "constraints.txt"
    pins.write_text(
        re.sub(r"\[[^\]]*\]", "", (ROOT / "requirements.txt").read_text("utf-8"))
    )
    # The one step that leaves the machine: pip fetches the dependencies from the
    # package index (or its cache), as any install does; without the offline guard.
    installing = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run(
        str(venv / "bin" / "pip"),
        "install",
        "-q",
        "-c",
        str(pins),
        f"{wheel}[postgres,redis]",
        env=installing,
    )
    return venv


def _clean_env(**extra) -> dict:
    """The environment without the checkout's settings or paths, but with the
    offline guard (tests/offline: on PYTHONPATH, it brings nothing of flowrun)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLOWRUN_", "PYTHON", "VIRTUAL_ENV"))
        and k not in ("PORT", "WEB_CONCURRENCY")
    }
    guard = os.environ.get("FLOWRUN_TEST_OFFLINE_LOG")
    if guard:
        env["FLOWRUN_TEST_OFFLINE_LOG"] = guard
        env["PYTHONPATH"] = str(ROOT / "tests" / "offline")
    env.update(extra)
    return env


def test_the_installed_package_runs_outside_the_checkout(installed, tmp_path):
    python = installed / "bin" / "python"
    where = _run(
        str(python),
        "-c",
        "import flowrun.resources as r; print(r.templates_dir())",
        cwd=tmp_path,
        env=_clean_env(),
    ).stdout.strip()
    assert where.startswith(str(installed)), where  # not the checkout's

    work = tmp_path / "work"
    work.mkdir()
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(
        [str(installed / "bin" / "flowrun"), "serve", "--port", str(port)],
        cwd=work,
        env=_clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body, _ = _get(base + "/api/health")
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "flowrun serve did not answer"
                time.sleep(0.2)
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, page, _ = _get(base + "/")
        assert status == 200 and b"Go with the Flow" in page
        status, script, kind = _get(base + "/static/js/main.js")
        assert status == 200 and "javascript" in kind and len(script) > 100
        served_by = (tmp_path / "serve.log").read_text()
        assert "gevent" in served_by.lower()  # gunicorn's gevent workers
        assert f"open http://127.0.0.1:{port}/" in served_by
        # The workspace was seeded with the samples, pointed at this server.
        flow = work / "flows" / "simple-chain.json"
        assert f"127.0.0.1:{port}/demo" in flow.read_text()
        other = tmp_path / "elsewhere"
        other.mkdir()
        done = subprocess.run(
            [str(installed / "bin" / "flowrun"), "run", str(flow)],
            cwd=other,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"127.0.0.1:{port}/demo" in done.stdout
        assert (work / ".flowrun").is_dir()  # history in the working directory
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()
