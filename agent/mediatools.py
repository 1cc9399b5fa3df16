"""The one typed interface to the media tools: what the planner (offline or LLM) may ask for, and what comes back.

WHY a protocol of typed requests and results: the offline planner calls these methods directly, the LLM planner
calls the same methods through LangChain tools generated from the request models (tools/lc.py), and tests can
swap in a fake. Results are frozen dataclasses wrapping what each tool already returns (AssetResult and its
sidecar provenance), so no caller digs through dicts or `Any`. This module imports no tool: it stays cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from cutpilot.models import ClipRecord, ContentType

if TYPE_CHECKING:
    from agent.sources import ClipSource
    from cutpilot.storyboard import ClipChoice
    from cutpilot.timeline import BrandKit, KenBurns, Timeline
    from tools.render import RenderResult

ClothType = Literal["upper", "lower", "overall"]
Fit = Literal["crop", "blur"]
JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]


# --- results -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Provenance:
    """How an asset was made (tool, provider, params): enough to re-make or audit it (the sidecar's content)."""

    tool: str
    provider: str
    kind: str
    key: str = ""
    params: dict[str, JSON] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, p: dict[str, object]) -> Provenance:
        params = p.get("params")
        notes = p.get("notes")
        return cls(tool=str(p.get("tool", "unknown")), provider=str(p.get("provider", "unknown")),
                   kind=str(p.get("kind", "")), key=str(p.get("key", "")),
                   params=dict(params) if isinstance(params, dict) else {},
                   notes=tuple(str(n) for n in notes) if isinstance(notes, list | tuple) else ())

    def record(self) -> dict[str, object]:
        return {"tool": self.tool, "provider": self.provider, "kind": self.kind, "key": self.key,
                "params": self.params, "notes": list(self.notes)}


@dataclass(frozen=True)
class Cutout:
    """The product cut out of its photo: an RGBA PNG (alpha = mask)."""

    path: Path
    size: tuple[int, int]
    provenance: Provenance


@dataclass(frozen=True)
class Still:
    """A generated picture (the product composited into a scene)."""

    path: Path
    size: tuple[int, int]
    provenance: Provenance


@dataclass(frozen=True)
class Motion:
    """A still animated into a clip (Ken Burns offline, or an image-to-video provider)."""

    path: Path
    seconds: float
    size: tuple[int, int]
    fps: int
    provider: str
    provenance: Provenance


@dataclass(frozen=True)
class TryOnResult:
    """The model photo wearing the garment, from the configured try-on service."""

    path: Path
    size: tuple[int, int]
    cloth_type: str
    provider: str
    provenance: Provenance


@dataclass(frozen=True)
class RankedModel:
    id: str
    image: Path | None
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class TryOnRanking:
    """Model photos ranked for a garment by the matching rules, with the womenswear type and its scenes."""

    cloth_type: str
    models: tuple[RankedModel, ...]
    style: str
    scenes: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class WordTime:
    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class VoiceTake:
    """One spoken line: WAV, its length, who spoke it and word timings (aligned or estimated)."""

    path: Path
    duration_s: float
    lang: str
    voice: str
    provider: str
    timing: str
    words: tuple[WordTime, ...]
    provenance: Provenance


@dataclass(frozen=True)
class MusicBed:
    """A bed of exactly the asked length: the user's own track or a generated one (`source`)."""

    path: Path
    duration_s: float
    mood: str
    source: str
    provider: str
    provenance: Provenance


@dataclass(frozen=True)
class Card:
    """A title / CTA card PNG in brand colours."""

    path: Path
    size: tuple[int, int]
    style: str
    text: str
    subtitle: str


@dataclass(frozen=True)
class GeneratedClip:
    """A generated asset now in the clip library (searchable like ingested footage), with its provenance."""

    clip_id: str
    path: Path
    duration_s: float
    content_type: str
    product: str | None
    provenance: Provenance


@dataclass(frozen=True)
class ClipHit:
    """A library clip as the model sees it: id and text, never times or source paths."""

    clip_id: str
    content_type: str
    duration_s: float
    still: bool
    transcript: str
    description: str
    score: float


@dataclass(frozen=True)
class SpeechVerdict:
    """Whether the recogniser recovered the words meant to be heard (error: CER for zh, WER for en)."""

    ok: bool
    error: float
    heard: str
    threshold: float

    def record(self) -> dict[str, object]:
        return {"ok": self.ok, "error": round(self.error, 3), "heard": self.heard[:200],
                "threshold": self.threshold}


Result = Cutout | Still | Motion | TryOnResult | TryOnRanking | VoiceTake | MusicBed | Card | GeneratedClip


def jsonable(obj: object) -> JSON:
    """A result as plain JSON (paths as strings), for a model's tool message or run.json."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


class ClipStore(Protocol):
    """What registering a clip needs of the library (index.library.Library has it)."""

    def add(self, records: list[ClipRecord]) -> object: ...


# --- the protocol --------------------------------------------------------------------------------------------
class MediaTools(Protocol):
    """Every media tool the planner may use. agent.toolbox.Toolbox implements it over tools/*."""

    def cutout(self, image: Path, *, out_dir: Path) -> Cutout: ...

    def scene(self, image: Path, scene: str, *, size: tuple[int, int], out_dir: Path) -> Still: ...

    def image_to_video(self, image: Path, seconds: float, *, size: tuple[int, int], fps: int,
                       motion: KenBurns | None, fit: Fit, prompt: str, out_dir: Path) -> Motion: ...

    def try_on(self, garment_image: Path, model_image: Path, *, cloth_type: ClothType, out_dir: Path
               ) -> TryOnResult: ...

    def plan_try_on(self, garment: dict[str, str], models: list[ModelIn]) -> TryOnRanking: ...

    def tts(self, text: str, *, lang: str, out_dir: Path, voice: str | None = None) -> VoiceTake: ...

    def voice_pace(self, lang: str) -> float | None: ...

    def check_speech(self, path: Path, text: str, *, lang: str, vocabulary: list[str] | None = None
                     ) -> SpeechVerdict | None: ...

    def hear_clip(self, choice: ClipChoice, lang: str, vocabulary: list[str] | None = None
                  ) -> SpeechVerdict | None: ...

    def music(self, duration_s: float, mood: str, *, out_dir: Path) -> MusicBed: ...

    def card(self, text: str, *, brand: BrandKit, size: tuple[int, int], subtitle: str, style: str,
             out_dir: Path) -> Card: ...

    def register_clip(self, path: Path, *, library: ClipStore, description: str, content_type: str,
                      product: str | None) -> GeneratedClip: ...

    def render(self, timeline: Timeline, out: Path, *, quality: str, cache_dir: Path | None) -> RenderResult: ...


# --- requests: the typed inputs a model fills in (their schemas become the LangChain tools' args) ------------
@dataclass(frozen=True)
class ToolContext:
    """What a tool call gets from the program, never from the model: the tools, where assets go, the library."""

    tools: MediaTools
    out_dir: Path
    source: ClipSource | None = None
    library: ClipStore | None = None


class Request(BaseModel):
    """A tool's arguments as the model gives them; `run` calls the MediaTools method."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    def run(self, ctx: ToolContext) -> Result | list[ClipHit] | dict[str, JSON]:
        raise NotImplementedError


class ModelIn(BaseModel):
    id: str
    image: str | None = None
    wearing: dict[str, str] = Field(default_factory=dict, description="what the model wears now (garment keys)")


class CutoutRequest(Request):
    """Cut the product out of a photo: RGBA PNG with a transparent background (offline u2netp)."""

    image: str = Field(description="path of a product photo")

    def run(self, ctx: ToolContext) -> Cutout:
        return ctx.tools.cutout(Path(self.image), out_dir=ctx.out_dir)


class SceneRequest(Request):
    """Put the product from `image` into a scene: `scene` is an image path or a text prompt such as 'The Bund in
    Shanghai, with the sunset by the river.' Returns a PNG of width x height."""

    image: str
    scene: str
    width: int = Field(default=1080, ge=16, le=4096)
    height: int = Field(default=1920, ge=16, le=4096)

    def run(self, ctx: ToolContext) -> Still:
        return ctx.tools.scene(Path(self.image), self.scene, size=(self.width, self.height), out_dir=ctx.out_dir)


class MotionRequest(Request):
    """Animate a still photo into a clip (Ken Burns pan/zoom offline, or the configured image-to-video provider
    with `prompt`). fit: crop (fill the frame) or blur (whole image over a blurred copy)."""

    image: str = Field(description="a still's clip_id from search_library (\"still\": true), or an image path")
    seconds: float = Field(default=3.0, ge=0.2, le=60)
    width: int = Field(default=1080, ge=16, le=4096)
    height: int = Field(default=1920, ge=16, le=4096)
    fps: int = Field(default=30, ge=1, le=60)
    zoom_from: float = 1.0
    zoom_to: float = 1.15
    center_x_to: float = 0.5
    center_y_to: float = 0.5
    fit: Fit = "crop"
    prompt: str = ""

    def run(self, ctx: ToolContext) -> Motion:
        from cutpilot.timeline import KenBurns

        motion = KenBurns(zoom_from=self.zoom_from, zoom_to=self.zoom_to,
                          center_to=(self.center_x_to, self.center_y_to))
        return ctx.tools.image_to_video(self._image(ctx), self.seconds, size=(self.width, self.height),
                                        fps=self.fps, motion=motion, fit=self.fit, prompt=self.prompt,
                                        out_dir=ctx.out_dir)

    def _image(self, ctx: ToolContext) -> Path:
        """A library still by its id (the model never sees source paths), else the path as given."""
        if ctx.source is not None and not Path(self.image).is_file():
            from cutpilot.errors import CutpilotError

            try:
                return Path(ctx.source.get(self.image).source)
            except CutpilotError:
                pass
        return Path(self.image)


class TryOnRequest(Request):
    """Dress the model photo in the garment via the configured try-on service. cloth_type: upper, lower or
    overall (dresses). Errors if no service is configured: there is no offline try-on."""

    garment_image: str
    model_image: str
    cloth_type: ClothType = "upper"

    def run(self, ctx: ToolContext) -> TryOnResult:
        return ctx.tools.try_on(Path(self.garment_image), Path(self.model_image), cloth_type=self.cloth_type,
                                out_dir=ctx.out_dir)


class PlanTryOnRequest(Request):
    """Rank model photos for a garment by the matching rules (coat with coat, long with long, slim with slim…)
    and suggest background scenes. garment: {top_category, top_fit, top_length, sleeves, bottom_category,
    bottom_fit, bottom_length, style}; models: [{id, image, wearing: {...same keys}}]."""

    garment: dict[str, str]
    models: list[ModelIn]

    def run(self, ctx: ToolContext) -> TryOnRanking:
        return ctx.tools.plan_try_on(dict(self.garment), list(self.models))


class VoiceRequest(Request):
    """Speak a voice-over line. Returns the WAV path, duration_s and word timings (start_ms/end_ms). lang: 'en',
    'zh' or another language code. An error mentioning 'captions only' means no voice exists."""

    text: str = Field(min_length=1)
    lang: str = "en"
    voice: str | None = None

    def run(self, ctx: ToolContext) -> VoiceTake:
        return ctx.tools.tts(self.text, lang=self.lang, out_dir=ctx.out_dir, voice=self.voice)


class MusicRequest(Request):
    """A music bed of exactly duration_s seconds. mood: upbeat, calm, energetic, luxury, warm, dramatic (Chinese
    words accepted). Uses the user's music folder when it has a match, else generates one."""

    duration_s: float = Field(ge=0.5, le=600)
    mood: str = "upbeat"

    def run(self, ctx: ToolContext) -> MusicBed:
        return ctx.tools.music(self.duration_s, self.mood, out_dir=ctx.out_dir)


class CardRequest(Request):
    """A title or call-to-action card (PNG) in brand colours. style: title | cta."""

    text: str = Field(min_length=1, max_length=200)
    subtitle: str = Field(default="", max_length=200)
    style: Literal["title", "cta"] = "title"
    width: int = Field(default=1080, ge=16, le=4096)
    height: int = Field(default=1920, ge=16, le=4096)
    primary: str = "#E3342F"
    secondary: str = "#1F2937"
    text_colour: str = "#FFFFFF"

    def run(self, ctx: ToolContext) -> Card:
        from cutpilot.timeline import BrandKit

        brand = BrandKit(primary=self.primary, secondary=self.secondary, text=self.text_colour)
        return ctx.tools.card(self.text, brand=brand, size=(self.width, self.height), subtitle=self.subtitle,
                              style=self.style, out_dir=ctx.out_dir)


class ScenePromptsRequest(Request):
    """Background scene prompts for a womenswear type (formal_business, sportswear, casual, evening_party, resort,
    retro, streetwear, summer_light, bridal, autumn_winter; Chinese names accepted)."""

    style: str

    def run(self, ctx: ToolContext) -> dict[str, JSON]:
        from tools.garments import scene_prompts

        return {"style": self.style, "scenes": list(scene_prompts(self.style))}


class SearchRequest(Request):
    """Search the clip library. content_types: pain_point, product_intro, feature_demo, social_proof, usage_demo,
    offer_cta, … Returns clips (id, content type, seconds, whether it is a still, transcript, score)."""

    query: str = Field(min_length=1)
    product: str | None = None
    content_types: list[str] = Field(default_factory=list)
    limit: int = Field(default=6, ge=1, le=20)

    def run(self, ctx: ToolContext) -> list[ClipHit]:
        from cutpilot.media import IMAGE_EXTS
        from cutpilot.models import parse_content_type

        if ctx.source is None:
            from cutpilot.errors import InputError

            raise InputError("search_library: no library in this run")
        types: list[ContentType] = [parse_content_type(c) for c in self.content_types]
        found = ctx.source.find(self.query, content_types=types, formats=[], product=self.product,
                                exclude_ids=[], limit=self.limit)
        return [ClipHit(clip_id=c.clip.clip_id, content_type=c.clip.content_type.value,
                        duration_s=round(c.clip.duration, 2), still=Path(c.clip.source).suffix.lower() in IMAGE_EXTS,
                        transcript=c.clip.transcript[:80], description=c.clip.description[:80],
                        score=round(c.relevance, 3)) for c in found]


class RegisterRequest(Request):
    """Write a generated asset (video or still) into the clip library as a generated clip, keeping its provenance
    from the asset's sidecar."""

    path: str
    description: str = Field(min_length=1)
    content_type: str = "product_intro"
    product: str | None = None

    def run(self, ctx: ToolContext) -> GeneratedClip:
        if ctx.library is None:
            from cutpilot.errors import InputError

            raise InputError("register_generated_clip: no writable library in this run")
        return ctx.tools.register_clip(Path(self.path), library=ctx.library, description=self.description,
                                       content_type=self.content_type, product=self.product)


# The LangChain tool of each request (name → request model). Search and register need a library.
REQUESTS: dict[str, type[Request]] = {
    "tts": VoiceRequest, "music_bed": MusicRequest, "image_to_video": MotionRequest,
    "remove_background": CutoutRequest, "replace_background": SceneRequest, "try_on": TryOnRequest,
    "plan_try_on": PlanTryOnRequest, "scene_prompts": ScenePromptsRequest, "title_card": CardRequest,
}
LIBRARY_REQUESTS: dict[str, type[Request]] = {"search_library": SearchRequest}
STORE_REQUESTS: dict[str, type[Request]] = {"register_generated_clip": RegisterRequest}
