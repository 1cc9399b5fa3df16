"""Virtual try-on through a self-hosted CatVTON-style HTTP service, guided by the offline matching rules.

WHY no offline fallback: there is no honest way to dress a person offline — pasting a garment onto a photo would be
a fake. With no provider configured `try_on` says so (ProviderError), and the offline parts stay useful: rank the
model photos by the practitioners' rules and pick scene prompts by womenswear type (tools/garments.py).

Protocol (one concrete, configurable implementation): POST {CUTPILOT_TRYON_URL}/tryon, multipart fields
`garment` and `model` (image files) and form field `cloth_type` (upper | lower | overall); the answer is the image
itself or JSON carrying `image_b64` / `b64_json` / `url`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from cutpilot.errors import InputError, ProviderError
from cutpilot.media import IMAGE_EXTS
from cutpilot.settings import Settings
from tools.assets import AssetResult, asset_key, asset_path, cached, default_asset_dir, save_sidecar
from tools.garments import Garment, ModelMatch, ModelPhoto, infer_style, match_score, rank_models, scene_prompts
from tools.providers import ProviderClient, media_from_response, write_bytes

ClothType = Literal["upper", "lower", "overall"]
MIN_MATCH = 0.5


class TryOnPlan(BaseModel):
    """Offline plan: model photos ranked by the matching rules, the womenswear type and its scene prompts."""

    cloth_type: ClothType
    models: list[ModelMatch]
    style: str
    scenes: list[str]
    notes: list[str]


def plan_try_on(garment: Garment, models: list[ModelPhoto], *, top_k: int = 3) -> TryOnPlan:
    """Rank candidate model photos for a garment and choose background scenes — no provider needed."""
    if not models:
        raise InputError("plan_try_on: no candidate model photos")
    ranked = rank_models(garment, models, top_k=top_k)
    style = infer_style(garment)
    notes = [] if garment.style else [f"womenswear type inferred from the garment: {style}"]
    if ranked[0].score < MIN_MATCH:
        notes.append(f"best model photo matches poorly ({ranked[0].score:.2f}): expect try-on artefacts; "
                     "shoot or generate a model wearing a similar garment")
    return TryOnPlan(cloth_type=garment.cloth_type(), models=ranked, style=style,  # type: ignore[arg-type]
                     scenes=scene_prompts(style), notes=notes)


def try_on(garment_image: Path, model_image: Path, *, settings: Settings, out_dir: Path | None = None,
           cloth_type: ClothType | None = None, garment: Garment | None = None,
           wearing: Garment | None = None) -> AssetResult:
    """The model photo wearing the garment, from the configured try-on service. `garment` / `wearing`
    (what the model wears now) are optional attributes: their match is checked and noted in the provenance."""
    garment_image, model_image = Path(garment_image), Path(model_image)
    for p, what in ((garment_image, "garment"), (model_image, "model")):
        if not p.is_file():
            raise InputError(f"try_on: {what} image {p} not found")
        if p.suffix.lower() not in IMAGE_EXTS:
            raise InputError(f"try_on: {what} file {p.name} is not an image")
    if not settings.tryon_url:
        raise ProviderError("try-on: no try-on provider configured (set CUTPILOT_TRYON_URL to a CatVTON-style "
                            "service); there is no offline try-on — use plan_try_on to pick model photos, or "
                            "product stills instead")
    ctype: ClothType = cloth_type or (garment.cloth_type() if garment else "upper")  # type: ignore[assignment]
    notes: list[str] = []
    params: dict[str, object] = {"cloth_type": ctype, "url": settings.tryon_url}
    if garment is not None and wearing is not None:
        score, reasons = match_score(garment, wearing)
        params["match_score"] = score
        params["match_reasons"] = reasons
        if score < MIN_MATCH:
            notes.append(f"garment and model outfit match poorly ({score:.2f}: {'; '.join(reasons)})")
    out = out_dir or default_asset_dir(settings)
    key = asset_key("try_on", (garment_image, model_image), {"cloth_type": ctype, "url": settings.tryon_url})
    hit = cached(out, "try_on", key, ".png")
    if hit is not None:
        return hit
    client = ProviderClient.from_settings(settings, settings.tryon_url, name="try-on provider", setting="tryon_url")
    with client:
        resp = client.request("POST", "/tryon", data={"cloth_type": ctype}, files={
            "garment": (garment_image.name, garment_image.read_bytes(), "application/octet-stream"),
            "model": (model_image.name, model_image.read_bytes(), "application/octet-stream"),
        })
        raw = media_from_response(resp, "try-on provider", client)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            size = im.size
            buf = io.BytesIO()
            im.convert("RGB").save(buf, "PNG")
    except (UnidentifiedImageError, OSError) as e:
        raise ProviderError(f"try-on provider returned an unreadable image ({len(raw)} bytes)") from e
    path = write_bytes(buf.getvalue(), asset_path(out, "try_on", key, ".png"))
    res = AssetResult(path=path, kind="try_on", tool="try_on", provider=f"http:{settings.tryon_url}",
                      params={**params, "garment": str(garment_image), "model": str(model_image),
                              "size": list(size)}, key=key, notes=notes)
    return save_sidecar(res)
