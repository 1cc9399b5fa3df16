"""The clip record and its taxonomies: the shape of everything stored in the clip library.

Label sets follow the practitioners' records (see shared domain notes); Chinese names are accepted as aliases
because the users write in Chinese.
"""

from __future__ import annotations

import hashlib
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from cutpilot.errors import InputError

SCHEMA_VERSION = 1
_NS = uuid.UUID("6f1f8a52-33c4-4d8e-9a43-2c1e5b7f0c11")


class ContentType(StrEnum):
    pain_point = "pain_point"
    product_intro = "product_intro"
    brand_intro = "brand_intro"
    feature_demo = "feature_demo"
    spokesperson_shows_product = "spokesperson_shows_product"
    social_proof = "social_proof"
    usage_demo = "usage_demo"
    offer_cta = "offer_cta"
    other = "other"


class ClipFormat(StrEnum):
    live_action = "live_action"
    effects_animation = "effects_animation"
    livestream = "livestream"
    product_still = "product_still"
    ugc = "ugc"
    screen_recording = "screen_recording"
    product_display = "product_display"
    model_showcase = "model_showcase"
    brand_film = "brand_film"


CONTENT_TYPE_ALIASES: dict[str, ContentType] = {
    "痛点描述": ContentType.pain_point, "痛点": ContentType.pain_point, "pain point": ContentType.pain_point,
    "产品介绍": ContentType.product_intro, "product intro": ContentType.product_intro,
    "品牌介绍": ContentType.brand_intro, "brand intro": ContentType.brand_intro,
    "产品特性展示": ContentType.feature_demo, "功能展示": ContentType.feature_demo,
    "feature demo": ContentType.feature_demo, "product feature demo": ContentType.feature_demo,
    "代言人展示产品": ContentType.spokesperson_shows_product,
    "spokesperson shows product": ContentType.spokesperson_shows_product,
    "用户评价": ContentType.social_proof, "口碑": ContentType.social_proof, "社会认同": ContentType.social_proof,
    "social proof": ContentType.social_proof,
    "使用演示": ContentType.usage_demo, "使用方法": ContentType.usage_demo, "usage demo": ContentType.usage_demo,
    "优惠": ContentType.offer_cta, "促销": ContentType.offer_cta, "行动号召": ContentType.offer_cta,
    "优惠/行动号召": ContentType.offer_cta, "offer": ContentType.offer_cta, "cta": ContentType.offer_cta,
    "call to action": ContentType.offer_cta, "offer / call to action": ContentType.offer_cta,
    "其他": ContentType.other,
}

FORMAT_ALIASES: dict[str, ClipFormat] = {
    "真人演绎": ClipFormat.live_action, "live action": ClipFormat.live_action,
    "特效动画": ClipFormat.effects_animation, "动画": ClipFormat.effects_animation,
    "animation": ClipFormat.effects_animation, "effects animation": ClipFormat.effects_animation,
    "直播切片": ClipFormat.livestream, "直播": ClipFormat.livestream,
    "产品静物": ClipFormat.product_still, "白底图": ClipFormat.product_still, "packshot": ClipFormat.product_still,
    "product still": ClipFormat.product_still,
    "用户原创": ClipFormat.ugc, "录屏": ClipFormat.screen_recording, "screen recording": ClipFormat.screen_recording,
    "产品展示": ClipFormat.product_display, "产品展示切片": ClipFormat.product_display,
    "product display": ClipFormat.product_display, "product demo": ClipFormat.product_display,
    "模特展示": ClipFormat.model_showcase, "模特展示切片": ClipFormat.model_showcase,
    "model showcase": ClipFormat.model_showcase, "model shot": ClipFormat.model_showcase,
    "品牌视频": ClipFormat.brand_film, "品牌视频切片": ClipFormat.brand_film, "品牌片": ClipFormat.brand_film,
    "brand film": ClipFormat.brand_film, "brand video": ClipFormat.brand_film,
    "直播间": ClipFormat.livestream,
}


def _norm(s: str) -> str:
    return " ".join(s.strip().lower().replace("-", " ").replace("_", " ").split())


def lookup_content_type(value: str) -> ContentType | None:
    """The content type a name or alias means exactly, or None (a team's own word is not an error here)."""
    raw = value.strip()
    key = _norm(raw)
    for ct in ContentType:
        if key == _norm(ct.value):
            return ct
    for alias, ct in CONTENT_TYPE_ALIASES.items():
        if raw == alias or key == _norm(alias):
            return ct
    return None


def lookup_format(value: str) -> ClipFormat | None:
    """The format a name or alias means exactly, or None."""
    raw = value.strip()
    key = _norm(raw)
    match = next((f for f in ClipFormat if key == _norm(f.value)), None)
    if match is None:
        match = next((f for a, f in FORMAT_ALIASES.items() if raw == a or key == _norm(a)), None)
    return match


def format_items(value: str | list[Any]) -> list[Any]:
    """The items of a format value: a list as is, a '、'/','/'+'-joined string split into its words."""
    if not isinstance(value, str):
        return list(value)
    for sep in ("、", "，", "+", "|", ";", "/"):
        value = value.replace(sep, ",")
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_content_type(value: str | ContentType) -> ContentType:
    """Accept the enum value, an English phrase or a Chinese alias; reject anything else clearly."""
    if isinstance(value, ContentType):
        return value
    ct = lookup_content_type(value)
    if ct is not None:
        return ct
    choices = ", ".join(c.value for c in ContentType)
    raise InputError(f"unknown content type {value!r}; use one of: {choices} (or a Chinese alias)")


def parse_formats(value: str | ClipFormat | list[Any] | None) -> list[ClipFormat]:
    """Formats may be one value, a list, or a '、'/','/'+'-joined string such as '真人演绎、特效动画'."""
    if value is None or value == "":
        return []
    if isinstance(value, ClipFormat):
        return [value]
    out: list[ClipFormat] = []
    for item in format_items(value):
        if isinstance(item, ClipFormat):
            fmt = item
        else:
            match = lookup_format(str(item))
            if match is None:
                choices = ", ".join(f.value for f in ClipFormat)
                raise InputError(f"unknown format {item!r}; use one of: {choices} (or a Chinese alias)")
            fmt = match
        if fmt not in out:
            out.append(fmt)
    return out


class Word(BaseModel):
    """One ASR word with its timing in seconds relative to the *source* file."""

    model_config = ConfigDict(extra="forbid")
    text: str
    start: float
    end: float
    prob: float = 1.0


Tri = Literal["yes", "no", "unknown"]


class VisualFacts(BaseModel):
    """Measured facts about the picture, the offline basis of the description."""

    model_config = ConfigDict(extra="forbid")
    faces: int = 0
    largest_face_ratio: float = 0.0
    shot_size: Literal["close_up", "medium", "wide", "full_body", "none"] = "none"
    dominant_colors: list[str] = Field(default_factory=list)
    brightness: float = 0.0
    motion: float = 0.0
    ocr_text: str = ""
    white_background: bool = False
    subject_center: tuple[float, float] | None = None
    # picture attributes: "unknown" when the measures do not support an answer (and on records made before them)
    person: Tri = "unknown"
    hands: Tri = "unknown"
    plain_background: Tri = "unknown"
    text: Tri = "unknown"
    screen: Tri = "unknown"
    setting: Literal["indoor", "outdoor", "unknown"] = "unknown"
    night: Tri = "unknown"
    underwater: Tri = "unknown"
    animation: Tri = "unknown"


LabelSource = Literal["human", "llm", "offline", "generated"]

# Fields that a human may set and that re-ingest must never overwrite once verified.
EDITABLE_FIELDS = (
    "content_type", "format", "product", "transcript", "description", "tags", "trend_tags", "language",
)


class ClipRecord(BaseModel):
    """One clip of the library: structured text (what the planner reads) plus where it lives in its source."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    clip_id: str
    source: str
    source_hash: str
    start: float = Field(ge=0)
    end: float = Field(gt=0)
    language: str | None = None
    transcript: str = ""
    words: list[Word] = Field(default_factory=list)
    description: str = ""
    visual: VisualFacts | None = None
    content_type: ContentType = ContentType.other
    format: list[ClipFormat] = Field(default_factory=list)
    content_type_label: str | None = Field(
        default=None, max_length=200, description="the team's own word for the content type, as they wrote it")
    format_labels: list[str] = Field(default_factory=list, description="the team's own words for the format")
    product: str | None = None
    tags: list[str] = Field(default_factory=list, description="stable tags: efficacy, category, quality")
    trend_tags: list[str] = Field(default_factory=list, description="trend tags, in the speakers' own words")
    label_source: LabelSource = "offline"
    label_explanation: str = ""
    verified: list[str] = Field(default_factory=list, description="fields set or corrected by a human")
    keyframes: list[str] = Field(default_factory=list, description="JPEG paths (first, middle, last)")
    has_audio: bool = True
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    generated: bool = False
    provenance: dict[str, Any] | None = None
    garment: dict[str, str] = Field(
        default_factory=dict,
        description="a garment photo's attributes, or what the model in a model photo wears (tools.garments keys)")

    @field_validator("content_type", mode="before")
    @classmethod
    def _ct(cls, v: Any) -> ContentType:
        return parse_content_type(v)

    @field_validator("format", mode="before")
    @classmethod
    def _fmt(cls, v: Any) -> list[ClipFormat]:
        return parse_formats(v)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, v: float, info: Any) -> float:
        start = info.data.get("start")
        if start is not None and v <= start:
            raise ValueError(f"end ({v}) must be after start ({start})")
        return v

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration(self) -> float:
        return round(self.end - self.start, 3)

    def embed_text(self) -> str:
        """The composed record that the text vector and keyword index are built from."""
        parts = [
            self.transcript,
            self.description,
            " ".join(self.tags),
            " ".join(self.trend_tags),
            self.content_type.value.replace("_", " "),
            " ".join(f.value.replace("_", " ") for f in self.format),
            " ".join([self.content_type_label or "", *self.format_labels]).strip(),
            self.product or "",
        ]
        return "\n".join(p for p in parts if p)


def file_hash(path: str | Any, chunk: int = 1 << 20) -> str:
    """Content hash of a file (sha256, 16 hex chars): same bytes → same clips, wherever the file lives."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


def clip_id_for(source_hash: str, start: float, end: float) -> str:
    """Deterministic point id: re-ingesting the same bytes yields the same ids, so upserts never duplicate."""
    return str(uuid.uuid5(_NS, f"{source_hash}:{round(start * 1000)}:{round(end * 1000)}"))
