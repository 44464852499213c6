"""HTTP for steps: one requests.Session per execution, bounded bodies, clear errors.

Every request is a ``requests.Request`` prepared and sent with ``Session.send``
(cookies, redirects, environment settings: all requests' own), through an
``HTTPAdapter`` subclass that checks each target (redirects too) against the network
guard, gives each hop what is left of the step's deadline, and uses the connection
classes of ``connections.py``.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass
from http.cookiejar import CookieJar
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, get_netrc_auth, select_proxy

from flowrun.errors import RequestTooLarge, StepError, StepTimeout, TargetUnreachable
from flowrun.http import connections
from flowrun.http.flight import Flight, seconds
from flowrun.http.guard import NetworkGuard, origin_of
from flowrun.http.headers import install as install_header_parser

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


_JSON_START = tuple('{["-0123456789tfn')


CONNECT_TIMEOUT_CAP = 10.0


class _Adapter(HTTPAdapter):
    """requests' adapter with the guard, the step's deadline and tracked connections.

    Every request and redirect passes the guard before it leaves. Straight to the
    target, the connection checks the addresses it connects to (pinned connections);
    through a proxy, which connects elsewhere, or where connections cannot be pinned,
    the target is looked up and checked here first.
    """

    def __init__(self, flight: Flight, guard: NetworkGuard | None = None):
        # before super().__init__, which makes the pool manager
        self.flight = flight
        self.guard = guard
        self.pinned = guard is not None and bool(guard.blocked) and connections.PINNED
        self._pools = connections.pool_classes(flight, guard if self.pinned else None)
        self._proxy_pools = connections.pool_classes(flight)
        self._kept: dict[tuple, object] = {}  # pools by (origin, verify, cert)
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        fresh = proxy not in self.proxy_manager
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if fresh and not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = self._proxy_pools
        return manager

    def send(
        self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None
    ):
        # Each hop (redirects too) gets what is left of the step's deadline.
        left = self.flight.remaining()
        if self.guard is not None:
            proxied = bool(proxies) and select_proxy(request.url, proxies) is not None
            self.guard.check(
                request.url, resolve=proxied or not self.pinned, proxied=proxied
            )
        timeout = (min(left, CONNECT_TIMEOUT_CAP), left)
        return super().send(request, stream, timeout, verify, cert, proxies)

    def request_url(self, request, proxies):
        # Straight to the target the request line carries the path: what requests
        # works out too, after looking for a proxy that is not there.
        if not proxies:
            return request.path_url
        return super().request_url(request, proxies)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        # The pool for an origin, verify and cert is the same every time, and
        # finding it again costs requests and urllib3 more than an engine step's own
        # work (URL parses, a pool key of ~30 fields). So the adapter keeps the pool
        # it was given for each (up to 64), and closes them with the rest.
        origin = origin_of(request.url)
        if proxies or origin is None:
            return super().get_connection_with_tls_context(
                request, verify, proxies, cert
            )
        key = (origin, verify, cert)
        pool = self._kept.get(key)
        if pool is None:
            pool = super().get_connection_with_tls_context(
                request, verify, proxies, cert
            )
            if len(self._kept) < 64:
                self._kept[key] = pool
        return pool

    def close(self):
        super().close()
        for pool in self._kept.values():
            pool.close()  # also those the pool manager no longer holds
        self._kept.clear()

    def build_response(self, req, resp):
        self.flight.reading(resp)  # the body comes next (redirects' bodies too)
        if "set-cookie" in resp.headers or "set-cookie2" in resp.headers:
            return super().build_response(req, resp)
        # The response requests builds, without asking a fresh cookie jar to read
        # cookies that this response does not set: that costs a mock request (a URL
        # parse), the jar's lock and a clock read per response, ~3 % of a step's CPU
        # under load. test_a_response_is_built_as_requests_builds_it compares the two.
        response = requests.Response()
        response.status_code = getattr(resp, "status", None)
        response.headers = CaseInsensitiveDict(getattr(resp, "headers", {}))
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = (
            req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url
        )
        response.request = req
        response.connection = self
        return response


class _Prepared(requests.PreparedRequest):
    """requests' prepared request, with a step's URL worked out once per text.

    A flow sends the same URLs again and again (its steps, and each run of it), and
    requests parses, IDNA-encodes and requotes a URL afresh every time.
    """

    def prepare_url(self, url, params):
        if params or not isinstance(url, str) or len(url) > _URL_CACHE_MAX_CHARS:
            return super().prepare_url(url, params)
        self.url = _prepared_url(url)

    @property
    def path_url(self):
        # The request line's target, from the same URL text every time too.
        url = self.url
        if isinstance(url, str) and len(url) <= _URL_CACHE_MAX_CHARS:
            return _path_url(url)
        return super().path_url

    def prepare_cookies(self, cookies):
        # An empty jar adds no Cookie header; requests would still build a mock
        # request around this one (parsing its URL again) to ask it.
        if isinstance(cookies, CookieJar) and not len(cookies):
            self._cookies = cookies
            return
        super().prepare_cookies(cookies)

    def prepare_auth(self, auth, url=""):
        # With no auth given, requests looks for credentials in the URL's userinfo,
        # which a URL without "@" does not have.
        if auth is None and "@" not in self.url:
            return
        super().prepare_auth(auth, url)


_URL_CACHE_MAX_CHARS = 2048


@functools.lru_cache(maxsize=1024)
def _prepared_url(url: str) -> str:
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url


@functools.lru_cache(maxsize=1024)
def _path_url(url: str) -> str:
    prepared = requests.PreparedRequest()
    prepared.url = url
    return prepared.path_url


class _Jar(RequestsCookieJar):
    """requests' cookie jar, which has nothing to add to a request while empty,
    and nothing to take from a response that sets no cookie."""

    def add_cookie_header(self, request):
        if len(self):
            super().add_cookie_header(request)

    def extract_cookies(self, response, request):
        headers = response.info()
        if headers.get_all("Set-Cookie") or headers.get_all("Set-Cookie2"):
            super().extract_cookies(response, request)


@dataclass
class Reply:
    """A received response, decoded and bounded."""

    status: int
    status_text: str
    headers: dict  # as received
    lower_headers: dict  # lower-cased names, for lookups
    body: object  # full decoded body (up to the validate limit), for checks
    shown_body: object  # what events and history carry (cut at max_body_bytes)
    size: int
    truncated: bool
    elapsed_ms: float


ENVIRONMENT_TTL_S = 1.0
_environment_seen: tuple[float, bool] | None = None  # (looked at, answer)


def _environment_has_proxy_settings() -> bool:
    """True when requests' per-call environment lookups could find something.

    CA-bundle variables are not counted: ``Client`` reads them once instead.
    Every run asks; the environment and ``~/.netrc`` are looked at (eight
    variables and two files, ~30 µs) at most once a second.
    """
    global _environment_seen
    now = time.monotonic()
    seen = _environment_seen
    if seen is not None and now - seen[0] < ENVIRONMENT_TTL_S:
        return seen[1]
    home = os.path.expanduser("~")
    answer = (
        any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARS)
        or bool(os.environ.get("NETRC"))
        or os.path.exists(os.path.join(home, ".netrc"))
        or os.path.exists(os.path.join(home, "_netrc"))
    )
    _environment_seen = (now, answer)
    return answer


def environment_changed() -> None:
    """Look at proxy variables and ``~/.netrc`` again at the next run, not up to a
    second later: for a program that changes ``os.environ`` while it runs."""
    global _environment_seen
    _environment_seen = None


@functools.lru_cache(maxsize=16)
def _settings_without_environment(verify: bool | str) -> dict:
    """``Session.send``'s settings from a session that does not read the
    environment: the same for every client with this ``verify``, and worked out by
    requests in ~50 µs, so once."""
    session = requests.Session()
    session.trust_env = False
    with session:
        return session.merge_environment_settings(None, {}, True, verify, None)


def _ca_bundle_from_environment() -> str | None:
    """The CA bundle requests would pick from the environment (trust_env on)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


class Client:
    """Send steps' requests for one execution (cookies carry over between steps).

    ``verify``: True (the default CA bundle, or one named by REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE), False (no certificate check) or the path of a CA bundle.
    ``abort()`` may be called from another thread or greenlet: the request in
    flight fails at once with ``StepAborted``, and so does every later one.
    """

    def __init__(
        self,
        max_body_bytes: int = 1_048_576,
        max_validate_bytes: int = 16_777_216,
        guard: NetworkGuard | None = None,
        verify: bool | str = True,
        max_request_bytes: int = 10_485_760,
    ):
        self.max_body_bytes = max_body_bytes
        self.max_validate_bytes = max_validate_bytes
        self.max_request_bytes = max_request_bytes
        self.verify = verify
        install_header_parser()  # a faster http.client.parse_headers (headers.py)
        self.session = requests.Session()
        self.session.cookies = _Jar()
        self._default_headers = dict(self.session.headers)
        # requests looks up proxies, .netrc and CA-bundle variables in the environment
        # on every call. When there are no proxy or .netrc settings, skip those lookups
        # for the whole run, reading a CA bundle variable once here as requests would.
        self.session.trust_env = _environment_has_proxy_settings()
        if not self.session.trust_env and verify is True:
            self.verify = _ca_bundle_from_environment() or True
        self._settings = (
            None  # per URL: proxies and .netrc depend on it
            if self.session.trust_env
            else dict(_settings_without_environment(self.verify))
        )
        if verify is False:
            # Asked for (--insecure): urllib3 would repeat a warning on every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._flight = Flight()
        adapter = _Adapter(self._flight, guard)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def abort(self) -> None:
        """Fail the request in flight now (from any thread), and every later one."""
        self._flight.abort()

    def send(self, method, url, headers, data, timeout: float) -> Reply:
        """Send one request within ``timeout`` seconds in all (connect, headers,
        body, redirects); raise a StepError subclass with a clear message."""
        self._check_size(method, url, headers, data)
        flight = self._flight
        started = time.perf_counter()
        flight.begin(timeout)
        try:
            resp = self.session.send(
                self._prepare(method, url, headers, data),
                timeout=timeout,  # the adapter gives each hop what is left of it
                allow_redirects=True,
                **(self._settings or self._settings_for(url)),
            )
            try:
                raw, complete = self._read(resp)
            finally:
                resp.close()
        except Exception as exc:
            stopped = flight.end()
            if stopped is not None:
                raise stopped from None
            if isinstance(exc, StepError):
                raise
            if isinstance(exc, OSError):  # requests' errors are OSErrors too
                raise _describe(exc, url, timeout) from None
            raise
        stopped = flight.end()
        if stopped is not None:  # e.g. a body read to its end when it was cut
            raise stopped
        elapsed_ms = (time.perf_counter() - started) * 1000
        size = len(raw)
        if not complete:
            declared = resp.headers.get("Content-Length", "")
            size = int(declared) if declared.isdigit() else size
        charset = _charset(resp.headers.get("Content-Type", ""))
        try:
            text = raw.decode(charset, "replace")
        except LookupError:  # a charset Python does not know
            charset = "utf-8"
            text = raw.decode(charset, "replace")
        body = decode(text)
        # Not whole when over the shown limit, or when reading stopped at the
        # validate limit (which may be the smaller of the two).
        truncated = size > self.max_body_bytes or not complete
        if truncated:
            shown = raw[: self.max_body_bytes].decode(charset, "ignore")
        else:
            shown = body
        return Reply(
            status=resp.status_code,
            status_text=resp.reason or "",
            headers=dict(resp.headers),
            lower_headers={k.lower(): v for k, v in resp.headers.items()},
            body=body,
            shown_body=shown,
            size=size,
            truncated=truncated,
            elapsed_ms=elapsed_ms,
        )

    def _prepare(self, method, url, headers, data) -> requests.PreparedRequest:
        """The request with the session's default headers and cookies.

        Prepared on its own, not by ``Session.prepare_request``: the session holds
        nothing else to merge, and that merging (generic mapping checks, a copy of
        the cookie jar) costs more than the engine's own work for a step. A step's
        header replaces a default of the same name in any case: requests' header
        dict keeps the last value given for a name.
        """
        session = self.session
        merged = (
            {**self._default_headers, **headers} if headers else self._default_headers
        )
        prepared = _Prepared()
        prepared.prepare(
            method=method,
            url=url,
            headers=merged,
            data=data,
            auth=get_netrc_auth(url) if session.trust_env else None,
            cookies=session.cookies,
        )
        return prepared

    def _settings_for(self, url) -> dict:
        """``Session.send``'s settings from the environment (trust_env on)."""
        return self.session.merge_environment_settings(url, {}, True, self.verify, None)

    def _check_size(self, method, url, headers, data) -> None:
        """Refuse a request larger than ``max_request_bytes`` before sending it."""
        size = len(method) + len(url.encode()) + len(data or b"")
        for name, value in (headers or {}).items():
            size += len(name) + len(value) + 4  # ": " and CRLF
        if size > self.max_request_bytes:
            raise RequestTooLarge(
                f"Request too large: {size} bytes (URL, headers and body) is over "
                f"FLOWRUN_MAX_REQUEST_BYTES ({self.max_request_bytes})"
            )

    def _read(self, resp) -> tuple[bytes, bool]:
        limit = self.max_validate_bytes
        chunks, total = [], 0
        for chunk in resp.iter_content(65536):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                return b"".join(chunks)[:limit], False
        return b"".join(chunks), True


def decode(text: str):
    """JSON when the text parses as JSON, whatever the Content-Type; else the text."""
    stripped = text.lstrip()
    if stripped.startswith(_JSON_START):
        try:
            return json.loads(text, parse_constant=_not_json)
        except (ValueError, RecursionError):  # too deep to parse: keep it as text
            pass
    return text


def _not_json(name: str):
    # json.loads accepts NaN and ±Infinity, which are not JSON and cannot be sent on
    raise ValueError(f"{name} is not JSON")


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def _describe(exc: OSError, url: str, timeout: float) -> Exception:
    """Turn a requests exception into a message that says what happened."""
    if not isinstance(exc, requests.exceptions.RequestException):
        # requests' own checks before sending, e.g. a CA bundle path that is missing
        return TargetUnreachable(f"Network error: {exc}")
    chain = _chain(exc)
    # A timeout while reading the body reaches us as a ConnectionError wrapping
    # urllib3's ReadTimeoutError, not as requests' Timeout.
    if isinstance(exc, requests.exceptions.Timeout) or any(
        isinstance(e, (TimeoutError, urllib3.exceptions.ReadTimeoutError))
        for e in chain
    ):
        return StepTimeout(f"Request timeout after {seconds(timeout)}")
    if isinstance(exc, requests.exceptions.InvalidHeader):
        return TargetUnreachable(f"Invalid header: {exc}")
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.URLRequired,
        ),
    ):
        return TargetUnreachable(f"Invalid URL '{url}': {_url_problem(exc, url)}")
    # After a redirect the failing request is not the one the step started with.
    failed = getattr(getattr(exc, "request", None), "url", None) or url
    parts = urlsplit(failed)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    if isinstance(exc, requests.exceptions.SSLError) or any(
        isinstance(e, ssl.SSLError) for e in chain
    ):
        return TargetUnreachable(
            f"Network error: TLS handshake with {where} failed: {_tls_reason(chain)}"
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return TargetUnreachable(f"Network error: connection refused ({where})")
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        "NameResolution" in type(e).__name__ for e in chain
    ):
        return TargetUnreachable(
            f"Network error: DNS lookup failed for host '{parts.hostname}'"
        )
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return TargetUnreachable(f"Network error: connection reset by {where}")
    return TargetUnreachable(f"Network error: {_root(exc)} ({where})")


def _chain(exc: BaseException) -> list[BaseException]:
    seen, todo = [], [exc]
    while todo:
        e = todo.pop()
        if e is None or e in seen:
            continue
        seen.append(e)
        todo.extend([e.__cause__, e.__context__])
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


def _url_problem(exc: Exception, url: str) -> str:
    if isinstance(exc, requests.exceptions.MissingSchema):
        return "no scheme (write http:// or https://, or set defaults.baseUrl)"
    if isinstance(exc, requests.exceptions.InvalidSchema):
        return "only http:// and https:// are supported"
    detail = _root(exc)
    prefix = f"Invalid URL {url!r}: "
    detail = detail.removeprefix(prefix)
    return detail[:1].lower() + detail[1:]


def _tls_reason(chain) -> str:
    for e in chain:
        if isinstance(e, ssl.SSLError):
            reason = getattr(e, "reason", None)
            if isinstance(e, ssl.SSLCertVerificationError):
                return f"certificate verify failed ({e.verify_message})"
            if reason:
                return reason.replace("_", " ").lower()
            return str(e)
    return str(chain[-1]) if chain else "unknown error"


def _root(exc: BaseException) -> str:
    chain = _chain(exc)
    last = chain[-1] if chain else exc
    return str(last) or type(last).__name__
