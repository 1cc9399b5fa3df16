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


# File signatures of things that are not video, whatever their name says (a PNG renamed .mp4 is a PNG).
_NOT_VIDEO: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG\r\n\x1a\n", "PNG image"), (0, b"\xff\xd8\xff", "JPEG image"), (0, b"GIF8", "GIF image"),
    (0, b"BM", "BMP image"), (8, b"WEBP", "WebP image"), (0, b"II*\x00", "TIFF image"), (0, b"MM\x00*", "TIFF image"),
    (0, b"%PDF", "PDF document"), (0, b"PK\x03\x04", "ZIP archive"), (0, b"\x1f\x8b", "gzip archive"),
    (0, b"ID3", "MP3 audio"), (0, b"fLaC", "FLAC audio"), (0, b"OggS", "Ogg file"), (8, b"WAVE", "WAV audio"),
]


def not_video(path: str | Path) -> str | None:
    """What a file is when its first bytes say it is not a video container (e.g. 'PNG image'), else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    for off, sig, kind in _NOT_VIDEO:
        if head[off : off + len(sig)] == sig:
            return kind
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "text file"
    return None


def _last_video_s(path: Path, ffprobe: str, interval: str | None) -> float:
    cmd = [which(ffprobe), "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,duration_time",
           "-of", "csv=p=0", *(["-read_intervals", interval] if interval else []), str(path)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **child_kwargs())
    except subprocess.TimeoutExpired:
        return 0.0
    end = 0.0
    for line in res.stdout.splitlines():
        parts = line.split(",")
        if parts and parts[0] not in ("", "N/A"):
            end = max(end, _float(parts[0]) + (_float(parts[1]) if len(parts) > 1 else 0.0))
    return end


def decodable_duration(pr: Probe, ffprobe: str = "ffprobe") -> float:
    """Seconds of video whose packets are really in the file. A truncated file (a faststart mp4 cut in half keeps
    the full index) says 8 s but holds 3.6: its last packets are read (cheap: no decoding, the tail first, the
    whole packet list only when the tail is missing)."""
    if not pr.has_video or pr.duration <= 0:
        return pr.duration
    streams: list[dict[str, Any]] = pr.raw.get("streams", [])
    v = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), {})
    said = _float(v.get("duration")) or pr.duration
    slack = max(0.5, 3.0 / pr.fps) if pr.fps else 0.5
    if _last_video_s(pr.path, ffprobe, f"{max(0.0, said - 2.0):.3f}%") >= said - slack:
        return pr.duration
    end = _last_video_s(pr.path, ffprobe, None)
    return pr.duration if end <= 0 or end >= said - slack else round(end, 3)


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
