"""Keep every process of the test suite on this machine, even when flowrun is broken.

An audit hook sees each socket operation where Python makes it (in C), whatever
wraps the socket (gevent, urllib3, flowrun's guard), so nothing gets past it:

- a name other than ``localhost`` does not resolve (as if unknown): no DNS query
  leaves the machine, and tests of lookup errors see an ordinary lookup error;
- a connection or datagram to an address off loopback is refused, and the attempt
  is appended to the file named by ``$FLOWRUN_TEST_OFFLINE_LOG``, which
  ``tests/conftest.py`` turns into a failure of the test that made it.

``tests/conftest.py`` imports this module in the test process and puts its folder
first on ``PYTHONPATH``, so every Python process a test starts (gunicorn and its
workers, the CLI, helpers) loads it as ``sitecustomize`` before anything else.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys

LOG_VARIABLE = "FLOWRUN_TEST_OFFLINE_LOG"
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _text(host) -> str:
    if isinstance(host, bytes | bytearray):
        return bytes(host).decode("ascii", "replace")
    return str(host)


def _literal(host: str):
    """The IP address ``host`` spells, or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _resolvable(host) -> bool:
    if host is None or host == "" or host == b"":
        return True  # a wildcard, as for bind
    text = _text(host).rstrip(".").lower()
    return text in _LOCAL_NAMES or _literal(text) is not None


def _on_loopback(host) -> bool:
    text = _text(host).rstrip(".").lower()
    if text in _LOCAL_NAMES:
        return True
    address = _literal(text)
    if address is None:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _refuse(where) -> None:
    """Record an attempt to leave the machine, then fail it like a refused port."""
    message = f"a test process (pid {os.getpid()}) tried to reach {where!r}"
    path = os.environ.get(LOG_VARIABLE)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (message + "\n").encode())
        finally:
            os.close(fd)
    raise ConnectionRefusedError(
        errno.ECONNREFUSED, f"Refused by tests/offline: {message}"
    )


def _hook(event: str, args) -> None:
    if not event.startswith("socket."):
        return
    if event in ("socket.getaddrinfo", "socket.gethostbyname"):
        if not _resolvable(args[0]):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    elif event == "socket.gethostbyaddr":
        if not _on_loopback(args[0]):
            raise socket.herror(1, "Unknown host")
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address is not None:
            if not _on_loopback(address[0]):
                _refuse(address)


def install() -> None:
    """Add the audit hook to this process (once; hooks cannot be removed)."""
    if not getattr(sys, "_flowrun_offline", False):
        sys._flowrun_offline = True
        sys.addaudithook(_hook)


install()
