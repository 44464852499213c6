"""What flowrun changes in gunicorn's worker (flowrun/serving.py) against gunicorn."""

from __future__ import annotations

import datetime

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from flowrun.web.serving import AccessLogger


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
    "HTTP_AUTHORIZATION": "Basic YWRhOnNlY3JldA==",  # ada:secret
}


def _line(logger_class, fmt: str) -> str:
    cfg = Config()
    cfg.set("access_log_format", fmt)
    logger = logger_class(cfg)
    logger.now = lambda: "[26/Nov/2026:00:00:00 +0000]"
    took = datetime.timedelta(seconds=1, microseconds=2345)
    atoms = logger.atoms(_Response(), _Request(), ENVIRON, took)
    return fmt % logger.atoms_wrapper_class(atoms)


@pytest.mark.parametrize(
    "fmt",
    [
        Config().access_log_format,  # the default, flowrun's
        "%(h)s %(l)s %(u)s %(t)s %(r)s %(s)s %(m)s %(U)s %(q)s %(H)s %(b)s %(B)s "
        "%(f)s %(a)s %(T)s %(D)s %(M)s %(L)s %(p)s %(nope)s",
        '%(h)s "%({user-agent}i)s" %({content-type}o)s %({remote_addr}e)s',
    ],
)
def test_access_lines_are_gunicorns(fmt):
    ours = _line(AccessLogger, fmt)
    assert ours == _line(glogging.Logger, fmt)
    assert ours.startswith("127.0.0.1 ")


def test_the_default_line_names_the_user_and_escapes_quotes():
    line = _line(AccessLogger, Config().access_log_format)
    assert line.startswith('127.0.0.1 - ada [26/Nov/2026:00:00:00 +0000] "POST ')
    assert line.endswith('201 42 "http://127.0.0.1:8000/" "curl \\"quoted\\""')


def test_gunicorns_master_does_not_import_the_engine():
    # gunicorn.conf.py names flowrun.web.serving.AccessLogger, which the master
    # process imports before forking; requests/urllib3 imported there,
    # before a gevent worker patches the standard library, break HTTPS.
    import subprocess
    import sys

    code = (
        "import sys, flowrun.web.serving; "
        "print(sorted(m for m in ('requests', 'urllib3', 'flowrun.engine.run') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
