"""jq programs run in a helper process with a time limit (flowrun/engine/jq.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import jq
import pytest

from flowrun.engine import jq as jqrun
from flowrun.engine.jq import TIMEOUT_S as JQ_TIMEOUT_S
from flowrun.engine.run import EngineSettings

from .target import end_of, run_events, steps_of

SPINS = ("last(range(1e9))", "def f: f; f", "[limit(1e9; repeat(1))]")
BODY = {"items": [{"id": 1, "n": 2.5}, {"id": 2, "n": None}], "s": "é\u2028\U0001f600"}


@pytest.mark.parametrize(
    ("program", "value"),
    [
        (".", BODY),
        (".items[] | .id", BODY),
        ("[.items[].n] | add", BODY),
        (".s | explode", BODY),
        ("1e1000, 100000000000000000001, 1.0, -0, 0.1 + 0.2", None),
        ("{b: 1, a: [true, false, null]}", None),
        ("empty", BODY),
        (". | length", "a text body"),
        ("tostring", 12345678901234567890),
        ("keys_unsorted", {"z": 1, "a": 2}),
    ],
)
def test_outputs_are_those_of_jq_in_process(program, value):
    expected = jq.compile(program).input_value(value).all()
    got = jqrun.run_jq(program, value, timeout=JQ_TIMEOUT_S)
    assert repr(got) == repr(expected)  # also tells 1 from 1.0


@pytest.mark.parametrize(
    ("program", "value"),
    [
        (".[", [1]),
        ('error("boom")', [1]),
        (".a.b", [1]),
        ("undefined_f", [1]),
        (".", "a lone surrogate \ud83d"),
    ],
)
def test_errors_carry_jqs_message(program, value):
    with pytest.raises(ValueError) as in_process:
        jq.compile(program).input_value(value).all()
    with pytest.raises(jqrun.JqError) as helper:
        jqrun.run_jq(program, value, timeout=JQ_TIMEOUT_S)
    assert str(helper.value) == str(in_process.value)


def check_flow(target, program):
    return {
        "name": "jq limit",
        "defaults": {"baseUrl": target.url + "/demo"},
        "nodes": [
            {
                "id": "spin",
                "name": "spin",
                "method": "GET",
                "url": "/items",
                "validations": [{"jq": program, "exists": True}],
            },
            {
                "id": "next",
                "name": "next",
                "method": "GET",
                "url": "/items",
                "validations": [{"jq": ".items | length", "greaterThan": 0}],
            },
        ],
    }


@pytest.mark.parametrize("program", SPINS[:2])
def test_a_program_that_runs_for_ever_fails_at_the_limit(hits, program):
    began = time.monotonic()
    events = run_events(
        check_flow(hits, program),
        settings=EngineSettings(step_cpu_s=0.5),
        continue_on_failure=True,
    )
    took = time.monotonic() - began
    spin, after = steps_of(events)
    assert spin["status"] == "failed"
    [result] = [v for v in spin["validations"] if not v["passed"]]
    assert result["message"] == (
        f"jq {program!r} gave up: the step used up its CPU budget of 0.5s "
        "(FLOWRUN_STEP_CPU_S, shared by its conditions, placeholders and validations)"
    )
    # the run went on, and the next jq validation had a fresh helper
    assert after["status"] == "completed", after
    assert all(v["passed"] for v in after["validations"])
    assert end_of(events)["success"] is False
    assert took < 15


def test_the_next_call_after_a_timeout_starts_a_fresh_helper():
    with pytest.raises(jqrun.JqTimeout):
        jqrun.run_jq(SPINS[2], None, timeout=0.5)
    assert jqrun.run_jq(".a + 1", {"a": 1}, timeout=JQ_TIMEOUT_S) == [2]


def test_a_helper_that_died_is_replaced():
    assert jqrun.run_jq(".", 1, timeout=JQ_TIMEOUT_S) == [1]
    pool = jqrun._pool()
    for helper in pool.idle:
        os.kill(helper.proc.pid, signal.SIGKILL)
        helper.proc.wait()
    assert jqrun.run_jq(".", 2, timeout=JQ_TIMEOUT_S) == [2]


def test_importing_starts_no_helper():
    code = (
        "import flowrun.engine.checks, flowrun.engine.jq as j; print(j._POOL is None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "True", out.stderr


def test_reading_a_large_body_is_not_counted_against_the_limit(monkeypatch):
    # near FLOWRUN_MAX_VALIDATE_BYTES: jq takes most of a second just to read it,
    # far more than this limit. Reading gets time of its own; made ample here, so
    # that the outcome does not hang on how busy the machine is.
    monkeypatch.setattr(jqrun, "READ_BYTES_PER_S", 500_000)  # ~30 s for this body
    body = {"items": [{"id": i, "name": f"item {i}", "x": 1.5} for i in range(300_000)]}
    assert jqrun.run_jq(".items | length", body, timeout=0.01) == [300_000]


@pytest.fixture
def fresh_helpers():
    """Helpers started after the test changes a limit, and none left behind."""
    jqrun._pool().close()
    yield
    jqrun._pool().close()


def test_an_output_over_the_limit_fails_without_reaching_the_server(
    fresh_helpers, monkeypatch
):
    monkeypatch.setattr(jqrun, "MAX_OUTPUT_BYTES", 10_000)
    with pytest.raises(jqrun.JqError, match="over the limit of 10000"):
        jqrun.run_jq("[range(10000)]", None, timeout=JQ_TIMEOUT_S)
    assert jqrun.run_jq("[range(3)]", None, timeout=JQ_TIMEOUT_S) == [[0, 1, 2]]


def test_a_program_that_runs_out_of_memory_fails_and_the_next_one_runs(
    fresh_helpers, monkeypatch
):
    # "x" * 1e9 is a gigabyte in well under the time limit
    monkeypatch.setattr(jqrun, "MEMORY_LIMIT_BYTES", 256 << 20)
    with pytest.raises(jqrun.JqFailure, match="out of memory.*256 MiB"):
        jqrun.run_jq('"x" * 1e9 | length', None, timeout=JQ_TIMEOUT_S)
    assert jqrun.run_jq(".a", {"a": 1}, timeout=JQ_TIMEOUT_S) == [1]


def test_jq_sees_nothing_of_the_servers_environment(fresh_helpers, monkeypatch):
    monkeypatch.setenv("FLOWRUN_TOKEN", "secret")
    assert jqrun.run_jq("$ENV.FLOWRUN_TOKEN", None) == [None]
    assert jqrun.run_jq("env | length", None) == [0]
    assert jqrun.run_jq("$ENV", None) == [{}]


def test_jq_imports_no_file_of_the_servers(fresh_helpers, monkeypatch, tmp_path):
    # jq reads `import "name" as $data` from name.json in the current directory
    (tmp_path / "settings.json").write_text('{"token": "secret"}')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(jqrun.JqError, match="module not found: settings"):
        jqrun.run_jq('import "settings" as $s; $s', None)


def test_a_flows_jq_env_reads_nothing(hits, monkeypatch, fresh_helpers):
    monkeypatch.setenv("FLOWRUN_TOKEN", "secret")
    flow = check_flow(hits, ".")
    flow["nodes"][0]["validations"] = [
        {"jq": "$ENV.FLOWRUN_TOKEN", "equals": "x"},
        {"jq": "env.FLOWRUN_TOKEN", "equals": "x"},
    ]
    (spin, _) = steps_of(run_events(flow, continue_on_failure=True))
    messages = [v["message"] for v in spin["validations"]]
    assert messages == [
        "$ENV.FLOWRUN_TOKEN: expected 'x', got 'null'",
        "env.FLOWRUN_TOKEN: expected 'x', got 'null'",
    ]
    assert "secret" not in str(spin)


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_flow_validation_compiles_jq_in_the_helper_only():
    # jq folds the constant as it compiles: 40 MB per program, which an
    # in-process compile cache would keep for good
    from flowrun.engine import validation

    before = _resident()
    for i in range(3):
        program = f'"x1" * {20_000_000 + i} | length'
        doc = {
            "nodes": [
                {
                    "id": "a",
                    "name": "A",
                    "method": "GET",
                    "url": "http://127.0.0.1:9/",
                    "validations": [{"jq": program, "greaterThan": 0}],
                }
            ]
        }
        assert validation.check(doc) == ([], [])
    assert _resident() - before < 50 << 20
    errors, _ = validation.check(
        {
            "nodes": [
                {
                    "id": "a",
                    "name": "A",
                    "method": "GET",
                    "url": "http://127.0.0.1:9/",
                    "validations": [{"jq": ".items | map(", "exists": True}],
                }
            ]
        }
    )
    assert [e["message"] for e in errors] == [
        "bad jq program: syntax error, unexpected end of file at <top-level>, "
        "line 1, column 13:"
    ]
