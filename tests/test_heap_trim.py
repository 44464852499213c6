"""Returning freed heap to the OS: when the registry's trimmer calls the trim."""

from __future__ import annotations

import platform

import pytest

from flowrun.web.executions import Registry
from flowrun.web.memory import Trimmer, malloc_trim


class Recorded:
    """A counting trim and a start that keeps the scheduled job for the test."""

    def __init__(self):
        self.trims = 0
        self.jobs = []

    def trim(self):
        self.trims += 1

    def start(self, job):
        self.jobs.append(job)

    def run_jobs(self):
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            job()


class FakeExecution:
    def __init__(self, ident):
        self.id = ident


def registry_with(recorded: Recorded, **options) -> Registry:
    trimmer = Trimmer(
        recorded.trim,
        start=recorded.start,
        sleep=lambda seconds: None,
        collect=lambda: None,
        **options,
    )
    return Registry(100_000, trimmer)


def fill(registry: Registry, count: int, prefix: str = "e") -> list[str]:
    ids = [f"{prefix}{i}" for i in range(count)]
    for ident in ids:
        registry.add(FakeExecution(ident))
    return ids


def test_one_trim_after_a_drop_from_a_peak_not_one_per_removal():
    recorded = Recorded()
    registry = registry_with(recorded)
    ids = fill(registry, 1000)

    for ident in ids[:750]:  # 250 left: a quarter of the peak, not under it
        registry.remove(ident)
    assert recorded.jobs == []

    for ident in ids[750:]:  # under a quarter, then down to none
        registry.remove(ident)
    assert len(recorded.jobs) == 1
    assert recorded.trims == 0  # scheduled, not called in remove

    recorded.run_jobs()
    assert recorded.trims == 1
    assert len(registry) == 0

    # the peak starts again from the current count: removals do nothing more
    registry.remove("e0")
    recorded.run_jobs()
    assert recorded.trims == 1


def test_a_new_spike_after_a_trim_trims_again():
    recorded = Recorded()
    registry = registry_with(recorded)
    for spike in ("a", "b"):
        ids = fill(registry, 1200, prefix=spike)
        for ident in ids:
            registry.remove(ident)
        recorded.run_jobs()
    assert recorded.trims == 2


def test_removals_while_a_trim_is_scheduled_do_not_schedule_another():
    recorded = Recorded()
    registry = registry_with(recorded)
    ids = fill(registry, 2000)
    for ident in ids[:1600]:
        registry.remove(ident)
    fill(registry, 100, prefix="x")  # churn below the peak while it waits
    for ident in ids[1600:]:
        registry.remove(ident)
    assert len(recorded.jobs) == 1
    recorded.run_jobs()
    assert recorded.trims == 1
    assert registry.trimmer.peak == 100


@pytest.mark.parametrize(
    ("peak", "left"),
    [
        (999, 0),  # never high enough
        (4000, 1000),  # down to a quarter, not under it
    ],
)
def test_no_trim(peak, left):
    recorded = Recorded()
    registry = registry_with(recorded)
    ids = fill(registry, peak)
    for ident in ids[: peak - left]:
        registry.remove(ident)
    recorded.run_jobs()
    assert recorded.trims == 0


def test_steady_churn_never_trims():
    recorded = Recorded()
    registry = registry_with(recorded)
    fill(registry, 1000)
    for i in range(5000):  # one ends, one starts
        registry.remove(f"e{i}")
        registry.add(FakeExecution(f"e{i + 1000}"))
    recorded.run_jobs()
    assert recorded.trims == 0


def test_removing_an_unknown_id_is_not_a_drop():
    recorded = Recorded()
    registry = registry_with(recorded)
    fill(registry, 1000)
    for i in range(1000):
        registry.remove(f"unknown{i}")
    assert recorded.jobs == []


def test_without_a_trim_function_nothing_is_scheduled():
    recorded = Recorded()
    trimmer = Trimmer(
        None, start=recorded.start, sleep=lambda seconds: None, collect=lambda: None
    )
    registry = Registry(100_000, trimmer)
    for ident in fill(registry, 1000):
        registry.remove(ident)
    assert recorded.jobs == []


def test_a_failing_trim_is_logged_and_the_trimmer_carries_on(caplog):
    def broken():
        raise OSError("no")

    recorded = Recorded()
    trimmer = Trimmer(
        broken, start=recorded.start, sleep=lambda seconds: None, collect=lambda: None
    )
    registry = Registry(100_000, trimmer)
    for ident in fill(registry, 1000):
        registry.remove(ident)
    recorded.run_jobs()
    assert "malloc_trim failed" in caplog.text
    assert trimmer.scheduled is False


def test_the_wait_for_the_drain_is_bounded():
    recorded = Recorded()
    waits = []

    def sleep(seconds):  # the count keeps changing: a churn that never settles
        waits.append(seconds)
        trimmer.live = len(waits)

    trimmer = Trimmer(
        recorded.trim,
        start=recorded.start,
        sleep=sleep,
        collect=lambda: None,
        max_waits=5,
    )
    registry = Registry(100_000, trimmer)
    for ident in fill(registry, 1000):
        registry.remove(ident)
    recorded.run_jobs()
    assert len(waits) == 5
    assert recorded.trims == 1


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_malloc_trim_is_found_on_glibc():
    trim = malloc_trim()
    assert trim is not None
    assert trim() in (0, 1)


def test_the_free_lists_are_emptied_before_the_trim():
    calls = []
    recorded = Recorded()
    trimmer = Trimmer(
        lambda: calls.append("trim"),
        start=recorded.start,
        sleep=lambda seconds: None,
        collect=lambda: calls.append("collect"),
    )
    registry = Registry(100_000, trimmer)
    for ident in fill(registry, 1000):
        registry.remove(ident)
    recorded.run_jobs()
    assert calls == ["collect", "trim"]


_LARGE_BLOCKS = """
import sys
from pathlib import Path
from flowrun.web import memory

def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

if sys.argv[1] == "mapped":
    assert memory.map_large_blocks()
base = rss()
for size in (300_000, 2_000_000, 8_000_000):  # as a run's bodies and events grow
    blocks, pins = [], []
    for i in range(20):
        block = "x" * size + str(i)
        blocks.append(block)
        pins.append(str(i) * 600)  # small blocks between: the heap cannot shrink
    del blocks
print((rss() - base) // 2**20)
"""


@pytest.mark.skipif(malloc_trim() is None, reason="glibc only")
def test_large_blocks_leave_no_memory_behind_once_freed():
    import subprocess
    import sys

    def kept(mode):
        out = subprocess.run(
            [sys.executable, "-c", _LARGE_BLOCKS, mode],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout)

    # glibc alone keeps most of the ~180 MiB of 8 MB blocks it gave out.
    assert kept("heap") > 100
    assert kept("mapped") < 20
