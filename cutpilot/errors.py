"""Typed errors. The CLI maps each to a one-line message and an exit code; `--debug` shows the traceback."""

from __future__ import annotations


class CutpilotError(Exception):
    """Base of every error the CLI reports as one line."""

    exit_code = 1

    def one_line(self) -> str:
        text = " ".join(str(self).split())
        return f"{type(self).__name__}: {text}" if text else type(self).__name__


class InputError(CutpilotError):
    """The user gave something we cannot use: unknown field, bad value, path traversal, bad brief."""

    exit_code = 2


class MediaError(CutpilotError):
    """A media file is missing, corrupt, zero-length, of an unsupported codec, or lacks a needed stream."""

    exit_code = 3


class ToolMissingError(CutpilotError):
    """A system tool (ffmpeg, ffprobe, tesseract, espeak-ng) or an optional model is not installed."""

    exit_code = 4


class StoreError(CutpilotError):
    """The clip store refused or failed an operation (incl. mixing embedding spaces)."""

    exit_code = 5


class NotFoundError(CutpilotError):
    """An id (clip, thread, case) does not exist."""

    exit_code = 6


class TimelineError(InputError):
    """A Timeline or Storyboard is impossible (zero durations, out-of-source ranges, gaps)."""


class RenderError(CutpilotError):
    """A render failed; names the failing timeline item and carries ffmpeg's last lines."""

    exit_code = 7

    def __init__(self, message: str, item_id: str | None = None, stderr_tail: str = "") -> None:
        self.item_id = item_id
        self.stderr_tail = stderr_tail
        where = f" [item {item_id}]" if item_id else ""
        tail = stderr_tail.strip().splitlines()[-1:] if stderr_tail else []
        super().__init__(f"{message}{where}" + (f" | ffmpeg: {tail[0]}" if tail else ""))


class ProviderError(CutpilotError):
    """A remote provider (LLM, TTS, image-to-video, try-on, scene generation) failed or timed out."""

    exit_code = 8


class EvalRegressionError(CutpilotError):
    """An eval scorer's mean dropped below the committed baseline minus its tolerance."""

    exit_code = 9


class ToolError(CutpilotError):
    """A media tool the planner's model called failed; its one line goes back to the model, the run continues."""

    exit_code = 10

    def __init__(self, tool: str, cause: str) -> None:
        self.tool = tool
        super().__init__(f"{tool}: {cause}")
