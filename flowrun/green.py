"""Whether this process runs under gevent's monkey-patching (a gunicorn gevent worker).

Greenlets then take the place of threads, and a few things are done differently:
waits go through gevent's hub (except the few far shorter than a turn of it,
``real_sleep``), and work can be gathered per loop turn.
"""

from __future__ import annotations

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
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("select"):
        return monkey.get_original("select", "poll")()
    return select.poll()
