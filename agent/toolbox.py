"""The media tools the agent calls (TTS, speech check, music, render), behind one seam.

Each call imports its tool module lazily: the tools are heavy; a missing tool is a ToolMissingError that the node
records as a warning (the ad still renders, e.g. captions without voiceover).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutpilot.errors import CutpilotError, ToolMissingError
from cutpilot.settings import Settings
from cutpilot.storyboard import ClipChoice
from cutpilot.timeline import Timeline


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ToolMissingError(f"{module} is not available: {e}") from None


@dataclass(frozen=True)
class SpeechVerdict:
    """Whether the recogniser recovered the words meant to be heard (error: CER for zh, WER for en)."""

    ok: bool
    error: float
    heard: str
    threshold: float

    def record(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": round(self.error, 3), "heard": self.heard[:200],
                "threshold": self.threshold}


class Toolbox:
    """Real tools by default; tests may subclass to count calls."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def tts(self, text: str, *, lang: str, out_dir: Path) -> Any:
        self._count("tts")
        return _need("tools.tts").tts(text, lang=lang, settings=self.settings, out_dir=out_dir)

    def voice_pace(self, lang: str) -> float | None:
        """Units per second the voice for `lang` speaks (None: the planner's budget holds)."""
        try:
            pace = _need("tools.tts").pace(lang, self.settings)
            return float(pace) if pace is not None else None
        except ToolMissingError:
            return None

    def check_speech(self, path: Path, text: str, *, lang: str, vocabulary: list[str] | None = None
                     ) -> SpeechVerdict | None:
        """ASR round trip of a take against its text (cached by content); None when the check cannot run.
        `vocabulary`: the product's names, which the recogniser is told (a viewer reads them on screen)."""
        if not getattr(self.settings, "voice_check", True):
            return None
        self._count("check_speech")
        try:
            r = _need("tools.voicecheck").check_speech(path, text, lang, self.settings,
                                                       cache_dir=self.settings.home / "voice-checks",
                                                       vocabulary=vocabulary or [])
        except CutpilotError:
            return None
        return SpeechVerdict(ok=bool(r.ok), error=float(r.error), heard=str(r.heard), threshold=float(r.threshold))

    def hear_clip(self, choice: ClipChoice, lang: str, vocabulary: list[str] | None = None) -> SpeechVerdict | None:
        """The same check on a clip's own speech: its audio range cut to a WAV (cached), against its transcript."""
        if not getattr(self.settings, "voice_check", True) or not choice.source or choice.start is None:
            return None
        from cutpilot.media import run_ffmpeg

        end = choice.end if choice.end is not None else choice.start + 10
        key = hashlib.sha256(f"{choice.source}|{choice.start}|{end}".encode()).hexdigest()[:20]
        wav = self.settings.home / "voice-checks" / f"clip-{key}.wav"
        try:
            if not wav.exists():
                wav.parent.mkdir(parents=True, exist_ok=True)
                part = wav.with_suffix(".part.wav")
                run_ffmpeg(["-ss", f"{choice.start:.3f}", "-t", f"{end - choice.start:.3f}", "-i", choice.source,
                            "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(part)],
                           what="speech check: cutting clip audio", ffmpeg=self.settings.ffmpeg)
                part.replace(wav)
        except CutpilotError:
            return None
        return self.check_speech(wav, choice.transcript, lang=lang, vocabulary=vocabulary)

    def music(self, duration_s: float, mood: str, *, out_dir: Path) -> Any:
        self._count("music")
        return _need("tools.music").music_bed(duration_s, mood, settings=self.settings, out_dir=out_dir)

    def render(self, timeline: Timeline, out: Path, *, quality: str, cache_dir: Path | None) -> Any:
        self._count("render")
        return _need("tools.render").render(
            timeline, out, settings=self.settings, quality=quality, cache_dir=cache_dir
        )
