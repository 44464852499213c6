"""Security hooks and limits: token, Origin, Content-Type, sizes, blocked targets."""

from __future__ import annotations

import io
import json
import logging

import pytest

from flowrun import create_app

from .streams import assert_error, make_flow, node, run_events

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def secured(tmp_path):
    app = create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
            "FLOWRUN_TOKEN": "s3cret-token",
            "FLOWRUN_ALLOWED_ORIGINS": "https://studio.example.com",
            "FLOWRUN_MAX_CONFIG_BYTES": 2000,
        }
    )
    yield app
    app.extensions["flowrun"].store.close()


BEARER = {"Authorization": "Bearer s3cret-token"}


def test_token_required_except_health(secured):
    client = secured.test_client()
    assert client.get("/api/health").status_code == 200
    resp = client.get("/api/executions")
    assert_error(resp, 401, "token")
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert_error(
        client.get("/api/executions", headers={"Authorization": "Bearer nope"}), 401
    )
    assert_error(client.post("/api/validate", json={"nodes": []}), 401)
    assert client.get("/api/executions", headers=BEARER).status_code == 200
    assert client.get("/").status_code == 200  # the page itself; its calls need auth


def test_studio_token_link_sets_an_httponly_cookie(secured):
    client = secured.test_client()
    assert_error(client.get("/?token=wrong"), 401)
    resp = client.get("/?token=s3cret-token")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "s3cret-token" not in cookie
    assert client.get("/api/executions").status_code == 200  # the cookie authorizes


def test_foreign_origin_is_403(secured):
    client = secured.test_client()
    headers = dict(BEARER, Origin="https://evil.example")
    assert_error(client.post("/api/validate", json={"nodes": []}, headers=headers), 403)
    for origin in ("http://localhost", "https://studio.example.com"):
        resp = client.post(
            "/api/validate", json={"nodes": []}, headers=dict(BEARER, Origin=origin)
        )
        assert resp.status_code == 200, origin
    assert_error(
        client.put("/api/flows/x", json={}, headers=dict(BEARER, Origin="null")), 403
    )
    assert_error(
        client.get("/api/executions", headers=dict(BEARER, Origin="https://x.test")),
        403,
    )


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json"]
)
def test_posts_need_json_content_type(client, content_type):
    resp = client.post("/api/validate", data="{}", content_type=content_type)
    assert_error(resp, 415, "application/json")


def test_oversized_body_is_413(secured):
    client = secured.test_client()
    big = {"config": {"nodes": [], "pad": "x" * 5000}}
    assert_error(client.post("/api/execute-stream", json=big, headers=BEARER), 413)


def test_too_many_steps_is_400(app, client, hits):
    app.extensions["flowrun"].max_steps = 2
    flow = make_flow(hits, *[node(f"n{i}", "/items") for i in range(3)])
    body = assert_error(client.post("/api/execute-stream", json={"config": flow}), 400)
    assert body["errors"]


def test_metadata_address_is_refused(client, hits):
    flow = {
        "nodes": [
            {
                "id": "meta",
                "name": "Metadata",
                "method": "GET",
                "url": "http://169.254.169.254/latest/meta-data/",
                "timeout": 30,
            }
        ]
    }
    _, events = run_events(client, flow)
    step = next(d for n, d in events if n == "step")
    assert step["status"] == "failed" and "Blocked" in step["error"]
    assert step["duration"] < 1  # refused before connecting, no timeout


def test_allowed_hosts(tmp_path, hits):
    app = create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "d"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "f"),
            "FLOWRUN_ALLOWED_HOSTS": "api.example.com",
        }
    )
    _, events = run_events(app.test_client(), make_flow(hits, node("a", "/items")))
    step = next(d for n, d in events if n == "step")
    assert "FLOWRUN_ALLOWED_HOSTS" in step["error"] and hits.paths() == []
    app.extensions["flowrun"].store.close()


def test_exposed_bind_without_token_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="flowrun"):
        app = create_app(
            {
                "FLOWRUN_DATA_DIR": str(tmp_path / "d"),
                "FLOWRUN_FLOWS_DIR": str(tmp_path / "f"),
                "FLOWRUN_BIND": "0.0.0.0",
                "FLOWRUN_TOKEN": None,
            }
        )
    assert "FLOWRUN_TOKEN" in caplog.text
    app.extensions["flowrun"].store.close()


@pytest.mark.parametrize(
    "to", ["http://example.invalid/x", "//example.invalid/x", "https://evil.invalid"]
)
def test_the_demo_api_is_no_open_redirect(client, to):
    resp = client.get("/demo/redirect", query_string={"to": to})
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_the_demo_api_redirects_within_the_site(client):
    resp = client.get("/demo/redirect", query_string={"to": "/demo/items"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/demo/items"


@pytest.fixture
def small_limit(tmp_path):
    app = create_app(
        {
            "FLOWRUN_DATA_DIR": str(tmp_path / "data"),
            "FLOWRUN_FLOWS_DIR": str(tmp_path / "flows"),
            "FLOWRUN_MAX_CONFIG_BYTES": 2000,
        }
    )
    yield app.test_client()
    app.extensions["flowrun"].close()


def _chunked(client, raw: bytes):
    # gunicorn sets wsgi.input_terminated: werkzeug then reads a chunked body up
    # to MAX_CONTENT_LENGTH and stops there without an error.
    return client.post(
        "/api/validate",
        input_stream=io.BytesIO(raw),
        headers={**JSON, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_chunked_body_over_the_limit_is_413_not_a_truncated_400(small_limit):
    big = json.dumps({"config": {"name": "x" * 3000, "nodes": []}}).encode()
    body = assert_error(_chunked(small_limit, big), 413)
    assert "FLOWRUN_MAX_CONFIG_BYTES" in body["error"]


def test_chunked_body_at_the_limit_is_read_whole(small_limit):
    empty = b'{"config": {"name": "", "nodes": []}}'
    raw = empty.replace(b'""', b'"' + b"x" * (2000 - len(empty)) + b'"')
    assert len(raw) == 2000
    resp = _chunked(small_limit, raw)
    assert resp.status_code == 200
    assert resp.get_json()["valid"] is False  # no nodes: but read and parsed


@pytest.mark.parametrize(
    "url", ["http://[::ffff:169.254.169.254]/", "http://[::ffff:a9fe:a9fe]/latest"]
)
def test_ipv4_mapped_metadata_address_is_blocked(url):
    from flowrun.errors import BlockedTarget
    from flowrun.http.guard import NetworkGuard

    guard = NetworkGuard(blocked=["169.254.0.0/16", "fd00:ec2::254/128"])
    with pytest.raises(BlockedTarget):
        guard.check(url)


def test_network_guard_remembers_only_what_passed():
    from flowrun.errors import BlockedTarget
    from flowrun.http.guard import NetworkGuard

    guard = NetworkGuard(blocked=["10.0.0.0/8"])
    for _ in range(2):
        guard.check("http://127.0.0.1:5/a")
        guard.check("http://127.0.0.1:5/b?c")
        for url in (
            "http://10.1.2.3:5/x",
            "http://10.1.2.3:5/y",
            "http://[::ffff:10.0.0.1]/",
        ):
            with pytest.raises(BlockedTarget):
                guard.check(url)
    allowed = NetworkGuard(allowed_hosts=["127.0.0.1"])
    for _ in range(2):
        allowed.check("http://127.0.0.1:5/a")
        with pytest.raises(BlockedTarget):
            allowed.check("http://127.0.0.2:5/a")


# -- the Host allow-list (FLOWRUN_SERVER_HOSTS): a DNS-rebinding defence -----------


@pytest.fixture
def make_app(tmp_path):
    """Apps with settings of a test's own; closed at its end."""
    apps = []

    def make(**settings):
        app = create_app(
            {
                "FLOWRUN_DATA_DIR": str(tmp_path / f"data{len(apps)}"),
                "FLOWRUN_FLOWS_DIR": str(tmp_path / f"flows{len(apps)}"),
                "FLOWRUN_TOKEN": None,
                **settings,
            }
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["flowrun"].close()


REBOUND = {"Host": "attacker.example:8000", "Origin": "http://attacker.example:8000"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/executions"),
        ("GET", "/api/flows"),
        ("POST", "/api/validate"),
        ("GET", "/"),
        ("GET", "/static/js/main.js"),
        ("GET", "/demo/items"),
        ("GET", "/api/health"),
        ("GET", "/nowhere"),
    ],
)
def test_a_foreign_host_is_refused_whatever_its_origin(client, method, path):
    # No token (the default loopback setup): a page of attacker.example whose
    # name now resolves to 127.0.0.1 sends its own Host, and a matching Origin.
    resp = client.open(path, method=method, json={"nodes": []}, headers=REBOUND)
    body = assert_error(resp, 400, "FLOWRUN_SERVER_HOSTS")
    assert "attacker.example" in body["error"]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("LOCALHOST:8000", True),
        ("127.0.0.1:1234", True),
        ("127.0.0.2", True),
        ("[::1]:8000", True),
        ("localhost.", True),
        ("flowrun.example.com", True),
        ("FlowRun.Example.com:8443", True),
        ("other.example:8443", True),
        ("other.example:80", False),
        ("other.example", False),
        ("192.0.2.10:8000", True),  # the bound address, any port
        ("192.0.2.11:8000", False),
        ("flowrun.example.com.attacker.example", False),
        ("::1", False),
        ("[::1", False),
        ("localhost:x", False),
        ("", False),
    ],
)
def test_hosts_the_server_answers_to(make_app, host, allowed):
    app = make_app(
        FLOWRUN_BIND="192.0.2.10",
        FLOWRUN_SERVER_HOSTS="flowrun.example.com, other.example:8443",
    )
    resp = app.test_client().get("/api/health", headers={"Host": host})
    assert resp.status_code == (200 if allowed else 400), host


def test_bound_to_every_interface_any_ip_address_is_answered(make_app):
    client = make_app(FLOWRUN_BIND="0.0.0.0").test_client()
    for host in ("192.0.2.10:8000", "[2001:db8::1]:8000", "10.1.2.3"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200
    assert_error(client.get("/api/health", headers={"Host": "a.example"}), 400)


def test_a_star_answers_every_host(make_app):
    client = make_app(FLOWRUN_SERVER_HOSTS="*").test_client()
    assert client.get("/api/health", headers={"Host": "a.example"}).status_code == 200


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("FLOWRUN_SERVER_HOSTS", "a.example:b"),
        ("FLOWRUN_TRUSTED_PROXIES", "proxy.example"),
    ],
)
def test_a_bad_address_setting_is_named(tmp_path, setting, value):
    with pytest.raises(ValueError, match=setting):
        create_app(
            {
                "FLOWRUN_DATA_DIR": str(tmp_path / "d"),
                "FLOWRUN_FLOWS_DIR": str(tmp_path / "f"),
                setting: value,
            }
        )


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"path": "/?token=jalapeño"},
        {"path": "/?token=%F0%9F%94%91"},
        {"path": "/api/executions", "headers": {"Authorization": "Bearer jalapeño"}},
        {"path": "/api/executions", "headers": {"Cookie": "flowrun_token=jalapeño"}},
        {"path": "/api/executions", "headers": {"Cookie": "flowrun_token=%FF%FE"}},
    ],
)
def test_a_non_ascii_credential_is_401_not_500(secured, request_kwargs):
    resp = secured.test_client().get(**request_kwargs)
    assert_error(resp, 401)


# -- behind a trusted proxy (FLOWRUN_TRUSTED_PROXIES) ------------------------------


PROXIED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "flowrun.example.com",
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Prefix": "/flowrun/",
}


def _config_of(resp) -> dict:
    import json
    import re
    from html import unescape

    found = re.search(r"data-config='([^']*)'", resp.get_data(as_text=True))
    return json.loads(unescape(found.group(1)))


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [("127.0.0.1", True), ("::ffff:127.0.0.1", True), ("203.0.113.9", False)],
)
def test_forwarded_headers_count_from_trusted_proxies_only(make_app, peer, trusted):
    app = make_app(FLOWRUN_SERVER_HOSTS="flowrun.example.com", FLOWRUN_TOKEN="t0k")
    client = app.test_client()
    env = {"REMOTE_ADDR": peer}
    page = client.get("/", headers=PROXIED, environ_base=env)
    login = client.get("/?token=t0k", headers=PROXIED, environ_base=env)
    post = client.post(
        "/api/validate",
        json={"nodes": []},
        headers={
            **PROXIED,
            "Origin": "https://flowrun.example.com",
            "Authorization": "Bearer t0k",
        },
        environ_base=env,
    )
    if trusted:
        assert _config_of(page) == {
            **_config_of(page),
            "api": "/flowrun/api",
            "demoUrl": "https://flowrun.example.com/flowrun/demo",
        }
        assert login.headers["Location"] == "/flowrun/"
        cookie = login.headers["Set-Cookie"]
        assert "Secure" in cookie and "Path=/flowrun/" in cookie
        assert post.status_code == 200, post.get_json()
    else:
        assert _config_of(page)["api"] == "/api"
        assert login.headers["Location"] == "/"
        assert "Secure" not in login.headers["Set-Cookie"]
        body = assert_error(post, 403, "Origin https://flowrun.example.com is not")
        assert "this server is http://localhost" in body["error"]


@pytest.mark.parametrize(
    ("header", "value", "seen"),
    [
        ("X-Forwarded-For", "203.0.113.7", {"peer": "203.0.113.7"}),
        ("X-Forwarded-Proto", "https", {"url": "https://localhost/test/seen"}),
        (
            "X-Forwarded-Host",
            "flowrun.example.com",
            {
                "host": "flowrun.example.com",
                "url": "http://flowrun.example.com/test/seen",
            },
        ),
        (
            "X-Forwarded-Prefix",
            "/flowrun/",
            {"url": "http://localhost/flowrun/test/seen"},
        ),
    ],
)
def test_each_forwarded_header_counts_on_its_own(make_app, header, value, seen):
    """A proxy may set any one of the headers without the others."""
    from flask import request

    app = make_app(FLOWRUN_SERVER_HOSTS="flowrun.example.com")

    @app.get("/test/seen")
    def what_was_seen():
        return {"peer": request.remote_addr, "url": request.url, "host": request.host}

    plain = app.test_client().get("/test/seen").get_json()
    assert plain == {
        "peer": "127.0.0.1",
        "url": "http://localhost/test/seen",
        "host": "localhost",
    }
    proxied = app.test_client().get("/test/seen", headers={header: value}).get_json()
    assert proxied == {**plain, **seen}


def test_the_hosts_answered_are_remembered_within_bounds(make_app):
    app = make_app(FLOWRUN_SERVER_HOSTS="flowrun.example.com")
    client = app.test_client()
    for i in range(1200):  # a client making up host names cannot grow memory
        resp = client.get("/api/health", headers={"Host": f"h{i}.attacker.example"})
        assert resp.status_code == 400
    remembered = app.extensions["flowrun.hosts"].allows.cache_info()
    assert remembered.currsize <= 512 and remembered.misses >= 1200
    for _ in range(2):
        assert (
            client.get(
                "/api/health", headers={"Host": "flowrun.example.com"}
            ).status_code
            == 200
        )
        assert_error(
            client.get("/api/health", headers={"Host": "h1.attacker.example"}), 400
        )


def test_the_proxys_host_and_the_forwarded_host_must_both_be_allowed(make_app):
    client = make_app(FLOWRUN_SERVER_HOSTS="flowrun.example.com").test_client()
    # A page on this machine reaching gunicorn directly (a trusted loopback peer)
    # cannot make its own Host allowed by forwarding an allowed one...
    resp = client.get(
        "/api/executions",
        headers={"Host": "attacker.example", "X-Forwarded-Host": "localhost"},
    )
    assert_error(resp, 400, "attacker.example")
    # ...nor can a proxy forward a host flowrun does not answer to.
    resp = client.get(
        "/api/executions",
        headers={"Host": "127.0.0.1:8000", "X-Forwarded-Host": "attacker.example"},
    )
    assert_error(resp, 400, "attacker.example")
    resp = client.get(
        "/api/executions",
        headers={"Host": "127.0.0.1:8000", "X-Forwarded-Host": "flowrun.example.com"},
    )
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("scheme", "origin", "allowed"),
    [
        ("http", "http://flowrun.example.com", True),
        ("http", "http://flowrun.example.com:80", True),
        ("http", "https://flowrun.example.com", False),
        ("https", "https://flowrun.example.com", True),
        ("https", "https://flowrun.example.com:443", True),
        ("https", "http://flowrun.example.com", False),
        ("https", "https://flowrun.example.com:8443", False),
    ],
)
def test_origin_is_compared_with_the_scheme_too(make_app, scheme, origin, allowed):
    client = make_app(FLOWRUN_SERVER_HOSTS="flowrun.example.com").test_client()
    resp = client.post(
        "/api/validate",
        json={"nodes": []},
        headers={
            "Host": "flowrun.example.com",
            "X-Forwarded-Proto": scheme,
            "Origin": origin,
        },
    )
    assert resp.status_code == (200 if allowed else 403), resp.get_json()


@pytest.mark.parametrize("dev", [False, True], ids=["gunicorn", "dev"])
def test_flowrun_serve_answers_to_the_address_it_listens_on(
    runner, tmp_path, monkeypatch, dev
):
    from flask import Flask

    from flowrun import create_app
    from flowrun.cli.main import cli

    served = []
    monkeypatch.setattr(Flask, "run", lambda app, **kw: served.append(app))
    # Without --dev, serve becomes gunicorn, whose worker builds the app from the
    # environment serve leaves it (flowrun.cli.serve.WSGI_APP): built so here.
    monkeypatch.setattr("os.execv", lambda path, argv: served.append(create_app()))
    for name in ("FLOWRUN_BIND", "PORT", "WEB_CONCURRENCY"):
        monkeypatch.setenv(name, "")  # serve sets them: restored after the test
    monkeypatch.setenv("FLOWRUN_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("FLOWRUN_FLOWS_DIR", str(tmp_path / "f"))
    monkeypatch.setenv("FLOWRUN_TOKEN", "t")
    args = ["serve", "--host", "192.0.2.10", "--port", "8123"]
    result = runner.invoke(cli, args + (["--dev"] if dev else []))
    assert result.exit_code == 0, result.output
    client = served[0].test_client()
    try:
        resp = client.get("/api/health", headers={"Host": "192.0.2.10:8123"})
        assert resp.status_code == 200
        resp = client.get("/api/health", headers={"Host": "a.example:8123"})
        assert_error(resp, 400)
    finally:
        served[0].extensions["flowrun"].close()
