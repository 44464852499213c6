"""urllib3 connection and pool classes for one client: tracked, and pinned to checked
addresses.

``pool_classes(flight, guard)`` gives the pool classes (by scheme) that the client's
pool managers use. Their connections

- tell the client's ``Flight`` when they are in use (``connect`` and ``request``, both
  public methods of urllib3's connections), so that a deadline or an abort can shut
  the right socket down;
- with a guard that blocks networks, resolve the host once, check every address and
  connect only to those (``_Pinned``): what was checked is what is reached, and a name
  that answers differently the second time (DNS rebinding) gains nothing. An IP
  literal is not looked up at all (gevent would otherwise send even ``127.0.0.1``
  through its resolver threads). TLS still verifies the certificate against the name.

``_Pinned`` replaces urllib3's ``HTTPConnection._new_conn`` and reads ``_dns_host``,
both private. ``PINNED`` says whether this urllib3 still has them as expected (checked
once, at import; the tested range is pinned in pyproject.toml). If not, a line is
logged and the guard resolves and checks each target before it is sent instead
(the client's adapter does that), which is as strict except against DNS rebinding.
"""

from __future__ import annotations

import functools
import inspect
import logging
import select
import socket
import sys

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.timeout import Timeout

from flowrun.green import gevent_active, os_poll
from flowrun.http.flight import Flight
from flowrun.http.guard import NetworkGuard

log = logging.getLogger("flowrun")


class _Tracked:
    """A connection that tells its client's flight when it is in use (and holds
    the guard that ``_Pinned`` connects through)."""

    flight: Flight

    def __init__(self, *args, flight: Flight, guard: NetworkGuard | None, **kwargs):
        self.flight = flight
        self.guard = guard
        super().__init__(*args, **kwargs)

    @property
    def is_connected(self) -> bool:
        # urllib3 polls a pooled connection before reusing it. gevent's patched
        # poll starts a watcher and goes round the hub once for that; the OS's
        # poll answers the same question without waiting.
        if not gevent_active():
            return super().is_connected
        if self.sock is None:
            return False
        poller = os_poll()
        poller.register(self.sock, select.POLLIN)
        return not poller.poll(0)

    def connect(self):
        self.flight.attach(self)
        super().connect()
        self.flight.check()  # stopped while connecting: no socket to shut then

    def request(self, *args, **kwargs):
        self.flight.attach(self)
        return super().request(*args, **kwargs)


class _Pinned:
    """A connection that connects only to addresses its guard approved."""

    guard: NetworkGuard

    def _new_conn(self):
        try:
            addresses = self.guard.connectable(self._dns_host, self.port)
        except socket.gaierror as e:
            raise NameResolutionError(self.host, self, e) from e
        try:
            sock = self._connect_any(addresses)
        except TimeoutError as e:
            raise ConnectTimeoutError(
                self,
                f"Connection to {self.host} timed out. "
                f"(connect timeout={self.timeout})",
            ) from e
        except OSError as e:
            raise NewConnectionError(
                self, f"Failed to establish a new connection: {e}"
            ) from e
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    def _connect_any(self, addresses):
        """urllib3's ``create_connection``, over addresses already resolved."""
        error = None
        for family, sockaddr in addresses:
            sock = None
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is not Timeout.DEFAULT_TIMEOUT:
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as e:
                error = e
                if sock is not None:
                    sock.close()
        raise error or OSError("getaddrinfo returns an empty list")


def _hooks_present() -> bool:
    """Whether urllib3's connections still open their socket in ``_new_conn(self)``,
    from ``_dns_host``, ``port``, ``timeout``, ``socket_options`` and
    ``source_address``."""
    cls = urllib3.connection.HTTPConnection
    try:
        params = list(inspect.signature(cls._new_conn).parameters)
        probe = cls("example.invalid", 80)  # no I/O until connect()
    except (AttributeError, TypeError, ValueError):
        return False
    return (
        params == ["self"]
        and issubclass(urllib3.connection.HTTPSConnection, cls)
        and isinstance(getattr(probe, "_dns_host", None), str)
        and all(
            hasattr(probe, name)
            for name in ("port", "timeout", "socket_options", "source_address")
        )
    )


def check_hooks() -> bool:
    """Whether connections can be pinned; log a line if they cannot."""
    if _hooks_present():
        return True
    log.warning(
        "urllib3 %s: its connections cannot be pinned to checked addresses; the "
        "network guard checks each target's address before sending instead (not "
        "proof against DNS rebinding)",
        urllib3.__version__,
    )
    return False


PINNED = check_hooks()


def pool_classes(flight: Flight, pin_to: NetworkGuard | None = None) -> dict:
    """``{"http": pool factory, "https": pool factory}`` for a pool manager's
    ``pool_classes_by_scheme``: pools whose connections report to ``flight`` and,
    given ``pin_to``, connect only to addresses that guard approved (only where
    ``PINNED``).

    The classes are made once; each client's flight and guard reach its connections
    as connection keywords, which urllib3's pools pass to every connection they make.
    """
    pools = _PINNED_POOLS if pin_to is not None else _TRACKED_POOLS
    return {
        scheme: functools.partial(pool, flight=flight, guard=pin_to)
        for scheme, pool in pools.items()
    }


def _pools(*mixins) -> dict:
    def pool(base, connection):
        conn = type(connection.__name__, (*mixins, connection), {})
        return type(base.__name__, (base,), {"ConnectionCls": conn})

    return {
        "http": pool(urllib3.HTTPConnectionPool, urllib3.connection.HTTPConnection),
        "https": pool(urllib3.HTTPSConnectionPool, urllib3.connection.HTTPSConnection),
    }


_TRACKED_POOLS = _pools(_Tracked)
_PINNED_POOLS = _pools(_Tracked, _Pinned)
