"""Keyframes and measured visual facts, the offline basis of a clip's description.

One ffmpeg decode per source produces every clip's first / middle / last keyframe (JPEG) *and* a tiny grey
4 fps proxy stream used for motion, so analysis never decodes a source twice. Facts come from OpenCV's
bundled Haar cascades (faces → shot size), k-means colours, the HSV border test for white-background stills,
and tesseract OCR (chi_sim+eng) gated by a cheap text-region detector because OCR is the slowest step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cutpilot.errors import MediaError
from cutpilot.media import which
from cutpilot.models import VisualFacts
from cutpilot.procs import child_kwargs

THUMB_W = 640
MOTION_FPS = 4
_MW, _MH = 64, 36

# Named colours in HSV-ish terms; the nearest name wins (what people say in briefs, not CSS).
_NAMED_RGB: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20), "white": (240, 240, 240), "grey": (128, 128, 128), "red": (200, 30, 30),
    "orange": (240, 140, 30), "yellow": (235, 220, 50), "green": (50, 160, 60), "cyan": (50, 200, 210),
    "blue": (40, 70, 200), "purple": (130, 50, 170), "pink": (240, 150, 190), "brown": (120, 75, 40),
    "beige": (220, 200, 165), "navy": (25, 35, 90), "dark green": (20, 70, 35),
}


def keyframe_times(start: float, end: float) -> tuple[float, float, float]:
    """First / middle / last sample times, kept a little inside the clip so they never show the neighbour."""
    inset = min(0.08, (end - start) / 4)
    return start + inset, (start + end) / 2, end - inset


def extract_keyframes(
    src: str | Path, clips: Sequence[tuple[float, float]], out_dir: Path, *, fps: float, duration: float,
    ffmpeg: str = "ffmpeg",
) -> tuple[list[list[Path]], np.ndarray]:
    """Per clip [first, middle, last] JPEG paths, plus the grey motion proxy (n, 36, 64) uint8 at 4 fps."""
    fps = fps if fps and fps > 0 else 25.0
    last_frame = max(0, int(duration * fps) - 2)
    wanted: list[list[int]] = [[min(int(t * fps), last_frame) for t in keyframe_times(a, b)] for a, b in clips]
    frames = sorted({n for trip in wanted for n in trip})
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".kf-", dir=out_dir))
    expr = "+".join(f"eq(n\\,{n})" for n in frames) or "0"
    graph = (
        f"[0:v]split=2[a][b];[a]select='{expr}',scale='min({THUMB_W},iw)':-2[k];"
        f"[b]fps={MOTION_FPS},scale={_MW}:{_MH},format=gray[m]"
    )
    # the image2 muxer reads `%` as a frame-number pattern: a `%` in the folder (CUTPILOT_HOME) must be `%%`
    cmd = [which(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(src),
           "-filter_complex", graph, "-map", "[k]", "-fps_mode", "passthrough", "-q:v", "4",
           str(tmp).replace("%", "%%") + "/f_%05d.jpg", "-map", "[m]", "-f", "rawvideo", "pipe:1"]
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=900, **child_kwargs())
        if res.returncode != 0:
            tail = res.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise MediaError(f"{src}: cannot decode frames ({tail[0] if tail else 'ffmpeg failed'})")
        made = sorted(tmp.glob("f_*.jpg"))
        if not made:
            raise MediaError(f"{src}: no decodable video frames")
        by_frame: dict[int, Path] = {}
        for i, n in enumerate(frames):
            name = out_dir / f"f{n:06d}.jpg"
            shutil.copyfile(made[min(i, len(made) - 1)], name)  # fewer frames than probed: reuse the last
            by_frame[n] = name
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    raw = np.frombuffer(res.stdout, dtype=np.uint8)
    proxy = raw[: (raw.size // (_MW * _MH)) * _MW * _MH].reshape(-1, _MH, _MW)
    return [[by_frame[n] for n in trip] for trip in wanted], proxy


def motion_score(proxy: np.ndarray, start: float, end: float) -> float:
    """Mean absolute frame difference (0–1) over the clip on the 4 fps grey proxy: ~0 static, >0.08 busy."""
    a, b = int(start * MOTION_FPS), max(int(start * MOTION_FPS) + 2, int(end * MOTION_FPS))
    seg = proxy[a:b].astype(np.int16)
    if len(seg) < 2:
        return 0.0
    return round(float(np.abs(np.diff(seg, axis=0)).mean() / 255.0), 4)


@lru_cache(maxsize=1)
def _face_cascade() -> Any:
    import cv2

    xml = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")  # type: ignore[attr-defined]
    return cv2.CascadeClassifier(xml)


def _read(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError(f"{path}: unreadable keyframe")
    return img


def _skin_share(img: np.ndarray) -> float:
    """Share of skin-coloured pixels (YCrCb box of the classic skin model): rejects faces found in textures."""
    import cv2

    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    return float(((cr >= 133) & (cr <= 180) & (cb >= 77) & (cb <= 135)).mean()) if img.size else 0.0


def detect_faces(img: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces (x, y, w, h) in `img` pixels: OpenCV's bundled Haar cascade on a 320 px proxy, then a
    skin-colour check, because cascades fire on building facades and wheels."""
    import cv2

    h0, w0 = img.shape[:2]
    scale = min(1.0, 320.0 / w0)
    small = cv2.resize(img, (round(w0 * scale), round(h0 * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else img
    grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    h = grey.shape[0]
    side = max(20, h // 12)
    found = _face_cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=6, minSize=(side, side))
    out: list[tuple[int, int, int, int]] = []
    for x, y, w, fh in found:
        if fh > 0.8 * h:
            continue
        core = small[y + fh // 5: y + fh * 4 // 5, x + w // 5: x + w * 4 // 5]
        if _skin_share(core) < 0.35:
            continue
        out.append((int(x / scale), int(y / scale), int(w / scale), int(fh / scale)))
    return out


def shot_size(largest_face_ratio: float) -> str:
    """Practitioners' shot sizes from the biggest face's height share of the frame."""
    if largest_face_ratio <= 0:
        return "none"
    if largest_face_ratio >= 0.28:
        return "close_up"
    if largest_face_ratio >= 0.1:
        return "medium"
    return "wide"


def color_name(rgb: Sequence[float]) -> str:
    r, g, b = (float(x) for x in rgb)
    return min(_NAMED_RGB, key=lambda k: sum((a - c) ** 2 for a, c in zip((r, g, b), _NAMED_RGB[k], strict=True)))


def dominant_colors(img: np.ndarray, k: int = 4) -> list[str]:
    """Named colours of the largest k-means clusters, biggest first, duplicates dropped."""
    import cv2

    small = cv2.resize(img, (48, 27), interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(7)
    _, labels, centers = cv2.kmeans(small, k, None, crit, 2, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    counts = np.bincount(labels.ravel(), minlength=k)
    names: list[str] = []
    for i in np.argsort(-counts):
        if counts[i] / len(labels) < 0.08:
            continue
        bgr = centers[i]
        name = color_name((bgr[2], bgr[1], bgr[0]))
        if name not in names:
            names.append(name)
    return names[:3]


def is_white_background(img: np.ndarray) -> bool:
    """A product still on white: the frame border is ≥85% near-white, unsaturated pixels and the centre is not."""
    import cv2

    hsv = cv2.cvtColor(cv2.resize(img, (160, 90), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV)
    white = (hsv[..., 2] > 215) & (hsv[..., 1] < 30)
    border = np.concatenate([white[:9].ravel(), white[-9:].ravel(), white[:, :16].ravel(), white[:, -16:].ravel()])
    centre = white[27:63, 48:112]
    return bool(border.mean() >= 0.85 and centre.mean() < 0.85)


def has_text_regions(img: np.ndarray, *, min_chars: int = 3) -> bool:
    """Cheap gate before OCR (OCR costs ~0.8 s a frame): text is a row of >= `min_chars` character-sized
    blobs of similar height, evenly spaced on one baseline. Textures and edges rarely line up like that."""
    import cv2

    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    scale = 640.0 / w if w > 640 else 1.0
    if scale != 1.0:
        grey = cv2.resize(grey, (640, round(h * scale)), interpolation=cv2.INTER_AREA)
        h, w = grey.shape
    grad = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    _, bw = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    n, _, stats, _ = cv2.connectedComponentsWithStats(bw, connectivity=8)
    chars = []
    for x, y, cw, ch, area in stats[1:n]:
        if 0.025 * h <= ch <= 0.2 * h and 0.15 * ch <= cw <= 4.0 * ch and 0.1 <= area / float(cw * ch) <= 0.85:
            chars.append((x, y, cw, ch))
    if len(chars) < min_chars:
        return False
    chars.sort(key=lambda c: c[0])
    used = [False] * len(chars)
    for i, (x, y, cw, ch) in enumerate(chars):
        if used[i]:
            continue
        line = [(x, y, cw, ch)]
        for j in range(i + 1, len(chars)):
            x2, y2, _cw2, ch2 = chars[j]
            lx, ly, lw, lh = line[-1]
            same_row = abs((y2 + ch2 / 2) - (ly + lh / 2)) < 0.35 * lh and 0.7 < ch2 / lh < 1.4
            if same_row and -0.3 * lh <= x2 - (lx + lw) < 1.0 * lh:
                line.append(chars[j])
                used[j] = True
        if len(line) >= min_chars and line[-1][0] + line[-1][2] - line[0][0] >= 4 * line[0][3]:
            return True
    return False


def ocr(path: Path, *, langs: str = "chi_sim+eng", timeout: float = 30.0) -> str:
    """On-screen text via the tesseract CLI; empty when tesseract is missing (OCR is optional evidence)."""
    exe = shutil.which("tesseract")
    if not exe:
        return ""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        res = subprocess.run([exe, str(path), "-", "-l", langs, "--psm", "3"], capture_output=True, text=True,
                             timeout=timeout, env=env, **child_kwargs())
    except subprocess.TimeoutExpired:
        return ""
    lines = [" ".join(ln.split()) for ln in res.stdout.splitlines()]
    # keep lines that look like words: tesseract turns textures into punctuation soup
    good = [ln for ln in lines if sum(ch.isalnum() for ch in ln) >= max(2, 0.6 * len(ln.replace(" ", "")))]
    return " ".join(good).strip()[:300]


def visual_facts(keyframes: Sequence[Path], proxy: np.ndarray, start: float, end: float, *,
                 do_ocr: bool = True) -> VisualFacts:
    """Measure one clip from its three keyframes and the motion proxy."""
    imgs = [_read(p) for p in keyframes]
    mid = imgs[len(imgs) // 2]
    # middle frame first; the ends only when it shows nobody (saves two cascade runs on most clips)
    order = [len(imgs) // 2, *[i for i in range(len(imgs)) if i != len(imgs) // 2]]
    best, faces = order[0], detect_faces(imgs[order[0]])
    for i in order[1:]:
        if faces:
            break
        best, faces = i, detect_faces(imgs[i])
    if not faces:
        best = order[0]
    h, w = imgs[best].shape[:2]
    largest = max(faces, key=lambda f: f[2] * f[3]) if faces else None
    ratio = round(largest[3] / h, 3) if largest else 0.0
    centre = (round((largest[0] + largest[2] / 2) / w, 3), round((largest[1] + largest[3] / 2) / h, 3)) if largest \
        else None
    import cv2

    brightness = round(float(cv2.cvtColor(mid, cv2.COLOR_BGR2HSV)[..., 2].mean() / 255.0), 3)
    text = ocr(keyframes[len(keyframes) // 2]) if do_ocr and has_text_regions(mid) else ""
    return VisualFacts(
        faces=len(faces), largest_face_ratio=ratio, shot_size=shot_size(ratio),  # type: ignore[arg-type]
        dominant_colors=dominant_colors(mid), brightness=brightness, motion=motion_score(proxy, start, end),
        ocr_text=text, white_background=is_white_background(mid), subject_center=centre,
    )
