"""How a caller steers a run: stop, answers to prompts, ``continue``.

``Controls`` is thread-safe: the web layer, another worker's message or a terminal
calls ``stop``/``answer``/``resume`` while the engine waits in ``ask``,
``wait_continue`` or ``sleep``.

A stop lets the step in flight finish; a forced stop (``stop(force=True)``) also
aborts its request, through the callbacks the engine gave ``on_force``. Once the
engine has decided how the run ends (``seal``), a stop that comes too late to change
it is refused (``stop`` returns False), so that a stop that was accepted always
ends the run ``interrupted``.
"""

from __future__ import annotations

import threading
import time

from flowrun.errors import InputMissing


class Controls:
    """How a caller steers a run; thread-safe, callable from any thread.

    Subclasses may override ``external_stop()`` (consulted synchronously before each
    step, e.g. a stop recorded by another worker) and ``ask()`` (answer prompts
    directly, e.g. on a terminal). ``poll_interval`` bounds how long a wait sleeps
    between calls to ``poll()``, a hook for pulling signals from elsewhere.
    """

    poll_interval: float | None = None

    def __init__(self):
        self.cancelled = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._answers: dict[int, dict] = {}
        self._answered: set[int] = set()
        self.waiting_input: int | None = None  # stepIndex of the pending prompt
        self.waiting_continue = False
        self._continue = False
        self.forced = False
        self._aborts: list = []  # what aborts the request in flight (on_force)
        self._sealed = False
        self._decided = threading.Event()  # set once seal() knows how it ends

    # -- called by whoever steers the run -------------------------------------
    def stop(self, force: bool = False) -> bool:
        """Stop after the step in flight, or with ``force`` abort it now.

        True if the run will end ``interrupted``; False if it had already ended
        otherwise (``seal``), and the stop changes nothing.
        """
        if self._sealed:
            # seal() may still be asking whether a stop was recorded elsewhere:
            # this stop's own record, whose message came first. Its answer
            # decides, so that a refused stop never ends the run interrupted.
            self._decided.wait()
        with self._lock:
            if self._sealed and not self.cancelled.is_set():
                return False
            self.cancelled.set()
            aborts = ()
            if force and not self.forced:
                self.forced = True
                aborts = tuple(self._aborts)
        self._wake.set()
        for abort in aborts:
            abort()
        return True

    def answer(self, step_index: int, values: dict) -> str:
        """Deliver prompt answers: ``ok``, ``answered`` (already) or ``not_waiting``."""
        with self._lock:
            if step_index in self._answered:
                return "answered"
            if self.waiting_input != step_index:
                return "not_waiting"
            self._answers[step_index] = dict(values)
            self._answered.add(step_index)
        self._wake.set()
        return "ok"

    def resume(self) -> bool:
        """Let a paused run go on; False if it was not paused."""
        with self._lock:
            if not self.waiting_continue:
                return False
            self._continue = True
        self._wake.set()
        return True

    # -- called by the engine ---------------------------------------------------
    def on_force(self, abort) -> None:
        """Call ``abort()`` on a forced stop (at once if one came already)."""
        with self._lock:
            self._aborts.append(abort)
            forced = self.forced
        if forced:
            abort()

    def seal(self) -> bool:
        """The run is ending: True if it was stopped (it ends ``interrupted``).

        From now on ``stop`` accepts only what changes nothing: a stop of a run
        that ends otherwise is refused.
        """
        try:
            with self._lock:
                self._sealed = True
                if self.cancelled.is_set():
                    return True
            # A stop recorded elsewhere (another worker) before this check ends
            # the run interrupted; one recorded after it is refused when it is
            # delivered.
            if self.external_stop():
                with self._lock:
                    self.cancelled.set()
                return True
            return False
        finally:
            self._decided.set()

    def expect_input(self, step_index: int) -> None:
        """Accept answers for ``step_index`` from now on (before the prompt is sent).

        The engine calls this before yielding ``input_required``, so an answer that
        arrives before ``ask()`` starts waiting is kept, not refused as not waiting.
        """
        with self._lock:
            self.waiting_input = step_index

    def input_done(self, step_index: int) -> None:
        """Stop accepting answers for ``step_index`` (however ``ask()`` ended)."""
        with self._lock:
            if self.waiting_input == step_index:
                self.waiting_input = None

    def expect_continue(self) -> None:
        """Accept ``resume()`` from now on (before ``paused`` is sent)."""
        with self._lock:
            if not self.waiting_continue:
                self._continue = False
                self.waiting_continue = True

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.external_stop()

    def external_stop(self) -> bool:
        return False

    def poll(self) -> None:
        """Hook: pull stop/answer/continue signals from elsewhere while waiting."""

    def ask(self, step_index: int, prompts: dict, timeout: float) -> dict | None:
        """Wait for answers to a prompt; None if the run was stopped meanwhile."""
        with self._lock:
            self.waiting_input = step_index
        try:
            got = self._wait(lambda: self._answers.pop(step_index, None), timeout)
        finally:
            with self._lock:
                self.waiting_input = None
        if got is _TIMEOUT:
            raise InputMissing(
                f"No answer to the prompt within {timeout:g}s (FLOWRUN_INPUT_TIMEOUT_S)"
            )
        return None if got is _STOPPED else got

    def wait_continue(self, timeout: float | None) -> bool:
        """Wait for ``resume()`` or the timeout; False if the run was stopped."""
        self.expect_continue()

        def resumed():
            with self._lock:
                return True if self._continue else None

        try:
            got = self._wait(resumed, timeout)
        finally:
            with self._lock:
                self.waiting_continue = False
        return got is not _STOPPED

    def sleep(self, seconds: float) -> bool:
        """Sleep, waking early on stop; False if the run was stopped."""
        return self._wait(lambda: None, seconds) is not _STOPPED

    def _wait(self, ready, timeout: float | None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._wake.clear()
            self.poll()
            if self.should_stop():
                return _STOPPED
            value = ready()
            if value is not None:
                return value
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return _TIMEOUT
            step = self.poll_interval
            if remaining is not None:
                step = remaining if step is None else min(step, remaining)
            self._wake.wait(step)


_STOPPED = object()


_TIMEOUT = object()
