"""Waiting in tests: on a condition, with a deadline and a message, not a sleep."""

from __future__ import annotations

import time

import pytest


def wait_until(predicate, timeout: float = 5.0, message: str = "", interval=0.01):
    """Call ``predicate`` until it returns something truthy, and return that.

    Fail the test, naming ``message`` and the last value, if ``timeout`` seconds
    pass first. The deadline only bounds a wait that went wrong: a busy machine
    makes a test slower, never makes it fail.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            pytest.fail(f"waited {timeout:g} s for {what}; last saw {value!r}")
        time.sleep(interval)
