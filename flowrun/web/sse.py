"""Server-Sent Events: the frames of one execution's stream, and its heartbeats.

A server notices a closed connection only when it writes, so a ``: keep-alive``
comment goes out after ``FLOWRUN_HEARTBEAT_S`` seconds of silence; where the server
exposes the client socket, ``flowrun.web.disconnect`` notices a close at once.
Events that are already queued leave in one write, and a step's row is committed to
history before its event is written (docs/design.md).
"""

from __future__ import annotations

import queue
import time

from flowrun import metrics
from flowrun.web.executions import DONE, GONE

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
    disconnects = execution.state.disconnects
    unwatch = disconnects.watch(environ, execution.client_gone) if environ else None
    metrics.LIVE_STREAMS.inc()
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
            # Event data is JSON from flowrun.jsontext, which escapes lone
            # surrogates; should one slip through, its backslash escape is the
            # same JSON escape (a surrogate can only sit inside a JSON string).
            yield "".join(out).encode("utf-8", "backslashreplace")
            last_write = time.monotonic()
            execution.pending -= taken  # written: the client is reading
            if done:
                return
    finally:
        metrics.LIVE_STREAMS.dec()
        if unwatch is not None:
            unwatch()
        execution.client_gone()
