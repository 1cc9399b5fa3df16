"""Named locks on a CUTPILOT_HOME: who may touch the clip store now, and who is writing the library.

The embedded stores (Qdrant Edge's WAL, qdrant-client's local folder) admit one process at a time, so every
process takes `store.lock` only for as long as it touches the store: a reader for its query, an ingest for the
commit of one finished batch. Readers therefore wait seconds, not the length of an ingest. `ingest.lock` is held
for a whole ingest run so that a second writer fails fast with a message naming the first, instead of two runs
racing to create one store. Each lock file holds its holder's pid, command and start time as JSON, so a message
(and `cutpilot doctor`) can say who holds it; the kernel drops a flock when its process dies, so a killed run
never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cutpilot.errors import StoreError

STORE = "store.lock"
INGEST = "ingest.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as the holder wrote it."""

    lock: str
    pid: int
    command: str
    since: float
    host: str = ""

    def describe(self) -> str:
        started = time.strftime("%H:%M:%S", time.localtime(self.since)) if self.since else "?"
        return f"pid {self.pid} ({self.command or 'cutpilot'}, since {started})"


def lock_dir(home: Path) -> Path:
    return home / "locks"


def _command() -> str:
    args = [os.path.basename(sys.argv[0] or "cutpilot"), *sys.argv[1:4]]
    return " ".join(args)[:120]


def read_holder(home: Path, name: str) -> Holder | None:
    """The holder recorded in a lock file, or None when the lock is free (checked with the kernel, not the file)."""
    path = lock_dir(home) / name
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        except (OSError, ValueError):
            data = {}
        return Holder(lock=name, pid=int(data.get("pid", 0)), command=str(data.get("command", "")),
                      since=float(data.get("since", 0.0)), host=str(data.get("host", "")))
    finally:
        os.close(fd)


def holders(home: Path) -> list[Holder]:
    """Every lock on this home that a live process holds now."""
    return [h for n in (INGEST, STORE) if (h := read_holder(home, n)) is not None]


class NamedLock:
    """An exclusive flock on `<home>/locks/<name>`; re-entrant for the thread that holds it, and other threads of
    the process wait for it like other processes do. Release may come from any thread (a library opened by one
    thread and closed by another)."""

    def __init__(self, home: Path, name: str) -> None:
        self.home = home
        self.name = name
        self.path = lock_dir(home) / name
        self._fd: int | None = None
        self._depth = 0
        self._owner: int | None = None
        self._busy = False
        self._cond = threading.Condition()

    def _try(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        info = {"pid": os.getpid(), "command": _command(), "since": time.time(), "host": socket.gethostname()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        self._fd = fd
        return True

    def _refusal(self, wait_s: float) -> StoreError:
        who = read_holder(self.home, self.name)
        by = who.describe() if who else f"another thread of this process (pid {os.getpid()})"
        what = "another ingest is writing this library" if self.name == INGEST else "the clip store is in use"
        waited = f" after waiting {wait_s:.0f} s" if wait_s >= 1 else ""
        return StoreError(f"{what}: {by} holds {self.path}{waited}; wait for it to finish or use another "
                          "CUTPILOT_HOME")

    def acquire(self, wait_s: float, *, on_wait: str = "") -> None:
        """Take the lock, waiting up to `wait_s` seconds (0 = fail fast); StoreError names the holder otherwise."""
        me = threading.get_ident()
        deadline = time.monotonic() + max(0.0, wait_s)
        with self._cond:
            if self._depth and self._owner == me:
                self._depth += 1
                return
            while self._depth or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._refusal(wait_s)
                self._cond.wait(min(left, 0.5))
            self._busy = True
        try:
            told = False
            delay = 0.05
            while not self._try():
                if time.monotonic() >= deadline:
                    raise self._refusal(wait_s)
                if on_wait and not told:
                    who = read_holder(self.home, self.name)
                    print(f"{on_wait}: {who.describe() if who else 'another process'} holds {self.name}",
                          file=sys.stderr, flush=True)
                    told = True
                time.sleep(delay)
                delay = min(0.5, delay * 1.5)
        except BaseException:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            raise
        with self._cond:
            self._busy = False
            self._depth = 1
            self._owner = me

    def release(self) -> None:
        with self._cond:
            if not self._depth:
                return
            self._depth -= 1
            if self._depth:
                return
            fd, self._fd, self._owner = self._fd, None, None
            if fd is not None:
                try:
                    os.ftruncate(fd, 0)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
            self._cond.notify_all()

    @property
    def held(self) -> bool:
        return self._depth > 0

    @contextmanager
    def hold(self, wait_s: float, *, on_wait: str = "") -> Iterator[None]:
        self.acquire(wait_s, on_wait=on_wait)
        try:
            yield
        finally:
            self.release()


_registry: dict[tuple[str, str], NamedLock] = {}
_registry_mutex = threading.Lock()


def named_lock(home: Path, name: str) -> NamedLock:
    """The process's one NamedLock for (home, name): two libraries on one home in one process share it (a flock
    taken twice by one process through two descriptors would block itself)."""
    key = (str(Path(home).resolve()), name)
    with _registry_mutex:
        if key not in _registry:
            _registry[key] = NamedLock(Path(home), name)
        return _registry[key]


def store_lock(home: Path) -> NamedLock:
    return named_lock(home, STORE)


def ingest_lock(home: Path) -> NamedLock:
    return named_lock(home, INGEST)
