"""Behind a reverse proxy: its ``X-Forwarded-*`` headers, from trusted peers only.

``TrustedProxies`` wraps the WSGI app (``create_app`` installs it). When the peer
that connected (``REMOTE_ADDR``) is in ``FLOWRUN_TRUSTED_PROXIES``, werkzeug's
``ProxyFix`` applies the last value of each header that proxy sets:
``X-Forwarded-For`` (the client address: logs), ``-Proto`` (the scheme: Origin
checks, ``Secure`` cookies, URLs), ``-Host`` (the host: the ``Host`` allow-list,
Origin checks, URLs) and ``-Prefix`` (the path the proxy serves flowrun under:
every URL flowrun makes). From any other peer the headers are ignored, so a client
that reaches the server directly cannot pose as the proxy. The original values stay
in ``environ["werkzeug.proxy_fix.orig"]`` (the ``Host`` check reads both).

This is the only place that reads these headers: ``gunicorn.conf.py`` tells
gunicorn to trust no peer's, so the development server, the test client and
gunicorn all behave the same.
"""

from __future__ import annotations

from werkzeug.middleware.proxy_fix import ProxyFix

from flowrun.web.addresses import Networks

_FORWARDED = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PREFIX",
)


class TrustedProxies:
    """WSGI middleware: ``ProxyFix`` for requests from a trusted proxy only."""

    def __init__(self, app, trusted: Networks):
        self.app = app
        self.trusted = trusted
        # One proxy in front: the values it sets (or appends) are the last ones.
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_prefix=1)

    def __call__(self, environ, start_response):
        # Without any of the headers ProxyFix would change nothing: most requests
        # (every one when there is no proxy) skip it and the peer lookup.
        if not any(name in environ for name in _FORWARDED):
            return self.app(environ, start_response)
        if environ.get("REMOTE_ADDR", "") not in self.trusted:
            return self.app(environ, start_response)
        prefix = environ.get("HTTP_X_FORWARDED_PREFIX")
        if prefix:  # "/flowrun/" and "/flowrun" name the same mount point
            environ["HTTP_X_FORWARDED_PREFIX"] = prefix.rstrip("/")
        return self.fixed(environ, start_response)
