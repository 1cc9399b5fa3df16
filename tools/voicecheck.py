"""The ASR round trip that gates a synthesised line: does the packaged Whisper hear what was meant to be said?

WHY: a voice can produce audio that is loud, well timed and meaningless (espeak-ng 1.51 `cmn` reads pinyin tone
digits: Whisper CER 1.00). Listening is the only check that catches that, and the offline recogniser is already
installed, so every voiced line is transcribed (language forced) and scored with the same CER (zh) / WER (other
languages) as the eval (`cutpilot.textmetrics`). Costs about a second per line on 2 cores, so results are cached
by content: sha256 of the audio bytes + expected text + language + model → a small JSON; a re-run is free.
Digits are read the same way on both sides first (Whisper writes 四千 as 4000, a script may say 4千).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel

from cutpilot.errors import InputError, MediaError
from cutpilot.media import run_ffmpeg
from cutpilot.settings import Settings
from cutpilot.textmetrics import error_rate
from index.asr import model_dir, transcribe

CACHE_REV = 1


class SpeechCheck(BaseModel):
    heard: str
    error: float  # CER for zh, WER otherwise
    ok: bool
    threshold: float
    cached: bool = False


def metric_lang(lang: str) -> str:
    """The language code Whisper is forced to and the metric family: zh (CER) or the base code (WER)."""
    base = lang.strip().lower().replace("_", "-").split("-")[0]
    return "zh" if base in ("zh", "cmn") else base or "en"


def threshold_for(lang: str, settings: Settings) -> float:
    return settings.voice_check_max_cer if metric_lang(lang) == "zh" else settings.voice_check_max_wer


def speech_error(expected: str, heard: str, lang: str) -> float:
    """CER (zh, digits read as Chinese numbers on both sides) or WER: the eval's metric, so both judge alike."""
    m = metric_lang(lang)
    return error_rate(expected, heard, "zh" if m == "zh" else "en")


def _to_wav16k(src: Path, dest: Path, settings: Settings) -> Path:
    run_ffmpeg(["-i", str(src), "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(dest)],
               what=f"voice check: audio from {src}", ffmpeg=settings.ffmpeg)
    return dest


def _prompt(vocabulary: list[str] | tuple[str, ...]) -> str | None:
    names = [v.strip() for v in vocabulary if v and v.strip()]
    return "、".join(dict.fromkeys(names)) or None


def transcribe_text(path: Path, lang: str, settings: Settings, vocabulary: list[str] | tuple[str, ...] = ()) -> str:
    """What Whisper hears in a WAV or a video (audio resampled to 16 kHz mono first), language forced;
    `vocabulary` (product and brand names) primes it with names no recogniser knows."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(f"voice check: {path} is missing or empty")
    with tempfile.TemporaryDirectory(prefix="cutpilot-voicecheck-") as d:
        wav = _to_wav16k(path, Path(d) / "speech.wav", settings)
        return transcribe(wav, settings, language=metric_lang(lang), vocabulary=_prompt(vocabulary)).text


def transcribe_spans(path: Path, spans_ms: list[tuple[int, int]], lang: str, settings: Settings,
                     *, pad_ms: int = 250, vocabulary: list[str] | tuple[str, ...] = ()) -> str:
    """What Whisper hears in each of the given stretches of a render, joined in order.

    WHY: a 30 s ad whose speech is a few seconds under a music bed often decodes to nothing as one window (the
    recogniser's no-speech guard fires on the music); the stretches where the ad speaks are what a viewer hears."""
    import wave

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(f"voice check: {path} is missing or empty")
    parts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cutpilot-voicecheck-") as d:
        full = _to_wav16k(path, Path(d) / "ad.wav", settings)
        with wave.open(str(full), "rb") as w:
            sr, width, frames = w.getframerate(), w.getsampwidth(), w.readframes(w.getnframes())
        total = len(frames) // width
        merged: list[tuple[int, int]] = []
        for a, b in sorted(spans_ms):  # back-to-back lines are one stretch: padding must not hear a word twice
            if merged and a - merged[-1][1] <= 2 * pad_ms:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        for k, (a, b) in enumerate(merged):
            i0 = max(0, (a - pad_ms) * sr // 1000)
            i1 = min(total, (b + pad_ms) * sr // 1000)
            if i1 - i0 < sr // 4:
                continue
            piece = Path(d) / f"span{k}.wav"
            with wave.open(str(piece), "wb") as o:
                o.setnchannels(1)
                o.setsampwidth(width)
                o.setframerate(sr)
                o.writeframes(frames[i0 * width:i1 * width])
            parts.append(transcribe(piece, settings, language=metric_lang(lang),
                                    vocabulary=_prompt(vocabulary)).text.strip())
    return ("" if metric_lang(lang) == "zh" else " ").join(p for p in parts if p)


def _model_id(settings: Settings) -> str:
    d = model_dir(settings)
    return f"{d.name}:{(d / 'model.bin').stat().st_size}"


def check_speech(path: Path, expected: str, lang: str, settings: Settings, *, cache_dir: Path,
                 vocabulary: list[str] | tuple[str, ...] = ()) -> SpeechCheck:
    """Transcribe `path` and score it against `expected`; ok when the error is at most the language's threshold
    (`voice_check_max_cer` / `voice_check_max_wer`). Cached in `cache_dir` by content."""
    path = Path(path)
    if not expected.strip():
        raise InputError("voice check: empty expected text")
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(f"voice check: {path} is missing or empty")
    m = metric_lang(lang)
    threshold = threshold_for(lang, settings)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(json.dumps([CACHE_REV, " ".join(expected.split()), m, _model_id(settings), _prompt(vocabulary)],
                        ensure_ascii=False).encode())
    key = h.hexdigest()
    cache_dir.mkdir(parents=True, exist_ok=True)
    entry = cache_dir / f"voicecheck_{key[:24]}.json"
    if entry.is_file():
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            heard, err = str(data["heard"]), float(data["error"])
            return SpeechCheck(heard=heard, error=err, ok=err <= threshold, threshold=threshold, cached=True)
        except (ValueError, KeyError, TypeError):
            pass  # a damaged entry is recomputed
    heard = transcribe_text(path, m, settings, vocabulary)
    err = round(speech_error(expected, heard, m), 4)
    tmp = entry.with_name(f"{entry.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps({"heard": heard, "error": err, "expected": expected, "lang": m,
                               "model": _model_id(settings)}, ensure_ascii=False), encoding="utf-8")
    tmp.replace(entry)
    return SpeechCheck(heard=heard, error=err, ok=err <= threshold, threshold=threshold, cached=False)
