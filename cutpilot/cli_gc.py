"""`cutpilot gc`: remove what nothing uses any more, printing what it freed per part; --dry-run only lists it.

Temp files: the ones named by `cutpilot.atomic` whose writing process is gone (render cache partials, staged
outputs of an unfinished set), an interrupted output switch (its journal: the switch is finished, not undone,
because every staged file was complete), and the `.part` / `.tmp` files of other tools under CUTPILOT_HOME once
they are older than --min-age (they carry no pid, so age is the only sign their writer is gone). Output folders
are the ones runs claimed (`<home>/outputs.txt`) plus any given on the command line; only cutpilot's own temp
names are touched there, never other files.

Render cache: the entries no kept run names. A render records the cache files it read or made in its run.json
(`render.cache_files`), so "kept" means a run.json still in one of those output folders; an entry used within
--min-age stays too (a render touches its entries when it starts, before its run.json exists). Keyframes: the
folders of sources with no clip left in any collection of the home's store, and frames no clip names; skipped
while an ingest or another process holds the store. The clip store and models are never touched.
"""

from __future__ import annotations

import contextlib
import filecmp
import fnmatch
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from cutpilot.errors import CutpilotError, StoreError

if TYPE_CHECKING:
    from cutpilot.settings import Settings
    from index.library import Library
    from index.store import StoreMeta

# Tool partials that carry no pid (removed from CUTPILOT_HOME only, and only once older than --min-age).
_LEGACY = ("*.part", "*.part.*", "*.tmp", "*.tmp.*", ".tmp-*", "*.mix.f32", "*.norm.f32", "concat-*.txt",
           "*.tempo.wav", "*.provider.mp4")
_LEGACY_DIRS = (".kf-*",)
_NEVER = {"store", "models"}  # the clip store and model weights: their files are never ours to judge
CACHES = ("render-cache", "cache", "voice-checks", "judge-cache")
RENDER_CACHES = ("render-cache", "cache/render")  # a run's renders, and `cutpilot render`'s default
_STORE_WAIT_S = 5.0


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


def _temp_name(name: str) -> bool:
    from cutpilot.atomic import temp_owner

    return temp_owner(name) is not None or any(fnmatch.fnmatch(name, pat) for pat in _LEGACY)


def _entries(folder: Path) -> list[Path]:
    """Finished files under a cache folder (temps and partials are the temp sweep's business)."""
    out = []
    for d, dirs, files in os.walk(folder):
        dirs[:] = [x for x in dirs if not any(fnmatch.fnmatch(x, pat) for pat in _LEGACY_DIRS)]
        out += [Path(d) / f for f in files if not _temp_name(f) and not (Path(d) / f).is_symlink()]
    return sorted(out)


# --- render cache: the entries no kept run names ----------------------------------------------------------------
def kept_runs(folders: list[Path]) -> list[Path]:
    """The run.json files in the output folders (a batch keeps one per variant folder)."""
    found: dict[Path, None] = {}
    for f in folders:
        if f.is_dir():
            for rj in [f / "run.json", *sorted(f.glob("*/run.json"))]:
                if rj.is_file():
                    found[rj.resolve()] = None
    return list(found)


def cache_refs(home: Path, runs: list[Path]) -> tuple[set[Path], int]:
    """The cache files kept runs name (their run.json `render.cache_files`), and how many rendered runs name
    none and matched no cached final.

    A run recorded before renders listed their cache files still keeps its final render: the cache's
    `final-<key>.mp4` is a byte copy of the run's ad.mp4, so the one with the same bytes is found by content."""
    refs: set[Path] = set()
    unnamed: list[Path] = []
    for rj in runs:
        try:
            data = json.loads(rj.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        render = data.get("render") if isinstance(data, dict) else None
        if not isinstance(render, dict):
            continue
        files, where = render.get("cache_files"), render.get("cache_dir")
        if isinstance(files, list) and isinstance(where, str) and where:
            base = Path(where).resolve()
            refs.update((base / str(n)).resolve() for n in files)
        elif (rj.parent / "ad.mp4").is_file():
            unnamed.append(rj.parent / "ad.mp4")
    finals: dict[int, list[Path]] = {}
    if unnamed:
        for c in RENDER_CACHES:
            for f in sorted((home / c).glob("final-*.mp4")):
                finals.setdefault(f.stat().st_size, []).append(f)
    lost = 0
    for ad in unnamed:
        same = next((f for f in finals.get(ad.stat().st_size, []) if filecmp.cmp(ad, f, shallow=False)), None)
        if same is None:
            lost += 1
        else:
            refs.update({same.resolve(), same.with_suffix(".json").resolve()})
    return refs, lost


def unreferenced_cache(home: Path, refs: set[Path], *, min_age_s: float) -> tuple[list[tuple[Path, int]], int]:
    """Render-cache files no kept run names, and how many unnamed ones were kept as recently used.

    A render touches every entry it reads or makes when it starts, so an entry used within `min_age_s` may
    belong to a render still running (whose run.json does not exist yet): it stays."""
    now = time.time()
    out: list[tuple[Path, int]] = []
    recent = 0
    for c in RENDER_CACHES:
        for f in _entries(home / c):
            if f.resolve() in refs:
                continue
            try:
                st = f.lstat()
            except OSError:
                continue
            if now - st.st_mtime < min_age_s:
                recent += 1
            else:
                out.append((f, st.st_size))
    return out, recent


# --- keyframes: folders and frames of clips no longer in the library ------------------------------------------
@dataclass
class _StubEmbedder:
    """Stands in for the model a store was built with: opening the store then loads no model."""

    model_id: Any
    dim: Any

    def embed(self, texts: list[str]) -> Any:
        raise StoreError("housekeeping reads the store; it never embeds")


def collections(home: Path) -> list[tuple[str, str, StoreMeta | None]]:
    """The embedded collections under `home/store` as (backend, collection, the meta they were built with),
    read from their files without opening them."""
    from index.store import StoreMeta

    found: list[tuple[str, str, StoreMeta | None]] = []
    edge = home / "store" / "edge"
    if edge.is_dir():
        for d in sorted(edge.iterdir()):
            if (d / "meta.json").is_file():
                try:
                    found.append(("edge", d.name, StoreMeta.model_validate_json((d / "meta.json").read_text())))
                except ValueError:
                    found.append(("edge", d.name, None))
    local = home / "store" / "local" / "meta.json"
    if local.is_file():
        try:
            cols = json.loads(local.read_text(encoding="utf-8")).get("collections", {})
        except (OSError, ValueError):
            cols = {}
        for name, cfg in sorted(cols.items()):
            meta = ((cfg or {}).get("metadata") or {}).get("cutpilot")
            try:
                found.append(("local", name, StoreMeta.model_validate(meta) if meta else None))
            except ValueError:
                found.append(("local", name, None))
    return found


@contextlib.contextmanager
def open_store(settings: Settings, backend: str, collection: str, meta: StoreMeta | None,
               wait_s: float) -> Iterator[Library]:
    """The library of one collection, opened with stand-ins for the models its meta names (none is loaded),
    waiting at most `wait_s` for the store; closed on exit."""
    from index.library import Library

    s = settings.model_copy(update={"collection": collection, "store_backend": backend,
                                    "store_wait_s": min(wait_s, settings.store_wait_s)})
    if meta is None:  # unknown (server, or an old store): the configured embedders, loaded only if they must be
        lib = Library.open(s, backend=backend)
    else:
        text = _StubEmbedder(meta.text_model, meta.text_dim)
        image = _StubEmbedder(meta.image_model, meta.image_dim)
        lib = Library.open(s, embedder=text, image_embedder=cast(Any, image), backend=backend)
    try:
        yield lib
    finally:
        lib.close()


def library_frames(settings: Settings, *, wait_s: float) -> dict[str, set[str]]:
    """Every source hash in the home's libraries (all collections) → the keyframe file names its clips use.

    Raises StoreError when a store cannot be read now (locked, or refuses): then nothing is orphaned."""
    from index.lock import INGEST, STORE, read_holder
    from index.store import resolve_backend

    home = settings.home
    for name in (INGEST, STORE):
        who = read_holder(home, name)
        if who is not None and who.pid != os.getpid():
            raise StoreError(f"{'an ingest' if name == INGEST else 'the clip store'} is in use by {who.describe()}")
    cols = collections(home)
    if resolve_backend(settings) == "server":
        cols.append(("server", settings.collection, None))
    used: dict[str, set[str]] = {}
    for backend, collection, meta in cols:
        with open_store(settings, backend, collection, meta, wait_s) as lib:
            for rec in lib.records():
                names = used.setdefault(rec.source_hash, set())
                names.update(Path(k).name for k in rec.keyframes)
    return used


def orphan_keyframes(home: Path, used: dict[str, set[str]], *, min_age_s: float) -> list[tuple[Path, int]]:
    """Keyframe folders of sources with no clip left, and frames in live folders no clip names (each untouched
    for `min_age_s`: an ingest may be writing them right now)."""
    root = home / "keyframes"
    if not root.is_dir():
        return []
    now = time.time()
    out: list[tuple[Path, int]] = []

    def old(p: Path) -> bool:
        try:
            return now - p.lstat().st_mtime >= min_age_s
        except OSError:
            return False

    for d in sorted(root.iterdir()):
        if d.is_symlink() or not d.is_dir() or any(fnmatch.fnmatch(d.name, pat) for pat in _LEGACY_DIRS):
            continue
        files = _entries(d)
        if d.name not in used:
            if old(d) and all(old(f) for f in files):
                out.append((d, _size(d)))
            continue
        names = used[d.name]
        out += [(f, _size(f)) for f in files
                if f.parent == d and f.suffix.lower() == ".jpg" and f.name not in names and old(f)]
    return out


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
        min_age: Annotated[float, typer.Option("--min-age", min=0, help="minutes a pid-less tool partial, an "
                                               "unreferenced cache entry or an orphaned keyframe must be untouched "
                                               "before it counts as left behind")] = 10.0,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be freed; remove nothing")] = False,
    ) -> None:
        """Remove what nothing uses: temp files of killed runs, render-cache entries no kept run names, keyframes
        of clips no longer in the library; --caches empties the caches."""
        from cutpilot.outdir import registered
        from cutpilot.settings import get_settings

        settings = get_settings()
        home = settings.home
        age = min_age * 60
        outs = [Path(p) for p in registered(home)] + list(folders or [])
        sweep = find(home, outs, min_age_s=age, apply_switches=not dry_run)
        dropped = caches(home) if with_caches else []
        inside = [c for c, _ in dropped]
        notes: list[str] = []
        kept = sweep.kept
        parts: list[tuple[str, list[tuple[Path, int]]]] = [("temp files", sweep.remove)]
        if not with_caches:
            refs, lost = cache_refs(home, kept_runs(outs))
            unref, recent = unreferenced_cache(home, refs, min_age_s=age)
            parts.append(("render cache", unref))
            kept += recent
            if lost:
                notes.append(f"{lost} kept run(s) were recorded before renders named their cache files and match "
                             "no cached final: re-rendering them is slower, nothing else is lost")
        try:
            used = library_frames(settings, wait_s=_STORE_WAIT_S)
        except (CutpilotError, OSError, RuntimeError) as e:
            notes.append(f"keyframes not checked: {' '.join(str(e).split())}")
        else:
            if used or not (home / "keyframes").is_dir() or collections(home):
                parts.append(("keyframes", orphan_keyframes(home, used, min_age_s=age)))
            else:
                notes.append(f"keyframes not checked: no clip store under {home / 'store'} to compare them with")
        parts.append(("caches", dropped))
        parts = [(name, [(p, n) for p, n in items if name == "caches" or
                         not any(p.is_relative_to(c) for c in inside)]) for name, items in parts]
        verb = "would free" if dry_run else "freed"
        for d in sweep.finished:
            typer.echo(f"finished an interrupted output switch in {d}")
        for _, items in parts:
            for p, n in items:
                shown = f"{p}/" if p.is_dir() and not p.is_symlink() else str(p)
                typer.echo(f"{'would remove' if dry_run else 'removed'} {shown} ({_human(n)})")
                if not dry_run:
                    _remove(p)
        for name, items in parts:
            if items or name != "caches":
                typer.echo(f"{name}: {verb} {_human(sum(n for _, n in items))} in {len(items)} item(s)")
        for note in notes:
            typer.echo(f"note: {note}")
        everything = [x for _, items in parts for x in items]
        tail = f"; kept {kept} still being written or recent" if kept else ""
        typer.echo(f"{verb} {_human(sum(n for _, n in everything))} in {len(everything)} item(s){tail}")
