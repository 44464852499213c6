"""Shared fixtures: a real target HTTP server on 127.0.0.1, a CLI runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from .target import Target


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
