"""Keyframes and measured visual facts, the offline basis of a clip's description.

One ffmpeg decode per source produces every clip's first / middle / last keyframe (JPEG) *and* a tiny grey
4 fps proxy stream used for motion, so analysis never decodes a source twice. Facts come from OpenCV's
bundled Haar cascades (faces → shot size), k-means colours, the HSV border test for white-background stills,
and tesseract OCR (chi_sim+eng) gated by a cheap text-region detector because OCR is the slowest step.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cutpilot.errors import MediaError
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
    """Per clip [first, middle, last] JPEG paths, plus the grey motion proxy (n, 36, 64) uint8 at 4 fps from the
    source's start (what `visual_facts` indexes by clip time). Decoded in bounded batches by index.keyframes."""
    from index.keyframes import batches, extract_batch

    kfs: list[list[Path]] = []
    frames = math.ceil(max((b for _, b in clips), default=0.0) * MOTION_FPS) + 2
    proxy = np.zeros((frames, _MH, _MW), dtype=np.uint8)
    for run in batches(list(clips)):
        got, part, p0 = extract_batch(src, run, out_dir, fps=fps, duration=duration, ffmpeg=ffmpeg)
        kfs += got
        at = round(p0 * MOTION_FPS)
        n = max(0, min(len(part), frames - at))
        proxy[at : at + n] = part[:n]
    return kfs, proxy


def still_keyframe(image: str | Path, out: Path) -> Path:
    """A photo as a keyframe (upright per EXIF, at most THUMB_W wide, JPEG) so stills are measured like clips."""
    import cv2

    img = _read(Path(image))
    h, w = img.shape[:2]
    if w > THUMB_W:
        img = cv2.resize(img, (THUMB_W, round(h * THUMB_W / w)), interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out


def motion_score(proxy: np.ndarray, start: float, end: float) -> float:
    """Mean absolute frame difference (0–1) over the clip on the 4 fps grey proxy: ~0 static, >0.08 busy."""
    a, b = int(start * MOTION_FPS), max(int(start * MOTION_FPS) + 2, int(end * MOTION_FPS))
    seg = proxy[a:b].astype(np.int16)
    if len(seg) < 2:
        return 0.0
    return round(float(np.abs(np.diff(seg, axis=0)).mean() / 255.0), 4)


_LOCAL = threading.local()


def _face_cascade() -> Any:
    """One cascade per thread: OpenCV's CascadeClassifier is not safe to share (`ingest --jobs 2` crashed in it)."""
    c = getattr(_LOCAL, "cascade", None)
    if c is None:
        c = _LOCAL.cascade = _load_cascade()
    return c


def _load_cascade() -> Any:
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


def _whitish_share(img: np.ndarray) -> float:
    """Share of bright, unsaturated pixels: warm-lit white fur or walls pass the skin box, skin is not white."""
    import cv2

    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    return float(((hsv[..., 2] > 170) & (hsv[..., 1] < 40)).mean()) if img.size else 0.0


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
        if _skin_share(core) < 0.35 or _whitish_share(core) >= 0.3:
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
    return text_line_count(img, min_chars=min_chars, stop_at=1) > 0


def text_line_count(img: np.ndarray, *, min_chars: int = 3, stop_at: int = 99) -> int:
    """Rows of character-sized blobs on one baseline (see has_text_regions), counted up to `stop_at`."""
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
        return 0
    chars.sort(key=lambda c: c[0])
    used = [False] * len(chars)
    lines = 0
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
            lines += 1
            if lines >= stop_at:
                break
    return lines


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


Tri = Literal["yes", "no", "unknown"]


def _tri(yes: bool, no: bool) -> Tri:
    return "yes" if yes else "no" if no else "unknown"


@lru_cache(maxsize=1)
def _people_hog() -> Any:
    import cv2

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32))
    return hog


def detect_bodies(img: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """Standing people as (x, y, w, h) frame shares plus the HOG score, from OpenCV's default people detector
    on a 240 px tall copy (people shorter than ~half the frame are not looked for: that is the cost limit)."""
    import cv2

    h0, w0 = img.shape[:2]
    scale = 240.0 / h0
    small = cv2.resize(img, (max(64, round(w0 * scale)), 240), interpolation=cv2.INTER_AREA)
    rects, weights = _people_hog().detectMultiScale(small, winStride=(8, 8), padding=(16, 16), scale=1.05)
    sw, sh = small.shape[1], small.shape[0]
    return [(x / sw, y / sh, w / sw, h / sh, float(wt)) for (x, y, w, h), wt in zip(rects, np.ravel(weights),
                                                                                   strict=False)]


def flat_share(grey: np.ndarray) -> float:
    """Share of pixels with no local change at all (|Laplacian| < 1). Camera footage carries sensor noise and
    texture (< 0.25 on filmed scenes); motion graphics and screens are mostly exact flat fills (> 0.85)."""
    import cv2

    return float((np.abs(cv2.Laplacian(grey, cv2.CV_16S, ksize=1)) < 1).mean())


def long_lines(grey: np.ndarray) -> tuple[int, int]:
    """Horizontal and vertical straight edges running >= 30% across the frame (window and panel borders)."""
    import cv2

    h, w = grey.shape
    gx = np.abs(cv2.Sobel(grey, cv2.CV_16S, 1, 0, ksize=3)) > 60
    gy = np.abs(cv2.Sobel(grey, cv2.CV_16S, 0, 1, ksize=3)) > 60
    horiz = cv2.morphologyEx(gy.astype(np.uint8), cv2.MORPH_OPEN, np.ones((1, int(w * 0.3)), np.uint8))
    vert = cv2.morphologyEx(gx.astype(np.uint8), cv2.MORPH_OPEN, np.ones((int(h * 0.3), 1), np.uint8))

    def runs(mask: np.ndarray) -> int:
        hit = mask.any(axis=1).astype(np.int8)
        return int((np.diff(np.concatenate([[0], hit])) == 1).sum())

    return runs(horiz), runs(vert.T)


def skin_mask(img: np.ndarray) -> np.ndarray:
    """Skin pixels: the YCrCb box, reddish enough (Cr >= 138) and not grey, dark or blown out."""
    import cv2

    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    cr, cb = ycc[..., 1], ycc[..., 2]
    return ((cr >= 138) & (cr <= 180) & (cb >= 77) & (cb <= 135) & (hsv[..., 1] >= 40)
            & (hsv[..., 2] >= 50) & (hsv[..., 2] <= 250))


def _border(a: np.ndarray, f: float = 0.12) -> np.ndarray:
    h, w = a.shape[:2]
    bh, bw = max(1, int(h * f)), max(1, int(w * f))
    return np.concatenate([a[:bh].ravel(), a[-bh:].ravel(), a[bh:-bh, :bw].ravel(), a[bh:-bh, -bw:].ravel()])


def plain_border(tiny: np.ndarray) -> tuple[float, float]:
    """(share of smooth border pixels, edge density of the centre) on a 160x90 copy: a seamless backdrop is
    smooth all round while the subject in the middle is detailed (a bare wall with one post is not a packshot)."""
    import cv2

    grey = cv2.GaussianBlur(cv2.cvtColor(tiny, cv2.COLOR_BGR2GRAY), (3, 3), 0).astype(np.float32)
    mag = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    h, w = mag.shape
    centre = mag[h // 4: h * 3 // 4, w // 4: w * 3 // 4]
    return float((_border(mag) < 24).mean()), float((centre >= 24).mean())


def sky_measures(tiny: np.ndarray) -> tuple[float, float]:
    """(blue-sky share of the top third, mean brightness of those pixels): smooth blue pixels at the top."""
    import cv2

    hsv = cv2.cvtColor(tiny, cv2.COLOR_BGR2HSV)
    top = hsv[: tiny.shape[0] // 3]
    grey = cv2.cvtColor(tiny, cv2.COLOR_BGR2GRAY)[: tiny.shape[0] // 3].astype(np.float32)
    mag = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    sky = (top[..., 0] >= 95) & (top[..., 0] <= 130) & (top[..., 1] >= 40) & (top[..., 2] >= 40) & (mag < 40)
    share = float(sky.mean())
    return share, float(top[..., 2][sky].mean() / 255.0) if sky.any() else 0.0


def underwater_cast(tiny: np.ndarray) -> tuple[float, float, float]:
    """(share of blue-green pixels, red/green ratio, share of warm or blown-out pixels): water absorbs red,
    so an underwater frame is blue-green almost everywhere with no warm or white light sources."""
    import cv2

    hsv = cv2.cvtColor(tiny, cv2.COLOR_BGR2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    cast = float(((hue >= 80) & (hue <= 115) & (sat >= 64)).mean())
    _b, g, r = (float(x) for x in tiny.reshape(-1, 3).mean(axis=0))
    warm = float(((((hue < 25) | (hue > 160)) & (sat >= 80)) | (val > 235)).mean())
    return cast, r / max(g, 1.0), warm


def picture_attributes(imgs: Sequence[np.ndarray], faces: Sequence[tuple[int, int, int, int]], face_ratio: float,
                       ocr_text: str, white_bg: bool, motion: float, lines: int) -> dict[str, Any]:
    """The searchable picture attributes (person, framing, hands, plain backdrop, text, screen, setting, night,
    underwater, animation) from cheap measures on the middle keyframe; "unknown" where they do not decide."""
    import cv2

    mid = imgs[len(imgs) // 2]
    h, w = mid.shape[:2]
    grey = cv2.cvtColor(mid, cv2.COLOR_BGR2GRAY)
    tiny = cv2.resize(mid, (160, 90), interpolation=cv2.INTER_AREA)
    flat = flat_share(grey)
    hl, vl = long_lines(cv2.resize(grey, (320, 180), interpolation=cv2.INTER_AREA))
    out: dict[str, Any] = {}

    # screen and animation first: they decide what the other measures may say
    screen_yes = lines >= 1 and flat >= 0.4 and hl >= 1 and vl >= 1 and motion < 0.05 and not faces
    out["screen"] = _tri(screen_yes, lines == 0 or flat < 0.25)
    synthetic = flat >= 0.85 and not white_bg and not faces
    out["animation"] = _tri(synthetic and not screen_yes, flat < 0.25 or screen_yes)
    graphic = synthetic or screen_yes

    # people: frontal faces on any keyframe; else a confident standing body on the middle one
    bodies = [] if face_ratio >= 0.1 or graphic else detect_bodies(mid)
    strong = [b for b in bodies if b[4] >= 0.8 and b[3] >= 0.45 and b[1] > 0.01]
    if faces:
        out["person"] = "yes"
    elif screen_yes:
        out["person"] = "unknown"  # screen captures often carry a small webcam inset the cascade misses
    elif synthetic:
        out["person"] = "no"
    else:  # three keyframes of a fast-changing clip may all miss someone passing: then no "no"
        out["person"] = _tri(bool(strong), not any(b[4] >= 0.3 for b in bodies) and motion < 0.06)
    if strong:  # bodies are looked for only without a medium or close face
        out["shot_size"] = "full_body"

    # hands: skin entering from the frame edge with nobody in the clip; skin beside a face (its neck, a hand on
    # the cheek) does not count against "no"
    skin = skin_mask(tiny)
    sx, sy = 160.0 / w, 90.0 / h
    for x, y, fw, fh in faces:
        skin[max(0, int((y - 0.3 * fh) * sy)): int((y + 2.0 * fh) * sy),
             max(0, int((x - 0.4 * fw) * sx)): int((x + 1.4 * fw) * sx)] = False
    share = float(skin.mean())
    edge = bool(skin[-3:].any() or skin[:, :3].any() or skin[:, -3:].any())
    nobody = out["person"] == "no"  # not even a weak body: a hands-only close-up, not a busy street
    hands_yes = nobody and not graphic and motion < 0.06 and 0.03 <= share <= 0.35 and edge
    out["hands"] = _tri(hands_yes, share < 0.01 or graphic)

    sky, sky_v = sky_measures(tiny)
    smooth_border, busy_centre = plain_border(tiny)
    plain = (white_bg or (smooth_border >= 0.7 and busy_centre >= 0.25 and sky < 0.2)) and not graphic \
        and not faces and lines == 0
    out["plain_background"] = _tri(plain, smooth_border < 0.5 or bool(faces) or graphic or sky >= 0.2)

    out["text"] = _tri(bool(ocr_text) or lines >= 2, lines == 0)

    b, _g, r = (float(x) for x in tiny.reshape(-1, 3).mean(axis=0))
    warm_light = r / max(b, 1.0) >= 1.8
    if graphic:
        out["setting"] = "unknown"
    elif sky >= 0.2:
        out["setting"] = "outdoor"
    elif warm_light and sky < 0.05:
        out["setting"] = "indoor"
    else:
        out["setting"] = "unknown"
    outdoor = out["setting"] == "outdoor"
    bright = float(cv2.cvtColor(tiny, cv2.COLOR_BGR2HSV)[..., 2].mean() / 255.0)
    out["night"] = _tri(outdoor and sky_v < 0.45,
                        graphic or out["setting"] == "indoor" or (outdoor and sky_v >= 0.5) or bright >= 0.55)
    cast, red_green, warm = underwater_cast(tiny)
    # a straight horizon means sea and sky seen from above the water
    out["underwater"] = _tri(not graphic and cast >= 0.7 and red_green < 0.6 and warm < 0.02 and hl == 0,
                             graphic or cast < 0.4 or warm >= 0.05)
    return out


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
    lines = text_line_count(mid, stop_at=4)
    text = ocr(keyframes[len(keyframes) // 2]) if do_ocr and lines else ""
    motion, white = motion_score(proxy, start, end), is_white_background(mid)
    attrs = {"shot_size": shot_size(ratio), **picture_attributes(imgs, faces, ratio, text, white, motion, lines)}
    return VisualFacts(
        faces=len(faces), largest_face_ratio=ratio, dominant_colors=dominant_colors(mid), brightness=brightness,
        motion=motion, ocr_text=text, white_background=white, subject_center=centre, **attrs,
    )
