"""Execution history in PostgreSQL, shared by several hosts (``FLOWRUN_DATABASE_URL``).

``PgStore`` is ``Store`` (``flowrun.store.history``) on ``flowrun.store.postgres``:
the same rows, group commits and retention, read the same way by the API. What
differs: the statements PostgreSQL spells its own way, one host pruning at a time,
and how runs left ``running`` by a dead process are found (``flowrun.store.leases``
instead of asking the local system whether a process id is alive).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable

from flowrun.store.history import _INSERT_EXECUTION, Store
from flowrun.store.leases import Leases
from flowrun.store.postgres import Database

_UPSERT = (
    " ON CONFLICT (exec_seq, step_index) DO UPDATE "
    "SET status = EXCLUDED.status, record = EXCLUDED.record"
)
# Pruning takes this lock for its transaction; a host that finds it taken skips
# its turn rather than wait or delete the same rows at the same moment.
PRUNE_LOCK = 0x666C6F77707275  # "flowpru"


class PgStore(Store):
    """The history of every host sharing the database at ``url``."""

    INSERT_STEP = "INSERT INTO steps VALUES (?, ?, ?, ?)" + _UPSERT
    INSERT_NOT_RUN = "INSERT INTO steps VALUES (?, ?, 'not_run', ?)" + _UPSERT
    SETTING = "FLOWRUN_DATABASE_URL"
    REMEDY = "check that PostgreSQL is up, reachable and has room on its disk"

    def __init__(
        self,
        url: str,
        history_limit: int = 1000,
        defer: Callable[[Callable[[], None]], object] | None = None,
        lease_s: float = 15.0,
    ):
        self.lease_s = lease_s
        super().__init__(url, history_limit, defer)
        self.leases.start(self.reap)

    def _open(self, url) -> None:
        self.db = Database(url)
        # Unique across hosts and over time: a process id is reused, and two
        # hosts may share a name (containers).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leases = Leases(self.db, self.owner, self.lease_s)

    def close(self) -> None:
        self.flush()
        self.leases.close()
        self.db.close()

    def _unfit(self) -> str | None:
        """Nothing: the server, not this host's disk, holds the database."""
        return None

    def writable(self) -> str | None:
        """As ``Store.writable``; after a failed write, first whether the server
        answers at all (within ``HEALTH_TIMEOUT_S``, not the pool's 30 s)."""
        if self.write_error is None:
            return None
        return self.db.health() or super().writable()

    def health(self) -> str | None:
        problem = super().health()
        if problem is None and self.leases.last_error is not None:
            problem = f"renewing this process's lease failed: {self.leases.last_error}"
        return problem

    @staticmethod
    def _insert_execution(db, values: tuple) -> int:
        return db.execute(_INSERT_EXECUTION + " RETURNING seq", values).fetchone()[0]

    def _prune(self, db, keep: int) -> None:
        if db.execute("SELECT pg_try_advisory_xact_lock(?)", (PRUNE_LOCK,)).fetchone()[
            0
        ]:
            super()._prune(db, keep)

    def reap(self) -> int:
        """Mark ``interrupted`` the runs of processes whose lease has expired."""
        reaped = 0
        for owner, ids in self.leases.orphans().items():
            reaped += self.abandon(
                ids,
                f"its server process ({owner}) stopped renewing its lease: the host "
                "or the process died, or lost the database",
            )
        return reaped
