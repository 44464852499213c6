"""A step's CPU budget: the time its conditions, placeholders and validations share.

A regex, a JSON Schema or a jq program from a flow can take as long as its author,
or the target's response, makes it: one ``matches`` that backtracks, or forty that
each stop just in time, would hold the worker (under gevent, every stream on it)
for as long as they add up. So each step gets ``FLOWRUN_STEP_CPU_S`` seconds for
all of its own work together:

- work done in this thread is timed inside ``with budget:`` (sections nest); long
  loops call ``tick()`` (cheap) or ``check()``, which raise ``BudgetExceeded`` past
  the limit and give other greenlets a turn every ``green.TURN_S``;
- a regex search gets what is left (``search``): in place for a moment, then, if
  it is still searching, in a real thread that releases the GIL, charged the CPU
  time it took there (the regex library's time limits are CPU time too);
- a jq program runs in its helper process (``elsewhere()``) and is charged its
  running time (``charge()``).

``compile_regex`` compiles the patterns those searches use: at most
MAX_PATTERN_CHARS long (compiling cannot be stopped), the last 512 kept.

In this thread the clock is the wall clock while the step computes (reading the
thread's CPU clock costs some twenty times more, at every step): waits for the
network, for a helper or for a turn of the hub are not counted, and on a busy
machine the step is charged a little more than its CPU time.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from functools import lru_cache

import regex

from flowrun.errors import BudgetExceeded
from flowrun.green import Turns, gevent_active, in_thread

SETTING = "FLOWRUN_STEP_CPU_S"
DEFAULT_S = 2.0
TICKS = 64  # tick() reads the clock once per this many calls
# CPU time a search may take in place before it moves to a thread: far more than
# an ordinary search takes, far less than a turn of the hub.
SEARCH_IN_PLACE_S = 0.002


class Budget:
    """The seconds one step may compute; see the module docstring."""

    __slots__ = ("limit", "spent", "out", "_started", "_depth", "_countdown", "_turns")

    def __init__(self, seconds: float = DEFAULT_S):
        self.limit = seconds
        self.spent = 0.0
        self.out = False  # whether it ran out (BudgetExceeded was made)
        self._started = 0.0  # when the clock last started (inside a section)
        self._depth = 0
        self._countdown = TICKS
        self._turns: Turns | None = None

    def __enter__(self) -> Budget:
        if not self._depth:
            self._started = time.perf_counter()
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if not self._depth:
            self.spent += time.perf_counter() - self._started

    def left(self) -> float:
        """Seconds left; 0 or less once used up."""
        if self._depth:
            return self.limit - self.spent - (time.perf_counter() - self._started)
        return self.limit - self.spent

    @property
    def exhausted(self) -> bool:
        return self.out or self.left() <= 0

    def check(self) -> None:
        """Raise BudgetExceeded if the budget is used up; let others run if due."""
        if not self._depth:
            if self.spent >= self.limit:
                raise self.exceeded()
            return
        now = time.perf_counter()
        self.spent += now - self._started
        self._started = now
        if self.spent >= self.limit:
            raise self.exceeded()
        if self._turns is None:
            self._turns = Turns()
        self._started = self._turns.take(now)

    def tick(self) -> None:
        """``check()`` once every TICKS calls: for loops over many small things."""
        self._countdown -= 1
        if self._countdown <= 0:
            self._countdown = TICKS
            self.check()

    def charge(self, seconds: float) -> None:
        """Count time this step's work took outside this thread."""
        self.spent += seconds

    @contextmanager
    def elsewhere(self):
        """Stop the clock while this greenlet waits on work done elsewhere.

        Others run meanwhile; that work's own time is counted with ``charge()``.
        """
        if not self._depth:
            yield
            return
        self.spent += time.perf_counter() - self._started
        try:
            yield
        finally:
            self._started = time.perf_counter()

    def exceeded(self, what: str = "") -> BudgetExceeded:
        """The error to raise, its message led by ``what`` gave up."""
        self.out = True
        message = (
            f"the step used up its CPU budget of {self.limit:g}s ({SETTING}, "
            "shared by its conditions, placeholders and validations)"
        )
        return BudgetExceeded(f"{what}: {message}" if what else message)

    def search(self, rx, text: str):
        """``rx.search(text)`` (a compiled ``regex`` pattern) within what is left.

        Raises BudgetExceeded when the search is still running as the budget ends.
        Most searches end at once; one still going after a turn's length goes on
        in a real thread, with the GIL released, so that other greenlets run.
        """
        with self:
            left = self.left()
            if left <= 0:
                raise self.exceeded()
            try:
                return rx.search(text, timeout=min(left, SEARCH_IN_PLACE_S))
            except TimeoutError:
                left = self.left()
            if left <= 0:
                raise self.exceeded() from None
            if not gevent_active():
                try:
                    return rx.search(text, timeout=left)
                except TimeoutError:
                    raise self.exceeded() from None
            with self.elsewhere():
                found, took = in_thread(_timed_search, rx, text, left)
                self.charge(took)
            if found is _GAVE_UP:
                self.spent = max(self.spent, self.limit)
                raise self.exceeded()
            return found


_GAVE_UP = object()

RegexError = regex.error
# Compiling is Python code, about 20 µs per character of pattern, and cannot be
# stopped: a pattern is at most this long.
MAX_PATTERN_CHARS = 2000


def compile_regex(pattern: str):
    """``pattern`` compiled by the regex library (RegexError if it is not one)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexError(
            f"{len(pattern)} characters, more than the {MAX_PATTERN_CHARS} allowed"
        )
    return _compiled(pattern)


# Only this cache keeps compiled patterns (not the regex library's own, which
# would keep every pattern a flow ever sent).
@lru_cache(maxsize=512)
def _compiled(pattern: str):
    return regex.compile(pattern, cache_pattern=False)


def _timed_search(rx, text: str, timeout: float):
    """``(match or None or _GAVE_UP, CPU seconds)``, the GIL released meanwhile."""
    began = time.thread_time()
    try:
        found = rx.search(text, timeout=timeout, concurrent=True)
    except TimeoutError:
        found = _GAVE_UP
    return found, time.thread_time() - began
