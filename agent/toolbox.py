"""The media tools the agent calls (TTS, music, image-to-video, render), behind one seam.

Each call imports its tool module lazily: the tools are other engineers' modules and heavy; a missing tool is a
ToolMissingError that the node records as a warning (the ad still renders, e.g. captions without voiceover).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cutpilot.errors import ToolMissingError
from cutpilot.settings import Settings
from cutpilot.timeline import Timeline


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ToolMissingError(f"{module} is not available: {e}") from None


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

    def music(self, duration_s: float, mood: str, *, out_dir: Path) -> Any:
        self._count("music")
        return _need("tools.music").music_bed(duration_s, mood, settings=self.settings, out_dir=out_dir)

    def render(self, timeline: Timeline, out: Path, *, quality: str, cache_dir: Path | None) -> Any:
        self._count("render")
        return _need("tools.render").render(
            timeline, out, settings=self.settings, quality=quality, cache_dir=cache_dir
        )
