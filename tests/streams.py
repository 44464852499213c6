"""Helpers for tests that read SSE streams and assert the API's error shape."""

from __future__ import annotations

import json


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
