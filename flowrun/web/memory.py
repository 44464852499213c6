"""Give a worker's freed heap back to the OS after a large drop in live executions.

10,000 idle streams take a gevent worker from about 56 MiB to 490 MiB. When their
clients go away, Python frees the objects (none of them stays referenced), but glibc's
malloc keeps the freed chunks (greenlet stack copies, buffers) in its heap, about 90 MiB
of them, and the worker would stay at ~280 MiB for good. ``malloc_trim(0)`` hands those
free pages back (12-16 ms on that heap). A full ``gc.collect()`` first empties
CPython's free lists (spare tuples, floats, dicts…), whose scattered blocks keep whole
1 MiB pymalloc arenas mapped: about 20 MiB more.

A ``Trimmer`` watches the live count the ``Registry`` reports on each add and
remove (two comparisons, no call into the allocator). Once the count has been high
(``min_peak``) and falls under ``fraction`` of that peak, it schedules one trim in
a thread of its own (a greenlet under gevent), which waits until the count stops
falling, so a whole drain costs one trim, however many executions end. After the
trim the peak starts again from the current count: the next trim needs a new spike
and a new drop. A steady churn never drops under a quarter of its peak and never
trims. Where the C library has no ``malloc_trim`` (not glibc), nothing is done.
"""

from __future__ import annotations

import _thread
import ctypes
import gc
import logging
import platform
import time
from collections.abc import Callable

log = logging.getLogger("flowrun")


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` as a callable, or None where there is none."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return lambda: function(0)


# glibc's mallopt parameter: blocks at least this large get pages of their own.
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 256 * 1024


def map_large_blocks() -> bool:
    """Have glibc give every block of ``LARGE_BLOCK`` bytes or more pages of its own,
    returned to the OS when it is freed; False where that cannot be set.

    glibc does so from 128 KiB, but raises that threshold to the size of each such
    block freed (up to 32 MiB): after one run with a 10 MB request, later blocks that
    large come from the heap, and the heap keeps their pages once they are freed (the
    worker stayed 50-80 MiB over its baseline after each). Setting the threshold
    turns that raising off. It costs a map and an unmap per large block (a body or
    an event of 256 KiB or more), next to the copying such a block costs anyway.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK) == 1


class Trimmer:
    """Call ``trim`` once after the live count falls well below a recent peak."""

    def __init__(
        self,
        trim: Callable[[], object] | None = None,
        *,
        min_peak: int = 1000,
        fraction: float = 0.25,
        delay: float = 1.0,
        max_waits: int = 30,
        start: Callable | None = None,
        sleep: Callable[[float], object] | None = None,
        collect: Callable[[], object] = gc.collect,
    ):
        self.trim = trim
        self.collect = collect
        self.min_peak = min_peak
        self.fraction = fraction
        self.delay = delay
        self.max_waits = max_waits
        # Looked up at call time: under gevent these are the patched ones.
        self._start = start or (lambda fn: _thread.start_new_thread(fn, ()))
        self._sleep = sleep or (lambda seconds: time.sleep(seconds))
        self.peak = 0
        self.live = 0
        self.scheduled = False
        self.trims = 0

    def update(self, live: int) -> None:
        """Note the live count after an add or a remove; maybe schedule a trim."""
        self.live = live
        if live > self.peak:
            self.peak = live
        elif (
            not self.scheduled
            and self.peak >= self.min_peak
            and live < self.peak * self.fraction
            and self.trim is not None
        ):
            self.scheduled = True
            self._start(self._trim_later)

    def _trim_later(self) -> None:
        peak = self.peak
        try:
            # Bounded wait for the drain to finish: one more delay without a
            # change in the count, or max_waits delays in all.
            last = -1
            for _ in range(self.max_waits):
                self._sleep(self.delay)
                if self.live == last:
                    break
                last = self.live
            started = time.perf_counter()
            self.collect()
            collected = time.perf_counter()
            self.trim()
            self.trims += 1
            log.info(
                "live executions fell from %d to %d: returned free heap to the OS "
                "(gc.collect %.1f ms, malloc_trim %.1f ms)",
                peak,
                self.live,
                (collected - started) * 1000,
                (time.perf_counter() - collected) * 1000,
            )
        except Exception:  # never take the worker down over a trim
            log.exception("malloc_trim failed")
        finally:
            self.peak = self.live
            self.scheduled = False
