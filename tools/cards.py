"""Title / CTA cards: PIL-drawn stills in the brand's font and colours (CJK-safe, wrapped, centred)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from cutpilot import atomic
from cutpilot.timeline import BrandKit
from tools.captions import _hex, wrap_text
from tools.fonts import load_font


def title_card(text: str, brand: BrandKit, *, size: tuple[int, int], subtitle: str = "",
               style: Literal["title", "cta"] | str = "title", out_dir: Path, background: str | None = None) -> Path:
    """Draw a card PNG (content-addressed under out_dir) and return its path.

    title: secondary-colour field, text in brand text colour; cta: primary-colour field with a pill button look.
    """
    from PIL import Image, ImageDraw, ImageFilter, ImageOps

    W, H = size
    key = hashlib.sha256(
        f"{text}|{subtitle}|{style}|{W}x{H}|{brand.model_dump_json()}|{background}".encode()
    ).hexdigest()[:16]
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"card-{key}.png"
    if out.exists():
        return out
    bg_color = brand.primary if style == "cta" else brand.secondary
    img = Image.new("RGB", (W, H), _hex(bg_color)[:3])
    if background and Path(background).is_file():
        src = ImageOps.exif_transpose(Image.open(background)).convert("RGB")
        src = ImageOps.fit(src, (W, H)).filter(ImageFilter.GaussianBlur(max(2, W // 80)))
        img = Image.blend(src, img, 0.55)
    d = ImageDraw.Draw(img)
    base = min(W, H)
    margin = round(W * 0.1)
    max_w = W - 2 * margin
    px = max(14, round(base * (0.11 if style == "title" else 0.095)))
    font = load_font(px, brand.font, brand.font_index, bold=True)
    lines = wrap_text(text, font, max_w)
    while len(lines) > 4 and px > 14:  # shrink until it fits in four lines
        px = round(px * 0.85)
        font = load_font(px, brand.font, brand.font_index, bold=True)
        lines = wrap_text(text, font, max_w)
    sub_font = load_font(max(10, round(px * 0.45)), brand.font, brand.font_index)
    sub_lines = wrap_text(subtitle, sub_font, max_w) if subtitle else []
    asc, desc = font.getmetrics()
    lh = round((asc + desc) * 1.1)
    sasc, sdesc = sub_font.getmetrics()
    slh = round((sasc + sdesc) * 1.15)
    total = lh * len(lines) + (round(px * 0.6) + slh * len(sub_lines) if sub_lines else 0)
    y = (H - total) // 2
    fg = _hex(brand.text)
    if style == "cta":
        bw = max(int(font.getlength(ln)) for ln in lines) + px
        d.rounded_rectangle(((W - bw) // 2, y - px // 3, (W + bw) // 2, y + lh * len(lines) + px // 5),
                            radius=px // 2, outline=fg, width=max(2, px // 16))
    for ln in lines:
        d.text(((W - font.getlength(ln)) / 2, y), ln, font=font, fill=fg)
        y += lh
    if sub_lines:
        y += round(px * 0.6)
        for ln in sub_lines:
            d.text(((W - sub_font.getlength(ln)) / 2, y), ln, font=sub_font, fill=fg)
            y += slh
    if brand.name and style == "cta":
        nf = load_font(max(10, round(px * 0.35)), brand.font, brand.font_index)
        d.text(((W - nf.getlength(brand.name)) / 2, H - round(H * 0.22)), brand.name, font=nf, fill=fg)
    with atomic.replacing(out) as tmp:  # a cache entry: a killed save must not leave a truncated PNG to reuse
        img.save(tmp)
    return out
