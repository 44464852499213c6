"""The guard's pinned connections behave like urllib3's own, and their fallback too.

Pinned connections (``connections._Pinned``) replace urllib3's private
``_new_conn``. These tests prove the three ways a request can go (pinned, the
fallback that checks before sending, no guard at all: urllib3's own code) give the
same answers and the same errors, and that the startup check notices a urllib3
without the hook.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
import requests
import urllib3

from flowrun.errors import StepError
from flowrun.http import client as client_module
from flowrun.http import connections
from flowrun.http.client import Client, environment_changed
from flowrun.http.flight import Flight
from flowrun.http.guard import NetworkGuard

from .target import free_port


@pytest.mark.parametrize(
    ("method", "url", "headers", "data"),
    [
        (
            "get",
            "http://127.0.0.1:5/a?x=1&y=%20z",
            {"Accept": "x", "accept": "y"},
            None,
        ),
        ("POST", "http://u:p@127.0.0.1:5/in", {"content-type": "a/json"}, b'{"a":1}'),
        ("PUT", "http://127.0.0.1:5/p", {}, b""),
        ("DELETE", "http://[::1]:5/\u00fc?q=\u00e4", {"user-agent": "me"}, None),
        ("POST", "http://127.0.0.1:5/f", {"X-B": b"\xc3\xa9"}, b"a=1&b=%C3%A9"),
    ],
)
def test_prepared_as_the_session_would(method, url, headers, data):
    """``Client._prepare`` (a Request prepared alone) gives what the session's own
    ``prepare_request`` gives: method, URL, headers in order, body, cookies."""
    client = Client()
    for _ in range(2):  # without, then with cookies in the session's jar
        expected = client.session.prepare_request(
            requests.Request(method, url, headers=headers, data=data)
        )
        got = client._prepare(method, url, headers, data)
        assert (got.method, got.url, got.body) == (
            expected.method,
            expected.url,
            expected.body,
        )
        assert list(got.headers.items()) == list(expected.headers.items())
        assert got.hooks == expected.hooks
        client.session.cookies.set("sid", "abc", domain="127.0.0.1", path="/")
    if url.startswith("http://127.0.0.1"):
        assert got.headers["Cookie"] == "sid=abc"


def _guard():
    return NetworkGuard(blocked=["169.254.0.0/16", "10.0.0.0/8"])


@pytest.fixture(params=["pinned", "checked first", "urllib3's own"])
def way(request, monkeypatch):
    """A factory of clients that send one of the three ways."""
    if request.param == "checked first":
        monkeypatch.setattr(connections, "PINNED", False)

    def make():
        client = Client(guard=None if request.param == "urllib3's own" else _guard())
        adapter = client.session.get_adapter("http://x/")
        pool = adapter.poolmanager.pool_classes_by_scheme["http"]
        pinned = issubclass(pool.func.ConnectionCls, connections._Pinned)
        assert pinned == (request.param == "pinned")
        return client

    return make


def _outcome(make, url, method="GET", data=None):
    client = make()
    try:
        reply = client.send(method, url, {"X-A": "1"}, data, 5)
    except StepError as exc:
        return type(exc).__name__, str(exc)
    finally:
        client.close()
    headers = {k: v for k, v in reply.headers.items() if k != "Date"}
    return reply.status, reply.status_text, headers, reply.body, reply.size


def _expected(url, method="GET", data=None):
    """The same request through urllib3's own connections (no guard at all)."""
    return _outcome(Client, url, method, data)


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("GET", "/demo/items", None),
        ("POST", "/demo/echo?q=1", b'{"a": 1}'),
        ("GET", "/demo/redirect?to=/demo/cookie/set", None),
        ("GET", "/demo/status/404", None),
        ("GET", "/demo/big?bytes=100000", None),
    ],
)
def test_the_same_answer_every_way(way, target, method, path, data):
    for host in ("127.0.0.1", "localhost"):  # an IP literal and a name
        url = f"http://{host}:{target.port}{path}"
        assert _outcome(way, url, method, data) == _expected(url, method, data)


def test_the_same_errors_every_way(way):
    refused = f"http://127.0.0.1:{free_port()}/x"
    assert _outcome(way, refused) == _expected(refused)
    assert _outcome(way, refused)[1].startswith("Network error: connection refused")
    unknown = "http://no-such-host.invalid/x"
    assert _outcome(way, unknown) == _expected(unknown)
    assert "DNS lookup failed" in _outcome(way, unknown)[1]


def test_blocked_alike_pinned_or_checked_first(monkeypatch):
    blocked = "http://10.1.2.3:9/x"
    pinned = _outcome(lambda: Client(guard=_guard()), blocked)
    monkeypatch.setattr(connections, "PINNED", False)
    checked_first = _outcome(lambda: Client(guard=_guard()), blocked)
    assert (
        pinned
        == checked_first
        == (
            "BlockedTarget",
            "Blocked: 10.1.2.3 resolves to 10.1.2.3, which is in a blocked network "
            "(10.0.0.0/8, FLOWRUN_BLOCKED_NETWORKS)",
        )
    )


def _pool(cls, port):
    pool_cls = cls["http"] if isinstance(cls, dict) else cls
    return pool_cls("127.0.0.1", port, retries=False, timeout=5)


def test_connection_errors_are_urllib3s_own(target):
    """At urllib3's level: the same response, and the same exception types."""
    ours = connections.pool_classes(Flight(), _guard())
    theirs = urllib3.HTTPConnectionPool
    got = _pool(ours, target.port).request("GET", "/demo/items")
    expected = _pool(theirs, target.port).request("GET", "/demo/items")
    assert (got.status, got.data) == (expected.status, expected.data)
    port = free_port()
    for pool in (_pool(ours, port), _pool(theirs, port)):
        with pytest.raises(urllib3.exceptions.NewConnectionError):
            pool.request("GET", "/")
    for cls in (ours["http"], theirs):
        pool = cls("no-such-host.invalid", 80, retries=False, timeout=5)
        with pytest.raises(urllib3.exceptions.NameResolutionError):
            pool.request("GET", "/")


def test_the_startup_check_sees_this_urllib3_hooked():
    assert connections.PINNED is True
    assert connections.check_hooks() is True


def test_the_startup_check_notices_a_missing_or_changed_hook(monkeypatch, caplog):
    cls = urllib3.connection.HTTPConnection
    monkeypatch.delattr(cls, "_new_conn")
    with caplog.at_level(logging.WARNING, "flowrun"):
        assert connections.check_hooks() is False
    assert "checks each target's address before sending" in caplog.text
    monkeypatch.undo()
    monkeypatch.setattr(cls, "_new_conn", lambda self, family: None)
    assert connections.check_hooks() is False


def test_pooled_connections_are_reused_under_gevent(target):
    """Under gevent the OS's poll checks pooled connections; reuse still works."""
    script = textwrap.dedent(
        f"""
        from gevent import monkey
        monkey.patch_all()
        from flowrun.http.client import Client
        from flowrun.http.connections import _Tracked
        client = Client()
        for _ in range(3):
            reply = client.send("GET", "{target.url}/demo/items", {{}}, None, 5)
            assert reply.status == 200, reply.status
        pools = client.session.get_adapter("http://x/").poolmanager.pools
        (key,) = pools.keys()
        pool = pools[key]
        assert issubclass(pool.ConnectionCls, _Tracked)
        assert pool.num_connections == 1, pool.num_connections
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_the_pool_kept_per_origin_is_the_one_requests_finds(tmp_path):
    """The adapter keeps the pool requests and urllib3 give for each origin, verify
    and cert, and closes them all on close(), also those the pool manager let go
    (more origins than it keeps)."""
    from requests.adapters import HTTPAdapter

    client = Client()
    adapter = client.session.get_adapter("http://x/")
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    urls = [
        "http://127.0.0.1:5/a",
        "http://127.0.0.1:5/b?c",
        "https://Example.com/x",
        "https://example.com:8443/y",
        "http://[::1]:8080/",
        "http://u:p@127.0.0.1:5/z",
    ] + [f"http://127.0.0.{i}:5/" for i in range(2, 14)]
    kept = set()
    for verify in (True, False, str(bundle)):
        for url in urls:
            request = requests.Request("GET", url).prepare()
            expected = HTTPAdapter.get_connection_with_tls_context(
                adapter, request, verify
            )
            got = adapter.get_connection_with_tls_context(request, verify)
            assert got is expected, url
            kept.add(got)
        for url in urls:  # the pool manager has let most of them go by now
            request = requests.Request("GET", url).prepare()
            again = adapter.get_connection_with_tls_context(request, verify)
            assert again in kept and again.pool is not None, url
    assert len(adapter.poolmanager.pools) == 10 < len(kept)
    client.close()
    assert all(pool.pool is None for pool in kept)  # all closed


def test_environment_settings_as_requests_would_take_them(monkeypatch, tmp_path):
    """trust_env is off unless the environment has proxy or .netrc settings; the
    CA bundle variable is then read once, and the settings Session.send gets are
    the ones requests would take from the environment itself."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NETRC"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/some/bundle.pem")
    environment_changed()
    client = Client()
    assert client.session.trust_env is False
    url = "https://example.com/x"
    theirs = requests.Session().merge_environment_settings(url, {}, True, True, None)
    assert client._settings == theirs
    assert theirs["verify"] == "/some/bundle.pem"
    assert Client(verify=False)._settings["verify"] is False
    # The environment is looked at once a second, or again when told it changed.
    monkeypatch.setattr(client_module, "ENVIRONMENT_TTL_S", 3600)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert Client().session.trust_env is False
    environment_changed()
    proxied = Client()
    assert proxied.session.trust_env is True
    assert proxied._settings_for(url)["proxies"] == {"https": "http://127.0.0.1:9"}
    monkeypatch.setattr(client_module, "ENVIRONMENT_TTL_S", 0)
    monkeypatch.delenv("HTTPS_PROXY")
    assert Client().session.trust_env is False
    (tmp_path / ".netrc").write_text("machine example.com login a password b\n")
    assert Client().session.trust_env is True
    environment_changed()  # for the tests after this one, once HOME is back


@pytest.mark.parametrize(
    ("path", "as_bytes"),
    [
        ("/demo/echo?a=1", False),
        ("/demo/echo?a=1", True),  # a URL given as bytes
        ("/demo/cookie/set?value=abc", False),  # sets a cookie: requests' own path
        ("/demo/redirect?to=/demo/echo", False),
        ("/demo/status/404", True),
        ("/demo/items", False),
    ],
)
def test_a_response_is_built_as_requests_builds_it(target, path, as_bytes):
    """The adapter builds a response that sets no cookie itself (skipping the jar);
    field by field it is the response requests' own adapter builds."""
    from flowrun.http.client import _Adapter

    ours_adapter, theirs_adapter = _Adapter(Flight()), requests.adapters.HTTPAdapter()
    url = target.url + path
    req = requests.Request("GET", url).prepare()
    if as_bytes:
        req.url = url.encode()
    with urllib3.PoolManager() as http:
        resp = http.request("GET", url, preload_content=False, redirect=False)
        ours = ours_adapter.build_response(req, resp)
        theirs = theirs_adapter.build_response(req, resp)
        resp.release_conn()
    assert set(vars(ours)) == set(vars(theirs))
    for name, expected in vars(theirs).items():
        if name == "cookies":
            assert ours.cookies.get_dict() == expected.get_dict()
        elif name == "connection":
            assert ours.connection is ours_adapter
        else:
            assert getattr(ours, name) == expected, name
    assert ours.raw is resp and ours.url == url and ours.status_code == resp.status
    if "cookie" in path:
        assert ours.cookies.get_dict() == {"session": "abc"}


def test_the_session_jar_takes_cookies_only_from_responses_that_set_them(target):
    client = Client()
    for _ in range(2):
        client.send("GET", target.url + "/demo/echo", {}, None, 5)
        assert client.session.cookies.get_dict() == {}
        client.send("GET", target.url + "/demo/cookie/set?value=abc", {}, None, 5)
        assert client.session.cookies.get_dict() == {"session": "abc"}
        reply = client.send("GET", target.url + "/demo/cookie/check", {}, None, 5)
        assert reply.body == {"session": "abc"}
        client.session.cookies.clear()
    client.close()
