"""How flowrun runs under gunicorn; ``gunicorn.conf.py`` names each piece.

- ``GeventWorker`` (``worker_class``): gunicorn's gevent worker, accepting up to
  100 new connections per event-loop turn where gunicorn's accepts one, and sending
  a response's head with its first body bytes.
- ``AccessLogger`` (``logger_class``): gunicorn's logger. Its lines never carry a
  token (``token=`` in a URL is redacted, in access and error lines alike;
  ``Authorization``, ``Cookie`` and ``Set-Cookie`` are never written), and access
  lines are built from the atoms the format uses.
- ``close_after_large_body`` (``pre_request``): a request whose body is over
  ``FLOWRUN_MAX_CONFIG_BYTES`` or of unknown length is answered, then its
  connection closed, so that the body is never read.

The worker's two changes reach into gunicorn where it has no extension point (the
accept loop's server class, the response class): each is checked when the worker
starts, and left out, with a log line, if this gunicorn does not have it.
``tests/test_serving.py`` checks that they send what gunicorn's own code sends.
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import unquote_plus

import gunicorn
from gevent import server as gevent_server
from gunicorn import glogging
from gunicorn.http import wsgi
from gunicorn.workers import ggevent


class BatchAcceptServer(ggevent.StreamServer):
    """gevent's server, accepting up to gevent's default of 100 connections per
    event-loop turn whatever gunicorn asks.

    With more than one worker, gunicorn's gevent worker accepts one connection per
    turn (``max_accept = 1``), so that a burst spreads over the workers; but while
    a worker runs hundreds of flows a turn takes long, and a burst of new streams
    waits in the kernel's queue: seconds of time to first event at p99.
    """

    max_accept = property(lambda self: 100, lambda self, value: None)


class OneSendResponse(wsgi.Response):
    """gunicorn's response, whose head is sent with its first body bytes.

    gunicorn sends the status line and headers on their own, then each body chunk:
    for a stream, the head and the ``start`` event were two segments, each waking
    the client. The head now waits for the first non-empty write (at most: a write
    that sends nothing sends the head alone, as does ``close``).
    """

    _held: bytes | None = None
    _holding = False

    def write(self, arg):
        self._holding = not self.headers_sent
        try:
            super().write(arg)
        finally:
            self._holding = False
            if self._held is not None:  # no body bytes went out: the head alone
                held, self._held = self._held, None
                self.sock.sendall(held)

    def send_headers(self):
        if self.headers_sent or not self._holding:
            return super().send_headers()
        head = self.default_headers()
        head.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        self._held = f"{''.join(head)}\r\n".encode("latin-1")
        self.headers_sent = True

    def _emit_body(self, data):
        held, self._held = self._held, None
        if held is None:
            return super()._emit_body(data)
        if self.chunked:
            data = b"%X\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(held + data)


def _server_class_is_ours_to_give() -> bool:
    """``GeventWorker.run`` builds its server from the module's ``StreamServer``
    (gevent's) and sets ``max_accept`` on it."""
    names = getattr(getattr(ggevent.GeventWorker, "run", None), "__code__", None)
    server = getattr(ggevent, "StreamServer", None)
    return (
        names is not None
        and {"StreamServer", "max_accept"} <= set(names.co_names)
        and isinstance(server, type)
        and issubclass(server, gevent_server.StreamServer)
    )


def _response_class_is_ours_to_give() -> bool:
    """``wsgi.create`` builds the response from the module's ``Response``, whose
    body leaves through ``_emit_body``."""
    create = getattr(getattr(wsgi, "create", None), "__code__", None)
    return (
        create is not None
        and "Response" in create.co_names
        and all(
            callable(getattr(wsgi.Response, name, None))
            for name in ("write", "send_headers", "default_headers", "_emit_body")
        )
    )


# What the worker changes in gunicorn: (the hook it needs is there, put it in place)
HOOKS = {
    "batch accept (gunicorn.workers.ggevent.StreamServer)": (
        _server_class_is_ours_to_give,
        lambda: setattr(ggevent, "StreamServer", BatchAcceptServer),
    ),
    "one send per response head (gunicorn.http.wsgi.Response)": (
        _response_class_is_ours_to_give,
        lambda: setattr(wsgi, "Response", OneSendResponse),
    ),
}


def hooks_missing() -> list[str]:
    """The hooks ``GeventWorker`` needs and this gunicorn lacks (empty: none)."""
    return [name for name, (present, _) in HOOKS.items() if not present()]


def install(log) -> None:
    """Put each change in place, in this worker process, where this gunicorn has
    its hook; log each it lacks (gunicorn's own code then runs there)."""
    for name, (present, put_in_place) in HOOKS.items():
        if present():
            put_in_place()
        else:
            log.warning("flowrun: gunicorn %s lacks %s", gunicorn.__version__, name)


class GeventWorker(ggevent.GeventWorker):
    """gunicorn's gevent worker, with batch accept and one send per response head."""

    def run(self):
        install(self.log)
        super().run()


def close_after_large_body(req, limit: int) -> None:
    """Close the connection after answering ``req`` if its body would be refused.

    A body over ``limit`` (the app answers 413 without reading it), or of unknown
    length (``Transfer-Encoding``: the app stops reading at the limit), would
    otherwise be read to its end after the answer, to reach the next request on
    the connection: hundreds of megabytes read in one greenlet that never waits,
    so the worker answers no one else meanwhile.
    """
    for name, value in req.headers:
        if name == "TRANSFER-ENCODING" or (
            name == "CONTENT-LENGTH" and (not value.isdigit() or int(value) > limit)
        ):
            req.force_close()
            return


# A query parameter: its name and value, up to the next separator (or the end of a
# request line's URI, or a quote in a header).
_PARAM = re.compile(r"(?:(?<=[?&;])|^)([^?&;=\s\"#]*)=([^&;\s\"#]*)")
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_SECRET_ENVIRON = frozenset({"http_authorization", "http_proxy_authorization"})


def redact(text: str) -> str:
    """``text`` (a URL, a query string, a request line) with every ``token=``
    value replaced by ``[redacted]``: the Studio link ``/?token=`` is logged."""
    if "=" not in text:
        return text
    return _PARAM.sub(_redact_param, text)


def _redact_param(match: re.Match) -> str:
    name = match.group(1)
    return f"{name}=[redacted]" if unquote_plus(name) == "token" else match.group(0)


def _redacted(value):
    return redact(value) if isinstance(value, str) else value


class _RedactTokens(logging.Filter):
    """Redact ``token=`` in error log lines: gunicorn writes a request line it
    could not parse, flowrun's own lines go to the same handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "=" in message:
            record.msg, record.args = redact(message), ()
        return True


_REDACT_TOKENS = _RedactTokens()


class AccessLogger(glogging.Logger):
    """gunicorn's logger, whose access lines never carry a token.

    gunicorn makes an atom of every request header, response header and environ
    entry for every access line, then copies them all to escape quotes: most of the
    cost of a line, for a format (the default) that uses none of them. Here the
    braced atoms (``%({name}i)s`` and the like) are made only when the format names
    one. ``u`` is always ``-``: flowrun's credentials are bearer tokens, and the
    line never reads ``Authorization``.
    """

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.addFilter(_REDACT_TOKENS)

    def atoms(self, resp, req, environ, request_time):
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        seconds, micros = request_time.seconds, request_time.microseconds
        atoms = {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": "-",
            "t": self.now(),
            "r": redact(
                f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} "
                f"{environ['SERVER_PROTOCOL']}"
            ),
            "s": status,
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "q": _redacted(environ.get("QUERY_STRING")),
            "H": environ.get("SERVER_PROTOCOL"),
            "b": str(sent) if sent is not None else "-",
            "B": sent,
            "f": redact(environ.get("HTTP_REFERER", "-")),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "T": seconds,
            "D": seconds * 1_000_000 + micros,
            "M": seconds * 1000 + micros // 1000,
            "L": f"{seconds}.{micros:06d}",
            "p": f"<{os.getpid()}>",
        }
        if "{" in self.cfg.access_log_format:
            atoms.update(self._braced(resp, req, environ))
        return atoms

    def _braced(self, resp, req, environ) -> dict:
        """The ``{name}i``, ``{name}o`` and ``{name}e`` atoms, as gunicorn makes
        them, minus credentials."""
        req_headers = getattr(req, "headers", req)
        req_headers = getattr(req_headers, "items", lambda: req_headers)()
        resp_headers = getattr(resp.headers, "items", lambda: resp.headers)()
        atoms = {}
        for name, value in req_headers:
            name = name.lower()
            if name not in _SECRET_HEADERS:
                atoms[f"{{{name}}}i"] = _redacted(value)
        for name, value in resp_headers:
            if name.lower() != "set-cookie":
                atoms[f"{{{name.lower()}}}o"] = value
        for name, value in environ.items():
            name = name.lower()
            if name not in _SECRET_ENVIRON and name != "http_cookie":
                atoms[f"{{{name}}}e"] = _redacted(value)
        return atoms
