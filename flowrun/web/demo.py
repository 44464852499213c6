"""The built-in demo API under ``/demo``, so sample flows run offline.

Endpoints: ``POST /login`` (``{"username", "password"}`` → ``{"token"}``; any username,
password ``secret``), ``GET /me`` (needs ``Authorization: Bearer <token>``),
``GET/POST /items``, ``GET/DELETE /items/<id>``, ``GET /slow?ms=``, ``ANY /echo``,
``ANY /status/<code>``, ``GET /redirect?to=/path`` (same site only),
``GET /cookie/set``,
``GET /cookie/check``,
``GET /big?bytes=``, ``GET /text?body=&charset=`` (the text given, as text/plain),
``GET /drip?ms=`` (headers at once, the body after ``ms``),
``GET /trickle?bytes=&ms=`` (headers at once, then the body one byte every ``ms``),
``GET/POST /flaky?key=&fail=N`` (503 for the first N calls per key, then 200, for
trying ``retry``), ``GET /authorize`` (an OAuth-like URL for ``launchBrowser``).
State is per process and resets on restart.
"""

from __future__ import annotations

import hashlib
import threading
import time
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, request

bp = Blueprint("demo", __name__)

MAX_SLOW_MS = 60_000
MAX_BIG_BYTES = 64 * 1024 * 1024
_items_lock = threading.Lock()
_items: dict[int, dict] = {}
_flaky_lock = threading.Lock()
_flaky_calls: dict[str, int] = {}


def _token_for(username: str) -> str:
    return "tok-" + hashlib.sha256(username.encode()).hexdigest()[:24]


def _seed():
    if not _items:
        for i, name in enumerate(("apple", "banana", "cherry"), start=1):
            _items[i] = {"id": i, "name": name, "price": i * 1.5}


@bp.post("/login")
def login():
    data = request.get_json(silent=True) or request.form.to_dict() or {}
    username = str(data.get("username", ""))
    if not username or data.get("password") != "secret":
        return jsonify(error="invalid credentials"), 401
    return jsonify(token=_token_for(username), user={"username": username, "id": 7})


def _user():
    auth = request.headers.get("Authorization", "")
    token = auth.removeprefix("Bearer ").strip()
    name = request.args.get("user") or "ada"
    if token.startswith("tok-"):
        return {"username": name, "id": 7, "token_ok": True}
    return None


@bp.get("/me")
def me():
    user = _user()
    if user is None:
        return jsonify(error="missing or invalid bearer token"), 401
    return jsonify(id=7, username="ada", roles=["tester"], active=True)


@bp.get("/items")
def items():
    with _items_lock:
        _seed()
        data = sorted(_items.values(), key=lambda i: i["id"])
    return jsonify(items=data, count=len(data))


@bp.post("/items")
def create_item():
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not data.get("name"):
        return jsonify(error="body must be a JSON object with a name"), 400
    with _items_lock:
        _seed()
        new_id = max(_items, default=0) + 1
        item = {"id": new_id, "name": str(data["name"]), "price": data.get("price", 0)}
        _items[new_id] = item
    return jsonify(item), 201


@bp.get("/items/<int:item_id>")
def item(item_id):
    with _items_lock:
        _seed()
        found = _items.get(item_id)
    if found is None:
        return jsonify(error=f"no item {item_id}"), 404
    return jsonify(found)


@bp.delete("/items/<int:item_id>")
def delete_item(item_id):
    with _items_lock:
        _seed()
        found = _items.pop(item_id, None)
    return (
        (jsonify(deleted=item_id), 200) if found else (jsonify(error="not found"), 404)
    )


@bp.get("/slow")
def slow():
    ms = min(max(request.args.get("ms", 1000, type=int), 0), MAX_SLOW_MS)
    time.sleep(ms / 1000)
    return jsonify(slept_ms=ms)


@bp.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def echo():
    raw = request.get_data(cache=True, as_text=True)
    return jsonify(
        method=request.method,
        path=request.path,
        args=request.args.to_dict(flat=False),
        headers={k: v for k, v in request.headers.items()},
        body=raw,
        json=request.get_json(silent=True),
        form=request.form.to_dict(flat=False),
        cookies=request.cookies,
    )


@bp.route("/status/<int:code>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def status(code):
    if not 200 <= code <= 599:
        return jsonify(error="code must be 200-599"), 400
    return jsonify(status=code), code


@bp.get("/redirect")
def go():
    to = request.args.get("to", "/demo/items")
    # On a deployed server an unauthenticated redirect to anywhere would be an open
    # redirect; only the tests' own target server lets it leave the site.
    off_site = urlsplit(to).netloc or to.startswith(("//", "\\"))
    if off_site and not current_app.config.get("DEMO_OFF_SITE_REDIRECTS"):
        return jsonify(error="redirect target must be a path on this server"), 400
    return redirect(to, code=302)


@bp.get("/cookie/set")
def cookie_set():
    resp = jsonify(set=True)
    resp.set_cookie("session", request.args.get("value", "s3cr3t"))
    return resp


@bp.get("/cookie/check")
def cookie_check():
    return jsonify(session=request.cookies.get("session"))


@bp.get("/big")
def big():
    size = min(max(request.args.get("bytes", 1024, type=int), 0), MAX_BIG_BYTES)
    return Response(b"x" * size, mimetype="text/plain")


@bp.get("/text")
def text():
    body = request.args.get("body", "plain words, not JSON")
    charset = request.args.get("charset", "utf-8")
    # the body is always UTF-8; `charset` only changes what the header claims
    return Response(body.encode(), content_type=f"text/plain; charset={charset}")


@bp.get("/drip")
def drip():
    ms = min(max(request.args.get("ms", 1000, type=int), 0), MAX_SLOW_MS)

    def generate():
        yield b'{"dripped": '
        time.sleep(ms / 1000)
        yield b"true}"

    return Response(generate(), mimetype="application/json")


@bp.get("/trickle")
def trickle():
    ms = min(max(request.args.get("ms", 1000, type=int), 0), MAX_SLOW_MS)
    count = min(max(request.args.get("bytes", 10, type=int), 0), 1000)
    count = min(count, MAX_SLOW_MS // max(ms, 1) + 1)  # at most about a minute

    def generate():
        for i in range(count):
            if i:
                time.sleep(ms / 1000)
            yield b"x"

    return Response(
        generate(), mimetype="text/plain", headers={"Content-Length": str(count)}
    )


@bp.route("/flaky", methods=["GET", "POST"])
def flaky():
    key = request.args.get("key", "")
    fail = request.args.get("fail", 1, type=int)
    with _flaky_lock:
        calls = _flaky_calls[key] = _flaky_calls.get(key, 0) + 1
    if calls <= fail:
        return jsonify(calls=calls, ok=False), 503
    return jsonify(calls=calls, ok=True)


@bp.get("/authorize")
def authorize():
    base = request.host_url.rstrip("/")
    return jsonify(authorizeUrl=f"{base}/demo/items?state=demo")
