"""The stop generation: a stop recorded elsewhere is seen before the next step."""

from __future__ import annotations

import pytest

from flowrun.store.control import SQLiteChannel

from .streams import make_flow, node

STOPPER = """
import sys
from flowrun.store.control import SQLiteChannel
from flowrun.store.history import Store
store = Store(sys.argv[1])
SQLiteChannel(store, registry=None).request_stop(sys.argv[2])
store.close()
"""


def _stop_from_another_process(data_dir, execution_id):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", STOPPER, str(data_dir), execution_id],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


@pytest.fixture
def channel(tmp_path):
    from flowrun.store.history import Store

    store = Store(tmp_path / "data")
    channel = SQLiteChannel(store, registry=None)
    yield channel
    channel.close()
    store.close()


class CountingChannel:
    """Wraps a channel, counting the table lookups."""

    def __init__(self, channel):
        self.channel = channel
        self.lookups = 0

    def stop_generation(self):
        return self.channel.stop_generation()

    def stop_requested(self, execution_id):
        self.lookups += 1
        return self.channel.stop_requested(execution_id)


def test_stop_recorded_by_another_process_between_steps_stops_the_run(
    tmp_path, channel, hits
):
    from flowrun.engine.flow import normalize
    from flowrun.engine.run import Run
    from flowrun.web.executions import WebControls

    counting = CountingChannel(channel)
    controls = WebControls("exec-1", counting)
    flow = make_flow(hits, *(node(f"n{i}", "/items") for i in range(1, 6)))
    run = Run(normalize(flow), controls=controls, execution_id="exec-1")
    events = run.events()
    seen = []
    for ev in events:
        seen.append(ev)
        if ev.name == "step" and ev.record["id"] == "n2":
            # Unrelated stops change the generation; the run looks and goes on.
            _stop_from_another_process(tmp_path / "data", "exec-other")
        if ev.name == "step" and ev.record["id"] == "n3":
            before = counting.lookups
            _stop_from_another_process(tmp_path / "data", "exec-1")
    end = seen[-1]
    assert end.name == "end"
    assert end.interrupted is True and end.success is False
    assert [r["id"] for r in end.executionLog] == ["n1", "n2", "n3"]
    assert end.notRun == ["n4", "n5"]
    assert hits.paths() == ["/demo/items"] * 3
    # Looked up before n1 (nothing known yet), after the unrelated stop (before
    # n3) and after the stop (before n4); before n2 the generation had not moved.
    assert counting.lookups == 3
    assert before == 2


def test_stop_generation_moves_after_the_row_and_not_otherwise(channel):
    first = channel.stop_generation()
    assert isinstance(first, int)
    channel.send_input("exec-1", 0, {"a": 1})
    channel.send_continue("exec-1", 1)
    assert channel.stop_generation() == first
    channel.request_stop("exec-1")
    assert channel.stop_generation() == first + 1
    assert channel.stop_requested("exec-1")


def test_stop_generation_is_shared_by_the_channels_of_one_data_directory(tmp_path):
    from flowrun.store.history import Store

    stores = Store(tmp_path), Store(tmp_path)
    a, b = (SQLiteChannel(store, registry=None) for store in stores)
    try:
        start = a.stop_generation()
        b.request_stop("exec-9")
        assert a.stop_generation() == start + 1
        assert a.stop_requested("exec-9")
    finally:
        for channel, store in zip((a, b), stores, strict=True):
            channel.close()
            store.close()
    assert a.stop_generation() is None  # closed: callers read the table


def test_without_a_stop_generation_every_check_reads_the_table(channel):
    from flowrun.web.executions import WebControls

    class NoGeneration(CountingChannel):
        def stop_generation(self):
            return None

    counting = NoGeneration(channel)
    controls = WebControls("exec-2", counting)
    assert [controls.external_stop() for _ in range(3)] == [False] * 3
    channel.request_stop("exec-2")
    assert controls.external_stop() is True
    assert counting.lookups == 4
