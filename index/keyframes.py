"""Keyframes and the grey motion proxy for a run of clips, in bounded ffmpeg calls.

One filter expression with a term per frame breaks ffmpeg's expression parser once a source has a few dozen
clips ("Cannot allocate memory"), and one decode of a 2-hour source holds all of it in one process. So clips
are taken a bounded batch at a time: ffmpeg seeks (-ss) to the batch start, decodes only that span, selects
the wanted frames by time with a short expression and writes a 4 fps grey proxy of the same span. Frames are
named by their frame number in the source, so a clip always gets the same file names and a resumed run
overwrites, never multiplies, them.
"""

from __future__ import annotations

import bisect
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cutpilot.errors import MediaError
from cutpilot.media import which
from cutpilot.procs import child_kwargs

THUMB_W = 640
MOTION_FPS = 4
BATCH_CLIPS = 8
_MW, _MH = 64, 36
_PTS = re.compile(r"pts_time:(-?[0-9.]+)")


def keyframe_times(start: float, end: float) -> tuple[float, float, float]:
    """First / middle / last sample times, kept a little inside the clip so they never show the neighbour."""
    inset = min(0.08, (end - start) / 4)
    return start + inset, (start + end) / 2, end - inset


def frame_numbers(clips: Sequence[tuple[float, float]], *, fps: float, duration: float) -> list[list[int]]:
    """Per clip the source frame numbers of its [first, middle, last] keyframes (never the last two frames,
    which a probed duration often promises but the file does not hold)."""
    last_frame = max(0, int(duration * fps) - 2)
    return [[min(int(t * fps), last_frame) for t in keyframe_times(a, b)] for a, b in clips]


def proxy_start(start: float) -> float:
    """Where a batch's proxy starts: on the source's 4 fps grid, so a clip's motion score does not depend on
    which batch it fell into."""
    return math.floor(start * MOTION_FPS) / MOTION_FPS


def extract_batch(
    src: str | Path, clips: Sequence[tuple[float, float]], out_dir: Path, *, fps: float, duration: float,
    ffmpeg: str = "ffmpeg",
) -> tuple[list[list[Path]], np.ndarray, float]:
    """Per clip [first, middle, last] JPEG paths, the grey motion proxy (n, 36, 64) uint8 at 4 fps of the span
    the clips cover, and the source time of the proxy's first frame (motion is measured at clip time minus it)."""
    if not clips:
        return [], np.zeros((0, _MH, _MW), dtype=np.uint8), 0.0
    fps = fps if fps and fps > 0 else 25.0
    wanted = frame_numbers(clips, fps=fps, duration=duration)
    frames = sorted({n for trip in wanted for n in trip})
    ss = proxy_start(min(a for a, _ in clips))
    span = max(b for _, b in clips) - ss + 0.5
    # times relative to the seek point; each term selects the first frame at or after a wanted frame's nominal
    # time, which is that frame on constant-rate video and the frame showing that moment on variable-rate video
    targets = {n: max(0.0, n / fps - ss - 1e-4) for n in frames}
    expr = "+".join(f"gte(t\\,{t:.6f})*not(gte(prev_t\\,{t:.6f}))" for t in sorted(set(targets.values())))
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="cp-kf-"))
    try:
        pts_file = tmp / "pts.txt"
        graph = (
            f"[0:v]split=2[a][b];[a]select='{expr}',metadata=mode=add:key=cp_kf:value=1,"
            f"metadata=mode=print:key=cp_kf:file={pts_file},scale='min({THUMB_W},iw)':-2[k];"
            f"[b]fps={MOTION_FPS},scale={_MW}:{_MH},format=gray[m]"
        )
        cmd = [which(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-ss", f"{ss:.3f}", "-t", f"{span:.3f}", "-i", str(src), "-filter_complex", graph,
               "-map", "[k]", "-fps_mode", "passthrough", "-q:v", "4", str(tmp).replace("%", "%%") + "/f_%05d.jpg",
               "-map", "[m]", "-f", "rawvideo", "pipe:1"]
        res = subprocess.run(cmd, capture_output=True, timeout=900, **child_kwargs())
        if res.returncode != 0:
            tail = res.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise MediaError(f"{src}: cannot decode frames ({tail[0] if tail else 'ffmpeg failed'})")
        made = sorted(tmp.glob("f_*.jpg"))
        if not made:
            raise MediaError(f"{src}: no decodable video frames")
        times = [float(m.group(1)) for m in _PTS.finditer(pts_file.read_text(encoding="utf-8"))] \
            if pts_file.exists() else []
        by_frame: dict[int, Path] = {}
        for k, n in enumerate(frames):
            if len(times) == len(made):  # the first decoded frame at or after the wanted moment
                i = min(bisect.bisect_left(times, targets[n] - 1e-3), len(made) - 1)
            else:  # no timing (odd stream): take the frames in order, as a one-pass decode does
                i = min(k, len(made) - 1)
            name = out_dir / f"f{n:06d}.jpg"
            shutil.copyfile(made[i], name)
            by_frame[n] = name
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    raw = np.frombuffer(res.stdout, dtype=np.uint8)
    proxy = raw[: (raw.size // (_MW * _MH)) * _MW * _MH].reshape(-1, _MH, _MW)
    return [[by_frame[n] for n in trip] for trip in wanted], proxy, ss


def batches(clips: Sequence[tuple[float, float]], size: int = BATCH_CLIPS) -> list[list[tuple[float, float]]]:
    """Consecutive runs of at most `size` clips (each run is one bounded ffmpeg call)."""
    return [list(clips[i : i + size]) for i in range(0, len(clips), size)]
