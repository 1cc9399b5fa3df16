"""Where units of work run: in this process (`local`, the default, no Ray needed) or on a Ray cluster (`ray`).

A unit is one source window of an ingest or one variant of a batch. Units are keyed by content and write their
outputs atomically, so the executor only decides *where* a unit runs, never what it makes: the two executors
give the same records and the same storyboards. The driver stays the one writer of the clip library (the
embedded store admits one process, `index.lock`); workers return records and never open the library.

`ray` is imported only in `cutpilot.executors.ray_pool`, so the local path and the CLI stay light.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Literal, Protocol

from cutpilot.errors import InputError

ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = ("local", "ray")


class WorkerPool(Protocol):
    """Long-lived workers, each built once (models loaded once per worker), that run named methods."""

    workers: int

    def submit(self, method: str, *args: Any) -> Any: ...

    def get(self, ref: Any) -> Any: ...

    def stats(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def resolve(name: str | None, default: str = "local") -> ExecutorName:
    """The executor a command asked for (flag, else CUTPILOT_EXECUTOR through settings); one-line error."""
    value = (name or default or "local").strip().lower()
    if value not in EXECUTORS:
        raise InputError(f"unknown executor {value!r}; use local or ray")
    return value  # type: ignore[return-value]


def open_pool(worker_cls: type, args: tuple[Any, ...], *, address: str | None = None, workers: int | None = None,
              max_retries: int = 3) -> WorkerPool:
    """A Ray pool of `worker_cls(*args)` actors (one per CPU unless `workers`); InputError when Ray is missing."""
    try:
        from cutpilot.executors.ray_pool import RayPool
    except ImportError as e:
        raise InputError(f"--executor ray needs Ray: pip install 'cutpilot[ray]' ({e})") from None
    return RayPool(worker_cls, args, address=address, workers=workers, max_retries=max_retries)


class LazyPool:
    """A pool opened on the first unit it is given, so a re-run whose units are all finished starts no cluster."""

    def __init__(self, worker_cls: type, args: tuple[Any, ...], *, address: str | None = None,
                 workers: int | None = None, max_retries: int = 3) -> None:
        self._spec = (worker_cls, args, address, workers, max_retries)
        self.workers = workers or os.cpu_count() or 1
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()

    @property
    def opened(self) -> bool:
        return self._pool is not None

    def _open(self) -> WorkerPool:
        with self._lock:
            if self._pool is None:
                cls, args, address, workers, retries = self._spec
                self._pool = open_pool(cls, args, address=address, workers=workers, max_retries=retries)
                self.workers = self._pool.workers
            return self._pool

    def submit(self, method: str, *args: Any) -> Any:
        return self._open().submit(method, *args)

    def get(self, ref: Any) -> Any:
        return self._open().get(ref)

    def stats(self) -> list[dict[str, Any]]:
        return self._pool.stats() if self._pool is not None else []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
