"""Slicing is a pure function: property-test it with random shots and words (plain seeded loops)."""

from __future__ import annotations

import itertools
import random

import pytest

from cutpilot.models import Word
from index.slicing import inside_word, slice_source


def _random_words(rng: random.Random, duration: float) -> list[Word]:
    words: list[Word] = []
    t = rng.uniform(0, 2)
    while t < duration:
        length = rng.uniform(0.08, 1.2)
        end = min(t + length, duration)
        text = rng.choice(["ask", "not", "what", "your", "country.", "侧睡", "细纹。", "hello,", "buy!"])
        words.append(Word(text=text, start=round(t, 3), end=round(end, 3)))
        gap = rng.choice([0.0, 0.02, 0.1, 0.4, 1.5, 3.0]) if rng.random() < 0.5 else rng.uniform(0, 0.3)
        t = end + gap
    return [w for w in words if w.end > w.start]


def test_random_sources_give_1_to_10s_clips_never_cutting_words() -> None:
    rng = random.Random(1234)
    for _ in range(600):
        duration = rng.choice([rng.uniform(1.0, 12.0), rng.uniform(10.0, 120.0)])
        shots = sorted(rng.uniform(0, duration) for _ in range(rng.randint(0, 25)))
        words = _random_words(rng, duration) if rng.random() < 0.8 else []
        clips = slice_source(shots, words, duration)
        assert clips, duration
        assert clips[0][0] == 0.0
        assert abs(clips[-1][1] - duration) < 1e-3
        for (_a, b), (c, _) in itertools.pairwise(clips):
            assert b == c, "clips must tile the source"
        for a, b in clips:
            assert 1.0 - 1e-3 <= b - a <= 10.0 + 1e-3, (a, b, duration)
            assert not inside_word(a, words) and not inside_word(b, words), (a, b)


def test_shot_cuts_are_kept_and_snapped_out_of_words() -> None:
    words = [Word(text=" hello", start=2.8, end=3.3), Word(text=" world.", start=3.35, end=3.9)]
    clips = slice_source([3.0, 6.0], words, 9.0)
    assert clips == [(0.0, 2.8), (2.8, 6.0), (6.0, 9.0)]


def test_slivers_merge_and_long_shots_split_at_sentence_end() -> None:
    # a 0.4 s flash frame merges into a neighbour
    assert slice_source([4.0, 4.4], [], 8.0) == [(0.0, 4.0), (4.0, 8.0)]  # joins the shorter side
    # one 16 s shot with a sentence ending at 7 s: split there, not evenly at 8 s
    words = [Word(text=f" w{i}", start=i * 0.5, end=i * 0.5 + 0.45) for i in range(14)]
    words[13] = Word(text=" end.", start=6.5, end=6.95)
    words += [Word(text=f" v{i}", start=7.2 + i * 0.5, end=7.2 + i * 0.5 + 0.45) for i in range(16)]
    clips = slice_source([], words, 16.0)
    assert len(clips) == 2 and 6.95 <= clips[0][1] <= 7.2
    # no speech at all: evenly
    assert slice_source([], [], 25.0) == [(0.0, 8.333), (8.333, 16.666), (16.666, 25.0)]


def test_too_short_source_gives_nothing_and_bad_limits_raise() -> None:
    assert slice_source([], [], 0.6) == []
    with pytest.raises(ValueError):
        slice_source([], [], 5.0, min_len=3, max_len=4)
