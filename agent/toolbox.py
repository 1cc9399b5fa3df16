"""Toolbox: the MediaTools protocol (agent.mediatools) over the real tools in tools/*.

Each method imports its tool module when called (plain imports: the tools are heavy, and a planner that never
animates a still should not load OpenCV); a missing module is a ToolMissingError that the node records as a
warning (the ad still renders, e.g. captions without voiceover). Tool results are wrapped into the protocol's
frozen types here, once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from agent.mediatools import (
    Card,
    ClipStore,
    ClothType,
    Cutout,
    Fit,
    GeneratedClip,
    MediaTools,
    ModelIn,
    Motion,
    MusicBed,
    Provenance,
    RankedModel,
    SpeechVerdict,
    Still,
    TryOnRanking,
    TryOnResult,
    VoiceTake,
    WordTime,
)
from cutpilot.errors import CutpilotError, ToolMissingError
from cutpilot.settings import Settings
from cutpilot.storyboard import ClipChoice
from cutpilot.timeline import BrandKit, KenBurns, Timeline

if TYPE_CHECKING:
    from tools.assets import AssetResult
    from tools.background import BackdropKind
    from tools.render import RenderResult

__all__ = ["MediaTools", "SpeechVerdict", "Toolbox"]


@contextmanager
def _optional(what: str) -> Iterator[None]:
    """Turn a missing tool module (or its optional dependency) into the typed error the planner handles."""
    try:
        yield
    except ImportError as e:
        raise ToolMissingError(f"{what} is not available: {e}") from None


def _prov(r: AssetResult) -> Provenance:
    return Provenance.of(r.provenance())


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return int(im.size[0]), int(im.size[1])


class Toolbox:
    """Real tools by default; tests may subclass to count calls or fail one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    # -- pictures and clips
    def cutout(self, image: Path, *, out_dir: Path) -> Cutout:
        self._count("cutout")
        with _optional("background removal"):
            from tools.background import remove_background
        r = remove_background(image, out_dir=out_dir)
        return Cutout(path=r.path, size=_size(r.path), provenance=_prov(r))

    def scene(self, image: Path, scene: str, *, size: tuple[int, int], out_dir: Path) -> Still:
        self._count("scene")
        with _optional("background replacement"):
            from tools.background import replace_background
        r = replace_background(image, scene, size=size, settings=self.settings, out_dir=out_dir)
        return Still(path=r.path, size=_size(r.path), provenance=_prov(r))

    def image_to_video(self, image: Path, seconds: float, *, size: tuple[int, int], fps: int,
                       motion: KenBurns | None, fit: Fit, prompt: str, out_dir: Path) -> Motion:
        self._count("image_to_video")
        with _optional("image to video"):
            from tools.image_video import image_to_video
        r = image_to_video(image, seconds, motion=motion, size=size, fps=fps, settings=self.settings,
                           out_dir=out_dir, fit=fit, prompt=prompt)
        got = r.params.get("size")
        wh = (int(got[0]), int(got[1])) if isinstance(got, list) and len(got) == 2 else size
        return Motion(path=r.path, seconds=float(r.params.get("seconds", seconds)), size=wh, fps=fps,
                      provider=r.provider, provenance=_prov(r))

    def backdrop(self, kind: BackdropKind, *, prompt: str, size: tuple[int, int], colours: list[tuple[int, int, int]],
                 variant: int, out_dir: Path) -> Still:
        """An offline scene picture (gradient / product palette / brand colours / blurred light) to composite on."""
        self._count("backdrop")
        with _optional("backdrops"):
            from tools.background import backdrop
        r = backdrop(kind, prompt=prompt, size=size, colours=colours, variant=variant, out_dir=out_dir)
        return Still(path=r.path, size=_size(r.path), provenance=_prov(r))

    def ken_burns(self, image: Path, seconds: float, *, size: tuple[int, int], fps: int, motion: KenBurns,
                  fit: Fit, out_dir: Path) -> Motion:
        """Offline motion only: what a failed image-to-video provider falls back to. Encoded `ultrafast`: the
        renderer re-encodes every shot, so the slower preset's smaller file buys nothing but wall time."""
        self._count("ken_burns")
        with _optional("image to video"):
            from tools.image_video import ken_burns
        r = ken_burns(image, seconds, motion=motion, size=size, fps=fps, settings=self.settings, out_dir=out_dir,
                      fit=fit, preset="ultrafast")
        return Motion(path=r.path, seconds=float(r.params.get("seconds", seconds)), size=size, fps=fps,
                      provider=r.provider, provenance=_prov(r))

    def parallax(self, cutout: Path, scene: Path, seconds: float, *, size: tuple[int, int], fps: int,
                 motion: KenBurns, out_dir: Path) -> Motion:
        """Offline two-layer motion: the cut-out product moves with `motion`, its scene behind it less."""
        self._count("parallax")
        with _optional("image to video"):
            from tools.image_video import parallax
        r = parallax(cutout, scene, seconds, motion=motion, size=size, fps=fps, settings=self.settings,
                     out_dir=out_dir)
        return Motion(path=r.path, seconds=float(r.params.get("seconds", seconds)), size=size, fps=fps,
                      provider=r.provider, provenance=_prov(r))

    def try_on(self, garment_image: Path, model_image: Path, *, cloth_type: ClothType, out_dir: Path
               ) -> TryOnResult:
        self._count("try_on")
        with _optional("try-on"):
            from tools.tryon import try_on
        r = try_on(garment_image, model_image, settings=self.settings, out_dir=out_dir, cloth_type=cloth_type)
        return TryOnResult(path=r.path, size=_size(r.path), cloth_type=cloth_type, provider=r.provider,
                           provenance=_prov(r))

    def plan_try_on(self, garment: dict[str, str], models: list[ModelIn]) -> TryOnRanking:
        self._count("plan_try_on")
        with _optional("try-on planning"):
            from tools.garments import Garment, ModelPhoto
            from tools.tryon import plan_try_on
        plan = plan_try_on(Garment(**garment), [ModelPhoto(id=m.id, image=Path(m.image) if m.image else None,
                                                           wearing=Garment(**m.wearing)) for m in models])
        ranked = tuple(RankedModel(id=m.model.id, image=m.model.image, score=float(m.score),
                                   reasons=tuple(m.reasons)) for m in plan.models)
        return TryOnRanking(cloth_type=plan.cloth_type, models=ranked, style=plan.style,
                            scenes=tuple(plan.scenes), notes=tuple(plan.notes))

    def card(self, text: str, *, brand: BrandKit, size: tuple[int, int], subtitle: str, style: str,
             out_dir: Path) -> Card:
        self._count("card")
        with _optional("title cards"):
            from tools.cards import title_card
        path = title_card(text, brand, size=size, subtitle=subtitle, style=style, out_dir=out_dir)
        return Card(path=path, size=size, style=style, text=text, subtitle=subtitle)

    def register_clip(self, path: Path, *, library: ClipStore, description: str, content_type: str,
                      product: str | None) -> GeneratedClip:
        self._count("register_clip")
        from tools.assets import load_sidecar, register_generated_clip

        side = load_sidecar(Path(path)).get("asset")
        prov = side if isinstance(side, dict) else {"tool": "unknown", "provider": "unknown"}
        rec = register_generated_clip(library, Path(path), prov, product=product,  # type: ignore[arg-type]
                                      content_type=content_type, description=description, ffmpeg=self.settings.ffmpeg)
        return GeneratedClip(clip_id=rec.clip_id, path=Path(rec.source), duration_s=round(rec.duration, 3),
                             content_type=rec.content_type.value, product=rec.product, provenance=Provenance.of(prov))

    def register_generated(self, path: Path, *, library: ClipStore, provenance: dict[str, object],
                           description: str, content_type: str, product: str | None) -> GeneratedClip:
        """register_clip with the caller's provenance (the whole chain: photo, cut-out, scene, motion), not only
        the last tool's sidecar."""
        self._count("register_clip")
        from tools.assets import register_generated_clip

        rec = register_generated_clip(library, Path(path), dict(provenance), product=product,  # type: ignore[arg-type]
                                      content_type=content_type, description=description, ffmpeg=self.settings.ffmpeg)
        return GeneratedClip(clip_id=rec.clip_id, path=Path(rec.source), duration_s=round(rec.duration, 3),
                             content_type=rec.content_type.value, product=rec.product,
                             provenance=Provenance.of(dict(provenance)))

    # -- sound
    def tts(self, text: str, *, lang: str, out_dir: Path, voice: str | None = None) -> VoiceTake:
        self._count("tts")
        with _optional("text to speech"):
            from tools.tts import tts
        # takes are content-addressed (text + voice + language) in the home, not the run's folder: a line that
        # another variant or run already said costs nothing (`out_dir` is where the caller would keep its own)
        r = tts(text, lang=lang, settings=self.settings, out_dir=self.settings.home / "assets", voice=voice)
        return VoiceTake(path=r.path, duration_s=float(r.duration_s), lang=r.lang, voice=r.voice,
                         provider=r.provider, timing=r.timing,
                         words=tuple(WordTime(w.text, w.start_ms, w.end_ms) for w in r.words), provenance=_prov(r))

    def voice_pace(self, lang: str) -> float | None:
        """Units per second the voice for `lang` speaks (None: the planner's budget holds)."""
        try:
            with _optional("text to speech"):
                from tools.tts import pace
        except ToolMissingError:
            return None
        p = pace(lang, self.settings)
        return float(p) if p is not None else None

    def check_speech(self, path: Path, text: str, *, lang: str, vocabulary: list[str] | None = None
                     ) -> SpeechVerdict | None:
        """ASR round trip of a take against its text (cached by content); None when the check cannot run.
        `vocabulary`: the product's names, which the recogniser is told (a viewer reads them on screen)."""
        if not getattr(self.settings, "voice_check", True):
            return None
        self._count("check_speech")
        try:
            with _optional("speech check"):
                from tools.voicecheck import check_speech
            r = check_speech(path, text, lang, self.settings, cache_dir=self.settings.home / "voice-checks",
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

    def music(self, duration_s: float, mood: str, *, out_dir: Path) -> MusicBed:
        self._count("music")
        with _optional("music"):
            from tools.music import music_bed
        r = music_bed(duration_s, mood, settings=self.settings, out_dir=out_dir)
        return MusicBed(path=r.path, duration_s=float(r.duration_s), mood=r.mood, source=r.source,
                        provider=r.provider, provenance=_prov(r))

    # -- the ad
    def render(self, timeline: Timeline, out: Path, *, quality: str, cache_dir: Path | None) -> RenderResult:
        self._count("render")
        with _optional("the renderer"):
            from tools.render import render
        from cutpilot.mediauri import resolve_timeline

        timeline = resolve_timeline(timeline, self.settings)  # media:// / file:// / s3:// → local files here
        return render(timeline, out, settings=self.settings, quality=quality,  # type: ignore[arg-type]
                      cache_dir=cache_dir)


def _conforms(t: Toolbox) -> MediaTools:
    return t  # mypy checks here that Toolbox implements the whole protocol
