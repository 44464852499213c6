"""Answers kept for a moment: ``Recent`` asks again at most once per ``seconds``.

For what every run start wants to know and rarely changes (the disk's free space,
whether the environment names a proxy): asking each time cost more than the rest of
the start's checks together.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Recent:
    """``look(*key)``, remembered per key for ``seconds``."""

    def __init__(self, look: Callable, seconds: float = 1.0):
        self.look = look
        self.seconds = seconds
        self._known: dict[tuple, tuple[float, object]] = {}

    def __call__(self, *key):
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None and now - known[0] < self.seconds:
            return known[1]
        answer = self.look(*key)
        self._known[key] = (now, answer)
        return answer

    def forget(self) -> None:
        """Ask again next time."""
        self._known.clear()
