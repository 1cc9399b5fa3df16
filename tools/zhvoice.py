"""Offline Mandarin narration by concatenating real recorded tonal syllables (Debian `gcin-voice`).

WHY: the only other offline Mandarin voice, espeak-ng 1.51 `cmn`, reads pinyin tone digits and Whisper hears
nothing of it (CER 1.00). gcin-voice ships about 1,200 human recordings of every toned syllable per voice
(`/usr/share/gcin-voice/ogg/<zhuyin><tone>/<voice>.ogg`, also reachable as `/usr/share/gcin/ogg`), so a line
built from them is real Mandarin, if flat in prosody. The text → sound steps are the ones a listener needs:
digits read as Chinese numbers, phrase-level polyphones (pypinyin, imported only here), tone sandhi (3-3 → 2-3,
一/不) *before* the lookup, then per syllable: silence trim, loudness normalisation, a 5 ms fade-in (keeps plosive
bursts), neighbours overlapped by 30 ms, a 40 ms gap between words when the caller passes a segmentation, and
pauses at punctuation (、，。！？). Tried and dropped because Whisper heard less: shortening inner 3rd tones
("half third"), a closure gap before stops, long fade-ins. Latin words (LEGO, VIP) are skipped, not spelled —
the syllable set has no letter names — and every result lists what it skipped. `target_s` time-stretches a line
to its slot (ffmpeg atempo, pitch kept).

Voices and licences (from the package's debian/copyright; see /work/shared/voices.md):
  gcin3 — male, 3.ogg: GPL-3 or LGPL-3, © 2014 Edward Der-Hua Liu. Check before commercial use.
  gcin5 — female, 5.ogg: CC-BY-3.0, ChionMeilin (vocal source Chu Lo); commercial use allowed with attribution.
Default `gcin3`, because it is the one a listener understands: Whisper base CER 0.24 over ten ad lines (7/10 pass
the 0.35 gate) vs 0.70 for gcin5 (0/10; a voice-bank voice pitched near 380 Hz) and 1.00 for espeak-ng 1.51 `cmn`
(benchmarks/voice.py, BENCHMARKS.md "Voice"). Every result carries its voice's licence string.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import unicodedata
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from cutpilot.errors import InputError, ToolMissingError
from cutpilot.media import run_ffmpeg
from cutpilot.zhnum import _DIG, _pieces

OGG_DIRS = (Path("/usr/share/gcin-voice/ogg"), Path("/usr/share/gcin/ogg"), Path("/usr/share/hime/ogg"))
SAMPLE_RATE = 24000
ENGINE_REV = 1  # part of callers' cache keys: bump when the sound of a line changes


@dataclass(frozen=True)
class VoiceInfo:
    file: str
    gender: str
    licence: str


VOICES: dict[str, VoiceInfo] = {
    "gcin3": VoiceInfo("3.ogg", "male", "GPL-3 or LGPL-3 (gcin-voice 3.ogg, (c) 2014 Edward Der-Hua Liu)"),
    "gcin5": VoiceInfo("5.ogg", "female", "CC-BY-3.0 (gcin-voice 5.ogg, ChionMeilin with the vocal source from "
                                          "Chu Lo; attribution required)"),
}
DEFAULT_VOICE = "gcin3"

# seconds of silence for a break in the text
_PAUSES = {"、": 0.12, "，": 0.22, ",": 0.22, "；": 0.26, ";": 0.26, "：": 0.22, ":": 0.22, "。": 0.38, ".": 0.38,
           "！": 0.38, "!": 0.38, "？": 0.38, "?": 0.38, "…": 0.38, "—": 0.2, "\n": 0.38, " ": 0.08}
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z][A-Za-z'’]*")
_OVERLAP_S = 0.03
_TARGET_RMS_DB = -20.0
_WORD_GAP_S = 0.04
_FADE_IN_S = 0.005


class Syllable(BaseModel):
    """One spoken syllable: which characters it reads (source offsets), its pinyin after sandhi, where it sits."""

    text: str
    pinyin: str
    zhuyin: str = ""
    src_start: int
    src_end: int
    start_s: float = 0.0
    end_s: float = 0.0


class ZhVoiceResult(BaseModel):
    path: Path
    duration_s: float
    voice: str
    licence: str
    syllables: list[Syllable]
    skipped: list[str] = Field(default_factory=list, description="Latin words and characters not spoken")
    notes: list[str] = Field(default_factory=list)


# --- availability ----------------------------------------------------------------------------------------------
def voice_dir() -> Path | None:
    """The installed gcin-voice syllable directory, if any."""
    for d in OGG_DIRS:
        if (d / "ㄇㄚ" / "3.ogg").is_file():
            return d
    return None


def available(voice: str = DEFAULT_VOICE) -> bool:
    d = voice_dir()
    return d is not None and voice in VOICES and (d / "ㄇㄚ" / VOICES[voice].file).is_file()


@lru_cache(maxsize=4)
def _inventory(d: Path, file: str) -> frozenset[str]:
    return frozenset(p.name for p in d.iterdir() if (p / file).is_file())


# --- numbers ---------------------------------------------------------------------------------------------------
_NUMERAL_CTX = set("零一二三四五六七八九十百千万亿两第")


def apply_sandhi(chars: list[str], tones: list[str]) -> list[str]:
    """Tone sandhi over one phrase (no pause inside). `tones` are pypinyin TONE3 syllables (neutral = 5).

    一: tone 1 at the phrase end, after 第/numerals, before digits and in 买一送一; neutral in 看一看; 2 before a
    4th tone; 4 otherwise. 不: 2 before a 4th tone, neutral in 好不好. Then 3-3 → 2-3 over every run of 3rd tones
    (所有 3rd tones but the run's last become 2nd)."""
    out = list(tones)
    n = len(out)
    for i, ch in enumerate(chars):
        if ch not in "一不":
            continue
        prev = chars[i - 1] if i else ""
        nxt = chars[i + 1] if i + 1 < n else ""
        nxt_tone = _tone(tones[i + 1]) if i + 1 < n else 0
        base = "yi" if ch == "一" else "bu"
        if not nxt:
            tone = 1 if ch == "一" else 4
        elif prev and prev == nxt and prev not in _NUMERAL_CTX:
            tone = 5  # X一X, X不X
        elif ch == "一" and (prev in _NUMERAL_CTX or nxt in _DIG or (i + 2 < n and chars[i + 2] == "一")):
            tone = 1
        elif nxt_tone == 4:
            tone = 2
        else:
            tone = 4
        out[i] = f"{base}{tone}"
    i = 0
    while i < n:
        if _tone(out[i]) == 3:
            j = i
            while j + 1 < n and _tone(out[j + 1]) == 3:
                j += 1
            for k in range(i, j):
                out[k] = out[k][:-1] + "2"
            i = j + 1
        else:
            i += 1
    return out


def _tone(syl: str) -> int:
    return int(syl[-1]) if syl and syl[-1] in "12345" else 0


_INITIALS = {"zh": "ㄓ", "ch": "ㄔ", "sh": "ㄕ", "b": "ㄅ", "p": "ㄆ", "m": "ㄇ", "f": "ㄈ", "d": "ㄉ", "t": "ㄊ",
             "n": "ㄋ", "l": "ㄌ", "g": "ㄍ", "k": "ㄎ", "h": "ㄏ", "j": "ㄐ", "q": "ㄑ", "x": "ㄒ", "r": "ㄖ",
             "z": "ㄗ", "c": "ㄘ", "s": "ㄙ"}
_FINALS = {"a": "ㄚ", "o": "ㄛ", "e": "ㄜ", "ê": "ㄝ", "ai": "ㄞ", "ei": "ㄟ", "ao": "ㄠ", "ou": "ㄡ", "an": "ㄢ",
           "en": "ㄣ", "ang": "ㄤ", "eng": "ㄥ", "er": "ㄦ", "i": "ㄧ", "ia": "ㄧㄚ", "io": "ㄧㄛ", "ie": "ㄧㄝ",
           "iai": "ㄧㄞ", "iao": "ㄧㄠ", "iou": "ㄧㄡ", "ian": "ㄧㄢ", "in": "ㄧㄣ", "iang": "ㄧㄤ", "ing": "ㄧㄥ",
           "u": "ㄨ", "ua": "ㄨㄚ", "uo": "ㄨㄛ", "uai": "ㄨㄞ", "uei": "ㄨㄟ", "uan": "ㄨㄢ", "uen": "ㄨㄣ",
           "uang": "ㄨㄤ", "ueng": "ㄨㄥ", "ong": "ㄨㄥ", "v": "ㄩ", "ve": "ㄩㄝ", "van": "ㄩㄢ", "vn": "ㄩㄣ",
           "iong": "ㄩㄥ"}
_YW = {"yi": "i", "ya": "ia", "yo": "io", "ye": "ie", "yai": "iai", "yao": "iao", "you": "iou", "yan": "ian",
       "yin": "in", "yang": "iang", "ying": "ing", "yong": "iong", "yu": "v", "yue": "ve", "yuan": "van",
       "yun": "vn", "wu": "u", "wa": "ua", "wo": "uo", "wai": "uai", "wei": "uei", "wan": "uan", "wen": "uen",
       "wang": "uang", "weng": "ueng"}
_GCIN_TONE = {1: "", 2: "2", 3: "3", 4: "4", 5: "1"}  # gcin names the neutral tone 1 and the 1st tone nothing


def pinyin_to_zhuyin(syl: str) -> str:
    """TONE3 pinyin → gcin's directory name: ni3 → ㄋㄧ3, zhi1 → ㄓ, de5 → ㄉㄜ1, lv4 → ㄌㄩ4, yong3 → ㄩㄥ3."""
    tone = _tone(syl) or 5
    body = syl.rstrip("12345").lower().replace("ü", "v").replace("u:", "v")
    if body in ("m", "n", "ng", "hm", "hng"):
        raise InputError(f"zhvoice: no recording for interjection {syl!r}")
    if body in _YW:
        ini, fin = "", _YW[body]
    elif body in ("ê", "ei", "er") or body in _FINALS:
        ini, fin = "", body
    else:
        ini = next((k for k in ("zh", "ch", "sh") if body.startswith(k)), body[:1])
        if ini not in _INITIALS:
            raise InputError(f"zhvoice: not a pinyin syllable: {syl!r}")
        fin = body[len(ini):]
        if ini in "jqx" and fin.startswith("u"):
            fin = "v" + fin[1:]
        fin = {"iu": "iou", "ui": "uei", "un": "uen"}.get(fin, fin)
        if fin == "i" and ini in ("zh", "ch", "sh", "r", "z", "c", "s"):
            fin = ""  # the "empty rhyme" of zhi/chi/shi/ri/zi/ci/si
    if fin and fin not in _FINALS:
        raise InputError(f"zhvoice: not a pinyin syllable: {syl!r}")
    return (_INITIALS.get(ini, "") + (_FINALS[fin] if fin else "")) + _GCIN_TONE[tone]


_FALLBACK_TONES = {1: (1, 4, 2, 3, 5), 2: (2, 1, 3, 4, 5), 3: (3, 2, 4, 1, 5), 4: (4, 1, 2, 3, 5),
                   5: (5, 1, 4, 2, 3)}


def _lookup(zhuyin_base: str, tone: int, have: frozenset[str]) -> tuple[str, int] | None:
    for t in _FALLBACK_TONES[tone]:
        name = zhuyin_base + _GCIN_TONE[t]
        if name in have:
            return name, t
    return None


@dataclass
class _Token:
    kind: str  # "syl" | "pause" | "skip"
    text: str
    src: tuple[int, int]
    pinyin: str = ""
    pause_s: float = 0.0
    word_start: bool = False


def _nfkc(text: str) -> str:
    """Full-width digits/letters/punctuation to plain ones, one character for one, so source offsets still hold."""
    out = []
    for c in text:
        n = unicodedata.normalize("NFKC", c)
        out.append(n if len(n) == 1 else c)
    return "".join(out)


def _word_starts(text: str, words: list[str] | None) -> set[int]:
    """Source offsets where a word begins (words located left to right; unknown ones ignored)."""
    starts: set[int] = set()
    pos = 0
    for w in words or []:
        at = text.find(w, pos)
        if at >= 0:
            starts.add(at)
            pos = at + len(w)
    return starts


def plan(text: str, words: list[str] | None = None) -> list[_Token]:
    """Text → spoken syllables (after numbers, polyphones and sandhi), pauses and skipped pieces. `words` (a
    segmentation of `text`, e.g. jieba's) marks where a short gap may go between syllables."""
    from pypinyin import Style, lazy_pinyin

    text = _nfkc(text)
    starts = _word_starts(text, [_nfkc(w) for w in words] if words else None)
    chars: list[tuple[str, int, int]] = []
    for piece, a, b in _pieces(text):
        chars.extend((c, a, b) for c in piece)
    toks: list[_Token] = []
    i = 0
    while i < len(chars):
        c, a, b = chars[i]
        if _HAN.match(c):
            j = i
            while j < len(chars) and _HAN.match(chars[j][0]):
                j += 1
            run = chars[i:j]
            s = "".join(x[0] for x in run)
            py = lazy_pinyin(s, style=Style.TONE3, neutral_tone_with_five=True)
            if len(py) != len(run):  # a character outside pypinyin's table: read one by one
                py = [lazy_pinyin(x[0], style=Style.TONE3, neutral_tone_with_five=True)[0] for x in run]
            for k, ((ch, sa, sb), p) in enumerate(zip(run, py, strict=True)):
                if _tone(p):
                    first = k == 0 or run[k - 1][1] != sa  # first syllable read from this source span
                    toks.append(_Token("syl", ch, (sa, sb), pinyin=p, word_start=first and sa in starts))
                else:
                    toks.append(_Token("skip", ch, (sa, sb)))
            i = j
        elif (m := _LATIN.match("".join(x[0] for x in chars[i:i + 64]))) is not None:
            n = len(m.group(0))
            toks.append(_Token("skip", m.group(0), (a, chars[i + n - 1][2]), pause_s=_PAUSES[" "]))
            i += n
        else:
            if c in _PAUSES or c.isspace():
                pause = _PAUSES.get(c, _PAUSES[" "])
                if toks and toks[-1].kind == "pause":
                    toks[-1].pause_s = max(toks[-1].pause_s, pause)
                else:
                    toks.append(_Token("pause", c, (a, b), pause_s=pause))
            i += 1
    # sandhi per phrase: runs of syllables not broken by a pause or a skipped word
    k = 0
    while k < len(toks):
        if toks[k].kind != "syl":
            k += 1
            continue
        e = k
        while e < len(toks) and toks[e].kind == "syl":
            e += 1
        run_t = toks[k:e]
        for t, p in zip(run_t, apply_sandhi([t.text for t in run_t], [t.pinyin for t in run_t]), strict=True):
            t.pinyin = p
        k = e
    return toks


# --- audio -----------------------------------------------------------------------------------------------------
_decoded: dict[str, np.ndarray] = {}
_dec_lock = threading.Lock()


def _decode(paths: list[Path], sr: int, ffmpeg: str) -> dict[str, np.ndarray]:
    """Decode every syllable file not yet in memory with ONE ffmpeg process (mono float32 at `sr`)."""
    keys = {str(p): p for p in paths}
    with _dec_lock:
        todo = [p for k, p in keys.items() if f"{k}@{sr}" not in _decoded]
    if todo:
        with tempfile.TemporaryDirectory(prefix="zhvoice-") as td:
            args: list[str] = []
            for p in todo:
                args += ["-i", str(p)]
            for n, _ in enumerate(todo):
                args += ["-map", f"{n}:a", "-ac", "1", "-ar", str(sr), "-f", "f32le", f"{td}/{n}.raw"]
            run_ffmpeg(args, what="zhvoice: decoding gcin syllables", ffmpeg=ffmpeg)
            with _dec_lock:
                if len(_decoded) > 3000:
                    _decoded.clear()
                for n, p in enumerate(todo):
                    _decoded[f"{p}@{sr}"] = _condition(np.fromfile(f"{td}/{n}.raw", dtype=np.float32), sr)
    with _dec_lock:
        return {k: _decoded[f"{k}@{sr}"] for k in keys}


def _condition(x: np.ndarray, sr: int) -> np.ndarray:
    """Trim leading/trailing silence (-40 dB of the peak frame, 10 ms kept) and set the voiced RMS to -20 dBFS."""
    hop = max(1, sr // 100)
    n = len(x) // hop
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)) + 1e-9
    db = 20 * np.log10(rms / rms.max())
    on = np.nonzero(db > -40)[0]
    a, b = max(0, (on[0] - 1) * hop), min(len(x), (on[-1] + 2) * hop)
    y = x[a:b].astype(np.float32)
    loud = rms[db > -20]
    level = float(np.sqrt(np.mean(loud**2))) if len(loud) else float(rms.max())
    return (y * (10 ** (_TARGET_RMS_DB / 20) / max(level, 1e-6))).astype(np.float32)


def _shape(x: np.ndarray, sr: int) -> np.ndarray:
    """Raised-cosine edges: a 5 ms fade-in (a longer one swallowed plosive bursts: 下单 was heard 下安) and a
    fade-out as long as the overlap with the next syllable."""
    y = x.copy()
    fi = min(int(sr * _FADE_IN_S), len(y) // 3)
    fo = min(int(sr * _OVERLAP_S), len(y) // 3)
    if fi > 1:
        y[:fi] *= (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fi))).astype(np.float32)
    if fo > 1:
        y[-fo:] *= (0.5 + 0.5 * np.cos(np.linspace(0, np.pi, fo))).astype(np.float32)
    return y


def synthesize(text: str, dest: Path, *, voice: str = DEFAULT_VOICE, sample_rate: int = SAMPLE_RATE,
               target_s: float | None = None, words: list[str] | None = None,
               ffmpeg: str = "ffmpeg") -> ZhVoiceResult:
    """Speak `text` into a mono 16-bit WAV at `dest`. `target_s` time-stretches (pitch kept, ffmpeg atempo,
    0.5×–2×) to fit a slot. No gcin-voice or nothing speakable → ToolMissingError / InputError."""
    if voice not in VOICES:
        raise InputError(f"zhvoice: unknown voice {voice!r} (have {', '.join(VOICES)})")
    d = voice_dir()
    if d is None or not available(voice):
        raise ToolMissingError("gcin-voice syllables not installed (apt-get install gcin-voice)")
    info = VOICES[voice]
    have = _inventory(d, info.file)
    toks = plan(text, words)
    skipped = [t.text for t in toks if t.kind == "skip"]
    notes: list[str] = []
    files: list[Path] = []
    syl_info: list[tuple[_Token, str]] = []  # (token, zhuyin dir)
    syl_toks = [t for t in toks if t.kind == "syl"]
    for t in syl_toks:
        try:
            z = pinyin_to_zhuyin(t.pinyin)
        except InputError:
            skipped.append(t.text)
            t.kind = "skip"
            continue
        base, tone = z.rstrip("1234"), _tone(t.pinyin)
        hit = _lookup(base, tone, have)
        if hit is None:
            skipped.append(t.text)
            t.kind = "skip"
            notes.append(f"no recording of {t.pinyin} ({t.text}) in {voice}; skipped")
            continue
        if hit[1] != tone:
            notes.append(f"{t.pinyin} ({t.text}) read with tone {hit[1]}: {voice} has no tone-{tone} recording")
        files.append(d / hit[0] / info.file)
        syl_info.append((t, hit[0]))
    if not files:
        raise InputError(f"zhvoice: nothing speakable in {text!r} (Latin words are skipped)")
    audio = _decode(files, sample_rate, ffmpeg)
    edge = int(sample_rate * 0.05)
    ov = int(sample_rate * _OVERLAP_S)
    pieces: list[tuple[int, np.ndarray]] = []
    syllables: list[Syllable] = []
    cursor, pending, prev_syl = edge, 0.0, False
    placed = iter(zip(syl_info, files, strict=True))
    for t in toks:
        if t.kind != "syl":
            pending = max(pending, t.pause_s)  # a pause only counts once speech follows it (no trailing silence)
            continue
        (tok, zname), f = next(placed)
        y = _shape(audio[str(f)], sample_rate)
        if pending and syllables:
            start = cursor + int(sample_rate * pending)
        elif prev_syl and tok.word_start:
            start = cursor + int(sample_rate * _WORD_GAP_S)
        elif prev_syl:
            start = max(0, cursor - ov)
        else:
            start = cursor
        pieces.append((start, y))
        syllables.append(Syllable(text=tok.text, pinyin=tok.pinyin, zhuyin=zname, src_start=tok.src[0],
                                  src_end=tok.src[1], start_s=start / sample_rate,
                                  end_s=(start + len(y)) / sample_rate))
        cursor, pending, prev_syl = start + len(y), 0.0, True
    total = cursor + edge
    out = np.zeros(total, dtype=np.float32)
    for s, y in pieces:
        out[s:s + len(y)] += y
    peak = float(np.abs(out).max())
    if peak > 0.97:
        out *= 0.97 / peak
    dest.parent.mkdir(parents=True, exist_ok=True)
    _write(dest, out, sample_rate)
    duration = total / sample_rate
    if target_s:
        factor = duration / target_s
        clamped = min(2.0, max(0.5, factor))
        if clamped != factor:
            notes.append(f"time-stretch {factor:.2f}x clamped to {clamped:.2f}x to stay intelligible")
        tmp = dest.with_name(dest.name + ".tempo.wav")
        run_ffmpeg(["-i", str(dest), "-filter:a", f"atempo={clamped:.4f}", "-ac", "1", "-ar", str(sample_rate),
                    "-c:a", "pcm_s16le", str(tmp)], what="zhvoice: time-stretch", ffmpeg=ffmpeg)
        shutil.move(str(tmp), dest)
        for sy in syllables:
            sy.start_s, sy.end_s = sy.start_s / clamped, sy.end_s / clamped
        duration = duration / clamped
    for sy in syllables:
        sy.start_s, sy.end_s = round(sy.start_s, 3), round(sy.end_s, 3)
    if skipped:
        notes.append("not spoken: " + " ".join(skipped))
    return ZhVoiceResult(path=dest, duration_s=round(duration, 3), voice=voice, licence=info.licence,
                         syllables=syllables, skipped=skipped, notes=notes)


def _write(path: Path, x: np.ndarray, sr: int) -> None:
    pcm = np.clip(x * 32767.0, -32768, 32767).astype(np.int16)
    tmp = path.with_name(path.name + ".part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    tmp.replace(path)
