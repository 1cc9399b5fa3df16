"""Background jobs for the studio: a SQLite ledger (`<home>/studio.sqlite`) and a few daemon worker threads.

Every update is one committed transaction, so a page reload, a second tab or a restarted server sees the same
state. A job is its kind plus JSON params; the work itself is a handler registered per kind, so a job the server
was killed in the middle of is simply handed to its handler again on the next start (the handlers resume from the
checkpoints the work keeps: ingest's done.json, the planner's thread, a batch's finished variants).
"""

from __future__ import annotations

import contextlib
import json
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cutpilot.errors import CutpilotError, NotFoundError
from cutpilot.studio.views import JobView

FINISHED = ("done", "failed")


def new_id() -> str:
    """A short random id: job, ad, batch and upload folder names (hex only, so always a safe path part)."""
    return secrets.token_hex(6)


class Ledger:
    """Jobs and the studio's own records (ads, batches) as JSON documents; thread-safe, one transaction per write."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        self._lock = threading.RLock()
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, kind TEXT, status TEXT, "
                               "progress REAL, message TEXT, result TEXT, params TEXT, created REAL, updated REAL)")
            self._conn.execute("CREATE TABLE IF NOT EXISTS docs (kind TEXT, id TEXT, data TEXT, created REAL, "
                               "PRIMARY KEY (kind, id))")

    # -- jobs ----------------------------------------------------------------------------------------------------
    def add_job(self, job_id: str, kind: str, params: dict[str, Any]) -> None:
        now = time.time()
        with self._lock, self._conn:
            self._conn.execute("INSERT INTO jobs VALUES (?, ?, 'queued', 0, '', '{}', ?, ?, ?)",
                               (job_id, kind, json.dumps(params, ensure_ascii=False), now, now))

    def update_job(self, job_id: str, **fields: Any) -> None:
        cols = {k: (json.dumps(v, ensure_ascii=False) if k == "result" else v) for k, v in fields.items()
                if k in ("status", "progress", "message", "result")}
        if not cols:
            return
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self._lock, self._conn:
            self._conn.execute(f"UPDATE jobs SET {sets}, updated = ? WHERE job_id = ?",
                               (*cols.values(), time.time(), job_id))

    def job(self, job_id: str) -> JobView:
        with self._lock:
            row = self._conn.execute("SELECT job_id, kind, status, progress, message, result, created, updated "
                                     "FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no job {job_id}")
        return _job_view(row)

    def job_params(self, job_id: str) -> tuple[str, dict[str, Any]]:
        with self._lock:
            row = self._conn.execute("SELECT kind, params FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no job {job_id}")
        return str(row[0]), dict(json.loads(row[1] or "{}"))

    def jobs(self, limit: int = 50, *, unfinished: bool = False) -> list[JobView]:
        where = "WHERE status NOT IN ('done', 'failed') " if unfinished else ""
        order = "created ASC" if unfinished else "created DESC"
        with self._lock:
            rows = self._conn.execute("SELECT job_id, kind, status, progress, message, result, created, updated "
                                      f"FROM jobs {where}ORDER BY {order} LIMIT ?", (limit,)).fetchall()
        return [_job_view(r) for r in rows]

    # -- documents -----------------------------------------------------------------------------------------------
    def put(self, kind: str, doc_id: str, data: dict[str, Any]) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT INTO docs VALUES (?, ?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET "
                               "data = excluded.data", (kind, doc_id, json.dumps(data, ensure_ascii=False),
                                                        time.time()))

    def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT data FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        return dict(json.loads(row[0])) if row else None

    def change(self, kind: str, doc_id: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Read, modify and write one document in a single transaction (two requests never lose an update)."""
        with self._lock, self._conn:
            row = self._conn.execute("SELECT data FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
            if row is None:
                raise NotFoundError(f"no {kind} {doc_id}")
            data = dict(json.loads(row[0]))
            fn(data)
            self._conn.execute("UPDATE docs SET data = ? WHERE kind = ? AND id = ?",
                               (json.dumps(data, ensure_ascii=False), kind, doc_id))
        return data

    def docs(self, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT data FROM docs WHERE kind = ? ORDER BY created DESC LIMIT ?",
                                      (kind, limit)).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _job_view(row: tuple[Any, ...]) -> JobView:
    job_id, kind, status, progress, message, result, created, updated = row
    return JobView(job_id=job_id, kind=kind, status=status, progress=min(1.0, max(0.0, float(progress or 0))),
                   message=message or "", result=json.loads(result or "{}"), created=created, updated=updated)


class JobContext:
    """What a handler gets: its job id and a throttled progress reporter."""

    def __init__(self, ledger: Ledger, job_id: str) -> None:
        self.ledger = ledger
        self.job_id = job_id
        self._last = (0.0, -1.0, "")

    def progress(self, fraction: float, message: str | None = None) -> None:
        fraction = min(1.0, max(0.0, fraction))
        now, _, last_msg = self._last
        msg = last_msg if message is None else message
        if msg == last_msg and fraction - self._last[1] < 0.01 and time.monotonic() - now < 0.5:
            return
        self._last = (time.monotonic(), fraction, msg)
        self.ledger.update_job(self.job_id, progress=fraction, message=msg)


Handler = Callable[[dict[str, Any], JobContext], dict[str, Any]]


class Jobs:
    """A queue served by `workers` daemon threads (a killed server leaves its jobs running in the ledger: the next
    start resumes them)."""

    def __init__(self, ledger: Ledger, workers: int = 2) -> None:
        self.ledger = ledger
        self.handlers: dict[str, Handler] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._serve, name=f"studio-job-{i}", daemon=True)
                         for i in range(max(1, workers))]
        self._started = False

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def start(self) -> int:
        """Start the workers and queue again every job a previous server left queued or running."""
        if not self._started:
            self._started = True
            for t in self._threads:
                t.start()
        left = self.ledger.jobs(10_000, unfinished=True)
        for j in left:
            self.ledger.update_job(j.job_id, status="queued", message="resumed after a restart"
                                   if j.status == "running" else j.message)
            self._queue.put(j.job_id)
        return len(left)

    def submit(self, kind: str, params: dict[str, Any], job_id: str | None = None) -> str:
        if kind not in self.handlers:
            raise KeyError(kind)
        job_id = job_id or new_id()
        self.ledger.add_job(job_id, kind, params)
        self._queue.put(job_id)
        return job_id

    def _serve(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with contextlib.suppress(Exception):  # the ledger already says failed; a worker never dies
                self.run(job_id)

    def run(self, job_id: str) -> None:
        """Run one job to its end in this thread (workers call it; tests may too)."""
        kind, params = self.ledger.job_params(job_id)
        if self.ledger.job(job_id).status in FINISHED:
            return
        self.ledger.update_job(job_id, status="running")
        ctx = JobContext(self.ledger, job_id)
        try:
            result = self.handlers[kind](params, ctx)
        except CutpilotError as e:
            self.ledger.update_job(job_id, status="failed", message=e.one_line())
            raise
        except Exception as e:
            first = (str(e).splitlines() or [""])[0][:300]
            self.ledger.update_job(job_id, status="failed", message=f"unexpected {type(e).__name__}: {first}")
            raise
        self.ledger.update_job(job_id, status="done", progress=1.0, result=result or {},
                               message=str((result or {}).get("message", "done")))

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
