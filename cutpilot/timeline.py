"""The Timeline IR: the one contract between the planner and the renderer.

Times are integer milliseconds. Sources arrive at 23.976, 25, 29.97 and 30 fps and outputs at another rate, so no
single frame timebase is exact for all of them; integer ms is exact in JSON, needs no rational arithmetic in the
planner, and is rounded to output frames exactly once, in the renderer (1 ms is well under half a frame at 60 fps).

AI-generated content (GB 45438-2025): set `generated=True` (and `generator`) on every ClipItem / ImageItem whose
pixels a model made (gap-fill stills, image-to-video, try-on, scene composites) and on TTS VoiceoverItems; the
renderer then burns the visible label over those shots and writes the implicit metadata label (see AigcLabel).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cutpilot import limits as L
from cutpilot.errors import TimelineError

TIMELINE_VERSION = 1

ASPECTS: dict[str, tuple[int, int]] = {
    "9:16": (1080, 1920),
    "1:1": (1080, 1080),
    "4:5": (1080, 1350),
    "16:9": (1920, 1080),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutputSpec(_Strict):
    aspect: Literal["9:16", "1:1", "4:5", "16:9"] = "9:16"
    width: int = Field(default=1080, ge=L.MIN_SIDE_PX, le=L.MAX_SIDE_PX)
    height: int = Field(default=1920, ge=L.MIN_SIDE_PX, le=L.MAX_SIDE_PX)
    fps: int = Field(default=30, ge=L.MIN_FPS, le=L.MAX_FPS)

    @model_validator(mode="after")
    def _even(self) -> OutputSpec:
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even (H.264 yuv420p)")
        return self

    @classmethod
    def preset(cls, aspect: str, fps: int = 30, scale: float = 1.0) -> OutputSpec:
        """A platform preset; `scale` < 1 gives a smaller frame of the same shape (previews, tests)."""
        if aspect not in ASPECTS:
            raise TimelineError(f"unknown aspect {aspect!r}; use one of {', '.join(ASPECTS)}")
        w, h = ASPECTS[aspect]
        w2, h2 = int(w * scale) // 2 * 2, int(h * scale) // 2 * 2
        return cls(aspect=aspect, width=w2, height=h2, fps=fps)  # type: ignore[arg-type]


class Crossfade(_Strict):
    kind: Literal["crossfade"] = "crossfade"
    duration_ms: int = Field(gt=0, le=L.MAX_CROSSFADE_MS)


class KenBurns(_Strict):
    """Pan/zoom for stills: zoom factors ≥ 1 and the crop centre (0..1 of the image) at start and end."""

    zoom_from: float = Field(default=1.0, ge=1.0, le=4.0)
    zoom_to: float = Field(default=1.15, ge=1.0, le=4.0)
    center_from: tuple[float, float] = (0.5, 0.5)
    center_to: tuple[float, float] = (0.5, 0.5)


GENERATED_DOC = ("AI-generated or synthesised pixels (generated still, image-to-video, try-on, scene composite, "
                 "background swap): the renderer burns the visible AIGC label over this item while it is on screen "
                 "and writes the implicit AIGC label into the mp4 metadata")
GENERATOR_DOC = "what made it (tool / provider), recorded in the AIGC metadata and run.json"


class AigcLabel(_Strict):
    """How AI-generated content is labelled (人工智能生成合成内容标识办法 / GB 45438-2025, from 2025-09-01).

    Explicit label: `text` burned top-left inside the platform safe zone (clear of the top tabs, the bottom caption
    band and the right rail) on a semi-transparent plate, on every item with `generated=True` for as long as it is
    on screen. A synthetic (TTS) voiceover alone does not get that per-shot label: the standard lets audio be
    labelled by a prompt, so it gets the short `voice_text` notice at the video start (the position the standard
    asks of video) plus the implicit metadata label. `visible=False` (or `voice_notice_ms=0`) is allowed only with
    the `route` that labels the content instead (platform AIGC declaration, a spoken prompt, ...).
    """

    visible: bool = True
    lang: Literal["zh", "en"] = "zh"
    text: str | None = Field(default=None, max_length=24, description="default 'AI生成' (zh) / 'AI-generated' (en)")
    voice_text: str | None = Field(default=None, max_length=24, description="default 'AI配音' (zh) / 'AI voice' (en)")
    voice_notice_ms: int = Field(default=2000, ge=0, le=10_000, description="notice at the start for a TTS voice")
    route: str | None = Field(default=None, max_length=200, description="the other labelling route when not burned in")
    producer: str = Field(default="cutpilot", min_length=1, max_length=100, description="ContentProducer")
    propagator: str = Field(default="", max_length=100, description="ContentPropagator (set by the distributor)")
    propagate_id: str = Field(default="", max_length=100, description="PropagateID (set by the distributor)")

    @model_validator(mode="after")
    def _route(self) -> AigcLabel:
        if not (self.route or "").strip():
            if not self.visible:
                raise ValueError("aigc_label.visible is false: state the other labelling route in aigc_label.route")
            if self.voice_notice_ms == 0:
                raise ValueError("aigc_label.voice_notice_ms is 0: state the voice's labelling route in "
                                 "aigc_label.route")
        return self

    @property
    def label_text(self) -> str:
        return self.text or ("AI生成" if self.lang == "zh" else "AI-generated")

    @property
    def voice_label_text(self) -> str:
        return self.voice_text or ("AI配音" if self.lang == "zh" else "AI voice")


class _VideoBase(_Strict):
    id: str = Field(min_length=1)
    start_ms: int = Field(ge=0, description="position on the output timeline")
    duration_ms: int = Field(gt=0, le=L.MAX_TIMELINE_MS)
    transition_in: Crossfade | None = Field(default=None, description="crossfade from the previous item")
    fit: Literal["crop", "blur"] = "crop"
    focus: tuple[float, float] | None = Field(default=None, description="subject centre (0..1) for crop-to-fill")
    audio: bool = Field(default=False, description="play this item's own audio")
    gain_db: float = Field(default=0.0, ge=L.MIN_GAIN_DB, le=L.MAX_GAIN_DB)
    slot: int | None = Field(default=None, description="storyboard slot this item fills")

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


class ClipItem(_VideoBase):
    """A range of a library clip's source (or of a generated clip)."""

    kind: Literal["clip"] = "clip"
    source: str
    in_ms: int = Field(ge=0)
    out_ms: int = Field(gt=0)
    source_duration_ms: int | None = Field(default=None, description="known length of the source, for validation")
    fill: Literal["freeze", "slow"] = Field(
        default="freeze", description="when the source range is shorter than the slot: hold last frame or slow down"
    )
    clip_id: str | None = None
    generated: bool = Field(default=False, description=GENERATED_DOC)
    generator: str | None = Field(default=None, description=GENERATOR_DOC)

    @model_validator(mode="after")
    def _range(self) -> ClipItem:
        if self.out_ms <= self.in_ms:
            raise ValueError(f"item {self.id}: out_ms ({self.out_ms}) must be after in_ms ({self.in_ms})")
        if self.source_duration_ms is not None and self.out_ms > self.source_duration_ms + 1:
            raise ValueError(
                f"item {self.id}: out_ms {self.out_ms} is past the end of the source ({self.source_duration_ms} ms)"
            )
        if self.out_ms - self.in_ms > self.duration_ms + 1:
            raise ValueError(
                f"item {self.id}: source range {self.out_ms - self.in_ms} ms is longer than its slot "
                f"{self.duration_ms} ms; trim in/out instead"
            )
        return self


class ImageItem(_VideoBase):
    """A still (product photo, generated shot) animated with Ken Burns motion."""

    kind: Literal["image"] = "image"
    source: str
    motion: KenBurns | None = Field(default_factory=KenBurns)
    generated: bool = Field(default=False, description=GENERATED_DOC)
    generator: str | None = Field(default=None, description=GENERATOR_DOC)


class CardItem(_VideoBase):
    """A title / offer / CTA card drawn by the renderer in the brand kit's fonts and colours."""

    kind: Literal["card"] = "card"
    text: str = Field(min_length=1, max_length=L.MAX_CARD_CHARS)
    subtitle: str = Field(default="", max_length=L.MAX_CARD_CHARS)
    style: Literal["title", "cta"] = "title"
    background: str | None = Field(default=None, description="image path; brand colour when absent")
    generated: bool = Field(default=False, description="the background is generated media; a card drawn from text "
                            "by the renderer is not synthetic media and stays False")
    generator: str | None = Field(default=None, description=GENERATOR_DOC)


VideoItem = Annotated[ClipItem | ImageItem | CardItem, Field(discriminator="kind")]


class VoiceoverItem(_Strict):
    id: str
    source: str
    start_ms: int = Field(ge=0, le=L.MAX_TIMELINE_MS)
    duration_ms: int | None = Field(default=None, gt=0, le=L.MAX_TIMELINE_MS,
                                    description="cut at this length; whole file when absent")
    gain_db: float = Field(default=0.0, ge=L.MIN_GAIN_DB, le=L.MAX_GAIN_DB)
    text: str = Field(default="", max_length=L.MAX_VOICE_CHARS)
    slot: int | None = None
    generated: bool = Field(default=False, description="synthesised speech (any TTS engine): implicit label always, "
                            "a short visible notice at the start (AigcLabel.voice_notice_ms)")
    generator: str | None = Field(default=None, description="TTS provider, e.g. 'piper', 'espeak', 'openai'")


class MusicBed(_Strict):
    source: str
    gain_db: float = Field(default=-12.0, ge=L.MIN_GAIN_DB, le=L.MAX_GAIN_DB)
    duck_db: float = Field(default=-10.0, le=0, description="extra attenuation under speech")
    mood: str | None = None


class CaptionWord(_Strict):
    text: str
    start_ms: int = Field(ge=0)
    end_ms: int = Field(gt=0)


class Caption(_Strict):
    text: str = Field(min_length=1, max_length=L.MAX_CAPTION_CHARS)
    start_ms: int = Field(ge=0)
    end_ms: int = Field(gt=0, le=L.MAX_TIMELINE_MS)
    lang: str | None = None
    style: Literal["subtitle", "title"] = "subtitle"
    words: list[CaptionWord] = Field(default_factory=list, max_length=L.MAX_CAPTION_WORDS,
                                     description="for word highlight")
    slot: int | None = None

    @model_validator(mode="after")
    def _order(self) -> Caption:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"caption {self.text[:20]!r}: end_ms must be after start_ms")
        return self


class BrandKit(_Strict):
    name: str = ""
    logo: str | None = None
    logo_position: Literal["top-left", "top-right", "bottom-left", "bottom-right"] = "top-right"
    font: str | None = Field(default=None, description="font file; Noto CJK (Simplified Chinese face) when absent")
    font_index: int | None = None
    primary: str = "#E3342F"
    secondary: str = "#1F2937"
    text: str = "#FFFFFF"
    end_card_text: str | None = Field(default=None, max_length=L.MAX_CARD_CHARS)
    end_card_ms: int = Field(default=0, ge=0, le=L.MAX_END_CARD_MS,
                             description="end card appended after the last item; 0 = none")


class AudioSpec(_Strict):
    target_lufs: float = Field(default=-14.0, ge=-40, le=-5)
    true_peak_db: float = Field(default=-1.0, le=0)


class Timeline(_Strict):
    version: int = TIMELINE_VERSION
    output: OutputSpec = Field(default_factory=OutputSpec)
    video: list[VideoItem] = Field(min_length=1, max_length=L.MAX_VIDEO_ITEMS)
    voiceover: list[VoiceoverItem] = Field(default_factory=list, max_length=L.MAX_VOICEOVER_ITEMS)
    music: MusicBed | None = None
    captions: list[Caption] = Field(default_factory=list, max_length=L.MAX_CAPTIONS)
    caption_highlight: bool = False
    brand: BrandKit = Field(default_factory=BrandKit)
    audio: AudioSpec = Field(default_factory=AudioSpec)
    allow_gaps: bool = False
    aigc_label: AigcLabel = Field(default_factory=AigcLabel)
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _track(self) -> Timeline:
        if self.version != TIMELINE_VERSION:
            raise ValueError(f"timeline version {self.version} is not supported (this build reads {TIMELINE_VERSION})")
        ids = [v.id for v in self.video]
        if len(set(ids)) != len(ids):
            raise ValueError("video item ids must be unique")
        if self.video[0].start_ms != 0 and not self.allow_gaps:
            raise ValueError(f"item {self.video[0].id}: timeline must start at 0 (got {self.video[0].start_ms} ms)")
        if self.video[0].transition_in is not None:
            raise ValueError(f"item {self.video[0].id}: the first item cannot have a transition in")
        for prev, cur in zip(self.video, self.video[1:], strict=False):
            overlap = cur.transition_in.duration_ms if cur.transition_in else 0
            expected = prev.end_ms - overlap
            if cur.start_ms < expected:
                raise ValueError(
                    f"item {cur.id}: starts at {cur.start_ms} ms, overlapping {prev.id} (ends {prev.end_ms})"
                )
            if cur.start_ms > expected and not self.allow_gaps:
                raise ValueError(
                    f"item {cur.id}: gap of {cur.start_ms - expected} ms after {prev.id}; set allow_gaps to keep it"
                )
            if overlap and (overlap >= prev.duration_ms or overlap >= cur.duration_ms):
                raise ValueError(f"item {cur.id}: crossfade longer than an item it joins")
        total = self.duration_ms
        if total > L.MAX_TIMELINE_MS:
            raise ValueError(f"timeline is {total / 1000:g} s long; at most {L.MAX_TIMELINE_S} s "
                             f"({L.MAX_TIMELINE_S // 60} min) including the end card")
        for c in self.captions:
            if c.end_ms > total + 1:
                raise ValueError(f"caption {c.text[:20]!r} ends at {c.end_ms} ms, after the timeline ({total} ms)")
        for v in self.voiceover:
            if v.start_ms >= total:
                raise ValueError(f"voiceover {v.id} starts after the timeline ends")
        return self

    @property
    def generated_items(self) -> list[ClipItem | ImageItem | CardItem]:
        return [v for v in self.video if v.generated]

    @property
    def synthetic_voice(self) -> bool:
        return any(v.generated for v in self.voiceover)

    @property
    def has_aigc(self) -> bool:
        """Anything AI-generated on screen or in the voice: the mp4 then carries the implicit AIGC label."""
        return bool(self.generated_items) or self.synthetic_voice

    @property
    def content_ms(self) -> int:
        return max(v.end_ms for v in self.video)

    @property
    def duration_ms(self) -> int:
        """Total length including the brand end card."""
        return self.content_ms + self.brand.end_card_ms

    # --- serialisation -----------------------------------------------------------------------------------
    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> Timeline:
        try:
            return cls.model_validate(json.loads(text))
        except json.JSONDecodeError as e:
            raise TimelineError(f"timeline is not valid JSON: {e.msg} at line {e.lineno}") from None
        except ValidationError as e:
            raise TimelineError(_first_error(e)) from None

    @classmethod
    def load(cls, path: str | Path) -> Timeline:
        p = Path(path)
        if not p.is_file():
            raise TimelineError(f"timeline file not found: {p}")
        return cls.from_json(p.read_text(encoding="utf-8"))

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_json(), encoding="utf-8")
        return p

    def to_srt(self) -> str:
        """Captions as SRT (pysubs2), for platforms that take a sidecar file."""
        import pysubs2

        subs = pysubs2.SSAFile()
        for c in sorted(self.captions, key=lambda c: c.start_ms):
            subs.append(pysubs2.SSAEvent(start=c.start_ms, end=c.end_ms, text=c.text.replace("\n", "\\N")))
        return str(subs.to_string("srt"))

    def to_otio(self) -> Any:
        """An OpenTimelineIO timeline (video, voiceover, music, captions as markers) to finish in an NLE."""
        import opentimelineio as otio

        rate = float(self.output.fps)

        def rt(ms: int) -> Any:
            return otio.opentime.RationalTime(ms * rate / 1000.0, rate)

        def rng(start_ms: int, dur_ms: int) -> Any:
            return otio.opentime.TimeRange(rt(start_ms), rt(dur_ms))

        tl = otio.schema.Timeline(name=str(self.meta.get("title", "cutpilot ad")))
        tl.metadata["cutpilot"] = {"version": self.version, "output": self.output.model_dump()}
        vtrack = otio.schema.Track(name="video", kind=otio.schema.TrackKind.Video)
        cursor = 0
        for item in self.video:
            if item.start_ms > cursor:
                vtrack.append(otio.schema.Gap(source_range=rng(0, item.start_ms - cursor)))
            if isinstance(item, ClipItem):
                ref = otio.schema.ExternalReference(target_url=str(Path(item.source).resolve()))
                src_range = rng(item.in_ms, item.duration_ms)
                clip = otio.schema.Clip(name=item.id, media_reference=ref, source_range=src_range)
            elif isinstance(item, ImageItem):
                ref = otio.schema.ExternalReference(target_url=str(Path(item.source).resolve()))
                clip = otio.schema.Clip(name=item.id, media_reference=ref, source_range=rng(0, item.duration_ms))
            else:
                ref = otio.schema.GeneratorReference(generator_kind="cutpilot.card", parameters={"text": item.text})
                clip = otio.schema.Clip(name=item.id, media_reference=ref, source_range=rng(0, item.duration_ms))
            clip.metadata["cutpilot"] = item.model_dump(mode="json")
            vtrack.append(clip)
            cursor = max(cursor, item.end_ms)
        tl.tracks.append(vtrack)
        if self.voiceover:
            atrack = otio.schema.Track(name="voiceover", kind=otio.schema.TrackKind.Audio)
            cur = 0
            for vo in sorted(self.voiceover, key=lambda v: v.start_ms):
                if vo.start_ms > cur:
                    atrack.append(otio.schema.Gap(source_range=rng(0, vo.start_ms - cur)))
                dur = vo.duration_ms or 1000
                ref = otio.schema.ExternalReference(target_url=str(Path(vo.source).resolve()))
                atrack.append(otio.schema.Clip(name=vo.id, media_reference=ref, source_range=rng(0, dur)))
                cur = max(cur, vo.start_ms + dur)
            tl.tracks.append(atrack)
        if self.music:
            mtrack = otio.schema.Track(name="music", kind=otio.schema.TrackKind.Audio)
            ref = otio.schema.ExternalReference(target_url=str(Path(self.music.source).resolve()))
            mtrack.append(otio.schema.Clip(name="music", media_reference=ref, source_range=rng(0, self.duration_ms)))
            tl.tracks.append(mtrack)
        for c in self.captions:
            m = otio.schema.Marker(name=c.text, marked_range=rng(c.start_ms, c.end_ms - c.start_ms))
            m.metadata["cutpilot"] = {"lang": c.lang, "style": c.style}
            vtrack.markers.append(m)
        return tl

    def write_otio(self, path: str | Path) -> Path:
        import opentimelineio as otio

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        otio.adapters.write_to_file(self.to_otio(), str(p))
        return p


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    msg = err.get("msg", "invalid")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if loc.endswith("_ms") and "less than or equal to" in msg:
        msg += " ms"  # a time: say the unit (600000 ms is the 10-minute limit)
    extra = f" ({len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return f"invalid timeline at {loc or 'top level'}: {msg}{extra}"


def build_timeline(**data: Any) -> Timeline:
    """Construct a Timeline, turning pydantic's multi-line report into one clear TimelineError line."""
    try:
        return Timeline.model_validate(data)
    except ValidationError as e:
        raise TimelineError(_first_error(e)) from None
