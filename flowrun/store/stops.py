"""The stop generation: a counter every process of the host maps, moved by each stop.

An execution reads the ``controls`` table before a step only when the counter moved
since it last found no stop there. The file sits next to the database and, like its
``-wal``/``-shm`` files, must not be removed while workers run.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path


class StopCounter:
    """A 64-bit counter in a small file every process of the host maps (mmap).

    Reading it is a memory read, no system call and no SQL; ``bump`` increments it
    under an exclusive ``flock`` so that concurrent increments are not lost.
    """

    _U64 = struct.Struct("<Q")

    def __init__(self, path: Path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Growing to 8 bytes zero-fills; a file another process grew (and
            # maybe counted in) already is that size and keeps its value.
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)
            self._map = mmap.mmap(fd, 8)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def read(self) -> int:
        return self._U64.unpack_from(self._map)[0]

    def bump(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            value = (self.read() + 1) & 0xFFFFFFFFFFFFFFFF
            self._U64.pack_into(self._map, 0, value)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
