"""Who may use the server: its host names, the token, the Studio cookie, Origin
and Content-Type.

``check_request`` runs before every request (``before_request``). A request whose
``Host`` is not one this server answers to (``FLOWRUN_SERVER_HOSTS``) is refused
first, whatever else it carries. With ``FLOWRUN_TOKEN`` set, every ``/api/*`` call
but health needs the token (as a bearer header, or the Studio cookie that
``/?token=`` sets); a request whose ``Origin`` is not this server's (or in
``FLOWRUN_ALLOWED_ORIGINS``) is refused; request bodies must be JSON.
``tag_worker`` names the answering worker process in a response header.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from urllib.parse import urlsplit

from flask import current_app, redirect, request

from flowrun import settings as settings_mod
from flowrun.web.errors import ApiError

COOKIE = "flowrun_token"


_BODY_METHODS = ("POST", "PUT", "PATCH")


def cookie_value(token: str) -> str:
    """The Studio session cookie: derived from the token, not the token itself."""
    return hmac.new(token.encode(), b"flowrun-studio", hashlib.sha256).hexdigest()


def check_request():
    """Refuse (raise ApiError) a request that may not be served; maybe log in."""
    config = current_app.config
    _check_host(current_app.extensions["flowrun.hosts"])
    path = request.path
    token = config.get("FLOWRUN_TOKEN")
    if path == "/" and token and "token" in request.args:
        if not _same(request.args["token"], token):
            raise ApiError(401, "Wrong token", headers={"WWW-Authenticate": "Bearer"})
        home = request.script_root + "/"
        resp = redirect(home, code=302)
        resp.set_cookie(
            COOKIE,
            cookie_value(token),
            path=home,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
        )
        return resp
    if not path.startswith("/api/") and path not in ("/api", "/metrics"):
        return None
    limit = config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413, f"Request body over {limit} bytes (FLOWRUN_MAX_CONFIG_BYTES)"
        )
    if token and path != "/api/health" and not _authorized(token):
        raise ApiError(
            401,
            "Missing or wrong token: send Authorization: Bearer <FLOWRUN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Browsers send Origin on cross-site requests (and on same-origin POSTs): a
    # page elsewhere cannot drive this server, whatever the method.
    origin = request.headers.get("Origin")
    if origin is not None and not _origin_allowed(origin, config):
        raise ApiError(
            403,
            f"Origin {origin} is not allowed: this server is "
            f"{request.scheme}://{request.host} (behind a proxy: docs/deploy.md; "
            "pages elsewhere: FLOWRUN_ALLOWED_ORIGINS)",
        )
    if request.method in _BODY_METHODS and request.mimetype != "application/json":
        # A POST without any body and Content-Type (curl -X POST …/stop) is not a
        # form a foreign page could send unnoticed: browsers add Origin to it.
        if request.mimetype or request.content_length:
            raise ApiError(415, "Content-Type must be application/json")
    return None


def _check_host(allowed) -> None:
    """Refuse a ``Host`` this server does not answer to: a page on another site
    whose name now resolves to this machine (DNS rebinding) names its own.

    Behind a trusted proxy both the host the proxy connected with and the one it
    forwards (``X-Forwarded-Host``) must be allowed: a page that reaches the
    server directly from this machine could send the latter itself.
    """
    original = request.environ.get("werkzeug.proxy_fix.orig", {}).get("HTTP_HOST")
    for host in (original, request.host):
        if host is not None and not allowed.allows(host):
            raise ApiError(
                400,
                f"Host {host!r} is not one this server answers to: add it to "
                "FLOWRUN_SERVER_HOSTS",
            )


def _same(given: str, expected: str) -> bool:
    """Compare secrets in constant time; any text, not only ASCII, is just wrong."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8")
    )


def _authorized(token: str) -> bool:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and _same(auth[7:].strip(), token):
        return True
    cookie = request.cookies.get(COOKIE)
    return bool(cookie) and _same(cookie, cookie_value(token))


def _origin_allowed(origin: str, config) -> bool:
    origin = origin.rstrip("/")
    if origin.lower() == "null":
        return False
    parts = urlsplit(origin)
    if _origin_of(parts.scheme, parts.netloc) == _origin_of(
        request.scheme, request.host
    ):
        return True
    allowed = settings_mod.split(config.get("FLOWRUN_ALLOWED_ORIGINS"))
    return origin in {a.rstrip("/") for a in allowed}


_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def _origin_of(scheme: str, netloc: str) -> tuple[str, str]:
    """``(scheme, host[:port])`` lower-cased, without the scheme's default port."""
    scheme, netloc = scheme.lower(), netloc.lower()
    port = _DEFAULT_PORTS.get(scheme)
    return scheme, netloc.removesuffix(port) if port else netloc


def tag_worker(response):
    # Which worker process answered: lets tests (and operators) see cross-worker paths.
    response.headers["X-Flowrun-Worker"] = str(os.getpid())
    return response
