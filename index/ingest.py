"""Ingest: footage → 1–10 s clip records (transcript, keyframes, description, labels) → the clip library.

Per source: probe → ASR and shot cuts per window (`index.windows`, cached per window) → slicing of the whole
source → per batch of clips: keyframes (`index.keyframes`) → visual facts → description → labels → merge with
what the library already holds (human-verified fields win) → `Library.add` (embeds + upserts, idempotent by
deterministic clip id).

Long sources stay in bounded memory: audio is decoded and transcribed a window (WINDOW_S) at a time, frames are
decoded a batch of clips at a time, and records are committed per window of clips. A source no longer than one
window takes the whole-file path it always did (same caches, same clips).

Resumable by construction: caches are written atomically per window, each committed batch is recorded in an
atomically written `progress.json`, and a per-source `done.json` lets a re-run skip unchanged work. Killing
ingest and re-running it therefore finishes the job with no duplicates: finished windows are not transcribed
again and committed batches not recomputed.

Audio-less videos (no audio stream) are ingested for their pictures with has_audio=False and reported with
a one-line warning; unsupported, corrupt, zero-length and too-short files fail one line each.

`executor="ray"` runs each source window (its ASR + shot cuts, then its batch of clip records) as a unit on a
Ray actor (`IngestWorker`) that loads Whisper, the text embedder and the labeler once for its whole life. The
driver keeps everything that touches the library (skip checks, merging with human fields, `Library.add`, which
embeds and upserts, and progress.json), so it stays the one writer and workers never open the store. Window
caches are keyed by source hash and window length and written atomically by whichever worker made them, so a
retried or repeated unit rewrites the same file and a re-run skips it. Photos stay on the driver (one record
each). Embedding stays with the writer because `Library.add` is what computes vectors; that is the driver's
main per-unit cost (BENCHMARKS.md, scale).
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import json
import os
import resource
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from pydantic import BaseModel, Field

from cutpilot.errors import CutpilotError, InputError, MediaError, ProviderError
from cutpilot.media import VIDEO_EXTS, decodable_duration, extract_audio, not_video, probe
from cutpilot.mediauri import record_source
from cutpilot.models import ClipFormat, ClipRecord, ContentType, VisualFacts, Word, clip_id_for, file_hash
from cutpilot.settings import Settings
from index.annotations import Annotation, load_annotations
from index.slicing import slice_source
from index.stills import STILL_SECONDS, is_still, prepare_still, still_garment
from index.windows import (
    ASR_PAD_S,
    SHOT_PAD_S,
    WINDOW_S,
    clip_batches,
    keep_shots,
    keep_words,
    language_of,
    merge_shots,
    merge_words,
    padded,
    plan_windows,
)

if TYPE_CHECKING:
    from cutpilot.executors import WorkerPool
    from index.library import Library

PIPELINE_VERSION = 1
SILENCE_DBFS = -55.0
Status = Literal["ok", "warning", "skipped", "failed"]


class FileStatus(BaseModel):
    """One row of the summary table."""

    path: str
    status: Status
    message: str = ""
    clips: int = 0
    duration: float = 0.0
    language: str | None = None
    has_audio: bool = False
    source_hash: str | None = None


class IngestReport(BaseModel):
    rows: list[FileStatus] = Field(default_factory=list)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    footage_seconds: float = 0.0
    wall_seconds: float = 0.0
    workers: list[dict[str, Any]] = Field(default_factory=list)  # each Ray worker's stats (executor=ray)

    @property
    def failed(self) -> list[FileStatus]:
        return [r for r in self.rows if r.status == "failed"]

    @property
    def clips(self) -> int:
        return sum(r.clips for r in self.rows)

    @property
    def realtime_factor(self) -> float:
        return self.footage_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


class _Stages:
    """Thread-safe stage timers (wall seconds summed over sources)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0


def _resolved(p: Path) -> Path | None:
    """p.resolve(), or None when it cannot be resolved (a symlink loop): discover() gives that path its own line."""
    try:
        return p.resolve()
    except (RuntimeError, OSError):
        return None


def _unreadable(p: Path) -> str | None:
    """Why a named path cannot be read at all (missing, a symlink loop, no permission), or None."""
    try:
        os.stat(p)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop (the link leads back to itself)"
        if e.errno == errno.ENOENT:
            return "broken symlink (its target is missing)" if p.is_symlink() else "not found"
        return f"cannot read ({e.strerror})"
    return None


def discover(paths: list[Path], settings: Settings) -> tuple[list[Path], list[FileStatus]]:
    """Video files under the given paths (folders recursively); explicit non-video, missing or looping files fail
    one line each and the rest go on."""
    home = settings.home.resolve()
    found: list[Path] = []
    bad: list[FileStatus] = []
    for p in paths:
        why = _unreadable(p)
        if why is not None:
            bad.append(FileStatus(path=str(p), status="failed", message=why))
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                hidden = any(x.startswith(".") for x in f.relative_to(p).parts)
                if f.is_file() and (f.suffix.lower() in VIDEO_EXTS or is_still(f)) and not hidden:
                    rf = f.resolve()
                    if not rf.is_relative_to(home):
                        found.append(rf)
        elif p.suffix.lower() in VIDEO_EXTS or is_still(p):
            found.append(p.resolve())
        else:
            msg = f"unsupported file type {p.suffix or '(none)'}"
            bad.append(FileStatus(path=str(p), status="failed", message=msg))
    uniq = list(dict.fromkeys(found))
    return uniq, bad


def _atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _unchanged(work: Path, signature: dict[str, Any], existing_ids: set[str]) -> dict[str, Any] | None:
    """The source's done.json when it was ingested with this signature and all its clips are still in the
    library (then the source is skipped), else None."""
    done = _read_json(work / "done.json")
    if isinstance(done, dict) and done.get("signature") == signature and set(done.get("ids", [])) <= existing_ids:
        return done
    return None


def _loudness_dbfs(wav: Path) -> float:
    """Peak level of a 16-bit mono WAV: silent tracks skip Whisper (which invents words on silence)."""
    import wave

    with wave.open(str(wav), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if data.size == 0:
        return -120.0
    peak = float(np.abs(data.astype(np.int32)).max()) / 32768.0
    return 20 * np.log10(max(peak, 1e-6))


class _WordIndex:
    """Words by their middle, so each clip finds its words by bisection (a livestream has tens of thousands)."""

    def __init__(self, words: list[Word]) -> None:
        self.words = words
        order = sorted(range(len(words)), key=lambda i: (words[i].start + words[i].end) / 2)
        self._mids = [(words[i].start + words[i].end) / 2 for i in order]
        self._order = order

    def between(self, lo: float, hi: float) -> list[Word]:
        """Words whose middle lies in [lo, hi), in transcript order."""
        i, j = bisect.bisect_left(self._mids, lo), bisect.bisect_left(self._mids, hi)
        return [self.words[k] for k in sorted(self._order[i:j])]


class Ingestor:
    """Holds the per-run state (settings, library, caches, timers); `run` is the whole job."""

    def __init__(self, settings: Settings, library: Library, *, product: str | None = None,
                 annotations: dict[Path, list[Annotation]] | None = None, window_s: float = WINDOW_S,
                 embedder: Any = None, pool: WorkerPool | None = None) -> None:
        self.settings = settings
        self.pool = pool  # None: every unit runs here; else windows run on the pool's workers
        self._embedder = embedder
        self.window_s = window_s
        self.library = library
        self.product = product
        self.annotations = annotations or {}
        self.stages = _Stages()
        self._lib_lock = threading.Lock()
        self._labeler: Any = None
        self._labeler_lock = threading.Lock()
        self._vlm_failed = False
        self._llm_failed = False
        self.warnings: list[str] = []
        self.worker_stats: list[dict[str, Any]] = []

    # -- helpers -------------------------------------------------------------------------------------------
    def _work(self, h: str) -> Path:
        return self.settings.home / "sources" / h

    def labeler(self) -> Any:
        with self._labeler_lock:
            if self._labeler is None:
                from index.labels import offline_labeler

                self._labeler = offline_labeler(self._embedder if self._embedder is not None
                                                else self.library.embedder)
            return self._labeler

    def _asr(self, src: Path, h: str, has_audio: bool) -> dict[str, Any]:
        cache = self._work(h) / "asr.json"
        cached = _read_json(cache)
        if cached is not None:
            return dict(cached)
        result: dict[str, Any] = {"language": None, "text": "", "words": [], "silent": not has_audio}
        if has_audio:
            from index.asr import transcribe

            with tempfile.TemporaryDirectory(prefix="cp-asr-") as td:
                wav = extract_audio(src, Path(td) / "a.wav", ffmpeg=self.settings.ffmpeg)
                if _loudness_dbfs(wav) < SILENCE_DBFS:
                    result["silent"] = True
                else:
                    tr = transcribe(wav, self.settings)
                    result = {"language": tr.language, "text": tr.text, "silent": False,
                              "words": [w.model_dump() for w in tr.words]}
        _atomic_json(cache, result)
        return result

    def _shots(self, src: Path, h: str) -> list[float]:
        cache = self._work(h) / "shots.json"
        cached = _read_json(cache)
        if isinstance(cached, list):
            return [float(x) for x in cached]
        from index.scenes import detect_shots

        shots = detect_shots(src, ffmpeg=self.settings.ffmpeg)
        _atomic_json(cache, shots)
        return shots

    def _window_dir(self, h: str) -> Path:
        return self._work(h) / f"windows-{self.window_s:g}"

    def _asr_window(self, src: Path, h: str, i: int, win: tuple[float, float], duration: float, *,
                    last: bool, has_audio: bool) -> dict[str, Any]:
        """One window's words (source time, those starting inside it), cached so a resumed run skips it."""
        cache = self._window_dir(h) / f"asr-{i:05d}.json"
        cached = _read_json(cache)
        if cached is not None:
            return dict(cached)
        result: dict[str, Any] = {"language": None, "words": [], "silent": True}
        if has_audio:
            from index.asr import transcribe

            a, b = padded(win, ASR_PAD_S, duration)
            with tempfile.TemporaryDirectory(prefix="cp-asr-") as td:
                wav = extract_audio(src, Path(td) / "a.wav", start=a, end=b, ffmpeg=self.settings.ffmpeg)
                if _loudness_dbfs(wav) >= SILENCE_DBFS:
                    tr = transcribe(wav, self.settings)
                    heard = [w.model_copy(update={"start": round(w.start + a, 3), "end": round(w.end + a, 3)})
                             for w in tr.words]
                    kept = keep_words(heard, win, last=last)
                    result = {"language": tr.language if kept else None, "silent": False,
                              "words": [w.model_dump() for w in kept]}
        _atomic_json(cache, result)
        return result

    def _shots_window(self, src: Path, h: str, i: int, win: tuple[float, float], duration: float, *,
                      last: bool) -> list[float]:
        """One window's cuts, read with a pad each side so a cut on the edge is seen, cached per window."""
        cache = self._window_dir(h) / f"shots-{i:05d}.json"
        cached = _read_json(cache)
        if isinstance(cached, list):
            return [float(x) for x in cached]
        from index.scenes import detect_shots

        a, b = padded(win, SHOT_PAD_S, duration)
        shots = keep_shots(detect_shots(src, start=a, end=b, ffmpeg=self.settings.ffmpeg), win, last=last)
        _atomic_json(cache, shots)
        return shots

    def _analyse_unit(self, src: Path, h: str, has_audio: bool, duration: float, windows: list[tuple[float, float]],
                      i: int, need_shots: bool) -> tuple[dict[str, Any], list[float]]:
        """One window's words and cuts (one window: the whole-file path and its caches); a unit of work."""
        st = self.stages
        shots: list[float] = []
        if len(windows) == 1:
            with st.time("asr"):
                asr = self._asr(src, h, has_audio)
            if need_shots:
                with st.time("scenes"):
                    shots = self._shots(src, h)
            return asr, shots
        win, last = windows[i], i == len(windows) - 1
        with st.time("asr"):
            asr = self._asr_window(src, h, i, win, duration, last=last, has_audio=has_audio)
        if need_shots:
            with st.time("scenes"):
                shots = self._shots_window(src, h, i, win, duration, last=last)
        return asr, shots

    def _collect(self, out: dict[str, Any]) -> Any:
        """A worker's answer: its value, with its stage seconds and warnings added to this run's."""
        with self.stages._lock:
            for k, v in out["seconds"].items():
                self.stages.seconds[k] = self.stages.seconds.get(k, 0.0) + v
        self.warnings.extend(out["warnings"])
        return out["value"]

    def _analyse(self, src: Path, h: str, has_audio: bool, duration: float, windows: list[tuple[float, float]],
                 need_shots: bool, stage: Any, tick: Any) -> tuple[list[Word], str | None, bool, list[float]]:
        """Words, language, silent flag and shot cuts of the whole source, a window at a time (one window: the
        whole-file path and its caches); on a pool every window is sent at once."""
        n = len(windows)
        refs = [self.pool.submit("analyse", src, h, has_audio, duration, windows, i, need_shots)
                for i in range(n)] if self.pool is not None else []
        results: list[tuple[dict[str, Any], list[float]]] = []
        for i, win in enumerate(windows):
            stage("asr" if n == 1 else f"asr + shots {win[0]:.0f}–{win[1]:.0f} s")
            if self.pool is not None:
                results.append(self._collect(self.pool.get(refs[i])))
            else:
                results.append(self._analyse_unit(src, h, has_audio, duration, windows, i, need_shots))
            tick(duration / 2 if n == 1 else (win[1] - win[0]) / 2)
        if n == 1:
            asr, shots = results[0]
            return [Word(**w) for w in asr["words"]], asr.get("language"), bool(asr.get("silent")), shots
        parts = [a for a, _ in results]
        words = merge_words([[Word(**w) for w in p["words"]] for p in parts])
        language = language_of([(p.get("language"), len(p["words"])) for p in parts])
        cut_parts = [c for _, c in results] if need_shots else []
        return words, language, all(p.get("silent") for p in parts), merge_shots(cut_parts)

    def _describe(self, keyframes: list[Path], facts: Any, transcript: str, language: str | None) -> tuple[str, str]:
        from index.describe import compose_offline, describe_vlm

        if self.settings.vlm_configured and not self._vlm_failed:
            try:
                return describe_vlm(keyframes, transcript, language, self.settings), "vlm"
            except ProviderError as e:
                self._vlm_failed = True
                self.warnings.append(f"vision model failed, offline descriptions from now on: {e.one_line()}")
        return compose_offline(facts, language), "offline"

    def _label(self, transcript: str, description: str, facts: Any, language: str | None) -> Any:
        from index.labels import label_llm

        if self.settings.llm_configured and not self._llm_failed:
            try:
                return label_llm(transcript, description, facts, language, self.settings)
            except (ProviderError, InputError) as e:
                self._llm_failed = True
                self.warnings.append(f"LLM labelling failed, offline classifier from now on: {e.one_line()}")
        return self.labeler().label(transcript, description, facts, language)

    # -- one source --------------------------------------------------------------------------------------
    def process(self, src: Path, on_stage: Any = None, on_progress: Any = None) -> FileStatus:
        """Ingest one source; typed errors become a failed row (the rest of the run continues).
        `on_progress(seconds, total)` is told each time another `seconds` of footage (half for analysis, half
        for clips) is done."""
        try:
            return self._process(src, on_stage or (lambda _s: None), on_progress or (lambda _s, _t: None))
        except CutpilotError as e:
            msg = e.one_line().replace(f"{src}: ", "").replace(str(src), src.name)
            return FileStatus(path=str(src), status="failed", message=msg)

    def _process(self, src: Path, stage: Any, on_progress: Any) -> FileStatus:
        if is_still(src):
            return self._process_still(src, stage, on_progress)
        st = self.stages
        stage("probe")
        with st.time("probe"):
            kind = not_video(src)
            if kind is not None:
                raise MediaError(f"{src.name}: not a video ({kind})")
            pr = probe(src, ffprobe=self.settings.ffprobe)
            if not pr.has_video:
                raise MediaError(f"{src.name}: no video stream (audio-only files are not clips)")
            if pr.duration < 1.0:
                raise MediaError(f"{src.name}: too short ({pr.duration:.2f} s; clips are 1–10 s)")
            h = file_hash(src)
        anns = self.annotations.get(src.resolve(), [])
        work = self._work(h)
        existing_ids = self.library.ids_for_source(h)
        signature = {"v": PIPELINE_VERSION, "product": self.product,
                     "ann": [a.model_dump(mode="json") for a in anns]}
        if (done := _unchanged(work, signature, existing_ids)) is not None:
            return FileStatus(path=str(src), status="skipped", message="unchanged (already ingested)",
                              clips=len(done["ids"]), duration=pr.duration, language=done.get("language"),
                              has_audio=pr.has_audio, source_hash=h)

        truncated = ""
        with st.time("probe"):
            decodable = decodable_duration(pr, ffprobe=self.settings.ffprobe)
        if decodable < pr.duration - 0.05:  # clips end where the pictures do, never on a frozen frame
            truncated = (f"only {decodable:.2f} s of the {pr.duration:.2f} s the file declares can be decoded "
                         "(truncated?); ingested that part")
            pr.duration = decodable
            if pr.duration < 1.0:
                raise MediaError(f"{src.name}: too short ({truncated})")

        windows = plan_windows(pr.duration, self.window_s)

        def tick(seconds: float) -> None:
            on_progress(seconds, pr.duration)

        tick(0.0)  # the bar shows the file's footage seconds from the start

        ranged = [a for a in anns if a.has_range]
        words, language, silent, shots = self._analyse(src, h, pr.has_audio, pr.duration, windows,
                                                       not ranged, stage, tick)

        stage("slice")
        with st.time("scenes"):
            if ranged:
                clips = sorted({(float(a.start), min(float(a.end), pr.duration))  # type: ignore[arg-type]
                                for a in ranged})
                for a, b in clips:
                    if b - a <= 0.05:
                        raise InputError(f"{src.name}: annotated range {a}–{b} s is outside the source "
                                         f"({pr.duration:.2f} s)")
            else:
                clips = slice_source(shots, words, pr.duration)

        batches = clip_batches(clips, windows)
        key = hashlib.sha1(json.dumps([signature, self.window_s, clips]).encode()).hexdigest()
        progress_file = work / "progress.json"
        prog = _read_json(progress_file)
        committed: list[int] = list(prog["done"]) if isinstance(prog, dict) and prog.get("key") == key else []
        new_ids = {clip_id_for(h, a, b) for a, b in clips}
        by_mid = _WordIndex(words)
        refs: dict[int, Any] = {}
        for k, idx in enumerate(batches if self.pool is not None else []):  # every unfinished batch at once
            part = [clips[i] for i in idx]
            if not (k in committed and {clip_id_for(h, a, b) for a, b in part} <= existing_ids):
                lo, hi = min(a for a, _ in part), max(b for _, b in part)
                refs[k] = self.pool.submit("records", src, h, pr, part, by_mid.between(lo - 1e-3, hi),  # type: ignore[union-attr]
                                           language, anns)
        for k, idx in enumerate(batches):
            part = [clips[i] for i in idx]
            span = sum(b - a for a, b in part)
            ids = [clip_id_for(h, a, b) for a, b in part]
            if k in committed and set(ids) <= existing_ids:
                tick(span / 2)
                continue
            if k in refs:
                stage("clips (workers)")
                made = self._collect(self.pool.get(refs[k]))  # type: ignore[union-attr]
            else:
                made = self._batch_records(src, h, pr, part, by_mid, language, anns, stage)
            stage("embed")
            with st.time("embed"), self._lib_lock, self.library.batch():
                olds = {r.clip_id: r for r in self.library.get_many(sorted(set(ids) & existing_ids))}
                self.library.add([self._merge(rec, human, olds.get(rec.clip_id)) for rec, human in made])
            committed.append(k)
            _atomic_json(progress_file, {"key": key, "done": committed})
            tick(span / 2)

        stale = existing_ids - new_ids
        if stale:
            with st.time("embed"), self._lib_lock, self.library.batch():
                drop = [r.clip_id for r in self.library.get_many(sorted(stale)) if not r.verified]
                if drop:
                    self.library.delete(drop)
        _atomic_json(work / "done.json", {"signature": signature, "ids": sorted(new_ids), "language": language})
        progress_file.unlink(missing_ok=True)
        warn = [truncated] if truncated else []
        if not pr.has_audio:
            warn.append("no audio stream: ingested for its pictures only")
        elif silent:
            warn.append("silent audio track: no transcript")
        return FileStatus(path=str(src), status="warning" if not pr.has_audio or truncated else "ok",
                          message="; ".join(warn),
                          clips=len(clips), duration=pr.duration, language=language, has_audio=pr.has_audio,
                          source_hash=h)

    def _process_still(self, src: Path, stage: Any, on_progress: Any) -> FileStatus:
        """A photo → one still record: upright keyframe, measured picture facts, description and labels, with a
        format from what the picture shows (plain backdrop: packshot; a person: model photo; else a scene)."""
        st = self.stages
        stage("probe")
        with st.time("probe"):
            h = file_hash(src)
        anns = self.annotations.get(src.resolve(), [])
        work = self._work(h)
        existing_ids = self.library.ids_for_source(h)
        signature = {"v": PIPELINE_VERSION, "still": STILL_SECONDS, "garment": 1, "product": self.product,
                     "ann": [a.model_dump(mode="json") for a in anns]}
        if (done := _unchanged(work, signature, existing_ids)) is not None:
            return FileStatus(path=str(src), status="skipped", message="unchanged (already ingested)",
                              clips=len(done["ids"]), duration=0.0, source_hash=h)
        stage("keyframes")
        from index.visual import visual_facts

        with st.time("keyframes"):
            kf, w, hgt = prepare_still(src, self.settings.home / "keyframes" / h)
        with st.time("visual"):
            facts = visual_facts([kf, kf, kf], np.zeros((2, 36, 64), dtype=np.uint8), 0.0, STILL_SECONDS)
        with st.time("describe"):
            description, desc_src = self._describe([kf], facts, "", None)
        human = {k: v for a in anns for k, v in a.fields.items()}
        with st.time("label"):
            labels = self._label(human.get("transcript", ""), human.get("description", description), facts, None)
        kind, fmt = _still_format(facts)
        garment, garment_src = still_garment(src, human, description, [*labels.tags, self.product or ""])
        content_type = labels.content_type
        if content_type == ContentType.other:
            content_type = ContentType.product_intro if kind != "scene photo" else ContentType.other
        cid = clip_id_for(h, 0.0, STILL_SECONDS)
        rec = ClipRecord(
            clip_id=cid, source=record_source(src, self.settings), source_hash=h, start=0.0, end=STILL_SECONDS,
            language=None,
            description=description, visual=facts, content_type=content_type, format=[fmt], product=self.product,
            tags=list(dict.fromkeys([*labels.tags, kind.replace(" ", "-")])), trend_tags=labels.trend_tags,
            label_source=labels.label_source, label_explanation=labels.explanation, keyframes=[str(kf)] * 3,
            has_audio=False, width=w, height=hgt, fps=None, garment=garment,
            provenance={"pipeline": PIPELINE_VERSION, "description": desc_src, "still": kind,
                        **({"garment": garment_src} if garment_src else {})},
        )
        stage("embed")
        with st.time("embed"), self._lib_lock, self.library.batch():
            old = self.library.get_many([cid]) if cid in existing_ids else []
            self.library.add([self._merge(rec, human, old[0] if old else None)])
        _atomic_json(work / "done.json", {"signature": signature, "ids": [cid], "language": None})
        on_progress(STILL_SECONDS, STILL_SECONDS)
        return FileStatus(path=str(src), status="ok", message=f"photo ({kind}, {w}x{hgt})", clips=1,
                          duration=0.0, source_hash=h)

    def _batch_records(self, src: Path, h: str, pr: Any, clips: list[tuple[float, float]], words: _WordIndex,
                       language: str | None, anns: list[Annotation],
                       stage: Any) -> list[tuple[ClipRecord, dict[str, Any]]]:
        """Records (before merging with the library) of one batch of clips, with the human fields for each;
        frames are decoded a bounded run of clips at a time."""
        from index.keyframes import batches, extract_batch
        from index.visual import visual_facts

        st = self.stages
        out: list[tuple[ClipRecord, dict[str, Any]]] = []
        kf_dir = self.settings.home / "keyframes" / h
        for run in batches(clips):
            stage(f"keyframes {run[0][0]:.0f}–{run[-1][1]:.0f} s")
            with st.time("keyframes"):
                keyframes, proxy, p0 = extract_batch(src, run, kf_dir, fps=pr.fps, duration=pr.duration,
                                                     ffmpeg=self.settings.ffmpeg)
            for (a, b), kfs in zip(run, keyframes, strict=True):
                stage(f"clip {a:.1f}–{b:.1f}s")
                cw = words.between(a - 1e-3, b)
                transcript = "".join(w.text for w in cw).strip()
                with st.time("visual"):
                    facts = visual_facts(kfs, proxy, a - p0, b - p0)
                with st.time("describe"):
                    description, desc_src = self._describe(kfs, facts, transcript, language)
                human = self._human_fields(anns, a, b, pr.duration)
                with st.time("label"):
                    labels = self._label(human.get("transcript", transcript),
                                         human.get("description", description), facts, language)
                rec = ClipRecord(
                    clip_id=clip_id_for(h, a, b), source=record_source(src, self.settings), source_hash=h,
                    start=a, end=b,
                    language=language, transcript=transcript, words=cw, description=description, visual=facts,
                    content_type=labels.content_type, format=labels.format, product=self.product,
                    tags=labels.tags, trend_tags=labels.trend_tags, label_source=labels.label_source,
                    label_explanation=labels.explanation, keyframes=[str(p) for p in kfs],
                    has_audio=pr.has_audio, width=pr.width or None, height=pr.height or None,
                    fps=round(pr.fps, 3) or None,
                    provenance={"pipeline": PIPELINE_VERSION, "description": desc_src,
                                "asr": "faster-whisper base int8" if words.words else None},
                )
                out.append((rec, human))
        return out

    @staticmethod
    def _human_fields(anns: list[Annotation], a: float, b: float, duration: float) -> dict[str, Any]:
        """Fields a human gave for this clip: source-wide rows first, then the row whose range matches."""
        out: dict[str, Any] = {}
        for ann in anns:
            if not ann.has_range:
                out.update(ann.fields)
        for ann in anns:
            if ann.start is None or ann.end is None:
                continue
            if abs(ann.start - a) < 1e-3 and abs(min(ann.end, duration) - b) < 1e-3:
                out.update(ann.fields)
        return out

    def _merge(self, rec: ClipRecord, human: dict[str, Any], old: ClipRecord | None) -> ClipRecord:
        """Apply annotation overrides, then keep every field a human verified earlier in `old`, the library's
        record of this clip (re-ingest never overwrites human work)."""
        data = rec.model_dump()
        verified: list[str] = []
        for k, v in human.items():
            data[k] = v
            verified.append(k)
        if human:
            data["label_source"] = "human" if "content_type" in human else data["label_source"]
        if old is not None:
            for k in old.verified:
                if k not in human and k in data:
                    data[k] = getattr(old, k)
                    verified.append(k)
        data["verified"] = sorted(set(verified))
        data.pop("duration", None)
        return ClipRecord.model_validate(data)


class IngestWorker:
    """A worker's state for its whole life (a Ray actor): an Ingestor with no library (workers never open it)
    holding Whisper, the text embedder and the offline labeler, each loaded once per worker."""

    def __init__(self, settings: Settings, product: str | None, window_s: float) -> None:
        from index.embed import get_text_embedder

        self.ing = Ingestor(settings, cast("Library", None), product=product, window_s=window_s,
                            embedder=get_text_embedder(settings))
        self.units = 0
        self.busy_s = 0.0
        self._t0 = 0.0

    def _answer(self, value: Any) -> dict[str, Any]:
        st, self.ing.stages = self.ing.stages, _Stages()
        warnings, self.ing.warnings = self.ing.warnings, []
        self.units += 1
        self.busy_s += time.perf_counter() - self._t0
        return {"value": value, "seconds": st.seconds, "warnings": warnings}

    def analyse(self, src: Path, h: str, has_audio: bool, duration: float, windows: list[tuple[float, float]],
                i: int, need_shots: bool) -> dict[str, Any]:
        self._t0 = time.perf_counter()
        return self._answer(self.ing._analyse_unit(src, h, has_audio, duration, windows, i, need_shots))

    def records(self, src: Path, h: str, pr: Any, part: list[tuple[float, float]], words: list[Word],
                language: str | None, anns: list[Annotation]) -> dict[str, Any]:
        self._t0 = time.perf_counter()
        return self._answer(self.ing._batch_records(src, h, pr, part, _WordIndex(words), language, anns,
                                                    lambda _s: None))

    def stats(self) -> dict[str, Any]:
        """Pid, units run, models this process loaded (Whisper, text embedders) and its peak RSS."""
        from index import asr, embed

        return {"pid": os.getpid(), "units": self.units, "busy_s": round(self.busy_s, 3),
                "whisper_loads": len(asr._models), "embedder_loads": len(embed._CACHE),
                "labeler_loads": int(self.ing._labeler is not None),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "children_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def _still_format(facts: VisualFacts) -> tuple[str, ClipFormat]:
    """What kind of photo the measures say it is, and its format."""
    if facts.white_background or facts.plain_background == "yes":
        return "white-background photo", ClipFormat.product_still
    if facts.faces or facts.person == "yes":
        return "model photo", ClipFormat.model_showcase
    return "scene photo", ClipFormat.product_display


def plan_files(paths: list[Path], settings: Settings, library: Library, annotations: Path | None
               ) -> tuple[list[Path], list[FileStatus], dict[Path, list[Any]]]:
    """What an ingest will read: the media files found, a row per problem already known (a bad annotation line
    is a failed row and is skipped; a mapped or custom team word a warning; an annotated source that is missing),
    and the annotations by source. Shared by `cutpilot ingest` and the studio's ingest job."""
    roots = [r for r in (_resolved(p) for p in paths) if r is not None]
    loaded = load_annotations(annotations, roots, embedder=library.embedder, strict=False) if annotations else None
    anns: dict[Path, list[Any]] = dict(loaded.by_source) if loaded else {}
    files, rows = discover(paths, settings)
    if loaded is not None:
        rows = [FileStatus(path=f"{annotations} line {p.line}", status=p.status, message=p.message)
                for p in loaded.problems] + rows
    for src in anns:
        if src not in files:
            if src.exists():
                files.append(src)
            else:
                rows.append(FileStatus(path=str(src), status="failed", message="annotated source not found"))
    return files, rows, anns


def ingest(paths: list[Path], settings: Settings, library: Library, *, annotations: Path | None = None,
           product: str | None = None, jobs: int = 1, progress: bool = True,
           window_s: float = WINDOW_S, executor: str = "local", ray_address: str | None = None,
           workers: int | None = None, worker_cls: type | None = None) -> IngestReport:
    """Ingest files and folders into `library`; never raises for a bad file or annotation line (each becomes a
    failed row), only for an annotation file that cannot be read at all. `window_s` is how much footage is decoded
    and transcribed at a time. `executor="ray"` runs the windows on Ray workers (`IngestWorker`, or `worker_cls`),
    joining `ray_address` or starting a private cluster of `workers` CPUs."""
    t0 = time.perf_counter()
    files, rows, anns = plan_files(paths, settings, library, annotations)
    pool = None
    if executor == "ray" and files:
        from cutpilot.executors import LazyPool

        here = settings.model_copy(update={"home": settings.home.resolve()})  # workers may start elsewhere
        pool = LazyPool(worker_cls or IngestWorker, (here, product, window_s), address=ray_address, workers=workers)
        jobs = max(jobs, 2 * pool.workers)  # driver threads only wait on workers and commit
    try:
        ing = Ingestor(settings, library, product=product, annotations=anns, window_s=window_s, pool=pool)
        results = _run_files(ing, files, jobs, progress)
        if pool is not None:
            ing.worker_stats = pool.stats()
    finally:
        if pool is not None:
            pool.close()
    report = IngestReport(rows=rows + results, stage_seconds={k: round(v, 3) for k, v in ing.stages.seconds.items()},
                          workers=ing.worker_stats)
    report.footage_seconds = round(sum(r.duration for r in results if r.status in ("ok", "warning")), 3)
    report.wall_seconds = round(time.perf_counter() - t0, 3)
    for w in dict.fromkeys(ing.warnings):
        report.rows.append(FileStatus(path="(run)", status="warning", message=w))
    return report


def _run_files(ing: Ingestor, files: list[Path], jobs: int, progress: bool) -> list[FileStatus]:
    """Every source through `ing.process`, `jobs` at a time, with progress bars unless turned off."""
    results: list[FileStatus] = []
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        cols = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*cols, transient=False) as bar:
            total = bar.add_task("files", total=len(files), count=f"0/{len(files)} files")
            finished = [0]

            def run_one(src: Path) -> FileStatus:
                task = bar.add_task(f"  {src.name}", total=None, count="")
                seen = [0.0]

                def on_stage(s: str) -> None:
                    bar.update(task, description=f"  {src.name}: {s}")

                def on_progress(seconds: float, of: float) -> None:
                    seen[0] = min(of, seen[0] + seconds)
                    bar.update(task, total=of, completed=seen[0], count=f"{seen[0]:.0f}/{of:.0f} s footage")

                try:
                    return ing.process(src, on_stage, on_progress)
                finally:
                    bar.remove_task(task)
                    finished[0] += 1
                    bar.update(total, advance=1, count=f"{finished[0]}/{len(files)} files")

            results = _run_all(files, run_one, jobs)
    else:
        results = _run_all(files, ing.process, jobs)
    return results


def _run_all(files: list[Path], fn: Any, jobs: int) -> list[FileStatus]:
    if jobs <= 1 or len(files) <= 1:
        return [fn(f) for f in files]
    out: dict[Path, FileStatus] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ingest") as pool:
        futs = {pool.submit(fn, f): f for f in files}
        for fut in as_completed(futs):
            out[futs[fut]] = fut.result()
    return [out[f] for f in files]
