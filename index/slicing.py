"""Slicing a source into 1–10 s clips: a pure function of (shot cuts, ASR words, duration).

Practitioners slice footage into 1–10 s clips (domain notes §1). Rules, in order:
1. hard cuts = shot changes + long speech pauses; a cut that falls inside a word moves to the nearest word edge
   (a clip that starts or ends mid-word is useless in an ad);
2. slivers shorter than `min_len` merge into the shorter neighbour;
3. pieces longer than `max_len` split at the latest sentence end that fits, else evenly, again never inside a word.
Pure and deterministic, so it is property-tested with random shots and words.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

from cutpilot.models import Word

MIN_LEN = 1.0
MAX_LEN = 10.0
_SENTENCE_END = (".", "!", "?", "。", "！", "？", "…", ";", "；")
_EPS = 1e-6


def clean_words(words: Sequence[Word], duration: float) -> list[Word]:
    """Sorted, clipped to the source, overlaps removed (Whisper occasionally overlaps neighbours by a few ms)."""
    out: list[Word] = []
    for w in sorted(words, key=lambda w: (w.start, w.end)):
        start = max(0.0, min(w.start, duration))
        end = max(0.0, min(w.end, duration))
        if out and start < out[-1].end:
            start = out[-1].end
        start, end = round(start, 3), round(end, 3)
        if end - start <= _EPS:
            continue
        out.append(w.model_copy(update={"start": start, "end": end}))
    return out


def inside_word(t: float, words: Sequence[Word]) -> bool:
    """True when a cut at `t` would split a word (touching a word's edge is fine)."""
    return any(w.start + _EPS < t < w.end - _EPS for w in words)


class _Spans:
    """Cleaned words (sorted, non-overlapping) indexed for bisection: an hour of speech has thousands of words,
    and a linear `inside_word` per candidate cut made slicing quadratic in them."""

    def __init__(self, words: Sequence[Word]) -> None:
        self.words = list(words)
        self.starts = [w.start for w in self.words]
        self.edges = [e for w in self.words for e in (w.start, w.end)]  # ascending: the words do not overlap

    def inside(self, t: float) -> bool:
        """`inside_word(t, words)`: only the last word starting before `t` can contain it."""
        i = bisect.bisect_left(self.starts, t)
        return any(w.start + _EPS < t < w.end - _EPS for w in self.words[max(0, i - 2): i + 1])


def _snap(t: float, words: _Spans, lo: float, hi: float) -> float:
    """The valid cut nearest to `t` within [lo, hi]: `t` itself if not inside a word, else the nearest word edge."""
    t = round(min(max(t, lo), hi), 3)
    if not words.inside(t):
        return t
    edges = words.edges
    i, j = bisect.bisect_left(edges, lo - _EPS), bisect.bisect_right(edges, hi + _EPS)
    k = bisect.bisect_left(edges, t, i, j)
    # the nearest valid edge at or below t and at or above it (edges are never inside a cleaned word's neighbour)
    below = next((edges[m] for m in range(k - 1, i - 1, -1) if not words.inside(edges[m])), None)
    above = next((edges[m] for m in range(k, j) if not words.inside(edges[m])), None)
    found = [e for e in (below, above) if e is not None]
    if not found:
        return t  # only a single word longer than the window can force this; the length bound wins
    return min(found, key=lambda e: (abs(e - t), e))


def speech_boundaries(words: Sequence[Word], *, pause: float = 1.0) -> tuple[list[float], list[float]]:
    """(hard, soft) cut points from speech: long pauses are hard cuts, sentence ends are preferred split points."""
    hard: list[float] = []
    soft: list[float] = []
    for a, b in itertools.pairwise(words):
        gap = b.start - a.end
        mid = a.end + gap / 2
        if gap >= pause:
            hard.append(mid)
        elif a.text.strip().endswith(_SENTENCE_END) or gap >= 0.35:
            soft.append(mid if gap > 0 else a.end)
    return hard, soft


def slice_source(
    shots: Sequence[float],
    words: Sequence[Word],
    duration: float,
    *,
    min_len: float = MIN_LEN,
    max_len: float = MAX_LEN,
) -> list[tuple[float, float]]:
    """Clip (start, end) pairs covering [0, duration]; empty when the source is shorter than `min_len`."""
    if duration < min_len - _EPS:
        return []
    if max_len < 2 * min_len:
        raise ValueError("max_len must be at least twice min_len")
    ws = clean_words(words, duration)
    hard_speech, soft = speech_boundaries(ws)
    spans = _Spans(ws)
    cuts = sorted({_snap(t, spans, 0.0, duration) for t in [*shots, *hard_speech] if 0 < t < duration})
    bounds = [0.0, *[c for c in cuts if 0 < c < duration], duration]
    pieces = [(a, b) for a, b in itertools.pairwise(bounds) if b - a > _EPS]
    pieces = _merge_slivers(pieces, min_len, max_len)
    out: list[tuple[float, float]] = []
    for a, b in pieces:
        out.extend(_split_long(a, b, spans, soft, min_len, max_len))
    return [(round(a, 3), round(b, 3)) for a, b in out]


def _merge_slivers(pieces: list[tuple[float, float]], min_len: float, max_len: float) -> list[tuple[float, float]]:
    ps = list(pieces)
    while len(ps) > 1:
        short = [i for i, (a, b) in enumerate(ps) if b - a < min_len - _EPS]
        if not short:
            break
        i = min(short, key=lambda k: ps[k][1] - ps[k][0])
        left = ps[i - 1][1] - ps[i - 1][0] if i > 0 else math.inf
        right = ps[i + 1][1] - ps[i + 1][0] if i + 1 < len(ps) else math.inf
        j = i - 1 if left <= right else i + 1
        lo, hi = min(i, j), max(i, j)
        ps[lo:hi + 1] = [(ps[lo][0], ps[hi][1])]
    return ps


def _split_long(a: float, b: float, words: _Spans, soft: Sequence[float],
                min_len: float, max_len: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    while b - a > max_len + _EPS:
        lo, hi = a + min_len, min(a + max_len, b - min_len)
        span = soft[bisect.bisect_left(soft, lo): bisect.bisect_right(soft, hi)]  # soft points come in order
        fits = [s for s in span if lo <= s <= hi and not words.inside(s)]
        if fits:
            c = max(fits)
        else:
            n = math.ceil((b - a) / max_len - _EPS)
            c = _snap(a + (b - a) / n, words, lo, hi)
        out.append((a, c))
        a = c
    out.append((a, b))
    return out
