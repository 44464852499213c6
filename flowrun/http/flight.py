"""The request a client has in flight: its deadline, and the way to cut it short.

A step's ``timeout`` bounds its whole request (connect, headers, body, redirects).
Socket timeouts alone cannot do that: they bound each read, and a target that sends a
byte now and then never lets one expire. So each request registers a deadline with
one watchdog thread per process, and its connection registers itself while it is in
use (``Flight.attach``), then its response while the body is read (``Flight.reading``);
at the deadline, or when ``abort()`` is called from another thread or greenlet, the
connection's socket is shut down (through urllib3's ``HTTPResponse.shutdown`` once
there is a response), which wakes whatever read or write waits on it. The client
then reports why the request stopped.

Under gevent's monkey-patching the watchdog thread is a greenlet, and the locks and
waits below are gevent's.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import os
import socket
import threading
import time

from flowrun.errors import StepAborted, StepError, StepTimeout
from flowrun.green import real_lock

ABORTED = "Stopped now: the request in flight was aborted"


def seconds(value: float) -> str:
    """Format seconds like FlowSphere's messages: ``5s``, ``0.5s``."""
    return f"{value:g}s"


class Flight:
    """One client's request in flight; ``stop`` may be called from any thread."""

    def __init__(self):
        # Every section under it is short and never waits (see green.real_lock).
        self._lock = real_lock()
        self._shutdown = None  # shuts down the connection now in use
        self._watchdog: _Watchdog | None = None
        self._entry: list | None = None  # this request's entry in it
        self._timeout = 0.0
        self._deadline = math.inf
        self._reason: str | None = None  # "timeout" or "aborted"
        self.aborted = False  # once aborted, every later request fails at once

    def begin(self, timeout: float) -> None:
        """Start a request that must be over within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        watchdog = _watchdog()
        with self._lock:
            if self.aborted:
                raise StepAborted(ABORTED)
            self._timeout, self._deadline, self._reason = timeout, deadline, None
            self._watchdog = watchdog
            self._entry = watchdog.arm(deadline, self)

    def end(self) -> StepError | None:
        """Finish the request; the error to report if it was stopped, else None."""
        with self._lock:
            entry, self._entry, self._shutdown = self._entry, None, None
        if entry is not None:
            self._watchdog.disarm(entry)
        return self.error()

    def remaining(self) -> float:
        """Seconds left before the deadline; raise the stop error if none are."""
        left = self._deadline - time.monotonic()
        if left <= 0 and self._reason is None:
            self._reason = "timeout"
        self.check()
        return left

    # attach and reading need no lock: a stop that comes between the assignment
    # and the check either shuts the new connection or is seen by the check.
    def attach(self, conn) -> None:
        """Note urllib3 connection ``conn`` as the one in use; raise if stopped."""
        self._shutdown = functools.partial(_shut, conn)
        self.check()

    def reading(self, response) -> None:
        """Note ``response`` (urllib3's) as the one whose body is read next.

        http.client lets go of a connection that closes after its response, so
        from here the response's own ``shutdown`` is what reaches the socket.
        """
        self._shutdown = response.shutdown

    def check(self) -> None:
        """Raise the stop error if the request was stopped."""
        error = self.error()
        if error is not None:
            raise error

    def error(self) -> StepError | None:
        if self._reason == "aborted":
            return StepAborted(ABORTED)
        if self._reason == "timeout":
            return StepTimeout(f"Request timeout after {seconds(self._timeout)}")
        return None

    def abort(self) -> None:
        """Fail the request in flight now, and every later one."""
        self._stop("aborted")

    def expire(self, entry: list) -> None:
        """The watchdog's call at ``entry``'s deadline."""
        self._stop("timeout", entry)

    def _stop(self, reason: str, entry: list | None = None) -> None:
        # Under the lock, so that the request cannot end (and the next one start on
        # the same pooled connection) between the check and the shutdown.
        with self._lock:
            if entry is not None and entry is not self._entry:
                return  # that request is over; this one has its own deadline
            if reason == "aborted":
                self.aborted = True
            if self._reason is None:
                self._reason = reason
            if self._shutdown is not None:
                try:
                    self._shutdown()
                except (OSError, ValueError, RuntimeError):
                    pass  # closed, not connected yet, or back in its pool


def _shut(conn) -> None:
    """Shut ``conn``'s socket down under whoever is reading or writing on it.

    A TLS socket's own ``shutdown`` also drops its TLS state, which a write still
    running in another thread would then trip over; the plain socket's shutdown
    ends the connection the same way and leaves that state alone.
    """
    sock = conn.sock
    if isinstance(sock, socket.socket):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    elif sock is not None:
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread that calls ``Flight.expire`` at each armed deadline.

    Entries are ``[deadline, sequence, flight]``; a finished request's entry is
    only marked (its flight set to None) and dropped when it reaches the top of
    the heap, and the thread sleeps until the earliest deadline still armed, so a
    run of short requests costs a heap push each and no wake-up.

    The heap is guarded by a lock of the OS's own (``real_lock``: its sections
    never switch greenlets), and the thread waits on an event that ``arm`` sets
    only for a deadline earlier than the one it sleeps until. A condition variable
    would do both with gevent's Python-level lock, several times per request, and
    under gevent every ``notify`` gives the hub a turn.
    """

    def __init__(self):
        self._lock = real_lock()
        self._wakeup = threading.Event()  # gevent's, under its monkey-patching
        self._heap: list[list] = []
        self._order = itertools.count()
        self._wake = math.inf  # when the thread wakes next; -inf while it is awake
        self._done = 0  # finished entries still in the heap
        thread = threading.Thread(
            target=self._run, name="flowrun-deadlines", daemon=True
        )
        thread.start()

    def arm(self, deadline: float, flight: Flight) -> list:
        entry = [deadline, next(self._order), flight]
        with self._lock:
            heapq.heappush(self._heap, entry)
            sooner = deadline < self._wake
        if sooner:
            self._wakeup.set()
        return entry

    def disarm(self, entry: list) -> None:
        with self._lock:
            if entry[2] is None:
                return
            entry[2] = None
            self._done += 1
            # Long timeouts and many short requests: keep the heap to the live ones.
            if self._done > 1024 and self._done * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[2] is not None]
                heapq.heapify(self._heap)
                self._done = 0

    def _run(self) -> None:
        while True:
            # Cleared before the heap is read: an entry armed after that read,
            # with an earlier deadline, sets the event and cuts the wait short.
            self._wakeup.clear()
            due, timeout = self._due()
            if due:
                for flight, entry in due:
                    flight.expire(entry)
                continue
            self._wakeup.wait(timeout)
            with self._lock:
                self._wake = -math.inf  # awake: arm() need not set the event

    def _due(self) -> tuple[list, float | None]:
        """Take the entries whose deadline has passed; else note when to wake."""
        due = []
        with self._lock:
            heap = self._heap
            now = time.monotonic()
            while heap and (heap[0][2] is None or heap[0][0] <= now):
                entry = heapq.heappop(heap)
                if entry[2] is None:
                    self._done -= 1
                else:
                    due.append((entry[2], entry))
                    entry[2] = None
            if due:
                return due, None
            self._wake = heap[0][0] if heap else math.inf
            return due, (self._wake - now if heap else None)


_instance: _Watchdog | None = None


def _watchdog() -> _Watchdog:
    """This process's watchdog, started on first use (so after gevent has patched
    threading). No lock: one made at import could be a real lock that a greenlet
    would block the whole process on; two threads racing here start two
    watchdogs, each serving the requests armed with it."""
    global _instance
    if _instance is None:
        _instance = _Watchdog()
    return _instance


def _forget_watchdog() -> None:
    global _instance
    _instance = None  # its thread did not survive the fork


os.register_at_fork(after_in_child=_forget_watchdog)
