"""Execution history, written as events happen, read by Studio and the API.

The execution's own thread records each event as the engine yields it (not the SSE
generator), so a step that ran after the browser went away is still recorded.
Under gevent, rows wait a moment to share one commit with others (group commit):
the SSE stream commits before it writes a step's event, so a client never sees a
step the history lacks. Executions past ``FLOWRUN_HISTORY_LIMIT`` are pruned, oldest
first. The database itself is ``flowrun.store.sqlite``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence

from flowrun import metrics
from flowrun.jsontext import clean
from flowrun.jsontext import dumps as _dumps
from flowrun.store.sqlite import Database, free_bytes

log = logging.getLogger("flowrun")
_PRUNE_SLACK = 20  # executions pruned at once, at most (see Store._retain)
# Ends that could not be written, kept to be tried again (see Store.flush).
_UNWRITTEN_LIMIT = 10_000
# Less free space than this on the data directory's disk is a full disk: a group
# commit of a burst of runs writes a few megabytes to the WAL.
MIN_FREE_BYTES = 8 * 2**20
_INSERT_STEP = "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?)"
_INSERT_NOT_RUN = "INSERT OR REPLACE INTO steps VALUES (?, ?, 'not_run', ?)"
_FINISH = (
    "UPDATE executions SET status = ?, ended_at = ?, prompt_step = NULL, "
    "prompt_keys = NULL, paused_step = NULL, summary = ? WHERE seq = ?"
)
_INSERT_EXECUTION = (
    "INSERT INTO executions (id, flow_name, status, started_at, total_steps, owner, "
    "environment) VALUES (?, ?, 'running', ?, ?, ?, ?)"
)


# The oldest ended and the newest sequence numbers, each one index lookup. (SQLite
# answers ``SELECT min(seq), max(seq)`` by scanning every row: 53 µs at 1,000 rows,
# growing with FLOWRUN_HISTORY_LIMIT, and this runs as every execution finishes.)
_SEQ_RANGE = (
    "SELECT (SELECT min(seq) FROM executions WHERE status != 'running'), "
    "(SELECT max(seq) FROM executions)"
)


class Row:
    """An execution's row: ``seq`` is its sequence number once it is committed
    (None until then, or for good if it could not be written); ``error`` says why
    the execution's rows cannot be written (None while they can)."""

    __slots__ = ("values", "seq", "error")

    def __init__(self, values: tuple):
        self.values = values
        self.seq: int | None = None
        self.error: str | None = None


def now_iso() -> str:
    t = time.time()
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        + f".{int(t % 1 * 1000):03d}Z"
    )


class Store:
    """The history of one data directory, as one process reads and writes it.

    ``flowrun.store.pghistory.PgStore`` is the same history in PostgreSQL: it
    replaces the database and the statements below that SQLite spells its own way.
    """

    INSERT_STEP = _INSERT_STEP
    INSERT_NOT_RUN = _INSERT_NOT_RUN
    # The setting that names the database, and what to do when it cannot be
    # written (the 503 that refuses a run says both).
    SETTING = "FLOWRUN_DATA_DIR"
    REMEDY = "free space on its disk, or repair or move away its database"

    def __init__(
        self,
        data_dir: str | os.PathLike,
        history_limit: int = 1000,
        defer: Callable[[Callable[[], None]], object] | None = None,
    ):
        self._open(data_dir)
        self.history_limit = history_limit
        # Step rows in groups (see step): ``defer(fn)`` runs fn a moment later.
        self._defer = defer
        self._creates: list[Row] = []
        self._pending: list[tuple] = []
        self._finishes: list[tuple] = []
        self._flush_due = False
        self._flush_lock = threading.Lock()
        # Ends whose commit failed (a full disk), tried again with every flush.
        self._unwritten: dict[str, tuple] = {}
        # Why the last write failed (None once one succeeds).
        self.write_error: str | None = None
        # What SQLite found damaged in the file: that does not mend by itself.
        self.damage: str | None = self.db.damage

    def _open(self, data_dir) -> None:
        """Open the database; name this process as the owner of its runs."""
        self.db = Database(data_dir)
        self._directory = str(self.db.path.parent)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def close(self) -> None:
        self.flush()
        self.db.close()

    @staticmethod
    def _insert_execution(db, values: tuple) -> int:
        """Insert an execution's row; its sequence number."""
        return db.execute(_INSERT_EXECUTION, values).lastrowid

    # -- writes, by the execution thread
    def create(
        self,
        execution_id: str,
        flow_name: str,
        total_steps: int,
        environment: str | None = None,
    ) -> Row:
        """A ``running`` execution's row (its ``seq`` is set once it is committed).

        With ``defer`` the row waits for the next group commit, like step rows: a
        commit of its own would be a quarter of what a new stream costs before its
        first event, and the workers' commits would collide in bursts.
        """
        # Names may hold what UTF-8 cannot (a lone surrogate): SQLite would
        # refuse the row.
        row = Row(
            (
                execution_id,
                clean(flow_name),
                now_iso(),
                total_steps,
                self.owner,
                None if environment is None else clean(environment),
            )
        )
        self._record(creates=[row])
        return row

    def _record(self, creates=(), steps=(), finishes=()) -> None:
        """Commit now, or with ``defer`` join the next group commit.

        A write that fails is handled as in a group (``flush``): the rows of the
        run it belongs to are marked, nothing is raised.
        """
        self._creates.extend(creates)
        self._pending.extend(steps)
        self._finishes.extend(finishes)
        if self._defer is None:
            self.flush()
        else:
            self._flush_soon()

    def _commit(
        self, creates: list[Row], steps: list[tuple], finishes: list[tuple]
    ) -> None:
        """Write ``creates``, ``steps`` and ``finishes`` in one transaction."""
        try:
            self.db.run(
                lambda db: self._write(db, creates, steps, finishes), write=True
            )
        except BaseException as exc:
            for row in creates:  # rolled back: not numbered after all
                row.seq = None
            self.write_error = _reason(exc)
            if _damaged(exc):
                self.damage = self.damage or self.write_error
            metrics.STORE_ERRORS.inc()
            raise
        # Only a write shows that writes work again: the end of a run whose row
        # was never written is dropped (``_write``), and proves nothing.
        if creates or any(r[0].seq is not None for r in (*steps, *finishes)):
            self.write_error = None

    def writable(self) -> str | None:
        """Why a new run could not be recorded now, or None.

        Checked before a run starts, so that one that could not be recorded is
        refused instead of running unrecorded: a full disk, and after a failed
        write, a write that fails again (a read-only or damaged database).
        """
        problem = self._unfit()
        if problem is not None:
            return problem
        if self.write_error is None:
            return None
        self.flush()  # what waits, and ends that could not be written before
        try:
            self.db.run(_probe, write=True)
        except Exception as exc:
            self.write_error = _reason(exc)
            return self.write_error
        self.write_error = None
        return None

    def _unfit(self) -> str | None:
        """What keeps the database file from taking writes: damage, a full disk."""
        if self.damage is not None:
            return f"the database {self.db.path} is damaged: {self.damage}"
        free = free_bytes(self._directory)
        if free is not None and free < MIN_FREE_BYTES:
            return f"the disk of {self._directory} is full ({free} bytes free)"
        return None

    def health(self) -> str | None:
        """Why history cannot be written or read now, or None (``/api/health``)."""
        return self.writable() or self.db.health()

    def _write(
        self, db, creates: list[Row], steps: list[tuple], finishes: list[tuple]
    ) -> None:
        """Insert new execution rows, then steps ``(Row, index, status, json)``,
        then record ends ``(Row, status, ended_at, summary json, not_run)``."""
        for row in creates:
            row.seq = self._insert_execution(db, row.values)
        if steps:
            if any(s[0].seq is None for s in steps):
                # their execution's row could not be written (logged then)
                log.error("step rows of unrecorded executions dropped")
                steps = [s for s in steps if s[0].seq is not None]
            db.executemany(
                self.INSERT_STEP,
                [(row.seq, i, status, text) for row, i, status, text in steps],
            )
        if finishes:
            # an end whose execution's row could not be written was logged then
            ended = [f for f in finishes if f[0].seq is not None]
            db.executemany(
                self.INSERT_NOT_RUN,
                [(f[0].seq, i, text) for f in ended for i, text in f[4]],
            )
            db.executemany(
                _FINISH,
                [
                    (status, at, summary, row.seq)
                    for row, status, at, summary, _ in ended
                ],
            )
            self._retain(db)

    def _retain(self, db) -> None:
        """Keep at most FLOWRUN_HISTORY_LIMIT executions (running ones are kept).

        Run in the transaction that records each execution's end, off the path of
        a new run's first event.
        Sequence numbers only grow, so ``max - min + 1``, from the oldest ended
        execution, bounds the number of rows that can be deleted (two indexed
        lookups, not a count); only when that passes the limit is the oldest to keep
        looked up and the older ones deleted, down to the limit less a small slack,
        so that the next few finishes pass the first check. An old run still
        running (waiting for an answer) is not where the range starts: it would
        make every finish look past the limit.
        """
        limit = max(self.history_limit, 0)
        lo, hi = db.execute(_SEQ_RANGE).fetchone()
        if lo is None or hi - lo + 1 <= limit:
            return
        self._prune(db, limit - min(limit // 50, _PRUNE_SLACK))

    def _prune(self, db, keep: int) -> None:
        row = db.execute(
            "SELECT seq FROM executions ORDER BY seq DESC LIMIT 1 OFFSET ?", (keep,)
        ).fetchone()
        if row is None:
            return
        cutoff = row[0]
        db.execute(
            "DELETE FROM executions WHERE seq <= ? AND status != 'running'", (cutoff,)
        )
        db.execute(
            "DELETE FROM steps WHERE exec_seq <= ? AND exec_seq NOT IN "
            "(SELECT seq FROM executions WHERE seq <= ?)",
            (cutoff, cutoff),
        )

    def step(self, row: Row, step_index: int, status: str, record_json: str) -> None:
        """Record a step.

        With ``defer`` (the gevent worker), rows are committed in groups: a row
        waits until ``flush`` — which the SSE stream calls before it writes the
        step's event, so a client never sees a step the history lacks, and which
        ``defer`` calls a moment later anyway, for runs nobody watches. Steps that
        end together (many runs, or fast steps) then share one commit.
        """
        self._record(steps=[(row, step_index, status, record_json)])

    def _flush_soon(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            self._defer(self._flush_later)

    def _flush_later(self) -> None:
        """The deferred flush. One is due at a time: flushes in between (the SSE
        stream's) commit what waits but do not schedule another."""
        self._flush_due = False
        self.flush()

    def _take(self) -> tuple[list[Row], list[tuple], list[tuple]]:
        """What waits for the group commit (the caller holds _flush_lock)."""
        creates, self._creates = self._creates, []
        steps, self._pending = self._pending, []
        finishes, self._finishes = self._finishes, []
        return creates, steps, finishes

    def flush(self) -> None:
        """Commit the rows waiting in this process (one transaction).

        Returns once every row recorded before the call is committed, also when
        another thread's flush had already taken them. When the group's commit
        fails, each row is written alone, so that one bad row costs no other run
        its history (``_one_by_one``).
        """
        with self._flush_lock:
            creates, steps, finishes = self._take()
            if self._unwritten:
                finishes = [*self._unwritten.values(), *finishes]
                self._unwritten = {}
            if not creates and not steps and not finishes:
                return
            try:
                self._commit(creates, steps, finishes)
            except Exception as exc:
                log.warning(
                    "recording %d execution(s), %d step(s) and %d end(s) in history "
                    "together failed (%s): writing them one by one",
                    len(creates),
                    len(steps),
                    len(finishes),
                    _reason(exc),
                )
                self._one_by_one(creates, steps, finishes)

    def _one_by_one(self, creates, steps, finishes) -> None:
        """Write each row in a transaction of its own (the caller holds the lock).

        An execution whose row cannot be written gets ``Row.error`` (its run is
        stopped). A step whose record cannot be written is recorded with that
        error instead, on its own run. An end that cannot be written is kept and
        tried again with the next flush, so that history does not show a finished
        run as running once the database can be written again.
        """
        failures = []
        for row in creates:
            try:
                self._commit([row], [], [])
            except Exception as exc:
                row.error = _reason(exc)
                failures.append(row.error)
                log.error("execution %s not recorded: %s", row.values[0], row.error)
        for step in steps:
            row = step[0]
            if row.seq is None:
                continue  # its execution's row is not written (logged above)
            try:
                self._commit([], [step], [])
            except Exception as exc:
                reason = _reason(exc)
                failures.append(reason)
                log.error(
                    "step %d of %s not recorded: %s", step[1] + 1, row.values[0], reason
                )
                try:
                    self._commit([], [_unrecordable(step, reason)], [])
                except Exception as again:
                    row.error = _reason(again)
        for end in finishes:
            row = end[0]
            if row.seq is None:
                continue
            try:
                self._commit([], [], [end])
            except Exception as exc:
                row.error = _reason(exc)
                failures.append(row.error)
                self._keep_unwritten(end)
        if failures:  # whatever went in after: the next run checks (writable)
            self.write_error = failures[-1]

    @property
    def unwritten(self) -> int:
        """How many ends wait to be written (``flush`` tries them again)."""
        return len(self._unwritten)

    def _keep_unwritten(self, end: tuple) -> None:
        if len(self._unwritten) >= _UNWRITTEN_LIMIT:
            oldest = next(iter(self._unwritten))
            log.error("end of execution %s dropped: history cannot be written", oldest)
            del self._unwritten[oldest]
        self._unwritten[end[0].values[0]] = end

    def waiting(
        self,
        row: Row,
        prompt_step: int | None,
        paused_step: int | None,
        prompt_keys: list[str] | None = None,
    ):
        """Record the pending prompt (and the keys it asks for) or pause.

        This is what other workers may answer, and check an answer against.
        """
        keys = None if prompt_keys is None else _dumps(list(prompt_keys))
        self.flush()
        if row.seq is None:  # its row could not be written (logged)
            return
        self.db.run(
            lambda db: db.execute(
                "UPDATE executions SET prompt_step = ?, paused_step = ?, "
                "prompt_keys = ? WHERE seq = ?",
                (prompt_step, paused_step, keys, row.seq),
            )
        )

    def finish(self, row: Row, status: str, summary: dict, not_run: list[dict]):
        """Record an execution's end: its status, summary and ``not_run`` steps.

        With ``defer`` the end joins the group commit, like step rows: the SSE stream
        flushes before it writes ``end``, readers in this process flush first, and
        the deferred flush writes it a moment later for runs nobody watches. Runs
        that end together (a load test's flows) then share one commit and one
        retention check, instead of a transaction each.
        """
        end = (
            row,
            status,
            now_iso(),
            _dumps(summary),
            [(r["stepIndex"], _dumps(r)) for r in not_run],
        )
        self._record(finishes=[end])

    def abandon(self, execution_ids, reason: str) -> int:
        """Mark still-running executions ``interrupted`` (their process is going)."""
        self.flush()
        summary = _dumps({"success": False, "interrupted": True, "reason": reason})
        return self.db.run(
            lambda db: (
                db.executemany(
                    "UPDATE executions SET status = 'interrupted', ended_at = ?, "
                    "prompt_step = NULL, prompt_keys = NULL, paused_step = NULL, "
                    "summary = ? WHERE id = ? AND status = 'running'",
                    [(now_iso(), summary, i) for i in execution_ids],
                ).rowcount
            )
        )

    def reap(self) -> int:
        """Mark ``interrupted`` the runs left ``running`` by dead processes (this host).

        A worker killed outright (or a crashed host process) cannot record the end
        of its runs; the next process to open the store on that host does.
        """
        host = socket.gethostname()
        rows = self.db.run(
            lambda db: db.execute(
                "SELECT id, owner FROM executions WHERE status = 'running' "
                "AND owner LIKE ?",
                (host + ":%",),
            ).fetchall()
        )
        dead = [i for i, owner in rows if not _alive(owner.rsplit(":", 1)[1])]
        return self.abandon(dead, "its worker process exited") if dead else 0

    # -- reads
    def state(self, execution_id: str) -> dict | None:
        """``{status, promptStep, promptKeys, pausedStep}`` of one execution, or None.

        ``promptKeys`` lists the keys the pending prompt asks for (None when no
        prompt waits, or when a store of an earlier version recorded it).
        """
        self.flush()  # this process's own new executions, still in a group
        row = self.db.run(
            lambda db: db.execute(
                "SELECT status, prompt_step, paused_step, prompt_keys "
                "FROM executions WHERE id = ?",
                (execution_id,),
            ).fetchone()
        )
        if row is None:
            return None
        end = self._unwritten.get(execution_id)
        return {
            "status": row[0] if end is None else end[1],
            "promptStep": row[1],
            "promptKeys": json.loads(row[3]) if row[3] else None,
            "pausedStep": row[2],
        }

    def list(self, limit: int = 50, flow: str | None = None) -> list[dict]:
        """The newest ``limit`` executions (of the flow named ``flow``)."""
        return self.page(limit, flow=flow)[0]

    def page(
        self,
        limit: int = 50,
        *,
        before: int | None = None,
        flow: str | None = None,
        statuses: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        text: str | None = None,
    ) -> tuple[list[dict], int | None]:
        """A page of executions, newest first, and the cursor of the next page.

        ``before`` is a cursor from an earlier page (the sequence number to start
        below); ``flow`` an exact flow name; ``statuses`` the statuses kept;
        ``since``/``until`` bound ``startedAt`` (inclusive, ISO-8601 text in the
        stored form); ``text`` a case-insensitive part of the flow name or of the
        execution id. The cursor is None when no older execution matches.
        """
        self.flush()
        where: list[str] = []
        args: list = []
        if before is not None:
            where.append("seq < ?")
            args.append(before)
        if flow:
            where.append("flow_name = ?")
            args.append(flow)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        if since:
            where.append("started_at >= ?")
            args.append(since)
        if until:
            where.append("started_at <= ?")
            args.append(until)
        if text:
            pattern = "%" + _like_escape(text.lower()) + "%"
            where.append(
                "(lower(flow_name) LIKE ? ESCAPE '\\' OR lower(id) LIKE ? ESCAPE '\\')"
            )
            args.extend((pattern, pattern))
        sql = f"SELECT {_LIST_COLUMNS}, seq FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # One row more than asked: whether an older page exists, without a count.
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit + 1)
        rows = self.db.run(lambda db: db.execute(sql, args).fetchall())
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = rows[-1][-1] if more and rows else None
        return [self._ended(_execution(r[:-1])) for r in rows], cursor

    def _ended(self, found: dict) -> dict:
        """``found`` with its end, if this process holds one it could not write."""
        end = self._unwritten.get(found["executionId"])
        if end is not None:
            found["status"], found["endedAt"] = end[1], end[2]
            found["summary"] = json.loads(end[3])
        return found

    def get(self, execution_id: str) -> dict | None:
        self.flush()  # this process's own rows, even those still in a group

        def work(db):
            row = db.execute(
                f"SELECT {_LIST_COLUMNS}, seq FROM executions WHERE id = ?",
                (execution_id,),
            ).fetchone()
            if row is None:
                return None, None
            steps = db.execute(
                "SELECT record FROM steps WHERE exec_seq = ? ORDER BY step_index",
                (row[-1],),
            ).fetchall()
            return row, steps

        row, steps = self.db.run(work)
        if row is None:
            return None
        found = self._ended(_execution(row[:-1]))
        found["steps"] = [json.loads(s[0]) for s in steps]
        return found


def _probe(db) -> None:
    """A write that changes nothing in the end, to see whether writes work."""
    db.execute(
        "INSERT INTO controls (execution_id, kind, created) VALUES ('', 'probe', 0)"
    )
    db.execute("DELETE FROM controls WHERE kind = 'probe'")


def _damaged(exc: BaseException) -> bool:
    """Whether SQLite says the file is damaged (or not a database at all)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and code in (
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    )


def _reason(exc: BaseException) -> str:
    return clean(f"{type(exc).__name__}: {exc}")


def _unrecordable(step: tuple, reason: str) -> tuple:
    """A step row saying that the step's own record could not be written."""
    row, index, status, text = step
    try:
        found = json.loads(text)
    except (ValueError, RecursionError, TypeError):
        found = None
    kept = {
        key: found[key]
        for key in ("executionId", "id", "name", "method", "url")
        if isinstance(found, dict) and isinstance(found.get(key), str)
    }
    record = {
        **kept,
        "step": index + 1,
        "stepIndex": index,
        "status": status,
        "error": f"The record of this step could not be stored: {reason}",
    }
    return row, index, status, _dumps(record)


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


# What a listed execution shows, in the order _execution reads it.
_LIST_COLUMNS = (
    "id, flow_name, status, started_at, ended_at, total_steps, summary, environment"
)


def _like_escape(text: str) -> str:
    """``text`` matched literally by LIKE (``%``, ``_`` and the escape itself)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _execution(row) -> dict:
    summary = json.loads(row[6]) if row[6] else None
    return {
        "executionId": row[0],
        "flowName": row[1],
        "status": row[2],
        "startedAt": row[3],
        "endedAt": row[4],
        "totalSteps": row[5],
        "summary": summary,
        "environment": row[7],
    }
