"""PostgreSQL and Redis servers of their own for the tests (and the benchmarks).

Each starts from Debian's packages on a free loopback port with its data in a new
temporary directory, and is stopped and removed by ``stop()``. PostgreSQL refuses to
run as root (CI does): there it runs as the ``postgres`` user the Debian package
creates, in a directory that user owns.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .target import free_port


def _pg_bin() -> Path | None:
    """The newest PostgreSQL server's programs Debian installed, or None.

    The major version depends on the Debian release (15 on bookworm, 17 on
    trixie): Debian keeps each under its own directory.
    """
    found = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    versions = sorted((p.parent for p in found), key=lambda b: int(b.parent.name))
    return versions[-1] if versions else None


PG_BIN = _pg_bin()


def postgres_missing() -> str | None:
    """Why PostgreSQL cannot be started here, or None."""
    if PG_BIN is None:
        return "PostgreSQL is not installed: apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no 'postgres' user to run PostgreSQL as"
    return None


def redis_missing() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed: apt-get install redis-server"
    return None


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} in {timeout:.0f} s")


class Postgres:
    """A PostgreSQL server; ``url`` connects to its database ``flowrun``."""

    def __init__(self, max_connections: int = 200):
        self.dir = Path(tempfile.mkdtemp(prefix="flowrun-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.log = self.dir / "server.log"
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "flowrun",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            "-c unix_socket_directories='' -c fsync=off "
            f"-c max_connections={max_connections} -c shared_buffers=64MB"
        )
        self.proc = subprocess.Popen(
            [*self._as, str(PG_BIN / "postgres"), "-D", str(self.data)]
            + shlex.split(options),
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_port(self.port, self.proc, "postgres")
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.url = f"postgresql://flowrun@127.0.0.1:{self.port}/flowrun"

    def _run(self, *cmd: str) -> None:
        # In a directory the server's user may enter (not a root-only checkout).
        done = subprocess.run(
            [*self._as, *cmd],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr[-2000:]}")

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    f"postgresql://flowrun@127.0.0.1:{self.port}/postgres",
                    autocommit=True,
                    connect_timeout=2,
                ) as conn:
                    conn.execute("CREATE DATABASE flowrun")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def fresh_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # "smart" shutdown would wait for clients
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """A redis-server without persistence; ``url`` is its database 0."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_port(self.port, self.proc, "redis-server")
        except BaseException:
            self.stop()
            raise
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


_TABLES = ("executions", "steps", "controls")


def refuse_writes(store, refused: bool) -> None:
    """Make every write to ``store``'s database fail (or stop that).

    SQLite: ``query_only``, as on a read-only file. PostgreSQL: a trigger that
    raises on every change, as a server out of disk or read-only would; the
    database is shared, so every host's writes fail.
    """
    if not hasattr(store, "leases"):  # SQLite: this process's connection
        store.db.run(lambda c: c.execute(f"PRAGMA query_only = {int(refused)}"))
        return

    def work(db):
        if not refused:
            for table in _TABLES:
                db.execute(f"DROP TRIGGER IF EXISTS refuse_writes ON {table}")
            return
        db.execute(
            "CREATE OR REPLACE FUNCTION refuse_writes() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; "
            "END $$ LANGUAGE plpgsql"
        )
        for table in _TABLES:
            db.execute(
                f"CREATE OR REPLACE TRIGGER refuse_writes BEFORE INSERT OR UPDATE "
                f"OR DELETE ON {table} EXECUTE FUNCTION refuse_writes()"
            )

    store.db.run(work, write=True)
