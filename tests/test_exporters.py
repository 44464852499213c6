"""flowrun export: curl scripts the real curl runs, Postman collections Newman runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from flowrun.cli.main import cli
from flowrun.exporters import export
from flowrun.exporters.postman import SCHEMA, collection
from flowrun.importers import convert

from .target import end_of, run_events, steps_of

CI = os.environ.get("CI") == "true"


def needs(program: str) -> str:
    """The path of a program the test runs; skipped (failed on CI) without it."""
    found = shutil.which(program)
    if found is None:
        if CI:
            pytest.fail(f"{program} is not installed (.ci/run installs it)")
        pytest.skip(f"{program} is not installed")
    return found


def flow(base: str) -> dict:
    """A flow using every kind of value an export must carry."""
    return {
        "name": "Export check",
        "variables": {"user": "ada", "n": 2, "note": 'it\'s "quoted" $HOME `x`'},
        "defaults": {"baseUrl": base, "headers": {"Accept": "application/json"}},
        "nodes": [
            {
                "id": "login",
                "name": "Log in",
                "method": "POST",
                "url": "/login",
                "userPrompts": {"password": "Password for {{ .vars.user }}:"},
                "body": {
                    "username": "{{ .vars.user }}",
                    "password": "{{ .input.password }}",
                },
                "validations": [
                    {"httpStatusCode": 200},
                    {"jsonpath": ".token", "exists": True},
                ],
            },
            {
                "id": "me",
                "name": "Profile",
                "method": "GET",
                "url": "/me",
                "headers": {"Authorization": "Bearer {{ .responses.login.token }}"},
                "validations": [{"jsonpath": ".roles", "contains": "tester"}],
            },
            {
                "id": "echo",
                "name": "Echo",
                "method": "POST",
                "url": "/echo?q=\\{{x}}&u={{ .vars.user }}&f[a]=1",
                "conditions": [
                    {"node": "me", "httpStatusCode": 200},
                    {"node": "me", "field": ".username", "equals": "ada"},
                ],
                "headers": {"X-Empty": "", "X-Status": "{{ .status.me }}"},
                "body": {
                    "id": "{{ .responses.login.user.id }}",
                    "n": "{{ .vars.n }}",
                    "t": 'Hi \\{{ name }} "{{ .vars.user }}"',
                    "note": "{{ .vars.note }}",
                },
                "validations": [
                    {"jsonpath": ".json.id", "equals": 7},
                    {"jsonpath": ".json.t", "equals": 'Hi \\{{ name }} "ada"'},
                    {"header": "Content-Type", "matches": "(?i)JSON"},
                ],
            },
            {
                "id": "form",
                "name": "Form",
                "method": "POST",
                "url": "/echo",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                "body": {"a": "1 2", "b": {"c": "{{ .vars.user }}&x"}},
                "validations": [{"jsonpath": ".form.a[0]", "equals": "1 2"}],
            },
            {
                "id": "text",
                "name": "Text",
                "method": "PUT",
                "url": "/echo",
                "headers": {"Content-Type": "text/plain"},
                "body": "plain 'text' for {{ .vars.user }}",
                "validations": [
                    {"jsonpath": ".body", "equals": "plain 'text' for ada"},
                    {"maxDurationMs": 5000},
                ],
            },
            {
                "id": "skipped",
                "name": "Skipped",
                "method": "GET",
                "url": "/status/500",
                "conditions": [{"variable": "user", "equals": "bob"}],
            },
            {
                "id": "head",
                "name": "Head",
                "method": "HEAD",
                "url": "/items",
                "validations": [{"httpStatusCode": [200, 204]}],
            },
        ],
    }


def echoed(body) -> dict:
    return json.loads(body) if isinstance(body, str) else body


def test_curl_export_runs_with_curl_and_sends_what_flowrun_sends(hits, tmp_path):
    bash, _, _ = needs("bash"), needs("curl"), needs("jq")
    doc = flow(hits.url + "/demo")
    script = tmp_path / "flow.sh"
    script.write_text(export("curl", doc))
    ran = subprocess.run(
        [bash, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "input_password": "secret"},
    )
    assert ran.returncode == 0, ran.stderr
    sent = [(h["method"], h["path"]) for h in hits.hits if h["path"] != "/hits"]
    assert sent == [
        ("POST", "/demo/login"),
        ("GET", "/demo/me"),
        ("POST", "/demo/echo"),
        ("POST", "/demo/echo"),
        ("PUT", "/demo/echo"),
        ("HEAD", "/demo/items"),
    ]
    by_curl = [json.loads(line) for line in ran.stdout.splitlines() if '"path"' in line]
    hits.clear()
    events = run_events(doc, inputs={"password": "secret"})
    assert end_of(events)["success"] is True
    by_flowrun = [
        s["response"]["body"]
        for s in steps_of(events)
        if s["id"] in ("echo", "form", "text")
    ]
    for mine, theirs in zip(by_flowrun, by_curl, strict=True):
        # The same request arrived: query, form, body text and JSON (headers
        # differ only by the client's own, like User-Agent).
        for key in ("method", "args", "form", "json"):
            assert theirs[key] == mine[key], key
        for name in ("X-Empty", "X-Status", "Content-Type"):
            assert theirs["headers"].get(name) == mine["headers"].get(name), name
    assert by_curl[0]["headers"]["X-Empty"] == ""
    assert by_curl[0]["args"] == {"q": ["{{x}}"], "u": ["ada"], "f[a]": ["1"]}
    assert by_curl[2]["body"] == "plain 'text' for ada"


def test_curl_export_reads_variables_from_the_environment(hits, tmp_path):
    bash, _, _ = needs("bash"), needs("curl"), needs("jq")
    doc = {
        "name": "One",
        "variables": {"who": "ada"},
        "nodes": [
            {
                "id": "a",
                "name": "A",
                "method": "GET",
                "url": hits.url + "/demo/echo?who={{ .vars.who }}",
            }
        ],
    }
    script = tmp_path / "flow.sh"
    script.write_text(export("curl", doc))
    ran = subprocess.run(
        [bash, str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "var_who": "bob's"},
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["args"] == {"who": ["bob's"]}


def test_postman_export_is_a_v21_collection_flowrun_reads_back():
    doc = flow("http://127.0.0.1:9/demo")
    found = collection(doc)
    assert found["info"]["schema"] == SCHEMA
    assert [i["name"] for i in found["item"]] == [n["name"] for n in doc["nodes"]]
    assert found["item"][0]["request"]["url"] == "http://127.0.0.1:9/demo/login"
    assert found["item"][1]["request"]["header"] == [
        {"key": "Accept", "value": "application/json"},
        {"key": "Authorization", "value": "Bearer {{responses.login.token}}"},
    ]
    raw = found["item"][2]["request"]["body"]["raw"]
    assert '"id": {{json:responses.login.user.id}}' in raw
    assert '"t": "Hi {{ name }} \\"{{jsonin:user}}\\""' in raw
    # Every validation is a test; the skipped node skips itself.
    tests = [
        line
        for item in found["item"]
        for event in item.get("event", [])
        if event["listen"] == "test"
        for line in event["script"]["exec"]
        if line.startswith("pm.test(")
    ]
    assert len(tests) == 11
    [prerequest] = [e for e in found["item"][5]["event"] if e["listen"] == "prerequest"]
    assert "pm.execution.skipRequest();" in prerequest["script"]["exec"][-1]
    # Read back by flowrun's own importer: the same requests, in order.
    back = convert("postman", json.dumps(found))
    assert [(n["method"], n["name"]) for n in back["nodes"]] == [
        (n["method"], n["name"]) for n in doc["nodes"]
    ]


def test_postman_export_says_what_it_cannot_express():
    doc = {
        "name": "jq",
        "nodes": [
            {
                "id": "a",
                "name": "A",
                "method": "GET",
                "url": "http://127.0.0.1:9/x",
                "retry": {"count": 2},
                "validations": [{"jq": ".items | length", "greaterThan": 1}],
            }
        ],
    }
    [item] = collection(doc)["item"]
    assert "Not exported: the jq validation" in item["request"]["description"]
    assert "flowrun retries this request" in item["request"]["description"]


def test_postman_export_runs_in_newman(hits, tmp_path):
    # Newman is an npm package: run only where it is installed (NEWMAN names
    # its executable, else it is looked up on PATH).
    newman = os.environ.get("NEWMAN") or shutil.which("newman")
    if newman is None:
        pytest.skip("Newman is not installed (npm install newman; NEWMAN=…)")
    path = tmp_path / "flow.postman_collection.json"
    path.write_text(export("postman", flow(hits.url + "/demo")))
    report = tmp_path / "newman.json"
    ran = subprocess.run(
        [
            newman,
            "run",
            str(path),
            "--env-var",
            "password=secret",
            "--reporters",
            "json",
            "--reporter-json-export",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run = json.loads(report.read_text())["run"]
    # All but the skipped request's status check ran, and passed.
    assert run["stats"]["assertions"] == {"total": 10, "pending": 0, "failed": 0}
    sent = [(h["method"], h["path"]) for h in hits.hits if h["path"] != "/hits"]
    assert ("GET", "/demo/status/500") not in sent
    assert len(sent) == 6


def test_cli_export_reads_a_yaml_flow_as_run_does(runner, tmp_path):
    doc = flow("http://127.0.0.1:9/demo")
    as_json, as_yaml = tmp_path / "flow.json", tmp_path / "flow.yaml"
    as_json.write_text(json.dumps(doc))
    as_yaml.write_text(yaml.safe_dump(doc, sort_keys=False))
    outs = [runner.invoke(cli, ["export", "curl", str(p)]) for p in (as_json, as_yaml)]
    assert [r.exit_code for r in outs] == [0, 0], outs[1].output
    assert outs[0].stdout == outs[1].stdout
    as_yaml.write_text("nodes: [\n")
    result = runner.invoke(cli, ["export", "curl", str(as_yaml)])
    assert result.exit_code == 2
    assert f"{as_yaml}: invalid YAML at line" in result.output


def test_cli_export_writes_a_file_and_refuses_an_invalid_flow(runner, tmp_path):
    source = tmp_path / "flow.json"
    source.write_text(json.dumps(flow("http://127.0.0.1:9/demo")))
    out = tmp_path / "flow.postman_collection.json"
    result = runner.invoke(cli, ["export", "postman", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["info"]["schema"] == SCHEMA
    result = runner.invoke(cli, ["export", "curl", str(source)])
    assert result.exit_code == 0
    assert result.stdout.startswith("#!/usr/bin/env bash\n")
    source.write_text(json.dumps({"nodes": [{"id": "a"}]}))
    result = runner.invoke(cli, ["export", "curl", str(source)])
    assert result.exit_code == 2
    assert "missing required field 'url'" in result.output
