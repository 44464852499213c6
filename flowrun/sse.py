"""Server-Sent Events: frames, heartbeats, and noticing a client that went away.

A server notices a closed connection only when it writes, so a ``: keep-alive``
comment goes out after ``FLOWRUN_HEARTBEAT_S`` seconds of silence. Where the server
exposes the client socket (``gunicorn.socket``, ``werkzeug.socket``) an end-of-file
watch notices a close within milliseconds, even while a step or a prompt waits:
under gevent an I/O watcher on the hub's event loop (no greenlet, no timer per
stream, so 10,000 idle streams cost nothing), elsewhere ONE ``select.poll()`` thread
per process (``select.select`` fails for descriptors >= 1024).
"""

from __future__ import annotations

import _socket
import logging
import os
import queue
import select
import socket
import threading
import time

from .executions import DONE, GONE
from .green import gevent_active

log = logging.getLogger("flowrun")
KEEPALIVE = b": keep-alive\n\n"
_BATCH = 64
# A stream that wrote less than _HOT_S ago waits _GATHER_S before its next write, so
# that the frames of fast steps go out together: one write (a system call, a wake-up
# of the reader) for several events, at most 2 ms later. Slow steps, whose events
# are far apart, are written at once. Not after events that nothing follows soon.
_HOT_S = 0.005
_GATHER_S = 0.002
_LAST_FOR_NOW = frozenset(("end", "input_required", "paused"))
# Events whose rows (a step, an execution's end) wait for the store's group commit.
_RECORDED = frozenset(("step", "end"))


def headers(execution_id: str) -> dict:
    return {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "X-Execution-Id": execution_id,
    }


def frame(seq: int, name: str, data: str) -> str:
    """One SSE frame; ``data`` is one line of JSON."""
    return f"id: {seq}\nevent: {name}\ndata: {data}\n\n"


def stream(execution, heartbeat: float, environ: dict | None = None):
    """Yield the execution's events as SSE frames until ``end`` or the client leaves.

    The generator's ``finally`` (run on ``GeneratorExit`` when a write fails, or when
    the response is closed) tells the execution that its client is gone.
    """
    unwatch = (
        watch(environ, execution.client_gone, execution.state) if environ else None
    )
    get = execution.queue.get
    flush = execution.state.store.flush  # steps are recorded before they are shown
    seq = 0
    last_write = -_HOT_S
    try:
        while True:
            try:
                item = get(timeout=heartbeat)
            except queue.Empty:
                yield KEEPALIVE
                continue
            if item is DONE or item is GONE:
                return
            if item[0] not in _LAST_FOR_NOW and time.monotonic() - last_write < _HOT_S:
                # Events are coming fast (steps against a quick API): gather the
                # next few for one write instead of one write each.
                time.sleep(_GATHER_S)
            # Events that are already queued go out in one write.
            seq += 1
            out = [frame(seq, *item)]
            taken = len(item[1])
            recorded = item[0] in _RECORDED
            done = False
            for _ in range(_BATCH):
                try:
                    item = get(block=False)
                except queue.Empty:
                    break
                if item is DONE or item is GONE:
                    done = True
                    break
                seq += 1
                out.append(frame(seq, *item))
                taken += len(item[1])
                recorded = recorded or item[0] in _RECORDED
            if recorded:  # what the event shows is in the history first
                flush()
            yield "".join(out).encode()
            last_write = time.monotonic()
            execution.pending -= taken  # written: the client is reading
            if done:
                return
    finally:
        if unwatch is not None:
            unwatch()
        execution.client_gone()


# -- end-of-file watch on the client socket -------------------------------------------
def watch(environ: dict, on_close, state):
    """Call ``on_close()`` once the client closes its socket; return an unwatch.

    Returns None when the server does not expose the socket. ``state`` (the app's
    shared state) holds this process's poll thread when one is needed.
    """
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is None:
        return None
    try:
        fd = sock.fileno()
    except (OSError, ValueError):
        return None
    if fd < 0:
        return None
    raw = getattr(sock, "_sock", sock)  # gevent wraps the real socket
    if gevent_active():
        return _GeventWatch(fd, raw, on_close).cancel
    return _poll_thread(state).add(fd, raw, on_close)


def _closed(raw) -> bool | None:
    """True at end of file, False if the client sent data, None if unknown yet."""
    try:
        # The C-level method: gevent replaces socket.socket, and this may run in
        # gevent's hub, where nothing may wait.
        data = _socket.socket.recv(raw, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return True
    return data == b""


class _GeventWatch:
    """An I/O watcher on gevent's loop; its callback runs in the hub."""

    def __init__(self, fd, raw, on_close):
        import gevent

        self.raw = raw
        self.on_close = on_close
        self.watcher = gevent.get_hub().loop.io(fd, 1)  # 1 = READ
        self.watcher.start(self._ready)

    def _ready(self):
        closed = _closed(self.raw)
        if closed is None:
            return
        # Data (a pipelined request) or EOF: either way stop watching; heartbeats
        # still bound detection in the data case.
        self.cancel()
        if closed:
            import gevent

            gevent.spawn(self.on_close)

    def cancel(self):
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()


class _PollThread:
    """One ``select.poll()`` thread per process for all watched sockets."""

    MASK = select.POLLIN | select.POLLHUP | getattr(select, "POLLRDHUP", 0)

    def __init__(self):
        self.poller = select.poll()
        self.watched: dict[int, tuple] = {}
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.poller.register(self.wake_r, select.POLLIN)
        threading.Thread(target=self._loop, name="flowrun-eof", daemon=True).start()

    def add(self, fd, raw, on_close):
        token = object()
        with self.lock:
            self.watched[fd] = (raw, on_close, token)
            self.poller.register(fd, self.MASK)
        self._wake()

        def cancel():
            with self.lock:
                entry = self.watched.get(fd)
                if entry is not None and entry[2] is token:
                    del self.watched[fd]
                    try:
                        self.poller.unregister(fd)
                    except (KeyError, ValueError, OSError):
                        pass
            self._wake()

        return cancel

    def _wake(self) -> None:
        # A poll() in progress does not see a change of its set: interrupt it.
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:
            pass

    def _loop(self):
        while True:
            ready = self.poller.poll()
            closed_now = []
            with self.lock:
                for fd, _mask in ready:
                    if fd == self.wake_r:
                        os.read(self.wake_r, 4096)
                        continue
                    entry = self.watched.get(fd)
                    if entry is None:
                        continue
                    closed = _closed(entry[0])
                    if closed is None:
                        continue
                    del self.watched[fd]
                    self.poller.unregister(fd)
                    if closed:
                        closed_now.append(entry[1])
            for on_close in closed_now:
                try:
                    on_close()
                except Exception:
                    log.exception("close callback failed")


def _poll_thread(state) -> _PollThread:
    with state.lock:
        if state.eof_poller is None or state.eof_poller[0] != os.getpid():
            state.eof_poller = (os.getpid(), _PollThread())
    return state.eof_poller[1]
