"""Whether this process runs under gevent's monkey-patching (a gunicorn gevent worker).

Greenlets then take the place of threads, and a few things are done differently:
waits go through gevent's hub (except the few far shorter than a turn of it,
``real_sleep``), and work can be gathered per loop turn.
"""

from __future__ import annotations

import _thread
import select
import sys
import time


def gevent_active() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")


def real_sleep(seconds: float) -> None:
    """Sleep without yielding: under gevent the whole process waits.

    For waits far shorter than a trip through the hub's queue of ready greenlets.
    """
    monkey = sys.modules.get("gevent.monkey")
    sleep = monkey.get_original("time", "sleep") if monkey else time.sleep
    sleep(seconds)


def os_poll():
    """A new ``select.poll()`` object of the OS's own, even where gevent patched it.

    Its ``poll(0)`` answers at once without going round gevent's hub.
    """
    return _unpatched("select", "poll", select.poll)()


def real_lock():
    """A new lock of the OS's own, even where gevent patched threading.

    Only for sections that cannot switch greenlets (no I/O, no sleep, no wait on
    anything another greenlet holds): no greenlet can then find it held, as the one
    holding it cannot be switched out, so it never blocks the hub, and it costs a C
    call where gevent's lock costs a few Python-level ones (four times per request
    for its deadline: the flight's lock and the deadline watchdog's).
    """
    return _unpatched("_thread", "allocate_lock", _thread.allocate_lock)()


_originals: dict = {}


def _unpatched(module: str, name: str, current):
    """``module.name`` as the OS gives it: gevent's saved original once gevent has
    patched ``module`` (looked up once: it costs a few µs), else ``current``."""
    original = _originals.get((module, name))
    if original is not None:
        return original
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched(module):
        original = _originals[(module, name)] = monkey.get_original(module, name)
        return original
    return current


# A greenlet that computes holds the whole worker (every stream, /api/health) until
# it waits on something: long work gives the others a turn this often.
TURN_S = 0.01


class Turns:
    """Give other greenlets a turn once this one has computed for ``TURN_S``."""

    __slots__ = ("_since",)

    def __init__(self):
        self._since = time.perf_counter()

    def take(self, now: float) -> float:
        """Yield to the hub if a turn is due at ``now``; return the time it resumes.

        Outside gevent nothing else waits on this thread: it never yields.
        """
        if now - self._since < TURN_S:
            return now
        if gevent_active():
            import gevent

            gevent.sleep(0)
            now = time.perf_counter()
        self._since = now
        return now


def in_thread(fn, *args):
    """``fn(*args)`` in a real thread while other greenlets run; else right here.

    For C code that releases the GIL (a ``regex`` search with ``concurrent=True``):
    under gevent the hub serves every other greenlet meanwhile.
    """
    if not gevent_active():
        return fn(*args)
    import gevent

    return gevent.get_hub().threadpool.apply(fn, args)
