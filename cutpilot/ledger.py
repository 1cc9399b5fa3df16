"""The job / batch ledger: jobs by id (kind, status, progress, message, JSON params and result) plus JSON documents
(ads, batches), in SQLite under CUTPILOT_HOME by default or in Postgres when CUTPILOT_CHECKPOINT_URL is set, so
every studio or batch worker sharing that database sees one set of jobs.

Every write is one transaction. `update_job` is a single UPDATE (optionally conditional on the current status, so
two workers can race to claim a queued job and exactly one wins); `change` and `change_job` read, modify and write
one row under a row lock (Postgres `SELECT … FOR UPDATE`, SQLite `BEGIN IMMEDIATE`), so concurrent updates from
threads or processes are never lost. The SQLite tables are the studio's existing `jobs` / `docs` schema, so an
existing `studio.sqlite` opens as it is.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from cutpilot.errors import InputError, NotFoundError
from cutpilot.settings import Settings

FINISHED = ("done", "failed")
_JOB_FIELDS = ("status", "progress", "message", "result")
_COLS = "job_id, kind, status, progress, message, result, params, created, updated"


class JobRow(BaseModel):
    """One job as stored (progress clamped to 0..1; result and params are JSON objects)."""

    job_id: str
    kind: str
    status: str = "queued"
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    message: str = ""
    result: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0


def _row(r: Any) -> JobRow:
    job_id, kind, status, progress, message, result, params, created, updated = r
    return JobRow(job_id=job_id, kind=kind, status=status, progress=min(1.0, max(0.0, float(progress or 0))),
                  message=message or "", result=_obj(result), params=_obj(params), created=created or 0.0,
                  updated=updated or 0.0)


def _obj(v: Any) -> dict[str, Any]:
    """A JSON column as a dict: Postgres jsonb arrives decoded, SQLite text does not."""
    if v is None or v == "":
        return {}
    return dict(json.loads(v) if isinstance(v, str | bytes) else v)


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(_JOB_FIELDS)
    if unknown:
        raise InputError(f"unknown job field(s): {', '.join(sorted(unknown))} (allowed: {', '.join(_JOB_FIELDS)})")
    return fields


class Ledger(ABC):
    """Jobs and documents by id; thread-safe; one transaction per write. `open_ledger` picks the backend."""

    # -- jobs ----------------------------------------------------------------------------------------------------
    @abstractmethod
    def add_job(self, job_id: str, kind: str, params: dict[str, Any]) -> None:
        """A new queued job (an id already taken is an InputError: ids are never reused)."""

    @abstractmethod
    def update_job(self, job_id: str, *, when_status: str | tuple[str, ...] | None = None, **fields: Any) -> bool:
        """Set status / progress / message / result in one statement; with `when_status`, only if the job's
        status is (one of) that — a compare-and-set. True when a row changed."""

    @abstractmethod
    def change_job(self, job_id: str, fn: Callable[[JobRow], None]) -> JobRow:
        """Read, modify (fn edits the row in place) and write one job under a row lock."""

    @abstractmethod
    def job(self, job_id: str) -> JobRow:
        """The job, or NotFoundError."""

    @abstractmethod
    def jobs(self, limit: int = 50, *, unfinished: bool = False, kind: str | None = None) -> list[JobRow]:
        """Newest first; `unfinished`: queued or running, oldest first (the order to resume them)."""

    def job_params(self, job_id: str) -> tuple[str, dict[str, Any]]:
        """(kind, params) of a job, for its handler."""
        j = self.job(job_id)
        return j.kind, j.params

    # -- documents -----------------------------------------------------------------------------------------------
    @abstractmethod
    def put(self, kind: str, doc_id: str, data: dict[str, Any]) -> None:
        """Insert or replace one document (its created time is kept on replace)."""

    @abstractmethod
    def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        """One document, or None."""

    @abstractmethod
    def change(self, kind: str, doc_id: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Read, modify (fn edits the dict in place) and write one document under a row lock."""

    @abstractmethod
    def docs(self, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        """Documents of a kind, newest first."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection(s)."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _statuses(when: str | tuple[str, ...] | None) -> tuple[str, ...] | None:
    return (when,) if isinstance(when, str) else when


# --- SQLite ---------------------------------------------------------------------------------------------------------
class SqliteLedger(Ledger):
    """One file; a process-wide lock plus SQLite's own locking (WAL, BEGIN IMMEDIATE) for other processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            with self._tx():
                self._conn.execute("CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, kind TEXT, "
                                   "status TEXT, progress REAL, message TEXT, result TEXT, params TEXT, created REAL, "
                                   "updated REAL)")
                self._conn.execute("CREATE TABLE IF NOT EXISTS docs (kind TEXT, id TEXT, data TEXT, created REAL, "
                                   "PRIMARY KEY (kind, id))")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front, so a read-modify-write is never lost."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def add_job(self, job_id: str, kind: str, params: dict[str, Any]) -> None:
        now = time.time()
        try:
            with self._tx() as c:
                c.execute("INSERT INTO jobs (job_id, kind, status, progress, message, result, params, created, "
                          "updated) VALUES (?, ?, 'queued', 0, '', '{}', ?, ?, ?)",
                          (job_id, kind, json.dumps(params, ensure_ascii=False), now, now))
        except sqlite3.IntegrityError:
            raise InputError(f"job {job_id} already exists") from None

    def update_job(self, job_id: str, *, when_status: str | tuple[str, ...] | None = None, **fields: Any) -> bool:
        cols = {k: (json.dumps(v, ensure_ascii=False) if k == "result" else v) for k, v in _fields(fields).items()}
        sets = "".join(f"{k} = ?, " for k in cols)
        args: list[Any] = [*cols.values(), time.time(), job_id]
        where = "job_id = ?"
        statuses = _statuses(when_status)
        if statuses:
            where += f" AND status IN ({', '.join('?' * len(statuses))})"
            args += statuses
        with self._tx() as c:
            return c.execute(f"UPDATE jobs SET {sets}updated = ? WHERE {where}", args).rowcount > 0

    def change_job(self, job_id: str, fn: Callable[[JobRow], None]) -> JobRow:
        with self._tx() as c:
            r = c.execute(f"SELECT {_COLS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if r is None:
                raise NotFoundError(f"no job {job_id}")
            row = _row(r)
            fn(row)
            row = JobRow.model_validate(row.model_dump())
            row.updated = time.time()
            c.execute("UPDATE jobs SET status = ?, progress = ?, message = ?, result = ?, updated = ? "
                      "WHERE job_id = ?", (row.status, row.progress, row.message,
                                           json.dumps(row.result, ensure_ascii=False), row.updated, job_id))
        return row

    def job(self, job_id: str) -> JobRow:
        with self._lock:
            r = self._conn.execute(f"SELECT {_COLS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if r is None:
            raise NotFoundError(f"no job {job_id}")
        return _row(r)

    def jobs(self, limit: int = 50, *, unfinished: bool = False, kind: str | None = None) -> list[JobRow]:
        conds, args = [], []
        if unfinished:
            conds.append("status NOT IN ('done', 'failed')")
        if kind is not None:
            conds.append("kind = ?")
            args.append(kind)
        where = f"WHERE {' AND '.join(conds)} " if conds else ""
        order = "created ASC" if unfinished else "created DESC"
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLS} FROM jobs {where}ORDER BY {order} LIMIT ?",
                                      (*args, limit)).fetchall()
        return [_row(r) for r in rows]

    def put(self, kind: str, doc_id: str, data: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO docs (kind, id, data, created) VALUES (?, ?, ?, ?) ON CONFLICT (kind, id) "
                      "DO UPDATE SET data = excluded.data", (kind, doc_id, json.dumps(data, ensure_ascii=False),
                                                             time.time()))

    def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        with self._lock:
            r = self._conn.execute("SELECT data FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        return _obj(r[0]) if r else None

    def change(self, kind: str, doc_id: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        with self._tx() as c:
            r = c.execute("SELECT data FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
            if r is None:
                raise NotFoundError(f"no {kind} {doc_id}")
            data = _obj(r[0])
            fn(data)
            c.execute("UPDATE docs SET data = ? WHERE kind = ? AND id = ?",
                      (json.dumps(data, ensure_ascii=False), kind, doc_id))
        return data

    def docs(self, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT data FROM docs WHERE kind = ? ORDER BY created DESC LIMIT ?",
                                      (kind, limit)).fetchall()
        return [_obj(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --- Postgres -------------------------------------------------------------------------------------------------------
_PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cutpilot_jobs (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, "
    "progress DOUBLE PRECISION NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', "
    "result JSONB NOT NULL DEFAULT '{}', params JSONB NOT NULL DEFAULT '{}', created DOUBLE PRECISION NOT NULL, "
    "updated DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS cutpilot_jobs_created ON cutpilot_jobs (created)",
    "CREATE TABLE IF NOT EXISTS cutpilot_docs (kind TEXT NOT NULL, id TEXT NOT NULL, data JSONB NOT NULL, "
    "created DOUBLE PRECISION NOT NULL, PRIMARY KEY (kind, id))",
)
_SCHEMA_LOCK_KEY = 0x6C656467  # pg_advisory_xact_lock: concurrent first opens never race on CREATE TABLE


class PostgresLedger(Ledger):
    """A small psycopg connection pool (studio workers write from several threads); tables `cutpilot_jobs` and
    `cutpilot_docs`, so the ledger can share a database with the checkpointer's tables."""

    def __init__(self, url: str, *, max_size: int = 4) -> None:
        from psycopg_pool import ConnectionPool

        from cutpilot.checkpoints import connect_postgres

        connect_postgres(url).close()  # a bad URL or an unreachable server: one line now, not a pool timeout
        self._pool = ConnectionPool(url, min_size=1, max_size=max_size, open=False, num_workers=1,
                                    kwargs={"connect_timeout": 10, "prepare_threshold": 0},
                                    check=ConnectionPool.check_connection)
        self._pool.open(wait=True, timeout=30.0)
        with self._pool.connection() as c:
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            for stmt in _PG_SCHEMA:
                c.execute(stmt)

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction on a pooled connection (committed on exit, rolled back on an exception)."""
        with self._pool.connection() as c:
            yield c

    def add_job(self, job_id: str, kind: str, params: dict[str, Any]) -> None:
        from psycopg.errors import UniqueViolation
        from psycopg.types.json import Jsonb

        now = time.time()
        try:
            with self._tx() as c:
                c.execute("INSERT INTO cutpilot_jobs (job_id, kind, status, progress, message, result, params, "
                          "created, updated) VALUES (%s, %s, 'queued', 0, '', '{}', %s, %s, %s)",
                          (job_id, kind, Jsonb(params), now, now))
        except UniqueViolation:
            raise InputError(f"job {job_id} already exists") from None

    def update_job(self, job_id: str, *, when_status: str | tuple[str, ...] | None = None, **fields: Any) -> bool:
        from psycopg.types.json import Jsonb

        cols = {k: (Jsonb(v) if k == "result" else v) for k, v in _fields(fields).items()}
        sets = "".join(f"{k} = %s, " for k in cols)
        args: list[Any] = [*cols.values(), time.time(), job_id]
        where = "job_id = %s"
        statuses = _statuses(when_status)
        if statuses:
            where += " AND status = ANY(%s)"
            args.append(list(statuses))
        with self._tx() as c:
            return bool(c.execute(f"UPDATE cutpilot_jobs SET {sets}updated = %s WHERE {where}", args).rowcount)

    def change_job(self, job_id: str, fn: Callable[[JobRow], None]) -> JobRow:
        from psycopg.types.json import Jsonb

        with self._tx() as c:
            r = c.execute(f"SELECT {_COLS} FROM cutpilot_jobs WHERE job_id = %s FOR UPDATE", (job_id,)).fetchone()
            if r is None:
                raise NotFoundError(f"no job {job_id}")
            row = _row(r)
            fn(row)
            row = JobRow.model_validate(row.model_dump())
            row.updated = time.time()
            c.execute("UPDATE cutpilot_jobs SET status = %s, progress = %s, message = %s, result = %s, updated = %s "
                      "WHERE job_id = %s", (row.status, row.progress, row.message, Jsonb(row.result), row.updated,
                                            job_id))
        return row

    def job(self, job_id: str) -> JobRow:
        with self._tx() as c:
            r = c.execute(f"SELECT {_COLS} FROM cutpilot_jobs WHERE job_id = %s", (job_id,)).fetchone()
        if r is None:
            raise NotFoundError(f"no job {job_id}")
        return _row(r)

    def jobs(self, limit: int = 50, *, unfinished: bool = False, kind: str | None = None) -> list[JobRow]:
        conds, args = [], []
        if unfinished:
            conds.append("status NOT IN ('done', 'failed')")
        if kind is not None:
            conds.append("kind = %s")
            args.append(kind)
        where = f"WHERE {' AND '.join(conds)} " if conds else ""
        order = "created ASC" if unfinished else "created DESC"
        with self._tx() as c:
            rows = c.execute(f"SELECT {_COLS} FROM cutpilot_jobs {where}ORDER BY {order} LIMIT %s",
                             (*args, limit)).fetchall()
        return [_row(r) for r in rows]

    def put(self, kind: str, doc_id: str, data: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        with self._tx() as c:
            c.execute("INSERT INTO cutpilot_docs (kind, id, data, created) VALUES (%s, %s, %s, %s) "
                      "ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data",
                      (kind, doc_id, Jsonb(data), time.time()))

    def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        with self._tx() as c:
            r = c.execute("SELECT data FROM cutpilot_docs WHERE kind = %s AND id = %s", (kind, doc_id)).fetchone()
        return _obj(r[0]) if r else None

    def change(self, kind: str, doc_id: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        from psycopg.types.json import Jsonb

        with self._tx() as c:
            r = c.execute("SELECT data FROM cutpilot_docs WHERE kind = %s AND id = %s FOR UPDATE",
                          (kind, doc_id)).fetchone()
            if r is None:
                raise NotFoundError(f"no {kind} {doc_id}")
            data = _obj(r[0])
            fn(data)
            c.execute("UPDATE cutpilot_docs SET data = %s WHERE kind = %s AND id = %s", (Jsonb(data), kind, doc_id))
        return data

    def docs(self, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        with self._tx() as c:
            rows = c.execute("SELECT data FROM cutpilot_docs WHERE kind = %s ORDER BY created DESC LIMIT %s",
                             (kind, limit)).fetchall()
        return [_obj(r[0]) for r in rows]

    def close(self) -> None:
        self._pool.close()


def open_ledger(settings: Settings, path: Path | None = None) -> Ledger:
    """Postgres at CUTPILOT_CHECKPOINT_URL when set; otherwise SQLite at `path` (default `<home>/studio.sqlite`)."""
    from cutpilot.checkpoints import postgres_url

    url = postgres_url(settings)
    if url is not None:
        return PostgresLedger(url)
    return SqliteLedger(path or settings.path("studio.sqlite"))
