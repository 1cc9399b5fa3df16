"""Music bed: the user's own music (picked by mood tag and length) or a generated royalty-free bed.

WHY generate: merchants often have no licensed music, and silence under an ad reads as broken. The generated bed
is real music, not a tone: a mood-specific chord progression (pads + bass), a simple drum pattern at the mood's
tempo, faded in/out, cut to the exact sample count. It is deterministic (same mood+length → same file, cached).
Output: 48 kHz stereo 16-bit WAV. Loudness is the renderer's job (it normalises the mix).
"""

from __future__ import annotations

import json
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from cutpilot.errors import InputError
from cutpilot.media import AUDIO_EXTS, probe, run_ffmpeg
from cutpilot.settings import Settings
from tools.assets import AssetResult, asset_key, asset_path, cached, save_sidecar

SR = 48000


@dataclass(frozen=True)
class Mood:
    bpm: int
    root: int  # MIDI note of the tonic (pad register)
    chords: tuple[tuple[int, ...], ...]  # semitone offsets from the tonic, one chord per bar
    drums: Literal["none", "soft", "four", "drive"]
    brightness: float  # 0..1 share of upper harmonics in the pad
    key_name: str


# Roman numerals as offsets: I=0 ii=2 iii=4 IV=5 V=7 vi=9; minor i=0 III=3 VI=8 VII=10.
MOODS: dict[str, Mood] = {
    "upbeat": Mood(120, 60, ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)), "four", 0.6, "C major"),
    "calm": Mood(76, 65, ((0, 4, 7, 11), (9, 12, 16), (5, 9, 12, 16), (7, 11, 14)), "soft", 0.25, "F major"),
    "energetic": Mood(140, 64, ((0, 3, 7), (8, 12, 15), (3, 7, 10), (10, 14, 17)), "drive", 0.8, "E minor"),
    "luxury": Mood(88, 61, ((0, 4, 7, 11), (9, 12, 16, 19), (2, 5, 9, 12), (7, 11, 14, 17)), "soft", 0.4,
                   "D♭ major"),
    "warm": Mood(96, 67, ((0, 4, 7), (5, 9, 12), (9, 12, 16), (7, 11, 14)), "soft", 0.35, "G major"),
    "dramatic": Mood(100, 62, ((0, 3, 7), (10, 14, 17), (8, 12, 15), (7, 11, 14)), "four", 0.55, "D minor"),
}
MOOD_ALIASES = {
    "happy": "upbeat", "fun": "upbeat", "bright": "upbeat", "pop": "upbeat", "欢快": "upbeat", "轻快": "upbeat",
    "relaxed": "calm", "chill": "calm", "soft": "calm", "gentle": "calm", "舒缓": "calm", "安静": "calm",
    "energy": "energetic", "sport": "energetic", "sports": "energetic", "intense": "energetic", "动感": "energetic",
    "elegant": "luxury", "premium": "luxury", "classy": "luxury", "高级": "luxury", "奢华": "luxury",
    "cozy": "warm", "cosy": "warm", "emotional": "warm", "温暖": "warm", "epic": "dramatic", "cinematic": "dramatic",
}


class MusicResult(AssetResult):
    source: Literal["user", "generated"]
    mood: str
    duration_s: float
    bpm: int | None = None
    key_name: str | None = None
    origin: str | None = None  # the user file it came from


def resolve_mood(mood: str) -> tuple[str, bool]:
    """Canonical mood name and whether it was recognised (unknown → upbeat, said in the notes)."""
    m = mood.strip().lower()
    if m in MOODS:
        return m, True
    if m in MOOD_ALIASES:
        return MOOD_ALIASES[m], True
    for word in re.split(r"[\s,/_-]+", m):
        if word in MOODS:
            return word, True
        if word in MOOD_ALIASES:
            return MOOD_ALIASES[word], True
    return "upbeat", False


def music_bed(duration_s: float, mood: str, *, settings: Settings, out_dir: Path,
              fade_in_s: float = 0.5, fade_out_s: float = 1.0) -> MusicResult:
    """A bed of exactly `duration_s`: the best-matching user track if `settings.music_dir` has one, else a
    generated bed in the mood's tempo and key."""
    if not 0.5 <= duration_s <= 600:
        raise InputError(f"music_bed: duration {duration_s}s out of range (0.5–600 s)")
    canon, known = resolve_mood(mood)
    notes = [] if known else [f"unknown mood {mood!r}; used 'upbeat'"]
    fade_out_s = min(fade_out_s, duration_s / 3)
    fade_in_s = min(fade_in_s, duration_s / 4)
    if settings.music_dir:
        pick = pick_user_track(settings.music_dir, canon, duration_s, settings)
        if pick is not None:
            return _user_bed(pick, duration_s, canon, settings, out_dir, fade_in_s, fade_out_s, notes)
        notes.append(f"no track in {settings.music_dir} for mood {canon!r}; generated one")
    params = {"mood": canon, "duration_s": round(duration_s, 3), "fade_in": fade_in_s, "fade_out": fade_out_s,
              "sr": SR, "v": 1}
    key = asset_key("music", (), params)
    hit = cached(out_dir, "music", key, ".wav", MusicResult)
    if hit is not None:
        return hit.model_copy(update={"notes": [*notes, *hit.notes]})
    audio = synthesize(canon, duration_s, fade_in_s=fade_in_s, fade_out_s=fade_out_s)
    path = asset_path(out_dir, "music", key, ".wav")
    _write_wav(path, audio)
    mo = MOODS[canon]
    res = MusicResult(path=path, kind="music", tool="music_bed", provider="offline:synth", params=params, key=key,
                      source="generated", mood=canon, duration_s=len(audio) / SR, bpm=mo.bpm, key_name=mo.key_name,
                      notes=[*notes, f"generated bed: {mo.key_name}, {mo.bpm} bpm (royalty-free, made here)"])
    return save_sidecar(res)


# --- user music ---------------------------------------------------------------------------------------------
def _tags_for(path: Path) -> set[str]:
    tags = {t for t in re.split(r"[\s,._\-()\[\]]+", path.stem.lower()) if t}
    for side in (path.with_suffix(".json"), path.with_name(path.name + ".json")):
        if side.is_file():
            try:
                data = json.loads(side.read_text(encoding="utf-8"))
            except ValueError:
                continue
            moods = data.get("mood") or data.get("moods") or data.get("tags") or []
            tags |= {str(m).lower() for m in ([moods] if isinstance(moods, str) else moods)}
    canon = {resolve_mood(t)[0] for t in tags if resolve_mood(t)[1]}
    return tags | canon


def pick_user_track(music_dir: Path, mood: str, duration_s: float, settings: Settings) -> Path | None:
    """Mood-tagged track (filename words or a JSON sidecar with "mood"), preferring ones at least as long as
    needed (no looping), then the shortest such. No tagged match → None (we do not guess a mood)."""
    if not music_dir.is_dir():
        raise InputError(f"music_dir {music_dir} is not a folder")
    best: tuple[tuple[int, float], Path] | None = None
    for p in sorted(music_dir.iterdir()):
        if p.suffix.lower() not in AUDIO_EXTS or mood not in _tags_for(p):
            continue
        try:
            dur = probe(p, settings.ffprobe).duration
        except Exception:
            continue
        score = (0 if dur >= duration_s else 1, dur if dur >= duration_s else -dur)
        if best is None or score < best[0]:
            best = (score, p)
    return best[1] if best else None


def _user_bed(src: Path, duration_s: float, mood: str, settings: Settings, out_dir: Path, fade_in_s: float,
              fade_out_s: float, notes: list[str]) -> MusicResult:
    params = {"mood": mood, "duration_s": round(duration_s, 3), "fade_in": fade_in_s, "fade_out": fade_out_s,
              "sr": SR, "src": src.name}
    key = asset_key("music", (src,), params)
    hit = cached(out_dir, "music", key, ".wav", MusicResult)
    if hit is not None:
        return hit.model_copy(update={"notes": [*notes, *hit.notes]})
    src_dur = probe(src, settings.ffprobe).duration
    path = asset_path(out_dir, "music", key, ".wav")
    nsamp = round(duration_s * SR)
    loop = src_dur < duration_s
    if loop:
        notes.append(f"{src.name} ({src_dur:.1f}s) is shorter than {duration_s:.1f}s; looped")
    af = (f"aresample={SR},aformat=sample_fmts=s16:channel_layouts=stereo,afade=t=in:d={fade_in_s},"
          f"atrim=end_sample={nsamp},apad=whole_len={nsamp},"
          f"afade=t=out:st={duration_s - fade_out_s:.3f}:d={fade_out_s}")
    tmp = path.with_name(path.name + ".part.wav")
    run_ffmpeg([*(["-stream_loop", "-1"] if loop else []), "-i", str(src), "-vn", "-af", af, "-ar", str(SR),
                "-ac", "2", "-c:a", "pcm_s16le", str(tmp)], what=f"music bed from {src.name}", ffmpeg=settings.ffmpeg)
    tmp.replace(path)
    res = MusicResult(path=path, kind="music", tool="music_bed", provider="user", params=params, key=key,
                      source="user", mood=mood, duration_s=nsamp / SR, origin=str(src), notes=notes)
    return save_sidecar(res)


# --- synthesis ----------------------------------------------------------------------------------------------
def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def synthesize(mood: str, duration_s: float, *, fade_in_s: float = 0.5, fade_out_s: float = 1.0,
               sr: int = SR) -> np.ndarray:
    """Stereo float32 (n, 2) in [-1, 1], n = round(duration_s * sr) exactly."""
    mo = MOODS[mood]
    n = round(duration_s * sr)
    t = np.arange(n, dtype=np.float64) / sr
    beat = 60.0 / mo.bpm
    bar = 4 * beat
    rng = np.random.default_rng(sum(map(ord, mood)))  # deterministic per mood (hash() is salted)
    pad = np.zeros(n)
    bass = np.zeros(n)
    n_bars = int(np.ceil(duration_s / bar))
    for b in range(n_bars):
        chord = mo.chords[b % len(mo.chords)]
        i0, i1 = int(b * bar * sr), min(n, int((b + 1) * bar * sr))
        if i0 >= n:
            break
        tt = t[i0:i1] - t[i0]
        seg = np.zeros(i1 - i0)
        for off in chord:
            f = _hz(mo.root + off)
            for h, amp in ((1, 1.0), (2, 0.5 * mo.brightness), (3, 0.3 * mo.brightness), (4, 0.15 * mo.brightness)):
                seg += amp * np.sin(2 * np.pi * f * h * tt) + 0.3 * amp * np.sin(2 * np.pi * f * h * 1.003 * tt)
        env = np.minimum(1.0, tt / 0.08) * np.minimum(1.0, (tt[-1] - tt + 1e-3) / 0.12)
        pad[i0:i1] = seg / len(chord) * env
        # bass: root on each beat, an octave and a fifth below the pad
        fb = _hz(mo.root + chord[0] - 24)
        for k in range(4):
            j0 = i0 + int(k * beat * sr)
            if j0 >= i1:
                break
            j1 = min(i1, j0 + int(beat * sr * 0.9))
            bt = t[j0:j1] - t[j0]
            bass[j0:j1] = (np.sin(2 * np.pi * fb * bt) + 0.25 * np.sin(4 * np.pi * fb * bt)) * np.exp(-bt * 3.0)
    drums = _drums(mo, n, sr, rng)
    mix_l = 0.34 * pad + 0.32 * bass + drums
    mix_r = 0.34 * np.roll(pad, int(0.011 * sr)) + 0.32 * bass + drums
    out = np.stack([mix_l, mix_r], axis=1)
    out /= max(1e-9, float(np.abs(out).max())) / 0.7  # peak -3 dBFS
    fi, fo = int(fade_in_s * sr), int(fade_out_s * sr)
    if fi:
        out[:fi] *= np.linspace(0, 1, fi)[:, None]
    if fo:
        out[n - fo:] *= np.linspace(1, 0, fo)[:, None]
    return out.astype(np.float32)


def _drums(mo: Mood, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    if mo.drums == "none":
        return out
    beat = 60.0 / mo.bpm
    kick_len = int(0.18 * sr)
    kt = np.arange(kick_len) / sr
    kick = np.sin(2 * np.pi * (50 * kt + 90 / 30 * (1 - np.exp(-30 * kt)))) * np.exp(-kt * 18)
    hat_len = int(0.04 * sr)
    hat = np.diff(rng.standard_normal(hat_len + 1)) * np.exp(-np.arange(hat_len) / sr * 120)
    snare_len = int(0.15 * sr)
    snare = rng.standard_normal(snare_len) * np.exp(-np.arange(snare_len) / sr * 25)
    level = {"soft": 0.35, "four": 0.6, "drive": 0.75}[mo.drums]
    n_beats = int(n / (beat * sr)) + 1

    def put(sample: np.ndarray, at: float, gain: float) -> None:
        i = int(at * sr)
        if i < n:
            j = min(n, i + len(sample))
            out[i:j] += gain * sample[: j - i]

    for k in range(n_beats):
        at = k * beat
        if mo.drums == "soft":
            if k % 2 == 0:
                put(kick, at, level * 0.8)
            put(hat, at + beat / 2, level * 0.15)
            continue
        put(kick, at, level)
        if k % 4 in (1, 3):
            put(snare, at, level * 0.35)
        put(hat, at + beat / 2, level * 0.2)
        if mo.drums == "drive":
            put(hat, at + beat / 4, level * 0.12)
            put(hat, at + 3 * beat / 4, level * 0.12)
    return out


def _write_wav(path: Path, audio: np.ndarray, sr: int = SR) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    tmp = path.with_name(path.name + ".part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(audio.shape[1])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    tmp.replace(path)
