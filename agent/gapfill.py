"""The gap policy: what fills a slot that has no real footage of the product, in order.

1. Real footage (fetch + footage_first, before this module runs).
2. A still of the product made to move — most long-tail products only have photos (domain.md §4):
   a. garments with model photos and a try-on provider: rank the model photos by the matching rules, dress the
      top-ranked one, then treat the result like a product photo;
   b. cut the product out, put it in a scene chosen by product type / womenswear style (a scene provider when
      configured, else an offline backdrop — scene gradient, the product's palette, the brand colours, blurred
      light — different for every slot);
   c. animate it (an image-to-video provider when configured, else Ken Burns or a parallax of the product over
      its scene; a different move per slot).
   A provider that times out, refuses or answers garbage drops the slot one step down, with a warning.
3. A card — only when no photo of the product exists or every step above failed.

WHY content-addressed manifests: a shot's address is a hash of everything that decides its pixels (photo bytes,
scene, backdrop, motion, length, size, providers). A batch variant or a re-run with the same inputs finds the
manifest and reuses the registered clip without calling a single tool. Each shot is written back to the library
as a `generated` clip with its whole provenance chain, and marked generated in the storyboard and the timeline.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from agent.claims import ClaimsError
from agent.mediatools import ClipStore, GeneratedClip, MediaTools, ModelIn, Motion, RankedModel, Still
from agent.runrecord import RunRecord
from agent.sources import ClipSource
from cutpilot.errors import CutpilotError, ProviderError
from cutpilot.media import IMAGE_EXTS
from cutpilot.settings import Settings
from cutpilot.storyboard import ClipChoice, GeneratedAsset, Slot, Storyboard
from cutpilot.timeline import ASPECTS, KenBurns

BackdropKind = Literal["gradient", "palette", "blurred", "brand"]
RGB = tuple[int, int, int]
POLICY_VERSION = 1
FPS = 30
MAX_SHOT_S = 8.0
# One move per slot, in turn: two neighbouring shots never move the same way.
MOTIONS: tuple[tuple[str, KenBurns], ...] = (
    ("push in", KenBurns(zoom_from=1.0, zoom_to=1.18)),
    ("pull out", KenBurns(zoom_from=1.2, zoom_to=1.02)),
    ("pan right", KenBurns(zoom_from=1.15, zoom_to=1.15, center_from=(0.42, 0.5), center_to=(0.58, 0.5))),
    ("rise", KenBurns(zoom_from=1.08, zoom_to=1.2, center_from=(0.5, 0.56), center_to=(0.5, 0.44))),
    ("pan left", KenBurns(zoom_from=1.16, zoom_to=1.12, center_from=(0.58, 0.48), center_to=(0.42, 0.52))),
)
GENERATION_CALLS = ("cutout", "scene", "backdrop", "image_to_video", "ken_burns", "parallax", "try_on",
                    "register_clip")


class GapTools(MediaTools, Protocol):
    """MediaTools plus the offline pieces the policy falls back to (agent.toolbox.Toolbox has them)."""

    def backdrop(self, kind: BackdropKind, *, prompt: str, size: tuple[int, int], colours: list[RGB],
                 variant: int, out_dir: Path) -> Still: ...

    def ken_burns(self, image: Path, seconds: float, *, size: tuple[int, int], fps: int, motion: KenBurns,
                  fit: Literal["crop", "blur"], out_dir: Path) -> Motion: ...

    def register_generated(self, path: Path, *, library: ClipStore, provenance: dict[str, object],
                           description: str, content_type: str, product: str | None) -> GeneratedClip: ...

    def parallax(self, cutout: Path, scene: Path, seconds: float, *, size: tuple[int, int], fps: int,
                 motion: KenBurns, out_dir: Path) -> Motion: ...


@dataclass(frozen=True)
class Photo:
    """A product photo in the library (a still record)."""

    clip_id: str
    path: Path
    product: str | None
    description: str = ""


@dataclass(frozen=True)
class Wardrobe:
    """A garment to try on: its attributes (tools.garments.Garment keys), its picture and candidate model photos."""

    garment: dict[str, str]
    models: list[ModelIn]
    garment_image: Path | None = None


@dataclass(frozen=True)
class ShotPlan:
    """The pure decision for one slot: which picture, which scene and backdrop, which move, how long."""

    slot: int
    ordinal: int
    photo: Photo
    scene: str
    scene_source: str
    backdrop: BackdropKind
    motion_name: str
    motion: KenBurns
    seconds: float
    layered: bool = False  # parallax (product and scene move apart) rather than one flat Ken Burns move


@dataclass
class Shot:
    plan: ShotPlan
    path: Path
    clip_id: str | None
    provider: str
    provenance: dict[str, Any]
    reused: bool


@dataclass
class _Context:
    tools: GapTools
    settings: Settings
    run: RunRecord
    asset_dir: Path
    size: tuple[int, int]
    library: ClipStore | None
    product: str | None
    brand: list[RGB]
    wardrobe: Wardrobe | None
    cutouts: dict[Path, Path | None] = field(default_factory=dict)
    palettes: dict[Path, list[RGB]] = field(default_factory=dict)
    dressed: dict[str, Path | None] = field(default_factory=dict)
    try_on: dict[str, Any] = field(default_factory=dict)
    facts: Any = None
    ocr: dict[Path, list[Any]] = field(default_factory=dict)


# --- pure decisions ------------------------------------------------------------------------------------------
def is_still(c: ClipChoice | None) -> bool:
    return c is not None and bool(c.source) and Path(str(c.source)).suffix.lower() in IMAGE_EXTS


def needs_shot(s: Slot, min_score: float) -> bool:
    """No clip, a weak one, or a still (a photo on screen should move in a scene, not sit on white)."""
    if s.locked and s.asset is not None:
        return False
    return s.chosen is None or s.chosen.score < min_score or is_still(s.chosen)


def shot_seconds(target_s: float) -> float:
    """Whole seconds, so a slot a little longer or shorter in another variant maps onto the same file (a shot
    that assembly lengthens plays its move a little slower; every encoded second costs wall time)."""
    return float(min(MAX_SHOT_S, max(2, math.ceil(target_s - 0.05))))


def backdrop_kinds(has_palette: bool, has_brand: bool) -> list[BackdropKind]:
    kinds: list[BackdropKind] = ["gradient"]
    if has_palette:
        kinds += ["palette", "blurred"]
    if has_brand:
        kinds.append("brand")
    return kinds


def plan_shot(s: Slot, photos: list[Photo], scenes: tuple[str, list[str]], kinds: list[BackdropKind],
              ordinal: int) -> ShotPlan:
    """Shot k gets photo k, scene k, backdrop k and move k (each list in turn). k is the slot's place in the ad,
    so a re-run whose search already found some earlier shots still maps each slot onto the same file."""
    source, prompts = scenes
    k = ordinal
    name, motion = MOTIONS[k % len(MOTIONS)]
    return ShotPlan(slot=s.index, ordinal=k, photo=photos[k % len(photos)], scene=prompts[k % len(prompts)],
                    scene_source=source, backdrop=kinds[k % len(kinds)], motion_name=name, motion=motion,
                    seconds=shot_seconds(s.target_s), layered=k % 2 == 1)


def scenes_for(product: str | None, photos: list[Photo], wardrobe: Wardrobe | None,
               style: str | None = None) -> tuple[str, list[str]]:
    """(where the scenes came from, prompts): the womenswear table for garments, else the product-type table."""
    from tools.garments import Garment, infer_style, product_scenes, scene_prompts

    if wardrobe is not None:
        st = style or infer_style(Garment(**wardrobe.garment))
        return f"womenswear:{st}", scene_prompts(st)
    text = " ".join([product or "", *(p.description for p in photos)])
    kind, prompts = product_scenes(text)
    return f"product:{kind}", prompts


def brand_colours(product: Any) -> list[RGB]:
    from tools.background import parse_hex

    brand = getattr(product, "brand", None)
    out = [parse_hex(c) for c in (getattr(brand, "colours", None) or [])]
    return [c for c in out if c is not None]


# --- finding the photos --------------------------------------------------------------------------------------
def product_photos(sb: Storyboard, source: ClipSource) -> list[Photo]:
    """The product's stills: those the slots chose, then any the library holds for the product (never generated)."""
    seen: dict[str, Photo] = {}
    for s in sb.slots:
        c = s.chosen
        if c is not None and is_still(c):
            try:
                rec = source.get(c.clip_id)
            except CutpilotError:
                continue
            if not rec.generated:
                seen.setdefault(rec.source_hash, Photo(rec.clip_id, Path(rec.source), rec.product, rec.description))
    product = sb.brief.product or next((s.product for s in sb.slots if s.product), None)
    if product:
        try:
            hits = source.find(product, content_types=[], formats=[], product=product, exclude_ids=[], limit=12)
        except CutpilotError:
            hits = []
        for h in hits:
            r = h.clip
            if r.product == product and not r.generated and Path(r.source).suffix.lower() in IMAGE_EXTS \
                    and Path(r.source).is_file():
                seen.setdefault(r.source_hash, Photo(r.clip_id, Path(r.source), r.product, r.description))
    return list(seen.values())


def library_wardrobe(sb: Storyboard, source: ClipSource, photos: list[Photo], product: Any = None
                     ) -> Wardrobe | None:
    """A garment to try on, from what the library and the product facts know: the garment's attributes (the
    product facts' `garment`, else those annotated or inferred on its own photo) and every model photo whose
    record says what the model wears (none: the garment still gets womenswear scenes, without try-on). None for a
    product that is not a garment."""
    from cutpilot.models import ClipFormat

    garment = dict(getattr(product, "garment", None) or {})
    image: Path | None = None
    for p in photos:
        try:
            rec = source.get(p.clip_id)
        except CutpilotError:
            continue
        if rec.garment and not rec.generated:
            garment = garment or dict(rec.garment)
            image = image or p.path
    if not garment:
        return None
    own = {p.clip_id for p in photos}
    try:
        hits = source.find("model photo 模特", content_types=[], formats=[ClipFormat.model_showcase], product=None,
                           exclude_ids=sorted(own), limit=24)
    except CutpilotError:
        hits = []
    models: list[ModelIn] = []
    for h in hits:
        r = h.clip
        if r.garment and not r.generated and Path(r.source).suffix.lower() in IMAGE_EXTS and Path(r.source).is_file():
            models.append(ModelIn(id=r.clip_id, image=r.source, wearing=dict(r.garment)))
    return Wardrobe(garment=garment, models=models, garment_image=image or (photos[0].path if photos else None))


def _says_no_claim(ctx: _Context, picture: Path, where: str) -> bool:
    """Whether a picture's on-screen text (OCR) makes no claim the ad may not make. Pictures are read once each:
    a product photo (its printed words travel into every composite) and every frame a provider made (a scene, a
    try-on) — the offline backdrops add no words. A picture that fails is not used (strict: the run fails)."""
    from agent.claims import ClaimsError, check_frames, record

    if picture not in ctx.ocr:
        ctx.ocr[picture] = check_frames([picture], ctx.facts)
    hits = [h.model_copy(update={"where": f"{where}: on-screen text of {picture.name}"}) for h in ctx.ocr[picture]]
    record(ctx.run, [h for h in hits if h.allowed])
    bad = [h for h in hits if not h.allowed]
    if not bad:
        return True
    record(ctx.run, bad, "dropped")
    said = ", ".join(sorted({h.text or h.term for h in bad}))
    if ctx.run.strict_claims:
        raise ClaimsError(f"{where}: its on-screen text claims {said}, which the ad may not make (strict)")
    ctx.run.warn(f"{where}: its on-screen text claims {said}, which the ad may not make; not used")
    return False


# --- making a shot -------------------------------------------------------------------------------------------
def _shot_key(ctx: _Context, plan: ShotPlan, source_key: str, inputs: tuple[Path, ...] = ()) -> str:
    from tools.assets import asset_key

    s = ctx.settings
    return asset_key("gapfill", (plan.photo.path, *inputs), {
        "v": POLICY_VERSION, "source": source_key, "scene": plan.scene, "backdrop": plan.backdrop,
        "variant": plan.ordinal, "motion": plan.motion.model_dump(mode="json"), "seconds": plan.seconds,
        "layered": plan.layered,
        "size": list(ctx.size), "fps": FPS, "brand": [list(c) for c in ctx.brand],
        "scene_url": s.scene_gen_url or "", "i2v_url": s.image_to_video_url or "",
    })


def _manifest(ctx: _Context, key: str) -> Path:
    return ctx.asset_dir / "gapfill" / f"{key[:24]}.json"


def _load(ctx: _Context, key: str) -> dict[str, Any] | None:
    m = _manifest(ctx, key)
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and Path(str(data.get("path", ""))).is_file() else None


def _save(ctx: _Context, key: str, data: dict[str, Any]) -> None:
    m = _manifest(ctx, key)
    m.parent.mkdir(parents=True, exist_ok=True)
    tmp = m.with_suffix(".part")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    tmp.replace(m)


def _palette(cutout: Path) -> list[RGB]:
    from tools.background import palette

    return palette(cutout)


def _cutout(ctx: _Context, image: Path) -> Path | None:
    if image not in ctx.cutouts:
        try:
            ctx.cutouts[image] = ctx.tools.cutout(image, out_dir=ctx.asset_dir).path
        except CutpilotError as e:
            ctx.run.warn(f"gap fill: no cut-out of {image.name} ({e.one_line()}); the photo moves as it is")
            ctx.cutouts[image] = None
    return ctx.cutouts[image]


def _top_model(ctx: _Context) -> RankedModel | None:
    """The model photo the matching rules rank first (offline, once per run); None without try-on."""
    w = ctx.wardrobe
    if w is None or not ctx.settings.tryon_url or not w.models or w.garment_image is None:
        return None
    if "ranked" not in ctx.try_on:
        ranking = ctx.tools.plan_try_on(dict(w.garment), list(w.models))
        top = next((m for m in ranking.models if m.image is not None and Path(m.image).is_file()), None)
        ctx.try_on.update({"style": ranking.style, "cloth_type": ranking.cloth_type, "notes": list(ranking.notes),
                           "ranked": [[m.id, m.score] for m in ranking.models], "top": top})
        if top is None:
            ctx.run.warn("gap fill: no model photo to try the garment on; product stills instead")
        else:
            ctx.try_on.update({"model": top.id, "model_image": str(top.image), "garment_image": str(w.garment_image),
                               "reasons": list(top.reasons)})
    top = ctx.try_on.get("top")
    return top if isinstance(top, RankedModel) and "failed" not in ctx.try_on else None


def _dress(ctx: _Context, top: RankedModel) -> Path | None:
    """The top-ranked model photo wearing the garment (one call per run); None when the provider failed."""
    if top.id in ctx.dressed:
        return ctx.dressed[top.id]
    ctx.dressed[top.id] = None
    w = ctx.wardrobe
    assert w is not None and w.garment_image is not None and top.image is not None
    try:
        r = ctx.tools.try_on(w.garment_image, top.image, cloth_type=ctx.try_on["cloth_type"], out_dir=ctx.asset_dir)
    except ProviderError as e:
        ctx.run.warn(f"gap fill: try-on with model {top.id} failed ({e.one_line()}); product stills instead")
        ctx.run.fallback("try_on", e.one_line())
        ctx.try_on["failed"] = e.one_line()
        return None
    ctx.try_on.update({"provider": r.provider, "path": str(r.path)})
    ctx.dressed[top.id] = r.path
    return r.path


def _scene(ctx: _Context, plan: ShotPlan, image: Path, chain: list[dict[str, Any]]
           ) -> tuple[Path | None, tuple[Path, Path] | None]:
    """The picture in its scene (None when the cut-out failed) and, for an offline backdrop, the (cut-out,
    backdrop) layers a parallax move needs."""
    cut = _cutout(ctx, image)
    if cut is None:
        return None, None
    chain.append({"step": "cutout", "tool": "remove_background", "path": str(cut)})
    if ctx.settings.scene_gen_url:
        try:
            st = ctx.tools.scene(image, plan.scene, size=ctx.size, out_dir=ctx.asset_dir)
            if _says_no_claim(ctx, st.path, f"slot {plan.slot}: the generated scene"):
                chain.append({"step": "scene", "tool": st.provenance.tool, "provider": st.provenance.provider,
                              "prompt": plan.scene, "path": str(st.path)})
                return st.path, None
            ctx.run.fallback("scene", "generated scene shows a forbidden claim")
        except ProviderError as e:
            ctx.run.warn(f"slot {plan.slot}: scene provider failed ({e.one_line()}); an offline backdrop instead")
            ctx.run.fallback("scene", e.one_line())
    if cut not in ctx.palettes:
        ctx.palettes[cut] = _palette(cut)
    pal = ctx.palettes[cut]
    kind = plan.backdrop
    colours = ctx.brand if kind == "brand" else pal
    if kind in ("palette", "blurred") and not pal:
        kind = "gradient"
    bd = ctx.tools.backdrop(kind, prompt=plan.scene, size=ctx.size, colours=colours, variant=plan.ordinal,
                            out_dir=ctx.asset_dir)
    st = ctx.tools.scene(image, str(bd.path), size=ctx.size, out_dir=ctx.asset_dir)
    chain.append({"step": "scene", "tool": "backdrop+replace_background", "provider": bd.provenance.provider,
                  "prompt": plan.scene, "backdrop": kind, "path": str(st.path)})
    return st.path, (cut, bd.path)


def _motion(ctx: _Context, plan: ShotPlan, still: Path, fit: Literal["crop", "blur"],
            chain: list[dict[str, Any]], layers: tuple[Path, Path] | None = None) -> Motion:
    prompt = f"slow camera {plan.motion_name} on the product, {plan.scene}"
    if ctx.settings.image_to_video_url:
        try:
            m = ctx.tools.image_to_video(still, plan.seconds, size=ctx.size, fps=FPS, motion=plan.motion, fit=fit,
                                         prompt=prompt, out_dir=ctx.asset_dir)
            chain.append({"step": "motion", "tool": "image_to_video", "provider": m.provider, "prompt": prompt,
                          "path": str(m.path)})
            return m
        except ProviderError as e:
            ctx.run.warn(f"slot {plan.slot}: image-to-video provider failed ({e.one_line()}); offline Ken Burns")
            ctx.run.fallback("image_to_video", e.one_line())
    if plan.layered and layers is not None:
        try:
            m = ctx.tools.parallax(layers[0], layers[1], plan.seconds, size=ctx.size, fps=FPS, motion=plan.motion,
                                   out_dir=ctx.asset_dir)
            chain.append({"step": "motion", "tool": "parallax", "provider": m.provider, "motion": plan.motion_name,
                          "path": str(m.path)})
            return m
        except CutpilotError as e:
            ctx.run.warn(f"slot {plan.slot}: parallax failed ({e.one_line()}); Ken Burns instead")
    m = ctx.tools.ken_burns(still, plan.seconds, size=ctx.size, fps=FPS, motion=plan.motion, fit=fit,
                            out_dir=ctx.asset_dir)
    chain.append({"step": "motion", "tool": "ken_burns", "provider": m.provider, "motion": plan.motion_name,
                  "path": str(m.path)})
    return m


def make_shot(ctx: _Context, plan: ShotPlan, *, avoid: set[str]) -> Shot | None:
    """One slot's generated shot, reused from its manifest when the same inputs made it before (no tool call);
    None when that shot is already in the ad (the caller asks for another variant) or its photo's printed words
    make a forbidden claim."""
    if not _says_no_claim(ctx, plan.photo.path, f"photo {plan.photo.clip_id}"):
        return None
    top = _top_model(ctx) if plan.ordinal % 2 == 0 else None  # with try-on: model shots and product shots in turn
    dressed: Path | None = None
    if top is not None and ctx.wardrobe is not None and ctx.wardrobe.garment_image is not None and top.image:
        key = _shot_key(ctx, plan, f"try_on:{top.id}:{ctx.settings.tryon_url}",
                        (ctx.wardrobe.garment_image, top.image))
        hit = _load(ctx, key)
        if hit is not None:
            return None if hit.get("clip_id") in avoid else _reuse(plan, hit)
        dressed = _dress(ctx, top)
        if dressed is not None and not _says_no_claim(ctx, dressed, f"slot {plan.slot}: the try-on picture"):
            dressed = None
    if dressed is None:
        key = _shot_key(ctx, plan, "photo")
        hit = _load(ctx, key)
        if hit is not None:
            return None if hit.get("clip_id") in avoid else _reuse(plan, hit)
    image = dressed or plan.photo.path
    chain: list[dict[str, Any]] = []
    if dressed is not None:
        chain.append({"step": "try_on", "tool": "try_on", "provider": ctx.try_on.get("provider"),
                      "model": ctx.try_on.get("model"), "path": str(dressed)})
    still, layers = _scene(ctx, plan, image, chain)
    motion = _motion(ctx, plan, still or image, "crop" if still else "blur", chain, layers)
    try_on = {k: v for k, v in ctx.try_on.items() if k != "top"} if dressed is not None else None
    prov: dict[str, Any] = {
        "tool": "gapfill", "provider": motion.provider, "kind": "image_video", "key": key, "policy": POLICY_VERSION,
        "inputs": {"photo": str(plan.photo.path), "photo_clip_id": plan.photo.clip_id},
        "scene": plan.scene, "scene_source": plan.scene_source, "backdrop": plan.backdrop,
        "motion": plan.motion_name + (" (parallax)" if chain[-1]["tool"] == "parallax" else ""),
        "seconds": plan.seconds, "chain": chain,
        "prompt": next((c.get("prompt") for c in reversed(chain) if c.get("prompt")), plan.scene),
        **({"try_on": try_on} if try_on else {}),
    }
    clip_id = None
    if ctx.library is not None:
        desc = (f"{ctx.product or 'product'}: generated product shot, {plan.scene} ({plan.backdrop} backdrop), "
                f"camera {plan.motion_name}")
        try:
            g = ctx.tools.register_generated(motion.path, library=ctx.library, provenance=prov, description=desc,
                                             content_type="product_intro", product=ctx.product)
            clip_id = g.clip_id
        except CutpilotError as e:
            ctx.run.warn(f"slot {plan.slot}: generated shot not written to the library ({e.one_line()})")
    _save(ctx, key, {"path": str(motion.path), "clip_id": clip_id, "provider": motion.provider, "provenance": prov})
    return Shot(plan=plan, path=motion.path, clip_id=clip_id, provider=motion.provider, provenance=prov,
                reused=False)


def _reuse(plan: ShotPlan, hit: dict[str, Any]) -> Shot:
    return Shot(plan=plan, path=Path(hit["path"]), clip_id=hit.get("clip_id"), provider=str(hit["provider"]),
                provenance=dict(hit["provenance"]), reused=True)


# --- the policy over a storyboard ----------------------------------------------------------------------------
def label_generated(sb: Storyboard, source: ClipSource) -> Storyboard:
    """A generated clip the library search found (a shot made by an earlier run) is real reuse, not footage:
    it keeps its provenance and is marked generated on screen."""
    slots = list(sb.slots)
    for i, s in enumerate(slots):
        if s.chosen is None or s.asset is not None:
            continue
        try:
            rec = source.get(s.chosen.clip_id)
        except CutpilotError:
            continue
        if rec.generated:
            prov = rec.provenance or {}
            slots[i] = s.model_copy(update={"asset": GeneratedAsset(
                kind="generated_clip", path=rec.source, tool=str(prov.get("tool", "generated")),
                provider=str(prov.get("provider", "unknown")),
                params={"clip_id": rec.clip_id, "reused": True, "provenance": prov})})
    return sb.model_copy(update={"slots": slots})


def fill(sb: Storyboard, run: RunRecord, *, tools: GapTools, source: ClipSource, settings: Settings,
         min_score: float, product: Any = None, wardrobe: Wardrobe | None = None) -> Storyboard:
    """Give every slot without real footage a generated shot of the product (see the module docstring); the
    slots this cannot fill are left for the caller's cards."""
    sb = label_generated(sb, source)
    todo = [s for s in sb.slots if needs_shot(s, min_score)]
    if not todo:
        return sb
    photos = product_photos(sb, source)
    if wardrobe is None and photos:
        wardrobe = library_wardrobe(sb, source, photos, product)
    if wardrobe is not None and wardrobe.garment_image is None and photos:
        wardrobe = Wardrobe(garment=wardrobe.garment, models=wardrobe.models, garment_image=photos[0].path)
    if not photos:
        return sb
    store = getattr(source, "library", None)
    name = sb.brief.product or next((p.product for p in photos if p.product), None)
    w, h = ASPECTS[sb.brief.aspect]
    ctx = _Context(tools=tools, settings=settings, run=run, asset_dir=settings.home / "assets", size=(w, h),
                   library=store if hasattr(store, "add") and getattr(source, "writable", True) else None,
                   product=name, brand=brand_colours(product),
                   wardrobe=wardrobe, facts=product)
    kinds = backdrop_kinds(True, bool(ctx.brand))
    scenes = scenes_for(name, photos, wardrobe)
    used = {s.chosen.clip_id for s in sb.slots if s.chosen is not None}
    slots = list(sb.slots)
    for s in todo:
        shot: Shot | None = None
        try:
            for j in range(4):  # the shot this slot would get is already on screen: the next variant
                plan = plan_shot(s, photos, scenes, kinds, s.index + j * len(slots))
                shot = make_shot(ctx, plan, avoid=used)
                if shot is not None:
                    break
        except ClaimsError:
            raise
        except CutpilotError as e:
            run.warn(f"slot {s.index}: no generated shot ({e.one_line()}); a card instead")
            continue
        if shot is None:
            continue
        plan = shot.plan
        if shot.clip_id:
            used.add(shot.clip_id)
        keep = s.chosen if is_still(s.chosen) and s.chosen is not None and s.chosen.clip_id == plan.photo.clip_id \
            else None
        asset = GeneratedAsset(kind="image_video", path=str(shot.path), tool="gapfill", provider=shot.provider,
                               params={"seconds": plan.seconds, "clip_id": shot.clip_id, "reused": shot.reused,
                                       "photo_clip_id": plan.photo.clip_id, "scene": plan.scene,
                                       "scene_source": plan.scene_source, "backdrop": plan.backdrop,
                                       "motion": plan.motion_name, "provenance": shot.provenance})
        slots[plan.slot] = s.model_copy(update={"chosen": keep, "asset": asset, "overlay": "",
                                                "alternates": s.alternates if keep else []})
        run.generated.append({"slot": plan.slot, "kind": "image_video", "tool": "gapfill", "path": str(shot.path),
                              "provider": shot.provider, "clip_id": shot.clip_id, "reused": shot.reused,
                              "photo_clip_id": plan.photo.clip_id, "scene": plan.scene,
                              "backdrop": plan.backdrop, "motion": plan.motion_name,
                              "steps": [c.get("step") for c in shot.provenance.get("chain", [])],
                              **({"try_on": shot.provenance["try_on"]} if "try_on" in shot.provenance else {})})
        run.warn(f"slot {plan.slot} ({s.role.value}): no footage; "
                 + ("reused" if shot.reused else "generated") + f" a moving shot of photo {plan.photo.clip_id} "
                 f"({plan.scene}, {plan.motion_name})")
    return sb.model_copy(update={"slots": slots})
