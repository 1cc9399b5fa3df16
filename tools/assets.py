"""Content-addressed store for generated assets, and the way back into the clip library.

WHY content addressing: the planner re-plans and revises; identical inputs (file bytes + tool + params) must
give the identical file without paying for TTS, synthesis or a remote model again, and a provider's paid output
must never be overwritten by a different request. Address = sha256 over the tool name, a content hash of every
input file and the canonical JSON of the parameters. A JSON sidecar next to each asset keeps its provenance.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, Field

from cutpilot.errors import InputError, MediaError
from cutpilot.media import IMAGE_EXTS, probe, run_ffmpeg
from cutpilot.models import ClipFormat, ClipRecord, ContentType, clip_id_for, file_hash
from cutpilot.settings import Settings
from cutpilot.storyboard import GeneratedAsset

if TYPE_CHECKING:
    from index.library import Library

_KIND_FOR_STORYBOARD = {
    "tts": "tts", "music": "music", "image_video": "image_video", "cutout": "background_swap",
    "background_swap": "background_swap", "try_on": "try_on", "card": "card", "scene": "background_swap",
}


class AssetResult(BaseModel):
    """A generated file plus how it was made (tool, provider, params): enough to re-make or audit it."""

    path: Path
    kind: str
    tool: str
    provider: str = "offline"
    params: dict[str, Any] = Field(default_factory=dict)
    key: str = ""
    cached: bool = False
    notes: list[str] = Field(default_factory=list, description="honest caveats, e.g. a fallback was used")

    def provenance(self) -> dict[str, Any]:
        return {"tool": self.tool, "provider": self.provider, "kind": self.kind, "key": self.key,
                "params": self.params, "notes": self.notes}

    def to_generated_asset(self) -> GeneratedAsset:
        """The storyboard's view of this asset."""
        kind = _KIND_FOR_STORYBOARD.get(self.kind, "generated_clip")
        return GeneratedAsset(kind=kind, path=str(self.path), tool=self.tool,  # type: ignore[arg-type]
                              provider=self.provider, params=self.params)


R = TypeVar("R", bound=AssetResult)


def default_asset_dir(settings: Settings) -> Path:
    """Where tools put assets when the caller does not choose: `<home>/assets`."""
    d = settings.home / "assets"
    d.mkdir(parents=True, exist_ok=True)
    return d


def asset_key(tool: str, inputs: Sequence[Path | str] = (), params: dict[str, Any] | None = None) -> str:
    """sha256 over tool + input *contents* + canonical params; a missing input is an InputError."""
    parts: list[str] = [f"tool={tool}"]
    for item in inputs:
        p = Path(item)
        if not p.is_file():
            raise InputError(f"{tool}: input file {p} not found")
        parts.append(f"in={file_hash(p)}")
    parts.append("params=" + json.dumps(params or {}, sort_keys=True, default=str, ensure_ascii=False))
    import hashlib

    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def asset_path(out_dir: Path, tool: str, key: str, ext: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir / f"{tool}_{key[:20]}{ext if ext.startswith('.') else '.' + ext}"


def cached(out_dir: Path, tool: str, key: str, ext: str, cls: type[R] = AssetResult) -> R | None:  # type: ignore[assignment]
    """The stored result for this address, if the file and its sidecar both exist and the file is non-empty."""
    path = asset_path(out_dir, tool, key, ext)
    side = path.with_name(path.name + ".json")
    if not (path.is_file() and path.stat().st_size > 0 and side.is_file()):
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
        res = cls.model_validate(data["asset"])
    except (ValueError, KeyError):
        return None
    return res.model_copy(update={"path": path, "cached": True})


def save_sidecar(result: R, extra: dict[str, Any] | None = None) -> R:
    """Write the provenance sidecar; the asset file must already be complete (written atomically)."""
    side = result.path.with_name(result.path.name + ".json")
    payload = {"asset": result.model_dump(mode="json"), **(extra or {})}
    tmp = side.with_name(side.name + ".part")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(side)
    return result


def load_sidecar(path: Path) -> dict[str, Any]:
    side = path.with_name(path.name + ".json")
    return json.loads(side.read_text(encoding="utf-8")) if side.is_file() else {}


def register_generated_clip(
    library: Library,
    path: Path,
    provenance: dict[str, Any],
    *,
    product: str | None,
    content_type: ContentType | str,
    description: str,
    formats: Sequence[ClipFormat | str] = (),
    tags: Sequence[str] = (),
    transcript: str = "",
    language: str | None = None,
    still_duration_s: float = 3.0,
    keyframe_dir: Path | None = None,
    ffmpeg: str = "ffmpeg",
) -> ClipRecord:
    """Probe a generated asset and add it to the library as a `generated` clip carrying its provenance.

    A still image gets `still_duration_s` (the planner animates it); a video keeps its probed length. One
    keyframe JPEG is written so the store can embed the picture like any ingested clip.
    """
    path = Path(path).resolve()
    is_image = path.suffix.lower() in IMAGE_EXTS
    if is_image:
        from PIL import Image

        try:
            with Image.open(path) as im:
                width, height = im.size
        except OSError as e:
            raise MediaError(f"{path}: not a readable image ({e})") from e
        duration, fps, has_audio = still_duration_s, None, False
    else:
        pr = probe(path)
        if not pr.has_video:
            raise MediaError(f"{path}: a generated clip needs a video stream (got audio only)")
        width, height, fps, has_audio, duration = pr.width, pr.height, pr.fps or None, pr.has_audio, pr.duration
    if duration <= 0:
        raise MediaError(f"{path}: zero duration")
    src_hash = file_hash(path)
    end = round(duration, 3)
    kf_dir = keyframe_dir or path.parent / "keyframes"
    kf_dir.mkdir(parents=True, exist_ok=True)
    kf = kf_dir / f"{src_hash}_mid.jpg"
    if not kf.exists():
        if is_image:
            from PIL import Image, ImageOps

            with Image.open(path) as im:
                ImageOps.exif_transpose(im).convert("RGB").save(kf, quality=90)
        else:
            run_ffmpeg(["-ss", f"{duration / 2:.3f}", "-i", str(path), "-frames:v", "1", "-q:v", "3", str(kf)],
                       what=f"keyframe of {path.name}", ffmpeg=ffmpeg)
    fmt = list(formats) if formats else [ClipFormat.effects_animation]
    record = ClipRecord(
        clip_id=clip_id_for(src_hash, 0.0, end),
        source=str(path),
        source_hash=src_hash,
        start=0.0,
        end=end,
        language=language,
        transcript=transcript,
        description=description,
        content_type=content_type,  # type: ignore[arg-type]  # validator parses str aliases
        format=fmt,  # type: ignore[arg-type]
        product=product,
        tags=list(tags),
        label_source="generated",
        label_explanation=f"generated by {provenance.get('tool', '?')} via {provenance.get('provider', '?')}",
        keyframes=[str(kf)] if kf.exists() else [],
        has_audio=has_audio,
        width=width,
        height=height,
        fps=fps,
        generated=True,
        provenance=provenance,
    )
    library.add([record])
    return record
