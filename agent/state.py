"""Graph state: references (ids, paths) and JSON-dumped pydantic payloads, so every checkpoint is plain data.

Payloads are stored as `model_dump(mode="json")` dicts (not live objects) because the sqlite checkpoint must be
readable by a fresh process that has nothing but the thread id; nodes validate them back on entry.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from cutpilot.models import ClipRecord


class AgentState(TypedDict, total=False):
    """What the graph checkpoints. Everything here is JSON-compatible."""

    request: str  # the raw brief text (empty when a structured brief was given)
    brief: dict[str, Any]  # cutpilot.storyboard.Brief
    storyboard: dict[str, Any]  # cutpilot.storyboard.Storyboard
    dirty_fetch: list[int]  # slot indexes whose clip must be (re)chosen
    dirty_script: list[int]  # slot indexes whose line must be (re)written
    dirty_voice: list[int]  # slot indexes whose voiceover must be re-synthesised (a user's own line, too)
    exclude: dict[str, list[str]]  # slot index (str) -> clip ids a revision ruled out
    voice: dict[str, dict[str, Any]]  # slot index (str) -> VoiceTrack
    music: dict[str, Any] | None  # MusicTrack
    timeline: dict[str, Any]  # cutpilot.timeline.Timeline
    run: dict[str, Any]  # agent.runrecord.RunRecord
    mode: Literal["chat", "batch"]
    out_dir: str
    render: bool
    quality: Literal["draft", "standard", "high"]
    approved: bool
    answered: bool  # the last answer was settled at once (refused, or a lock): review again, nothing re-planned
    pending_revision: str | None
    outputs: dict[str, str]


class VoiceTrack(BaseModel):
    """A synthesised voiceover line bound to one slot (provenance kept for run.json)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    duration_s: float
    text: str
    provider: str
    lang: str


class MusicTrack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    mood: str
    provider: str = "offline"


class Candidate(BaseModel):
    """One search result as the planner sees it: the record plus its scores."""

    model_config = ConfigDict(extra="forbid")
    clip: ClipRecord
    score: float  # ranking score (fused)
    relevance: float = 0.0  # absolute match quality (dense cosine when the store gives one): the gap threshold
    scores: dict[str, float] = Field(default_factory=dict)
