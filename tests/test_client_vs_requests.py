"""The client's fast paths behave exactly like the requests code they stand in for."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import requests

from flowrun.http.client import Client


@pytest.mark.parametrize(
    ("method", "url", "headers", "data"),
    [
        ("get", "http://127.0.0.1:5/a?x=1&y=%20z", {"Accept": "x", "X-N": None}, None),
        ("POST", "http://u:p@127.0.0.1:5/in", {"content-type": "a/json"}, b'{"a":1}'),
        ("PUT", "http://127.0.0.1:5/p", {}, b""),
        ("DELETE", "http://[::1]:5/\u00fc?q=\u00e4", {"user-agent": "me"}, None),
        ("POST", "http://127.0.0.1:5/f", {"X-B": b"\xc3\xa9"}, b"a=1&b=%C3%A9"),
    ],
)
def test_prepare_matches_session_prepare_request(method, url, headers, data):
    client = Client()
    client.session.cookies.set("sid", "abc", domain="127.0.0.1", path="/")
    expected = client.session.prepare_request(
        requests.Request(method.upper(), url, headers=headers, data=data or {})
    )
    got = client._prepare(method, url, headers, data)
    assert (got.method, got.url, got.body) == (
        expected.method,
        expected.url,
        expected.body,
    )
    assert list(got.headers.items()) == list(expected.headers.items())
    assert got.hooks == expected.hooks
    assert [c.name for c in got._cookies] == [c.name for c in expected._cookies]


def test_ca_bundle_variable_is_read_once_without_trust_env(monkeypatch, tmp_path):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NETRC"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/some/bundle.pem")
    client = Client()
    assert client.session.trust_env is False
    assert client.verify == "/some/bundle.pem"
    assert Client(verify=False).verify is False
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert Client().session.trust_env is True


def test_pooled_connection_check_under_gevent(target):
    """Under gevent the OS's poll checks pooled connections; reuse still works."""
    script = textwrap.dedent(
        f"""
        from gevent import monkey
        monkey.patch_all()
        from flowrun.http.client import Client
        from flowrun.http.guard import _HTTPPool
        client = Client()
        pools = {{a.poolmanager.pool_classes_by_scheme["http"]
                  for a in client.session.adapters.values()}}
        assert pools == {{_HTTPPool}}, pools
        for _ in range(3):
            reply = client.send("GET", "{target.url}/demo/items", {{}}, None, 5)
            assert reply.status == 200, reply.status
        pools = client.session.adapters["http://"].poolmanager.pools
        (key,) = pools.keys()
        pool = pools[key]
        assert pool.num_connections == 1, pool.num_connections
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_prepare_without_cookies_matches_session_prepare_request():
    client = Client()
    for url in ("http://127.0.0.1:5/a", "http://u:p@127.0.0.1:5/b", "http://h/c@d"):
        headers = {"accept": "x", "User-Agent": None, "X-A": "1"}
        expected = client.session.prepare_request(
            requests.Request("GET", url, headers=headers)
        )
        got = client._prepare("get", url, headers, None)
        assert (got.method, got.url, got.body) == (
            expected.method,
            expected.url,
            expected.body,
        )
        assert list(got.headers.items()) == list(expected.headers.items())
        assert got.hooks == expected.hooks
        assert list(got._cookies) == list(expected._cookies) == []


@pytest.mark.parametrize(
    "path",
    [
        "/demo/items",
        "/demo/cookie/set?value=abc",
        "/demo/redirect?to=/demo/cookie/set%3Fvalue%3Dxyz",
        "/demo/redirect?to=/demo/redirect%3Fto%3D/demo/items",
        "/demo/status/404",
    ],
)
def test_send_matches_session_send(target, path):
    """Client._send (Session.send less the work that finds nothing) answers alike:
    status, final URL, history, headers, body and the session's cookies after."""
    client = Client()
    session = requests.Session()
    session.trust_env = False
    url = target.url + path
    for _ in range(2):  # the second time with cookies in both jars
        got = client._send(client._prepare("GET", url, {}, None), (5, 5))
        expected = session.send(
            session.prepare_request(requests.Request("GET", url)),
            stream=True,
            allow_redirects=True,
            timeout=(5, 5),
        )
        assert got.status_code == expected.status_code
        assert got.url == expected.url
        assert [(r.status_code, r.url) for r in got.history] == [
            (r.status_code, r.url) for r in expected.history
        ]
        assert got.encoding == expected.encoding
        assert got.reason == expected.reason
        assert sorted(k for k in got.headers if k.lower() != "date") == sorted(
            k for k in expected.headers if k.lower() != "date"
        )
        assert got.content == expected.content
        assert [(c.name, c.value, c.domain, c.path) for c in got.cookies] == [
            (c.name, c.value, c.domain, c.path) for c in expected.cookies
        ]
        assert [(c.name, c.value) for c in client.session.cookies] == [
            (c.name, c.value) for c in session.cookies
        ]
    client.close()
    session.close()


def test_pool_key_attributes_match_requests(tmp_path):
    from requests.adapters import HTTPAdapter

    from flowrun.http.client import _Adapter

    ours, theirs = _Adapter(), HTTPAdapter()
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    urls = [
        "http://127.0.0.1:5/a",
        "http://127.0.0.1:5/b?c=d",
        "https://Example.com/x",
        "https://example.com:8443/y",
        "http://u:p@127.0.0.1/z",
        "http://[::1]:8080/",
    ]
    for verify in (True, False, str(bundle), str(tmp_path)):
        for cert in (None, "c.pem", ("c.pem", "k.pem")):
            for url in urls * 2:
                request = requests.Request("GET", url).prepare()
                assert ours.build_connection_pool_key_attributes(
                    request, verify, cert
                ) == theirs.build_connection_pool_key_attributes(request, verify, cert)
                assert ours.request_url(request, {}) == theirs.request_url(request, {})


def test_pool_lookup_matches_urllib3(tmp_path):
    """The memoised pool key finds the pool urllib3's own lookup finds, also after
    pools were evicted (more origins than the pool manager keeps)."""
    from requests.adapters import HTTPAdapter

    from flowrun.http.client import _Adapter

    adapter = _Adapter()
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
    for verify in (True, False, str(bundle)):
        for _ in range(2):
            for url in urls:
                request = requests.Request("GET", url).prepare()
                got = adapter.get_connection_with_tls_context(request, verify)
                host_params, pool_kwargs = (
                    HTTPAdapter.build_connection_pool_key_attributes(
                        adapter, request, verify, None
                    )
                )
                expected = adapter.poolmanager.connection_from_host(
                    **host_params, pool_kwargs=pool_kwargs
                )
                assert got is expected, url
    assert len(adapter.poolmanager.pools) == 10  # evictions happened
