"""Batch: one row per brief (yaml / jsonl / csv) times a variants matrix (audiences × aspects × durations) →
千人千面 variants. Fail-and-continue, resumable, summary.json. A variant is
skipped only when its folder holds the complete set made by the same identity (brief row, axes, library state,
output settings, folder): a changed brief or library, a missing file or another folder means it is made again.

`executor="ray"`: one Ray task per unfinished variant, on long-lived actors (`BatchWorker`). Planning needs
clip search and the embedded store admits one process, so each worker searches its own read-only snapshot:
a byte copy of the store's folder, packed once by the driver and unpacked by each worker into a private temp
folder, hence the same search results (ties included) and the same storyboards as the local path. Planning
stays in the worker with the render rather than on the driver because the graph plans and renders in one
checkpointed run, and splitting them would put the planner (LLM calls, TTS, the voice check) on the single
driver, which is the cost that has to scale out. A snapshot is a copy of the library per worker, which fits
libraries of up to some 10^5 clips; beyond that the library belongs on a Qdrant server (QDRANT_URL), which
every worker queries directly. A clip source that lives in memory (tests) is sent as is. Skip checks run on the
driver, so a re-run of a finished batch starts no cluster at all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import re
import resource
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cutpilot.errors import CutpilotError, InputError
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief


class BatchRow(BaseModel):
    """One input row: a free-text brief and/or structured fields, plus the variants to make from it."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    brief: str = ""
    product: str | None = None
    duration_s: float | None = None
    aspect: Literal["9:16", "1:1", "4:5", "16:9"] | None = None
    lang: Literal["zh", "en"] | None = None
    audience: str | None = None
    channel: str | None = None
    audiences: list[str] = Field(default_factory=list)
    aspects: list[Literal["9:16", "1:1", "4:5", "16:9"]] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    durations: list[float] = Field(default_factory=list)
    strict: bool = False  # a claim the ad may not make fails the variant instead of being fixed
    variants: int = Field(default=1, ge=1, le=20, description="test variants per cell: distinct hooks (Brief.variant)")


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    row: int
    text: str
    base: dict[str, Any]
    strict: bool = False
    test: int = 0  # which test variant of its cell (0: the top picks)


def _split(v: Any) -> list[Any]:
    if v is None or v == "":
        return []
    if isinstance(v, list):
        return v
    return [x.strip() for x in re.split(r"[|;,，、]", str(v)) if x.strip()]


def load_rows(path: Path) -> list[BatchRow]:
    """Read .yaml/.yml (a list, or {briefs: [...]}) / .jsonl / .csv; a bad row is a one-line InputError."""
    if not path.is_file():
        raise InputError(f"batch file not found: {path}")
    suffix = path.suffix.lower()
    raw: list[dict[str, Any]]
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            raw = data.get("briefs", []) if isinstance(data, dict) else list(data or [])
        elif suffix == ".jsonl":
            raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as f:
                raw = [{k: v for k, v in r.items() if k and v not in (None, "")} for r in csv.DictReader(f)]
        else:
            raise InputError(f"batch file must be .yaml, .jsonl or .csv (got {path.name})")
    except (json.JSONDecodeError, ValueError) as e:
        raise InputError(f"cannot read {path.name}: {e}") from None
    rows = []
    for n, r in enumerate(raw, start=1):
        if isinstance(r, str):
            r = {"brief": r}
        for k in ("audiences", "aspects", "channels", "durations"):
            if k in r:
                r[k] = _split(r[k])
        try:
            rows.append(BatchRow.model_validate(r))
        except ValidationError as e:
            err = e.errors()[0]
            raise InputError(f"{path.name} row {n}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    if not rows:
        raise InputError(f"{path.name} has no briefs")
    return rows


def expand(rows: list[BatchRow]) -> list[Variant]:
    """The variants matrix of every row, with stable keys (so a re-run finds finished variants)."""
    out: list[Variant] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(rows):
        rid = _slug(r.id) if r.id else f"row{i + 1}"  # a folder name: an id like "../x" must stay inside --out
        auds: list[str | None] = list(r.audiences) or [r.audience]
        asps: list[str | None] = list(r.aspects) or [r.aspect]
        chans: list[str | None] = list(r.channels) or [r.channel]
        durs: list[float | None] = list(r.durations) or [r.duration_s]
        for aud, asp, ch, dur, test in itertools.product(auds, asps, chans, durs, range(r.variants)):
            base: dict[str, Any] = {"text": r.brief}
            for k, v in (("product", r.product), ("lang", r.lang), ("audience", aud), ("aspect", asp),
                         ("channel", ch), ("duration_s", dur)):
                if v is not None:
                    base[k] = v
            if test:
                base["variant"] = test
            parts = [rid] + [_slug(str(x)) for x in (aud, asp, ch, f"{dur:g}s" if dur else None) if x]
            if r.variants > 1:
                parts.append(f"t{test + 1}")
            key = "__".join(parts)
            if key in seen:
                raise InputError(f"rows {seen[key] + 1} and {i + 1} would both write variant folder {key!r}; "
                                 f"give them different ids")
            seen[key] = i
            out.append(Variant(key=key, row=i, text=r.brief, base=base, strict=r.strict, test=test))
    return out


def _slug(s: str) -> str:
    return re.sub(r"[^\w\u4e00-\u9fff-]+", "-", s.replace(":", "x")).strip("-")[:40] or "x"


# Settings that change what a variant looks or sounds like (never secrets, timeouts or tool paths).
_OUTPUT_SETTINGS = ("text_embedder", "clip_model", "clip_pretrained", "image_weight", "openai_base_url", "llm_model",
                    "vlm_model", "tts_model", "tts_voice", "zh_voice", "voice_check", "voice_check_max_cer",
                    "voice_check_max_wer", "image_to_video_url", "scene_gen_url", "tryon_url", "font_path",
                    "font_index", "music_dir")
OUTPUT_FILES = ("storyboard.json", "timeline.json", "captions.srt", "timeline.otio", "run.json")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def library_state(library: Any) -> dict[str, Any]:
    """What the planner reads from the library, reduced to a count and one digest over every clip's id + payload
    (an edit, an added or a deleted clip changes it). One pass per batch, not per variant."""
    rows: list[tuple[str, str]] = []
    store = getattr(getattr(library, "library", library), "store", None)
    records = getattr(library, "records", None)
    if store is not None and hasattr(store, "scroll"):
        rows = [(str(p.get("clip_id")), _digest(p)) for p in store.scroll()]
    elif isinstance(records, dict):
        rows = [(str(k), _digest(r.model_dump(mode="json"))) for k, r in records.items()]
    elif callable(records):
        rows = [(r.clip_id, _digest(r.model_dump(mode="json"))) for r in records()]
    else:
        return {"clips": None, "digest": type(library).__name__}
    return {"clips": len(rows), "digest": _digest(sorted(rows))[:32]}


def settings_state(settings: Settings) -> dict[str, Any]:
    """The output-changing settings, plus the product facts book (what ads may state)."""
    book = settings.home / "products.json"
    facts = hashlib.sha256(book.read_bytes()).hexdigest()[:32] if book.is_file() else None
    return {**{k: getattr(settings, k, None) for k in _OUTPUT_SETTINGS}, "products": facts}


def variant_identity(v: Variant, *, library: dict[str, Any], settings: dict[str, Any], planner: str | None,
                     render: bool, quality: str, folder: Path) -> str:
    """A variant is what it makes plus where: its row's brief fields with its own axis values (`base`; adding an
    audience to a row leaves the others alone), the library and settings it read, and its output folder. Any
    change gives a new identity, so a stale checkpoint can never stand in for it."""
    return _digest({"text": v.text, "variant": v.base, "key": v.key, "library": library,
                    **({"strict": True} if v.strict else {}),
                    "settings": settings, "planner": planner, "render": render, "quality": quality,
                    "folder": str(folder.resolve())})


def finished_here(vdir: Path, thread_id: str, render: bool) -> str | None:
    """None when `vdir` holds this identity's complete set; else why the variant has to be made (again)."""
    try:
        made_by = json.loads((vdir / "run.json").read_text(encoding="utf-8")).get("thread_id")
    except (OSError, ValueError, AttributeError):
        return "new" if not (vdir / "run.json").exists() else "run.json unreadable: made again"
    if made_by != thread_id:
        return "brief, library or settings changed since the last run: made again"
    missing = [f for f in (*OUTPUT_FILES, *(("ad.mp4",) if render else ())) if not (vdir / f).is_file()]
    return f"{', '.join(missing)} missing: made again" if missing else None


def _inside(root: Path, result: dict[str, Any]) -> bool:
    paths = [result.get("out_dir"), *(result.get("paths") or {}).values()]
    return all(Path(p).resolve().is_relative_to(root) for p in paths if p)


def _skipped(v: Variant, vdir: Path, thread_id: str) -> dict[str, Any]:
    present = {k: str(vdir / f) for k, f in (("storyboard", "storyboard.json"), ("timeline", "timeline.json"),
                                             ("captions", "captions.srt"), ("otio", "timeline.otio"),
                                             ("ad", "ad.mp4"), ("run", "run.json")) if (vdir / f).is_file()}
    return {"key": v.key, "status": "skipped", "out_dir": str(vdir), "thread_id": thread_id,
            "paths": present, "note": "already finished"}


def make_variant(door: Any, v: Variant, vdir: Path, root: Path, thread_id: str, why: str, *, render: bool,
                 quality: str) -> dict[str, Any]:
    """One unfinished variant through the front door; a typed failure is a failed row, not an exception."""
    try:
        base = Brief.model_validate(v.base)
        r = door.make(v.text or base, out_dir=vdir, base=base, render=render,
                      quality=quality, thread_id=thread_id, strict=v.strict)
        res = {"key": v.key, "status": "ok", "out_dir": str(vdir), "thread_id": thread_id, "paths": r.paths,
               "total_s": r.timeline.duration_ms / 1000, "brain": r.run.brain, "warnings": r.run.warnings}
        if why != "new":
            res["note"] = why
    except (CutpilotError, ValidationError) as e:
        msg = e.one_line() if isinstance(e, CutpilotError) else str(e).splitlines()[0]
        return {"key": v.key, "status": "failed", "out_dir": str(vdir), "error": msg}
    if not _inside(root, res):
        return {"key": v.key, "status": "failed", "out_dir": str(vdir),
                "error": f"outputs were written outside the batch folder {root}"}
    return res


class LibrarySnapshot:
    """A read-only copy of what the planner searches, for workers that may not open the library: the clip
    source itself when it lives in memory, nothing when the library is a Qdrant server (workers open it), else
    the embedded store's folder, flushed and packed as bytes (so it travels to any machine), which `open`
    unpacks into a private folder. A byte copy, not a re-insert of the points: the store orders tied scores
    by its internal point order, so only a byte copy searches exactly like the original."""

    def __init__(self, library: Any) -> None:
        self.source: Any = None
        self.archive = b""
        self.meta: Any = None
        self.backend: str | None = None
        if hasattr(library, "find") or not hasattr(library, "batch"):
            self.source = library
            return
        from index.store import store_path

        with library.batch() as store:
            self.meta, self.backend = store.meta, store.backend
            if self.backend == "server":
                return
            shard = getattr(getattr(store, "_b", None), "shard", None)  # Qdrant Edge buffers writes until flushed
            if shard is not None:
                shard.flush()
            folder = store_path(library.settings, self.backend)
            if self.backend == "local":
                folder = folder.parent  # qdrant-client's local folder holds the collection beside its metadata
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:  # the store preallocates sparse
                # files (32 MB pages of zeros): compressed they travel as a few MB
                tar.add(folder, arcname=".")
            self.archive = buf.getvalue()

    def open(self, settings: Settings) -> Any:
        """The worker's library: searches exactly what the driver's would."""
        if self.source is not None:
            return self.source
        from index.library import Library

        if self.backend == "server":
            return Library.open(settings)
        from index.clipvec import get_image_embedder
        from index.embed import get_text_embedder
        from index.store import ClipStore, store_path

        private = settings.model_copy(update={"home": Path(tempfile.mkdtemp(prefix="cp-snapshot-"))})
        folder = store_path(private, self.backend or "edge")
        folder = folder.parent if self.backend == "local" else folder
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(self.archive), mode="r:gz") as tar:
            tar.extractall(folder, filter="data")
        store = ClipStore.open(private, self.meta, backend=self.backend)
        image = get_image_embedder(settings) if self.meta.image_model else None
        return Library(store, get_text_embedder(settings), image, settings)


class BatchWorker:
    """A worker's state for its whole life (a Ray actor): the library snapshot and one front door over it."""

    def __init__(self, settings: Settings, snapshot: LibrarySnapshot, planner: str | None, tools: Any) -> None:
        from agent.run import FrontDoor

        self.library = snapshot.open(settings)
        self.door = FrontDoor(settings, self.library, planner=planner, tools=tools,  # type: ignore[arg-type]
                              perf_mode="thompson")
        self.units = 0
        self.busy_s = 0.0

    def make(self, v: Variant, vdir: Path, root: Path, thread_id: str, why: str, render: bool,
             quality: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return make_variant(self.door, v, vdir, root, thread_id, why, render=render, quality=quality)
        finally:
            self.units += 1
            self.busy_s += time.perf_counter() - t0

    def stats(self) -> dict[str, Any]:
        """Pid, units run, seconds spent in them, peak RSS of this process and of its largest child (ffmpeg)."""
        return {"pid": os.getpid(), "units": self.units, "busy_s": round(self.busy_s, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "children_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def run_batch(path: Path, *, settings: Settings, library: Any, out_dir: Path, planner: str | None = None,
              render: bool = True, quality: str = "draft", jobs: int = 1, progress: bool = True,
              tools: Any = None, executor: str = "local", ray_address: str | None = None,
              workers: int | None = None, worker_cls: type | None = None) -> dict[str, Any]:
    """Make every variant; failures are recorded and the batch goes on; finished variants (same identity, all
    files present in this folder) are skipped; summary.json names only files inside `out_dir`.
    `executor="ray"`: unfinished variants run on Ray workers (`BatchWorker`, or `worker_cls`)."""
    from agent.run import FrontDoor
    from cutpilot.atomic import write_text
    from cutpilot.outdir import claim

    variants = expand(load_rows(path))
    claim(out_dir, settings.home, kind="batch")
    root = out_dir.resolve()
    lib_state, set_state = library_state(library), settings_state(settings)
    t0 = time.perf_counter()

    def unit(v: Variant) -> tuple[Path, str, str | None]:
        vdir = out_dir / v.key
        ident = variant_identity(v, library=lib_state, settings=set_state, planner=planner,
                                 render=render, quality=quality, folder=vdir)
        thread_id = f"batch-{ident[:24]}"
        return vdir, thread_id, finished_here(vdir, thread_id, render)

    def one(door: FrontDoor, v: Variant) -> dict[str, Any]:
        vdir, thread_id, why = unit(v)
        if why is None:
            return _skipped(v, vdir, thread_id)
        return make_variant(door, v, vdir, root, thread_id, why, render=render, quality=quality)

    results: list[dict[str, Any]] = []
    workers_stats: list[dict[str, Any]] = []
    if executor == "ray":
        results, workers_stats = _run_on_pool(variants, unit, library, settings, root, planner=planner,
                                              tools=tools, render=render, quality=quality, address=ray_address,
                                              workers=workers, worker_cls=worker_cls or BatchWorker)
    else:
        results = _run_here(variants, one, settings, library, planner=planner, tools=tools, jobs=jobs,
                            progress=progress)
    from agent.manifest import write_manifest

    handoff = write_manifest(out_dir, variants, results, settings)
    summary = {
        "file": str(path), "variants": len(variants),
        "ok": sum(r["status"] == "ok" for r in results), "skipped": sum(r["status"] == "skipped" for r in results),
        "failed": sum(r["status"] == "failed" for r in results), "wall_s": round(time.perf_counter() - t0, 2),
        "results": results,
        "manifest": handoff["manifest"], "shots": handoff["shots"], "identical": handoff["same"],
        **({"executor": "ray", "workers": workers_stats} if executor == "ray" else {}),
    }
    write_text(out_dir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=2))
    return summary


def _run_on_pool(variants: list[Variant], unit: Any, library: Any, settings: Settings, root: Path, *,
                 planner: str | None, tools: Any, render: bool, quality: str, address: str | None,
                 workers: int | None, worker_cls: type) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Skip checks here; every unfinished variant as one task on the pool; results in variant order."""
    from cutpilot.executors import LazyPool

    plan = [(v, *unit(v)) for v in variants]
    todo = [p for p in plan if p[3] is not None]
    if not todo:
        return [_skipped(v, vdir, tid) for v, vdir, tid, _ in plan], []
    # workers may start elsewhere: every path they get is absolute
    here = settings.model_copy(update={"home": settings.home.resolve()})
    pool = LazyPool(worker_cls, (here, LibrarySnapshot(library), planner, tools), address=address, workers=workers)

    def result(v: Variant, vdir: Path, tid: str) -> dict[str, Any]:
        if v.key not in refs:
            return _skipped(v, vdir, tid)
        try:
            return dict(pool.get(refs[v.key]))
        except CutpilotError as e:
            return {"key": v.key, "status": "failed", "out_dir": str(vdir), "error": e.one_line()}

    try:
        refs = {v.key: pool.submit("make", v, vdir.resolve(), root, tid, why, render, quality)
                for v, vdir, tid, why in todo}
        results = [result(v, vdir, tid) for v, vdir, tid, _ in plan]
        return results, pool.stats()
    finally:
        pool.close()


def _run_here(variants: list[Variant], one: Any, settings: Settings, library: Any, *, planner: str | None,
              tools: Any, jobs: int, progress: bool) -> list[dict[str, Any]]:
    """The local executor: one front door, variants in a thread pool (`jobs`) or in order with a progress bar."""
    from agent.run import FrontDoor

    results: list[dict[str, Any]] = []
    with FrontDoor(settings, library, planner=planner, tools=tools, perf_mode="thompson") as door:  # type: ignore[arg-type]
        if jobs > 1:
            with ThreadPoolExecutor(max_workers=jobs) as ex:
                results = list(ex.map(lambda v: one(door, v), variants))
        else:
            from rich.progress import Progress

            with Progress(disable=not progress, transient=True) as prog:
                task = prog.add_task("variants", total=len(variants))
                for v in variants:
                    results.append(one(door, v))
                    prog.advance(task)
    return results
