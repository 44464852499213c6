"""Lookups gathered into one query: the stop checks of many runs, under gevent.

Every run asks, before each step, whether a stop was recorded for it. With history
and controls on another host (PostgreSQL, Redis) each question is a round trip, and
in a burst a thousand runs ask within a few milliseconds. ``Gathered`` answers the
questions asked while one query is in flight with the next query, for all of them
at once: one round trip per turn instead of one per run.

A question is answered by a query that starts after it was asked, so it sees every
record committed before it was asked, as a query of its own would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flowrun.green import gevent_active


class _Batch:
    __slots__ = ("keys", "done", "found", "error")

    def __init__(self, event):
        self.keys: set[str] = set()
        self.done = event
        self.found: set[str] = set()
        self.error: BaseException | None = None


class Gathered:
    """``ask(key)``: whether ``lookup`` finds ``key``; gathered under gevent.

    ``lookup(keys)`` returns the keys it found. Elsewhere (threads, the CLI) each
    question is its own lookup.
    """

    def __init__(self, lookup: Callable[[Iterable[str]], set[str]]):
        self.lookup = lookup
        self._next: _Batch | None = None
        self._running = False

    def ask(self, key: str) -> bool:
        if not gevent_active():
            return key in self.lookup([key])
        import gevent
        from gevent.event import Event

        batch = self._next
        if batch is None:
            batch = self._next = _Batch(Event())
        batch.keys.add(key)
        if not self._running:
            self._running = True
            gevent.spawn(self._drain)
        batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return key in batch.found

    def _drain(self) -> None:
        # One query at a time: questions asked meanwhile wait for the next one.
        # Nothing between the last check and clearing _running yields, so a
        # question is never left without a query to answer it.
        try:
            while self._next is not None:
                batch, self._next = self._next, None
                try:
                    batch.found = self.lookup(batch.keys)
                except Exception as exc:  # each asker raises it
                    batch.error = exc
                batch.done.set()
        finally:
            self._running = False
