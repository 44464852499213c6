"""Whether this process runs under gevent's monkey-patching (a gunicorn gevent worker).

Greenlets then take the place of threads, and a few things are done differently:
waits go through gevent's hub, and work can be gathered per loop turn.
"""

from __future__ import annotations

import sys


def gevent_active() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")
