"""Run jq programs in helper processes that can be killed when they run too long.

The jq library evaluates a program in C and holds the GIL throughout: in-process,
``last(range(1e9))`` or ``def f: f; f`` would freeze the whole gevent worker, every
stream on it, with no way to stop it. So programs run in a helper process
(``jq_helper.py``), at most ``POOL_SIZE`` per process, each started on first use
(never at import: gunicorn forks its workers, and a process that finds itself
forked starts its own). Waiting for a reply yields to other greenlets under gevent,
and is a ``poll`` elsewhere. A helper that runs past the time limit is killed, and
the next call starts a fresh one.

A helper may use MEMORY_LIMIT_BYTES of address space and send back at most
MAX_OUTPUT_BYTES of output: ``"x" * 1e9`` takes jq well under the time limit, and
its gigabyte would otherwise land in the server process. Over the memory limit jq
aborts, which ends the helper. Programs are compiled there too, also to check a
flow (``jq_error``): jq folds constants as it compiles (``"x1" * 200000000`` is
400 MB), so no program is ever compiled, or kept, in the server process.

A helper starts with an empty environment in a directory that no longer exists:
jq's ``$ENV`` and ``env`` see nothing of the server's (its token, its keys), and
``import "name" as $data`` finds no JSON file of the server's.

    JqFailure
    ├── JqError        jq rejected the program or failed running it (jq's message),
    │                  or its output was over the limit
    ├── JqTimeout      the program ran past the time limit; its helper was killed
    └── JqHelperDied   the helper process ended (jq out of memory, or a crash)
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from flowrun.engine.budget import Budget
from flowrun.green import gevent_active

CHILD = str(Path(__file__).with_name("jq_helper.py"))
POOL_SIZE = 2  # helpers per process: one stuck program does not queue the others
START_TIMEOUT_S = 10.0  # a helper's start-up (Python, import jq), outside the limit
# The limit is for running the program; jq first reads its input, at some 20 MB/s
# on a laptop, so a body near FLOWRUN_MAX_VALIDATE_BYTES (16 MB) takes most of a
# second to read and pass over. Reading gets time of its own, generously.
READ_BYTES_PER_S = 4_000_000
# Room for `.` on a body at FLOWRUN_MAX_VALIDATE_BYTES' default (16 MiB) and more;
# not for a gigabyte.
MAX_OUTPUT_BYTES = 32 * 1024 * 1024
MEMORY_LIMIT_BYTES = 1 << 30  # a helper's address space; idle it uses ~16 MiB
TIMEOUT_S = 1.0  # a program's limit when no budget is given; compiling one's
_RUN, _COMPILE = 0, 1  # jq_helper.REQUEST: !BII (what to do, program, input)
_REPLY_HEAD = 5  # jq_helper.REPLY: !BI


class JqFailure(Exception):
    """A jq program produced no outputs."""


class JqError(JqFailure):
    """jq rejected the program or failed running it; the message is jq's."""


class JqTimeout(JqFailure):
    """The program ran longer than its time limit."""

    def __init__(self, seconds: float):
        super().__init__(f"gave up after {seconds:g}s")
        self.seconds = seconds


class JqHelperDied(JqFailure):
    """The helper process ended while it had a program to run."""


class _Gone(Exception):
    """The helper closed its pipes (it exited or was killed)."""


def run_jq(
    program: str, value, *, timeout: float = TIMEOUT_S, budget: Budget | None = None
) -> list:
    """All outputs of ``program`` on ``value``, as ``jq``'s ``.all()`` gives them.

    The program gets ``timeout`` seconds, or with ``budget`` what is left of it
    once a helper is free (and the budget is charged the program's running time;
    waiting for a helper and reading the input are not counted).
    Raises JqError, JqTimeout or JqHelperDied.
    """
    # jq's input_value() is input_text(json.dumps(value)): the same text, made once
    text = json.dumps(value).encode()
    request = _frame(_RUN, _utf8(program), text)
    if budget is None:
        return _pool().run(request, timeout, len(text))
    with budget.elsewhere():
        return _pool().run(request, timeout, len(text), budget)


def jq_error(program: str, *, timeout: float = TIMEOUT_S) -> str | None:
    """jq's message if ``program`` does not compile, else None (JqTimeout,
    JqHelperDied when the helper gives up on it)."""
    try:
        _pool().run(_frame(_COMPILE, _utf8(program), b""), timeout, 0)
    except JqError as exc:
        return str(exc)
    return None


def _utf8(program: str) -> bytes:
    # a lone surrogate (valid JSON) gets as far as jq, which refuses it
    return program.encode(errors="surrogatepass")


def _frame(what: int, program: bytes, text: bytes) -> bytes:
    head = bytes([what]) + len(program).to_bytes(4, "big")
    return head + len(text).to_bytes(4, "big") + program + text


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> _Pool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            if _POOL is not None:
                _POOL.forget()  # forked: those helpers belong to the parent
            else:
                atexit.register(_close_pool)
            _POOL = _Pool()
        return _POOL


def _close_pool() -> None:
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()


class _Pool:
    """Up to POOL_SIZE helpers of one process; each serves one call at a time."""

    def __init__(self):
        self.pid = os.getpid()
        # created in the worker, after gevent patched threading: cooperative there
        self.slots = threading.BoundedSemaphore(POOL_SIZE)
        self.idle: list[_Helper] = []

    def run(self, request: bytes, timeout: float, input_size: int, budget=None):
        with self.slots:
            if budget is not None:
                timeout = budget.left()
                if timeout <= 0:
                    raise JqTimeout(0)
            began = time.monotonic()
            try:
                status, payload = self._call(request, timeout, input_size)
            finally:
                if budget is not None:
                    reading = input_size / READ_BYTES_PER_S
                    budget.charge(max(0.0, time.monotonic() - began - reading))
        if status:
            raise JqError(payload.decode())
        return json.loads(payload)

    def _call(self, request: bytes, timeout: float, input_size: int):
        """``(status, payload)`` from an idle or a new helper (a slot is held)."""
        try:
            helper = self.idle.pop()
        except IndexError:  # (checking first would race with other threads)
            helper = None
        for attempt in (1, 2):
            if helper is None:
                helper = _Helper()
            try:
                status, payload = helper.call(request, timeout, input_size)
                break
            except _Gone:
                code = helper.kill()
                helper = None
                if code == -signal.SIGABRT:  # jq's answer to a failed allocation
                    raise JqHelperDied(
                        "jq aborted, as it does when it runs out of memory "
                        f"(the limit is {MEMORY_LIMIT_BYTES >> 20} MiB)"
                    ) from None
                if attempt == 2:
                    raise JqHelperDied(
                        f"the jq helper process ended (exit status {code}) "
                        "twice while running this program"
                    ) from None
            except BaseException:
                # JqTimeout, or interrupted mid-call (the greenlet killed, ^C):
                # a reply may still come, so this helper can serve no other call
                helper.kill()
                raise
        self.idle.append(helper)
        return status, payload

    def forget(self) -> None:
        """Drop helpers inherited through fork(), without touching the processes."""
        for helper in self.idle:
            helper.close_fds()
        self.idle = []

    def close(self) -> None:
        while self.idle:
            self.idle.pop().kill()


class _Helper:
    """One jq helper process and its two pipes (non-blocking on our side)."""

    def __init__(self):
        to_child, self.wfd = os.pipe()
        self.rfd, from_child = os.pipe()
        try:
            # stderr is inherited: a crash's traceback lands in the server's log
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-P",
                    CHILD,
                    str(MAX_OUTPUT_BYTES),
                    str(MEMORY_LIMIT_BYTES),
                ],
                stdin=to_child,
                stdout=from_child,
                env={},  # nothing of the server's environment reaches jq's $ENV
            )
        except BaseException:
            os.close(self.wfd)
            os.close(self.rfd)
            raise
        finally:
            os.close(to_child)
            os.close(from_child)
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)
        try:
            ready = self._read(1, time.monotonic() + START_TIMEOUT_S)
        except (_Gone, _Expired):
            code = self.kill()
            raise JqHelperDied(
                f"the jq helper process did not start (exit status {code})"
            ) from None
        if ready != b"R":
            self.kill()
            raise JqHelperDied("the jq helper process did not start")

    def call(self, request: bytes, timeout: float, input_size: int):
        """Send one request, return ``(status, payload)``; JqTimeout, _Gone."""
        deadline = time.monotonic() + timeout + input_size / READ_BYTES_PER_S
        try:
            self._write(request, deadline)
            head = self._read(_REPLY_HEAD, deadline)
            size = int.from_bytes(head[1:], "big")
            if size > MAX_OUTPUT_BYTES + 1024:  # the helper checks; this is a backstop
                raise _Gone
            return head[0], self._read(size, deadline)
        except _Expired:
            raise JqTimeout(timeout) from None

    def _write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.wfd, view) :]
            except BlockingIOError:
                _wait(self.wfd, True, deadline)
            except BrokenPipeError:
                raise _Gone from None

    def _read(self, size: int, deadline: float) -> bytes:
        chunks, left = [], size
        while left:
            try:
                chunk = os.read(self.rfd, min(left, 1 << 20))
            except BlockingIOError:
                _wait(self.rfd, False, deadline)
                continue
            if not chunk:
                raise _Gone
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def kill(self) -> int | None:
        """SIGKILL the helper, reap it, close the pipes; return its exit status."""
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        code = self.proc.wait()
        self.close_fds()
        return code

    def close_fds(self) -> None:
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass


class _Expired(Exception):
    """The deadline passed while waiting on a pipe."""


def _wait(fd: int, write: bool, deadline: float) -> None:
    """Wait until ``fd`` is ready or ``deadline``; other greenlets run meanwhile."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Expired
    if gevent_active():
        from gevent.socket import wait_read, wait_write

        try:
            (wait_write if write else wait_read)(fd, timeout=left)
        except TimeoutError:
            raise _Expired from None
        return
    # poll, not select: a busy process has descriptors above select's 1024
    poller = select.poll()
    poller.register(fd, select.POLLOUT if write else select.POLLIN)
    if not poller.poll(left * 1000):
        raise _Expired
