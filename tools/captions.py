"""Caption layout: wrap zh+en text to the frame, keep it inside the platform safe zone, draw PNG overlays.

Captions are drawn by PIL (Noto CJK SC face) into tight transparent PNGs that ffmpeg overlays at a fixed position
for the caption's time span. PNG overlays rather than libass/drawtext because PIL selects the right .ttc face,
measures exactly what it draws (so wrapping is honest for mixed CJK/Latin), and word highlight is one more PNG.
The visible AIGC label (layout_aigc) is drawn the same way and overlaid on top of everything else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutpilot import atomic
from cutpilot.timeline import BrandKit, Caption, Timeline

# Fractions of the frame covered by platform UI (left, top, right, bottom). 9:16 follows TikTok/Douyin/Reels:
# bottom ~20% (caption, music, buttons), right ~12% (like/comment/share column), top ~10% (tabs).
SAFE_ZONES: dict[str, tuple[float, float, float, float]] = {
    "9:16": (0.06, 0.10, 0.12, 0.20),
    "4:5": (0.06, 0.06, 0.10, 0.14),
    "1:1": (0.06, 0.06, 0.08, 0.12),
    "16:9": (0.05, 0.06, 0.05, 0.12),
}

_TOKEN = re.compile(r"[A-Za-z0-9À-ɏ'’.,!?%$@#&:;\-]+|\s+|.", re.S)


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    def contains(self, other: Box) -> bool:
        return self.x0 <= other.x0 and self.y0 <= other.y0 and other.x1 <= self.x1 and other.y1 <= self.y1


def safe_box(aspect: str, width: int, height: int) -> Box:
    """The rectangle where text is not hidden by platform UI."""
    left, top, right, bottom = SAFE_ZONES.get(aspect, SAFE_ZONES["16:9"])
    return Box(round(width * left), round(height * top), round(width * (1 - right)), round(height * (1 - bottom)))


def wrap_text(text: str, font: Any, max_w: float) -> list[str]:
    """Greedy wrap: Latin words stay whole, CJK breaks between characters; explicit newlines are kept."""
    lines: list[str] = []
    for para in text.split("\n"):
        cur = ""
        for tok in _TOKEN.findall(para):
            trial = cur + tok
            if not cur or font.getlength(trial) <= max_w:
                cur = trial
                continue
            if tok.isspace():
                lines.append(cur.rstrip())
                cur = ""
                continue
            lines.append(cur.rstrip())
            cur = tok
            while font.getlength(cur) > max_w and len(cur) > 1:  # a single word wider than the frame
                cut = len(cur) - 1
                while cut > 1 and font.getlength(cur[:cut]) > max_w:
                    cut -= 1
                lines.append(cur[:cut])
                cur = cur[cut:]
        lines.append(cur.rstrip())
    return [ln for ln in lines if ln.strip()] or [text.strip()]


def _hex(color: str, alpha: int = 255) -> tuple[int, int, int, int]:
    c = color.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), alpha


def caption_font_px(width: int, height: int, style: str) -> int:
    base = min(width, height)
    return max(12, round(base * (0.075 if style == "title" else 0.052)))


@dataclass
class CaptionImage:
    path: Path
    x: int
    y: int
    w: int
    h: int
    start_ms: int
    end_ms: int
    text: str = ""


def _word_spans(text: str, words: list[Any]) -> list[tuple[int, int, int, int]]:
    """(char_start, char_end, start_ms, end_ms) of each timed word found in order in the text."""
    spans, cur = [], 0
    for w in words:
        i = text.find(w.text, cur)
        if i < 0:
            continue
        spans.append((i, i + len(w.text), w.start_ms, w.end_ms))
        cur = i + len(w.text)
    return spans


def draw_caption(text: str, *, font: Any, max_w: int, color: str, highlight: str, stroke: int,
                 hl_range: tuple[int, int] | None = None) -> Any:
    """RGBA image of wrapped text with an outline and a soft box; `hl_range` colours those characters."""
    from PIL import Image, ImageDraw

    lines = wrap_text(text, font, max_w)
    asc, desc = font.getmetrics()
    line_h = asc + desc + stroke * 2
    gap = round(line_h * 0.12)
    widths = [int(font.getlength(ln)) + stroke * 2 for ln in lines]
    pad = stroke * 2 + 4
    w = max(widths) + pad * 2
    h = line_h * len(lines) + gap * (len(lines) - 1) + pad * 2
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, w - 1, h - 1), radius=pad, fill=(0, 0, 0, 96))
    # map each line back to character offsets in the original text (wrapping only drops whitespace)
    pos = 0
    for i, ln in enumerate(lines):
        start = text.find(ln, pos)
        start = pos if start < 0 else start
        pos = start + len(ln)
        x = (w - widths[i]) // 2 + stroke
        y = pad + i * (line_h + gap) + stroke
        d.text((x, y), ln, font=font, fill=_hex(color), stroke_width=stroke, stroke_fill=(0, 0, 0, 255))
        if hl_range is not None:
            a, b = max(hl_range[0], start), min(hl_range[1], start + len(ln))
            if a < b:
                hx = x + font.getlength(ln[: a - start])
                d.text((hx, y), ln[a - start : b - start], font=font, fill=_hex(highlight), stroke_width=stroke,
                       stroke_fill=(0, 0, 0, 255))
    return img


def layout_captions(timeline: Timeline, out_dir: Path, *, font_override: str | None = None,
                    font_index: int | None = None) -> list[CaptionImage]:
    """Draw every caption (and word-highlight variants) as PNGs placed bottom-up inside the safe zone.

    Captions that overlap in time (e.g. a zh line and its en translation) stack: later ones sit above.
    """
    from tools.fonts import load_font

    spec = timeline.output
    W, H = spec.width, spec.height
    box = safe_box(spec.aspect, W, H)
    brand: BrandKit = timeline.brand
    out_dir.mkdir(parents=True, exist_ok=True)
    fo = font_override or brand.font
    fi = font_index if font_index is not None else brand.font_index
    placed: list[tuple[Caption, int, int]] = []  # caption, top y, bottom y
    label_bottom = 0  # titles sit below the AIGC label so neither hides the other
    if aigc_windows(timeline):
        _img, _x, ly = _aigc_plate(timeline, timeline.aigc_label.label_text, fo, fi)
        label_bottom = ly + _img.height + round(min(W, H) * 0.015)
    result: list[CaptionImage] = []
    order = sorted(timeline.captions, key=lambda c: (c.style != "subtitle", c.start_ms, c.lang != "zh"))
    for cap in order:
        px = caption_font_px(W, H, cap.style)
        font = load_font(px, fo, fi, bold=True)
        stroke = max(1, px // 14)
        max_w = box.x1 - box.x0 - 4 * stroke - 8
        highlight = "#FFD400" if brand.primary.upper() in ("#FFFFFF", brand.text.upper()) else brand.primary
        variants: list[tuple[int, int, tuple[int, int] | None]] = [(cap.start_ms, cap.end_ms, None)]
        if timeline.caption_highlight and cap.words:
            variants = [(s, e, (a, b)) for a, b, s, e in _word_spans(cap.text, cap.words)] or variants
            variants = [(max(s, cap.start_ms), min(e, cap.end_ms), r) for s, e, r in variants if e > s]
            # plain text between highlighted words
            gaps, t = [], cap.start_ms
            for s, e, _ in sorted(variants):
                if s > t:
                    gaps.append((t, s, None))
                t = max(t, e)
            if t < cap.end_ms:
                gaps.append((t, cap.end_ms, None))
            variants += gaps
        img0 = draw_caption(cap.text, font=font, max_w=max_w, color=brand.text, highlight=highlight, stroke=stroke)
        w, h = img0.size
        x = box.x0 + (box.x1 - box.x0 - w) // 2
        if cap.style == "title":
            y = max(box.y0 + round((box.y1 - box.y0) * 0.08), label_bottom)
        else:
            bottom = box.y1
            for other, top_o, _bot in placed:
                if other.style == "subtitle" and other.start_ms < cap.end_ms and cap.start_ms < other.end_ms:
                    bottom = min(bottom, top_o - round(px * 0.2))
            y = max(box.y0, bottom - h)
        placed.append((cap, y, y + h))
        for s, e, rng in variants:
            img = img0 if rng is None else draw_caption(cap.text, font=font, max_w=max_w, color=brand.text,
                                                        highlight=highlight, stroke=stroke, hl_range=rng)
            key = hashlib.sha256(f"{cap.model_dump_json()}|{rng}|{W}x{H}|{fo}|{fi}|{brand.text}|{highlight}".encode())
            p = out_dir / f"cap-{key.hexdigest()[:16]}.png"
            if not p.exists():
                with atomic.replacing(p) as tmp:  # cached by name: never a truncated PNG under it
                    img.save(tmp)
            result.append(CaptionImage(p, x, y, w, h, s, e))
    return result


# --- AIGC label (人工智能生成合成内容标识办法 / GB 45438-2025) ---------------------------------------------------
def aigc_windows(timeline: Timeline) -> list[tuple[int, int, str]]:
    """(start_ms, end_ms, text) spans of the visible AIGC label: every generated shot for as long as it is on
    screen (adjacent ones merged, so the plate does not blink at a cut), and the short voice notice at the start
    where no shot label already covers it. Empty when the label is not burned in (`visible=False` + a route)."""
    lab = timeline.aigc_label
    if not lab.visible:
        return []
    spans: list[list[int]] = []
    for it in sorted(timeline.generated_items, key=lambda v: v.start_ms):
        if spans and it.start_ms <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], it.end_ms)
        else:
            spans.append([it.start_ms, it.end_ms])
    out = [(a, b, lab.label_text) for a, b in spans]
    if timeline.synthetic_voice and lab.voice_notice_ms > 0:
        t, end = 0, min(lab.voice_notice_ms, timeline.content_ms)
        for a, b in spans:
            if a >= end:
                break
            if a > t:
                out.append((t, a, lab.voice_label_text))
            t = max(t, b)
        if t < end:
            out.append((t, end, lab.voice_label_text))
    return sorted(out)


def _aigc_plate(timeline: Timeline, text: str, font_override: str | None,
                font_index: int | None) -> tuple[Any, int, int]:
    """The label image and its top-left corner: top-left inside the safe zone (below the top ~12% of a 9:16
    frame), top-right instead when the brand logo sits top-left."""
    from PIL import Image, ImageDraw

    from tools.fonts import load_font

    spec = timeline.output
    W, H = spec.width, spec.height
    box = safe_box(spec.aspect, W, H)
    px = max(12, round(min(W, H) * 0.03))
    font = load_font(px, font_override, font_index, bold=True)
    asc, desc = font.getmetrics()
    pad_x, pad_y = round(px * 0.45), round(px * 0.22)
    w = int(font.getlength(text)) + 2 * pad_x
    h = asc + desc + 2 * pad_y
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, w - 1, h - 1), radius=max(2, h // 4), fill=(0, 0, 0, 120))
    d.text((pad_x, pad_y), text, font=font, fill=(255, 255, 255, 235))
    m = round(min(W, H) * 0.015)
    top = max(box.y0, round(H * 0.12)) if spec.aspect == "9:16" else box.y0
    b = timeline.brand
    x = box.x1 - m - w if b.logo and b.logo_position == "top-left" else box.x0 + m
    return img, x, top + m


def layout_aigc(timeline: Timeline, out_dir: Path, *, font_override: str | None = None,
                font_index: int | None = None) -> list[CaptionImage]:
    """Draw the visible AIGC label PNGs (cached by content) placed for each span of `aigc_windows`."""
    windows = aigc_windows(timeline)
    if not windows:
        return []
    fo = font_override or timeline.brand.font
    fi = font_index if font_index is not None else timeline.brand.font_index
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = timeline.output
    result: list[CaptionImage] = []
    drawn: dict[str, tuple[Path, int, int, int, int]] = {}
    for a, b, text in windows:
        if text not in drawn:
            img, x, y = _aigc_plate(timeline, text, fo, fi)
            key = hashlib.sha256(f"aigc|{text}|{spec.aspect}|{spec.width}x{spec.height}|{fo}|{fi}|{x},{y}".encode())
            p = out_dir / f"aigc-{key.hexdigest()[:16]}.png"
            if not p.exists():
                with atomic.replacing(p) as tmp:
                    img.save(tmp)
            drawn[text] = (p, x, y, img.width, img.height)
        p, x, y, w, h = drawn[text]
        result.append(CaptionImage(p, x, y, w, h, a, b, text))
    return result
