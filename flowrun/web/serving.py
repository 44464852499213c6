"""How flowrun runs under gunicorn; ``gunicorn.conf.py`` names each piece.

- ``GeventWorker`` (``worker_class``): gunicorn's gevent worker, accepting up to
  100 new connections per event-loop turn where gunicorn's accepts one, and
  spawning greenlets without recording the stack that spawned each.
- ``AccessLogger`` (``logger_class``): gunicorn's logger. Its lines never carry a
  token (``token=`` in a URL is redacted, in access and error lines alike;
  ``Authorization``, ``Cookie`` and ``Set-Cookie`` are never written), and access
  lines are built from the atoms the format uses.
- ``close_after_large_body`` (``pre_request``): a request whose body is over
  ``FLOWRUN_MAX_CONFIG_BYTES`` or of unknown length is answered, then its
  connection closed, so that the body is never read.

The worker reaches into gunicorn where it has no extension point (the accept
loop's server class): the hook is checked when the worker starts, and left alone,
with a log line, if this gunicorn does not have it (``pyproject.toml`` pins the
gunicorn versions it is tested with).
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import unquote_plus

import gevent
import gunicorn
from gevent import server as gevent_server
from gunicorn import glogging
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


def batch_accept_hook_present() -> bool:
    """Whether ``GeventWorker.run`` still builds its server from the module's
    ``StreamServer`` (gevent's) and sets ``max_accept`` on it."""
    run = getattr(getattr(ggevent.GeventWorker, "run", None), "__code__", None)
    server = getattr(ggevent, "StreamServer", None)
    return (
        run is not None
        and {"StreamServer", "max_accept"} <= set(run.co_names)
        and isinstance(server, type)
        and issubclass(server, gevent_server.StreamServer)
    )


def install(log) -> None:
    """Accept in batches in this worker process, if this gunicorn has the hook;
    otherwise say so, and gunicorn's own accept loop runs."""
    if batch_accept_hook_present():
        ggevent.StreamServer = BatchAcceptServer
    else:
        log.warning(
            "flowrun: gunicorn %s lacks the hook for batch accept "
            "(gunicorn.workers.ggevent.StreamServer): accepting as gunicorn does",
            gunicorn.__version__,
        )


def untracked_greenlets() -> None:
    """New greenlets stop recording who spawned them, unless
    ``GEVENT_TRACK_GREENLET_TREE`` is set.

    For debugging, gevent keeps with each new greenlet its parent and the stack
    that spawned it (ten frames, each with its line number worked out): about
    25,000 instructions per greenlet, and a run takes two (its connection's and
    its own). flowrun never reads them. gevent documents the setting as the way to
    spawn faster; ``GEVENT_TRACK_GREENLET_TREE=1`` brings the stacks back.
    """
    if "GEVENT_TRACK_GREENLET_TREE" not in os.environ:
        gevent.config.track_greenlet_tree = False


class GeventWorker(ggevent.GeventWorker):
    """gunicorn's gevent worker, accepting new connections in batches, its
    greenlets untracked."""

    def run(self):
        untracked_greenlets()
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
