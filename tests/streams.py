"""Helpers for tests of the API: flows for the target, SSE streams, the error shape."""

from __future__ import annotations

import json
import threading


def frames(chunks):
    """Yield ``(event name, data dict)`` per SSE frame, ``(":", text)`` per comment."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            name, data, seq = None, None, None
            for line in block.split("\n"):
                if line.startswith(":"):
                    yield ":", line[1:].strip()
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line.startswith("id: "):
                    seq = int(line[4:])
            if name is not None:
                data["_seq"] = seq
                yield name, data


def assert_error(resp, status: int, contains: str = "") -> dict:
    """Assert the one JSON error shape ``{"error", "errors"}`` and the status."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    body = resp.get_json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["errors"], list)
    if contains:
        assert contains.lower() in body["error"].lower()
    return body


def make_flow(target, *nodes, name="test flow"):
    """A flow whose relative URLs go to the target's demo API."""
    return {
        "name": name,
        "defaults": {"baseUrl": target.url + "/demo"},
        "nodes": list(nodes),
    }


def node(node_id, url, method="GET", **extra):
    """A node named after its id; ``extra`` adds or overrides fields."""
    return {
        "id": node_id,
        "name": node_id.title(),
        "method": method,
        "url": url,
        **extra,
    }


def run_events(client, flow, options=None, on_event=None):
    """Run a flow; return (response headers, [(name, data)]); ``on_event`` may act."""
    body = {"config": flow}
    if options is not None:
        body["options"] = options
    resp = client.post("/api/execute-stream", json=body, buffered=False)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    got = []
    try:
        for name, data in frames(resp.response):
            got.append((name, data))
            if on_event is not None:
                on_event(name, data, resp)
            if name == "end":
                break
    finally:
        resp.close()
    return resp.headers, got


def answer(client, body, answers):
    """POST ``body`` to /api/provide-input from another thread (the stream's own
    thread is the one waiting for it); its response goes to ``answers``."""
    thread = threading.Thread(
        target=lambda: answers.append(client.post("/api/provide-input", json=body))
    )
    thread.start()
    thread.join(5)


def login_with_prompt(target):
    """A one-step flow whose login asks for its password (``password``)."""
    return make_flow(
        target,
        node(
            "login",
            "/login",
            "POST",
            userPrompts={"password": "Password?"},
            body={"username": "ada", "password": "{{ .input.password }}"},
        ),
    )


def answering(client, answers, values):
    """An ``on_event`` for ``run_events`` that answers each prompt with ``values``
    (from another thread, as a second client would); responses go to ``answers``."""

    def on_event(name, data, resp):
        if name == "input_required":
            body = {
                "executionId": data["executionId"],
                "stepIndex": data["stepIndex"],
                "userInput": values,
            }
            answer(client, body, answers)

    return on_event
