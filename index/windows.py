"""Windows over a long source: what is decoded, transcribed and scanned for cuts at a time (pure).

A 2-hour source cannot be decoded or transcribed in one piece in bounded memory, so audio and shot detection run
per window. Each window is read with a pad on both sides (a word or a cut straddling an edge is seen whole), and
keeps only what *starts* inside it, so everything is kept exactly once. Words and cut times are small, so they are
merged over the whole source and sliced once: no clip is ever cut at a window edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cutpilot.models import Word

WINDOW_S = 300.0
ASR_PAD_S = 3.0
SHOT_PAD_S = 1.0


def plan_windows(duration: float, window_s: float = WINDOW_S) -> list[tuple[float, float]]:
    """[start, end) windows covering [0, duration]; a source no longer than one window is one window."""
    if window_s <= 0:
        raise ValueError("window_s must be positive")
    n = max(1, math.ceil(duration / window_s - 1e-9))
    return [(round(i * window_s, 3), round(min(duration, (i + 1) * window_s), 3)) for i in range(n)]


def padded(win: tuple[float, float], pad: float, duration: float) -> tuple[float, float]:
    """The span actually read for a window: the window plus `pad` each side, inside the source."""
    return max(0.0, win[0] - pad), min(duration, win[1] + pad)


def keep_words(words: Sequence[Word], win: tuple[float, float], *, last: bool) -> list[Word]:
    """Words (in source time) that start inside the window; the last window also keeps what starts at its end."""
    s, e = win
    return [w for w in words if s <= w.start and (w.start < e or last)]


def merge_words(per_window: Sequence[Sequence[Word]]) -> list[Word]:
    """Concatenate windows' kept words; a word two windows both heard (its start timed either side of the edge)
    is kept once: a word whose middle lies before the end of the last kept word is the same word again."""
    out: list[Word] = []
    for ws in per_window:
        for w in ws:
            if out and (w.start + w.end) / 2 < out[-1].end:
                continue
            out.append(w)
    return out


def keep_shots(shots: Sequence[float], win: tuple[float, float], *, last: bool) -> list[float]:
    """Cut times (source time) inside the window's [start, end)."""
    s, e = win
    return [t for t in shots if s <= t and (t < e or last)]


def merge_shots(per_window: Sequence[Sequence[float]], *, min_gap: float = 1e-3) -> list[float]:
    """Sorted cut times over all windows; the same cut timed by two windows (a rounding apart) is one cut, while
    cuts a frame apart stay, as a whole-file scan keeps them."""
    out: list[float] = []
    for t in sorted(t for ws in per_window for t in ws):
        if out and t - out[-1] < min_gap:
            continue
        out.append(round(t, 3))
    return out


def language_of(per_window: Sequence[tuple[str | None, int]]) -> str | None:
    """The source's language: the one most words were heard in (windows of music or silence have none)."""
    counts: dict[str, int] = {}
    for lang, n in per_window:
        if lang and n:
            counts[lang] = counts.get(lang, 0) + n
    return max(counts, key=lambda k: (counts[k], k)) if counts else None


def clip_batches(clips: Sequence[tuple[float, float]], windows: Sequence[tuple[float, float]]) -> list[list[int]]:
    """Indices of the clips committed together: those starting in each window (empty windows are dropped)."""
    out: list[list[int]] = [[] for _ in windows]
    for i, (a, _b) in enumerate(clips):
        k = next((j for j, (_s, e) in enumerate(windows) if a < e), len(windows) - 1)
        out[k].append(i)
    return [b for b in out if b]
