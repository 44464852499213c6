"""HTTP for steps: one requests.Session per execution, bounded bodies, clear errors."""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar, merge_cookies
from requests.hooks import default_hooks, dispatch_hook
from requests.sessions import merge_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy
from urllib3.connectionpool import port_by_scheme

from flowrun.errors import StepTimeout, TargetUnreachable
from flowrun.http import headers as _headers
from flowrun.http.guard import NetworkGuard, PoolManager, origin_of

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


_JSON_START = tuple('{["-0123456789tfn')


CONNECT_TIMEOUT_CAP = 10.0


def seconds(value: float) -> str:
    """Format seconds like FlowSphere's messages: ``5s``, ``0.5s``."""
    return f"{value:g}s"


class _Adapter(HTTPAdapter):
    """The client's adapter: checks every request (redirects too) against the guard
    before it leaves, and skips work requests repeats per call for nothing.

    - pool-key attributes (a URL parse and, with a CA-bundle path, an ``isdir``) and
      urllib3's pool key (a namedtuple of ~30 fields, rebuilt per request) are worked
      out once per origin, ``verify`` and ``cert``; the pool lookup itself still
      runs every time (locked, LRU order kept, a new pool after an eviction);
    - without proxies, the proxy lookups (two more URL parses) are skipped: they
      find nothing;
    - a response without ``Set-Cookie``/``Set-Cookie2`` skips the cookie jar (whose
      extraction parses the URL and takes the jar's lock to find no cookie).

    Each shortcut gives what the code it stands in for returns (tests compare).
    """

    def __init__(self, guard: NetworkGuard | None = None):
        self.guard = guard  # before super().__init__, which makes the pool manager
        super().__init__()
        self._pool_keys: dict[tuple, tuple[dict, dict]] = {}
        self._pools: dict[tuple, tuple] = {}  # → (pool manager, pool key, context)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = PoolManager(
            self.guard,
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            **pool_kwargs,
        )

    def send(self, request, *args, **kwargs):
        if self.guard is not None:
            # Straight to the target, the connection checks the addresses it
            # connects to (_Checked); through a proxy it connects to the proxy, so
            # the target is looked up and checked here.
            proxies = kwargs.get("proxies")
            proxy = select_proxy(request.url, proxies) if proxies else None
            self.guard.check(request.url, resolve=proxy is not None)
        return super().send(request, *args, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        key = _memo_key(request.url, verify, cert)
        if key is None:
            return super().build_connection_pool_key_attributes(request, verify, cert)
        found = self._pool_keys.get(key)
        if found is None:
            found = super().build_connection_pool_key_attributes(request, verify, cert)
            if len(self._pool_keys) >= 64:
                self._pool_keys.clear()
            self._pool_keys[key] = found
        host_params, pool_kwargs = found
        return dict(host_params), dict(pool_kwargs)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        if proxies:
            return super().get_connection_with_tls_context(
                request, verify, proxies, cert
            )
        manager = self.poolmanager
        memo_key = _memo_key(request.url, verify, cert)
        found = self._pools.get(memo_key) if memo_key is not None else None
        if found is not None and found[0] is manager:
            # The pool key urllib3 would build again: the same lookup (lock, LRU
            # order, a new pool if it was evicted) without rebuilding the key.
            return manager.connection_from_pool_key(
                found[1], request_context=dict(found[2])
            )
        # requests' own code without a proxy (select_proxy finds none in {}).
        try:
            host_params, pool_kwargs = self.build_connection_pool_key_attributes(
                request, verify, cert
            )
        except ValueError as e:
            raise requests.exceptions.InvalidURL(e, request=request) from None
        if memo_key is not None and host_params.get("host"):
            found = _pool_key(manager, host_params, pool_kwargs)
            if found is not None:
                if len(self._pools) >= 64:
                    self._pools.clear()
                self._pools[memo_key] = (manager, *found)
                return manager.connection_from_pool_key(
                    found[0], request_context=dict(found[1])
                )
        return manager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)

    def request_url(self, request, proxies):
        if proxies:
            return super().request_url(request, proxies)
        return request.path_url  # what requests returns when no proxy applies

    def build_response(self, req, resp):
        if _sets_cookies(resp):
            return super().build_response(req, resp)
        # requests' build_response, less the cookie extraction that finds nothing
        response = requests.Response()
        response.status_code = getattr(resp, "status", None)
        response.headers = CaseInsensitiveDict(getattr(resp, "headers", {}))
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = response.raw.reason
        if isinstance(req.url, bytes):
            response.url = req.url.decode("utf-8")
        else:
            response.url = req.url
        response.request = req
        response.connection = self
        return response


def _memo_key(url, verify, cert) -> tuple | None:
    """What the pool-key attributes depend on: origin, ``verify``, ``cert``."""
    origin = origin_of(url)
    if origin is None or not isinstance(cert, (str, tuple, type(None))):
        return None
    return (origin, verify, cert)


def _pool_key(manager, host_params: dict, pool_kwargs: dict):
    """``(pool key, request context)`` as ``PoolManager.connection_from_host``
    builds them (urllib3 2.x), or None where it would do something else."""
    context = manager._merge_pool_kwargs(pool_kwargs)
    context["scheme"] = host_params["scheme"] or "http"
    port = host_params["port"]
    if port is None:
        port = port_by_scheme.get(context["scheme"].lower(), 80)
    context["port"] = port
    context["host"] = host_params["host"]
    key_fn = manager.key_fn_by_scheme.get(context["scheme"].lower())
    if key_fn is None or "strict" in context:
        return None  # urllib3 raises (unknown scheme) or warns: let it
    return key_fn(context), context


def _sets_cookies(raw) -> bool:
    """Whether a urllib3 response carries cookies for a jar to extract."""
    headers = getattr(raw, "headers", None)
    if headers is None:
        return True  # let requests decide
    return "set-cookie" in headers or "set-cookie2" in headers


def _jar_empty(jar) -> bool:
    for _cookie in jar:
        return False
    return True


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


def _environment_has_proxy_settings() -> bool:
    """True when requests' per-call environment lookups could find something.

    CA-bundle variables are not counted: ``Client`` reads them once instead.
    """
    if any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARS):
        return True
    home = os.path.expanduser("~")
    return (
        bool(os.environ.get("NETRC"))
        or os.path.exists(os.path.join(home, ".netrc"))
        or os.path.exists(os.path.join(home, "_netrc"))
    )


def _ca_bundle_from_environment() -> str | None:
    """The CA bundle requests would pick from the environment (trust_env on)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


class Client:
    """Send steps' requests for one execution (cookies carry over between steps)."""

    def __init__(
        self,
        max_body_bytes: int = 1_048_576,
        max_validate_bytes: int = 16_777_216,
        guard: NetworkGuard | None = None,
        verify: bool = True,
    ):
        self.max_body_bytes = max_body_bytes
        self.max_validate_bytes = max_validate_bytes
        self.verify = verify
        _headers.install()  # a faster http.client.parse_headers (headers.py)
        self.session = requests.Session()
        # requests looks up proxies, .netrc and CA-bundle variables in the environment
        # on every call. When there are no proxy or .netrc settings, skip those lookups
        # for the whole run, reading a CA bundle variable once here as requests would.
        self.session.trust_env = _environment_has_proxy_settings()
        if not self.session.trust_env and verify is True:
            self.verify = _ca_bundle_from_environment() or True
        adapter = _Adapter(guard)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def send(self, method, url, headers, data, timeout: float) -> Reply:
        """Send one request; raise a StepError subclass with a clear message."""
        started = time.perf_counter()
        timeouts = (min(timeout, CONNECT_TIMEOUT_CAP), timeout)
        try:
            if self.session.trust_env:
                resp = self.session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    timeout=timeouts,
                    allow_redirects=True,
                    stream=True,
                    verify=self.verify,
                )
            else:
                resp = self._send(self._prepare(method, url, headers, data), timeouts)
        except requests.exceptions.RequestException as exc:
            raise _describe(exc, url, timeout) from None
        try:
            raw, complete = self._read(resp)
        except requests.exceptions.RequestException as exc:
            raise _describe(exc, url, timeout) from None
        finally:
            resp.close()
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
        """Prepare what ``Session.request`` would, without its generic merging.

        With trust_env off and no session-level params, ``Session.request`` ends up
        with these exact arguments; its ``merge_setting`` calls (typing Protocol
        isinstance checks) and empty-params encoding cost more per request than the
        engine's own work for a step. ``PreparedRequest.prepare``'s steps run in its
        order; two are skipped when they cannot change anything: the cookie header
        while the session's jar is empty, and auth from the URL when there is no
        session auth and no ``@`` in the URL.
        """
        session = self.session
        # CaseInsensitiveDict(session.headers).update(headers), as a plain dict:
        # the last spelling of a name wins, in the position of its first.
        store = {k.lower(): (k, v) for k, v in session.headers.items()}
        for k, v in (headers or {}).items():
            store[k.lower()] = (k, v)
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method.upper())
        prepared.prepare_url(url, None)
        prepared.prepare_headers({k: v for k, v in store.values() if v is not None})
        if _jar_empty(session.cookies):
            prepared._cookies = RequestsCookieJar()
        else:
            prepared.prepare_cookies(
                merge_cookies(RequestsCookieJar(), session.cookies)
            )
        prepared.prepare_body(data or {}, None, None)
        if session.auth is not None or "@" in prepared.url:
            prepared.prepare_auth(session.auth, url)
        prepared.prepare_hooks(merge_hooks(default_hooks(), session.hooks))
        return prepared

    def _send(self, request, timeouts) -> requests.Response:
        """``Session.send`` for a prepared request (redirects followed, stream on).

        Skips the cookie extraction for a response without cookies and the redirect
        generator for a response that is not a redirect; both find nothing then.
        """
        session = self.session
        kwargs = {
            "stream": True,
            "timeout": timeouts,
            "verify": self.verify,
            "cert": session.cert,
            "proxies": dict(session.proxies),
        }
        adapter = session.get_adapter(url=request.url)
        start = time.perf_counter()
        resp = adapter.send(request, **kwargs)
        resp.elapsed = timedelta(seconds=time.perf_counter() - start)
        resp = dispatch_hook("response", request.hooks, resp, **kwargs)
        for earlier in resp.history:  # only if a hook made history
            extract_cookies_to_jar(session.cookies, earlier.request, earlier.raw)
        if _sets_cookies(resp.raw):
            extract_cookies_to_jar(session.cookies, request, resp.raw)
        if resp.is_redirect:
            history = list(session.resolve_redirects(resp, request, **kwargs))
            if history:
                history.insert(0, resp)
                resp = history.pop()
                resp.history = history
        return resp

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


def _describe(exc: Exception, url: str, timeout: float) -> Exception:
    """Turn a requests exception into a message that says what happened."""
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
