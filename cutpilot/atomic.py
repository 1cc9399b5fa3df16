"""Atomic output files and output sets: a kill at any moment leaves the previous good file (or set) or the new one.

A file is written to a temp name in its own folder (`.ad.mp4~<pid>-<rand>.part.mp4`: same filesystem, so the
rename is atomic; the pid lets `cutpilot gc` tell a killed writer's leftovers from a live one's), fsynced, then
renamed over the old. A run's outputs are an `OutputSet`: every file is staged as a temp first; only when all
exist is a small commit journal written, then each temp is renamed into place (run.json last) and the journal
removed. A kill before the journal leaves the old set untouched (plus temps for gc); a kill during the renames
leaves the journal, and the next writer of that folder (or `cutpilot gc`) finishes the switch, because every
staged temp was complete and fsynced before the journal existed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

JOURNAL = ".cutpilot-commit.json"
_TEMP_RE = re.compile(r"^\..+~(?P<pid>\d+)-[0-9a-f]{8}\.part(\.[^.~]+)?$")


def temp_path(path: Path | str) -> Path:
    """A fresh temp name beside `path` that keeps its extension (ffmpeg and friends pick formats by it)."""
    p = Path(path)
    return p.with_name(f".{p.name}~{os.getpid()}-{secrets.token_hex(4)}.part{p.suffix}")


def temp_owner(name: str) -> int | None:
    """The pid that wrote a temp made by `temp_path`, or None when the name is not one of ours."""
    m = _TEMP_RE.match(name)
    return int(m.group("pid")) if m else None


def pid_alive(pid: int) -> bool:
    """Whether a process runs (a zombie counts as dead: it writes nothing more)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory; the rename still holds
        _fsync(folder)


@contextlib.contextmanager
def replacing(path: Path | str) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `path` atomically, on any error it is removed."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(dest)
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"nothing was written for {dest}")
        _fsync(tmp)
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path | str, text: str) -> Path:
    """Atomic `Path.write_text` (utf-8)."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Atomic `Path.write_bytes`."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def copy_file(src: Path | str, dest: Path | str) -> Path:
    """Copy `src` over `dest` atomically (a half-copied file is never seen under the final name)."""
    with replacing(dest) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dest)


def recover(folder: Path | str) -> int:
    """Finish a switch a killed writer started (its journal is here); returns how many files were moved.

    A journal whose writer still runs is left alone: that writer is renaming right now."""
    d = Path(folder)
    journal = d / JOURNAL
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        journal.unlink(missing_ok=True)  # written atomically, so unreadable means not ours: nothing to finish
        return 0
    if int(data.get("pid", 0)) != os.getpid() and pid_alive(int(data.get("pid", 0))):
        return 0
    moved = 0
    for tmp_name, final in data.get("moves", []):
        tmp = d / str(tmp_name)
        if tmp.exists() and "/" not in str(final) and "/" not in str(tmp_name):
            os.replace(tmp, d / str(final))
            moved += 1
    for name in data.get("drop", []):
        if "/" not in str(name):
            (d / str(name)).unlink(missing_ok=True)
    _fsync_dir(d)
    journal.unlink(missing_ok=True)
    _fsync_dir(d)
    return moved


def stale_temps(folder: Path | str) -> list[Path]:
    """Temps in `folder` (not recursive) left by writers that are no longer running."""
    d = Path(folder)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        pid = temp_owner(p.name)
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            out.append(p)
    return out


class OutputSet:
    """A run's output files, replaced together: `path(name)` / `write_text(name, …)` stage, `commit()` switches.

    Used as a context manager, an exception (or a missing staged file at commit) discards the staged temps and
    leaves the previous set as it was."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        recover(self.folder)
        for p in stale_temps(self.folder):
            p.unlink(missing_ok=True)
        self._staged: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        """The temp path to write `name` to (the same one if asked twice)."""
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"output name must be a plain file name, got {name!r}")
        if name not in self._staged:
            self._staged[name] = temp_path(self.folder / name)
        return self._staged[name]

    def write_text(self, name: str, text: str) -> Path:
        """Stage a text file; returns its final path."""
        self.path(name).write_text(text, encoding="utf-8")
        return self.folder / name

    def final(self, name: str) -> Path:
        return self.folder / name

    def commit(self, last: tuple[str, ...] = ("run.json",), drop: tuple[str, ...] = ()) -> dict[str, Path]:
        """Rename every staged file into place (the `last` names after the rest); all must exist first.

        `drop` names files of the previous set this one has no counterpart for (e.g. ad.mp4 after a plan-only
        run): they are removed with the switch, so no stale file sits beside the new set."""
        missing = [n for n, t in self._staged.items() if not t.is_file()]
        if missing:
            self.abort()
            raise FileNotFoundError(f"output set in {self.folder} incomplete: {', '.join(missing)} not written")
        names = sorted(self._staged, key=lambda n: (n in last, last.index(n) if n in last else 0))
        for n in names:
            _fsync(self._staged[n])
        moves = [[self._staged[n].name, n] for n in names]
        drops = [n for n in drop if n not in self._staged and "/" not in n]
        write_text(self.folder / JOURNAL, json.dumps({"pid": os.getpid(), "moves": moves, "drop": drops}))
        for n in names:
            os.replace(self._staged[n], self.folder / n)
        for n in drops:
            (self.folder / n).unlink(missing_ok=True)
        _fsync_dir(self.folder)
        (self.folder / JOURNAL).unlink(missing_ok=True)
        _fsync_dir(self.folder)
        done = {n: self.folder / n for n in names}
        self._staged.clear()
        return done

    def abort(self) -> None:
        """Drop every staged temp; the previous set stays as it was."""
        for t in self._staged.values():
            t.unlink(missing_ok=True)
        self._staged.clear()

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()
