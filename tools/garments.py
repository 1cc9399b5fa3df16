"""Garment attributes, model–garment matching and the scene-by-womenswear-type table (data in garments.yaml).

WHY matching matters: virtual try-on models (CatVTON and kin) repaint the region of clothing the model photo
already wears. A long coat tried onto a model in a cropped tee has no region to fill and comes out cut off; a
loose sweater onto a slim bodysuit looks painted on. Practitioners therefore pick the model photo by rule: long
with long, short with short, coat with coat, dress with dress, slim with slim, loose with loose. These rules rank
candidate model photos so the agent tries the best one first — offline, before any provider is paid.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cutpilot.errors import InputError


@lru_cache(maxsize=1)
def data() -> dict[str, Any]:
    """The taxonomy tables (tools/garments.yaml, shipped as package data)."""
    text = resources.files("tools").joinpath("garments.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _key(s: str) -> str:
    return " ".join(s.strip().lower().replace("_", " ").replace("-", " ").split())


def _parse(value: str | None, canon: list[str], aliases: dict[str, str], what: str) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    raw = str(value).strip()
    k = _key(raw)
    for c in canon:
        if k == _key(c):
            return c
    for alias, c in aliases.items():
        if raw == alias or k == _key(alias):
            return c
    raise InputError(f"unknown {what} {value!r}; use one of: {', '.join(canon)} (or a Chinese alias)")


def _category_aliases(table: str) -> tuple[list[str], dict[str, str]]:
    t = data()[table]
    return list(t), {a: c for c, al in t.items() for a in (al or [])}


def parse_top_category(v: str | None) -> str | None:
    return _parse(v, *_category_aliases("top_categories"), "top category")


def parse_bottom_category(v: str | None) -> str | None:
    return _parse(v, *_category_aliases("bottom_categories"), "bottom category")


def parse_fit(v: str | None) -> str | None:
    return _parse(v, data()["fits"], data()["fit_aliases"], "fit")


def parse_top_length(v: str | None) -> str | None:
    return _parse(v, data()["top_lengths"], data()["top_length_aliases"], "top length")


def parse_sleeves(v: str | None) -> str | None:
    return _parse(v, data()["sleeves"], data()["sleeve_aliases"], "sleeve length")


def parse_bottom_length(v: str | None) -> str | None:
    return _parse(v, data()["bottom_lengths"], data()["bottom_length_aliases"], "bottom length")


class Garment(BaseModel):
    """What a garment is (or what a model photo is wearing). All fields optional; aliases accepted."""

    model_config = ConfigDict(extra="forbid")
    top_category: str | None = None
    top_fit: str | None = None
    top_length: str | None = None
    sleeves: str | None = None
    bottom_category: str | None = None
    bottom_fit: str | None = None
    bottom_length: str | None = None
    style: str | None = Field(default=None, description="womenswear type (scene table key or alias)")

    @field_validator("top_category", mode="before")
    @classmethod
    def _tc(cls, v: Any) -> str | None:
        return parse_top_category(v)

    @field_validator("bottom_category", mode="before")
    @classmethod
    def _bc(cls, v: Any) -> str | None:
        return parse_bottom_category(v)

    @field_validator("top_fit", "bottom_fit", mode="before")
    @classmethod
    def _fit(cls, v: Any) -> str | None:
        return parse_fit(v)

    @field_validator("top_length", mode="before")
    @classmethod
    def _tl(cls, v: Any) -> str | None:
        return parse_top_length(v)

    @field_validator("sleeves", mode="before")
    @classmethod
    def _sl(cls, v: Any) -> str | None:
        return parse_sleeves(v)

    @field_validator("bottom_length", mode="before")
    @classmethod
    def _bl(cls, v: Any) -> str | None:
        return parse_bottom_length(v)

    @field_validator("style", mode="before")
    @classmethod
    def _style(cls, v: Any) -> str | None:
        return None if v in (None, "") else resolve_style(str(v))

    def cloth_type(self) -> str:
        """CatVTON's region: upper | lower | overall (a dress covers both)."""
        if self.top_category == "dress" or self.bottom_category == "dress":
            return "overall"
        if self.top_category is None and self.bottom_category is not None:
            return "lower"
        return "upper"


class ModelPhoto(BaseModel):
    """A candidate model photo and what the model is wearing in it."""

    model_config = ConfigDict(extra="forbid")
    id: str
    image: Path | None = None
    wearing: Garment


class ModelMatch(BaseModel):
    model: ModelPhoto
    score: float
    reasons: list[str]


def _family(category: str | None, kind: str = "category") -> str | None:
    if category is None:
        return None
    table = data()["category_families" if kind == "category" else "fit_families"]
    return next((fam for fam, members in table.items() if category in members), None)


def _length_rank(value: str | None, table: str) -> float | None:
    """Length as 0..1 along its scale (tops: cropped → extra_long; bottoms: mini → floor)."""
    if value is None:
        return None
    scale = list(data()[table])
    if table == "bottom_lengths":
        scale = scale[::-1]
    return scale.index(value) / (len(scale) - 1)


def match_score(garment: Garment, wearing: Garment) -> tuple[float, list[str]]:
    """0..1: category family (coat with coat, dress with dress), length (long with long, short with short),
    fit (slim with slim, loose with loose), sleeves. Half weighted mean, half the worst single agreement, so one
    broken rule sinks a candidate. Unknown attributes neither help nor hurt."""
    parts: list[tuple[float, float, str]] = []  # (weight, agreement 0..1, reason)

    def cat(g: str | None, w: str | None, label: str) -> None:
        fg, fw = _family(g), _family(w)
        if fg and fw:
            ok = fg == fw
            parts.append((3.0, 1.0 if ok else 0.0, f"{label} {g} {'matches' if ok else 'vs'} {w}"
                                                    + (f" ({fg})" if ok else f" ({fg} ≠ {fw})")))

    cat(garment.top_category, wearing.top_category, "top")
    cat(garment.bottom_category, wearing.bottom_category, "bottom")
    for attr, table, label in (("top_length", "top_lengths", "top length"),
                               ("bottom_length", "bottom_lengths", "bottom length")):
        a, b = _length_rank(getattr(garment, attr), table), _length_rank(getattr(wearing, attr), table)
        if a is not None and b is not None:
            agree = max(0.0, 1.0 - 1.5 * abs(a - b))
            parts.append((2.0, agree, f"{label} {getattr(garment, attr)} vs {getattr(wearing, attr)}"))
    for attr, label in (("top_fit", "top fit"), ("bottom_fit", "bottom fit")):
        fa, fb = _family(getattr(garment, attr), "fit"), _family(getattr(wearing, attr), "fit")
        if fa and fb:
            agree = 1.0 if fa == fb else (0.5 if "regular" in (fa, fb) else 0.0)
            parts.append((1.5, agree, f"{label} {getattr(garment, attr)} vs {getattr(wearing, attr)}"))
    if garment.sleeves and wearing.sleeves:
        sl = list(data()["sleeves"])
        d = abs(sl.index(garment.sleeves) - sl.index(wearing.sleeves)) / (len(sl) - 1)
        parts.append((1.0, 1.0 - d, f"sleeves {garment.sleeves} vs {wearing.sleeves}"))
    if not parts:
        return 0.5, ["no comparable attributes; neutral"]
    total = sum(w for w, _, _ in parts)
    mean = sum(w * a for w, a, _ in parts) / total
    # A broken rule is a broken rule: the worst agreement weighs as much as the average of the rest.
    return round(0.5 * mean + 0.5 * min(a for _, a, _ in parts), 4), [r for _, _, r in parts]


def rank_models(garment: Garment, models: list[ModelPhoto], top_k: int | None = None) -> list[ModelMatch]:
    """Candidate model photos best-first (ties keep input order)."""
    ranked = []
    for m in models:
        score, reasons = match_score(garment, m.wearing)
        ranked.append(ModelMatch(model=m, score=score, reasons=reasons))
    ranked.sort(key=lambda r: -r.score)
    return ranked[:top_k] if top_k else ranked


# --- scenes -------------------------------------------------------------------------------------------------
def resolve_style(style: str) -> str:
    table = data()["scenes"]
    k = _key(style)
    for name, entry in table.items():
        if k == _key(name) or any(style.strip() == a or k == _key(a) for a in entry.get("aliases", [])):
            return name
    raise InputError(f"unknown womenswear type {style!r}; use one of: {', '.join(table)} (or a Chinese alias)")


def infer_style(g: Garment) -> str:
    """A womenswear type from the garment when none was given (rules of thumb, said as such by callers)."""
    if g.style:
        return g.style
    if g.top_category == "suit" or g.bottom_category == "suit_trousers":
        return "formal_business"
    if g.bottom_category == "sports_trousers":
        return "sportswear"
    if g.top_category in {"down_jacket", "fur", "overcoat", "sweater"}:
        return "autumn_winter"
    if (g.top_category == "dress" or g.bottom_category == "dress") and g.bottom_length == "floor":
        return "evening_party"
    if g.sleeves == "sleeveless" or g.bottom_category == "shorts" or g.bottom_length == "mini":
        return "summer_light"
    if g.top_category in {"leather_jacket", "hoodie"} or g.bottom_category == "cargo":
        return "streetwear"
    return "casual"


def scene_prompts(style: str | None = None, garment: Garment | None = None) -> list[str]:
    """Background scene prompts for a womenswear type (or one inferred from the garment)."""
    name = resolve_style(style) if style else infer_style(garment or Garment())
    return list(data()["scenes"][name]["scenes"])


def product_scenes(text: str) -> tuple[str, list[str]]:
    """(product type, scene prompts) for a non-garment product from words in its name / description."""
    table: dict[str, Any] = data()["product_scenes"]
    low = text.lower()
    words = set(re.findall(r"[a-z]+", low))
    for name, entry in table.items():
        for k in entry.get("keywords") or []:
            if (k in words) if k.isascii() else (k in text):
                return name, list(entry["scenes"])
    return "default", list(table["default"]["scenes"])


# --- attributes of a photo --------------------------------------------------------------------------------------
GARMENT_KEYS = tuple(Garment.model_fields)


def parse_garment(value: Any) -> dict[str, str]:
    """Annotated garment attributes (a mapping, or 'key=value, key=value' text; aliases accepted) as canonical
    Garment keys; an unknown key or value is an InputError naming it, never dropped."""
    if isinstance(value, str):
        pairs: dict[str, Any] = {}
        for part in re.split(r"[,，;；]", value):
            if not part.strip():
                continue
            if "=" not in part and ":" not in part:
                raise InputError(f"garment: {part.strip()!r} is not key=value (keys: {', '.join(GARMENT_KEYS)})")
            k, _, v = part.replace("：", ":").replace(":", "=", 1).partition("=")
            pairs[k.strip()] = v.strip()
        value = pairs
    if not isinstance(value, dict):
        raise InputError(f"garment must be a mapping of {', '.join(GARMENT_KEYS)}, got {type(value).__name__}")
    unknown = [k for k in value if k not in GARMENT_KEYS]
    if unknown:
        raise InputError(f"garment: unknown key {unknown[0]!r}; use: {', '.join(GARMENT_KEYS)}")
    g = Garment(**{k: (None if v in (None, "") else str(v)) for k, v in value.items()})
    return {k: v for k, v in g.model_dump().items() if v is not None}


def _found(text: str, low: str, words: set[str], term: str) -> int:
    """Where a term occurs (-1: not at all): whole words for Latin terms, substrings for Chinese ones."""
    t = term.lower()
    if t.isascii():
        if " " in t or "-" in t:
            return low.find(t)
        return low.find(t) if t in words else -1
    return text.find(term)


def infer_garment(text: str) -> dict[str, str]:
    """Garment attributes read from the words around a photo (its file name, description, tags): the category
    first — nothing is inferred without one, so a phrase such as 'long table' says nothing — then fit, length
    and sleeves. Rules of thumb from the taxonomy's own aliases; callers record the result as inferred."""
    low = " ".join(text.lower().replace("_", " ").split())
    words = set(re.findall(r"[a-z0-9/]+(?:-[a-z0-9]+)*", low)) | set(re.findall(r"[a-z0-9]+", low))
    d = data()
    out: dict[str, str] = {}

    def best(table: dict[str, list[str] | None]) -> str | None:
        hits = []
        for canon, aliases in table.items():
            for term in [canon.replace("_", " "), *(aliases or [])]:
                at = _found(text, low, words, term)
                if at >= 0:
                    hits.append((-len(term), at, canon))  # the longest term wins ('trench coat' over 'coat')
        return min(hits)[2] if hits else None

    top = best(d["top_categories"])
    bottom = best(d["bottom_categories"])
    if top is None and bottom is None:
        return {}
    if top == "dress" or bottom == "dress":
        out["top_category"] = out["bottom_category"] = "dress"
    else:
        if top:
            out["top_category"] = top
        if bottom:
            out["bottom_category"] = bottom
    fit = best({f: [a for a, c in d["fit_aliases"].items() if c == f] for f in d["fits"]})
    if fit:
        out["top_fit" if top else "bottom_fit"] = fit
    sleeve = None
    for term, canon in [("long sleeve", "long"), ("long-sleeve", "long"), ("short sleeve", "short"),
                        ("short-sleeve", "short"), ("sleeveless", "sleeveless"), *d["sleeve_aliases"].items()]:
        if _found(text, low, words, term) >= 0:
            sleeve = canon
            break
    if sleeve and top:
        out["sleeves"] = sleeve
    scrubbed = text
    for term in ("长袖", "短袖", "中袖", "长裤", "长裙", "短裤", "短裙"):
        scrubbed = scrubbed.replace(term, "")
    slow = re.sub(r"\b(long|short)[ -]sleeves?\b", " ", low)
    swords = set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", slow)) | set(re.findall(r"[a-z0-9]+", slow))
    if top and top != "dress":
        table = {c: [a for a, x in d["top_length_aliases"].items() if x == c] for c in d["top_lengths"]}
        length = None
        hits = [(-len(t), _found(scrubbed, slow, swords, t), c) for c, al in table.items()
                for t in [c.replace("_", " "), *al]]
        hits = [h for h in hits if h[1] >= 0]
        if hits:
            length = min(hits)[2]
        if length:
            out["top_length"] = length
    if bottom:
        table = {c: [a for a, x in d["bottom_length_aliases"].items() if x == c] for c in d["bottom_lengths"]}
        if "长裙" in text or "长裤" in text or "maxi" in words:
            out["bottom_length"] = "long" if "maxi" not in words else "floor"
        else:
            hits = [(-len(t), _found(scrubbed, slow, swords, t), c) for c, al in table.items()
                    for t in [c.replace("_", " "), *al] if t not in ("短",)]
            hits = [h for h in hits if h[1] >= 0]
            if hits:
                out["bottom_length"] = min(hits)[2]
    style = None
    for name, entry in d["scenes"].items():
        for term in [name.replace("_", " "), *entry.get("aliases", [])]:
            if (len(term) > 5 if term.isascii() else len(term) >= 2) and _found(text, low, words, term) >= 0:
                style = name
                break
        if style:
            break
    if style:
        out["style"] = style
    return out
