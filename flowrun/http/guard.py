"""The network guard: which targets a step may reach.

``NetworkGuard`` refuses hosts outside ``FLOWRUN_ALLOWED_HOSTS`` and addresses in
``FLOWRUN_BLOCKED_NETWORKS`` (IPv6 forms of a blocked IPv4 address too). The client's
connections (``connections.py``) use ``connectable`` where they connect, so that the
address checked is the address reached.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import urllib3

from flowrun.errors import BlockedTarget


class NetworkGuard:
    """Refuse targets whose resolved address is blocked or whose host is not allowed.

    ``check`` runs before every request and redirect; ``connectable`` runs when a
    connection is opened and gives the addresses to connect to, each checked, so
    the address connected to is the one checked (a name that resolves elsewhere
    the second time, DNS rebinding, is caught). A request that goes straight to its
    target is therefore looked up once, when it connects; ``check`` resolves the
    target itself only where the connection cannot: for a request sent through a
    proxy (which connects elsewhere), or where the connection classes could not be
    hooked (``connections.PINNED``).
    """

    def __init__(self, blocked=(), allowed_hosts=None):
        self.blocked = [
            n
            if isinstance(n, (ipaddress.IPv4Network, ipaddress.IPv6Network))
            else ipaddress.ip_network(n, strict=False)
            for n in blocked
        ]
        self.allowed = {h.lower() for h in allowed_hosts} if allowed_hosts else None
        self._checked: dict[tuple, None] = {}
        # (scheme://netloc, resolved) of URLs that passed
        self._passed: dict[tuple, None] = {}

    def check(self, url: str, resolve: bool = True, proxied: bool = False) -> None:
        """Refuse ``url`` if its host is not allowed, or (with ``resolve``) if the
        host resolves to a blocked address.

        ``proxied``: the request goes through a proxy, which would look the name up
        itself; a name that cannot be resolved here is then refused, as it cannot
        be checked.
        """
        origin = origin_of(url)
        key = (origin, resolve and bool(self.blocked))
        if origin is not None and key in self._passed:
            return  # the same host and port passed before (this guard, this run)
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if self.allowed is not None and host not in self.allowed:
            raise BlockedTarget(
                f"Blocked: host '{host}' is not in FLOWRUN_ALLOWED_HOSTS"
            )
        if key[1]:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if (host, port) not in self._checked:
                try:
                    self.connectable(host, port)
                except socket.gaierror:
                    if proxied:
                        raise BlockedTarget(
                            f"Blocked: host '{host}' does not resolve here, so it "
                            "cannot be checked against FLOWRUN_BLOCKED_NETWORKS; "
                            "requests through a proxy go only to checked hosts"
                        ) from None
                    return  # the request itself will report the DNS failure
                self._checked[(host, port)] = None
        if origin is not None:
            self._passed[key] = None

    def connectable(self, host: str, port: int) -> list[tuple]:
        """``(family, sockaddr)`` to connect to for ``host``; raise BlockedTarget if
        any address it resolves to is blocked (socket.gaierror if it resolves to
        nothing). An IP literal is not looked up."""
        bare = host.strip("[]")
        try:
            literal = ipaddress.ip_address(bare)
        except ValueError:
            literal = None
        if literal is not None and "%" not in bare:
            if literal.version == 4:
                found = [(socket.AF_INET, (bare, port), literal)]
            else:
                found = [(socket.AF_INET6, (bare, port, 0, 0), literal)]
        else:
            infos = socket.getaddrinfo(
                bare,
                port,
                urllib3.util.connection.allowed_gai_family(),
                socket.SOCK_STREAM,
            )
            found = [
                (i[0], i[4], ipaddress.ip_address(i[4][0].split("%")[0])) for i in infos
            ]
        for _family, _sockaddr, addr in found:
            for candidate in _embedded(addr):
                for net in self.blocked:
                    if candidate.version == net.version and candidate in net:
                        raise BlockedTarget(
                            f"Blocked: {host} resolves to {addr}, which is in a "
                            f"blocked network ({net}, FLOWRUN_BLOCKED_NETWORKS)"
                        )
        return [(family, sockaddr) for family, sockaddr, _addr in found]


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


_V4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded(addr):
    """The address and any IPv4 address an IPv6 form of it reaches.

    ``::ffff:169.254.169.254`` (IPv4-mapped), ``::169.254.169.254`` (IPv4-
    compatible), 6to4 and NAT64 addresses all lead to the IPv4 host inside them, so
    a blocked IPv4 network must refuse them too.
    """
    yield addr
    if addr.version != 6:
        return
    if addr.ipv4_mapped is not None:
        yield addr.ipv4_mapped
    if addr.sixtofour is not None:
        yield addr.sixtofour
    if addr in _NAT64 or (addr in _V4_COMPATIBLE and int(addr) > 1):
        yield ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)


def origin_of(url) -> str | None:
    """``scheme://netloc`` of a prepared URL (it always has a path), else None."""
    if not isinstance(url, str):
        return None
    start = url.find("://")
    if start <= 0:
        return None
    end = url.find("/", start + 3)
    if end < 0:
        return None
    origin = url[:end]
    if "?" in origin or "#" in origin:
        return None
    return origin
