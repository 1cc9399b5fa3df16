"""Photos as library items: a product packshot, a model photo or a scene photo becomes a still clip record.

Long-tail products often have no video at all (domain notes §1), so a photo is ingested with the same record as
a clip (product, content type, format, description, tags) and found by the same search; the planner makes it move
(Ken Burns, or the gap-fill production line). Pixels are read through PIL with the EXIF orientation applied, since
phone photos are stored sideways and ffmpeg's image decoder ignores that tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cutpilot.errors import MediaError

STILL_EXTS = {".jpg", ".jpeg", ".png", ".webp"}
STILL_SECONDS = 3.0  # the record's nominal length; a still is shown as long as its slot needs
THUMB_W = 640
_SIGNATURES = {"PNG image", "JPEG image", "WebP image"}


def is_still(path: Path) -> bool:
    return path.suffix.lower() in STILL_EXTS


def still_kind(kind: str | None) -> bool:
    """True when a file's signature (cutpilot.media.not_video) says it is a photo format we ingest."""
    return kind in _SIGNATURES


def prepare_still(src: Path, out_dir: Path) -> tuple[Path, int, int]:
    """The upright keyframe JPEG (≤ THUMB_W wide) of a photo and the photo's upright size."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "still.jpg"
    try:
        with Image.open(src) as im:
            im.load()
            up = ImageOps.exif_transpose(im)
            w, h = up.size
            if w < 16 or h < 16:
                raise MediaError(f"{src.name}: image too small ({w}x{h}; at least 16 px a side)")
            rgb = up.convert("RGBA") if up.mode in ("P", "LA") else up
            if rgb.mode == "RGBA":  # transparent cut-outs go on white, as a packshot would be
                flat = Image.new("RGB", rgb.size, (255, 255, 255))
                flat.paste(rgb, mask=rgb.split()[-1])
                rgb = flat
            else:
                rgb = rgb.convert("RGB")
            if rgb.width > THUMB_W:
                rgb = rgb.resize((THUMB_W, max(2, round(rgb.height * THUMB_W / rgb.width))))
            tmp = out.with_name(".tmp-still.jpg")
            rgb.save(tmp, "JPEG", quality=88)
            tmp.replace(out)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise MediaError(f"{src.name}: not a readable image ({e})") from e
    return out, w, h


def still_garment(src: Path, human: dict[str, Any], description: str, tags: list[str]
                  ) -> tuple[dict[str, str], str | None]:
    """A photo's garment attributes and where they came from: annotated ones win; otherwise they are inferred
    from the file name, description and tags (a merchant's 'long-wool-coat-white.jpg' says what it is)."""
    given = human.get("garment")
    if given:
        return dict(given), "annotated"
    from tools.garments import infer_garment

    words = " ".join([src.stem.replace("-", " ").replace("_", " "), description, *tags])
    found = infer_garment(words)
    return found, ("inferred" if found else None)
