"""The SQLite database of a data directory: one connection per process, its schema
and migrations, and retries while another worker holds the file.

Every gunicorn worker of a host opens the same file (WAL mode). SQLite calls do not
yield under gevent, so one shared connection guarded by a lock costs nothing extra
and keeps memory flat with thousands of executions. A busy file is retried here,
sleeping cooperatively: SQLite's own busy handler sleeps in C and would stall a
whole gevent worker while another worker writes.

Tables: ``executions`` (one row per run, with the pending prompt / pause so that any
worker can answer control requests), ``steps`` (one record per step, ``not_run``
entries added at the end) and ``controls`` (the cross-worker control channel).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from flowrun.green import real_sleep

DB_NAME = "flowrun.sqlite3"
BUSY_TIMEOUT_S = 10.0
BUSY_SPIN_S = 0.002  # how long a busy file is waited for without yielding

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    flow_name TEXT,
    status TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    total_steps INTEGER,
    prompt_step INTEGER,
    paused_step INTEGER,
    summary TEXT,
    owner TEXT,
    prompt_keys TEXT,
    environment TEXT
);
CREATE INDEX IF NOT EXISTS executions_flow ON executions (flow_name);
-- The oldest ended execution, for the retention check (Store._retain).
CREATE INDEX IF NOT EXISTS executions_ended ON executions (seq)
    WHERE status != 'running';
-- A rowid table: a step record is often longer than the ~1 KB a WITHOUT ROWID
-- b-tree keeps in a page, and each insert then wrote an overflow page as well
-- (about 30 vs 19 us per insert). Stores made before keep their WITHOUT ROWID
-- table; the statements below work on both.
CREATE TABLE IF NOT EXISTS steps (
    exec_seq INTEGER NOT NULL,
    step_index INTEGER NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (exec_seq, step_index)
);
CREATE TABLE IF NOT EXISTS controls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step_index INTEGER NOT NULL DEFAULT -1,
    payload TEXT,
    created REAL NOT NULL,
    UNIQUE (execution_id, kind, step_index)
);
"""

# Columns a database written by an earlier version lacks: (table, column, type).
_ADDED_COLUMNS = (
    ("executions", "owner", "TEXT"),
    ("executions", "prompt_keys", "TEXT"),
    ("executions", "environment", "TEXT"),
)


class Database:
    """The connection to ``DIR/flowrun.sqlite3`` (created with its schema)."""

    def __init__(self, data_dir: str | Path):
        self.path = Path(data_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(
            self.path, timeout=10, isolation_level=None, check_same_thread=False
        )
        self._set_up()
        # From now on a busy database is retried by run(), cooperatively.
        self.conn.execute("PRAGMA busy_timeout=0")
        self.damage = self._check_pages()

    def _check_pages(self) -> str | None:
        """What SQLite's page check finds wrong with the file, or None.

        Once per process, as it opens the file: it reads every page (about a
        second per gigabyte), too slow for each ``/api/health``.
        """
        try:
            rows = self.run(lambda db: db.execute("PRAGMA quick_check").fetchall())
        except sqlite3.DatabaseError as exc:
            return str(exc)
        found = [r[0] for r in rows if r[0] != "ok"]
        return "; ".join(found[:3]) or None

    def health(self) -> str | None:
        """Why the database cannot be read now, or None (damage and a full disk
        are ``Store.writable``'s to say)."""
        try:
            self.run(
                lambda db: db.execute("SELECT max(seq) FROM executions").fetchone()
            )
        except sqlite3.Error as exc:
            return f"the database {self.path} cannot be read: {exc}"
        return None

    def _set_up(self) -> None:
        """Switch to WAL and create the schema, retrying while another worker does.

        Workers starting together on a new database race for the switch to WAL, and
        SQLite answers the loser "database is locked" at once, without waiting.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.executescript(_SCHEMA)
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            time.sleep(0.02)

    def _migrate(self) -> None:
        for table, column, kind in _ADDED_COLUMNS:
            columns = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            if column in columns:
                continue
            try:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:
                # "duplicate column": another worker added it first.
                if "duplicate column" not in str(exc):
                    raise

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def run(self, work, write: bool = False):
        """Run ``work(conn)`` under the process lock, retrying while the file is busy.

        ``write=True`` wraps several statements in one transaction; a single
        statement is its own transaction already (autocommit).
        """
        start = time.monotonic()
        delay, deadline = 0.0005, start + BUSY_TIMEOUT_S
        conn = self.conn
        while True:
            try:
                with self._lock:
                    if not write:
                        return work(conn)
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = work(conn)
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
                    return result
            except sqlite3.OperationalError as exc:
                now = time.monotonic()
                if not _busy(exc) or now > deadline:
                    raise
            if now - start < BUSY_SPIN_S:
                # Another worker's write (tens of microseconds) holds the file.
                # Waiting for it without yielding keeps this greenlet's place: one
                # that yields in a burst of new streams waits behind all the others,
                # and it may be a request's first event.
                real_sleep(0.00005)
                continue
            time.sleep(delay)  # cooperative under gevent: other greenlets go on
            delay = min(delay * 2, 0.05)


def free_bytes(directory: str | os.PathLike) -> int | None:
    """Bytes an unprivileged process may still write on ``directory``'s disk.

    Asked at every run start, so that a disk that has just filled up refuses the
    next run: a ``statvfs`` is 3 µs.
    """
    try:
        stat = os.statvfs(directory)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def _busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc)
    return "locked" in message or "busy" in message
