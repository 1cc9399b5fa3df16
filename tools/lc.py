"""Thin LangChain `@tool` adapters over the media tools, library search and title cards, for the LLM planner.

WHY thin: the tools are plain typed functions, tested on their own; these adapters only bind settings / library /
output folder, flatten arguments to JSON-friendly types and turn a typed error into `{"error": "<one line>"}` so
the model can react (e.g. "no offline voice … captions only") instead of the run crashing. Tool modules (rembg,
piper, OpenCV…) are imported only when a tool is called, so importing this module and building the list is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutpilot.errors import CutpilotError
from cutpilot.settings import Settings

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from index.library import Library


def _safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*a: Any, **kw: Any) -> Any:
        try:
            out = fn(*a, **kw)
        except CutpilotError as e:
            return {"error": e.one_line()}
        if hasattr(out, "model_dump"):
            return out.model_dump(mode="json")
        return out

    return run


def media_tools(settings: Settings, *, library: Library | None = None, out_dir: Path | None = None
                ) -> list[BaseTool]:
    """The agent's tool belt. Search and register_generated_clip are included only when a library is given."""
    from langchain_core.tools import tool

    from tools.assets import default_asset_dir

    out = out_dir or default_asset_dir(settings)

    def tts(text: str, lang: str = "en", voice: str | None = None) -> Any:
        """Speak a voice-over line. Returns the WAV path, duration_s and word timings (start_ms/end_ms).
        lang: 'en', 'zh' or another language code. An error mentioning 'captions only' means no voice exists."""
        from tools.tts import tts as f

        return f(text, lang=lang, settings=settings, out_dir=out, voice=voice)

    def music_bed(duration_s: float, mood: str = "upbeat") -> Any:
        """A music bed of exactly duration_s seconds. mood: upbeat, calm, energetic, luxury, warm, dramatic
        (Chinese words accepted). Uses the user's music folder when it has a match, else generates one."""
        from tools.music import music_bed as f

        return f(duration_s, mood, settings=settings, out_dir=out)

    def image_to_video(image: str, seconds: float = 3.0, width: int = 1080, height: int = 1920, fps: int = 30,
                       zoom_from: float = 1.0, zoom_to: float = 1.15, center_x_to: float = 0.5,
                       center_y_to: float = 0.5, fit: str = "crop", prompt: str = "") -> Any:
        """Animate a still photo into a clip (Ken Burns pan/zoom offline, or the configured image-to-video
        provider with `prompt`). fit: crop (fill the frame) or blur (whole image over a blurred copy)."""
        from cutpilot.timeline import KenBurns
        from tools.image_video import image_to_video as f

        motion = KenBurns(zoom_from=zoom_from, zoom_to=zoom_to, center_to=(center_x_to, center_y_to))
        return f(Path(image), seconds, motion=motion, size=(width, height), fps=fps, settings=settings,
                 out_dir=out, fit="blur" if fit == "blur" else "crop", prompt=prompt)

    def remove_background(image: str) -> Any:
        """Cut the product out of a photo: RGBA PNG with a transparent background (offline u2netp)."""
        from tools.background import remove_background as f

        return f(Path(image), out_dir=out)

    def replace_background(image: str, scene: str, width: int = 1080, height: int = 1920) -> Any:
        """Put the product from `image` into a scene: `scene` is an image path or a text prompt such as
        'The Bund in Shanghai, with the sunset by the river.' Returns a PNG of width x height."""
        from tools.background import replace_background as f

        return f(Path(image), scene, size=(width, height), settings=settings, out_dir=out)

    def try_on(garment_image: str, model_image: str, cloth_type: str = "upper") -> Any:
        """Dress the model photo in the garment via the configured try-on service. cloth_type: upper, lower
        or overall (dresses). Errors if no service is configured — there is no offline try-on."""
        from tools.tryon import try_on as f

        ct = cloth_type if cloth_type in ("upper", "lower", "overall") else "upper"
        return f(Path(garment_image), Path(model_image), settings=settings, out_dir=out,
                 cloth_type=ct)  # type: ignore[arg-type]

    def plan_try_on(garment: dict[str, str], models: list[dict[str, Any]]) -> Any:
        """Rank model photos for a garment by the matching rules (coat with coat, long with long, slim with
        slim…) and suggest background scenes. garment: {top_category, top_fit, top_length, sleeves,
        bottom_category, bottom_fit, bottom_length, style}; models: [{id, image, wearing: {...same keys}}]."""
        from tools.garments import Garment, ModelPhoto
        from tools.tryon import plan_try_on as f

        return f(Garment(**garment), [ModelPhoto(**m) for m in models])

    def scene_prompts(style: str) -> Any:
        """Background scene prompts for a womenswear type (formal_business, sportswear, casual, evening_party,
        resort, retro, streetwear, summer_light, bridal, autumn_winter; Chinese names accepted)."""
        from tools.garments import scene_prompts as f

        return {"style": style, "scenes": f(style)}

    def title_card(text: str, subtitle: str = "", style: str = "title", width: int = 1080,
                   height: int = 1920, primary: str = "#E3342F", secondary: str = "#1F2937",
                   text_colour: str = "#FFFFFF") -> Any:
        """A title or call-to-action card (PNG) in brand colours. style: title | cta."""
        from cutpilot.timeline import BrandKit
        from tools.cards import title_card as f

        brand = BrandKit(primary=primary, secondary=secondary, text=text_colour)
        return {"path": str(f(text, brand, size=(width, height), subtitle=subtitle, style=style, out_dir=out))}

    fns: list[Callable[..., Any]] = [tts, music_bed, image_to_video, remove_background, replace_background,
                                     try_on, plan_try_on, scene_prompts, title_card]

    if library is not None:
        lib = library

        def search_library(query: str, product: str | None = None, content_types: list[str] | None = None,
                           min_dur: float | None = None, max_dur: float | None = None, limit: int = 8) -> Any:
            """Search the clip library (hybrid text search). content_types: pain_point, product_intro,
            feature_demo, social_proof, usage_demo, offer_cta, … Returns clips with transcript and score."""
            from cutpilot.models import parse_content_type
            from index.search import SearchFilters

            flt = SearchFilters(product=product, content_types=[parse_content_type(c) for c in content_types or []],
                                min_dur=min_dur, max_dur=max_dur)
            return [h.to_json() for h in lib.search(query, flt, limit=limit)]

        def register_generated_clip(path: str, description: str, content_type: str = "product_intro",
                                    product: str | None = None) -> Any:
            """Write a generated asset (video or still) into the clip library as a generated clip, keeping its
            provenance from the asset's sidecar."""
            from tools.assets import load_sidecar
            from tools.assets import register_generated_clip as f

            prov = load_sidecar(Path(path)).get("asset") or {"tool": "unknown", "provider": "unknown"}
            return f(lib, Path(path), prov, product=product, content_type=content_type, description=description)

        fns += [search_library, register_generated_clip]
    built = []
    for fn in fns:
        t = tool(fn)  # schema and description from the real signature and docstring
        t.func = _safe(fn)  # …but typed errors come back as {"error": ...}
        built.append(t)
    return built
