"""The PostgreSQL database of several hosts (``FLOWRUN_DATABASE_URL``): a connection
pool per process, the schema and its migrations.

psycopg 3 waits for the server through ``select``, which gevent's worker patches, so
a query yields to the other greenlets instead of stalling the worker. Thousands of
greenlets share a small pool: their statements are short, and history rows are
written in group commits.

The statements are the SQLite store's, with ``?`` for parameters: ``Connection``
turns them into psycopg's ``%s`` once each.

Migrations run when a process opens the database, inside one transaction that
first takes a PostgreSQL advisory lock: hosts starting together apply each one
once, in order, and the others wait for it, then find it done.
"""

from __future__ import annotations

import functools
import logging
import time

log = logging.getLogger("flowrun")

# Connections a worker process keeps at most; thousands of runs share them.
POOL_SIZE = 10
HEALTH_TIMEOUT_S = 2.0  # /api/health waits this long for a connection
RETRIES = 3  # a statement whose connection broke is tried again on another one
# The advisory lock the migrations hold: any constant the hosts agree on.
MIGRATION_LOCK = 0x666C6F7772756E  # "flowrun"

# Each entry is one schema version; a new version is appended, never edited.
MIGRATIONS = (
    """
    CREATE TABLE executions (
        seq BIGSERIAL PRIMARY KEY,
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
        prompt_keys TEXT
    );
    CREATE INDEX executions_flow ON executions (flow_name);
    CREATE INDEX executions_ended ON executions (seq) WHERE status != 'running';
    CREATE INDEX executions_running ON executions (owner) WHERE status = 'running';
    CREATE TABLE steps (
        exec_seq BIGINT NOT NULL,
        step_index INTEGER NOT NULL,
        status TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (exec_seq, step_index)
    );
    CREATE TABLE controls (
        id BIGSERIAL PRIMARY KEY,
        execution_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        step_index INTEGER NOT NULL DEFAULT -1,
        payload TEXT,
        created DOUBLE PRECISION NOT NULL,
        UNIQUE (execution_id, kind, step_index)
    );
    CREATE INDEX controls_created ON controls (created);
    CREATE TABLE leases (
        owner TEXT PRIMARY KEY,
        expires TIMESTAMPTZ NOT NULL
    );
    """,
    # The workspace environment a run used (options.environment).
    "ALTER TABLE executions ADD COLUMN environment TEXT",
)


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


@functools.lru_cache(maxsize=256)
def _paramstyle(sql: str) -> str:
    """``sql`` with SQLite's ``?`` parameters as psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


class Connection:
    """A pooled psycopg connection that takes the SQLite store's statements."""

    __slots__ = ("conn",)

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql: str, args=()):
        return self.conn.execute(_paramstyle(sql), args)

    def executemany(self, sql: str, rows):
        cursor = self.conn.cursor()
        cursor.executemany(_paramstyle(sql), rows)
        return cursor


class Database:
    """The pool of connections of this process to ``url`` (schema up to date)."""

    # What a page check found damaged: SQLite's concern (PostgreSQL checks its own).
    damage = None

    def __init__(self, url: str, pool_size: int = POOL_SIZE):
        import psycopg
        from psycopg_pool import ConnectionPool

        self._psycopg = psycopg
        self.url = url
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            open=False,
            name="flowrun",
        )
        try:
            self.pool.open(wait=True, timeout=30)
        except Exception as exc:
            self.pool.close()
            raise ConnectionError(f"cannot reach the database: {exc}") from None
        self.migrate()

    def migrate(self) -> int:
        """Apply the migrations this database lacks; return its schema version."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS flowrun_schema (version INTEGER NOT NULL)"
            )
            row = conn.execute("SELECT max(version) FROM flowrun_schema").fetchone()
            version = row[0] or 0
            for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
                conn.execute(sql)
                conn.execute(
                    "INSERT INTO flowrun_schema (version) VALUES (%s)", (number,)
                )
                log.info("database schema migrated to version %d", number)
            return max(version, len(MIGRATIONS))

    def close(self) -> None:
        self.pool.close()

    def run(self, work, write: bool = False):
        """Run ``work(Connection)``; ``write=True`` makes it one transaction.

        A connection that broke (a restarted server, a dropped socket) is retried
        on another: the transaction was rolled back, so nothing is done twice.
        """
        attempt = 0
        while True:
            try:
                with self.pool.connection() as conn:
                    if not write:
                        return work(Connection(conn))
                    with conn.transaction():
                        return work(Connection(conn))
            # Also a deadlock or a serialization failure: the same statements
            # succeed when tried again.
            except self._psycopg.OperationalError:
                attempt += 1
                if attempt == RETRIES:
                    raise
                log.warning("database statement retried", exc_info=True)
                time.sleep(0.05 * attempt)

    def health(self) -> str | None:
        """Why the database cannot be used now, or None."""
        try:
            with self.pool.connection(timeout=HEALTH_TIMEOUT_S) as conn:
                conn.execute("SELECT 1").fetchone()
        except Exception as exc:
            return f"the database cannot be reached: {type(exc).__name__}: {exc}"
        return None

    def connect(self):
        """A connection of its own, outside the pool (the control channel's)."""
        return self._psycopg.connect(self.url, autocommit=True)
