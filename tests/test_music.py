"""Music bed: generated beds measured (exact length, loudness, tempo, key) and user-folder picks by mood/length."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from cutpilot.errors import InputError
from cutpilot.media import probe, run_ffmpeg
from cutpilot.settings import Settings
from tools.music import MOODS, SR, music_bed, resolve_mood


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == SR
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    return data.mean(axis=1) / 32768.0


def _tempo(a: np.ndarray) -> float:
    """Autocorrelation of the positive energy flux (10 ms frames) over 63–200 bpm."""
    hop = SR // 100
    n = len(a) // hop
    e = np.sqrt((a[: n * hop].reshape(n, hop) ** 2).mean(axis=1))
    flux = np.maximum(0, np.diff(e))
    flux -= flux.mean()
    ac = np.correlate(flux, flux, "full")[len(flux) - 1:]
    lags = np.arange(30, 96)
    return 6000.0 / lags[int(np.argmax(ac[lags]))]


def _top_pitch_classes(a: np.ndarray, k: int = 3) -> list[int]:
    seg = a[: SR * 8]
    spec = np.abs(np.fft.rfft(seg)) ** 2
    fr = np.fft.rfftfreq(len(seg), 1 / SR)
    m = (fr > 60) & (fr < 1000)
    pc = np.round(12 * np.log2(fr[m] / 440) + 69).astype(int) % 12
    return list(np.argsort(np.bincount(pc, weights=spec[m], minlength=12))[::-1][:k])


@pytest.mark.parametrize("mood", ["upbeat", "calm", "energetic", "luxury"])
def test_generated_bed_measures_like_its_mood(tmp_path: Path, mood: str) -> None:
    res = music_bed(12.34, mood, settings=Settings(home=tmp_path), out_dir=tmp_path)
    assert res.source == "generated" and res.mood == mood and any("generated" in n for n in res.notes)
    pr = probe(res.path)
    assert pr.sample_rate == SR and abs(pr.duration - 12.34) < 0.001
    a = _read(res.path)
    assert len(a) == round(12.34 * SR)  # exact sample count
    rms_db = 20 * np.log10(np.sqrt(np.mean(a**2)))
    assert rms_db > -30, f"bed too quiet ({rms_db:.1f} dBFS)"
    assert np.abs(a[:100]).max() < 0.01 and np.abs(a[-100:]).max() < 0.01  # faded in and out
    assert abs(_tempo(a) - MOODS[mood].bpm) / MOODS[mood].bpm < 0.04
    assert MOODS[mood].root % 12 in _top_pitch_classes(a)


def test_moods_differ_and_cache_hits(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    up = music_bed(6, "欢快", settings=s, out_dir=tmp_path)
    calm = music_bed(6, "relaxed", settings=s, out_dir=tmp_path)
    assert (up.mood, calm.mood) == ("upbeat", "calm") and up.bpm != calm.bpm and up.key_name != calm.key_name
    again = music_bed(6, "upbeat", settings=s, out_dir=tmp_path)
    assert again.cached and again.path == up.path
    odd = music_bed(3, "quizzical", settings=s, out_dir=tmp_path)
    assert odd.mood == "upbeat" and any("unknown mood" in n for n in odd.notes)
    with pytest.raises(InputError):
        music_bed(0, "calm", settings=s, out_dir=tmp_path)
    assert resolve_mood("premium feel") == ("luxury", True)


def _tone(path: Path, seconds: float, hz: int) -> None:
    run_ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={hz}:duration={seconds}:sample_rate=44100", str(path)])


def test_user_folder_picked_by_mood_tag_and_length(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    _tone(music / "calm_piano_short.wav", 3, 440)
    _tone(music / "calm_strings.wav", 9, 330)
    _tone(music / "track7.wav", 9, 550)
    (music / "track7.wav.json").write_text(json.dumps({"mood": ["energetic"]}))
    s = Settings(home=tmp_path, music_dir=music)
    res = music_bed(5.0, "calm", settings=s, out_dir=tmp_path / "out")
    assert res.source == "user" and Path(res.origin or "").name == "calm_strings.wav"
    assert abs(probe(res.path).duration - 5.0) < 0.001
    a = _read(res.path)
    assert np.abs(a[:50]).max() < 0.02 and np.abs(a[-50:]).max() < 0.02  # faded
    assert np.sqrt(np.mean(a[SR:2 * SR] ** 2)) > 0.03  # ffmpeg's sine is -18 dBFS RMS
    sidecar = music_bed(4.0, "sport", settings=s, out_dir=tmp_path / "out")
    assert Path(sidecar.origin or "").name == "track7.wav"
    looped = music_bed(12.0, "calm", settings=s, out_dir=tmp_path / "out")
    assert abs(probe(looped.path).duration - 12.0) < 0.001 and any("looped" in n for n in looped.notes)
    none = music_bed(4.0, "luxury", settings=s, out_dir=tmp_path / "out")
    assert none.source == "generated" and any("no track" in n for n in none.notes)
