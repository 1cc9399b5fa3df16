"""Safe destinations: what `--out` may point at, and how cutpilot recognises its own earlier outputs.

`check_out` runs before any work, so a bad `--out` costs milliseconds and touches nothing. The system folders are
refused even with `--force` (writing an ad into /etc is never what was meant); a non-empty folder or an existing
file that cutpilot did not write is refused unless `--force`. Output folders carry a small marker file
(`.cutpilot-output`) written when a run claims them, so a killed run's half-made folder is still recognised; a
rendered mp4 carries the `comment=cutpilot` tag. Claimed folders are listed in `<home>/outputs.txt`, which is
where `cutpilot gc` looks for a killed run's temp files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from cutpilot.errors import InputError

MARKER = ".cutpilot-output"
MP4_TAG = "cutpilot"
REGISTRY = "outputs.txt"
# Never written into, nor below (even with --force).
_SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys",
                 "/usr")
# Never written into themselves (their subfolders may be yours, e.g. /var/tmp/ads, /home/me/ads).
_SYSTEM_ROOTS = ("/", "/var", "/run", "/opt", "/srv", "/snap", "/home")
_VAR_OK = ("/var/tmp",)


def system_folder(p: Path) -> str | None:
    """The system folder `p` (resolved) is or lies in, else None."""
    s = str(p)
    for t in _SYSTEM_TREES:
        if s == t or s.startswith(t + "/"):
            return t
    if s in _SYSTEM_ROOTS:
        return s
    if s.startswith("/var/") and not any(s == ok or s.startswith(ok + "/") for ok in _VAR_OK):
        return "/var"
    return None


def is_cutpilot_folder(d: Path) -> bool:
    """A folder an earlier cutpilot run wrote: the marker, or (outputs from before the marker) its run.json or
    batch summary.json."""
    if (d / MARKER).is_file():
        return True
    for name, key in (("run.json", "thread_id"), ("summary.json", "variants")):
        try:
            data = json.loads((d / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and key in data:
            return True
    return False


def is_cutpilot_file(f: Path) -> bool:
    """An mp4 a cutpilot render wrote (its container carries the `comment=cutpilot` tag)."""
    from cutpilot.errors import CutpilotError
    from cutpilot.media import probe

    try:
        tags = probe(f).raw.get("format", {}).get("tags", {}) or {}
    except CutpilotError:
        return False
    return any(k.lower() == "comment" and str(v).startswith(MP4_TAG) for k, v in tags.items())


def check_out(path: Path | str, force: bool = False, *, kind: Literal["dir", "file"] = "dir") -> Path:
    """Refuse a destination that is a system folder, or an existing non-cutpilot folder/file (unless `force`).

    `kind` says what the command writes at `path`: a folder of outputs, or one file. Raises InputError (rc 2)
    naming the path; returns the path unchanged when it is fine."""
    p = Path(path)
    r = p.expanduser().resolve()
    sysdir = system_folder(r) or (system_folder(r.parent) if kind == "file" and r.parent != r else None)
    if sysdir is not None:
        where = "is" if str(r) == sysdir else f"is inside {sysdir},"
        raise InputError(f"--out {p}: {r} {where} a system folder; cutpilot never writes there (choose another "
                         f"folder)")
    if kind == "dir":
        if r.exists() and not r.is_dir():
            raise InputError(f"--out {p} is an existing file, not a folder; choose a folder name")
        if r.is_dir() and not force and any(r.iterdir()) and not is_cutpilot_folder(r):
            raise InputError(f"--out {p} is a non-empty folder that is not a cutpilot output; choose an empty or "
                             f"new folder, or pass --force to write into it")
    else:
        if r.is_dir():
            raise InputError(f"--out {p} is a folder; give a file name, e.g. {p / 'ad.mp4'}")
        if r.exists() and not force and not is_cutpilot_file(r):
            raise InputError(f"--out {p} exists and is not a cutpilot render; choose another name, or pass --force "
                             f"to overwrite it")
    return p


def claim(folder: Path | str, home: Path | str | None = None, kind: str = "run") -> Path:
    """Create `folder`, mark it as a cutpilot output and list it for `cutpilot gc` (idempotent)."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    marker = d / MARKER
    if not marker.exists():
        from cutpilot import __version__
        from cutpilot.atomic import write_text

        write_text(marker, json.dumps({"tool": "cutpilot", "version": __version__, "kind": kind}) + "\n")
    if home is not None:
        register(home, d)
    return d


def register(home: Path | str, folder: Path | str) -> None:
    """Append `folder` to `<home>/outputs.txt` unless listed (one O_APPEND write: safe from parallel runs)."""
    reg = Path(home) / REGISTRY
    line = str(Path(folder).resolve())
    if line in registered(home):
        return
    reg.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(reg, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def registered(home: Path | str) -> list[str]:
    """The output folders runs under this home have claimed."""
    try:
        text = (Path(home) / REGISTRY).read_text(encoding="utf-8")
    except OSError:
        return []
    return list(dict.fromkeys(x for x in text.splitlines() if x.strip()))
