"""The studio service: every page and API route calls only these methods (views out, typed errors on bad input).

One Studio per server holds one lazy Library for its whole life (the embedded store is taken only per call, so
the CLI can still read it between calls), runs ingest in-process on it, and runs the planner through the same
front door as `cutpilot chat` (agent.run.start_chat / resume_chat, thread id == ad id). Planner work (plan,
revise, preview, render, batch) is serialised by one lock: the planner and its renders are not meant to run
twice at once on one store. Ingest is serialised by the home's ingest lock, so it also waits for a CLI ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from cutpilot.errors import CutpilotError, InputError, NotFoundError
from cutpilot.ledger import JobRow, open_ledger
from cutpilot.settings import Settings
from cutpilot.studio.jobs import FINISHED, JobContext, Jobs, new_id
from cutpilot.studio.views import (
    AdView,
    BatchView,
    ClipView,
    JobView,
    MessageView,
    ReviseView,
    ShotView,
    VariantView,
)

AD_FILES = ("ad.mp4", "captions.srt", "timeline.otio", "storyboard.json", "timeline.json", "run.json", "preview.mp4")
UPLOAD_EXTS = (".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi", ".jpg", ".jpeg", ".png", ".webp", ".jsonl", ".json",
               ".csv", ".yaml")
MEDIA_EXTS = (".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi", ".jpg", ".jpeg", ".png", ".webp")
ANNOTATION_EXTS = (".jsonl", ".json", ".csv", ".yaml")
_ID = re.compile(r"^[0-9a-f]{12}$")
_UNSAFE = re.compile(r"[^\w.\- ]+")


class _Thread(NamedTuple):
    values: dict[str, Any]
    paused: bool


class _NoStoreAttr:
    """The lazy Library as the planner's batch code sees it: everything but `.store`, which a lazy library has only
    inside `batch()` (agent.batch.library_state then digests `records()` instead of holding the store throughout)."""

    def __init__(self, library: Any) -> None:
        self._library = library

    def __getattr__(self, name: str) -> Any:
        if name in ("store", "library"):
            raise AttributeError(name)
        return getattr(self._library, name)


def sanitise_name(filename: str) -> str:
    """A plain, safe file name from whatever a browser sent: no folders, no leading dots, no odd characters."""
    name = unicodedata.normalize("NFKC", filename or "").replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = stem[:100].strip(" .") or "upload"
    return f"{stem}.{ext.lower()}" if ext else stem


class Studio:
    """One per server: one library, one job ledger, one small worker pool."""

    def __init__(self, settings: Settings, *, planner: str | None = None, tools: Any = None,
                 quality: str = "draft", render_batches: bool = True, workers: int = 2, library: Any = None,
                 start: bool = True) -> None:
        self.settings = settings
        self.planner = planner
        self.tools = tools
        self.quality = quality
        self.render_batches = render_batches
        self.max_upload_bytes = int(settings.max_upload_mb * 1024 * 1024)
        self._library = library
        self._library_mutex = threading.Lock()
        self._plan_lock = threading.RLock()
        self._preview_lock = threading.Lock()
        self._read_mutex = threading.Lock()
        self._reader: Any = None
        self._alt_cache: dict[tuple[str, str], dict[int, list[Any]]] = {}
        self.ledger = open_ledger(settings)
        self.jobs_runner = Jobs(self.ledger, workers=workers)
        for kind, fn in (("ingest", self._run_ingest), ("plan", self._run_plan), ("render", self._run_render),
                         ("batch", self._run_batch)):
            self.jobs_runner.register(kind, fn)
        if start:
            self.jobs_runner.start()

    # -- plumbing ------------------------------------------------------------------------------------------------
    @property
    def library(self) -> Any:
        """The one Library, opened lazily on first use (so a server starts in milliseconds)."""
        with self._library_mutex:
            if self._library is None:
                import warnings

                from index.library import Library

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._library = Library.open(self.settings, lazy=True)
            return self._library

    def _source(self) -> Any:
        return _NoStoreAttr(self.library)

    def _ads_dir(self, ad_id: str) -> Path:
        return self.settings.home / "studio" / "ads" / ad_id

    def _batch_dir(self, batch_id: str) -> Path:
        return self.settings.home / "studio" / "batches" / batch_id

    # -- library -------------------------------------------------------------------------------------------------
    def _view(self, rec: Any, score: float | None = None) -> ClipView:
        thumb = f"/media/thumbs/{rec.clip_id}" if any(Path(k).is_file() for k in rec.keyframes) else None
        return ClipView(
            clip_id=rec.clip_id, source=rec.source, start=rec.start, end=rec.end, duration=rec.duration,
            content_type=rec.content_type.value, content_type_label=rec.content_type_label,
            format=[f.value for f in rec.format], format_labels=list(rec.format_labels), product=rec.product,
            language=rec.language, transcript=rec.transcript, description=rec.description, tags=list(rec.tags),
            trend_tags=list(rec.trend_tags), verified=list(rec.verified), generated=rec.generated,
            has_audio=rec.has_audio, media_url=f"/media/clips/{rec.clip_id}", thumbnail_url=thumb,
            score=None if score is None else round(score, 6))

    def clips(self, q: str | None = None, *, product: str | None = None, content_type: str | list[str] | None = None,
              format: str | list[str] | None = None, min_dur: float | None = None, max_dur: float | None = None,
              verified: bool | None = None, generated: bool | None = None, limit: int = 60) -> list[ClipView]:
        """Hybrid search when `q` is given, else the listing; team words filter as in the CLI."""
        from index.cli_library import _check_team_words, _filters

        if not 1 <= limit <= 1000:
            raise InputError(f"limit must be 1–1000 (got {limit})")
        types = [content_type] if isinstance(content_type, str) else list(content_type or [])
        fmts = [format] if isinstance(format, str) else list(format or [])
        filters = _filters(product or None, [t for t in types if t], [f for f in fmts if f], min_dur, max_dur)
        if generated is False:
            filters = filters.model_copy(update={"include_generated": False})
        lib = self.library
        _check_team_words(lib, filters)

        def keep(rec: Any) -> bool:
            return (verified is None or bool(rec.verified) == verified) and \
                (generated is not True or rec.generated)

        if q and q.strip():
            want = limit if verified is None and generated is not True else min(1000, limit * 5)
            hits = lib.search(q, filters, limit=want)
            return [self._view(h.clip, h.score) for h in hits if keep(h.clip)][:limit]
        recs = sorted((r for r in lib.records(filters) if keep(r)), key=lambda r: (r.source, r.start))
        return [self._view(r) for r in recs[:limit]]

    def _record(self, clip_id: str) -> Any:
        lib = self.library
        return lib.get(lib.resolve_id(clip_id))

    def clip(self, clip_id: str) -> ClipView:
        return self._view(self._record(clip_id))

    def edit_clip(self, clip_id: str, fields: dict[str, Any]) -> ClipView:
        """Set editable fields as a human would with `cutpilot clips edit` (they become human-verified)."""
        from cutpilot.models import EDITABLE_FIELDS
        from index.library import parse_changes

        if not isinstance(fields, dict) or not fields:
            raise InputError(f"nothing to change; editable fields: {', '.join(EDITABLE_FIELDS)}")
        changes: dict[str, str] = {}
        for k, v in fields.items():
            if isinstance(v, list):
                changes[k] = json.dumps([str(x) for x in v], ensure_ascii=False)
            elif isinstance(v, str | int | float) and not isinstance(v, bool):
                changes[k] = str(v)
            else:
                raise InputError(f"bad value for {k}: give a string or a list of strings")
        parse_changes(changes)  # unknown fields and bad values fail before the store is touched
        lib = self.library
        return self._view(lib.edit(lib.resolve_id(clip_id), changes))

    def clip_media(self, clip_id: str) -> Path:
        rec = self._record(clip_id)
        p = Path(rec.source)
        if not p.is_file() or p.suffix.lower() not in (*MEDIA_EXTS, ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".gif"):
            raise NotFoundError(f"the source file of clip {rec.clip_id} is not on disk")
        return p

    def clip_thumbnail(self, clip_id: str) -> Path | None:
        rec = self._record(clip_id)
        frames = [Path(k) for k in rec.keyframes if Path(k).suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")]
        frames = [f for f in frames if f.is_file()]
        return frames[len(frames) // 2] if frames else None

    # -- ingest and jobs -----------------------------------------------------------------------------------------
    def save_upload(self, filename: str, stream: BinaryIO, size_hint: int | None = None, *,
                    folder: str | None = None) -> Path:
        """Store one uploaded file under `<home>/uploads/<folder>/`, refusing other types and oversize files."""
        from cutpilot.atomic import replacing

        name = sanitise_name(filename)
        if Path(name).suffix.lower() not in UPLOAD_EXTS:
            raise InputError(f"cannot upload {name!r}: allowed types are {' '.join(e[1:] for e in UPLOAD_EXTS)}")
        limit = self.max_upload_bytes
        if size_hint is not None and size_hint > limit:
            raise InputError(f"{name} is {size_hint / 1e6:.0f} MB; the upload limit is {limit / 1e6:.0f} MB per file")
        folder = folder or new_id()
        if not _ID.match(folder):
            raise InputError("bad upload folder id")
        dest_dir = self.settings.home / "uploads" / folder
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / name
        n = 1
        while dest.exists():
            dest = dest_dir / f"{Path(name).stem}-{n}{Path(name).suffix}"
            n += 1
        written = 0
        with replacing(dest) as tmp, tmp.open("wb") as out:
            while chunk := stream.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise InputError(f"{name} is larger than the upload limit of {limit / 1e6:.0f} MB per file")
                out.write(chunk)
        return dest

    def start_ingest(self, paths: list[Path], annotations: Path | None = None, product: str | None = None, *,
                     job_id: str | None = None) -> str:
        """Queue an ingest of files / folders (and an annotations file) into the library; returns the job id."""
        if not paths and annotations is None:
            raise InputError("nothing to ingest: give paths or upload files")
        if annotations is not None and Path(annotations).suffix.lower() not in ANNOTATION_EXTS:
            raise InputError(f"annotations must be .jsonl, .json, .csv or .yaml (got {Path(annotations).name})")
        for p in [*paths, *([annotations] if annotations else [])]:
            if not Path(p).exists():
                raise InputError(f"not found: {p}")
        if product is not None and len(product) > 200:
            raise InputError("product name is longer than 200 characters")
        params = {"paths": [str(Path(p).resolve()) for p in paths],
                  "annotations": str(Path(annotations).resolve()) if annotations else None, "product": product}
        return self.jobs_runner.submit("ingest", params, job_id=job_id)

    def _run_ingest(self, params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        """index.ingest.ingest's steps with progress told to the ledger (resumable: finished sources are skipped)."""
        from index.ingest import FileStatus, Ingestor, plan_files
        from index.lock import ingest_lock

        paths = [Path(p) for p in params["paths"]]
        annotations = Path(params["annotations"]) if params.get("annotations") else None
        lib = self.library
        ctx.progress(0.0, "waiting for the library" if ingest_lock(self.settings.home).held else "starting")
        t0 = time.perf_counter()
        with ingest_lock(self.settings.home).hold(3600.0):
            files, rows, anns = plan_files(paths, self.settings, lib, annotations)
            ing = Ingestor(self.settings, lib, product=params.get("product"), annotations=anns)
            n = max(1, len(files))
            for k, src in enumerate(files):
                seen = [0.0]

                def on_stage(stage: str, k: int = k, src: Path = src, seen: list[float] = seen) -> None:
                    ctx.progress((k + min(0.99, seen[0])) / n, f"{src.name}: {stage} ({k + 1}/{len(files)})")

                def on_progress(seconds: float, of: float, k: int = k, seen: list[float] = seen) -> None:
                    seen[0] = min(1.0, seen[0] + seconds / of) if of > 0 else 0.0
                    ctx.progress((k + min(0.99, seen[0])) / n, None)

                rows.append(ing.process(src, on_stage, on_progress))
                ctx.progress((k + 1) / n, f"{k + 1}/{len(files)} files")
            lib.optimize()
        rows += [FileStatus(path="(run)", status="warning", message=w) for w in dict.fromkeys(ing.warnings)]
        done = [r for r in rows if r.status in ("ok", "warning", "skipped") and r.path != "(run)"]
        failed = [r for r in rows if r.status == "failed"]
        clips = sum(r.clips for r in rows)
        msg = f"{clips} clips from {len(done)} files" + (f"; {len(failed)} failed" if failed else "")
        return {"message": msg, "clips": clips, "wall_s": round(time.perf_counter() - t0, 2),
                "rows": [r.model_dump(mode="json") for r in rows]}

    def job(self, job_id: str) -> JobView:
        return _view(self.ledger.job(job_id))

    def jobs(self, limit: int = 50) -> list[JobView]:
        return [_view(j) for j in self.ledger.jobs(limit)]

    async def events(self, job_id: str) -> AsyncIterator[JobView]:
        """Snapshots of a job each time it changes, ending with its finished state (for SSE)."""
        last: tuple[Any, ...] | None = None
        while True:
            j = _view(self.ledger.job(job_id))
            key = (j.status, j.progress, j.message)
            if key != last:
                last = key
                yield j
            if j.status in FINISHED:
                return
            await asyncio.sleep(0.25)

    # -- ads -----------------------------------------------------------------------------------------------------
    def create_ad(self, brief: str, *, duration_s: float | None = None, aspect: str | None = None,
                  lang: str | None = None, product: str | None = None) -> str:
        """Queue planning of a new ad; it stops at review (status `review`) for revisions and approval."""
        from pydantic import ValidationError

        from agent.brief import precheck
        from cutpilot.storyboard import Brief

        if not isinstance(brief, str) or not brief.strip():
            raise InputError("empty brief: say what ad to make, e.g. 'make a 15s ad for LEGO Technic'")
        precheck(brief)
        base: dict[str, Any] = {k: v for k, v in (("duration_s", duration_s), ("aspect", aspect), ("lang", lang),
                                                  ("product", product)) if v is not None}
        try:
            Brief.model_validate(base)
        except ValidationError as e:
            err = e.errors()[0]
            raise InputError(f"bad value for {err['loc'][0]}: {err['msg']}") from None
        ad_id = new_id()
        self.ledger.put("ad", ad_id, {"ad_id": ad_id, "brief": brief, "base": base, "created": time.time(),
                                      "job_id": None, "messages": [{"role": "user", "text": brief}]})
        job_id = self.jobs_runner.submit("plan", {"ad_id": ad_id})
        self.ledger.change("ad", ad_id, lambda d: d.update(job_id=job_id))
        return ad_id

    def _ad_doc(self, ad_id: str) -> dict[str, Any]:
        doc = self.ledger.get("ad", ad_id) if _ID.match(ad_id or "") else None
        if doc is None:
            raise NotFoundError(f"no ad {ad_id}")
        return doc

    def _snapshot(self, ad_id: str) -> _Thread:
        """The planner thread as last checkpointed: its state values, and whether it waits at the review pause (an
        interrupt is pending). Read through the planner's front door (graph.get_state): nothing runs."""
        from agent.run import FrontDoor

        with self._read_mutex:
            if self._reader is None:
                self._reader = FrontDoor(self.settings)
            snap = self._reader.graph.get_state({"configurable": {"thread_id": ad_id}})
        if not snap.values:
            return _Thread({}, False)
        paused = any(t.interrupts for t in snap.tasks)
        return _Thread(dict(snap.values), paused)

    def _run_plan(self, params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        from agent.run import resume_chat, start_chat
        from cutpilot.storyboard import Brief

        ad_id = params["ad_id"]
        doc = self._ad_doc(ad_id)
        ctx.progress(0.05, "planning")
        with self._plan_lock:
            snap = self._snapshot(ad_id)
            if snap.values and snap.paused:
                pass  # planned before the restart: already waiting for review
            elif snap.values:  # killed mid-plan: the thread continues from its last checkpoint
                resume_chat(ad_id, None, settings=self.settings, library=self._source(), tools=self.tools)
            else:
                base = Brief.model_validate(doc["base"]) if doc.get("base") else None
                start_chat(doc["brief"], settings=self.settings, library=self._source(), out_dir=self._ads_dir(ad_id),
                           planner=self.planner, quality=self.quality, thread_id=ad_id, base=base,  # type: ignore[arg-type]
                           tools=self.tools)
        return {"message": "ready for review", "ad_id": ad_id}

    def _run_render(self, params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        from agent.run import resume_chat

        ad_id = params["ad_id"]
        ctx.progress(0.05, "rendering")
        with self._plan_lock:
            snap = self._snapshot(ad_id)
            if not snap.values:
                raise NotFoundError(f"no planner thread for ad {ad_id}")
            if snap.paused:
                resume_chat(ad_id, {"action": "approve"}, settings=self.settings, library=self._source(),
                            tools=self.tools)
            else:  # killed mid-render: the thread continues from its last checkpoint (a no-op once finished)
                resume_chat(ad_id, None, settings=self.settings, library=self._source(), tools=self.tools)
        self._say(ad_id, "rendered: ad.mp4 is ready", True)
        return {"message": "rendered", "ad_id": ad_id}

    def _status(self, doc: dict[str, Any]) -> tuple[str, str | None]:
        if not doc.get("job_id"):
            return "planning", None
        j = self.ledger.job(doc["job_id"])
        if j.status == "failed":
            return "failed", j.message
        if j.kind == "plan":
            return ("review" if j.status == "done" else "planning"), None
        return ("done" if j.status == "done" else "rendering"), None

    def _files(self, ad_id: str) -> dict[str, str]:
        d = self._ads_dir(ad_id)
        return {n: f"/api/ads/{ad_id}/files/{n}" for n in AD_FILES if (d / n).is_file()}

    def ad(self, ad_id: str, *, shots: bool = True) -> AdView:
        """An ad's state: status, storyboard with its shots and alternates, the conversation, its files."""
        from cutpilot.storyboard import Storyboard

        doc = self._ad_doc(ad_id)
        status, error = self._status(doc)
        snap = self._snapshot(ad_id)
        values = snap.values or {}
        sb_data = values.get("storyboard")
        run = values.get("run") or {}
        timeline = values.get("timeline") or {}
        shot_views: list[ShotView] = []
        total_s = None
        if timeline:
            total_s = _seconds(timeline)
        if sb_data and shots:
            sb = Storyboard.model_validate(sb_data)
            secs = {v.get("slot"): v.get("duration_ms", 0) / 1000 for v in timeline.get("video", [])}
            ids = [s.chosen.clip_id for s in sb.slots if s.chosen]
            ids += [a.clip_id for s in sb.slots for a in s.alternates[:5]]
            recs = {r.clip_id: r for r in self.library.get_many(list(dict.fromkeys(ids)))} if ids else {}
            alts = self._alternates(ad_id, sb, recs)
            for s in sb.slots:
                clip = recs.get(s.chosen.clip_id) if s.chosen else None
                shot_views.append(ShotView(
                    index=s.index, role=s.role.value, seconds=round(secs.get(s.index, s.target_s), 2), line=s.line,
                    line_source=s.line_source, overlay=s.overlay, locked=s.locked,
                    clip=self._view(clip) if clip is not None else None,
                    asset_kind=s.asset.kind if s.asset else None,
                    generated=bool(s.asset) or bool(clip is not None and clip.generated),
                    alternates=[self._view(r) for r in alts.get(s.index, [])]))
        files = self._files(ad_id)
        return AdView(
            ad_id=ad_id, status=status, brief=doc["brief"], storyboard=sb_data, shots=shot_views,  # type: ignore[arg-type]
            messages=[MessageView.model_validate(m) for m in doc.get("messages", [])], files=files,
            preview_url=files.get("preview.mp4"), brain=run.get("brain"), error=error, job_id=doc.get("job_id"),
            total_s=total_s, warnings=list(run.get("warnings") or []), created=doc.get("created", 0.0))

    def _alternates(self, ad_id: str, sb: Any, recs: dict[str, Any]) -> dict[int, list[Any]]:
        """3–5 clips per shot the reviewer may swap in: the planner's own alternates first, then the library's best
        matches for the shot's query (same product), never a clip already on screen. Cached per storyboard."""
        import hashlib

        from index.search import SearchFilters

        key = (ad_id, hashlib.sha256(sb.model_dump_json().encode()).hexdigest())
        with self._read_mutex:
            hit = self._alt_cache.get(key)
        if hit is not None:
            return hit
        on_screen = {s.chosen.clip_id for s in sb.slots if s.chosen}
        out: dict[int, list[Any]] = {}
        for s in sb.slots:
            picked = [recs[a.clip_id] for a in s.alternates if a.clip_id in recs and a.clip_id not in on_screen][:5]
            if len(picked) < 3:
                seen = on_screen | {r.clip_id for r in picked}
                query = s.query or s.intent or s.role.value
                try:
                    hits = self.library.search(query, SearchFilters(product=s.product) if s.product else None,
                                               limit=12)
                except CutpilotError:
                    hits = []
                picked += [h.clip for h in hits if h.clip.clip_id not in seen][: 5 - len(picked)]
            out[s.index] = picked
        with self._read_mutex:
            if len(self._alt_cache) > 200:
                self._alt_cache.clear()
            self._alt_cache[key] = out
        return out

    def ads(self, limit: int = 50) -> list[AdView]:
        """Runs history, newest first (without shot details)."""
        return [self.ad(d["ad_id"], shots=False) for d in self.ledger.docs("ad", limit)]

    def run(self, ad_id: str) -> dict[str, Any]:
        """The ad's run.json (brain, timings, warnings, fallbacks), or the planner's record before a render."""
        self._ad_doc(ad_id)
        p = self._ads_dir(ad_id) / "run.json"
        if p.is_file():
            return dict(json.loads(p.read_text(encoding="utf-8")))
        return dict(self._snapshot(ad_id).values.get("run") or {})

    def _say(self, ad_id: str, text: str, applied: bool | None, user: str | None = None) -> None:
        def add(d: dict[str, Any]) -> None:
            if user is not None:
                d.setdefault("messages", []).append({"role": "user", "text": user})
            d.setdefault("messages", []).append({"role": "studio", "text": text, "applied": applied})

        self.ledger.change("ad", ad_id, add)

    def _answer(self, ad_id: str, answer: dict[str, Any], said: str) -> ReviseView:
        """Send one review answer through the planner's front door; the ad stays at review with the reply."""
        from agent.run import resume_chat

        doc = self._ad_doc(ad_id)
        status, _ = self._status(doc)
        if status != "review":
            raise InputError(f"ad {ad_id} is {status}; revisions are taken while it waits for review")
        with self._plan_lock:
            snap = self._snapshot(ad_id)
            if not snap.paused:
                raise InputError(f"ad {ad_id} is not waiting for review")
            try:
                turn = resume_chat(ad_id, answer, settings=self.settings, library=self._source(), tools=self.tools)
            except CutpilotError as e:
                self._say(ad_id, f"could not apply: {e.one_line()}", False, user=said)
                self._continue(ad_id)
                raise
        if turn.review is None:  # the answer finished the thread (it read as an approval)
            self._say(ad_id, "approved and rendered", True, user=said)
            return ReviseView(applied=True, message="approved and rendered", kind="approve",
                              storyboard=self._snapshot(ad_id).values.get("storyboard"))
        ans = turn.review.get("answer") or {}
        applied = bool(ans.get("applied"))
        message = str(ans.get("message") or ans.get("kind") or ("done" if applied else "not applied"))
        alts = [str(a) for a in ans.get("alternatives") or []]
        self._say(ad_id, message + ("" if not alts else " — try: " + "; ".join(alts[:3])), applied, user=said)
        (self._ads_dir(ad_id) / "preview.mp4").unlink(missing_ok=True)  # the old draft no longer shows this cut
        return ReviseView(applied=applied, message=message, kind=ans.get("kind"), alternatives=alts,
                          storyboard=self._snapshot(ad_id).values.get("storyboard"))

    def _continue(self, ad_id: str) -> None:
        """A revision that failed midway left the thread between checkpoints: a plan job carries it back to the
        review pause (status planning → review)."""
        if not self._snapshot(ad_id).paused:
            job_id = self.jobs_runner.submit("plan", {"ad_id": ad_id})
            self.ledger.change("ad", ad_id, lambda d: d.update(job_id=job_id))

    def revise(self, ad_id: str, text: str) -> ReviseView:
        """A revision in words (zh or en); an approval in words starts the render like `approve`."""
        from agent.revise import is_approval

        if not isinstance(text, str) or not text.strip():
            raise InputError("say what to change, e.g. 'swap the hook' or '把第3个镜头换成产品画面'")
        if len(text) > 2000:
            raise InputError("a revision is at most 2000 characters")
        self._ad_doc(ad_id)
        if is_approval(text):
            self._say(ad_id, "approved: rendering", True, user=text)
            self.approve(ad_id)
            return ReviseView(applied=True, message="approved: rendering", kind="approve",
                              storyboard=self._snapshot(ad_id).values.get("storyboard"))
        return self._answer(ad_id, {"text": text}, text)

    def _slot(self, ad_id: str, index: int) -> None:
        self._ad_doc(ad_id)
        sb = self._snapshot(ad_id).values.get("storyboard") or {}
        n = len(sb.get("slots") or [])
        if not 0 <= index < n:
            raise InputError(f"there is no shot {index} (the storyboard has shots 0–{n - 1})" if n else
                             f"ad {ad_id} has no storyboard yet")

    def swap(self, ad_id: str, index: int, clip_id: str) -> ReviseView:
        self._slot(ad_id, index)
        cid = self.library.resolve_id(clip_id)
        return self._answer(ad_id, {"action": "swap", "slot": index, "clip_id": cid},
                            f"swap shot {index + 1} for clip {cid[:8]}")

    def lock(self, ad_id: str, index: int, locked: bool) -> ReviseView:
        self._slot(ad_id, index)
        return self._answer(ad_id, {"action": "lock", "slot": index, "locked": bool(locked)},
                            f"{'lock' if locked else 'unlock'} shot {index + 1}")

    def edit_line(self, ad_id: str, index: int, text: str) -> ReviseView:
        if not isinstance(text, str) or not text.strip() or len(text) > 500:
            raise InputError("a line is 1–500 characters")
        self._slot(ad_id, index)
        return self._answer(ad_id, {"action": "line", "slot": index, "text": text},
                            f"shot {index + 1} line: {text}")

    def research(self, ad_id: str, index: int, query: str) -> ReviseView:
        if not isinstance(query, str) or not query.strip() or len(query) > 500:
            raise InputError("a search is 1–500 characters")
        self._slot(ad_id, index)
        return self._answer(ad_id, {"action": "research", "slot": index, "text": query},
                            f"search shot {index + 1}: {query}")

    def preview(self, ad_id: str) -> Path:
        """A draft mp4 of the current cut (segments come from the shared render cache, so after a swap only the
        changed segment is encoded); made again only when the timeline changed."""
        import hashlib

        from cutpilot.atomic import write_text
        from cutpilot.timeline import Timeline
        from tools.render import render_preview

        doc = self._ad_doc(ad_id)
        status, _ = self._status(doc)
        if status not in ("review", "done"):
            raise InputError(f"ad {ad_id} is {status}; a preview needs a planned storyboard")
        with self._preview_lock:  # the renderer only: a preview does not wait for another ad's planning
            values = self._snapshot(ad_id).values or {}
            if not values.get("timeline"):
                raise InputError(f"ad {ad_id} has no timeline yet")
            key = hashlib.sha256(json.dumps(values["timeline"], sort_keys=True).encode()).hexdigest()[:32]
            out_dir = self._ads_dir(ad_id)
            out, stamp = out_dir / "preview.mp4", out_dir / ".preview-key"
            if out.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == key:
                return out
            render_preview(Timeline.model_validate(values["timeline"]), out, settings=self.settings,
                           cache_dir=self.settings.home / "render-cache")
            write_text(stamp, key)
        return out

    def approve(self, ad_id: str) -> None:
        """Start the final render (status rendering → done)."""
        doc = self._ad_doc(ad_id)
        status, _ = self._status(doc)
        if status != "review":
            raise InputError(f"ad {ad_id} is {status}; only an ad waiting for review can be approved")
        job_id = self.jobs_runner.submit("render", {"ad_id": ad_id})
        self.ledger.change("ad", ad_id, lambda d: d.update(job_id=job_id))

    def ad_file(self, ad_id: str, name: str) -> Path:
        """One of the ad's own outputs; nothing else (no other name, no link leading out of its folder)."""
        self._ad_doc(ad_id)
        return _own_file(self._ads_dir(ad_id), name)

    # -- batches -------------------------------------------------------------------------------------------------
    def create_batch(self, rows: list[dict[str, Any]], matrix: dict[str, Any] | None = None) -> str:
        """Rows like a briefs file's, times an optional matrix {audiences, platforms|channels, aspects,
        lengths|durations} applied to rows that do not set their own; returns the batch id (a background job)."""
        from agent.batch import expand, load_rows
        from cutpilot.atomic import write_text

        if not isinstance(rows, list) or not rows:
            raise InputError("a batch needs at least one row (a brief)")
        axes = {"audiences": "audiences", "platforms": "channels", "channels": "channels", "aspects": "aspects",
                "lengths": "durations", "durations": "durations"}
        extra: dict[str, list[Any]] = {}
        for k, v in (matrix or {}).items():
            if k not in axes:
                raise InputError(f"unknown matrix axis {k!r}; use {', '.join(sorted(axes))}")
            vals = v if isinstance(v, list) else [v]
            if vals:
                extra[axes[k]] = vals
        out_rows = []
        for r in rows:
            row = {"brief": r} if isinstance(r, str) else dict(r) if isinstance(r, dict) else None
            if row is None:
                raise InputError("each row is a brief text or an object with a brief")
            for k, vals in extra.items():
                row.setdefault(k, vals)
            out_rows.append(row)
        if len(out_rows) > 200:
            raise InputError("at most 200 rows per batch")
        batch_id = new_id()
        path = self._batch_dir(batch_id) / "briefs.jsonl"
        write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out_rows))
        try:
            variants = expand(load_rows(path))
        except InputError:
            import shutil

            shutil.rmtree(self._batch_dir(batch_id), ignore_errors=True)
            raise
        if len(variants) > 500:
            raise InputError(f"{len(variants)} variants; at most 500 per batch")
        self.ledger.put("batch", batch_id, {"batch_id": batch_id, "created": time.time(), "job_id": None,
                                            "decisions": {}, "variants": [v.key for v in variants]})
        job_id = self.jobs_runner.submit("batch", {"batch_id": batch_id})
        self.ledger.change("batch", batch_id, lambda d: d.update(job_id=job_id))
        return batch_id

    def _batch_doc(self, batch_id: str) -> dict[str, Any]:
        doc = self.ledger.get("batch", batch_id) if _ID.match(batch_id or "") else None
        if doc is None:
            raise NotFoundError(f"no batch {batch_id}")
        return doc

    def _run_batch(self, params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        from agent.batch import run_batch

        batch_id = params["batch_id"]
        doc = self._batch_doc(batch_id)
        d = self._batch_dir(batch_id)
        total = max(1, len(doc.get("variants", [])))
        stop = threading.Event()

        def tick() -> None:  # run_batch has no callback; finished variant folders are the progress
            while not stop.wait(1.0):
                done = sum((d / "out" / k / "run.json").is_file() for k in doc.get("variants", []))
                ctx.progress(done / total * 0.99, f"{done}/{total} variants")

        ticker = threading.Thread(target=tick, daemon=True)
        ctx.progress(0.0, f"0/{total} variants")
        with self._plan_lock:
            ticker.start()
            try:
                s = run_batch(d / "briefs.jsonl", settings=self.settings, library=self._source(), out_dir=d / "out",
                              planner=self.planner, render=self.render_batches, quality=self.quality, jobs=1,
                              progress=False, tools=self.tools)
            finally:
                stop.set()
                ticker.join(timeout=2)
        return {"message": f"{s['ok']} made, {s['skipped']} already done, {s['failed']} failed",
                "ok": s["ok"], "skipped": s["skipped"], "failed": s["failed"], "wall_s": s["wall_s"]}

    def batch(self, batch_id: str) -> BatchView:
        doc = self._batch_doc(batch_id)
        d = self._batch_dir(batch_id) / "out"
        job = self.ledger.job(doc["job_id"]) if doc.get("job_id") else None
        summary: dict[str, Any] = {}
        if (d / "summary.json").is_file():
            try:
                summary = {r["key"]: r for r in json.loads((d / "summary.json").read_text(encoding="utf-8"))["results"]}
            except (OSError, ValueError, KeyError):
                summary = {}
        running = job is not None and job.status not in FINISHED
        variants: list[VariantView] = []
        for key in doc.get("variants", []):
            vdir = d / key
            res = summary.get(key) or {}
            made = (vdir / "run.json").is_file()
            if made and not (running and res.get("status") == "failed"):
                status = "done"
            elif res.get("status") == "failed" and not running:
                status = "failed"
            elif running:
                status = "running" if not any(v.status == "running" for v in variants) else "queued"
            else:
                status = "failed" if job is not None and job.status == "failed" else "queued"
            variants.append(VariantView(
                variant_id=key, name=key.replace("__", " · "), status=status,  # type: ignore[arg-type]
                thumbnail_url=_variant_thumb(vdir), duration_s=_variant_seconds(vdir, res),
                approved=doc.get("decisions", {}).get(key),
                files={n: f"/api/batches/{batch_id}/variants/{key}/files/{n}" for n in AD_FILES
                       if (vdir / n).is_file()},
                error=res.get("error") if status == "failed" else None))
        return BatchView(batch_id=batch_id, status=job.status if job else "queued",  # type: ignore[arg-type]
                         variants=variants,
                         job_id=doc.get("job_id"), message=job.message if job else "", created=doc.get("created", 0.0))

    def batches(self) -> list[BatchView]:
        return [self.batch(d["batch_id"]) for d in self.ledger.docs("batch", 50)]

    def _variant(self, batch_id: str, variant_id: str) -> dict[str, Any]:
        doc = self._batch_doc(batch_id)
        if variant_id not in doc.get("variants", []):
            raise NotFoundError(f"no variant {variant_id} in batch {batch_id}")
        return doc

    def decide_variant(self, batch_id: str, variant_id: str, approved: bool) -> BatchView:
        self._variant(batch_id, variant_id)
        self.ledger.change("batch", batch_id, lambda d: d.setdefault("decisions", {}).update({variant_id: approved}))
        return self.batch(batch_id)

    def rerender_variant(self, batch_id: str, variant_id: str) -> BatchView:
        """Make one variant again (the batch re-runs; every other finished variant is skipped)."""
        doc = self._variant(batch_id, variant_id)
        job = self.ledger.job(doc["job_id"]) if doc.get("job_id") else None
        if job is not None and job.status not in FINISHED:
            raise InputError(f"batch {batch_id} is still running; re-render when it has finished")
        (self._batch_dir(batch_id) / "out" / variant_id / "run.json").unlink(missing_ok=True)

        def reset(d: dict[str, Any]) -> None:
            d.setdefault("decisions", {}).pop(variant_id, None)

        self.ledger.change("batch", batch_id, reset)
        job_id = self.jobs_runner.submit("batch", {"batch_id": batch_id})
        self.ledger.change("batch", batch_id, lambda d: d.update(job_id=job_id))
        return self.batch(batch_id)

    def variant_file(self, batch_id: str, variant_id: str, name: str) -> Path:
        self._variant(batch_id, variant_id)
        return _own_file(self._batch_dir(batch_id) / "out" / variant_id, name)

    def close(self) -> None:
        """Stop taking jobs and let the store go (a running job finishes in its daemon thread or is resumed)."""
        self.jobs_runner.stop()
        with self._read_mutex:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._library_mutex:
            if self._library is not None:
                with contextlib.suppress(CutpilotError):
                    self._library.close()
                self._library = None


def _own_file(folder: Path, name: str) -> Path:
    if name not in AD_FILES:
        raise NotFoundError(f"no file {name!r}; outputs are {', '.join(AD_FILES)}")
    p = folder / name
    if p.is_symlink() or not p.is_file():
        raise NotFoundError(f"{name} has not been made")
    if not p.resolve().is_relative_to(folder.resolve()):
        raise NotFoundError(f"{name} has not been made")
    return p


def _variant_thumb(vdir: Path) -> str | None:
    try:
        sb = json.loads((vdir / "storyboard.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for s in sb.get("slots", []):
        chosen = s.get("chosen") or {}
        if chosen.get("clip_id"):
            return f"/media/thumbs/{chosen['clip_id']}"
    return None


def _variant_seconds(vdir: Path, res: dict[str, Any]) -> float | None:
    if res.get("total_s") is not None:
        return float(res["total_s"])
    try:
        return _seconds(json.loads((vdir / "timeline.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _seconds(timeline: dict[str, Any]) -> float | None:
    from cutpilot.timeline import Timeline

    try:
        return Timeline.model_validate(timeline).duration_ms / 1000
    except ValueError:
        return None


def _view(row: JobRow) -> JobView:
    """A ledger row as the API shows it (its params stay server-side)."""
    return JobView.model_validate(row.model_dump(exclude={"params"}))
