"""Still image → short video clip: offline Ken Burns, or an HTTP image-to-video provider.

WHY our own Ken Burns instead of ffmpeg `zoompan`: zoompan ignores EXIF orientation, rounds its crop window to
whole pixels (smooth only on a pre-upscaled input) and cannot fit-with-blur; a sub-pixel affine warp per frame
(OpenCV) piped raw into one x264 encode does all three in one place, exact in frame count, at the same wall time
as the upscaled-zoompan recipe (benchmarks/media_tools.py). EXIF orientation is applied first (phone photos are
often stored rotated), then the image is fitted to the output shape (crop-to-fill, or over a blurred copy).
Provider output is conformed to the asked size / fps / length so the renderer can trust it like any asset.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from cutpilot.errors import InputError, MediaError, ProviderError, RenderError
from cutpilot.media import IMAGE_EXTS, probe, run_ffmpeg, which
from cutpilot.procs import child_kwargs
from cutpilot.settings import Settings
from cutpilot.timeline import KenBurns
from tools.assets import AssetResult, asset_key, asset_path, cached, default_asset_dir, save_sidecar
from tools.providers import ProviderClient, write_bytes

Fit = Literal["crop", "blur"]


def load_image_rgb(image: Path, max_side: int | None = None) -> np.ndarray:
    """RGB uint8 array with EXIF orientation applied; unreadable → MediaError."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(image)
    if not path.is_file():
        raise InputError(f"image {path} not found")
    try:
        with Image.open(path) as im:
            im.draft("RGB", (max_side, max_side) if max_side else None)  # fast JPEG downscale-on-decode
            im = ImageOps.exif_transpose(im).convert("RGB")
            if max_side and max(im.size) > max_side:
                im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return np.asarray(im).copy()
    except (UnidentifiedImageError, OSError) as e:
        raise MediaError(f"{path}: not a readable image ({e})") from e


def fit_canvas(rgb: np.ndarray, size: tuple[int, int], fit: Fit, scale: float) -> np.ndarray:
    """The image at the output's aspect and `scale`× the output size (headroom for zooming in)."""
    import cv2

    w, h = size
    cw, ch = max(2, round(w * scale)), max(2, round(h * scale))
    ih, iw = rgb.shape[:2]
    if fit == "crop":
        s = max(cw / iw, ch / ih)
        resized = cv2.resize(rgb, (max(cw, round(iw * s)), max(ch, round(ih * s))), interpolation=cv2.INTER_AREA
                             if s < 1 else cv2.INTER_CUBIC)
        y0 = (resized.shape[0] - ch) // 2
        x0 = (resized.shape[1] - cw) // 2
        return np.ascontiguousarray(resized[y0:y0 + ch, x0:x0 + cw])
    cover = fit_canvas(rgb, (cw, ch), "crop", 1.0)
    small = cv2.resize(cover, (max(2, cw // 8), max(2, ch // 8)), interpolation=cv2.INTER_AREA)
    bg = cv2.resize(cv2.GaussianBlur(small, (0, 0), 6), (cw, ch), interpolation=cv2.INTER_LINEAR)
    bg = (bg.astype(np.float32) * 0.7).astype(np.uint8)
    s = min(cw / iw, ch / ih)
    fw, fh = max(2, round(iw * s)), max(2, round(ih * s))
    fg = cv2.resize(rgb, (fw, fh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    x0, y0 = (cw - fw) // 2, (ch - fh) // 2
    bg[y0:y0 + fh, x0:x0 + fw] = fg
    return bg


def _ease(x: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * min(1.0, max(0.0, x)))


def ken_burns_frames(canvas: np.ndarray, size: tuple[int, int], n_frames: int, motion: KenBurns):
    """Yield `n_frames` BGR frames: zoom and centre eased from `motion`'s start to end values, sub-pixel."""
    import cv2

    w, h = size
    ch, cw = canvas.shape[:2]
    bgr = cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)
    for i in range(n_frames):
        a = _ease(i / max(1, n_frames - 1))
        z = motion.zoom_from + (motion.zoom_to - motion.zoom_from) * a
        cx = motion.center_from[0] + (motion.center_to[0] - motion.center_from[0]) * a
        cy = motion.center_from[1] + (motion.center_to[1] - motion.center_from[1]) * a
        vw, vh = cw / z, ch / z  # visible window in canvas pixels, kept inside the canvas
        x0 = min(max(cx * cw - vw / 2, 0.0), cw - vw)
        y0 = min(max(cy * ch - vh / 2, 0.0), ch - vh)
        sx, sy = w / vw, h / vh
        m = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]], dtype=np.float64)
        yield cv2.warpAffine(bgr, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _window(motion: KenBurns, a: float, canvas: tuple[int, int], size: tuple[int, int], clamp: bool) -> np.ndarray:
    """The affine map from the canvas onto the output frame at eased time `a` of `motion`."""
    cw, ch = canvas
    w, h = size
    z = motion.zoom_from + (motion.zoom_to - motion.zoom_from) * a
    cx = motion.center_from[0] + (motion.center_to[0] - motion.center_from[0]) * a
    cy = motion.center_from[1] + (motion.center_to[1] - motion.center_from[1]) * a
    vw, vh = cw / z, ch / z
    x0, y0 = cx * cw - vw / 2, cy * ch - vh / 2
    if clamp:
        x0, y0 = min(max(x0, 0.0), cw - vw), min(max(y0, 0.0), ch - vh)
    sx, sy = w / vw, h / vh
    return np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]], dtype=np.float64)


def scaled(motion: KenBurns, k: float) -> KenBurns:
    """The same move `k` times as strong (a far layer moves less than a near one)."""
    def c(p: tuple[float, float]) -> tuple[float, float]:
        return 0.5 + (p[0] - 0.5) * k, 0.5 + (p[1] - 0.5) * k

    return KenBurns(zoom_from=1 + (motion.zoom_from - 1) * k, zoom_to=1 + (motion.zoom_to - 1) * k,
                    center_from=c(motion.center_from), center_to=c(motion.center_to))


def parallax_frames(scene: np.ndarray, layer: np.ndarray, size: tuple[int, int], n_frames: int,
                    motion: KenBurns, depth: float):
    """BGR frames: the product layer (RGBA at output size) takes `motion`, the scene canvas behind it only
    `depth` of it — near and far move apart, as under a real camera move."""
    import cv2

    w, h = size
    far = scaled(motion, depth)
    bg = cv2.cvtColor(scene, cv2.COLOR_RGB2BGR)
    fg = cv2.cvtColor(np.ascontiguousarray(layer[:, :, :3]), cv2.COLOR_RGB2BGR)
    alpha = np.ascontiguousarray(layer[:, :, 3])
    for i in range(n_frames):
        a = _ease(i / max(1, n_frames - 1))
        mb = _window(far, a, (bg.shape[1], bg.shape[0]), size, clamp=True)
        mf = _window(motion, a, (w, h), size, clamp=False)
        back = cv2.warpAffine(bg, mb, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        front = cv2.warpAffine(fg, mf, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        k = cv2.warpAffine(alpha, mf, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        k3 = (k.astype(np.float32) / 255.0)[:, :, None]
        yield (back * (1 - k3) + front * k3).astype(np.uint8)


def _even(size: tuple[int, int]) -> tuple[int, int]:
    w, h = int(size[0]), int(size[1])
    if w < 16 or h < 16 or w > 4096 or h > 4096:
        raise InputError(f"image_to_video: size {w}x{h} out of range (16–4096)")
    return w // 2 * 2, h // 2 * 2


def image_to_video(image: Path, seconds: float, *, motion: KenBurns | None = None,
                   size: tuple[int, int] = (1080, 1920), fps: int = 30, settings: Settings,
                   out_dir: Path | None = None, fit: Fit = "crop", prompt: str = "",
                   provider: Literal["auto", "offline", "http"] = "auto",
                   fallback_offline: bool = False) -> AssetResult:
    """An H.264 mp4 of exactly round(seconds*fps) frames at `size`. `auto` uses the HTTP provider when
    `CUTPILOT_IMAGE_TO_VIDEO_URL` is set; its failure is a ProviderError unless `fallback_offline` (then noted)."""
    image = Path(image)
    if image.suffix.lower() not in IMAGE_EXTS:
        raise InputError(f"image_to_video: {image.name} is not an image ({', '.join(sorted(IMAGE_EXTS))})")
    if not 0.2 <= seconds <= 60:
        raise InputError(f"image_to_video: {seconds}s out of range (0.2–60 s)")
    size = _even(size)
    out = out_dir or default_asset_dir(settings)
    motion = motion or KenBurns()
    use_http = provider == "http" or (provider == "auto" and bool(settings.image_to_video_url))
    notes: list[str] = []
    if use_http:
        try:
            return _via_provider(image, seconds, size, fps, prompt, settings, out)
        except ProviderError as e:
            if not fallback_offline:
                raise
            notes.append(f"image-to-video provider failed, used offline Ken Burns: {e.one_line()}")
    return ken_burns(image, seconds, motion=motion, size=size, fps=fps, settings=settings, out_dir=out, fit=fit,
                     notes=notes)


def _encode(frames: Iterable[np.ndarray], path: Path, *, size: tuple[int, int], fps: int, n_frames: int,
            preset: str, crf: int, ffmpeg: str, what: str) -> None:
    """Pipe BGR frames into one x264 encode with an exact frame count; written to a part file, then renamed."""
    w, h = size
    tmp = path.with_name(path.stem + ".part.mp4")
    cmd = [which(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
           "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", "-frames:v", str(n_frames), str(tmp)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, **child_kwargs())
    assert proc.stdin is not None
    try:
        for frame in frames:
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.wait() != 0:
        tmp.unlink(missing_ok=True)
        raise RenderError(what, stderr_tail=err)
    tmp.replace(path)


def ken_burns(image: Path, seconds: float, *, motion: KenBurns, size: tuple[int, int], fps: int,
              settings: Settings, out_dir: Path, fit: Fit = "crop", notes: list[str] | None = None,
              crf: int = 20, preset: str = "veryfast") -> AssetResult:
    """`preset`: x264 speed; a shot the renderer re-encodes anyway may take `ultrafast` (about half the time)."""
    params: dict[str, object] = {"seconds": round(seconds, 3), "motion": motion.model_dump(mode="json"),
                                 "size": list(size), "fps": fps, "fit": fit, "crf": crf, "v": 1}
    if preset != "veryfast":
        params["preset"] = preset
    key = asset_key("image_to_video", (image,), params)
    hit = cached(out_dir, "image_to_video", key, ".mp4")
    if hit is not None:
        return hit.model_copy(update={"notes": [*(notes or []), *hit.notes]})
    n_frames = max(1, round(seconds * fps))
    zmax = max(motion.zoom_from, motion.zoom_to)
    scale = min(zmax, 2.0)  # canvas headroom so zoomed frames keep detail (capped for memory)
    rgb = load_image_rgb(image, max_side=round(max(size) * scale * 1.5))
    canvas = fit_canvas(rgb, size, fit, scale)
    path = asset_path(out_dir, "image_to_video", key, ".mp4")
    _encode(ken_burns_frames(canvas, size, n_frames, motion), path, size=size, fps=fps, n_frames=n_frames,
            preset=preset, crf=crf, ffmpeg=settings.ffmpeg, what=f"Ken Burns encode of {image.name} failed")
    res = AssetResult(path=path, kind="image_video", tool="image_to_video", provider="offline:ken_burns",
                      params={**params, "image": str(image)}, key=key, notes=list(notes or []))
    return save_sidecar(res)


def parallax(cutout: Path, scene: Path, seconds: float, *, motion: KenBurns, size: tuple[int, int], fps: int,
             settings: Settings, out_dir: Path, depth: float = 0.4, scale: float = 0.62, crf: int = 20,
             preset: str = "ultrafast") -> AssetResult:
    """Two-layer motion from a cut-out and its scene: the product (with its contact shadow) moves with `motion`,
    the scene behind it by only `depth` of it. Offline, exact frame count, one x264 encode like `ken_burns`."""
    from PIL import Image

    from tools.background import composite

    size = _even(size)
    if not 0.2 <= seconds <= 60:
        raise InputError(f"parallax: {seconds}s out of range (0.2–60 s)")
    params: dict[str, object] = {"seconds": round(seconds, 3), "motion": motion.model_dump(mode="json"),
                                 "size": list(size), "fps": fps, "depth": depth, "scale": scale, "crf": crf,
                                 "preset": preset, "v": 1}
    key = asset_key("parallax", (cutout, scene), params)
    hit = cached(out_dir, "image_to_video", key, ".mp4")
    if hit is not None:
        return hit
    w, h = size
    far = scaled(motion, depth)
    canvas = fit_canvas(load_image_rgb(scene), size, "crop", min(2.0, max(far.zoom_from, far.zoom_to)))
    with Image.open(cutout) as im:
        rgba = np.asarray(im.convert("RGBA"))
    # the product and its shadow as one RGBA layer: composited over black and over white, alpha is the difference
    black = composite(rgba, np.zeros((h, w, 3), np.uint8), scale=scale).astype(np.float32)
    white = composite(rgba, np.full((h, w, 3), 255, np.uint8), scale=scale).astype(np.float32)
    alpha = np.clip(1.0 - (white - black).mean(axis=2) / 255.0, 0.0, 1.0)
    colour = np.clip(black / np.maximum(alpha, 1e-3)[:, :, None], 0, 255)
    layer = np.dstack([colour, alpha * 255]).astype(np.uint8)
    n_frames = max(1, round(seconds * fps))
    path = asset_path(out_dir, "image_to_video", key, ".mp4")
    _encode(parallax_frames(canvas, layer, size, n_frames, motion, depth), path, size=size, fps=fps,
            n_frames=n_frames, preset=preset, crf=crf, ffmpeg=settings.ffmpeg,
            what=f"parallax encode of {cutout.name} failed")
    res = AssetResult(path=path, kind="image_video", tool="parallax", provider="offline:parallax",
                      params={**params, "cutout": str(cutout), "scene": str(scene)}, key=key)
    return save_sidecar(res)


def _via_provider(image: Path, seconds: float, size: tuple[int, int], fps: int, prompt: str,
                  settings: Settings, out_dir: Path) -> AssetResult:
    """POST {url}/jobs (multipart image + prompt/seconds/size) → poll → download mp4 → conform to the ask."""
    url = settings.image_to_video_url
    params = {"seconds": round(seconds, 3), "size": list(size), "fps": fps, "prompt": prompt, "url": url or ""}
    key = asset_key("image_to_video_http", (image,), params)
    hit = cached(out_dir, "image_to_video", key, ".mp4")
    if hit is not None:
        return hit
    client = ProviderClient.from_settings(settings, url, name="image-to-video provider",
                                          setting="image_to_video_url")
    with client:
        data = client.run_job(
            "/jobs",
            files={"image": (image.name, image.read_bytes(), "application/octet-stream")},
            data={"prompt": prompt, "seconds": f"{seconds:g}", "width": str(size[0]), "height": str(size[1]),
                  "fps": str(fps)},
        )
    path = asset_path(out_dir, "image_to_video", key, ".mp4")
    raw = write_bytes(data, path.with_name(path.stem + ".provider.mp4"))
    try:
        pr = probe(raw, settings.ffprobe)
        if not pr.has_video or pr.duration <= 0:
            raise MediaError("no video stream")
    except MediaError as e:
        raw.unlink(missing_ok=True)
        raise ProviderError(f"image-to-video provider returned an unusable video ({len(data)} bytes): {e}") from e
    n = max(1, round(seconds * fps))
    w, h = size
    notes = []
    if abs(pr.duration - seconds) > 1 / fps:
        notes.append(f"provider clip was {pr.duration:.2f}s; conformed to {seconds:g}s (last frame held)")
    vf = (f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1,fps={fps},"
          f"tpad=stop_mode=clone:stop_duration={max(0.0, seconds - pr.duration) + 1:.3f}")
    tmp = path.with_name(path.stem + ".part.mp4")
    run_ffmpeg(["-i", str(raw), "-an", "-vf", vf, "-frames:v", str(n), "-c:v", "libx264", "-preset", "veryfast",
                "-crf", "20", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp)],
               what="conforming provider video", ffmpeg=settings.ffmpeg)
    tmp.replace(path)
    raw.unlink(missing_ok=True)
    res = AssetResult(path=path, kind="image_video", tool="image_to_video", provider=f"http:{url}",
                      params={**params, "image": str(image), "provider_duration_s": round(pr.duration, 3),
                              "provider_size": [pr.width, pr.height]}, key=key, notes=notes)
    return save_sidecar(res)
