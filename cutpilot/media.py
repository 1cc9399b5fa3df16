"""ffprobe / ffmpeg as subprocesses: the one place that knows their flags and turns failures into typed errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from cutpilot.errors import MediaError, RenderError, ToolMissingError
from cutpilot.procs import child_kwargs

VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv"}
AUDIO_EXTS = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def which(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise ToolMissingError(f"{tool} not found on PATH; run scripts/setup.sh (installs Debian's ffmpeg)")
    return path


@dataclass
class Probe:
    """What ffprobe says about a file, reduced to what the pipeline needs."""

    path: Path
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    vcodec: str | None = None
    acodec: str | None = None
    sample_rate: int = 0
    rotation: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def probe(path: str | Path, ffprobe: str = "ffprobe") -> Probe:
    """Probe a media file; corrupt, empty or stream-less files raise MediaError with a one-line reason."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: zero-length file")
    cmd = [which(ffprobe), "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(p)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **child_kwargs())
    if res.returncode != 0:
        reason = (res.stderr.strip().splitlines() or ["unreadable"])[-1]
        raise MediaError(f"{p}: not a readable media file ({reason})")
    data = json.loads(res.stdout or "{}")
    streams = data.get("streams", [])
    v = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), None)
    a = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if v is None and a is None:
        raise MediaError(f"{p}: no audio or video stream")
    dur = _float(data.get("format", {}).get("duration"))
    if dur <= 0:
        dur = max(_float((v or {}).get("duration")), _float((a or {}).get("duration")))
    fps = 0.0
    if v is not None:
        for key in ("avg_frame_rate", "r_frame_rate"):
            try:
                fr = Fraction(v.get(key, "0/1"))
            except (ValueError, ZeroDivisionError):
                continue
            if fr > 0:
                fps = float(fr)
                break
    rotation = 0
    if v is not None:
        for sd in v.get("side_data_list", []) or []:
            if "rotation" in sd:
                rotation = int(sd["rotation"])
        rotation = int((v.get("tags") or {}).get("rotate", rotation))
    return Probe(
        path=p,
        duration=dur,
        has_video=v is not None,
        has_audio=a is not None,
        width=int((v or {}).get("width", 0)),
        height=int((v or {}).get("height", 0)),
        fps=fps,
        vcodec=(v or {}).get("codec_name"),
        acodec=(a or {}).get("codec_name"),
        sample_rate=int((a or {}).get("sample_rate", 0) or 0),
        rotation=rotation,
        raw=data,
    )


def _is_cover(stream: dict[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


def run_ffmpeg(args: list[str], *, item_id: str | None = None, what: str = "ffmpeg failed",
               ffmpeg: str = "ffmpeg", timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg quietly; on failure raise RenderError carrying the failing item and ffmpeg's last lines."""
    cmd = [which(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **child_kwargs())
    except subprocess.TimeoutExpired as e:
        raise RenderError(f"{what}: timed out after {timeout}s", item_id=item_id) from e
    if res.returncode != 0:
        tail = "\n".join(res.stderr.strip().splitlines()[-8:])
        raise RenderError(what, item_id=item_id, stderr_tail=tail)
    return res


def extract_audio(src: str | Path, dst: str | Path, sr: int = 16000, start: float | None = None,
                  end: float | None = None, ffmpeg: str = "ffmpeg") -> Path:
    """Mono PCM WAV at `sr` (what Whisper and loudness meters want)."""
    args: list[str] = []
    if start is not None:
        args += ["-ss", f"{start:.3f}"]
    args += ["-i", str(src)]
    if end is not None:
        args += ["-t", f"{(end - (start or 0.0)):.3f}"]
    args += ["-vn", "-ac", "1", "-ar", str(sr), "-c:a", "pcm_s16le", str(dst)]
    run_ffmpeg(args, what=f"audio extraction from {src} failed", ffmpeg=ffmpeg)
    return Path(dst)
