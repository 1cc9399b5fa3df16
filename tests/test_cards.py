"""Cards, fonts and caption layout: the Simplified Chinese face, wrapping, safe zone, word highlight."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cutpilot.timeline import BrandKit, Caption, CaptionWord, CardItem, OutputSpec, Timeline
from tools.captions import draw_caption, layout_captions, safe_box, wrap_text
from tools.cards import title_card
from tools.fonts import cjk_font, load_font


def _glyph(font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
    im = Image.new("L", (200, 120), 0)
    ImageDraw.Draw(im).text((10, 10), text, font=font, fill=255)
    return np.asarray(im)


def test_cjk_font_is_simplified_chinese_face() -> None:
    path, idx = cjk_font()
    font = ImageFont.truetype(str(path), 64, index=idx)
    assert font.getname()[0] == "Noto Sans CJK SC"
    # 直 and 骨 have different glyph forms in Japanese and Chinese: the face matters
    jp = ImageFont.truetype(str(path), 64, index=0)
    assert jp.getname()[0] == "Noto Sans CJK JP"
    assert not np.array_equal(_glyph(font, "直骨"), _glyph(jp, "直骨"))
    assert np.array_equal(_glyph(load_font(64), "直骨"), _glyph(font, "直骨"))


def test_brand_font_override(tmp_path: Path) -> None:
    path, _ = cjk_font()
    p2, idx = cjk_font(path)  # a .ttc override still resolves to its SC face
    assert p2 == path and ImageFont.truetype(str(p2), 20, index=idx).getname()[0] == "Noto Sans CJK SC"


def test_wrap_mixed_text_stays_inside_width() -> None:
    font = load_font(40)
    text = "新品上市，限时优惠，买一送一！Limited-time offer: buy one get one free today only"
    lines = wrap_text(text, font, 300)
    assert len(lines) >= 4
    assert all(font.getlength(ln) <= 300 for ln in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert any("offer:" in ln.split() for ln in lines)  # latin words are not broken


def test_title_card_draws_brand_colours_and_text(tmp_path: Path) -> None:
    brand = BrandKit(name="Acme", primary="#0044FF", secondary="#112233", text="#FFFFFF")
    p = title_card("新品上市 New arrivals", brand, size=(270, 480), subtitle="限时 limited", out_dir=tmp_path)
    im = np.asarray(Image.open(p).convert("RGB"))
    assert im.shape == (480, 270, 3)
    assert tuple(im[5, 5]) == (0x11, 0x22, 0x33)  # title card = secondary colour field
    white = (im > 200).all(axis=2)
    assert white.sum() > 500  # text drawn
    ys = np.where(white.any(axis=1))[0]
    assert 100 < ys.mean() < 380  # roughly centred vertically
    cta = title_card("Buy now", brand, size=(270, 480), style="cta", out_dir=tmp_path)
    assert tuple(np.asarray(Image.open(cta).convert("RGB"))[5, 5]) == (0x00, 0x44, 0xFF)
    assert title_card("新品上市 New arrivals", brand, size=(270, 480), subtitle="限时 limited", out_dir=tmp_path) == p


def test_captions_stack_inside_safe_zone_with_highlight(tmp_path: Path) -> None:
    spec = OutputSpec.preset("9:16", scale=0.5)
    tl = Timeline(
        output=spec,
        video=[CardItem(id="a", text="x", start_ms=0, duration_ms=3000)],
        captions=[
            Caption(text="新品上市，限时优惠，买一送一，今天下单明天到货", start_ms=0, end_ms=2000, lang="zh"),
            Caption(text="New arrivals now", start_ms=0, end_ms=2000, lang="en",
                    words=[CaptionWord(text="New", start_ms=0, end_ms=500),
                           CaptionWord(text="arrivals", start_ms=500, end_ms=1200)]),
        ],
        caption_highlight=True,
    )
    caps = layout_captions(tl, tmp_path)
    box = safe_box("9:16", spec.width, spec.height)
    assert box.y1 == round(spec.height * 0.8) and box.x1 == round(spec.width * 0.88)
    for c in caps:
        assert box.x0 <= c.x and c.x + c.w <= box.x1 and box.y0 <= c.y and c.y + c.h <= box.y1
    zh = [c for c in caps if c.end_ms == 2000 and c.start_ms == 0 and c.h > 100]
    assert zh, "long zh caption should wrap to more than one line"
    en = [c for c in caps if c.y != zh[0].y]
    assert en and all(c.y + c.h <= zh[0].y for c in en)  # stacked above, not overlapping
    spans = sorted((c.start_ms, c.end_ms) for c in en)
    assert spans == [(0, 500), (500, 1200), (1200, 2000)]  # highlight variants cover the caption without gaps


def test_word_highlight_colours_only_the_word() -> None:
    font = load_font(40)
    plain = np.asarray(draw_caption("Buy now", font=font, max_w=400, color="#FFFFFF", highlight="#FF0000", stroke=2))
    hl = np.asarray(draw_caption("Buy now", font=font, max_w=400, color="#FFFFFF", highlight="#FF0000", stroke=2,
                                 hl_range=(4, 7)))
    red = (hl[..., 0] > 200) & (hl[..., 1] < 80) & (hl[..., 3] > 200)
    assert red.sum() > 50 and not ((plain[..., 0] > 200) & (plain[..., 1] < 80)).any()
    xs = np.where(red.any(axis=0))[0]
    assert xs.min() > hl.shape[1] * 0.4  # "now" is the right part
