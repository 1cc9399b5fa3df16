"""Revisions are patches to the storyboard, not regenerations: each names the slots it touches, and only those are
re-fetched / re-scripted (the renderer's segment cache re-encodes only the shots that changed).

Every request is answered at once: a Patch that does what was asked, or a Refusal that says why not and what the
library could offer instead. A request that would silently redraw the same storyboard is a Refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from agent.brief import ASPECT, DUR, PLATFORM_ASPECT, TONES, norm_aspect
from agent.rules import fold, within_budget
from agent.state import Candidate
from agent.templates import plan_storyboard
from cutpilot.errors import InputError
from cutpilot.models import CONTENT_TYPE_ALIASES, FORMAT_ALIASES, ClipFormat, ContentType
from cutpilot.storyboard import Slot, SlotRole, Storyboard

ZH_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
APPROVE = re.compile(
    r"^\s*(ok|okay|approve[d]?|yes|lgtm|looks good|go|render|好|好的|可以|通过|没问题|行)\s*[.!。！]?\s*$", re.I
)
EXAMPLES = ("'replace shot 3 with a livestream clip', '把第3个镜头换成产品画面', 'swap the hook' / '换个开头', "
            "'use real footage instead of the cards' / '用真实画面替换卡片', 'shorter lines' / '台词短一点', "
            "'name the product in the hook', 'make it 15 s', '英文字幕', 'more energetic music', 'make it 1:1'")
_FOOTAGE = re.compile(r"product (clip|shot|footage|video)|footage|real (picture|shot|video)|video clip|视频片段|"
                      r"真实画面|实拍|产品画面|产品镜头|产品视频|画面|片段", re.I)
_CARDS = re.compile(r"\bcards?\b|卡片|字卡|文字页", re.I)
_SHORTER = re.compile(r"shorter (lines|copy|text|script)|less (text|copy|talking)|fewer words|台词短|文案短|字少|"
                      r"少说|话少|短一点的(台词|文案)", re.I)
_NAME_HOOK = re.compile(r"(name|mention|say) the (product|brand)( name)? in the (hook|opening|first)|"
                        r"(开头|开场|第一句|钩子).{0,6}(提到|说出|出现|点出|带上).{0,4}(产品|品牌|名字)", re.I)
_HOOK = re.compile(r"hook|opening|开头|钩子|开场", re.I)
_CHANGE = re.compile(r"swap|change|replace|another|different|new|换|改", re.I)

Probe = Callable[[Slot, list[str]], list[Candidate]]


class Patch(BaseModel):
    """The result of one revision: the new storyboard and exactly which slots need work."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    storyboard: Storyboard
    refetch: list[int] = Field(default_factory=list)
    rescript: list[int] = Field(default_factory=list)
    exclude: dict[int, list[str]] = Field(default_factory=dict)
    note: str = ""


class Refusal(InputError):
    """A revision that cannot be applied: the reason, and what could be asked for instead."""

    def __init__(self, message: str, alternatives: list[str] | None = None, kind: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.alternatives = alternatives or []
        self.kind = kind


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


def _held(sb: Storyboard, but: int | None = None) -> list[str]:
    return [s.chosen.clip_id for s in sb.slots if s.chosen is not None and s.index != but]


def _what(fmts: list[ClipFormat], cts: list[ContentType], product: str | None) -> str:
    kind = " / ".join([f.value for f in fmts] + [c.value for c in cts]) or "footage"
    return f"{kind} of {product}" if product else kind


def _names_product(sb: Storyboard, t: str) -> bool:
    """The request names the ad's product (its label, or a word of it such as 乐高 / LEGO)."""
    name = fold(sb.brief.product or "")
    low = fold(t)
    if not name:
        return False
    return name in low or any(len(w) >= 2 and w in low for w in re.split(r"[\s·]+", name))


def _alternatives(sb: Storyboard, i: int) -> list[str]:
    """What the user could pick instead: the slot's retrieved alternates, then other requests that would work."""
    s = sb.slots[i]
    alts = [f"shot {i + 1}: clip {a.clip_id} ({a.content_type.value if a.content_type else 'clip'})"
            for a in s.alternates if a.clip_id not in _held(sb)]
    return alts[:4]


def apply_revision(sb: Storyboard, text: str, probe: Probe | None = None) -> Patch:
    """Parse one revision request (zh or en) into a storyboard patch; Refusal (an InputError) when it cannot be
    applied. `probe` answers "what would this slot get?" so a request the library cannot satisfy is refused at once
    instead of redrawing the same storyboard."""
    t = " ".join((text or "").split())
    low = t.lower()
    n = _shot_number(t)
    if n is not None and re.search(r"replace|swap|change|use|换|替换|改", low):
        return _replace_shot(sb, n, t, probe)
    if _NAME_HOOK.search(t):
        return _name_in_hook(sb)
    if _HOOK.search(t) and _CHANGE.search(t):
        return _swap_hook(sb, probe)
    if _CARDS.search(t) and (_FOOTAGE.search(t) or _ctype_in(t) or _format_in(t)):
        return _cards_to_footage(sb, t, probe)
    if _SHORTER.search(t):
        return _shorter_lines(sb)
    cap = re.search(r"(英文|英语|english|中文|chinese)\s*(字幕|subtitles?|captions?)", low) or re.search(
        r"(subtitles?|captions?)\s*(in)\s*(english|chinese)", low)
    if cap:
        lang = "en" if re.search(r"英文|英语|english", cap.group(0)) else "zh"
        if (sb.captions_lang or sb.brief.lang) == lang:
            raise Refusal(f"captions are already in {lang}", ["'英文字幕'" if lang == "zh" else "'中文字幕'"])
        new = sb.model_copy(update={"captions_lang": lang})
        return Patch(kind="captions_lang", storyboard=new, rescript=list(range(len(sb.slots))),
                     note=f"captions in {lang}")
    if re.search(r"music|音乐|配乐|bgm", low):
        mood = next((m for m, keys in TONES.items() if any(k in low for k in keys)), None)
        if mood is None and re.search(r"more (upbeat|exciting|intense)|更燃|更嗨|激情|欢快", low):
            mood = "energetic"
        if mood is None:
            raise Refusal(f"which music mood? (got {t!r})", ["'more energetic music'", "'calm music'",
                                                              "'premium music'", "'fun music'"])
        return Patch(kind="music", storyboard=sb.model_copy(update={"music_mood": mood}), note=f"music: {mood}")
    am = ASPECT.search(t)
    platform = next((p for p in PLATFORM_ASPECT if p in low), None)
    if (am or platform) and not DUR.search(t):
        aspect = norm_aspect(am.group(1)) if am else PLATFORM_ASPECT[platform or ""]
        brief = sb.brief.model_copy(update={"aspect": aspect, "platform": platform or sb.brief.platform})
        return Patch(kind="aspect", storyboard=sb.model_copy(update={"brief": brief}), note=f"aspect {aspect}")
    m = DUR.search(t)
    if m and re.search(r"make|change|改|变|缩|剪成|cut|shorten|longer|shorter|it|成", low):
        return _retime(sb, float(m.group(1)))
    raise Refusal(f"cannot apply revision {t!r}", list(EXAMPLES.split(", ")), kind="not_understood")


def _replace_shot(sb: Storyboard, n: int, t: str, probe: Probe | None) -> Patch:
    i = n - 1
    if not 0 <= i < len(sb.slots):
        raise Refusal(f"there is no shot {n}; the storyboard has {len(sb.slots)} shots",
                      [f"'replace shot {k + 1} …'" for k in range(len(sb.slots))])
    s = sb.slots[i]
    fmts = _format_in(t)
    cts = _ctype_in(t)
    upd: dict[str, object] = {"chosen": None, "alternates": [], "asset": None, "locked": False}
    if fmts:
        upd["formats"] = fmts
    if cts:
        upd["content_types"] = cts
    elif fmts or _FOOTAGE.search(t):
        upd["content_types"] = []  # "a livestream clip", "a product clip": any content of that kind
    if s.product and (_FOOTAGE.search(t) or _names_product(sb, t)):
        upd["require_product"] = True  # "a product clip", "乐高的视频片段": footage of this product, nothing else
    new_slot = s.model_copy(update=upd)
    ex = [s.chosen.clip_id] if s.chosen else []
    if probe is not None:
        found = probe(new_slot, sorted(set(_held(sb, i)) | set(ex)))
        if not found:
            raise Refusal(
                f"shot {n}: the library has no {_what(fmts, cts, s.product)} that is not already in the ad",
                [*_alternatives(sb, i), "'use real footage instead of the cards'", "'swap the hook'"])
    slots = list(sb.slots)
    slots[i] = new_slot
    note = f"shot {n}: another clip" + (f" ({_what(fmts, cts, s.product)})" if fmts or cts or s.product else "")
    return Patch(kind="replace_shot", storyboard=sb.model_copy(update={"slots": slots}), refetch=[i],
                 rescript=[i], exclude={i: ex}, note=note)


def _swap_hook(sb: Storyboard, probe: Probe | None) -> Patch:
    s = sb.slots[0]
    ex = [s.chosen.clip_id] if s.chosen else []
    new_slot = s.model_copy(update={"chosen": None, "alternates": [], "asset": None, "content_types": []})
    if probe is not None and not probe(new_slot, sorted(set(_held(sb, 0)) | set(ex))):
        raise Refusal(f"no other clip of {s.product or 'this product'} can open the ad (every one is already used)",
                      ["'name the product in the hook'", "'make it 15 s' (fewer shots free footage)"])
    slots = list(sb.slots)
    slots[0] = new_slot
    return Patch(kind="swap_hook", storyboard=sb.model_copy(update={"slots": slots}), refetch=[0], rescript=[0],
                 exclude={0: ex}, note="new hook clip")


def _cards_to_footage(sb: Storyboard, t: str, probe: Probe | None) -> Patch:
    cards = [s.index for s in sb.slots if s.chosen is None and s.asset is not None and s.asset.kind == "card"]
    cts = _ctype_in(t)
    fmts = _format_in(t)
    what = _what(fmts, cts, sb.brief.product)
    if not cards:
        raise Refusal("there are no full-screen cards in this storyboard: every shot already shows footage",
                      ["'replace shot N with …'", "'swap the hook'"])
    slots = list(sb.slots)
    done: list[int] = []
    held = _held(sb)
    for i in cards:
        new_slot = slots[i].model_copy(update={"content_types": cts, "asset": None, "require_product": True,
                                               **({"formats": fmts} if fmts else {})})
        if probe is not None:
            found = [c for c in probe(new_slot, held) if c.clip.clip_id not in held]
            if not found:
                continue
            held.append(found[0].clip.clip_id)
        slots[i] = new_slot
        done.append(i)
    if not done:
        raise Refusal(f"the library has no {what} left that is not already in the ad, so the cards stay",
                      ["'replace shot N with a product clip'", "import more footage: cutpilot ingest …"])
    kept = [i + 1 for i in cards if i not in done]
    note = f"shots {', '.join(str(i + 1) for i in done)}: {what} instead of cards" + (
        f"; shots {kept} stay cards (nothing left to show)" if kept else "")
    return Patch(kind="cards_to_footage", storyboard=sb.model_copy(update={"slots": slots}), refetch=done,
                 rescript=done, note=note)


def _shorter_lines(sb: Storyboard) -> Patch:
    written = [s.index for s in sb.slots if s.line and s.line_source != "clip_audio"]
    if not written:
        raise Refusal("every shot plays the footage's own speech; there are no written lines to shorten",
                      ["'replace shot N with …'"])
    scale = round(sb.line_budget * 0.7, 3)
    if scale < 0.3:
        raise Refusal("the lines are already as short as they can be", ["'make it 15 s'", "'swap the hook'"])
    new = sb.model_copy(update={"line_budget": scale})
    return Patch(kind="shorter_lines", storyboard=new, rescript=written,
                 note=f"lines now use {round(scale * 100)}% of the speaking budget")


def _name_in_hook(sb: Storyboard) -> Patch:
    name = sb.brief.product
    if not name:
        raise Refusal("the brief names no product to put in the hook", ["'make an ad for <product>'"])
    hook = sb.slots[0]
    if fold(name) in fold(hook.line):
        raise Refusal(f"the hook already names {name}: {hook.line!r}", ["'swap the hook'"])
    slots = list(sb.slots)
    slots[0] = hook.model_copy(update={"line_source": "voiceover"})
    new = sb.model_copy(update={"slots": slots, "hook_names_product": True})
    return Patch(kind="name_in_hook", storyboard=new, rescript=[0], note=f"the hook now names {name}")


def _retime(sb: Storyboard, seconds: float) -> Patch:
    """New length: new role template; slots whose role survives keep their clip (and line if it still fits)."""
    if not 3 <= seconds <= 180:
        raise Refusal(f"duration {seconds:g} s is out of range (3–180 s)", ["'make it 15 s'", "'make it 30 s'"])
    if abs(seconds - sb.brief.duration_s) < 0.05:
        raise Refusal(f"the ad is already {seconds:g} s", ["'make it 15 s'", "'make it 30 s'"])
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
