"""Any string a target or a flow can hold leaves the process safely: lone surrogates,
NUL and invalid UTF-8 reach the stream, the history and every API answer."""

from __future__ import annotations

import json
import socketserver
import threading
from urllib.parse import quote

import pytest

from .streams import make_flow, node, run_events

# Bodies a target may send, as raw bytes, and what a step's response holds then.
BODIES = {
    "lone surrogate": (b'{"a":"\\ud800"}', {"a": "\ud800"}),
    "lone low surrogate in a key": (b'{"\\udfff":1}', {"\udfff": 1}),
    "NUL": (b'{"a":"x\\u0000y"}', {"a": "x\x00y"}),
    "invalid UTF-8": (b"\xff\xfe\xc3(", "\ufffd\ufffd\ufffd("),
    "raw NUL byte": (b"a\x00b", "a\x00b"),
}


class _Raw(socketserver.StreamRequestHandler):
    """Answer ``GET /<name>`` with that body of BODIES, as raw bytes."""

    def handle(self):
        line = self.rfile.readline().decode("latin-1")
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        name = line.split(" ")[1][1:].replace("%20", " ")
        body = BODIES[name][0]
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )


@pytest.fixture(scope="module")
def raw_target():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Raw)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", list(BODIES))
def test_a_body_of_any_text_reaches_the_stream_and_history(
    client, hits, raw_target, name
):
    flow = make_flow(
        hits,
        node("odd", f"{raw_target}/{quote(name)}"),
        # the value goes on into the next request, and back in its answer
        node("echo", "/echo", "POST", body={"v": "{{ .responses.odd }}"}),
        node(
            "form",
            "/echo?q={{ .responses.odd }}",
            "POST",
            body={"v": "{{ .responses.odd }}"},
            bodyFormat="form-urlencoded",
            headers={"X-Odd": "{{ .responses.odd }}"},
        ),
    )
    headers, events = run_events(client, flow)
    names = [n for n, _ in events if n != ":"]
    assert names == ["start"] + ["step_start", "step"] * 3 + ["end"]
    steps = [d for n, d in events if n == "step"]
    assert steps[0]["response"]["body"] == BODIES[name][1]
    assert events[-1][1]["success"] is True
    found = client.get(f"/api/executions/{headers['X-Execution-Id']}").get_json()
    assert found["status"] == "completed"
    assert [s["status"] for s in found["steps"]] == ["completed"] * 3
    assert found["steps"][0]["response"]["body"] == BODIES[name][1]


NAMES = ["x\ud800y", "\udfff", "nul \x00 name", "é ✓ 日本"]


@pytest.mark.parametrize("flow_name", NAMES)
def test_a_flow_name_of_any_text_is_saved_run_and_listed(client, hits, flow_name):
    flow = make_flow(hits, node("items", "/items"), name=flow_name)
    put = client.put("/api/flows/odd", json=flow)
    assert put.status_code in (200, 201), put.get_data(as_text=True)
    got = client.get("/api/flows/odd")
    assert got.status_code == 200 and got.get_json()["name"] == flow_name
    assert client.get("/api/flows").status_code == 200
    assert client.get("/").status_code == 200  # Studio lists it
    headers, events = run_events(client, flow)
    assert events[0][1]["flowName"] == flow_name
    assert events[-1][0] == "end" and events[-1][1]["success"] is True
    listed = client.get("/api/executions")
    assert listed.status_code == 200
    recorded = listed.get_json()["executions"][0]
    assert recorded["status"] == "completed"
    # what UTF-8 cannot carry is recorded as U+FFFD, the rest as it was
    expected = flow_name.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd")
    assert recorded["flowName"] == expected
    answered = client.post("/api/execute", json={"config": flow})
    assert answered.status_code == 200 and answered.get_json()["success"] is True


def test_a_flow_file_with_a_lone_surrogate_keeps_its_other_text(client, app, hits):
    flow = make_flow(hits, node("items", "/items"), name="é \ud800")
    assert client.put("/api/flows/odd", json=flow).status_code in (200, 201)
    path = app.extensions["flowrun"].workspace.path("odd")
    text = path.read_text("utf-8")
    assert '"name": "é \\ud800"' in text
    assert json.loads(text)["name"] == "é \ud800"
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
