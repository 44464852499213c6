"""Shared fixtures: a real target HTTP server on 127.0.0.1, a CLI runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from .target import Target, free_port


@pytest.fixture(scope="session")
def target():
    """The demo API served on 127.0.0.1 in a thread; records every request."""
    server = Target()
    yield server
    server.close()


@pytest.fixture
def hits(target):
    """The target with its request record cleared for this test."""
    target.clear()
    return target


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def app(tmp_path):
    """The flowrun app on a temporary data and workspace directory."""
    from flowrun import create_app

    app = create_app(
        {
            "TESTING": True,
            "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
            "FLOWRUN_HEARTBEAT_S": 0.5,
            "FLOWRUN_TOKEN": None,
            "FLOWRUN_REDIS_URL": None,
            "FLOWRUN_ALLOWED_HOSTS": "",
            "FLOWRUN_BLOCKED_NETWORKS": "169.254.0.0/16,fd00:ec2::254/128",
        }
    )
    yield app
    app.extensions["flowrun"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def redis_url():
    """A real ``redis-server`` on a free port (skips the test if not installed)."""
    import shutil
    import socket
    import subprocess
    import time

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    proc = subprocess.Popen(
        [exe, *args, "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)
