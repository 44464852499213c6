"""flowrun behind a reverse proxy: the recipes of docs/deploy.md, as written, in
front of a real ``gunicorn -c gunicorn.conf.py app:app``.

Each recipe (``docs/deploy/*.conf``, ``docs/deploy/Caddyfile``) runs in Debian's
nginx (``/usr/sbin/nginx``) or Caddy (``/usr/bin/caddy``), as this user, with its
own settings, pid file, storage and logs in a temporary directory, on a free port;
only the recipe's upstream port and file paths change. The documented host names
(``flowrun.example.com``, ``www.example.com``) are what clients send; Chromium is
told they resolve to 127.0.0.1, so nothing leaves the machine.
"""

from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from html import unescape
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from .target import free_port
from .test_deploy import TOKEN, Gunicorn

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "docs" / "deploy"
NGINX = "/usr/sbin/nginx"
CADDY = "/usr/bin/caddy"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HOSTS = ("flowrun.example.com", "www.example.com")


def _require(tool: str | None, package: str) -> str:
    """The path of a system tool the proxy tests need; skip without it (fail in CI)."""
    if tool and os.path.exists(tool):
        return tool
    message = f"{package} is missing: .ci/run must apt-get install {package}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# recipe: (file in docs/deploy/, the host name clients use, path prefix, scheme)
RECIPE = {
    "root": ("nginx.conf", "flowrun.example.com", "", "http"),
    "prefix": ("nginx-prefix.conf", "www.example.com", "/flowrun", "http"),
    "tls": ("nginx-tls.conf", "flowrun.example.com", "", "https"),
    "caddy": ("Caddyfile", "flowrun.example.com", "", "https"),
}

# What the tests, not the recipes, decide: where each server keeps its files.
NGINX_MAIN = """\
daemon off;
user {user} {group};
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""
CADDY_MAIN = """\
{{
\tadmin off
\tdefault_bind 127.0.0.1
\thttps_port {port}
\tauto_https disable_redirects
\tskip_install_trust
\tstorage file_system {tmp}/storage
}}
import {tmp}/site.Caddyfile
"""


def _self_signed(folder: Path) -> None:
    """cert.pem and key.pem for the documented names, made now."""
    subprocess.run(
        [
            _require(shutil.which("openssl"), "openssl"),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=flowrun.example.com",
            "-addext",
            f"subjectAltName=DNS:{HOSTS[0]},DNS:{HOSTS[1]}",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )


class _HTTPSTo127(http.client.HTTPSConnection):
    """https to a name (its Host and SNI) served on 127.0.0.1."""

    def connect(self):
        sock = socket.create_connection(
            ("127.0.0.1", self.port), self.timeout, self.source_address
        )
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Proxy:
    """nginx or Caddy serving one recipe of docs/deploy/ in front of ``upstream``."""

    def __init__(self, tmp: Path, recipe: str, upstream: int):
        self.file, self.host, self.prefix, self.scheme = RECIPE[recipe]
        self.tmp = tmp
        self.port = free_port()
        site = (RECIPES / self.file).read_text("utf-8")
        changes = {
            "listen 80;": f"listen 127.0.0.1:{self.port};",
            "listen 443 ssl;": f"listen 127.0.0.1:{self.port} ssl;",
            "127.0.0.1:8000": f"127.0.0.1:{upstream}",
            "/etc/ssl/flowrun/": f"{tmp}/",
        }
        for old, new in changes.items():
            site = site.replace(old, new)
        assert f"127.0.0.1:{upstream}" in site, site
        if self.scheme == "https":
            _self_signed(tmp)
        if self.file == "Caddyfile":
            _require(CADDY, "caddy")
            (tmp / "site.Caddyfile").write_text(site)
            (tmp / "Caddyfile").write_text(CADDY_MAIN.format(tmp=tmp, port=self.port))
            env = dict(os.environ, HOME=str(tmp), XDG_DATA_HOME=str(tmp))
            env["XDG_CONFIG_HOME"] = str(tmp)
            command = [CADDY, "run", "--config", f"{tmp}/Caddyfile"]
            command += ["--adapter", "caddyfile"]
        else:
            _require(NGINX, "nginx")
            assert f"listen 127.0.0.1:{self.port}" in site, site
            (tmp / "site.conf").write_text(site)
            (tmp / "nginx.conf").write_text(
                NGINX_MAIN.format(
                    tmp=tmp,
                    user=pwd.getpwuid(os.getuid()).pw_name,
                    group=grp.getgrgid(os.getgid()).gr_name,
                )
            )
            env = None
            command = [NGINX, "-p", f"{tmp}/", "-c", f"{tmp}/nginx.conf"]
            command += ["-e", f"{tmp}/error.log"]
        with open(tmp / "server.log", "wb") as log:
            self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self.base = f"{self.scheme}://{self.host}:{self.port}{self.prefix}"
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, self.logs()
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, self.logs()
                time.sleep(0.05)

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return self.log("server.log") + self.log("error.log")

    def connect(self, source: str = "127.0.0.1", timeout: float = 30):
        """A connection to the proxy from ``source`` (any 127.x address)."""
        if self.scheme == "https":
            context = ssl.create_default_context(cafile=str(self.tmp / "cert.pem"))
            return _HTTPSTo127(
                self.host,
                self.port,
                timeout=timeout,
                context=context,
                source_address=(source, 0),
            )
        return http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=timeout, source_address=(source, 0)
        )

    def request(self, method, path, body=None, headers=None, source="127.0.0.1"):
        """``(status, response, body bytes)`` of one request to ``prefix + path``."""
        conn = self.connect(source)
        try:
            hdrs = {"Host": f"{self.host}:{self.port}"}
            if body is not None:
                hdrs["Content-Type"] = "application/json"
                body = json.dumps(body)
            hdrs.update(headers or {})
            conn.request(method, self.prefix + path, body, hdrs)
            resp = conn.getresponse()
            return resp.status, resp, resp.read()
        finally:
            conn.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Gate:
    """A target whose ``/hold/<key>`` answers only once the test releases ``key``
    (or after 30 s, so that nothing waits for ever); any other path answers at once."""

    def __init__(self):
        self.events: dict[str, threading.Event] = {}
        self.arrived: list[str] = []
        self.lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _event(self, key: str) -> threading.Event:
        with self.lock:
            return self.events.setdefault(key, threading.Event())

    def _app(self, environ, start_response):
        path = environ["PATH_INFO"]
        if path.startswith("/hold/"):
            key = path[len("/hold/") :]
            with self.lock:
                self.arrived.append(key)
            self._event(key).wait(30)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok": true}']

    def release(self, key: str) -> None:
        self._event(key).set()

    def seen(self, key: str) -> bool:
        with self.lock:
            return key in self.arrived

    def wait_for(self, key: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not self.seen(key):
            assert time.monotonic() < deadline, f"no request for {key}"
            time.sleep(0.01)

    def close(self) -> None:
        for event in list(self.events.values()):
            event.set()
        self._server.shutdown()


@pytest.fixture(scope="module")
def gate():
    server = Gate()
    yield server
    server.close()


@pytest.fixture(scope="module")
def flowrun(tmp_path_factory):
    """gunicorn as the recipes say: FLOWRUN_SERVER_HOSTS names the public hosts."""
    server = Gunicorn(
        tmp_path_factory.mktemp("flowrun"),
        workers=2,
        FLOWRUN_SERVER_HOSTS=",".join(HOSTS),
    )
    yield server
    server.close()


@pytest.fixture(scope="module", params=list(RECIPE))
def proxy(request, flowrun, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"proxy-{request.param}")
    server = Proxy(folder, request.param, flowrun.port)
    yield server
    server.close()


def _studio_config(page: bytes) -> dict:
    found = re.search(rb"data-config='([^']*)'", page)
    assert found, page[:500]
    return json.loads(unescape(found.group(1).decode()))


# -- the recipes, without a browser ------------------------------------------------


def test_each_recipe_serves_studio_and_the_api(proxy):
    status, resp, page = proxy.request("GET", "/")
    assert status == 200, page
    config = _studio_config(page)
    # Studio's links follow the prefix and the public scheme and host.
    assert config["api"] == f"{proxy.prefix}/api"
    assert config["demoUrl"] == f"{proxy.base}/demo"
    assert f'src="{proxy.prefix}/static/js/main.js'.encode() in page
    origin = f"{proxy.scheme}://{proxy.host}:{proxy.port}"
    status, _, body = proxy.request(
        "POST",
        "/api/validate",
        {"nodes": []},
        {"Origin": origin, "Authorization": f"Bearer {TOKEN}"},
    )
    assert status == 200, body  # not "403 Origin … is not allowed"
    status, _, body = proxy.request(
        "POST",
        "/api/validate",
        {"nodes": []},
        {"Origin": "https://evil.example", "Authorization": f"Bearer {TOKEN}"},
    )
    assert status == 403, body


def test_the_token_link_sets_a_cookie_for_the_public_site(proxy):
    status, resp, body = proxy.request("GET", f"/?token={TOKEN}")
    assert status == 302, body
    assert resp.getheader("Location") == f"{proxy.prefix}/"
    cookie = resp.getheader("Set-Cookie")
    assert f"Path={proxy.prefix}/" in cookie
    assert ("; Secure" in cookie) is (proxy.scheme == "https")


def test_the_prefix_recipe_sends_its_bare_path_to_the_slash(flowrun, tmp_path):
    nginx = Proxy(tmp_path, "prefix", flowrun.port)
    try:
        status, resp, _ = nginx.request("GET", "")
        assert status == 301
        assert resp.getheader("Location").endswith(f":{nginx.port}/flowrun/")
    finally:
        nginx.close()


def _stream(proxy, flow, source="127.0.0.1"):
    """POST /api/execute-stream through ``proxy``; the connection and its response."""
    conn = proxy.connect(source)
    conn.request(
        "POST",
        f"{proxy.prefix}/api/execute-stream",
        json.dumps({"config": flow}),
        {
            "Host": f"{proxy.host}:{proxy.port}",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {TOKEN}",
            "Accept-Encoding": "gzip, deflate, br",  # as browsers send
        },
    )
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    # Compressing a stream holds its events back until a block is full.
    assert resp.getheader("Content-Encoding") is None
    return conn, resp


def _events(resp):
    """Yield ``(name, data)`` of each SSE event as it arrives."""
    name = None
    while line := resp.readline():
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            yield name, json.loads(line[6:])
            name = None


def _held_flow(gate, run: str, *steps: str) -> dict:
    return {
        "name": f"proxy {run}",
        "nodes": [
            {"id": s, "name": s, "method": "GET", "url": f"{gate.url}/hold/{run}-{s}"}
            for s in steps
        ],
    }


def test_events_pass_through_unbuffered(proxy, gate):
    # Step "b" is held at the target until the test releases it: every event
    # before it must reach the client meanwhile, not when the response ends.
    run = f"unbuffered-{proxy.file}"
    gate.release(f"{run}-a")
    conn, resp = _stream(proxy, _held_flow(gate, run, "a", "b"))
    try:
        events = _events(resp)
        seen = []
        for name, data in events:
            seen.append((name, data.get("id")))
            if (name, data.get("id")) == ("step_start", "b"):
                break
        assert seen == [
            ("start", None),
            ("step_start", "a"),
            ("step", "a"),
            ("step_start", "b"),
        ]
        gate.wait_for(f"{run}-b")  # "b" is in flight, held: it cannot end yet
        gate.release(f"{run}-b")
        rest = [name for name, _ in events]
        assert rest == ["step", "end"]
    finally:
        gate.release(f"{run}-b")
        conn.close()


def test_a_client_that_leaves_stops_the_run_through_nginx(flowrun, gate, tmp_path):
    nginx = Proxy(tmp_path, "root", flowrun.port)
    run = "leaves"
    try:
        conn, resp = _stream(nginx, _held_flow(gate, run, "a", "b", "c"))
        execution = resp.getheader("X-Execution-Id")
        next(name for name, _ in _events(resp) if name == "step_start")
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        # nginx logs the request once it has closed its own connection to
        # flowrun, which flowrun notices at once.
        deadline = time.monotonic() + 20
        while "POST /api/execute-stream" not in nginx.log("access.log"):
            assert time.monotonic() < deadline, nginx.log("access.log")
            time.sleep(0.02)
        gate.release(f"{run}-a")  # the step in flight completes
        detail = flowrun.wait_status(execution, ("interrupted", "completed", "failed"))
        assert detail["status"] == "interrupted"
        assert [s["status"] for s in detail["steps"]] == [
            "completed",
            "not_run",
            "not_run",
        ]
        assert not gate.seen(f"{run}-b")
    finally:
        for step in "abc":
            gate.release(f"{run}-{step}")
        nginx.close()


SPOOFED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "www.example.com:1",
    "X-Forwarded-Prefix": "/spoofed",
}


def _access_line(server: Gunicorn, path: str) -> str:
    """gunicorn's access line for ``path`` (written just after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        log = server.log_path.read_text(errors="replace")
        lines = [line for line in log.splitlines() if f" {path} HTTP/1." in line]
        if lines:
            return lines[-1]
        assert time.monotonic() < deadline, log[-2000:]
        time.sleep(0.02)


def test_a_clients_own_forwarded_headers_do_not_pass_the_proxy(proxy, flowrun):
    # The client connects from 127.0.0.3; the proxy (127.0.0.1) is the trusted
    # peer, and must replace or remove every forwarded header the client sent.
    path = f"/?spoof={proxy.file}"
    status, _, page = proxy.request("GET", path, headers=SPOOFED, source="127.0.0.3")
    assert status == 200
    config = _studio_config(page)
    assert config["api"] == f"{proxy.prefix}/api"
    assert config["demoUrl"] == f"{proxy.base}/demo"
    line = _access_line(flowrun, path)
    assert line.startswith("127.0.0.3 "), line  # the proxy's X-Forwarded-For


@pytest.fixture(scope="module")
def behind_127_0_0_2(tmp_path_factory):
    """gunicorn trusting only a proxy at 127.0.0.2 (FLOWRUN_TRUSTED_PROXIES)."""
    server = Gunicorn(
        tmp_path_factory.mktemp("trusted"),
        workers=1,
        FLOWRUN_TRUSTED_PROXIES="127.0.0.2",
        FLOWRUN_SERVER_HOSTS=",".join(HOSTS),
    )
    yield server
    server.close()


@pytest.mark.parametrize(
    ("peer", "trusted"), [("127.0.0.1", False), ("127.0.0.2", True)]
)
def test_forwarded_headers_count_only_from_a_trusted_proxy(
    behind_127_0_0_2, peer, trusted
):
    server = behind_127_0_0_2

    def call(method, path, body=None, headers=()):
        conn = http.client.HTTPConnection(
            "127.0.0.1", server.port, timeout=30, source_address=(peer, 0)
        )
        try:
            hdrs = {**SPOOFED, "Authorization": f"Bearer {TOKEN}", **dict(headers)}
            if body is not None:
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body and json.dumps(body), hdrs)
            resp = conn.getresponse()
            return resp.status, resp, resp.read()
        finally:
            conn.close()

    _, _, page = call("GET", f"/?peer={peer}")
    config = _studio_config(page)
    line = _access_line(server, f"/?peer={peer}")
    _, resp, _ = call("GET", f"/?token={TOKEN}")
    cookie = resp.getheader("Set-Cookie")
    status, _, _ = call(
        "POST",
        "/api/validate",
        {"nodes": []},
        {"Origin": "https://www.example.com:1"},
    )
    if trusted:
        assert config["api"] == "/spoofed/api"
        assert config["demoUrl"] == "https://www.example.com:1/spoofed/demo"
        assert line.startswith("203.0.113.7 "), line
        assert "; Secure" in cookie
        assert status == 200
    else:
        assert config["api"] == "/api"
        assert config["demoUrl"] == f"http://127.0.0.1:{server.port}/demo"
        assert line.startswith("127.0.0.1 "), line
        assert "; Secure" not in cookie
        assert status == 403


# -- Studio in Chromium, through each recipe -------------------------------------


@pytest.fixture(scope="module")
def chromium():
    from .browser.conftest import CHROMIUM, CHROMIUM_ARGS

    sync_api = pytest.importorskip("playwright.sync_api")
    rules = ",".join(f"MAP {host} 127.0.0.1" for host in HOSTS)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"],
        )
        yield browser
        browser.close()


@pytest.mark.timeout(180)  # three runs, one of five 1.5 s steps, in a browser
def test_studio_through_each_recipe(proxy, chromium):
    from playwright.sync_api import expect

    context = chromium.new_context(
        viewport={"width": 1280, "height": 800}, ignore_https_errors=True
    )
    page = context.new_page()
    problems = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(f"{proxy.base}/?token={TOKEN}")
        assert page.url == f"{proxy.base}/"
        flows = page.get_by_role("list", name="Workspace flows")
        panel = page.get_by_role("region", name="Run", exact=True)

        def open_flow(title):
            item = flows.get_by_role("button", name=title)
            item.click()
            expect(item).to_have_attribute("aria-current", "true")
            expect(page.get_by_role("region", name="Flow settings")).to_be_visible()

        # A flow with a prompt, answered.
        open_flow("User input")
        page.get_by_role("button", name="Go with the Flow").click()
        prompt = page.get_by_role("dialog", name="Input needed")
        prompt.get_by_label("Username", exact=False).fill("grace")
        prompt.get_by_label("Password for", exact=False).fill("secret")
        page.keyboard.press("Enter")
        expect(panel.get_by_text("Flow completed")).to_be_visible()
        expect(panel.locator(".card.success")).to_have_count(2)
        page.get_by_role("button", name="Close run panel").click()

        # Five slow steps, interrupted once the first has completed.
        open_flow("Slow steps")
        page.get_by_role("button", name="Go with the Flow").click()
        expect(panel.locator(".card.success")).to_have_count(1, timeout=10_000)
        page.get_by_role("button", name="Interrupt the Flow").click()
        expect(panel.get_by_text("Flow interrupted")).to_be_visible(timeout=10_000)
        expect(panel.locator(".card.notrun").first).to_contain_text("Not Run")
        page.get_by_role("button", name="Close run panel").click()

        # History lists the interrupted run and reopens it.
        page.get_by_role("button", name="History").click()
        history = page.get_by_role("dialog", name="History")
        history.get_by_label("This flow only").check()
        item = history.get_by_role("button").filter(has_text="interrupted").first
        expect(item).to_contain_text("Slow steps")
        item.click()
        detail = history.get_by_role("region", name="History: Slow steps")
        expect(detail.locator(".card.notrun").first).to_be_visible()
    finally:
        context.close()
    assert problems == []
