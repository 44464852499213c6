"""flowrun.http.headers: the fast header parser gives what http.client's gives."""

from __future__ import annotations

import http.client
import io
import socket
import threading

import pytest

from flowrun.http.client import Client
from flowrun.http.headers import _stdlib_parse_headers, parse_headers

BLOCKS = [
    b"Content-Type: application/json\r\nContent-Length: 5\r\n\r\n",
    b"A:b\r\n\r\n",
    b"A:   \t b  \r\n\r\n",
    b"A: b\n\n",
    b"X:y\r\nEmpty:\r\n\r\n",
    b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\n\r\n",
    b"X: caf\xc3\xa9 \xff\x00\r\n\r\n",
    b"\r\n",
    # not plain: the stdlib parser decides
    b"",
    b"X: y\r\n",
    b"X: a\rb\r\n\r\n",
    b"X: y\r\r\n\r\n",
    b"X: folded\r\n  more\r\n\tand more\r\n\r\n",
    b": empty name\r\n\r\n",
    b"From nobody\r\nX: y\r\n\r\n",
    b"not a header\r\nX: y\r\n\r\n",
    b"X y: z\r\n\r\n",
]


def _state(message) -> dict:
    state = dict(vars(message))
    state["defects"] = [repr(d) for d in message.defects]
    return state


@pytest.mark.parametrize("block", BLOCKS)
def test_the_same_message_as_the_stdlib_parser(block):
    ours = parse_headers(io.BytesIO(block + b"body"))
    theirs = _stdlib_parse_headers(io.BytesIO(block + b"body"))
    assert type(ours) is type(theirs) is http.client.HTTPMessage
    assert _state(ours) == _state(theirs)
    assert ours.items() == theirs.items()
    assert ours.get_all("set-cookie") == theirs.get_all("set-cookie")


def test_limits_are_the_stdlib_ones():
    too_many = b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n"
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        parse_headers(io.BytesIO(too_many))
    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"X: " + b"y" * 70_000 + b"\r\n\r\n"))


def _serve_once(raw: bytes) -> int:
    """A server on 127.0.0.1 that answers one request with ``raw``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(raw)
        listener.close()

    threading.Thread(target=answer, daemon=True).start()
    return listener.getsockname()[1]


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"X-Plain: one\r\n", "one"),
        (b"X-Folded: one\r\n two\r\n", "one two"),  # urllib3 unfolds it
    ],
)
def test_a_real_response_reads_the_same(head, expected):
    body = b'{"ok": true}'
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + head
        + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        + body
    )
    port = _serve_once(raw)
    client = Client()
    try:
        reply = client.send("GET", f"http://127.0.0.1:{port}/", {}, None, 5)
    finally:
        client.close()
    assert reply.status == 200 and reply.body == {"ok": True}
    assert reply.lower_headers["x-plain" if b"Plain" in head else "x-folded"] == (
        expected
    )
    assert http.client.parse_headers is parse_headers  # the client installed it


def test_the_startup_check_sees_this_python_hooked():
    from flowrun.http import headers

    assert headers._hooks_present() is True
    assert headers.install() is True


def test_the_startup_check_leaves_the_stdlib_parser_when_hooks_moved(
    monkeypatch, caplog
):
    import logging

    from flowrun.http import headers

    monkeypatch.setattr(http.client, "parse_headers", _stdlib_parse_headers)
    monkeypatch.setattr(headers, "_warned", False)
    monkeypatch.delattr(http.client, "_read_headers")
    with caplog.at_level(logging.WARNING, "flowrun"):
        assert headers.install() is False
    assert http.client.parse_headers is _stdlib_parse_headers
    assert "parsed by the standard parser" in caplog.text
