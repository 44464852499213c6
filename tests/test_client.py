"""HTTP for steps, against the real target: bodies, headers, responses, errors."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from flowrun.engine.run import EngineSettings
from flowrun.errors import StepError
from flowrun.http.client import Client, decode, environment_changed
from flowrun.http.forms import encode_form, form_urlencode

from . import streams
from .target import end_of, run_events, steps_of


def flow(target, *nodes, **defaults):
    defaults.setdefault("baseUrl", target.url + "/demo")
    return {"name": "t", "defaults": defaults, "nodes": list(nodes)}


def node(id="n", method="POST", url="/echo", **extra):
    return {"id": id, "name": id.title(), "method": method, "url": url, **extra}


def one_step(doc, **opts):
    events = run_events(doc, **opts)
    [step] = steps_of(events)
    return step


def echoed(step):
    assert step["status"] == "completed", step["error"]
    return step["response"]["body"]


# -- request bodies -------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [{"a": 1, "b": [True, None], "c": "é"}, [1, {"x": "y"}], {}]
)
def test_json_body_gets_content_type(hits, body):
    got = echoed(one_step(flow(hits, node(body=body))))
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["json"] == body


@pytest.mark.parametrize("name", ["content-type", "CONTENT-TYPE", "Content-Type"])
def test_existing_content_type_any_casing_is_kept(hits, name):
    step = one_step(
        flow(hits, node(body={"a": 1}, headers={name: "application/vnd.x+json"}))
    )
    got = echoed(step)
    assert got["headers"]["Content-Type"] == "application/vnd.x+json"
    assert got["body"] == '{"a": 1}'
    assert [k.lower() for k in step["request"]["headers"]].count("content-type") == 1


def test_form_body_by_content_type_nested_and_arrays(hits):
    body = {"user": {"name": "ada", "age": 36}, "tags": ["a", "b"], "q": "x y&z=1"}
    got = echoed(
        one_step(
            flow(
                hits,
                node(
                    body=body,
                    headers={"content-type": "application/x-www-form-urlencoded"},
                ),
            )
        )
    )
    assert got["form"] == {
        "user[name]": ["ada"],
        "user[age]": ["36"],
        "tags[]": ["a", "b"],
        "q": ["x y&z=1"],
    }


def test_form_body_by_body_format(hits):
    step = one_step(flow(hits, node(body={"a": True}, bodyFormat="form-urlencoded")))
    got = echoed(step)
    assert got["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert got["form"] == {"a": ["true"]}
    assert step["request"]["body"] == "a=true"


def test_form_body_by_default_body_format(hits):
    doc = flow(hits, node(body={"a": "1"}), bodyFormat="form-urlencoded")
    assert echoed(one_step(doc))["form"] == {"a": ["1"]}


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "text/plain"}, "hello {{ .vars.who }}\n  as written"),
        ({"Content-Type": "application/json"}, '{"a":  1}'),
        ({}, "raw"),
    ],
)
def test_string_body_sent_as_written(hits, headers, body):
    doc = flow(hits, node(body=body, headers=headers))
    doc["variables"] = {"who": "ada"}
    got = echoed(one_step(doc))
    assert got["body"] == body.replace("{{ .vars.who }}", "ada")


def test_text_body_format_renders_object_as_json_text(hits):
    got = echoed(one_step(flow(hits, node(body={"a": [1]}, bodyFormat="text"))))
    assert got["body"] == '{"a":[1]}'


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_body_on_get_and_head_is_not_sent(hits, method):
    step = one_step(
        flow(
            hits,
            node(method=method, body={"a": 1}, validations=[{"httpStatusCode": 200}]),
        )
    )
    assert step["status"] == "completed", step["error"]
    assert step["request"]["body"] is None
    assert "Content-Type" not in step["request"]["headers"]
    if method == "GET":
        assert step["response"]["body"]["body"] == ""
        assert "Content-Type" not in step["response"]["body"]["headers"]


# -- headers and URLs -------------------------------------------------------------


def test_default_headers_merge_case_insensitively_node_wins(hits):
    doc = flow(
        hits,
        node(id="one", method="GET", headers={"x-env": "node"}),
        node(id="two", method="GET", skipDefaultHeaders=True),
        headers={"X-Env": "default", "X-Team": "qa"},
    )
    one, two = (echoed(s) for s in steps_of(run_events(doc)))
    assert one["headers"]["X-Env"] == "node"
    assert one["headers"]["X-Team"] == "qa"
    assert "X-Team" not in two["headers"] and "X-Env" not in two["headers"]


@pytest.mark.parametrize(
    ("base", "url", "path", "query"),
    [
        ("/demo/", "/items", "/demo/items", ""),
        ("/demo", "items", "/demo/items", ""),
        ("/demo//", "//items", "/demo/items", ""),
        ("/demo/echo", "?a=http://x", "/demo/echo", "a=http://x"),
        ("/demo", "/echo?next=http://example.com", "/demo/echo", ""),
    ],
)
def test_relative_url_joined_with_one_slash(hits, base, url, path, query):
    doc = flow(hits, node(method="GET", url=url), baseUrl=hits.url + base)
    step = one_step(doc)
    assert step["status"] == "completed", step["error"]
    assert hits.hits[-1]["path"] == path
    if query:
        assert hits.hits[-1]["query"] == query


def test_absolute_url_ignores_base(hits):
    doc = flow(hits, node(method="GET", url=hits.url + "/demo/items"))
    doc["defaults"]["baseUrl"] = "http://nothing.invalid/api"
    assert one_step(doc)["status"] == "completed"


def test_redirects_are_followed(hits):
    step = one_step(flow(hits, node(method="GET", url="/redirect?to=/demo/items")))
    assert step["response"]["status"] == 200
    assert step["response"]["body"]["count"] >= 3
    assert hits.paths() == ["/demo/redirect", "/demo/items"]


def test_cookies_carry_across_steps_but_not_runs(hits):
    doc = flow(
        hits,
        node(id="set", method="GET", url="/cookie/set?value=abc"),
        node(id="check", method="GET", url="/cookie/check"),
    )
    steps = steps_of(run_events(doc))
    assert steps[1]["response"]["body"] == {"session": "abc"}
    doc["nodes"] = doc["nodes"][1:]
    assert one_step(doc)["response"]["body"] == {"session": None}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/demo/echo?q=a b&r=1", {}),  # requoted
        ("/demo/echo?q=%41%2f&x=é", {}),  # kept escapes, a non-ASCII value
        ("/demo/échο/../echo", {}),
        ("/demo/echo#fragment", {"accept": "text/plain"}),  # a default's name
        ("/demo/echo", {"ACCEPT-ENCODING": "identity", "User-Agent": "me"}),
    ],
)
def test_urls_and_headers_reach_the_target_as_requests_sends_them(hits, path, headers):
    # The client prepares URLs (kept once worked out), credentials and default
    # headers its own way; what the target gets must be what requests sends.
    import requests

    client = Client()
    try:
        for _ in range(2):  # the second time from what the first one worked out
            ours = client.send("GET", hits.url + path, headers, None, 5).body
            theirs = requests.get(hits.url + path, headers=headers, timeout=5).json()
            for key in ("path", "args"):
                assert ours[key] == theirs[key]
            for name in ("Accept", "Accept-Encoding", "User-Agent", "Authorization"):
                assert ours["headers"].get(name) == theirs["headers"].get(name)
    finally:
        client.close()


def test_credentials_in_the_url_are_sent_as_basic_auth(hits):
    client = Client()
    try:
        url = hits.url.replace("http://", "http://ada:s%40cret@") + "/demo/echo"
        got = client.send("GET", url, {}, None, 5).body
        assert got["headers"]["Authorization"] == "Basic YWRhOnNAY3JldA=="
        plain = client.send("GET", hits.url + "/demo/echo", {}, None, 5).body
        assert "Authorization" not in plain["headers"]
    finally:
        client.close()


# -- responses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [1, 2]}', {"a": [1, 2]}),
        ("[1]", [1]),
        ("42", 42),
        ("true", True),
        ("plain words", "plain words"),
        ("{broken", "{broken"),
        ("-Infinity", "-Infinity"),
        ("NaN", "NaN"),
        ("", ""),
    ],
)
def test_json_decoded_whatever_content_type(hits, text, expected):
    doc = flow(hits, node(method="GET", url="/text", params=None))
    doc["nodes"][0]["url"] = "/text?body=" + __import__("urllib.parse").parse.quote(
        text
    )
    del doc["nodes"][0]["params"]
    step = one_step(doc)
    assert step["response"]["body"] == expected
    assert step["response"]["headers"]["Content-Type"].startswith("text/plain")


def test_decode_helper_rejects_non_json_constants():
    assert decode("-Infinity") == "-Infinity"
    assert decode("[NaN]") == "[NaN]"
    assert decode(' {"a":1}') == {"a": 1}


def test_big_body_truncated_but_validated_whole(hits):
    doc = flow(
        hits,
        node(
            method="GET",
            url="/big?bytes=5000",
            validations=[{"jsonpath": ". | length", "equals": 5000}],
        ),
    )
    events = run_events(doc, settings=EngineSettings(max_body_bytes=100))
    [step] = steps_of(events)
    assert step["status"] == "completed", step["error"]
    resp = step["response"]
    assert resp["truncated"] is True and resp["size"] == 5000
    assert resp["body"] == "x" * 100


def test_small_body_not_truncated(hits):
    step = one_step(flow(hits, node(method="GET", url="/big?bytes=10")))
    assert step["response"]["truncated"] is False
    assert step["response"]["size"] == 10 and step["response"]["body"] == "x" * 10


def test_validate_limit_cuts_what_checks_see(hits):
    doc = flow(
        hits,
        node(
            method="GET",
            url="/big?bytes=5000",
            validations=[{"jsonpath": ". | length", "equals": 1000}],
        ),
    )
    settings = EngineSettings(max_body_bytes=100, max_validate_bytes=1000)
    [step] = steps_of(run_events(doc, settings=settings))
    assert step["status"] == "completed", step["error"]
    assert step["response"]["size"] == 5000 and step["response"]["truncated"]


# -- errors -----------------------------------------------------------------------


def error_of(hits, url, **extra):
    doc = flow(hits, node(method="GET", url=url, **extra))
    events = run_events(doc)
    [step] = steps_of(events)
    assert step["status"] == "failed"
    assert step["response"] is None
    assert (
        "error",
        {"executionId": step["executionId"], "message": step["error"], "step": 1},
    ) in events
    assert end_of(events)["success"] is False
    return step["error"]


def test_timeout_message(hits):
    started = time.perf_counter()
    assert error_of(hits, "/slow?ms=2000", timeout=0.3) == "Request timeout after 0.3s"
    assert time.perf_counter() - started < 1.5


def test_timeout_while_reading_body(hits):
    assert error_of(hits, "/drip?ms=2000", timeout=0.3) == "Request timeout after 0.3s"


def test_default_timeout_from_defaults(hits):
    doc = flow(hits, node(method="GET", url="/slow?ms=2000"), timeout=0.3)
    assert one_step(doc)["error"] == "Request timeout after 0.3s"


def test_connection_refused_message(hits):
    message = error_of(hits, "http://127.0.0.1:9/x")
    assert message == "Network error: connection refused (127.0.0.1:9)"


def test_dns_failure_message(hits):
    message = error_of(hits, "http://no-such-host.invalid/x")
    assert message == (
        "Network error: DNS lookup failed for host 'no-such-host.invalid'"
    )


def test_tls_failure_message(hits):
    message = error_of(hits, f"https://127.0.0.1:{hits.port}/demo/items")
    assert message.startswith(
        f"Network error: TLS handshake with 127.0.0.1:{hits.port}"
    )
    assert "Traceback" not in message and len(message) < 300


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://", "Invalid URL 'http://'"),
        ("ftp://127.0.0.1/x", "Invalid URL 'ftp://127.0.0.1/x'"),
        ("http://exa mple.com:99999/", "Invalid URL"),
    ],
)
def test_invalid_url_message(hits, url, words):
    assert error_of(hits, url).startswith(words)


def test_relative_url_without_base_is_invalid(hits):
    doc = {"nodes": [node(method="GET", url="/items")]}
    step = one_step(doc)
    assert step["error"].startswith("Invalid URL '/items'")


# -- retry and delay -------------------------------------------------------------


def test_retry_succeeds_on_a_later_attempt(hits):
    key = uuid.uuid4().hex
    doc = flow(
        hits,
        node(
            method="GET",
            url=f"/flaky?key={key}&fail=2",
            retry={"count": 3, "intervalMs": 20},
        ),
    )
    step = one_step(doc)
    assert step["status"] == "completed", step["error"]
    assert step["attempts"] == 3
    assert step["response"]["body"] == {"calls": 3, "ok": True}
    assert hits.paths() == ["/demo/flaky"] * 3
    at = [h["at"] for h in hits.hits]
    assert at[1] - at[0] >= 0.015


def test_retry_gives_up_after_count(hits):
    key = uuid.uuid4().hex
    doc = flow(
        hits,
        node(method="GET", url=f"/flaky?key={key}&fail=5", retry={"count": 1}),
    )
    step = one_step(doc)
    assert step["status"] == "failed" and step["attempts"] == 2
    assert step["error"] == "Validation failed: status 503, expected 200"


def test_retry_on_transport_error_and_default_retry(hits):
    doc = flow(hits, node(method="GET", url="http://127.0.0.1:9/"), retry={"count": 2})
    step = one_step(doc)
    assert step["attempts"] == 3 and step["error"].startswith("Network error")


def test_delay_before_sending(hits):
    doc = flow(
        hits,
        node(id="a", method="GET", url="/items"),
        node(id="b", method="GET", url="/items", delayMs=250),
    )
    steps = steps_of(run_events(doc))
    assert [s["status"] for s in steps] == ["completed", "completed"]
    first, second = hits.hits
    assert second["at"] - first["at"] >= 0.25


# -- helpers ------------------------------------------------------------------------


def test_form_encoding_helpers():
    assert encode_form({"a": {"b": [1, {"c": None}]}, "d": False}) == [
        ("a[b][]", "1"),
        ("a[b][][c]", ""),
        ("d", "false"),
    ]
    assert form_urlencode({"k y": "a+b/é"}) == "k%20y=a%2Bb%2F%C3%A9"


def test_client_reply_fields(target):
    client = Client(max_body_bytes=1000)
    try:
        reply = client.send("GET", target.url + "/demo/items", {}, None, 5)
    finally:
        client.close()
    assert reply.status == 200 and reply.status_text == "OK"
    assert reply.lower_headers["content-type"] == "application/json"
    assert reply.body == reply.shown_body and not reply.truncated
    assert reply.size == int(reply.headers["Content-Length"])
    assert reply.elapsed_ms > 0


# -- network guard ------------------------------------------------------------------


def test_blocked_network_refused_before_sending(hits):
    from flowrun.http.guard import NetworkGuard

    guard = NetworkGuard(blocked=["127.0.0.0/8"])
    doc = flow(hits, node(method="GET", url="/items"))
    [step] = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert step["status"] == "failed"
    assert step["error"] == (
        "Blocked: 127.0.0.1 resolves to 127.0.0.1, which is in a blocked network "
        "(127.0.0.0/8, FLOWRUN_BLOCKED_NETWORKS)"
    )
    assert hits.paths() == []


def test_redirect_to_a_host_not_allowed_is_refused(hits):
    from flowrun.http.guard import NetworkGuard

    guard = NetworkGuard(allowed_hosts=["127.0.0.1"])
    to = f"http://localhost:{hits.port}/demo/items"
    doc = flow(hits, node(method="GET", url="/redirect?to=" + to))
    [step] = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert step["error"] == "Blocked: host 'localhost' is not in FLOWRUN_ALLOWED_HOSTS"
    assert hits.paths() == ["/demo/redirect"]


class _Resolver:
    """socket.getaddrinfo for made-up names: each lookup of a name gives the next
    address of its list (a name that answers differently the second time is DNS
    rebinding); other names resolve as usual."""

    def __init__(self, monkeypatch, answers: dict):
        import socket

        self.answers = {k: list(v) for k, v in answers.items()}
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if host not in self.answers:
                return real(host, port, *args, **kwargs)
            self.lookups.append(host)
            queue = self.answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_is_looked_up_once_and_connected_to_as_checked(hits, monkeypatch):
    from flowrun.http.guard import NetworkGuard

    # DNS rebinding: a name that answers an allowed address to a check and the
    # metadata address to the connection. There is one lookup, when connecting,
    # and the connection goes to the address it checked.
    resolver = _Resolver(monkeypatch, {"rebind.test": ["127.0.0.1", "169.254.169.254"]})
    guard = NetworkGuard(blocked=["169.254.0.0/16"])
    doc = flow(hits, node(method="GET", url="/items"))
    doc["defaults"]["baseUrl"] = f"http://rebind.test:{hits.port}/demo"
    [step] = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert step["status"] == "completed"
    assert resolver.lookups == ["rebind.test"]
    assert hits.paths() == ["/demo/items"]


def test_each_new_connection_checks_its_own_lookup(hits, monkeypatch):
    from flowrun.http.guard import NetworkGuard

    from .target import free_port

    # The second step needs a new connection (another port): the name now
    # answers the metadata address, and that connection is refused.
    resolver = _Resolver(monkeypatch, {"rebind.test": ["127.0.0.1", "169.254.169.254"]})
    guard = NetworkGuard(blocked=["169.254.0.0/16"])
    other = f"http://rebind.test:{free_port()}/x"
    doc = flow(hits, node(method="GET", url="/items"), node("b", "GET", other))
    doc["defaults"]["baseUrl"] = f"http://rebind.test:{hits.port}/demo"
    steps = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert [s["status"] for s in steps] == ["completed", "failed"]
    assert steps[1]["error"] == (
        "Blocked: rebind.test resolves to 169.254.169.254, which is in a blocked "
        "network (169.254.0.0/16, FLOWRUN_BLOCKED_NETWORKS)"
    )
    assert resolver.lookups == ["rebind.test", "rebind.test"]
    assert hits.paths() == ["/demo/items"]


def test_through_a_proxy_the_target_itself_is_checked(hits, monkeypatch):
    from flowrun.http.guard import NetworkGuard

    # Through a proxy the connection goes to the proxy (allowed), so the target
    # is looked up and checked before anything is sent to the proxy.
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{hits.port}")
    environment_changed()
    resolver = _Resolver(monkeypatch, {"meta.test": ["169.254.169.254"]})
    guard = NetworkGuard(blocked=["169.254.0.0/16"])
    doc = flow(hits, node(method="GET", url="http://meta.test/latest/meta-data"))
    [step] = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert step["error"] == (
        "Blocked: meta.test resolves to 169.254.169.254, which is in a blocked "
        "network (169.254.0.0/16, FLOWRUN_BLOCKED_NETWORKS)"
    )
    assert resolver.lookups == ["meta.test"]
    assert hits.paths() == []  # the proxy was never asked


def test_a_guarded_name_connects_to_its_checked_address(hits, monkeypatch):
    from flowrun.http.guard import NetworkGuard

    _Resolver(monkeypatch, {"api.test": ["127.0.0.1"]})
    guard = NetworkGuard(blocked=["169.254.0.0/16"])
    doc = flow(hits, node(method="GET", url="/echo"), node("again", "GET", "/echo"))
    doc["defaults"]["baseUrl"] = f"http://api.test:{hits.port}/demo"
    steps = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert [s["status"] for s in steps] == ["completed", "completed"]
    # the name, not the address, is what the server is told
    assert steps[0]["response"]["body"]["headers"]["Host"] == f"api.test:{hits.port}"
    assert hits.paths() == ["/demo/echo", "/demo/echo"]


def test_a_guarded_name_that_does_not_resolve_says_so(hits):
    from flowrun.http.guard import NetworkGuard

    guard = NetworkGuard(blocked=["169.254.0.0/16"])
    doc = flow(hits, node(method="GET", url="http://no-such-host.invalid/x"))
    [step] = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert step["error"] == (
        "Network error: DNS lookup failed for host 'no-such-host.invalid'"
    )


def test_a_guarded_connection_refused_says_so(hits):
    from flowrun.http.guard import NetworkGuard

    from .target import free_port

    port = free_port()
    guard = NetworkGuard(blocked=["169.254.0.0/16"])
    doc = flow(hits, node(method="GET", url=f"http://127.0.0.1:{port}/x"))
    [step] = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert step["error"] == f"Network error: connection refused (127.0.0.1:{port})"


def test_header_values_beyond_latin1_are_sent_as_utf8(hits):
    got = echoed(one_step(flow(hits, node(headers={"X-Name": "Zoë ☃"}))))
    # the WSGI server decodes header bytes as latin-1
    assert got["headers"]["X-Name"].encode("latin-1").decode() == "Zoë ☃"


def test_invalid_header_value_message(hits):
    step = one_step(flow(hits, node(headers={"X-Name": "a\nb"})))
    assert step["error"].startswith("Invalid header: ")
    assert hits.paths() == []


def test_cut_at_validate_limit_is_marked_truncated(hits):
    doc = flow(hits, node(method="GET", url="/big?bytes=5000"))
    settings = EngineSettings(max_body_bytes=4000, max_validate_bytes=1000)
    [step] = steps_of(run_events(doc, settings=settings))
    resp = step["response"]
    assert (resp["truncated"], resp["size"], len(resp["body"])) == (True, 5000, 1000)


def test_unknown_charset_falls_back_to_utf8(target):
    client = Client()
    try:
        reply = client.send(
            "GET", target.url + "/demo/text?body=h%C3%A9&charset=nope", {}, None, 5
        )
    finally:
        client.close()
    assert reply.body == "hé"


def test_response_too_deep_to_parse_is_kept_as_text():
    from flowrun.http.client import decode

    text = "[" * 5000 + "]" * 5000
    assert decode(text) == text


def test_dns_failure_after_a_redirect_names_the_redirect_target(client, hits):
    flow = streams.make_flow(
        hits, streams.node("r", "/redirect?to=http://no-such-host.invalid/x", timeout=5)
    )
    _, events = streams.run_events(client, flow)
    step = next(data for name, data in events if name == "step")
    assert step["status"] == "failed"
    assert "no-such-host.invalid" in step["error"], step["error"]


# -- through a proxy ----------------------------------------------------------------


class _ForwardProxy:
    """A forward HTTP proxy on 127.0.0.1 that records each request it is asked for."""

    def __init__(self):
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        asked = self.asked = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                asked.append(self.path)
                parts = urlsplit(self.path)
                upstream = http.client.HTTPConnection(parts.netloc, timeout=5)
                headers = {k: v for k, v in self.headers.items()}
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                upstream.request("GET", path, headers=headers)
                answer = upstream.getresponse()
                body = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Via", "1.1 test-proxy")
                self.end_headers()
                self.wfile.write(body)
                upstream.close()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(monkeypatch):
    """A real forward proxy, named by HTTP_PROXY (and no other proxy setting)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    server = _ForwardProxy()
    monkeypatch.setenv("HTTP_PROXY", server.url)
    environment_changed()
    yield server
    server.close()
    environment_changed()


def test_through_a_proxy_a_checked_target_is_reached(hits, proxy):
    from flowrun.http.guard import NetworkGuard

    guard = NetworkGuard(blocked=["169.254.0.0/16"])
    doc = flow(hits, node(method="GET", url="/items"))
    [step] = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert step["status"] == "completed", step["error"]
    assert step["response"]["headers"]["Via"] == "1.1 test-proxy"
    assert proxy.asked == [f"{hits.url}/demo/items"]
    assert hits.paths() == ["/demo/items"]


def test_through_a_proxy_a_name_that_does_not_resolve_is_refused(hits, proxy):
    from flowrun.http.guard import NetworkGuard

    # The proxy would look the name up itself, where the guard cannot check it.
    guard = NetworkGuard(blocked=["169.254.0.0/16"])
    doc = flow(hits, node(method="GET", url="http://no-such-host.invalid/latest"))
    [step] = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert step["error"] == (
        "Blocked: host 'no-such-host.invalid' does not resolve here, so it cannot be "
        "checked against FLOWRUN_BLOCKED_NETWORKS; requests through a proxy go only "
        "to checked hosts"
    )
    assert proxy.asked == []


def test_through_a_proxy_a_redirect_to_a_blocked_name_is_refused(
    hits, proxy, monkeypatch
):
    from flowrun.http.guard import NetworkGuard

    _Resolver(monkeypatch, {"meta.test": ["169.254.169.254"]})
    guard = NetworkGuard(blocked=["169.254.0.0/16"])
    doc = flow(hits, node(method="GET", url="/redirect?to=http://meta.test/latest"))
    [step] = steps_of(run_events(doc, settings=EngineSettings(guard=guard)))
    assert step["error"] == (
        "Blocked: meta.test resolves to 169.254.169.254, which is in a blocked "
        "network (169.254.0.0/16, FLOWRUN_BLOCKED_NETWORKS)"
    )
    assert proxy.asked == [f"{hits.url}/demo/redirect?to=http://meta.test/latest"]


# -- request size -------------------------------------------------------------------


def test_a_request_over_the_size_limit_is_refused_before_sending(hits):
    settings = EngineSettings(max_request_bytes=2000)
    doc = flow(hits, node(body="x" * 1500), node("big", body="x" * 2000))
    steps = steps_of(run_events(doc, settings=settings))
    assert steps[0]["status"] == "completed", steps[0]["error"]
    size = len("POST") + len(f"{hits.url}/demo/echo") + 2000  # no headers given
    assert steps[1]["error"] == (
        f"Request too large: {size} bytes (URL, headers and body) is over "
        "FLOWRUN_MAX_REQUEST_BYTES (2000)"
    )
    assert hits.paths() == ["/demo/echo"]


def test_the_request_size_limit_is_a_setting():
    from flowrun.settings import load

    assert EngineSettings.from_settings(load(environ={})).max_request_bytes == (
        10_485_760
    )
    values = load(environ={"FLOWRUN_MAX_REQUEST_BYTES": "123"})
    assert EngineSettings.from_settings(values).max_request_bytes == 123


# -- TLS verification ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_target(tmp_path_factory):
    """An HTTPS server on 127.0.0.1 with a certificate of its own; ``(url, cert)``."""
    import os
    import shutil
    import ssl
    import subprocess
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    if shutil.which("openssl") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("openssl is not installed (.ci/run installs it)")
        pytest.skip("openssl is not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"secure": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}/", str(cert)
    server.shutdown()
    server.server_close()


def _tls_outcome(url, verify, pinned=True):
    from flowrun.http.guard import NetworkGuard

    guard = NetworkGuard(blocked=["169.254.0.0/16"]) if pinned else None
    client = Client(verify=verify, guard=guard)
    try:
        return client.send("GET", url, {}, None, 5).body
    except StepError as exc:
        return str(exc)
    finally:
        client.close()


@pytest.mark.parametrize("pinned", [True, False])
def test_verify_with_a_ca_bundle_path(tls_target, pinned):
    url, cert = tls_target
    assert _tls_outcome(url, cert, pinned) == {"secure": True}
    assert "certificate verify failed" in _tls_outcome(url, True, pinned)
    assert _tls_outcome(url, False, pinned) == {"secure": True}
    assert _tls_outcome(url, "/no/such/bundle.pem", pinned) == (
        "Network error: Could not find a suitable TLS CA certificate bundle, "
        "invalid path: /no/such/bundle.pem"
    )


def test_verify_path_from_the_environment(tls_target, monkeypatch):
    url, cert = tls_target
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    assert _tls_outcome(url, True) == {"secure": True}
