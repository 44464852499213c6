"""``flowrun run`` as CI runs it: the real command in a child process, a real target.

Several flows (files, directories, globs, stdin, YAML), --jobs, reports (JUnit,
JSON, HTML), --verbose, colour, TLS options, --dry-run, environments and secrets,
and the exit codes that tell them apart.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from flowrun.store.masking import MASK

from .modules import loaded_after
from .target import free_port

SECRET = "K-77 s3cr3t/+x"


def flowrun(*args, cwd=None, env=None, stdin=None, timeout=60):
    """Run ``python -m flowrun ARGS``; a CompletedProcess with text output."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLOWRUN_", "NO_COLOR"))
    }
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "flowrun", *map(str, args)],
        cwd=cwd,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def step(id_, url, method="GET", **extra):
    return {"id": id_, "name": extra.pop("name", id_), "method": method, "url": url}


def flow(name, *nodes, **top):
    return {"name": name, "nodes": list(nodes), **top}


@pytest.fixture
def ws(tmp_path, target):
    """A workspace: flows/ with a passing, a failing and a YAML flow."""
    flows = tmp_path / "flows"
    (flows / "environments").mkdir(parents=True)
    base = target.url + "/demo"
    (flows / "a-pass.json").write_text(
        json.dumps(flow("Pass", step("list", f"{base}/items")))
    )
    wrong = step("one", f"{base}/items/1")
    wrong["validations"] = [{"jsonpath": ".name", "equals": "durian"}]
    (flows / "b-fail.json").write_text(json.dumps(flow("Fail", wrong)))
    (flows / "c-yaml.yaml").write_text(
        "name: Yaml\nnodes:\n"
        f"  - {{id: it, name: it, method: GET, url: '{base}/items/2'}}\n"
    )
    (flows / "notes.txt").write_text("not a flow")
    return tmp_path


def lines(text: str) -> list[str]:
    return text.splitlines()


# -- what to run -----------------------------------------------------------------------
def test_a_directory_runs_every_flow_file_in_order(ws, target):
    result = flowrun("run", "flows", cwd=ws)

    assert result.returncode == 1, result.stderr
    heads = [ln for ln in lines(result.stdout) if "(1 step, flows/" in ln]
    assert [h.split(",")[1].strip() for h in heads] == [
        "flows/a-pass.json",
        "flows/b-fail.json",
        "flows/c-yaml.yaml",
    ]
    assert lines(result.stdout)[-1].startswith(
        "✗ 2 of 3 flows passed; failed: flows/b-fail.json in "
    )


def test_files_globs_and_stdin(ws):
    doc = (ws / "flows" / "a-pass.json").read_text()
    result = flowrun("run", "flows/*.yaml", "-", "flows/a-pass.json", cwd=ws, stdin=doc)

    assert result.returncode == 0, result.stdout + result.stderr
    heads = [ln for ln in lines(result.stdout) if " (1 step, " in ln]
    assert ["flows/c-yaml.yaml" in heads[0], "<stdin>" in heads[1]] == [True, True]
    assert "flows/a-pass.json" in heads[2]
    assert lines(result.stdout)[-1].startswith("✓ 3 of 3 flows passed in ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["flows/none-*.json"], "flows/none-*.json: matches no file"),
        (["flows/environments"], "no flow files"),
        (["missing.json"], "missing.json: cannot read: No such file or directory"),
        (["-", "-"], "'-' (standard input) can be given once"),
        (["flows/a-pass.json", "--jobs", "0"], "--jobs"),
        (["flows/a-pass.json", "--color", "pink"], "--color"),
        (
            ["flows/a-pass.json", "--insecure", "--cacert", "flows/a-pass.json"],
            "cannot",
        ),
    ],
)
def test_bad_paths_and_options_exit_2(ws, args, message):
    result = flowrun("run", *args, cwd=ws, stdin="")

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_nothing_runs_when_one_flow_is_invalid(ws, hits):
    (ws / "flows" / "d-bad.yaml").write_text("name: x\nnodes: []\n")
    (ws / "flows" / "e-broken.json").write_text('{"nodes": [')
    result = flowrun("run", "flows", cwd=ws)

    assert result.returncode == 2
    assert "flows/d-bad.yaml: nodes: " in result.stderr
    assert "flows/e-broken.json: invalid JSON at line 1, column 12" in result.stderr
    assert "✗ Invalid flow: nothing was run (2 errors in 5 files)" in result.stderr
    assert hits.paths() == []


def test_a_utf8_bom_and_utf16_files_are_read(ws):
    doc = (ws / "flows" / "a-pass.json").read_text()
    (ws / "bom.json").write_bytes(b"\xef\xbb\xbf" + doc.encode())
    (ws / "utf16.json").write_bytes(doc.encode("utf-16"))
    result = flowrun("run", "bom.json", "utf16.json", cwd=ws)

    assert result.returncode == 0, result.stderr


# -- parallel runs and reports ---------------------------------------------------------
def test_jobs_print_each_flow_as_one_block(ws):
    slow = step("slow", "/slow?ms=300")
    base = {
        "defaults": {
            "baseUrl": json.loads((ws / "flows" / "a-pass.json").read_text())["nodes"][
                0
            ]["url"].rsplit("/", 1)[0]
        }
    }
    for i in range(4):
        doc = flow(f"Slow {i}", slow, {**step("list", "/items")}, **base)
        (ws / "flows" / f"s{i}.json").write_text(json.dumps(doc))
    result = flowrun("run", "flows/s*.json", "--jobs", "4", cwd=ws)

    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    # Each block: the flow's line, its two steps, its summary, together.
    for i, line in enumerate(out[:-1]):
        if line.startswith("Slow "):
            assert out[i + 1].startswith("✓ #1 slow")
            assert out[i + 2].startswith("✓ #2 list")
            assert out[i + 3].startswith("✓ Passed: 2 executed")
    assert sum(1 for ln in out if ln.startswith("Slow ")) == 4
    assert out[-1].startswith("✓ 4 of 4 flows passed in ")


def test_reports_for_several_flows(ws):
    out = ws / "reports"
    result = flowrun(
        "run",
        "flows",
        "--junit",
        out / "j.xml",
        "--json",
        out / "log.jsonl",
        "--report-html",
        out / "r.html",
        cwd=ws,
    )

    assert result.returncode == 1
    root = ET.parse(out / "j.xml").getroot()
    assert root.get("name") == "flowrun"
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["Pass", "Fail", "Yaml"]
    files = [s.find("properties/property[@name='file']").get("value") for s in suites]
    assert files == ["flows/a-pass.json", "flows/b-fail.json", "flows/c-yaml.yaml"]
    assert suites[1].find("testcase/failure") is not None

    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(g["file"], g["flowName"], g["success"]) for g in logs] == [
        ("flows/a-pass.json", "Pass", True),
        ("flows/b-fail.json", "Fail", False),
        ("flows/c-yaml.yaml", "Yaml", True),
    ]

    page = (out / "r.html").read_text()
    assert page.startswith("<!doctype html>")
    assert "1 of 3" not in page and "2 of 3 flows passed" in page
    assert "<script" not in page and "http://" not in page.split("<body>")[0]
    assert "expected &#x27;durian&#x27;, got &#x27;apple&#x27;" in page


def test_json_to_stdout_moves_the_step_lines_to_stderr(ws):
    result = flowrun("run", "flows/a-pass.json", "--json", "-", cwd=ws)

    assert result.returncode == 0
    log = json.loads(result.stdout)
    assert log["success"] is True and log["file"] == "flows/a-pass.json"
    assert "✓ #1 list" in result.stderr
    assert not (ws / "-").exists()


# -- secrets, environments, variables --------------------------------------------------
@pytest.fixture
def secret_ws(ws, target):
    """A flow that sends a secret everywhere, and a staging environment declaring it."""
    base = target.url + "/demo"
    (ws / "flows" / "environments" / "staging.json").write_text(
        json.dumps({"variables": {"base": base, "who": "env"}, "secrets": ["apiKey"]})
    )
    echo = step("echo", "{{ .vars.base }}/echo?key={{ .vars.apiKey }}", "POST")
    echo["headers"] = {"X-Key": "{{ .vars.apiKey }}", "X-Who": "{{ .vars.who }}"}
    echo["body"] = {"key": "{{ .vars.apiKey }}", "who": "{{ .vars.who }}"}
    echo["validations"] = [
        {"jsonpath": ".json.key", "equals": SECRET},  # the wire has the value
        {"jsonpath": ".json.who", "equals": "{{ .vars.expect }}"},
    ]
    doc = flow("Secret", echo, variables={"who": "flow", "expect": "flow"})
    (ws / "secret.json").write_text(json.dumps(doc))
    return ws


def test_a_missing_secret_exits_2_before_anything_is_sent(secret_ws, hits):
    result = flowrun("run", "secret.json", "--env", "staging", cwd=secret_ws)

    assert result.returncode == 2
    assert "secret.json: secret 'apiKey' has no value" in result.stderr
    assert "FLOWRUN_VAR_apiKey" in result.stderr
    assert hits.paths() == []


def test_secrets_from_the_process_environment_are_masked_everywhere(secret_ws):
    out = secret_ws / "out"
    result = flowrun(
        "run",
        "secret.json",
        "--env",
        "staging",
        "--var",
        "expect=env",
        "--verbose",
        "--junit",
        out / "j.xml",
        "--json",
        out / "l.json",
        "--report-html",
        out / "r.html",
        cwd=secret_ws,
        env={"FLOWRUN_VAR_apiKey": SECRET},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "    > X-Key: " + MASK in result.stdout
    assert f"?key={MASK}" in result.stdout
    everything = result.stdout + result.stderr
    for name in ("j.xml", "l.json", "r.html"):
        everything += (out / name).read_text()
    assert SECRET not in everything
    assert "K-77" not in everything and "s3cr3t" not in everything
    assert MASK in (out / "r.html").read_text()


def test_resolution_order(secret_ws):
    env = {"FLOWRUN_VAR_apiKey": SECRET, "FLOWRUN_VAR_who": "process"}
    (secret_ws / "vars.yaml").write_text("who: file\nexpect: process\n")
    (secret_ws / "vars.env").write_text("who=dotenv\nexpect=var\n")

    def run(*extra):
        return flowrun(
            "run", "secret.json", "--env", "staging", *extra, cwd=secret_ws, env=env
        )

    # FLOWRUN_VAR_ over --vars-file over the environment over the flow.
    assert run("--vars-file", "vars.yaml").returncode == 0
    # --var over FLOWRUN_VAR_.
    assert run("--vars-file", "vars.env", "--var", "who=var").returncode == 0
    # An --env-file over --env.
    (secret_ws / "local.env").write_text("who=local\n")
    result = flowrun(
        "run",
        "secret.json",
        "--env",
        "staging",
        "--env-file",
        "local.env",
        "--var",
        "expect=local",
        cwd=secret_ws,
        env={"FLOWRUN_VAR_apiKey": SECRET},
    )
    assert result.returncode == 0, result.stdout


def test_unknown_environment_is_a_usage_error(secret_ws):
    result = flowrun("run", "secret.json", "--env", "nope", cwd=secret_ws)

    assert result.returncode == 2
    assert "no environment 'nope'" in result.stderr
    assert "(there are: staging)" in result.stderr


def test_a_postman_environment_is_not_taken_for_variables(ws):
    (ws / "pm.json").write_text(
        json.dumps(
            {"name": "x", "values": [], "_postman_variable_scope": "environment"}
        )
    )
    result = flowrun("run", "flows/a-pass.json", "--vars-file", "pm.json", cwd=ws)

    assert result.returncode == 2
    assert "is a Postman environment" in result.stderr


# -- output ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        ([], {}, False),  # not a terminal
        (["--color", "always"], {}, True),
        (["--color", "always"], {"NO_COLOR": "1"}, True),  # asked for explicitly
        (["--color", "never"], {}, False),
    ],
)
def test_color(ws, args, env, coloured):
    result = flowrun("run", "flows/a-pass.json", *args, cwd=ws, env=env)

    assert ("\x1b[" in result.stdout) is coloured


def test_no_color_on_a_terminal(ws):
    import pty

    def run(env):
        controller, terminal = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowrun", "run", "flows/a-pass.json"],
            cwd=ws,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env},
        )
        os.close(terminal)
        out = b""
        try:
            while True:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            proc.wait(30)
            os.close(controller)
        return out.decode()

    assert "\x1b[" in run({})
    assert "\x1b[" not in run({"NO_COLOR": "1"})


def test_verbose_bounds_bodies(ws, target):
    big = step("big", f"{target.url}/demo/big?bytes=10000")
    (ws / "big.json").write_text(json.dumps(flow("Big", big)))
    result = flowrun("run", "big.json", "-v", cwd=ws)

    assert result.returncode == 0
    assert "    < 200 OK" in result.stdout
    assert "    < " + "x" * 2048 in result.stdout
    assert "x" * 2049 not in result.stdout
    assert "    < … (7952 more bytes)" in result.stdout


def test_dry_run_sends_nothing(secret_ws, hits):
    after = step("me", "{{ .vars.base }}/items/{{ .responses.echo.json.who }}")
    doc = json.loads((secret_ws / "secret.json").read_text())
    doc["nodes"].append(after)
    (secret_ws / "two.json").write_text(json.dumps(doc))
    result = flowrun(
        "run",
        "two.json",
        "--env",
        "staging",
        "--dry-run",
        cwd=secret_ws,
        env={"FLOWRUN_VAR_apiKey": SECRET},
    )

    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    assert out[0] == "Secret (2 steps, dry run: nothing is sent)"
    assert out[1].startswith(f"→ #1 echo  POST {hits.url}/demo/echo?key={MASK}")
    assert f"    > X-Key: {MASK}" in out
    assert f'    > {{"key": "{MASK}", "who": "env"}}' in out
    assert out[-2].startswith("? #2 me  GET {{ .vars.base }}/items/")
    assert out[-1].startswith("    not rendered: ")
    assert SECRET not in result.stdout
    assert hits.paths() == []


# -- exit codes ------------------------------------------------------------------------
def test_unreachable_target_exits_3_and_a_failed_check_wins(ws):
    port = free_port()
    down = step("down", f"http://127.0.0.1:{port}/x")
    (ws / "down.json").write_text(json.dumps(flow("Down", down)))

    alone = flowrun("run", "down.json", cwd=ws)
    assert alone.returncode == 3
    assert "Network error: connection refused" in alone.stdout

    assert flowrun("run", "down.json", "flows/b-fail.json", cwd=ws).returncode == 1
    assert flowrun("run", "down.json", "flows/a-pass.json", cwd=ws).returncode == 3


def test_exit_codes_are_in_help():
    result = flowrun("run", "--help")

    for text in (
        "0    every step passed",
        "1    a step failed",
        "2    invalid",
        "3    a target could not be reached",
        "130  interrupted",
    ):
        assert text in result.stdout


# -- TLS -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_target(tmp_path_factory):
    """The demo API over HTTPS with a self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    from flask import Flask

    from flowrun.web.demo import bp

    app = Flask("tls-target")
    app.register_blueprint(bp, url_prefix="/demo")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}", cert
    server.shutdown()


def test_insecure_and_cacert(tmp_path, tls_target):
    url, cert = tls_target
    (tmp_path / "tls.json").write_text(
        json.dumps(flow("TLS", step("list", f"{url}/demo/items")))
    )

    plain = flowrun("run", "tls.json", cwd=tmp_path)
    assert plain.returncode == 3
    assert "certificate" in plain.stdout

    trusted = flowrun("run", "tls.json", "--cacert", cert, cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stdout

    insecure = flowrun("run", "tls.json", "--insecure", cwd=tmp_path)
    assert insecure.returncode == 0, insecure.stdout
    assert "Warning" not in insecure.stderr


# -- validate and import ---------------------------------------------------------------
def test_validate_reads_yaml_and_stdin(ws):
    result = flowrun(
        "validate", "flows/c-yaml.yaml", "-", cwd=ws, stdin="name: x\nnodes: []\n"
    )

    assert result.returncode == 2
    assert "flows/c-yaml.yaml: valid" in result.stdout
    assert "<stdin>: nodes: " in result.stdout


def test_validate_knows_the_environment(secret_ws):
    without = flowrun("validate", "secret.json", cwd=secret_ws)
    assert "variable 'apiKey' is not defined" in without.stdout
    within = flowrun("validate", "secret.json", "--env", "staging", cwd=secret_ws)
    assert within.returncode == 0
    assert "warning" not in within.stdout


POSTMAN_ENV = {
    "id": "e1",
    "name": "Staging",
    "values": [
        {"key": "base", "value": "BASE", "type": "default", "enabled": True},
        {"key": "api key", "value": SECRET, "type": "secret", "enabled": True},
        {"key": "password", "value": "", "type": "secret", "enabled": True},
        {"key": "old", "value": "x", "type": "default", "enabled": False},
        {"key": "items", "value": "{{base}}/items", "type": "default"},
    ],
    "_postman_variable_scope": "environment",
}


def test_import_postman_env_then_run_in_it(ws, target):
    envs = ws / "flows" / "environments"
    doc = json.loads(json.dumps(POSTMAN_ENV).replace("BASE", target.url + "/demo"))
    (ws / "pm.json").write_text(json.dumps(doc))
    result = flowrun(
        "import", "postman-env", "pm.json", "-o", envs / "staging.json", cwd=ws
    )

    assert result.returncode == 0, result.stderr
    saved = json.loads((envs / "staging.json").read_text())
    assert saved == {
        "variables": {
            "base": target.url + "/demo",
            "api_key": SECRET,
            "items": target.url + "/demo/items",
        },
        "secrets": ["api_key", "password"],
    }
    assert "'api key' became 'api_key'" in result.stderr
    assert "'old' is disabled in Postman: not imported" in result.stderr
    assert "secret 'password' has no value" in result.stderr

    (ws / "use.json").write_text(
        json.dumps(flow("Use", step("l", "{{ .vars.items }}?k={{ .vars.api_key }}")))
    )
    missing = flowrun("run", "use.json", "--env", "staging", cwd=ws)
    assert missing.returncode == 2 and "'password' has no value" in missing.stderr
    ran = flowrun(
        "run",
        "use.json",
        "--env",
        "staging",
        cwd=ws,
        env={"FLOWRUN_VAR_password": "pw"},
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert SECRET not in ran.stdout and f"?k={MASK}" in ran.stdout


def test_import_a_collection_with_its_environment(tmp_path):
    collection = {
        "info": {
            "name": "C",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/",
        },
        "variable": [{"key": "base", "value": "https://collection.example"}],
        "item": [
            {
                "name": "Get",
                "request": {
                    "method": "GET",
                    "url": "{{base}}/x?k={{api key}}",
                    "header": [{"key": "X-Pass", "value": "{{password}}"}],
                },
            }
        ],
    }
    (tmp_path / "c.json").write_text(json.dumps(collection))
    (tmp_path / "pm.json").write_text(json.dumps(POSTMAN_ENV))
    result = flowrun("import", "postman", "c.json", "--env", "pm.json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["variables"] == {"base": "BASE"}  # the environment's value wins
    assert got["secrets"] == ["api_key", "password"]  # declared, no values
    assert SECRET not in result.stdout
    assert "secret 'api_key' is declared in the flow without its value" in (
        result.stderr
    )
    assert "items" not in got["variables"]  # the collection does not use it

    wrong = flowrun("import", "curl", "c.json", "--env", "pm.json", cwd=tmp_path)
    assert wrong.returncode == 2 and "only with postman" in wrong.stderr


def test_run_module_loads_no_web_or_importer_code():
    code = "import flowrun.cli.main as m\nm.FlowrunGroup().get_command(None, 'run')\n"
    heavy = ("flask", "werkzeug", "jinja2", "gevent", "yaml", "jsonschema", "dotenv")
    assert loaded_after(code, *heavy, "flowrun.web", "flowrun.importers") == []


def test_examples_still_run_with_the_path_form(target):
    examples = Path(__file__).resolve().parent.parent / "examples"
    result = flowrun(
        "run",
        examples,
        "--var",
        f"baseUrl={target.url}/demo",
        "--input",
        "username=ada",
        "--input",
        "password=secret",
        "--var",
        "ms=5",
        "--jobs",
        "3",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result.stdout)[-1].startswith("✓ 5 of 5 flows passed")


def test_ctrl_c_stops_every_flow_and_starts_no_other(ws, hits):
    import signal
    import time

    slow = {"defaults": {"baseUrl": hits.url + "/demo"}}
    for name in ("s1", "s2", "s3"):
        doc = flow(name, step("a", "/slow?ms=400"), step("b", "/slow?ms=400"), **slow)
        (ws / f"{name}.json").write_text(json.dumps(doc))
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowrun", "run", "s1.json", "s2.json", "s3.json"]
        + ["--jobs", "2"],
        cwd=ws,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while len(hits.paths()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # both first steps in flight
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()

    assert proc.returncode == 130, out + err
    assert "Interrupting: the step in flight finishes" in err
    last = lines(out)[-1]
    assert last.startswith("⊘ 0 of 3 flows passed; ")
    assert "interrupted: s1.json, s2.json; not run: s3.json" in last
    assert hits.paths() == ["/demo/slow", "/demo/slow"]  # nothing started after


def test_a_dotenv_vars_file_makes_secret_looking_names_secret(secret_ws, target):
    # No environment here: only the .env file says apiKey is a secret.
    (secret_ws / "local.env").write_text(f"base={target.url}/demo\napiKey={SECRET}\n")
    result = flowrun(
        "run", "secret.json", "--vars-file", "local.env", "-v", cwd=secret_ws
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert SECRET not in result.stdout and f"X-Key: {MASK}" in result.stdout
