"""Environments: workspace files, the API, runs in them, their name in history."""

from __future__ import annotations

import json
import sqlite3

import pytest

from flowrun.store.history import Store

from .streams import make_flow, node, run_events


def envs_dir(app):
    path = app.extensions["flowrun"].workspace.environments_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def echo_vars(**extra) -> dict:
    """A node that echoes variables a, b and c back."""
    return node(
        "echo",
        "/echo",
        "POST",
        body={"a": "{{ .vars.a }}", "b": "{{ .vars.b }}", "c": "{{ .vars.c }}"},
        **extra,
    )


def echoed(end: dict) -> dict:
    return end["executionLog"][0]["response"]["body"]["json"]


# -- the files and the API ------------------------------------------------------
def test_put_get_list_delete(client):
    doc = {"variables": {"baseUrl": "http://x", "apiKey": "K-1"}, "secrets": ["apiKey"]}
    resp = client.put("/api/environments/staging", json=doc)
    assert resp.status_code == 201
    assert resp.get_json() == {"name": "staging", "saved": True}
    assert client.put("/api/environments/staging", json=doc).status_code == 200

    got = client.get("/api/environments/staging").get_json()
    assert got == {"name": "staging", **doc}  # secret values, for the editor

    doc2 = {"variables": {"baseUrl": "http://y"}, "secrets": ["apiKey", "pw"]}
    client.put("/api/environments/local", json=doc2)
    listed = client.get("/api/environments").get_json()["environments"]
    assert [e["name"] for e in listed] == ["local", "staging"]
    assert listed[0]["missing"] == ["apiKey", "pw"]
    assert listed[1]["missing"] == []

    assert client.delete("/api/environments/staging").status_code == 200
    assert client.get("/api/environments/staging").status_code == 404
    assert client.delete("/api/environments/staging").status_code == 404


def test_written_as_json_in_the_environments_folder(app, client):
    client.put("/api/environments/prod.eu", json={"variables": {"n": 1}})
    path = envs_dir(app) / "prod.eu.json"
    assert json.loads(path.read_text()) == {"variables": {"n": 1}, "secrets": []}
    # A suffix in the URL names the same environment.
    assert client.get("/api/environments/prod.eu.json").get_json()["name"] == "prod.eu"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"variables": []}, "variables"),
        ({"variables": {"a b": 1}}, 'variables["a b"]'),
        ({"secrets": "apiKey"}, "secrets"),
        ({"secrets": ["ok", 5]}, "secrets[1]"),
        ({"secrets": ["x", "x"]}, "secrets[1]"),
        ({"variables": {}, "colour": "red"}, "colour"),
    ],
)
def test_bad_environments_are_400_naming_the_field(client, body, path):
    resp = client.put("/api/environments/staging", json=body)
    assert resp.status_code == 400
    assert path in [e["path"] for e in resp.get_json()["errors"]]
    assert client.get("/api/environments/staging").status_code == 404


@pytest.mark.parametrize("name", [".hidden", "a%2Fb", "..%2Fescape", "x" * 201])
def test_bad_names_are_400(client, name):
    assert client.put(f"/api/environments/{name}", json={}).status_code in (400, 404)
    assert client.get(f"/api/environments/{name}").status_code in (400, 404)


def test_yaml_and_env_files_are_read(app, client):
    folder = envs_dir(app)
    (folder / "y.yaml").write_text(
        "variables:\n  baseUrl: http://y\n  port: 8080\nsecrets: [token]\n"
    )
    (folder / "d.env").write_text(
        "# comment\nexport BASE='http://d'\nAPI_KEY=k-1\nPLAIN=x # note\nPASSWORD\n"
    )
    assert client.get("/api/environments/y").get_json() == {
        "name": "y",
        "variables": {"baseUrl": "http://y", "port": 8080},
        "secrets": ["token"],
    }
    assert client.get("/api/environments/d").get_json() == {
        "name": "d",
        "variables": {"BASE": "http://d", "API_KEY": "k-1", "PLAIN": "x"},
        "secrets": ["API_KEY", "PASSWORD"],
    }
    # JSON wins over another file of the same name.
    (folder / "y.json").write_text('{"variables": {"baseUrl": "http://json"}}')
    assert client.get("/api/environments/y").get_json()["variables"] == {
        "baseUrl": "http://json"
    }
    assert [
        e["name"] for e in client.get("/api/environments").get_json()["environments"]
    ] == ["d", "y"]
    # DELETE removes every file of the name.
    client.delete("/api/environments/y")
    assert not list(folder.glob("y.*"))


def test_a_broken_file_is_listed_with_its_error_and_is_422(app, client):
    (envs_dir(app) / "bad.json").write_text("{nope")
    (envs_dir(app) / "worse.env").write_text("not a line\n")
    listed = client.get("/api/environments").get_json()["environments"]
    assert [e["name"] for e in listed] == ["bad", "worse"]
    assert "invalid JSON at line 1" in listed[0]["error"]
    assert "line 1: not NAME=value" in listed[1]["error"]
    (envs_dir(app) / "shape.yaml").write_text("variables: [1, 2]\n")
    resp = client.get("/api/environments/shape")
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["path"] == "variables"
    resp = client.get("/api/environments/bad")
    assert resp.status_code == 422
    assert "environments/bad.json" in resp.get_json()["error"]
    assert str(envs_dir(app)) not in resp.get_json()["error"]  # no server paths


def test_env_values_are_not_expanded_from_the_server_environment(
    app, client, monkeypatch
):
    monkeypatch.setenv("FLOWRUN_TEST_SECRET", "from-the-server")
    (envs_dir(app) / "e.env").write_text("A=${FLOWRUN_TEST_SECRET}\n")
    got = client.get("/api/environments/e").get_json()
    assert got["variables"] == {"A": "${FLOWRUN_TEST_SECRET}"}


# -- runs in an environment -----------------------------------------------------
def test_resolution_order_options_over_environment_over_flow(client, hits):
    env = {"variables": {"b": "env", "c": "env"}}
    client.put("/api/environments/staging", json=env)
    flow = make_flow(hits, echo_vars())
    flow["variables"] = {"a": "flow", "b": "flow", "c": "flow"}
    resp = client.post(
        "/api/execute",
        json={
            "config": flow,
            "options": {"environment": "staging", "variables": {"c": "run"}},
        },
    )
    assert resp.status_code == 200, resp.get_json()
    assert echoed(resp.get_json()) == {"a": "flow", "b": "env", "c": "run"}


@pytest.mark.parametrize("endpoint", ["/api/execute", "/api/execute-stream"])
def test_unknown_environment_is_400_naming_the_option(client, hits, endpoint):
    client.put("/api/environments/staging", json={})
    flow = make_flow(hits, node("list", "/items"))
    resp = client.post(
        endpoint, json={"config": flow, "options": {"environment": "nope"}}
    )
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["errors"][0]["path"] == "options.environment"
    assert "staging" in body["errors"][0]["hint"]
    bad = client.post(endpoint, json={"config": flow, "options": {"environment": 5}})
    assert bad.status_code == 400
    assert bad.get_json()["errors"][0]["path"] == "options.environment"
    assert hits.paths() == []


def test_a_secret_declared_by_name_must_be_given(client, hits):
    client.put(
        "/api/environments/staging",
        json={"variables": {"a": "x", "b": "y"}, "secrets": ["c"]},
    )
    # The check passes only if the target received the value (events mask it).
    flow = make_flow(
        hits, echo_vars(validations=[{"jsonpath": ".json.c", "equals": "given"}])
    )
    resp = client.post(
        "/api/execute-stream",
        json={"config": flow, "options": {"environment": "staging"}},
    )
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["error"] == "Missing secret: c"
    assert body["errors"][0]["path"] == "options.variables.c"
    assert hits.paths() == []
    ok = client.post(
        "/api/execute",
        json={
            "config": flow,
            "options": {"environment": "staging", "variables": {"c": "given"}},
        },
    )
    assert ok.status_code == 200
    assert ok.get_json()["success"] is True
    assert echoed(ok.get_json())["c"] == "••••"


def test_a_flow_secret_without_a_value_must_be_given(client, hits):
    flow = make_flow(hits, echo_vars())
    flow["variables"] = {"a": 1, "b": 2}
    flow["secrets"] = ["c"]
    resp = client.post("/api/execute", json={"config": flow})
    assert resp.status_code == 400
    assert resp.get_json()["errors"][0]["path"] == "options.variables.c"
    # A prompt that asks for it is a way to give it.
    flow["nodes"][0]["userPrompts"] = {"c": "c?"}
    resp = client.post(
        "/api/execute", json={"config": flow, "options": {"inputs": {"c": "x"}}}
    )
    assert resp.status_code == 200


def test_try_it_out_runs_in_an_environment(client, hits):
    client.put(
        "/api/environments/staging",
        json={"variables": {"a": "env-a", "b": "env-b", "c": "env-c"}},
    )
    flow = make_flow(hits, node("list", "/items"), echo_vars())
    resp = client.post(
        "/api/execute-node",
        json={
            "config": flow,
            "nodeId": "echo",
            "variables": {"a": "top"},
            "options": {"environment": "staging", "variables": {"b": "opt"}},
        },
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["response"]["body"]["json"] == {
        "a": "top",
        "b": "opt",
        "c": "env-c",
    }
    resp = client.post(
        "/api/execute-node",
        json={"config": flow, "nodeId": "echo", "options": {"environment": "x"}},
    )
    assert resp.status_code == 400
    assert resp.get_json()["errors"][0]["path"] == "options.environment"


def test_history_names_the_environment(client, hits):
    client.put("/api/environments/staging", json={"variables": {}})
    flow = make_flow(hits, node("list", "/items"))
    headers, _ = run_events(client, flow, {"environment": "staging"})
    client.post("/api/execute", json={"config": flow})
    listed = client.get("/api/executions").get_json()["executions"]
    assert [e["environment"] for e in listed] == [None, "staging"]
    one = client.get(f"/api/executions/{headers['X-Execution-Id']}").get_json()
    assert one["environment"] == "staging"


def test_a_store_of_an_earlier_version_gets_the_environment_column(tmp_path):
    db = sqlite3.connect(tmp_path / "flowrun.sqlite3")
    db.execute(
        "CREATE TABLE executions (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "id TEXT NOT NULL UNIQUE, flow_name TEXT, status TEXT NOT NULL, "
        "started_at TEXT, ended_at TEXT, total_steps INTEGER, prompt_step INTEGER, "
        "paused_step INTEGER, summary TEXT, owner TEXT, prompt_keys TEXT)"
    )
    db.execute("INSERT INTO executions (id, status) VALUES ('exec-old', 'completed')")
    db.commit()
    db.close()
    store = Store(tmp_path)
    store.finish(store.create("exec-new", "f", 1, "staging"), "completed", {}, [])
    assert [(e["executionId"], e["environment"]) for e in store.list()] == [
        ("exec-new", "staging"),
        ("exec-old", None),
    ]
    assert store.get("exec-new")["environment"] == "staging"
    store.close()
