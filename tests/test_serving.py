"""What flowrun changes in gunicorn (flowrun/web/serving.py), against gunicorn's own."""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gunicorn import glogging
from gunicorn.config import Config
from gunicorn.workers import ggevent

from flowrun.web import serving
from flowrun.web.serving import AccessLogger, redact

from .modules import loaded_after

ROOT = Path(__file__).resolve().parent.parent


class _Response:
    status = "201 CREATED"
    headers = [("Content-Type", "application/json"), ("X-Flowrun-Worker", "7")]
    sent = 42


class _Request:
    headers = [("HOST", "127.0.0.1:8000"), ("USER-AGENT", 'curl "quoted"')]


ENVIRON = {
    "REQUEST_METHOD": "POST",
    "RAW_URI": "/api/execute-stream?x=1",
    "PATH_INFO": "/api/execute-stream",
    "QUERY_STRING": "x=1",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "127.0.0.1:8000",
    "HTTP_USER_AGENT": 'curl "quoted"',
    "HTTP_REFERER": "http://127.0.0.1:8000/",
}

EVERY_ATOM = (
    "%(h)s %(l)s %(u)s %(t)s %(r)s %(s)s %(m)s %(U)s %(q)s %(H)s %(b)s %(B)s "
    "%(f)s %(a)s %(T)s %(D)s %(M)s %(L)s %(p)s %(nope)s"
)


def _line(logger_class, fmt: str, environ=ENVIRON, req=_Request, resp=_Response):
    cfg = Config()
    cfg.set("access_log_format", fmt)
    logger = logger_class(cfg)
    logger.now = lambda: "[26/Nov/2026:00:00:00 +0000]"
    took = datetime.timedelta(seconds=1, microseconds=2345)
    atoms = logger.atoms(resp(), req(), environ, took)
    return fmt % logger.atoms_wrapper_class(atoms)


@pytest.mark.parametrize(
    "fmt",
    [
        Config().access_log_format,  # the default, flowrun's
        EVERY_ATOM,
        '%(h)s "%({user-agent}i)s" %({content-type}o)s %({remote_addr}e)s',
    ],
)
def test_access_lines_are_gunicorns(fmt):
    ours = _line(AccessLogger, fmt)
    assert ours == _line(glogging.Logger, fmt)
    assert ours.startswith("127.0.0.1 ")


def test_the_default_line_escapes_quotes():
    line = _line(AccessLogger, Config().access_log_format)
    assert line.startswith('127.0.0.1 - - [26/Nov/2026:00:00:00 +0000] "POST ')
    assert line.endswith('201 42 "http://127.0.0.1:8000/" "curl \\"quoted\\""')


SECRET = "s3cret-token"
COOKIE = "c00kie-value"


class _SecretRequest:
    headers = [
        ("HOST", "127.0.0.1:8000"),
        ("AUTHORIZATION", f"Bearer {SECRET}"),
        ("COOKIE", f"flowrun_token={COOKIE}"),
        ("REFERER", f"http://127.0.0.1:8000/?token={SECRET}"),
    ]


class _SecretResponse(_Response):
    headers = [("Set-Cookie", f"flowrun_token={COOKIE}; HttpOnly"), ("Location", "/")]


SECRET_ENVIRON = dict(
    ENVIRON,
    RAW_URI=f"/?a=1&token={SECRET}&b=2",
    QUERY_STRING=f"a=1&token={SECRET}&b=2",
    HTTP_AUTHORIZATION=f"Bearer {SECRET}",
    HTTP_COOKIE=f"flowrun_token={COOKIE}",
    HTTP_REFERER=f"http://127.0.0.1:8000/?token={SECRET}",
)


@pytest.mark.parametrize(
    "fmt",
    [
        Config().access_log_format,
        EVERY_ATOM,
        "%({authorization}i)s %({cookie}i)s %({referer}i)s %({set-cookie}o)s "
        "%({http_authorization}e)s %({http_cookie}e)s %({query_string}e)s "
        "%({raw_uri}e)s %({http_referer}e)s",
    ],
)
def test_access_lines_never_carry_a_token(fmt):
    line = _line(AccessLogger, fmt, SECRET_ENVIRON, _SecretRequest, _SecretResponse)
    assert SECRET not in line and COOKIE not in line, line
    assert SECRET in _line(  # gunicorn's own line would carry it
        glogging.Logger, fmt, SECRET_ENVIRON, _SecretRequest, _SecretResponse
    )
    if "%(r)s" in fmt:
        assert "/?a=1&token=[redacted]&b=2 HTTP/1.1" in line


def test_error_lines_never_carry_a_token(tmp_path):
    # gunicorn logs a request line it cannot parse; flowrun logs through the
    # same handlers.
    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "error.log"))
    logger = AccessLogger(cfg)
    flowrun_log = logging.getLogger("test-serving-errors")
    flowrun_log.handlers = list(logger.error_log.handlers)
    try:
        logger.warning(
            "Invalid request from ip=%s: %s", "127.0.0.1", f"GET /?token={SECRET}"
        )
        flowrun_log.error("opened /?a=1&token=%s", SECRET)
    finally:
        flowrun_log.handlers = []
        for handler in list(logger.error_log.handlers):
            logger.error_log.removeHandler(handler)
            handler.close()
    text = (tmp_path / "error.log").read_text()
    assert SECRET not in text
    assert "ip=127.0.0.1: GET /?token=[redacted]" in text
    assert "opened /?a=1&token=[redacted]" in text


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("GET /?token=abc HTTP/1.1", "GET /?token=[redacted] HTTP/1.1"),
        ("token=abc", "token=[redacted]"),
        ("x=1&token=abc&y=2", "x=1&token=[redacted]&y=2"),
        ("/?%74oken=abc", "/?%74oken=[redacted]"),  # the app decodes names too
        ("/?tok%65n=a&token=b", "/?tok%65n=[redacted]&token=[redacted]"),
        ("http://h/?token=abc#frag", "http://h/?token=[redacted]#frag"),
        ("/?tokens=abc&my_token=d", "/?tokens=abc&my_token=d"),
        ("/path=token=x", "/path=token=x"),
        ("-", "-"),
    ],
)
def test_redact(text, redacted):
    assert redact(text) == redacted


# -- the worker's hooks into gunicorn --------------------------------------------


def test_this_gunicorn_has_the_hook_the_worker_uses():
    # Fails when a gunicorn outside the range pinned in pyproject.toml changes
    # what the worker relies on: widen the range only once this passes.
    assert serving.batch_accept_hook_present()


def test_batch_accept_keeps_100_whatever_gunicorn_sets():
    server = serving.BatchAcceptServer(("127.0.0.1", 0), handle=lambda *a: None)
    try:
        server.max_accept = 1  # what gunicorn's worker does with several workers
        assert server.max_accept == 100
    finally:
        server.close()


def test_the_worker_accepts_as_gunicorn_does_when_the_hook_is_gone(monkeypatch, caplog):
    stock = ggevent.StreamServer
    monkeypatch.setattr(ggevent, "StreamServer", stock)  # restored after the test
    log = logging.getLogger("test-serving")
    with caplog.at_level(logging.WARNING, logger="test-serving"):
        serving.install(log)
    assert ggevent.StreamServer is serving.BatchAcceptServer
    assert caplog.text == ""

    monkeypatch.setattr(ggevent, "StreamServer", stock)
    monkeypatch.setattr(ggevent.GeventWorker, "run", lambda self: None)
    with caplog.at_level(logging.WARNING, logger="test-serving"):
        serving.install(log)
    assert ggevent.StreamServer is stock
    assert "lacks the hook for batch accept" in caplog.text


def test_gunicorns_master_does_not_import_the_engine():
    # gunicorn's master process reads gunicorn.conf.py (which imports
    # flowrun.settings and flowrun.web.serving) before forking; requests/urllib3
    # imported there, before a gevent worker patches the standard library, break
    # HTTPS.
    code = "import runpy; runpy.run_path('gunicorn.conf.py')"
    engine = ("requests", "urllib3", "flowrun.engine.run")
    assert loaded_after(code, *engine, cwd=ROOT) == []


def test_the_package_never_patches_the_standard_library_itself():
    # The gevent worker does, before it imports the app (gunicorn.conf.py).
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "flowrun").rglob("*.py")
        if "patch_all(" in path.read_text("utf-8")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "setting, recorded", [(None, False), ("1", True)], ids=["default", "asked for"]
)
def test_the_worker_spawns_greenlets_without_their_stacks(setting, recorded):
    # Each greenlet's spawning stack costs ~25,000 instructions, two per run.
    script = textwrap.dedent(
        """
        import logging, os
        from gunicorn.workers import ggevent
        from flowrun.web import serving
        import gevent

        # Not gunicorn's accept loop, nor its hook: only what the worker sets up.
        ggevent.GeventWorker.run = lambda self: None
        serving.install = lambda log: None
        worker = serving.GeventWorker.__new__(serving.GeventWorker)
        worker.log = logging.getLogger("test")
        worker.run()
        print(gevent.Greenlet(print).spawning_stack is not None)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "GEVENT_TRACK_GREENLET_TREE"}
    if setting is not None:
        env["GEVENT_TRACK_GREENLET_TREE"] = setting
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(recorded)
