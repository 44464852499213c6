"""The jq helper process: runs jq programs for ``flowrun.engine.jq``, one at a time.

Started by ``flowrun.engine.jq`` as a script (``python -P .../jq_helper.py``), not
with ``-m``: ``-m flowrun.engine.jq_helper`` would import the whole flowrun package
(requests, jsonschema, …), tripling the helper's start-up time and memory for
nothing. So this module imports nothing of flowrun.

Arguments: the most bytes of output to send back, and the address space the process
may use (``RLIMIT_AS``): jq allocates as a program asks (``"x" * 1e9`` is a gigabyte
in well under the time limit), and aborts, ending this process, when it cannot.
It is started with an empty environment (and empties what Python adds), and
first moves into a directory that it then removes: jq's ``import "name" as $data``
reads ``name.json`` from the current directory, and there is none.

It writes ``R`` once ready, then answers requests on stdin until end of file.
A request is ``!BII`` (what to do, program bytes, input bytes), the program as
UTF-8, and the input value as JSON text (what ``jq``'s ``input_value`` would make
of it). What to do: 0, run the program on the input; 1, only compile it. A reply
is ``!BI`` (status, payload bytes) and the payload: status 0, the outputs as one
JSON array (empty when only compiling); status 1, the message of the exception jq
raised.
"""

import json
import os
import resource
import signal
import struct
import sys
import tempfile

import jq

REQUEST = struct.Struct("!BII")
REPLY = struct.Struct("!BI")
RUN, COMPILE = 0, 1
CACHED = 256  # compiled programs kept
# jq folds constants as it compiles: a program may hold hundreds of MB. One that
# leaves this process above this size is not kept (nor is anything before it).
KEEP_BELOW_BYTES = 128 << 20

_cache: dict[str, object] = {}  # oldest first


def _compiled(program: str):
    found = _cache.get(program)
    if found is not None:
        return found
    found = jq.compile(program)
    if _resident() > KEEP_BELOW_BYTES:
        _cache.clear()
        return found
    if len(_cache) >= CACHED:
        del _cache[next(iter(_cache))]
    _cache[program] = found
    return found


def _resident() -> int:
    """This process's resident memory in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _nowhere() -> None:
    """Move into a directory that then no longer exists."""
    place = tempfile.mkdtemp(prefix="flowrun-jq-")
    os.chdir(place)
    os.rmdir(place)


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides
    # when this process ends (end of file on stdin, or SIGKILL).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    max_output, memory = int(sys.argv[1]), int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # Started with none, but Python may set LC_CTYPE for itself (PEP 538)
    os.environ.clear()
    _nowhere()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"R")
    stdout.flush()
    while True:
        head = stdin.read(REQUEST.size)
        if len(head) < REQUEST.size:
            return
        what, program_size, input_size = REQUEST.unpack(head)
        program = stdin.read(program_size).decode(errors="surrogatepass")
        text = stdin.read(input_size).decode()
        try:
            compiled = _compiled(program)
            outputs = compiled.input_text(text).all() if what == RUN else []
            status, payload = 0, json.dumps(outputs, separators=(",", ":")).encode()
            if len(payload) > max_output:
                message = (
                    f"output of {len(payload)} bytes, over the limit of {max_output}"
                )
                status, payload = 1, message.encode()
        except MemoryError:
            message = f"out of memory (the limit is {memory >> 20} MiB)"
            status, payload = 1, message.encode()
        except Exception as exc:  # jq raises ValueError for compile and runtime
            status, payload = 1, str(exc).encode(errors="replace")
        stdout.write(REPLY.pack(status, len(payload)) + payload)
        stdout.flush()


if __name__ == "__main__":
    main()
