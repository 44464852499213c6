"""Leases: how the hosts sharing a PostgreSQL database notice that one of them died.

Each server process holds a lease, a row ``(owner, expires)`` that it renews every
third of ``FLOWRUN_LEASE_S``; its runs carry the same owner. A host that is killed,
loses power or loses the database stops renewing, and once its lease has expired
any other process marks its runs that are still ``running`` as ``interrupted``, with
the reason. Expiry is judged by the database's clock, so the hosts' clocks need not
agree. A process that finds its own lease expired (it was stalled longer than a
lease) stops its runs after their steps in flight, as the others have recorded them
ended, then takes a new lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("flowrun")

_RENEW = (
    "UPDATE leases SET expires = now() + make_interval(secs => ?) "
    "WHERE owner = ? AND expires > now()"
)
_TAKE = (
    "INSERT INTO leases (owner, expires) VALUES (?, now() + make_interval(secs => ?)) "
    "ON CONFLICT (owner) DO UPDATE SET expires = EXCLUDED.expires"
)
_ORPHANS = (
    "SELECT e.id, e.owner FROM executions e WHERE e.status = 'running' AND NOT EXISTS "
    "(SELECT 1 FROM leases l WHERE l.owner = e.owner AND l.expires > now())"
)
# Leases expired this long ago have no runs left to reap: their rows go.
_FORGET = "DELETE FROM leases WHERE expires < now() - interval '1 day'"


class Leases:
    """This process's lease, renewed by a thread (a greenlet under gevent)."""

    def __init__(self, db, owner: str, lease_s: float):
        self.db = db
        self.owner = owner
        self.lease_s = float(lease_s)
        self.on_lost: Callable[[], None] | None = None
        self.last_error: str | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.take()

    def take(self) -> None:
        self.db.run(lambda db: db.execute(_TAKE, (self.owner, self.lease_s)))

    def renew(self) -> bool:
        """Extend the lease; False if it had expired (see ``take``)."""
        return bool(
            self.db.run(
                lambda db: db.execute(_RENEW, (self.lease_s, self.owner)).rowcount
            )
        )

    def orphans(self) -> dict[str, list[str]]:
        """Running executions whose owner's lease has expired, by owner."""
        rows = self.db.run(lambda db: db.execute(_ORPHANS).fetchall())
        by_owner: dict[str, list[str]] = {}
        for execution_id, owner in rows:
            by_owner.setdefault(owner or "unknown", []).append(execution_id)
        return by_owner

    def start(self, reap: Callable[[], object]) -> None:
        """Renew the lease and ``reap()`` orphans every third of a lease."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._loop, args=(reap,), name="flowrun-lease", daemon=True
        )
        self._thread.start()

    def _loop(self, reap) -> None:
        while not self._closed.wait(self.lease_s / 3):
            try:
                if not self.renew():
                    log.error(
                        "this process's lease (%s) had expired: its runs are "
                        "recorded interrupted, as any other host would; stopping them",
                        self.owner,
                    )
                    reap()  # this process's runs too, before the lease is back
                    self.take()
                    if self.on_lost is not None:
                        self.on_lost()
                reap()
                self.db.run(lambda db: db.execute(_FORGET))
                self.last_error = None
            except Exception as exc:  # the database is away: try again later
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("renewing the lease failed: %s", self.last_error)

    def close(self) -> None:
        """Stop renewing and give the lease up (the process's runs have ended)."""
        self._closed.set()
        deadline = time.monotonic() + 5
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.db.run(
                lambda db: db.execute(
                    "DELETE FROM leases WHERE owner = ?", (self.owner,)
                )
            )
        except Exception:  # the database is gone: the lease expires on its own
            log.warning("giving up the lease failed", exc_info=True)
