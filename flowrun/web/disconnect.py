"""Noticing, within milliseconds, that a client closed its connection.

A server notices a closed connection only when it writes (SSE heartbeats bound that
to about two heartbeats). Where the server exposes the client socket
(``gunicorn.socket``, ``werkzeug.socket``), ``DisconnectWatch.watch`` calls back as
soon as the peer hangs up, even while a step or a prompt waits:

- under gevent, an I/O watcher on the hub's event loop: no greenlet and no timer
  per connection, so 10,000 idle streams cost nothing;
- elsewhere (threads: the development server, tests), ONE ``select.poll()`` thread
  per process for every watched socket (``select.select`` fails for descriptors
  >= 1024).

Whether a readable socket was closed is asked of the OS's ``poll`` with
``POLLRDHUP`` (the peer hung up) without reading anything from it.
"""

from __future__ import annotations

import logging
import os
import select
import threading

from flowrun.green import gevent_active, os_poll

log = logging.getLogger("flowrun")
_HUNG_UP = select.POLLHUP | select.POLLERR | select.POLLNVAL | select.POLLRDHUP
_WATCHED = select.POLLIN | select.POLLRDHUP


class DisconnectWatch:
    """This process's watch over client sockets (one per worker, on its State)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._poll_thread: tuple[int, _PollThread] | None = None

    def watch(self, environ: dict, on_close):
        """Call ``on_close()`` once the client closes its socket; return an unwatch.

        Returns None when the server does not expose the socket.
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
        if gevent_active():
            return _GeventWatch(fd, on_close).cancel
        return self._thread().add(fd, on_close)

    def _thread(self) -> _PollThread:
        # One thread per process, started on first use (after gunicorn's fork).
        with self._lock:
            if self._poll_thread is None or self._poll_thread[0] != os.getpid():
                self._poll_thread = (os.getpid(), _PollThread())
            return self._poll_thread[1]


def closed(fd: int) -> bool | None:
    """True if the peer hung up, False if it sent data, None if neither (yet)."""
    poller = os_poll()
    poller.register(fd, _WATCHED)
    ready = poller.poll(0)
    if not ready:
        return None
    return bool(ready[0][1] & _HUNG_UP)


class _GeventWatch:
    """An I/O watcher on gevent's loop; its callback runs in the hub."""

    def __init__(self, fd, on_close):
        import gevent

        self.fd = fd
        self.on_close = on_close
        self.watcher = gevent.get_hub().loop.io(fd, 1)  # 1 = READ
        self.watcher.start(self._ready)

    def _ready(self):
        hung_up = closed(self.fd)
        if hung_up is None:
            return
        # Data (a pipelined request) or EOF: either way stop watching; heartbeats
        # still bound detection in the data case.
        self.cancel()
        if hung_up:
            import gevent

            gevent.spawn(self.on_close)

    def cancel(self):
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()


class _PollThread:
    """One ``select.poll()`` thread per process for all watched sockets."""

    def __init__(self):
        self.poller = select.poll()
        self.watched: dict[int, tuple] = {}
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.poller.register(self.wake_r, select.POLLIN)
        threading.Thread(target=self._loop, name="flowrun-eof", daemon=True).start()

    def add(self, fd, on_close):
        token = object()
        with self.lock:
            self.watched[fd] = (on_close, token)
            self.poller.register(fd, _WATCHED)
        self._wake()

        def cancel():
            with self.lock:
                entry = self.watched.get(fd)
                if entry is not None and entry[1] is token:
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
                for fd, mask in ready:
                    if fd == self.wake_r:
                        os.read(self.wake_r, 4096)
                        continue
                    entry = self.watched.pop(fd, None)
                    if entry is None:
                        continue
                    # Data (a pipelined request) or a hang-up: stop watching.
                    self.poller.unregister(fd)
                    if mask & _HUNG_UP:
                        closed_now.append(entry[0])
            for on_close in closed_now:
                try:
                    on_close()
                except Exception:
                    log.exception("close callback failed")
