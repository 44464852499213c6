"""How flowrun tunes gunicorn's gevent worker (installed by ``gunicorn.conf.py``).

Three changes to what gunicorn does per connection, each measured under a burst of
1,000 new streams (docs/performance.md):

- ``BatchAcceptServer``: accept up to 100 connections per event-loop turn;
- ``OneSendResponse``: the response head leaves with the first body bytes, in one
  ``send`` (one TCP segment, one wake-up of the client) instead of two;
- ``AccessLogger``: gunicorn's logger, building only the atoms the access log
  format can use.

Nothing here changes what a client receives or what the access log says.
"""

from __future__ import annotations

import os

from gunicorn import glogging
from gunicorn.http import wsgi
from gunicorn.workers import ggevent


def install() -> None:
    """Patch gunicorn in a new worker, before it starts serving (``post_fork``)."""
    ggevent.StreamServer = BatchAcceptServer
    wsgi.Response = OneSendResponse


class BatchAcceptServer(ggevent.StreamServer):
    # With more than one worker, gunicorn's gevent worker accepts one connection
    # per event-loop turn (max_accept = 1), so a burst of new streams waits in the
    # kernel's queue while the loop is busy: 1,000 flows at once saw a time to
    # first event of 4-6 s at p99. Accepting up to gevent's default of 100 per turn
    # brought that to 0.6 s.
    max_accept = property(lambda self: 100, lambda self, value: None)


class OneSendResponse(wsgi.Response):
    """A response whose head is sent with its first body bytes.

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


class AccessLogger(glogging.Logger):
    """gunicorn's logger; its access lines built from the atoms a format can use.

    For every request gunicorn makes an atom of each request header, response
    header and environ entry, then copies them all to escape quotes: most of the
    cost of an access line, for a format (the default) that uses none of them.
    Such atoms (``%({name}i)s`` and the like) are made only when the format has one.
    """

    def atoms(self, resp, req, environ, request_time):
        if "{" in self.cfg.access_log_format:
            return super().atoms(resp, req, environ, request_time)
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        seconds, micros = request_time.seconds, request_time.microseconds
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(environ) or "-",
            "t": self.now(),
            "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} "
            f"{environ['SERVER_PROTOCOL']}",
            "s": status,
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "q": environ.get("QUERY_STRING"),
            "H": environ.get("SERVER_PROTOCOL"),
            "b": str(sent) if sent is not None else "-",
            "B": sent,
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "T": seconds,
            "D": seconds * 1_000_000 + micros,
            "M": seconds * 1000 + micros // 1000,
            "L": f"{seconds}.{micros:06d}",
            "p": f"<{os.getpid()}>",
        }
