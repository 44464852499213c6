"""The control channel in PostgreSQL: stop, answers and ``continue`` across hosts.

Like ``SQLiteChannel`` (``flowrun.store.control``) a control is a row of the
``controls`` table, so the first answer to a prompt wins (``UNIQUE``) and a stop is
on record before the stop request is answered; the execution reads that record
before every step, and its holder writes on the stop's row whether the stop came in
time, which the stop request waits for (a 202 always ends ``interrupted``). A forced
stop also aborts the request in flight, whichever host holds it. Secret prompt
answers wait sealed (``flowrun.store.sealing``), and every answer is forgotten once
delivered. Delivery is not polled: the row's transaction also sends a ``NOTIFY``,
which PostgreSQL delivers on commit to every process ``LISTEN``\\ ing, and the one
holding the execution reads the row at once.
"""

from __future__ import annotations

import logging
import time

from flowrun.jsontext import dumps as _dumps
from flowrun.store.control import DAY, _Rows
from flowrun.store.gather import Gathered

log = logging.getLogger("flowrun")
CHANNEL = "flowrun_control"
_PRUNE_EVERY = 20
_SEEN_MAX = 10_000  # row ids remembered, so a row read twice is delivered once


class PgChannel(_Rows):
    """Controls as rows in PostgreSQL, announced with LISTEN/NOTIFY."""

    _SET_KEY = (
        "INSERT INTO controls (execution_id, kind, step_index, payload, created) "
        "VALUES (?, 'seal', ?, ?, ?) ON CONFLICT (execution_id, kind, step_index) "
        "DO UPDATE SET payload = EXCLUDED.payload, created = EXCLUDED.created"
    )

    def __init__(self, store, registry):
        super().__init__(store, registry)
        self._added = 0
        self._seen: dict[int, None] = {}
        self._since = time.time()
        self.listening = False
        self.last_error: str | None = None
        # Runs about to start a step ask together (flowrun.store.gather).
        self._stops = Gathered(self._stopped)

    # -- what the API asks
    def stop_requested(self, execution_id: str) -> bool:
        return self._stops.ask(execution_id)

    def _stopped(self, execution_ids) -> set[str]:
        """Which of these executions have a stop on record."""
        rows = self.db.run(
            lambda db: db.execute(
                "SELECT DISTINCT execution_id FROM controls "
                "WHERE kind = 'stop' AND execution_id = ANY(?)",
                (list(execution_ids),),
            ).fetchall()
        )
        return {row[0] for row in rows}

    def health(self) -> str | None:
        """Why controls may not reach this process now, or None."""
        if self.last_error is not None and not self.listening:
            return f"not listening for controls: {self.last_error}"
        return None

    # -- the table
    def _add(self, execution_id, kind, step_index=-1, payload=None) -> bool:
        """Insert a control row and announce it; False if (kind, step) was there."""
        created = time.time()
        args = (
            execution_id,
            kind,
            step_index,
            None if payload is None else _dumps(payload),
            created,
        )
        self._added += 1
        prune = self._added % _PRUNE_EVERY == 1

        def work(db):
            if prune:
                db.execute("DELETE FROM controls WHERE created < ?", (created - DAY,))
            row = db.execute(
                "INSERT INTO controls (execution_id, kind, step_index, payload, "
                "created) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                args,
            ).fetchone()
            if row is None:
                return False
            # Delivered when this transaction commits, so the row is there.
            db.execute("SELECT pg_notify(?, ?)", (CHANNEL, f"{row[0]} {execution_id}"))
            return True

        return self.db.run(work, write=True)

    def _deliver_rows(self, rows) -> None:
        for row in rows:
            row_id = row[0]
            if row_id in self._seen:
                continue
            self._seen[row_id] = None
            if len(self._seen) > _SEEN_MAX:
                del self._seen[next(iter(self._seen))]
            self._deliver_row(row)

    def _read(self, sql: str, args) -> list:
        return self.db.run(
            lambda db: db.execute(
                "SELECT id, execution_id, kind, step_index, payload, created "
                "FROM controls WHERE " + sql,
                args,
            ).fetchall()
        )

    def _notified(self, payload: str) -> None:
        row_id, _, execution_id = payload.partition(" ")
        if self.registry.get(execution_id) is None:
            return  # another process holds it
        self._deliver_rows(self._read("id = ?", (int(row_id),)))

    def _catch_up(self) -> None:
        """Deliver controls that came while this process was not listening."""
        live = list(self.registry.live)
        if live:
            rows = self._read(
                "execution_id = ANY(?) AND created >= ? ORDER BY id",
                (live, self._since - 1),
            )
            self._deliver_rows(rows)

    def _loop(self) -> None:
        while not self.closed:
            conn = None
            try:
                conn = self.db.connect()
                conn.execute("LISTEN " + CHANNEL)
                self.listening, self.last_error = True, None
                self._catch_up()
                while not self.closed:
                    for notify in conn.notifies(timeout=1.0):
                        self._notified(notify.payload)
                    self._retry_history(self.store)
            except Exception as exc:
                if self.closed:
                    return
                self.listening = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("control channel: %s; listening again", self.last_error)
                time.sleep(1)
            finally:
                if conn is not None:
                    conn.close()
