"""What the studio shows: plain pydantic views shared by the pages and the REST API (JSON out as they are)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

JobStatus = Literal["queued", "running", "done", "failed"]
AdStatus = Literal["planning", "review", "rendering", "done", "failed"]


class ClipView(BaseModel):
    """One library clip as the studio lists it (URLs point at the studio's own media routes)."""

    clip_id: str
    source: str
    start: float
    end: float
    duration: float
    content_type: str
    content_type_label: str | None = None
    format: list[str] = Field(default_factory=list)
    format_labels: list[str] = Field(default_factory=list)
    product: str | None = None
    language: str | None = None
    transcript: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    trend_tags: list[str] = Field(default_factory=list)
    verified: list[str] = Field(default_factory=list)
    generated: bool = False
    has_audio: bool = True
    media_url: str
    thumbnail_url: str | None = None
    score: float | None = None


class JobView(BaseModel):
    """A background job from the ledger: survives a page reload and a server restart."""

    job_id: str
    kind: str
    status: JobStatus
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    message: str = ""
    result: dict[str, Any] = Field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0


class MessageView(BaseModel):
    role: Literal["user", "studio"]
    text: str
    applied: bool | None = None


class ShotView(BaseModel):
    """One storyboard slot with its clip and the alternates the reviewer may swap in."""

    index: int
    role: str
    seconds: float
    line: str = ""
    line_source: str = "voiceover"
    overlay: str = ""
    locked: bool = False
    clip: ClipView | None = None
    asset_kind: str | None = None
    generated: bool = False
    alternates: list[ClipView] = Field(default_factory=list)


class AdView(BaseModel):
    ad_id: str
    status: AdStatus
    brief: str
    storyboard: dict[str, Any] | None = None
    shots: list[ShotView] = Field(default_factory=list)
    messages: list[MessageView] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    preview_url: str | None = None
    brain: str | None = None
    error: str | None = None
    job_id: str | None = None
    total_s: float | None = None
    warnings: list[str] = Field(default_factory=list)
    created: float = 0.0


class ReviseView(BaseModel):
    """The answer to a revision: applied and shown, or refused with the reason and what would work instead."""

    applied: bool
    message: str = ""
    storyboard: dict[str, Any] | None = None
    kind: str | None = None
    alternatives: list[str] = Field(default_factory=list)


class VariantView(BaseModel):
    variant_id: str
    name: str
    status: Literal["queued", "running", "done", "failed", "skipped"]
    thumbnail_url: str | None = None
    duration_s: float | None = None
    approved: bool | None = None
    files: dict[str, str] = Field(default_factory=dict)
    error: str | None = None


class BatchView(BaseModel):
    batch_id: str
    status: JobStatus
    variants: list[VariantView] = Field(default_factory=list)
    job_id: str | None = None
    message: str = ""
    created: float = 0.0
