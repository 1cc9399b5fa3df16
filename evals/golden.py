"""The golden clip library: builds media + annotated records from `golden/library.yaml`, then a Library.

Real licensed files come from `golden/media/` (NOTICE.md); everything else is generated here with ffmpeg test
sources or product stills and espeak-ng speech, so the library is small, reproducible and offline. The build is
cached under `settings.home/evals/golden/<hash of spec + media + this builder>` so reruns are instant.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cutpilot.errors import InputError, ToolMissingError
from cutpilot.media import probe, run_ffmpeg
from cutpilot.models import EDITABLE_FIELDS, ClipRecord, clip_id_for, file_hash
from cutpilot.procs import child_kwargs
from cutpilot.settings import Settings
from evals.scorers import Gold

if TYPE_CHECKING:
    from index.library import Library

GOLDEN_DIR = Path(__file__).parent / "golden"
SPEC_PATH = GOLDEN_DIR / "library.yaml"
MEDIA_DIR = GOLDEN_DIR / "media"
BUILDER_VERSION = "1"  # bump when the way media is generated changes
SIZE = (360, 640)
FPS = 25
MAX_CLIP_S = 10.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MediaSpec(_Strict):
    kind: Literal["synth", "real", "audio", "still"]
    pattern: str = "testsrc2"
    file: str | None = None
    seconds: float | None = Field(default=None, gt=0, le=MAX_CLIP_S)
    start: float = 0.0
    end: float | None = None


class GoldenClip(_Strict):
    key: str
    product: str | None
    lang: Literal["zh", "en"]
    content_type: str
    format: str
    transcript: str = ""
    description: str
    tags: list[str] = Field(default_factory=list)
    trend_tags: list[str] = Field(default_factory=list)
    dup_of: str | None = None
    hard_case: str | None = None
    media: MediaSpec


class GoldenSpec(_Strict):
    version: int
    products: dict[str, str]
    clips: list[GoldenClip]

    def keys(self) -> set[str]:
        return {c.key for c in self.clips}


def load_spec(path: Path = SPEC_PATH) -> GoldenSpec:
    """The spec, validated: unique keys, known products, dup_of pointing at a real key, media files present."""
    try:
        spec = GoldenSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise InputError(f"golden spec {path.name}: field {loc}: {err['msg']}") from None
    keys = [c.key for c in spec.clips]
    dups = {k for k in keys if keys.count(k) > 1}
    if dups:
        raise InputError(f"golden spec {path.name}: duplicate keys {sorted(dups)}")
    for c in spec.clips:
        if c.product is not None and c.product not in spec.products:
            raise InputError(f"golden spec {path.name}: clip {c.key}: unknown product {c.product!r}")
        if c.dup_of is not None and c.dup_of not in keys:
            raise InputError(f"golden spec {path.name}: clip {c.key}: dup_of {c.dup_of!r} is not a key")
        still = c.media.pattern.removeprefix("still:") if c.media.pattern.startswith("still:") else None
        for f in (c.media.file, still):
            if f and not (path.parent / "media" / f).is_file():
                raise InputError(f"golden spec {path.name}: clip {c.key}: media file {f!r} not in golden/media")
    return spec


def spec_hash(path: Path = SPEC_PATH) -> str:
    """Content hash of what the library is built from (spec, licensed media, builder version)."""
    h = hashlib.sha256(BUILDER_VERSION.encode())
    h.update(path.read_bytes())
    for f in sorted((path.parent / "media").iterdir()):
        h.update(f.name.encode())
        h.update(file_hash(f).encode())
    return h.hexdigest()[:16]


# --- media generation ------------------------------------------------------------------------------------------
def _speak(text: str, lang: str, out: Path) -> float:
    """espeak-ng speech (cmn for zh); returns its length in seconds."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ToolMissingError("espeak-ng is not installed (apt-get install espeak-ng); needed for golden speech")
    voice, speed = ("cmn", "250") if lang == "zh" else ("en-us", "170")
    subprocess.run([exe, "-v", voice, "-s", speed, "-w", str(out), text], check=True, capture_output=True,
                   **child_kwargs())
    return probe(out).duration


def _video_input(pattern: str, secs: float, work: Path) -> list[str]:
    w, h = SIZE
    if pattern == "testsrc2":
        return ["-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r={FPS}:d={secs:.3f}"]
    if pattern.startswith("color:"):
        colour = pattern.removeprefix("color:").replace("#", "0x")
        return ["-f", "lavfi", "-i", f"color=c={colour}:s={w}x{h}:r={FPS}:d={secs:.3f}"]
    if pattern.startswith("still:"):
        src = MEDIA_DIR / pattern.removeprefix("still:")
        img = src
        if src.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            img = work / f"{src.stem}_frame.png"
            if not img.exists():
                run_ffmpeg(["-y", "-ss", "1", "-i", str(src), "-frames:v", "1", str(img)], what="golden still frame")
        return ["-loop", "1", "-framerate", str(FPS), "-t", f"{secs:.3f}", "-i", str(img)]
    raise InputError(f"golden spec: unknown footage pattern {pattern!r}")


_FIT = f"scale={SIZE[0]}:{SIZE[1]}:force_original_aspect_ratio=decrease,pad={SIZE[0]}:{SIZE[1]}:-1:-1:color=white," \
       "format=yuv420p"


def _make_clip(c: GoldenClip, work: Path) -> tuple[Path, float, float]:
    """Builds one clip's media; returns (source file, start, end) for the record."""
    m = c.media
    if m.kind == "real":
        src = MEDIA_DIR / str(m.file)
        end = m.end if m.end is not None else min(probe(src).duration, MAX_CLIP_S)
        return src, m.start, end
    if m.kind == "still":
        return MEDIA_DIR / str(m.file), 0.0, float(m.seconds or 3.0)
    out = work / f"{c.key}.mp4"
    if m.kind == "audio":
        audio = MEDIA_DIR / str(m.file)
        adur = probe(audio).duration
        secs = min(adur - m.start, (m.end or MAX_CLIP_S) - m.start, MAX_CLIP_S)
        audio_args = ["-ss", f"{m.start:.3f}", "-t", f"{secs:.3f}", "-i", str(audio)]
    else:
        wav = work / f"{c.key}.wav"
        speech = _speak(c.transcript, c.lang, wav) if c.transcript else 0.0
        secs = min(max(m.seconds or 0.0, speech + 0.3, 1.0), MAX_CLIP_S)
        audio_args = ["-i", str(wav)] if c.transcript else ["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono"]
    run_ffmpeg(
        ["-y", *_video_input(m.pattern, secs, work), *audio_args, "-filter_complex",
         f"[0:v]{_FIT}[v];[1:a]apad,aresample=44100[a]", "-map", "[v]", "-map", "[a]", "-t", f"{secs:.3f}",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28", "-c:a", "aac", "-b:a", "64k", str(out)],
        item_id=c.key, what="golden clip build failed",
    )
    return out, 0.0, round(probe(out).duration, 3)


def _keyframe(src: Path, mid: float, out: Path) -> str | None:
    if src.suffix.lower() in (".png", ".jpg", ".jpeg"):
        return str(src)
    if not out.exists():
        run_ffmpeg(["-y", "-ss", f"{mid:.3f}", "-i", str(src), "-frames:v", "1", "-vf", "scale=320:-2", str(out)],
                   what="golden keyframe")
    return str(out)


def build_records(settings: Settings, spec: GoldenSpec | None = None, *, progress: bool = False) -> list[ClipRecord]:
    """Media + annotated records, cached by content hash (records.jsonl marks a finished build)."""
    spec = spec or load_spec()
    work = settings.home / "evals" / "golden" / spec_hash()
    done = work / "records.jsonl"
    if done.exists():
        return [ClipRecord.model_validate_json(line) for line in done.read_text(encoding="utf-8").splitlines() if line]
    work.mkdir(parents=True, exist_ok=True)
    records: list[ClipRecord] = []
    for i, c in enumerate(spec.clips):
        if progress:
            print(f"  golden clip {i + 1}/{len(spec.clips)}: {c.key}", flush=True)
        src, start, end = _make_clip(c, work)
        shash = file_hash(src)
        info = probe(src) if src.suffix.lower() not in (".png", ".jpg", ".jpeg") else None
        kf = _keyframe(src, (start + end) / 2, work / f"{c.key}.jpg")
        records.append(
            ClipRecord.model_validate(dict(
                clip_id=clip_id_for(shash, start, end), source=str(src.resolve()), source_hash=shash,
                start=start, end=end, language=c.lang, transcript=c.transcript, description=c.description,
                content_type=c.content_type, format=c.format, product=spec.products[c.product] if c.product else None,
                tags=c.tags, trend_tags=c.trend_tags, label_source="human", verified=list(EDITABLE_FIELDS),
                label_explanation=f"golden:{c.key}", keyframes=[kf] if kf else [],
                has_audio=bool(info and info.has_audio), width=info.width if info else None,
                height=info.height if info else None, fps=info.fps if info else None,
                provenance={"golden_key": c.key, "media": c.media.model_dump(exclude_none=True)},
            ))
        )
    tmp = done.with_suffix(".tmp")
    tmp.write_text("\n".join(r.model_dump_json(exclude={"duration"}) for r in records) + "\n", encoding="utf-8")
    tmp.replace(done)
    return records


def gold_for(spec: GoldenSpec, records: list[ClipRecord]) -> Gold:
    ids = {str((r.provenance or {}).get("golden_key")): r.clip_id for r in records}
    dup = {ids[c.key]: ids[c.dup_of] for c in spec.clips if c.dup_of}
    return Gold(ids=ids, dup_group=dup)


@dataclass
class GoldenLibrary:
    spec: GoldenSpec
    records: dict[str, ClipRecord]  # clip_id → record
    gold: Gold
    settings: Settings  # settings whose home holds the golden store

    def open(self) -> Library:
        from index.library import Library

        return Library.open(self.settings)


def golden_settings(settings: Settings) -> Settings:
    """The same configuration with its own home, so the golden store never mixes with the user's library."""
    return settings.model_copy(update={"home": settings.home / "evals" / "golden" / spec_hash() / "home"})


def build_golden(settings: Settings, *, progress: bool = False) -> GoldenLibrary:
    """Build (or reuse) the golden media, records and Library store."""
    spec = load_spec()
    records = build_records(settings, spec, progress=progress)
    gs = golden_settings(settings)
    gl = GoldenLibrary(spec=spec, records={r.clip_id: r for r in records}, gold=gold_for(spec, records), settings=gs)
    marker = gs.home / "indexed.json"
    want = {"embedder": settings.text_embedder, "n": len(records)}
    if not (marker.exists() and json.loads(marker.read_text()) == want):
        lib = gl.open()
        try:
            lib.add(records)
        finally:
            lib.close()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(want))
    facts = GOLDEN_DIR / "products.yaml"
    if facts.exists():  # the planner states these facts; the grounding scorer checks against the same file
        from cutpilot.products import ProductStore

        ProductStore(gs).import_file(facts)
    return gl


def describe(spec: GoldenSpec | None = None) -> dict[str, Any]:
    """Counts for the report: clips per product and language, distractors, hard cases."""
    spec = spec or load_spec()
    per: dict[str, int] = {}
    for c in spec.clips:
        k = f"{spec.products.get(c.product or '', 'no product')}/{c.lang}"
        per[k] = per.get(k, 0) + 1
    return {"clips": len(spec.clips), "per_product_lang": per,
            "hard_cases": [c.key for c in spec.clips if c.hard_case],
            "near_duplicates": [c.key for c in spec.clips if c.dup_of]}
