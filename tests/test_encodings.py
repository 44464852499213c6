"""A byte-order mark (UTF-8, UTF-16) is accepted wherever a file or content is read."""

from __future__ import annotations

import json

import pytest

from flowrun.cli.main import cli
from flowrun.text import decode

ENCODINGS = [
    ("utf-8 with a mark", "utf-8-sig"),
    ("utf-16 with a mark", "utf-16"),
    ("utf-16 big-endian with a mark", "utf-16-be"),
]
MARKED = {"utf-16-be": b"\xfe\xff"}


def encoded(text: str, codec: str) -> bytes:
    # Python's utf-16 and utf-8-sig write the mark; utf-16-be needs it added.
    return MARKED.get(codec, b"") + text.encode(codec)


def flow(base: str) -> dict:
    return {
        "name": "Marked",
        "defaults": {"baseUrl": base},
        "nodes": [{"id": "items", "name": "Items", "method": "GET", "url": "/items"}],
    }


COLLECTION = json.dumps(
    {
        "info": {"name": "c", "schema": "v2.1.0"},
        "item": [{"name": "R", "request": {"url": "https://a.example/x"}}],
    }
)


@pytest.mark.parametrize(("label", "codec"), ENCODINGS)
def test_text_is_decoded_by_its_mark(label, codec):
    assert decode(encoded('{"a": "é"}', codec)) == '{"a": "é"}'


def test_text_without_a_mark_is_utf8():
    assert decode("é".encode()) == "é"
    with pytest.raises(UnicodeDecodeError):
        decode(b"\xff\x00a")


@pytest.mark.parametrize(("label", "codec"), ENCODINGS)
def test_cli_run_validate_and_import_read_marked_files(
    runner, target, tmp_path, label, codec
):
    path = tmp_path / "flow.json"
    path.write_bytes(encoded(json.dumps(flow(target.url + "/demo")), codec))
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["run", str(path)])
    assert result.exit_code == 0, result.output
    collection = tmp_path / "c.postman_collection.json"
    collection.write_bytes(encoded(COLLECTION, codec))
    result = runner.invoke(cli, ["import", "postman", str(collection)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["nodes"][0]["name"] == "R"


def test_cli_names_a_file_that_is_not_text(runner, tmp_path):
    path = tmp_path / "flow.json"
    path.write_bytes(b"\xff\x00\xfe")
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert "not UTF-8 (or UTF-16/UTF-32 with a byte-order mark) text" in result.output


def test_api_import_and_validate_take_content_with_a_mark(client):
    resp = client.post(
        "/api/import", json={"format": "postman", "content": "\ufeff" + COLLECTION}
    )
    assert resp.status_code == 200, resp.get_json()
    content = "\ufeff" + json.dumps(flow("http://127.0.0.1:9/demo"))
    resp = client.post("/api/validate", json={"content": content})
    assert resp.get_json() == {"valid": True, "errors": [], "warnings": []}
    resp = client.post("/api/validate", json={"content": "\ufeff{oops"})
    body = resp.get_json()
    assert resp.status_code == 200
    assert body["valid"] is False
    assert body["errors"][0]["path"] == "content"


@pytest.mark.parametrize(("label", "codec"), ENCODINGS)
def test_api_reads_marked_request_bodies(client, label, codec):
    body = encoded(json.dumps({"config": flow("http://127.0.0.1:9/demo")}), codec)
    resp = client.post(
        "/api/validate", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["valid"] is True


@pytest.mark.parametrize(("label", "codec"), ENCODINGS)
def test_workspace_files_with_a_mark_list_and_open(app, client, label, codec):
    flows = app.extensions["flowrun"].workspace.dir
    flows.mkdir(parents=True, exist_ok=True)
    (flows / "marked.json").write_bytes(
        encoded(json.dumps(flow("http://127.0.0.1:9/demo")), codec)
    )
    listed = {f["name"]: f for f in client.get("/api/flows").get_json()["flows"]}
    assert listed["marked.json"]["flowName"] == "Marked"
    assert "invalid" not in listed["marked.json"]
    resp = client.get("/api/flows/marked.json")
    assert resp.status_code == 200
    assert resp.get_json()["name"] == "Marked"
