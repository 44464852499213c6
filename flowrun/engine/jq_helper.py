"""The jq helper process: runs jq programs for ``flowrun.engine.jq``, one at a time.

Started by ``flowrun.engine.jq`` as a script (``python -P .../jq_helper.py``), not
with ``-m``: ``-m flowrun.engine.jq_helper`` would import the whole flowrun package
(requests, jsonschema, …), tripling the helper's start-up time and memory for
nothing. So this module imports nothing of flowrun.

Arguments: the most bytes of output to send back, and the address space the process
may use (``RLIMIT_AS``): jq allocates as a program asks (``"x" * 1e9`` is a gigabyte
in well under the time limit), and aborts, ending this process, when it cannot.

It writes ``R`` once ready, then answers requests on stdin until end of file.
A request is ``!II`` (program bytes, input bytes), the program as UTF-8, and the
input value as JSON text (what ``jq``'s ``input_value`` would make of it). A reply
is ``!BI`` (status, payload bytes) and the payload: status 0, the outputs as one
JSON array; status 1, the message of the exception jq raised.
"""

import json
import resource
import signal
import struct
import sys
from functools import lru_cache

import jq

REQUEST = struct.Struct("!II")
REPLY = struct.Struct("!BI")


@lru_cache(maxsize=512)
def _compile(program: str):
    return jq.compile(program)


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides
    # when this process ends (end of file on stdin, or SIGKILL).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    max_output, memory = int(sys.argv[1]), int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"R")
    stdout.flush()
    while True:
        head = stdin.read(REQUEST.size)
        if len(head) < REQUEST.size:
            return
        program_size, input_size = REQUEST.unpack(head)
        program = stdin.read(program_size).decode()
        text = stdin.read(input_size).decode()
        try:
            outputs = _compile(program).input_text(text).all()
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
