"""A fast local target for the benchmarks, meant to run in its own process.

Routes (JSON bodies, keep-alive):

- ``POST /login``   → ``{"sessionId": ...}``
- ``POST /token``   → ``{"token": "tok-<sessionId>"}`` (body ``{"session": ...}``)
- ``GET /items/N``  → ``{"id": N, "name": ..., "price": ..., "tags": [...]}`` with an
  ``X-Item-Id: N`` header; 401 without ``Authorization: Bearer tok-...``
- ``GET /slow?ms=N`` → sleeps N ms, then ``{"slept": N}`` (for concurrency benchmarks)
- anything else     → 404

Two servers share those routes:

- ``python bench/target.py --port P`` (default): a minimal asyncio HTTP/1.1 server
  (no framework), so the target's own cost per request stays small and steady.
- ``gunicorn -k gevent bench.target:app``: the same routes as a WSGI app, for when
  a "real" server is wanted (``engine_overhead.py --server gunicorn``).

It prints ``ready <port>`` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


def route(method: str, path: str, headers: dict, body: bytes):
    """Return ``(status, reason, extra headers, body bytes)`` for one request."""
    if path.startswith("/items/") and method == "GET":
        if not headers.get("authorization", "").startswith("Bearer tok-"):
            return 401, "UNAUTHORIZED", [], b'{"error":"no token"}'
        ident = path[7:]
        if not ident.isdigit():
            return 404, "NOT FOUND", [], b'{"error":"no such item"}'
        n = int(ident)
        payload = {
            "id": n,
            "name": f"item {n}",
            "price": round(n * 1.25, 2),
            "inStock": n % 3 != 0,
            "tags": ["bench", f"group-{n % 7}"],
        }
        return 200, "OK", [("X-Item-Id", ident)], json.dumps(payload).encode()
    if path == "/login" and method == "POST":
        return 200, "OK", [], b'{"sessionId":"s-1234567890","user":"bench"}'
    if path == "/token" and method == "POST":
        try:
            session = json.loads(body or b"{}").get("session", "")
        except ValueError:
            return 400, "BAD REQUEST", [], b'{"error":"bad json"}'
        token = json.dumps({"token": f"tok-{session}", "expiresIn": 3600})
        return 200, "OK", [], token.encode()
    if path.startswith("/slow") and method == "GET":
        return None  # handled by the caller (it needs to sleep)
    return 404, "NOT FOUND", [], b'{"error":"not found"}'


def _slow_ms(query: str) -> int:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "ms" and value.isdigit():
            return min(int(value), 60_000)
    return 200


# -- WSGI (gunicorn) -------------------------------------------------------------------
def app(environ, start_response):
    """The routes as a WSGI app."""
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = {"authorization": environ.get("HTTP_AUTHORIZATION", "")}
    result = route(method, path, headers, body)
    if result is None:
        import time

        ms = _slow_ms(environ.get("QUERY_STRING", ""))
        time.sleep(ms / 1000)  # cooperative under the gevent worker
        result = 200, "OK", [], json.dumps({"slept": ms}).encode()
    status, reason, extra, payload = result
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *extra,
        ],
    )
    return [payload]


# -- asyncio HTTP/1.1 ------------------------------------------------------------------
class _Protocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            method, target, _version = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            path, _, query = target.partition("?")
            result = route(method, path, headers, body)
            if result is None:
                ms = _slow_ms(query)
                payload = json.dumps({"slept": ms}).encode()
                asyncio.get_running_loop().call_later(
                    ms / 1000, self._write, 200, "OK", [], payload
                )
                continue
            self._write(*result)

    def _write(self, status, reason, extra, payload):
        if self.transport.is_closing():
            return
        lines = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            *(f"{k}: {v}" for k, v in extra),
            "",
            "",
        ]
        self.transport.write("\r\n".join(lines).encode("latin-1") + payload)


async def _serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Protocol, host, port, backlog=4096)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: pick a free port")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("bench target: loopback only")
    try:
        asyncio.run(_serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
