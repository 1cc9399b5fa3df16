"""`cutpilot gc`: remove what killed runs left behind, and (with --caches) the caches, printing what it freed.

What counts as left behind: temp files named by `cutpilot.atomic` whose writing process is gone (render cache
partials, staged outputs of an unfinished set), an interrupted output switch (its journal: the switch is finished,
not undone, because every staged file was complete), and the `.part` / `.tmp` files of other tools under
CUTPILOT_HOME once they are older than --min-age (they carry no pid, so age is the only sign their writer is
gone). Output folders are the ones runs claimed (`<home>/outputs.txt`) plus any given on the command line; only
cutpilot's own temp names are touched there, never other files. The clip store and models are never touched.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

# Tool partials that carry no pid (removed from CUTPILOT_HOME only, and only once older than --min-age).
_LEGACY = ("*.part", "*.part.*", "*.tmp", "*.tmp.*", ".tmp-*", "*.mix.f32", "*.norm.f32", "concat-*.txt",
           "*.tempo.wav", "*.provider.mp4")
_LEGACY_DIRS = (".kf-*",)
_NEVER = {"store", "models"}  # the clip store and model weights: their files are never ours to judge
CACHES = ("render-cache", "cache", "voice-checks", "judge-cache")


@dataclass
class Sweep:
    """What gc found: files/folders to remove (with sizes), switches it finished, live temps it kept."""

    remove: list[tuple[Path, int]] = field(default_factory=list)
    finished: list[Path] = field(default_factory=list)
    kept: int = 0

    @property
    def freed(self) -> int:
        return sum(n for _, n in self.remove)


def _size(p: Path) -> int:
    if p.is_dir() and not p.is_symlink():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())
    try:
        return p.lstat().st_size
    except OSError:
        return 0


def _walk(root: Path, max_depth: int | None) -> list[tuple[Path, list[str], list[str]]]:
    out = []
    base = len(root.parts)
    for d, dirs, files in os.walk(root):
        here = Path(d)
        dirs[:] = [x for x in dirs if x not in _NEVER and not (here / x).is_symlink()]
        if max_depth is not None and len(here.parts) - base >= max_depth:
            dirs[:] = []
        out.append((here, dirs, files))
    return out


def find(home: Path, folders: list[Path], *, min_age_s: float, apply_switches: bool = True) -> Sweep:
    """Scan `home` and the output `folders`; finishes interrupted switches when `apply_switches`."""
    from cutpilot.atomic import JOURNAL, pid_alive, recover, temp_owner

    sweep = Sweep()
    now = time.time()
    seen: set[Path] = set()

    def consider(p: Path, legacy_ok: bool) -> None:
        if p in seen:
            return
        pid = temp_owner(p.name)
        if pid is not None:
            seen.add(p)
            if pid != os.getpid() and not pid_alive(pid):
                sweep.remove.append((p, _size(p)))
            else:
                sweep.kept += 1
            return
        if legacy_ok and any(fnmatch.fnmatch(p.name, pat) for pat in _LEGACY):
            seen.add(p)
            try:
                old = now - p.lstat().st_mtime >= min_age_s
            except OSError:
                return
            if old:
                sweep.remove.append((p, _size(p)))
            else:
                sweep.kept += 1

    roots = [(home, True, None)] + [(f, False, 3) for f in folders]
    for root, in_home, depth in roots:
        if not root.is_dir():
            continue
        for d, dirs, files in _walk(root, depth):
            if JOURNAL in files and apply_switches and recover(d):
                sweep.finished.append(d)
                files = os.listdir(d)
            legacy = in_home or d.name == "assets"
            for name in files:
                consider(d / name, legacy)
            if in_home:
                for x in list(dirs):
                    if any(fnmatch.fnmatch(x, pat) for pat in _LEGACY_DIRS):
                        p = d / x
                        if now - p.stat().st_mtime >= min_age_s and p not in seen:
                            seen.add(p)
                            sweep.remove.append((p, _size(p)))
                            dirs.remove(x)
    return sweep


def caches(home: Path) -> list[tuple[Path, int]]:
    """The cache folders under home that exist (all rebuilt on demand)."""
    return [(home / c, _size(home / c)) for c in CACHES if (home / c).is_dir()]


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def register(app: typer.Typer) -> None:
    """Attach `gc` to the root app."""

    @app.command("gc")
    def gc_cmd(
        folders: Annotated[list[Path] | None, typer.Argument(help="more output folders to clean (besides the "
                                                            "ones runs under this home claimed)")] = None,
        with_caches: Annotated[bool, typer.Option("--caches", help="also empty the caches: " + ", ".join(CACHES)
                                                  + " (rebuilt on demand; the next render is slower)")] = False,
        min_age: Annotated[float, typer.Option("--min-age", min=0, help="minutes a pid-less tool partial must be "
                                               "untouched before it counts as left behind")] = 10.0,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be freed; remove nothing")] = False,
    ) -> None:
        """Remove temp files of killed runs (render partials, unfinished output sets); --caches empties caches."""
        from cutpilot.outdir import registered
        from cutpilot.settings import get_settings

        home = get_settings().home
        outs = [Path(p) for p in registered(home)] + list(folders or [])
        sweep = find(home, outs, min_age_s=min_age * 60, apply_switches=not dry_run)
        dropped = caches(home) if with_caches else []
        inside = [c for c, _ in dropped]
        items = [(p, n) for p, n in sweep.remove if not any(p.is_relative_to(c) for c in inside)] + dropped
        verb = "would free" if dry_run else "freed"
        for d in sweep.finished:
            typer.echo(f"finished an interrupted output switch in {d}")
        for p, n in items:
            typer.echo(f"{'would remove' if dry_run else 'removed'} {p} ({_human(n)})")
            if not dry_run:
                _remove(p)
        kept = f"; kept {sweep.kept} still being written or recent" if sweep.kept else ""
        typer.echo(f"{verb} {_human(sum(n for _, n in items))} in {len(items)} item(s){kept}")
