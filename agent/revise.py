"""Revisions are patches to the storyboard, not regenerations: each names the slots it touches, and only those are
re-fetched / re-scripted (the renderer's segment cache re-encodes only the shots that changed)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from agent.brain.offline import (
    _ASPECT,
    _DUR,
    PLATFORM_ASPECT,
    TONES,
    _norm_aspect,
    plan_storyboard,
    within_budget,
)
from cutpilot.errors import InputError
from cutpilot.models import CONTENT_TYPE_ALIASES, FORMAT_ALIASES, ClipFormat, ContentType
from cutpilot.storyboard import SlotRole, Storyboard

ZH_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
APPROVE = re.compile(
    r"^\s*(ok|okay|approve[d]?|yes|lgtm|looks good|go|render|好|好的|可以|通过|没问题|行)\s*[.!。！]?\s*$", re.I
)


class Patch(BaseModel):
    """The result of one revision: the new storyboard and exactly which slots need work."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    storyboard: Storyboard
    refetch: list[int] = Field(default_factory=list)
    rescript: list[int] = Field(default_factory=list)
    exclude: dict[int, list[str]] = Field(default_factory=dict)
    note: str = ""


def is_approval(text: str) -> bool:
    return bool(APPROVE.match(text or ""))


def _shot_number(text: str) -> int | None:
    m = re.search(r"(?:shot|slot|clip|scene|镜头|片段)\s*#?\s*(\d+)", text, re.I) or re.search(
        r"第\s*(\d+|[一二两三四五六七八九十])\s*(?:个|段)?\s*(?:镜头|片段|分镜|shot)", text)
    if not m:
        return None
    raw = m.group(1)
    return int(raw) if raw.isdigit() else ZH_NUM[raw]


def _format_in(text: str) -> list[ClipFormat]:
    low = text.lower()
    return [f for a, f in sorted(FORMAT_ALIASES.items(), key=lambda kv: -len(kv[0])) if a in low][:1] or (
        [ClipFormat.livestream] if "livestream" in low or "live stream" in low else [])


def _ctype_in(text: str) -> list[ContentType]:
    low = text.lower()
    for a, ct in sorted(CONTENT_TYPE_ALIASES.items(), key=lambda kv: -len(kv[0])):
        if len(a) > 2 and a in low:
            return [ct]
    return []


def apply_revision(sb: Storyboard, text: str) -> Patch:
    """Parse one revision request (zh or en) into a storyboard patch; InputError when it is not understood."""
    t = " ".join((text or "").split())
    low = t.lower()
    n = _shot_number(t)
    if n is not None and re.search(r"replace|swap|change|use|换|替换|改", low):
        i = n - 1
        if not 0 <= i < len(sb.slots):
            raise InputError(f"there is no shot {n}; the storyboard has {len(sb.slots)} shots")
        s = sb.slots[i]
        fmts = _format_in(t)
        cts = _ctype_in(t)
        upd: dict[str, object] = {"chosen": None, "alternates": [], "asset": None, "locked": False}
        if fmts:
            upd["formats"] = fmts
        if cts:
            upd["content_types"] = cts
        elif fmts:
            upd["content_types"] = []  # "a livestream clip": any content of that format, ranked by the slot query
        slots = list(sb.slots)
        slots[i] = s.model_copy(update=upd)
        ex = [s.chosen.clip_id] if s.chosen else []
        note = f"shot {n}: new clip" + (f" ({fmts[0].value})" if fmts else "")
        return Patch(kind="replace_shot", storyboard=sb.model_copy(update={"slots": slots}), refetch=[i],
                     rescript=[i], exclude={i: ex}, note=note)
    if re.search(r"hook|开头|钩子|开场", low) and re.search(r"swap|change|replace|another|different|换|改", low):
        s = sb.slots[0]
        slots = list(sb.slots)
        slots[0] = s.model_copy(update={"chosen": None, "alternates": [], "asset": None})
        ex = [s.chosen.clip_id] if s.chosen else []
        return Patch(kind="swap_hook", storyboard=sb.model_copy(update={"slots": slots}), refetch=[0], rescript=[0],
                     exclude={0: ex}, note="new hook clip")
    cap = re.search(r"(英文|英语|english|中文|chinese)\s*(字幕|subtitles?|captions?)", low) or re.search(
        r"(subtitles?|captions?)\s*(in)\s*(english|chinese)", low)
    if cap:
        lang = "en" if re.search(r"英文|英语|english", cap.group(0)) else "zh"
        new = sb.model_copy(update={"captions_lang": lang})
        return Patch(kind="captions_lang", storyboard=new, rescript=list(range(len(sb.slots))),
                     note=f"captions in {lang}")
    if re.search(r"music|音乐|配乐|bgm", low):
        mood = next((m for m, keys in TONES.items() if any(k in low for k in keys)), None)
        if mood is None and re.search(r"more (upbeat|exciting|intense)|更燃|更嗨|激情|欢快", low):
            mood = "energetic"
        if mood is None:
            raise InputError(f"which music mood? try 'more energetic music' or 'calm music' (got {t!r})")
        return Patch(kind="music", storyboard=sb.model_copy(update={"music_mood": mood}), note=f"music: {mood}")
    am = _ASPECT.search(t)
    platform = next((p for p in PLATFORM_ASPECT if p in low), None)
    if (am or platform) and not _DUR.search(t):
        aspect = _norm_aspect(am.group(1)) if am else PLATFORM_ASPECT[platform or ""]
        brief = sb.brief.model_copy(update={"aspect": aspect, "platform": platform or sb.brief.platform})
        return Patch(kind="aspect", storyboard=sb.model_copy(update={"brief": brief}), note=f"aspect {aspect}")
    m = _DUR.search(t)
    if m and re.search(r"make|change|改|变|缩|剪成|cut|shorten|longer|shorter|it|成", low):
        return _retime(sb, float(m.group(1)))
    raise InputError(
        f"cannot apply revision {t!r}; try: 'replace shot 3 with a livestream clip', 'make it 15 s', '英文字幕', "
        "'more energetic music', 'swap the hook', 'make it 1:1'"
    )


def _retime(sb: Storyboard, seconds: float) -> Patch:
    """New length: new role template; slots whose role survives keep their clip (and line if it still fits)."""
    if not 3 <= seconds <= 180:
        raise InputError(f"duration {seconds:g} s is out of range (3–180 s)")
    brief = sb.brief.model_copy(update={"duration_s": seconds})
    fresh = plan_storyboard(brief)
    pool = list(sb.slots)
    slots = []
    refetch: list[int] = []
    rescript: list[int] = []
    lang = sb.captions_lang or brief.lang
    for ns in fresh.slots:
        old = next((o for o in pool if o.role == ns.role), None)
        if old is None:
            slots.append(ns.model_copy(update={"formats": ns.formats}))
            refetch.append(ns.index)
            rescript.append(ns.index)
            continue
        pool.remove(old)
        slots.append(old.model_copy(update={"index": ns.index, "target_s": ns.target_s}))
        if old.role != SlotRole.offer_cta and old.chosen is None:
            refetch.append(ns.index)
        if not old.line or not within_budget(old.line, ns.target_s, lang) or old.line_source != "clip_audio":
            rescript.append(ns.index)
    new = sb.model_copy(update={"brief": brief, "slots": slots})
    return Patch(kind="duration", storyboard=new, refetch=refetch, rescript=rescript, note=f"now {seconds:g} s")
