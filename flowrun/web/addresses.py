"""This server's own addresses: which are loopback, which host names it answers to,
and which peers are its trusted proxies. One answer for the app, its settings and
``gunicorn.conf.py``."""

from __future__ import annotations

import functools
import ipaddress

from flowrun.settings import split

_WILDCARDS = ("0.0.0.0", "::", "")
# Every request asks about its Host and its peer: the answers for the last few
# hundred values are kept (a client sends the same ones again and again; anything
# a client sends beyond that only pushes older answers out).
_MEMO = 512


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (brackets allowed)."""
    host = host.strip("[]").split("%")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ip(text: str):
    """The IP address in ``text`` (brackets allowed), or None for a name."""
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def split_host(host: str) -> tuple[str, str]:
    """``("name", "port")`` of a ``Host`` value; the name lower-cased, IPv6 in
    brackets, the port "" when absent. A malformed value gives ``("", "")``."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host.partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "", ""
        name, port = name + "]", rest[1:]
    elif host.count(":") > 1:  # an IPv6 address without brackets
        return "", ""
    else:
        name, _, port = host.partition(":")
    if port and not port.isdigit():
        return "", ""
    return name.rstrip("."), port


class ServerHosts:
    """The ``Host`` values this server answers to (``FLOWRUN_SERVER_HOSTS``).

    Always the loopback names and the bound address (``FLOWRUN_BIND``), any port;
    bound to every interface (``0.0.0.0``, ``::``), any IP address, since a DNS
    rebinding needs a name the attacker controls. Then each listed ``name`` (any
    port) or ``name:port``; ``*`` allows every host.
    """

    def __init__(self, listed: str | list, bind: str | None = None):
        self.allows = functools.lru_cache(maxsize=_MEMO)(self._allows)
        bind = (bind or "").strip("[]")
        self.any_ip = bind in _WILDCARDS
        self.any = False
        self.names: dict[str, set[str] | None] = {}
        if not self.any_ip:
            self._add(f"[{bind}]" if ":" in bind else bind)
        for item in split(listed):
            if item == "*":
                self.any = True
                continue
            name, port = split_host(item)
            if not name:
                raise ValueError(
                    f"FLOWRUN_SERVER_HOSTS: {item!r} is not a host name or name:port"
                )
            self._add(name, port)

    def _add(self, name: str, port: str = "") -> None:
        ports = self.names.get(name, set())
        if not port or ports is None:
            self.names[name] = None  # any port
        else:
            ports.add(port)
            self.names[name] = ports

    def _allows(self, host: str) -> bool:
        """Whether a request naming ``host`` (``name[:port]``) may be served
        (``allows``, remembered)."""
        if self.any:
            return True
        name, port = split_host(host)
        if not name:
            return False
        if is_loopback(name) or (self.any_ip and _ip(name) is not None):
            return True
        if name not in self.names:
            return False
        ports = self.names[name]
        return ports is None or port in ports


class Networks:
    """A list of addresses and networks (``FLOWRUN_TRUSTED_PROXIES``)."""

    def __init__(self, listed: str | list, setting: str = "FLOWRUN_TRUSTED_PROXIES"):
        self._contains = functools.lru_cache(maxsize=_MEMO)(self._lookup)
        self.networks = []
        for item in split(listed):
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"{setting}: {item!r} is not an IP address or network"
                ) from None

    def __contains__(self, peer: str) -> bool:
        """Whether ``peer`` (a ``REMOTE_ADDR``) is in the list. A peer on a unix
        socket has no address: it is a local process, and counts as loopback."""
        return self._contains(peer)

    def _lookup(self, peer: str) -> bool:
        address = _ip(peer) if peer else ipaddress.ip_address("127.0.0.1")
        return address is not None and any(address in n for n in self.networks)


def studio_url(host: str, port: int) -> str:
    """The address to open in a browser for a server listening on ``host:port``."""
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"
