"""Brief and Storyboard: what the planner decides before any media is touched.

The storyboard is an ordered list of slots; each slot binds a role, a target length, what to search for, the
chosen clip (by id — code injects its times and paths) and the line spoken or captioned over it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cutpilot import limits as L
from cutpilot.models import ClipFormat, ContentType

STORYBOARD_VERSION = 1


class SlotRole(StrEnum):
    hook = "hook"
    pain_point = "pain_point"
    product_intro = "product_intro"
    feature_demo = "feature_demo"
    brand = "brand"
    spokesperson = "spokesperson"
    social_proof = "social_proof"
    offer_cta = "offer_cta"


# Which clip content types serve a role, best first.
ROLE_CONTENT_TYPES: dict[SlotRole, list[ContentType]] = {
    SlotRole.hook: [ContentType.pain_point, ContentType.spokesperson_shows_product, ContentType.product_intro],
    SlotRole.pain_point: [ContentType.pain_point],
    SlotRole.product_intro: [ContentType.product_intro, ContentType.spokesperson_shows_product],
    SlotRole.feature_demo: [ContentType.feature_demo, ContentType.usage_demo, ContentType.product_intro],
    SlotRole.brand: [ContentType.brand_intro],
    SlotRole.spokesperson: [ContentType.spokesperson_shows_product, ContentType.product_intro],
    SlotRole.social_proof: [ContentType.social_proof],
    SlotRole.offer_cta: [ContentType.offer_cta, ContentType.product_intro],
}


AngleFamily = Literal["pain", "benefit", "fun", "curiosity", "offer"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Brief(_Strict):
    """A request, parsed. Free text is kept verbatim in `text` for the record."""

    text: str = Field(default="", max_length=L.MAX_BRIEF_CHARS)
    product: str | None = Field(default=None, max_length=L.MAX_NAME_CHARS)
    angle: str | None = Field(default=None, max_length=L.MAX_NAME_CHARS,
                              description="pain point / selling angle, e.g. 侧睡纹")
    angle_family: AngleFamily | None = Field(default=None, description="what the hook leads with")
    duration_s: float = Field(default=30.0, ge=L.MIN_AD_S, le=L.MAX_AD_S)
    aspect: Literal["9:16", "1:1", "4:5", "16:9"] = "9:16"
    platform: str | None = Field(default=None, max_length=L.MAX_NAME_CHARS)
    lang: Literal["zh", "en"] = "zh"
    audience: str | None = Field(default=None, max_length=L.MAX_NAME_CHARS)
    channel: str | None = Field(default=None, max_length=L.MAX_NAME_CHARS)
    must_include: list[str] = Field(default_factory=list, max_length=L.MAX_LIST_ITEMS)
    must_avoid: list[str] = Field(default_factory=list, max_length=L.MAX_LIST_ITEMS)
    tone: str | None = Field(default=None, max_length=L.MAX_NAME_CHARS)
    formats: list[ClipFormat] = Field(default_factory=list, description="preferred footage formats")
    variant: int = Field(default=0, ge=0, le=99, description=(
        "test variant of the brief: 0 takes the top picks; k opens on the k-th best distinct hook (and, with "
        "enough footage, draws the body shots further down the ranking), within every hard rule"))


class ClipChoice(_Strict):
    clip_id: str
    score: float = 0.0
    source: str | None = None
    start: float | None = None
    end: float | None = None
    content_type: ContentType | None = None
    transcript: str = ""
    thumbnail: str | None = None


class GeneratedAsset(_Strict):
    """A gap-fill asset made by a media tool, with provenance (tool, provider, inputs)."""

    kind: Literal["card", "image_video", "background_swap", "tts", "music", "try_on", "generated_clip"]
    path: str
    tool: str
    provider: str = "offline"
    params: dict[str, Any] = Field(default_factory=dict)


class Slot(_Strict):
    index: int = Field(ge=0)
    role: SlotRole
    target_s: float = Field(gt=0)
    query: str = ""
    content_types: list[ContentType] = Field(default_factory=list)
    formats: list[ClipFormat] = Field(default_factory=list)
    product: str | None = None
    intent: str = Field(default="", description="what the narration should do here")
    line: str = Field(default="", description="voiceover / caption line bound to this slot")
    line_source: Literal["clip_audio", "voiceover", "caption"] = Field(
        default="voiceover", description="clip_audio: the clip's own speech; caption: shown, not voiced")
    overlay: str = Field(default="", description="title text drawn over this slot's footage (offer, product name)")
    chosen: ClipChoice | None = None
    alternates: list[ClipChoice] = Field(default_factory=list)
    asset: GeneratedAsset | None = None
    locked: bool = Field(default=False, description="a revision fixed this slot; don't re-fetch")
    require_product: bool = Field(default=False, description="only footage labelled with the product (never "
                                  "unlabelled clips), as a revision asked")


class Storyboard(_Strict):
    version: int = STORYBOARD_VERSION
    brief: Brief
    slots: list[Slot] = Field(min_length=1, max_length=L.MAX_SLOTS)
    music_mood: str = "upbeat"
    captions_lang: Literal["zh", "en"] | None = None
    notes: list[str] = Field(default_factory=list)
    line_budget: float = Field(default=1.0, gt=0.0, le=1.0, description="share of the speaking budget lines use")
    hook_names_product: bool = Field(default=False, description="the hook line must name the product")

    @model_validator(mode="after")
    def _indexes(self) -> Storyboard:
        for i, s in enumerate(self.slots):
            if s.index != i:
                raise ValueError(f"slot {i} has index {s.index}; slots must be numbered 0..n-1 in order")
        return self

    @property
    def total_s(self) -> float:
        return round(sum(s.target_s for s in self.slots), 3)

    def renumbered(self) -> Storyboard:
        slots = [s.model_copy(update={"index": i}) for i, s in enumerate(self.slots)]
        return self.model_copy(update={"slots": slots})
