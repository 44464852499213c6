"""Prometheus metrics of the server, served at ``/metrics`` (``prometheus_client``).

gunicorn runs several worker processes, and a scrape reaches one of them: each
process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (a directory
``gunicorn.conf.py`` names, ``prepare``) and ``/metrics`` adds up every process's files
(``prometheus_client``'s multiprocess mode), so the figures are the server's. Without
that directory (the development server, the tests' app) the figures are this
process's own.

Metrics:

- ``flowrun_runs_started_total``, ``flowrun_runs_ended_total{outcome}``
  (``completed``, ``failed``, ``interrupted``);
- ``flowrun_steps_total{status}`` (``completed``, ``failed``, ``skipped``) and
  ``flowrun_step_duration_seconds`` (a histogram);
- ``flowrun_live_streams``: SSE streams open now;
- ``flowrun_control_latency_seconds{kind}``: from a stop, an answer or a
  ``continue`` recorded by one process to its delivery in the one that holds the run;
- ``flowrun_store_errors_total``: writes to history that failed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TEMP_PREFIX = "flowrun-metrics-"  # the directory gunicorn.conf.py makes
CONTENT_TYPE = CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry()
RUNS_STARTED = Counter(
    "flowrun_runs_started", "Runs started (streamed or to the end).", registry=REGISTRY
)
RUNS_ENDED = Counter(
    "flowrun_runs_ended", "Runs ended, by outcome.", ["outcome"], registry=REGISTRY
)
STEPS = Counter("flowrun_steps", "Steps, by status.", ["status"], registry=REGISTRY)
STEP_SECONDS = Histogram(
    "flowrun_step_duration_seconds",
    "How long a step took (request, retries and checks).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
LIVE_STREAMS = Gauge(
    "flowrun_live_streams",
    "SSE streams open now.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
CONTROL_LATENCY = Histogram(
    "flowrun_control_latency_seconds",
    "From a control (stop, input, continue) recorded to its delivery to the "
    "process holding the run.",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "flowrun_store_errors", "Writes to history that failed.", registry=REGISTRY
)

# The labelled children, looked up once: a run's events use them.
STEP_BY_STATUS = {s: STEPS.labels(s) for s in ("completed", "failed", "skipped")}
ENDED_BY_OUTCOME = {
    s: RUNS_ENDED.labels(s) for s in ("completed", "failed", "interrupted")
}


def exposition() -> bytes:
    """The metrics in Prometheus's text format: every worker's, or this process's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def prepare() -> None:
    """In gunicorn's master, before the workers start: remove the metric files a
    previous server left (``gunicorn.conf.py`` names the directory before anything
    imports ``prometheus_client``, which reads it once).

    Only prometheus_client's own ``*.db`` files go: the directory may be one the
    operator named, holding other things.
    """
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)


def cleanup() -> None:
    """In gunicorn's master, as it exits: remove the directory it made for them."""
    path = os.environ.get(MULTIPROC_ENV, "")
    if os.path.basename(path.rstrip("/")).startswith(TEMP_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """A worker is gone: its live gauges stop counting (its counters stay)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


def observe_step(record: dict) -> None:
    counter = STEP_BY_STATUS.get(record.get("status"))
    if counter is not None:
        counter.inc()
    duration = record.get("duration")
    if isinstance(duration, (int, float)):
        STEP_SECONDS.observe(duration)


def observe_end(outcome: str) -> None:
    counter = ENDED_BY_OUTCOME.get(outcome)
    if counter is not None:
        counter.inc()
