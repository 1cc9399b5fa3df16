"""Ray actors as a worker pool: one long-lived actor per CPU, each holding its models for its whole life.

Actors, not bare tasks, because a unit's cost is dominated by what a worker loads (Whisper, the text embedder,
the planner's library snapshot): an actor loads it once and runs many units. A unit is sent to the actor with the
fewest in flight. A worker killed mid-unit is restarted by Ray (`max_restarts`) and the unit retried on it
(`max_task_retries`); units are idempotent (content-keyed, atomic writes, the driver is the one writer), so a
retry never duplicates anything.

Without `address` (or RAY_ADDRESS) a private local cluster is started on loopback with the CPUs of this machine
and stopped on close; with one, the pool joins that cluster and leaves it running.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import ray


def worker_env() -> dict[str, str]:
    """What workers inherit from the driver: its import path and its OpenMP thread count (Ray would set one
    thread per actor CPU, and Whisper's int8 kernels then round differently, so transcripts would differ)."""
    return {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count() or 1)}


def start(address: str | None = None, workers: int | None = None) -> None:
    """Join the cluster at `address`, or start a private one on this machine with `workers` CPUs (Ray binds it
    to this node's address, not loopback, and guards it with its token auth; no dashboard)."""
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": worker_env()["OMP_NUM_THREADS"]}})
    else:
        ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1", runtime_env={"env_vars": worker_env()})


class RayPool:
    def __init__(self, worker_cls: type, args: tuple[Any, ...], *, address: str | None = None,
                 workers: int | None = None, max_retries: int = 3) -> None:
        self._own = not ray.is_initialized()
        if self._own:
            start(address, workers)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, workers or cpus)
        actor: Any = ray.remote(max_restarts=max_retries, max_task_retries=max_retries, num_cpus=1)(worker_cls)
        self._actors: list[Any] = [actor.remote(*args) for _ in range(self.workers)]
        self._inflight = [0] * self.workers
        self._owner: dict[Any, int] = {}
        self._lock = threading.Lock()
        self._retries = max_retries

    def submit(self, method: str, *args: Any) -> Any:
        """Run `method(*args)` on the least busy actor; returns a reference for `get`."""
        with self._lock:
            i = min(range(self.workers), key=self._inflight.__getitem__)
            self._inflight[i] += 1
            ref = getattr(self._actors[i], method).remote(*args)
            self._owner[ref] = i
        return ref

    def get(self, ref: Any) -> Any:
        """The unit's value; a typed error raised in the worker is raised here as itself, anything else (a bug, a
        worker lost beyond its retries) as a one-line CutpilotError, so a caller's fail-and-continue still holds."""
        from cutpilot.errors import CutpilotError

        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause
            if isinstance(cause, CutpilotError):
                raise cause from None
            first = (str(cause).splitlines() or [""])[0]
            raise CutpilotError(f"worker failed: {type(cause).__name__}: {first}") from None
        except ray.exceptions.RayError as e:
            raise CutpilotError(f"worker lost after {self._retries} retries: {type(e).__name__}") from None
        finally:
            with self._lock:
                i = self._owner.pop(ref, None)
                if i is not None:
                    self._inflight[i] -= 1

    def stats(self) -> list[dict[str, Any]]:
        """Each actor's own account (pid, models loaded, units run, peak RSS)."""
        return list(ray.get([a.stats.remote() for a in self._actors]))

    def close(self) -> None:
        for a in self._actors:
            ray.kill(a)
        self._actors = []
        if self._own:
            ray.shutdown()
