"""The flowrun CLI, run against the real target server (no mocks)."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flowrun import __version__
from flowrun.cli.main import cli

from . import streams
from .target import free_port
from .waits import wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def write(tmp_path: Path, doc, name: str = "flow.json") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def reap(proc: subprocess.Popen) -> None:
    """Kill a child if it is still running and close its pipes (no ResourceWarning)."""
    proc.kill()
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def sleeping(pid: int) -> bool:
    """Whether the process waits in a system call (Linux's state S)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "S"


def base(target) -> str:
    return f"baseUrl={target.url}/demo"


def flow(*nodes, **top) -> dict:
    return {
        "name": top.pop("name", "Test flow"),
        "variables": {"baseUrl": "http://127.0.0.1:9/demo"},
        "defaults": {"baseUrl": "{{ .vars.baseUrl }}"},
        "nodes": list(nodes),
        **top,
    }


def node(id_, url, **extra) -> dict:
    return {"id": id_, "name": extra.pop("name", id_), "method": "GET", "url": url}


FAILING = flow(
    node("list", "/items"),
    {
        **node("wrong", "/items/1"),
        "validations": [
            {"httpStatusCode": 200},
            {"jsonpath": ".name", "equals": "durian"},
        ],
    },
    node("after", "/items/2"),
    name="Failing flow",
)


@pytest.mark.parametrize(
    ("example", "extra", "steps"),
    [
        ("simple-chain.json", [], 2),
        ("login-chain.json", [], 4),
        (
            "user-input.json",
            ["--input", "username=ada", "--input", "password=secret"],
            2,
        ),
        ("validations-showcase.json", [], 6),
        ("slow-steps.json", ["--var", "ms=5"], 5),
    ],
)
def test_examples_pass(runner, target, example, extra, steps):
    path = EXAMPLES / example
    doc = json.loads(path.read_text())
    assert doc["name"] and doc["description"]
    assert doc["defaults"]["baseUrl"] == "{{ .vars.baseUrl }}"
    assert doc["variables"]["baseUrl"] == "http://127.0.0.1:8000/demo"

    result = runner.invoke(cli, ["run", str(path), "--var", base(target), *extra])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len([ln for ln in lines if ln.startswith(("✓ #", "⊘ #"))]) == steps
    assert lines[-1].startswith("✓ Passed:")


def test_login_chain_runs_tester_node_and_skips_admin_node(runner, hits):
    path = EXAMPLES / "login-chain.json"
    result = runner.invoke(cli, ["run", str(path), "--var", base(hits)])

    assert result.exit_code == 0, result.output
    assert "✓ #3 Testers list the items" in result.stdout
    assert "⊘ #4" in result.stdout
    assert "skipped: node 'me' field .roles: expected to contain 'admin'" in (
        result.stdout
    )
    assert hits.paths() == ["/demo/login", "/demo/me", "/demo/items"]


def test_failing_step_exits_1_and_lists_failed_validation(runner, hits, tmp_path):
    path = write(tmp_path, FAILING)
    result = runner.invoke(cli, ["run", path, "--var", base(hits)])

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Failing flow (3 steps, exec-")
    assert lines[1].startswith(f"✓ #1 list  GET {hits.url}/demo/items  200  ")
    assert lines[2].startswith(f"✗ #2 wrong  GET {hits.url}/demo/items/1  200  ")
    assert lines[2].endswith(" ms")
    assert lines[3] == "    ✗ .name: expected 'durian', got 'apple'"
    assert lines[4].startswith(
        "✗ Failed at step #2: 2 executed, 0 skipped, 1 failed, 1 not run in "
    )
    # The flow stops at the failure: step 3 is never requested.
    assert hits.paths() == ["/demo/items", "/demo/items/1"]


def test_transport_error_is_shown_under_the_step(runner, target, tmp_path):
    port = free_port()
    path = write(tmp_path, flow({**node("down", "/items"), "timeout": 2}))
    result = runner.invoke(
        cli, ["run", path, "--var", f"baseUrl=http://127.0.0.1:{port}/demo"]
    )

    # A target that cannot be reached is not a failed check: exit 3.
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[1].startswith(f"✗ #1 down  GET http://127.0.0.1:{port}/demo/items  —")
    assert lines[2].startswith("    Network error: ")


def test_continue_on_failure_runs_every_step(runner, hits, tmp_path):
    path = write(tmp_path, FAILING)
    result = runner.invoke(
        cli, ["run", path, "--var", base(hits), "--continue-on-failure"]
    )

    assert result.exit_code == 1
    assert "✓ #3 after" in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        "✗ Failed at step #2: 3 executed, 0 skipped, 1 failed in "
    )
    assert hits.paths() == ["/demo/items", "/demo/items/1", "/demo/items/2"]


def test_start_step_skips_earlier_nodes(runner, hits, tmp_path):
    path = write(tmp_path, FAILING)
    result = runner.invoke(cli, ["run", path, "--var", base(hits), "--start-step", "2"])

    assert result.exit_code == 0, result.output
    assert "⊘ #1 list" in result.stdout
    assert "skipped: before startStep 2" in result.stdout
    assert "⊘ #2 wrong" in result.stdout
    assert "✓ #3 after" in result.stdout
    assert hits.paths() == ["/demo/items/2"]


def test_start_step_past_the_end_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(cli, ["run", write(tmp_path, FAILING), "--start-step", "3"])

    assert result.exit_code == 2
    assert "--start-step" in result.stderr
    assert "past the last node" in result.stderr


def test_quiet_prints_only_the_summary(runner, target):
    path = EXAMPLES / "simple-chain.json"
    result = runner.invoke(cli, ["run", str(path), "--var", base(target), "--quiet"])

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("✓ Passed: 2 executed, 0 skipped, 0 failed in ")


def test_quiet_still_prints_failed_steps(runner, target, tmp_path):
    path = write(tmp_path, FAILING)
    result = runner.invoke(cli, ["run", path, "--var", base(target), "-q"])

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("✗ #2 wrong")
    assert lines[1] == "    ✗ .name: expected 'durian', got 'apple'"
    assert lines[2].startswith("✗ Failed at step #2")


# -- prompts ------------------------------------------------------------------------
def test_input_answers_a_prompt(runner, hits):
    path = EXAMPLES / "user-input.json"
    result = runner.invoke(
        cli,
        ["run", str(path), "--var", base(hits)]
        + ["--input", "username=grace", "--input", "password=secret"],
    )

    assert result.exit_code == 0, result.output
    assert "✓ #1 Log in with your answers" in result.stdout
    assert hits.paths() == ["/demo/login", "/demo/me"]


def test_prompt_without_answer_on_non_tty_fails_clearly(runner, hits):
    path = EXAMPLES / "user-input.json"
    result = runner.invoke(
        cli, ["run", str(path), "--var", base(hits), "--input", "username=grace"]
    )

    # A prompt with no answer is a usage mistake, not a failed check: exit 2.
    assert result.exit_code == 2
    assert "✗ #1 Log in with your answers" in result.stdout
    assert (
        "    step #1 asks for password and stdin is not a terminal: "
        "pass --input password=..."
    ) in result.stdout
    assert hits.paths() == []


def test_prompts_are_asked_on_a_terminal(target):
    """A real pseudo-terminal as stdin: the prompts are asked and answered."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowrun", "run", str(EXAMPLES / "user-input.json")]
        + ["--var", base(target)],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    seen = b""
    try:
        for answer, prompt in ((b"grace\n", b"works):"), (b"secret\n", b"secret):")):
            deadline = time.monotonic() + 10
            while prompt not in seen and time.monotonic() < deadline:
                seen += os.read(controller, 1024)
            assert prompt in seen
            os.write(controller, answer)
        out, _ = proc.communicate(timeout=10)
    finally:
        reap(proc)
        os.close(controller)

    assert proc.returncode == 0, out
    assert b"Username (any name works): " in seen
    assert "✓ #1 Log in with your answers" in out.decode()


# -- Ctrl-C -------------------------------------------------------------------------
def test_ctrl_c_finishes_the_step_in_flight_then_stops(hits, tmp_path):
    report = tmp_path / "log.json"
    # The example, with the target holding step 2's request until Ctrl-C is sent.
    doc = json.loads((EXAMPLES / "slow-steps.json").read_text())
    doc["nodes"][1]["url"] += "&hold=slow-2"
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowrun", "run", write(tmp_path, doc)]
        + ["--var", base(hits), "--var", "ms=400", "--json", str(report)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        # Step 1's line arrives as step 2 starts; interrupt while step 2 is in flight.
        while not any(line.startswith("✓ #1") for line in lines):
            line = proc.stdout.readline()
            assert line, "flowrun exited early"
            lines.append(line)
        wait_until(lambda: hits.held("slow-2"), message="step 2's request")
        proc.send_signal(signal.SIGINT)
        hits.release("slow-2")
        out, err = proc.communicate(timeout=10)
    finally:
        hits.release("slow-2")
        reap(proc)

    assert proc.returncode == 130
    out_lines = out.splitlines()
    assert out_lines[0].startswith("✓ #2 Slow step 2")
    assert out_lines[-1].startswith(
        "⊘ Interrupted: 2 executed, 0 skipped, 0 failed, 3 not run in "
    )
    assert "Interrupting: the step in flight finishes" in err
    log = json.loads(report.read_text())
    assert log["interrupted"] is True
    assert log["notRun"] == ["slow-3", "slow-4", "slow-5"]


# -- reports ------------------------------------------------------------------------
def test_junit_report(runner, target, tmp_path):
    doc = {
        **FAILING,
        "nodes": [
            FAILING["nodes"][0],
            {
                **node("skip-me", "/items"),
                "conditions": [
                    {"source": "variable", "variable": "nope", "exists": True}
                ],
            },
            *FAILING["nodes"][1:],
        ],
    }
    out = tmp_path / "junit.xml"
    result = runner.invoke(
        cli, ["run", write(tmp_path, doc), "--var", base(target), "--junit", str(out)]
    )

    assert result.exit_code == 1
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite.get("name") == "Failing flow"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        "4",
        "1",
        "2",
    )
    assert float(suite.get("time")) >= 0
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "#1 list [GET /items]",
        "#2 skip-me [GET /items]",
        "#3 wrong [GET /items/1]",
        "#4 after [GET /items/2]",
    ]
    assert {c.get("classname") for c in cases} == {"Failing flow"}
    assert cases[0].find("failure") is None and cases[0].find("skipped") is None
    assert cases[1].find("skipped").get("message") == (
        "variable 'nope': expected to exist, but it does not"
    )
    failure = cases[2].find("failure")
    assert failure.get("message") == (
        "Validation failed: .name: expected 'durian', got 'apple'"
    )
    assert "✗ .name: expected 'durian', got 'apple'" in failure.text
    assert "✓ status 200" in failure.text
    assert cases[3].find("skipped").get("message") == "not run: an earlier step failed"


def test_json_report(runner, target, tmp_path):
    out = tmp_path / "log.json"
    result = runner.invoke(
        cli,
        ["run", write(tmp_path, FAILING), "--var", base(target), "--json", str(out)],
    )

    assert result.exit_code == 1
    log = json.loads(out.read_text())
    assert log["executionId"].startswith("exec-")
    assert log["executionId"] in result.stdout
    assert log["success"] is False
    assert log["interrupted"] is False
    assert (log["stepsExecuted"], log["stepsSkipped"], log["stepsFailed"]) == (2, 0, 1)
    assert log["notRun"] == ["after"]
    assert log["duration"] >= 0
    assert [r["status"] for r in log["executionLog"]] == ["completed", "failed"]
    assert log["executionLog"][1]["response"]["body"]["name"] == "apple"


def test_unwritable_report_is_a_clean_error(runner, target, tmp_path):
    path = EXAMPLES / "simple-chain.json"
    (tmp_path / "a-file").write_text("")
    bad = tmp_path / "a-file" / "out.xml"  # its directory cannot be created
    result = runner.invoke(
        cli, ["run", str(path), "--var", base(target), "--junit", str(bad)]
    )

    assert result.exit_code == 2
    assert "cannot create the directory" in result.stderr
    assert "Traceback" not in result.output


# -- variables ----------------------------------------------------------------------
ECHO = flow(
    {
        "id": "echo",
        "name": "echo",
        "method": "POST",
        "url": "/echo",
        "body": {
            "n": "{{ .vars.n }}",
            "flag": "{{ .vars.flag }}",
            "s": "{{ .vars.s }}",
            "list": "{{ .vars.list }}",
        },
        "validations": [
            {"jq": ".json.n | type", "equals": "number"},
            {"jq": ".json.flag | type", "equals": "boolean"},
            {"jq": ".json.s | type", "equals": "string"},
            {"jq": ".json.list | type", "equals": "array"},
            {"jsonpath": ".json.n", "equals": "{{ .vars.expectN }}"},
            {"jsonpath": ".json.s", "equals": "{{ .vars.expectS }}"},
        ],
    },
    variables={"baseUrl": "x", "n": 0, "flag": False, "s": "", "list": []},
)


def test_var_values_are_json_when_they_parse(runner, target, tmp_path):
    result = runner.invoke(
        cli,
        ["run", write(tmp_path, ECHO), "--var", base(target)]
        + ["--var", "n=5", "--var", "flag=true", "--var", "s=hello world"]
        + [
            "--var",
            "list=[1, 2]",
            "--var",
            "expectN=5",
            "--var",
            "expectS=hello world",
        ],
    )

    assert result.exit_code == 0, result.output


def test_var_that_is_not_json_stays_text(runner, target, tmp_path):
    result = runner.invoke(
        cli,
        ["run", write(tmp_path, ECHO), "--var", base(target)]
        + ["--var", "n=1", "--var", "flag=false", "--var", "list=[]"]
        + ["--var", "s=007", "--var", "expectN=1", "--var", "expectS=007"],
    )

    assert result.exit_code == 0, result.output


def test_vars_file_applies_under_var(runner, target, tmp_path):
    vars_file = write(
        tmp_path,
        {"baseUrl": f"{target.url}/demo", "n": 3, "flag": True, "s": "from file"}
        | {"list": [], "expectN": 4, "expectS": "from file"},
        "vars.json",
    )
    result = runner.invoke(
        cli,
        ["run", write(tmp_path, ECHO), "--vars-file", vars_file, "--var", "n=4"],
    )

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--var", "novalue"], "'novalue' is not KEY=VALUE"),
        (["--var", "=5"], "'=5' is not KEY=VALUE"),
        (["--input", "password"], "'password' is not KEY=VALUE"),
        (["--start-step", "-1"], "--start-step"),
    ],
)
def test_bad_options_are_usage_errors(runner, tmp_path, args, message):
    result = runner.invoke(cli, ["run", write(tmp_path, FAILING), *args])

    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "must hold a JSON object"),
        ("{nope", "invalid JSON at line 1, column 2"),
    ],
)
def test_bad_vars_file(runner, tmp_path, content, message):
    vars_file = write(tmp_path, content, "vars.json")
    result = runner.invoke(
        cli, ["run", write(tmp_path, FAILING), "--vars-file", vars_file]
    )

    assert result.exit_code == 2
    assert message in result.stderr


# -- invalid flows ------------------------------------------------------------------
def test_run_invalid_flow_exits_2_with_located_errors(runner, hits, tmp_path):
    path = write(tmp_path, {"name": "empty", "nodes": []})
    result = runner.invoke(cli, ["run", path])

    assert result.exit_code == 2
    assert f"{path}: nodes: " in result.stderr
    assert "✗ Invalid flow: nothing was run (1 error)" in result.stderr
    assert result.stdout == ""
    assert hits.paths() == []


@pytest.mark.parametrize("command", ["run", "validate"])
def test_unreadable_or_broken_json_exits_2(runner, tmp_path, command):
    broken = write(tmp_path, '{"nodes": [', "broken.json")
    result = runner.invoke(cli, [command, broken])

    assert result.exit_code == 2
    assert f"{broken}: invalid JSON at line 1, column 12" in result.output
    assert "Traceback" not in result.output

    missing = str(tmp_path / "missing.json")
    result = runner.invoke(cli, [command, missing])

    assert result.exit_code == 2
    assert f"{missing}: cannot read: No such file or directory" in result.output


def test_validate_valid_files(runner):
    files = sorted(str(p) for p in EXAMPLES.glob("*.json"))
    result = runner.invoke(cli, ["validate", *files])

    assert result.exit_code == 0, result.output
    for path in files:
        assert f"{path}: valid" in result.stdout


def test_validate_reports_every_error_with_its_path(runner, tmp_path):
    bad = write(
        tmp_path,
        flow(
            node("a", "/items"),
            node("a", "/items/1"),
            node("c", "/items/{{ .responses.nowhere.id }}"),
            {**node("d", "/items"), "validations": [{"jsonpath": ".x", "equalz": 1}]},
        ),
        "bad.json",
    )
    good = write(tmp_path, flow(node("ok", "/items")), "good.json")
    result = runner.invoke(cli, ["validate", good, bad])

    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert f"{good}: valid" in lines
    errors = [ln for ln in lines if ln.startswith(f"{bad}: nodes[")]
    assert any(
        ln.startswith(f"{bad}: nodes[1]") and "duplicate" in ln.lower() for ln in errors
    )
    assert any(ln.startswith(f"{bad}: nodes[2]") and "nowhere" in ln for ln in errors)
    assert any(ln.startswith(f"{bad}: nodes[3]") and "equalz" in ln for ln in errors)
    assert f"{bad}: invalid (" in result.stdout


# -- the command itself -------------------------------------------------------------
def test_version_via_python_m():
    result = subprocess.run(
        [sys.executable, "-m", "flowrun", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0
    assert result.stdout.strip() == f"flowrun, version {__version__}"


@pytest.mark.parametrize("command", [[], ["run"], ["validate"]])
def test_help_documents_exit_codes(runner, command):
    result = runner.invoke(cli, [*command, "--help"])

    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout
    assert "3    a target could not be reached" in result.stdout
    assert "130  interrupted" in result.stdout


@pytest.mark.parametrize("command", ["run", "validate", "serve", "import"])
def test_every_option_has_help(command):
    sub = cli.get_command(None, command)  # commands load when used
    for param in sub.params:
        if param.param_type_name == "option":
            assert param.help, f"{command} {param.opts} has no help"


def test_serve_and_import_help(runner):
    result = runner.invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.stdout and "--port" in result.stdout

    result = runner.invoke(cli, ["import", "--help"])
    assert result.exit_code == 0
    assert "postman" in result.stdout and "-o, --output" in result.stdout


def test_printer_on_a_terminal_shows_the_step_in_flight(capsys):
    from flowrun.cli.report import Printer
    from flowrun.engine import events

    record = {
        "step": 1,
        "name": "List",
        "status": "completed",
        "method": "GET",
        "url": "http://x/items",
        "response": {"status": 200},
        "duration": 0.012,
    }
    printer = Printer(live=True)
    printer(events.StepStart("exec-1", 1, 0, "list", "List", "GET", "http://x/items"))
    assert capsys.readouterr().out == "… #1 List  GET http://x/items"
    printer(events.StepEvent("exec-1", record))
    assert capsys.readouterr().out == (
        "\r"
        + " " * len("… #1 List  GET http://x/items")
        + "\r✓ #1 List  GET http://x/items  200  12 ms\n"
    )
    # Quiet output never shows steps in flight.
    Printer(quiet=True, live=True)(
        events.StepStart("exec-1", 1, 0, "list", "List", "GET", "http://x/items")
    )
    assert capsys.readouterr().out == ""


def test_warnings_are_marked_and_do_not_fail(runner, target, tmp_path):
    path = write(tmp_path, flow({**node("get", "/items"), "body": {"ignored": 1}}))
    result = runner.invoke(cli, ["validate", path])

    assert result.exit_code == 0, result.output
    assert f"{path}: nodes[0].body: warning: " in result.stdout
    assert f"{path}: valid (1 warning)" in result.stdout

    result = runner.invoke(cli, ["run", path, "--var", base(target)])

    assert result.exit_code == 0, result.output
    assert f"{path}: nodes[0].body: warning: " in result.stderr


def test_ctrl_c_at_a_prompt_interrupts_the_run(hits):
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowrun", "run", str(EXAMPLES / "user-input.json")]
        + ["--var", base(hits)],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 10
        while b"works):" not in seen and time.monotonic() < deadline:
            seen += os.read(controller, 1024)
        # The prompt text is written just before input() blocks in read(); a signal
        # landing between the two waits for the read to return, so let it block.
        wait_until(lambda: sleeping(proc.pid), message="flowrun to wait for input")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        reap(proc)
        os.close(controller)

    assert proc.returncode == 130
    assert (
        out.decode()
        .splitlines()[-1]
        .startswith("⊘ Interrupted: 0 executed, 0 skipped, 0 failed, 2 not run in ")
    )
    assert hits.paths() == []


def test_import_curl_then_run_it(runner, hits, tmp_path):
    command = tmp_path / "login.sh"
    command.write_text(
        f"curl -X POST {hits.url}/demo/login -H 'Content-Type: application/json' "
        """-d '{"username": "ada", "password": "secret"}'\n"""
    )
    out = tmp_path / "imported.json"
    result = runner.invoke(cli, ["import", "curl", str(command), "-o", str(out)])

    assert result.exit_code == 0, result.output
    assert f"Imported {command} into {out}: 1 request: 1 as they were" in (
        result.stderr
    )
    doc = json.loads(out.read_text())
    assert [n["method"] for n in doc["nodes"]] == ["POST"]

    result = runner.invoke(cli, ["run", str(out)])

    assert result.exit_code == 0, result.output
    assert hits.paths() == ["/demo/login"]


def test_import_prints_to_stdout_and_reads_stdin(runner):
    result = runner.invoke(
        cli, ["import", "curl", "-"], input="curl http://127.0.0.1:9/demo/items\n"
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["nodes"][0]["method"] == "GET"


def test_import_of_bad_content_exits_2_with_located_error(runner, tmp_path):
    path = write(tmp_path, "{}", "collection.json")
    result = runner.invoke(cli, ["import", "postman", path])

    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}: ")
    assert "Traceback" not in result.output


def test_cli_json_nested_too_deeply_is_exit_2(runner, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"a":' * 5000 + "1" + "}" * 5000)
    for command in (["run", str(path)], ["validate", str(path)]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 2, result.output
        assert "nested too deeply" in result.output
        assert not isinstance(result.exception, RecursionError)


def _cli_flow(tmp_path, hits) -> str:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(streams.make_flow(hits, streams.node("list", "/items"))))
    return str(path)


def test_cli_creates_the_report_directories(runner, tmp_path, hits):
    junit = tmp_path / "reports" / "ci" / "flow.xml"
    log = tmp_path / "reports" / "flow.json"
    result = runner.invoke(
        cli,
        ["run", _cli_flow(tmp_path, hits), "--junit", str(junit), "--json", str(log)],
    )
    assert result.exit_code == 0, result.output
    assert junit.read_text().startswith("<?xml")
    assert json.loads(log.read_text())["success"] is True


@pytest.mark.parametrize("option", ["--junit", "--json"])
def test_cli_refuses_an_unwritable_report_before_running(
    runner, tmp_path, hits, option
):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(
        cli, ["run", _cli_flow(tmp_path, hits), option, str(blocker / "out")]
    )
    assert result.exit_code == 2, result.output
    assert option in result.output and "cannot create the directory" in result.output
    assert hits.paths() == []  # nothing was run


def test_cli_refuses_nan_in_a_flow_file_and_reads_var_nan_as_text(
    runner, tmp_path, hits
):
    path = tmp_path / "nan.json"
    path.write_text('{"name": "x", "variables": {"v": NaN}, "nodes": []}')
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and "NaN is not JSON" in result.output
    flow = streams.make_flow(
        hits, streams.node("e", "/echo", "POST", body={"v": "{{ .vars.v }}"})
    )
    flow_path = tmp_path / "flow.json"
    flow_path.write_text(json.dumps(flow))
    log = tmp_path / "log.json"
    result = runner.invoke(
        cli, ["run", str(flow_path), "--var", "v=NaN", "--json", str(log)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(log.read_text())["executionLog"][0]["request"]["body"] == {
        "v": "NaN"
    }
