"""Background jobs for the studio: a ledger (cutpilot.ledger: `<home>/studio.sqlite`, or Postgres at
CUTPILOT_CHECKPOINT_URL) and a few daemon worker threads.

Every update is one committed transaction, so a page reload, a second tab or a restarted server sees the same
state. A job is its kind plus JSON params; the work itself is a handler registered per kind, so a job the server
was killed in the middle of is simply handed to its handler again on the next start (the handlers resume from the
checkpoints the work keeps: ingest's done.json, the planner's thread, a batch's finished variants).
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from cutpilot.errors import CutpilotError
from cutpilot.ledger import FINISHED, Ledger


def new_id() -> str:
    """A short random id: job, ad, batch and upload folder names (hex only, so always a safe path part)."""
    return secrets.token_hex(6)


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
