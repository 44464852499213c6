"""The suite's own guard (tests/offline): what a test runs cannot leave this machine."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from .offline import sitecustomize as offline

OFF_MACHINE = ("203.0.113.1", 80)  # TEST-NET-3, kept for documentation


@pytest.fixture
def attempts(monkeypatch, tmp_path):
    """This test's own record of refused attempts (so they do not fail it)."""
    log = tmp_path / "attempts.log"
    monkeypatch.setenv(offline.LOG_VARIABLE, str(log))
    return log


def test_a_connection_off_loopback_is_refused_and_recorded(attempts):
    for family, address in (
        (socket.AF_INET, OFF_MACHINE),
        (socket.AF_INET6, ("2001:db8::1", 80)),
    ):
        with socket.socket(family) as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(address)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(ConnectionRefusedError):
            sock.sendto(b"x", ("198.51.100.7", 53))
    assert attempts.read_text().count("tried to reach") == 3


def test_names_do_not_resolve_except_localhost(attempts):
    for name in ("example.com", "no-such-host.invalid", "metadata.google.internal"):
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo(name, 80)
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("169.254.169.254", 80)  # a literal: nothing is sent
    assert not attempts.exists()


def test_loopback_is_reachable(target):
    with socket.create_connection(("127.0.0.1", target.port), timeout=5):
        pass
    with socket.create_connection(("localhost", target.port), timeout=5):
        pass


def test_a_process_the_test_starts_is_guarded_too(attempts):
    code = f"import socket; socket.create_connection({OFF_MACHINE!r}, timeout=5)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert out.returncode != 0
    assert "Refused by tests/offline" in out.stderr
    assert "203.0.113.1" in attempts.read_text()
