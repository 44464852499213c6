"""CPU per access line: flowrun's ``AccessLogger`` against gunicorn's own logger.

gunicorn makes an atom of every request header, response header and environ entry
for each access line, then copies them all to escape quotes; flowrun's logger
(``flowrun/web/serving.py``) makes the ones the format uses, and redacts tokens.
This writes the line of one stream request (the environ gunicorn and flowrun give
it, the default format) to /dev/null, alternating the two loggers, and prints the
median µs of process CPU per line.

    .venv/bin/python bench/access_log.py
    .venv/bin/python bench/access_log.py --lines 100000 --rounds 7
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time

from gunicorn import glogging
from gunicorn.config import Config

from flowrun.web.serving import AccessLogger

ENVIRON = {
    "wsgi.errors": object(),
    "wsgi.version": (1, 0),
    "wsgi.multithread": True,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.file_wrapper": object,
    "wsgi.input_terminated": True,
    "wsgi.input": object(),
    "wsgi.url_scheme": "http",
    "wsgi.early_hints": object(),
    "gunicorn.socket": object(),
    "SERVER_SOFTWARE": "gunicorn/27.0.1",
    "REQUEST_METHOD": "POST",
    "QUERY_STRING": "",
    "RAW_URI": "/api/execute-stream",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "127.0.0.1:8000",
    "HTTP_USER_AGENT": "python-requests/2.34.2",
    "HTTP_ACCEPT_ENCODING": "gzip, deflate",
    "HTTP_ACCEPT": "*/*",
    "CONTENT_TYPE": "application/json",
    "CONTENT_LENGTH": "1234",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "51234",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "PATH_INFO": "/api/execute-stream",
    "SCRIPT_NAME": "",
    "werkzeug.request": object(),
}


class Request:
    headers = [
        ("HOST", "127.0.0.1:8000"),
        ("USER-AGENT", "python-requests/2.34.2"),
        ("ACCEPT-ENCODING", "gzip, deflate"),
        ("ACCEPT", "*/*"),
        ("CONTENT-TYPE", "application/json"),
        ("CONTENT-LENGTH", "1234"),
    ]


class Response:
    status = "200 OK"
    sent = 4567
    headers = [
        ("Content-Type", "text/event-stream; charset=utf-8"),
        ("Cache-Control", "no-cache"),
        ("X-Accel-Buffering", "no"),
        ("X-Execution-Id", "0123456789abcdef"),
        ("X-Flowrun-Worker", "12345"),
    ]


def per_line_us(logger_class, lines: int) -> float:
    cfg = Config()
    cfg.set("accesslog", "/dev/null")
    logger = logger_class(cfg)
    took = datetime.timedelta(seconds=5, microseconds=123456)
    request, response = Request(), Response()
    started = time.process_time()
    for _ in range(lines):
        logger.access(response, request, ENVIRON, took)
    return (time.process_time() - started) / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times = {glogging.Logger: [], AccessLogger: []}
    for _ in range(args.rounds):
        for logger_class in times:
            times[logger_class].append(per_line_us(logger_class, args.lines))
    theirs = statistics.median(times[glogging.Logger])
    ours = statistics.median(times[AccessLogger])
    print(f"gunicorn's Logger:      {theirs:6.1f} µs per access line (median)")
    print(f"flowrun's AccessLogger: {ours:6.1f} µs per line, {ours / theirs:.2f}×")


if __name__ == "__main__":
    main()
