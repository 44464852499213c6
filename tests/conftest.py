"""Shared fixtures: a real target HTTP server on 127.0.0.1, a CLI runner.

Every test runs offline: ``tests/offline`` refuses any traffic off loopback, in this
process and in every Python process a test starts, and a test that tries fails.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from .offline import sitecustomize as offline
from .target import Target


@pytest.fixture(scope="session", autouse=True)
def offline_log(tmp_path_factory):
    """The file where processes of this run record attempts to leave the machine;
    child processes load the same guard through PYTHONPATH."""
    log = tmp_path_factory.mktemp("offline") / "attempts.log"
    log.touch()
    with pytest.MonkeyPatch.context() as env:
        env.setenv(offline.LOG_VARIABLE, str(log))
        env.setenv("PYTHONPATH", str(Path(offline.__file__).parent), os.pathsep)
        yield log


@pytest.fixture(autouse=True)
def stays_on_this_machine(offline_log):
    """Fail the test if any process tried to reach an address off loopback."""
    start = offline_log.stat().st_size
    yield
    with offline_log.open() as f:
        f.seek(start)
        attempts = f.read()
    if attempts:
        pytest.fail("Traffic off this machine was refused:\n" + attempts, False)


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
    """A real ``redis-server`` on a free port (skipped if not installed; in CI,
    a failure)."""
    from .services import Redis, redis_missing

    reason = redis_missing()
    if reason:
        _missing(reason)
    server = Redis()
    yield server.url
    server.stop()


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(reason: str):
    """Skip a test whose server is not installed; in CI, fail it."""
    if IN_CI:
        pytest.fail(f"{reason} (CI installs it: .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server of the session (skipped if not installed)."""
    from .services import Postgres, postgres_missing

    reason = postgres_missing()
    if reason:
        _missing(reason)
    server = Postgres()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres, request):
    """A new empty database on the session's PostgreSQL, for this test alone."""
    name = "t_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    return postgres.fresh_database(name)
