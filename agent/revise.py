"""Revisions are patches to the storyboard, not regenerations: each names the slots it touches, and only those are
re-fetched / re-scripted (the renderer's segment cache re-encodes only the shots that changed).

Every request is answered at once: a Patch that does what was asked, or a Refusal that says why not and what the
library could offer instead. A request that would silently redraw the same storyboard is a Refusal. Per-shot
actions from a review UI (swap in a clip, lock, the user's own line, a new search) are answered the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.brief import ASPECT, DUR, PLATFORM_ASPECT, TONES, norm_aspect
from agent.rules import CJK, MIN_SCORE, fold, trim_to_budget, within_budget
from agent.state import Candidate
from agent.steps import ALTERNATES, MOMENT_MIN_S, choice_from
from agent.templates import plan_storyboard
from cutpilot.errors import CutpilotError, InputError
from cutpilot.media import IMAGE_EXTS
from cutpilot.models import CONTENT_TYPE_ALIASES, FORMAT_ALIASES, ClipFormat, ClipRecord, ContentType
from cutpilot.storyboard import ClipChoice, Slot, SlotRole, Storyboard

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
    revoice: list[int] = Field(default_factory=list)  # slots whose (user-written) line is voiced again as is
    replan: bool = True  # False: nothing to re-do (a lock); the review comes back at once
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
    new_slot = s.model_copy(update={"chosen": None, "alternates": [], "asset": None, "content_types": [],
                                    "locked": False})
    if probe is not None and not probe(new_slot, sorted(set(_held(sb, 0)) | set(ex))):
        raise Refusal(f"no other clip of {s.product or 'this product'} can open the ad (every one is already used)",
                      ["'name the product in the hook'", "'make it 15 s' (fewer shots free footage)"])
    slots = list(sb.slots)
    slots[0] = new_slot
    return Patch(kind="swap_hook", storyboard=sb.model_copy(update={"slots": slots}), refetch=[0], rescript=[0],
                 exclude={0: ex}, note="new hook clip")


def _cards_to_footage(sb: Storyboard, t: str, probe: Probe | None) -> Patch:
    all_cards = [s.index for s in sb.slots if s.chosen is None and s.asset is not None and s.asset.kind == "card"]
    cards = [i for i in all_cards if not sb.slots[i].locked]
    cts = _ctype_in(t)
    fmts = _format_in(t)
    what = _what(fmts, cts, sb.brief.product)
    if all_cards and not cards:
        raise Refusal("every card in this storyboard is locked: unlock a shot to give it footage",
                      [f"unlock shot {i + 1}" for i in all_cards])
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


# --- per-shot review actions ------------------------------------------------------------------------------------
ACTIONS = ("swap", "lock", "line", "research")


@dataclass(frozen=True)
class ShotDesk:
    """What a per-shot answer may ask of the library (the graph binds it to the run's collaborators)."""

    get: Callable[[str], ClipRecord]  # a clip by id; CutpilotError when the library has none
    search: Probe  # usable hits for a slot at or above the threshold, minus the given ids
    usable: Callable[[ClipRecord], bool]  # not an avoided format, no text that tries to steer the planner
    claims: Callable[[str, str], tuple[list[str], str]]  # (forbidden claims in a text, the text without them)
    min_score: float = MIN_SCORE


def action_record(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer as run.json keeps it: the known keys, short (it came from outside)."""
    out: dict[str, Any] = {"action": str(answer.get("action"))[:40]}
    for k in ("slot", "clip_id", "locked", "text"):
        if k in answer:
            v = answer[k]
            out[k] = v if v is None or isinstance(v, bool | int | float) else str(v)[:500]
    return out


def apply_action(sb: Storyboard, answer: dict[str, Any], desk: ShotDesk) -> Patch:
    """One per-shot answer (`slot` is 0-based) → a Patch, or a Refusal that says why (never another error)."""
    action = answer.get("action")
    if action not in ACTIONS:
        raise Refusal(f"unknown action {str(action)[:40]!r}: the review takes approve, swap, lock, line or research",
                      ['{"action": "approve"}', '{"action": "swap", "slot": 0, "clip_id": "…"}',
                       '{"text": "replace shot 2 with a livestream clip"}'], kind="unknown_action")
    kind = str(action)
    i = _slot_of(sb, answer.get("slot"), kind)
    if kind == "swap":
        return _swap(sb, i, answer.get("clip_id"), desk)
    if kind == "lock":
        return _lock(sb, i, answer.get("locked", True))
    text = " ".join(str(answer.get("text") or "").split())
    if kind == "line":
        return _own_line(sb, i, text, desk)
    return _research(sb, i, text, desk)


def _slot_of(sb: Storyboard, raw: Any, kind: str) -> int:
    n = len(sb.slots)
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise Refusal(f"{kind} needs a slot number (0-based, 0–{n - 1}); got {str(raw)[:40]!r}",
                      [f"slot {k}" for k in range(n)], kind=kind)
    if not 0 <= raw < n:
        raise Refusal(f"there is no slot {raw}: the storyboard has {n} shots (slots 0–{n - 1})",
                      [f"slot {k}" for k in range(n)], kind=kind)
    return raw


def _alternate_ids(sb: Storyboard, i: int) -> list[str]:
    return [f"swap in clip {a.clip_id}" for a in sb.slots[i].alternates if a.clip_id not in _held(sb)][:4]


def _rule_broken(sb: Storyboard, s: Slot, rec: ClipRecord, desk: ShotDesk) -> str | None:
    """Why this clip may not stand in this slot (the same hard rules the search applies), or None."""
    want = s.product or sb.brief.product
    if want and rec.product and rec.product != want:
        return f"shows {rec.product}, not {want}"
    if want and not rec.product and s.require_product:
        return f"is not labelled {want} (this shot takes only footage of the product)"
    if s.formats and not set(s.formats) & set(rec.format):
        have = ", ".join(str(f) for f in rec.format) or "no format"
        return f"is {have}; this shot takes {', '.join(str(f) for f in s.formats)}"
    if not desk.usable(rec):
        return "is a format the brief avoids, or its text reads as instructions (treated as suspect data)"
    return None


def _taken(sb: Storyboard, i: int, rec: ClipRecord, desk: ShotDesk) -> list[tuple[float, float, int]]:
    """Stretches of this clip's footage (same content hash) that other slots show."""
    out: list[tuple[float, float, int]] = []
    for o in sb.slots:
        c = o.chosen
        if o.index == i or c is None:
            continue
        try:
            other = rec if c.clip_id == rec.clip_id else desk.get(c.clip_id)
        except CutpilotError:
            continue
        if other.source_hash != rec.source_hash:
            continue
        a = other.start if c.start is None else c.start
        b = other.end if c.end is None else c.end
        if min(b, rec.end) > max(a, rec.start):
            out.append((a, b, o.index))
    return out


def _free_stretch(rec: ClipRecord, taken: list[tuple[float, float, int]]) -> tuple[float, float] | None:
    """The longest part of the clip no other slot shows (another moment), when long enough to stand alone."""
    if not taken:
        return rec.start, rec.end
    if Path(rec.source).suffix.lower() in IMAGE_EXTS:
        return None
    cuts = sorted((max(a, rec.start), min(b, rec.end)) for a, b, _ in taken)
    free: list[tuple[float, float]] = []
    at = rec.start
    for a, b in cuts:
        if a > at:
            free.append((at, a))
        at = max(at, b)
    if rec.end > at:
        free.append((at, rec.end))
    best = max(free, key=lambda x: x[1] - x[0], default=None)
    return best if best is not None and best[1] - best[0] >= MOMENT_MIN_S else None


def _swap(sb: Storyboard, i: int, clip_id: Any, desk: ShotDesk) -> Patch:
    s = sb.slots[i]
    n = i + 1
    if not isinstance(clip_id, str) or not clip_id.strip():
        raise Refusal(f"swap needs the clip_id to put in shot {n}", _alternate_ids(sb, i), kind="swap")
    clip_id = clip_id.strip()
    try:
        rec = desk.get(clip_id)
    except CutpilotError:
        raise Refusal(f"the library has no clip {clip_id[:80]!r}", _alternate_ids(sb, i), kind="swap") from None
    if s.chosen is not None and s.chosen.clip_id == rec.clip_id:
        raise Refusal(f"shot {n} already shows clip {rec.clip_id}", _alternate_ids(sb, i), kind="swap")
    why = _rule_broken(sb, s, rec, desk)
    if why:
        raise Refusal(f"shot {n}: clip {rec.clip_id} {why}", _alternate_ids(sb, i), kind="swap")
    taken = _taken(sb, i, rec, desk)
    span = _free_stretch(rec, taken)
    if span is None:
        shots = ", ".join(str(j + 1) for *_, j in taken)
        raise Refusal(f"shot {n}: clip {rec.clip_id} is already on screen in shot {shots} and has no other moment "
                      f"of {MOMENT_MIN_S:g} s or more left", _alternate_ids(sb, i), kind="swap")
    known = next((a.score for a in s.alternates if a.clip_id == rec.clip_id), 0.0)
    choice = choice_from(rec, max(known, desk.min_score))  # the user's pick is never dropped as a weak match
    if span != (rec.start, rec.end):
        choice = choice.model_copy(update={"start": round(span[0], 3), "end": round(span[1], 3)})
    alts: list[ClipChoice] = []
    for a in [*([s.chosen] if s.chosen else []), *s.alternates]:
        if a.clip_id != rec.clip_id and a.clip_id not in {x.clip_id for x in alts}:
            alts.append(a)
    slots = list(sb.slots)
    slots[i] = s.model_copy(update={"chosen": choice, "alternates": alts[:ALTERNATES], "asset": None,
                                    "locked": True})
    moment = f" ({span[0]:.1f}–{span[1]:.1f} s, a moment shown nowhere else)" if taken else ""
    return Patch(kind="swap", storyboard=sb.model_copy(update={"slots": slots}), rescript=[i],
                 note=f"shot {n}: clip {rec.clip_id}{moment}, locked")


def _lock(sb: Storyboard, i: int, locked: Any) -> Patch:
    n = i + 1
    if not isinstance(locked, bool):
        raise Refusal(f"lock needs locked: true or false (got {str(locked)[:40]!r})",
                      [f'{{"action": "lock", "slot": {i}, "locked": true}}'], kind="lock")
    s = sb.slots[i]
    if s.locked == locked:
        raise Refusal(f"shot {n} is already {'locked' if locked else 'unlocked'}",
                      [f'{{"action": "lock", "slot": {i}, "locked": {str(not locked).lower()}}}'], kind="lock")
    slots = list(sb.slots)
    slots[i] = s.model_copy(update={"locked": locked})
    what = f"clip {s.chosen.clip_id}" if s.chosen else (s.asset.kind if s.asset else "shot")
    note = f"shot {n} locked: a re-plan keeps its {what}" if locked else f"shot {n} unlocked"
    return Patch(kind="lock", storyboard=sb.model_copy(update={"slots": slots}), replan=False, note=note)


def _own_line(sb: Storyboard, i: int, text: str, desk: ShotDesk) -> Patch:
    s = sb.slots[i]
    n = i + 1
    if not text:
        raise Refusal(f"the line for shot {n} is empty: send the words it should say", [], kind="line")
    if text == s.line:
        raise Refusal(f"shot {n} already says {text[:80]!r}", [], kind="line")
    lang = sb.captions_lang or sb.brief.lang
    if (lang == "en" and CJK.search(text)) or (lang == "zh" and not CJK.search(text)):
        raise Refusal(f"the ad's lines are in {lang}: write shot {n}'s line in {lang}",
                      ["'英文字幕'" if lang == "zh" else "'中文字幕'"], kind="line")
    room = s.target_s * sb.line_budget
    if not within_budget(text, room, lang):
        raise Refusal(f"shot {n}: the line is too long to say in its {s.target_s:g} s",
                      [repr(trim_to_budget(text, room, lang))], kind="line")
    bad, cleaned = desk.claims(text, f"slot {i} line")
    if bad:
        raise Refusal(f"shot {n}: the line claims {', '.join(bad)}, which the ad may not say (ad law or the "
                      "product's facts)", [repr(cleaned)] if cleaned else [], kind="line")
    slots = list(sb.slots)
    slots[i] = s.model_copy(update={"line": text, "line_source": "voiceover"})
    voiced = lang == sb.brief.lang
    return Patch(kind="line", storyboard=sb.model_copy(update={"slots": slots}), revoice=[i] if voiced else [],
                 note=f"shot {n}: your line {text[:80]!r}" + (", voiced" if voiced else ", as a caption"))


def _research(sb: Storyboard, i: int, text: str, desk: ShotDesk) -> Patch:
    s = sb.slots[i]
    n = i + 1
    if not text:
        raise Refusal(f"research needs the words to search shot {n}'s footage with", _alternate_ids(sb, i),
                      kind="research")
    q = text[:300]
    new_slot = s.model_copy(update={"query": q})
    ex = sorted(set(_held(sb, i)) | ({s.chosen.clip_id} if s.chosen else set()))
    hits = [h for h in desk.search(new_slot, ex)
            if h.clip.clip_id not in ex and desk.usable(h.clip) and _rule_broken(sb, s, h.clip, desk) is None
            and not _taken(sb, i, h.clip, desk)]
    if not hits:
        raise Refusal(f"shot {n}: the library has nothing for {q[:80]!r} that is not already in the ad",
                      [*_alternate_ids(sb, i), "other words for the same shot", "import more footage"],
                      kind="research")
    best = hits[0]
    alts = [choice_from(h.clip, h.relevance) for h in hits[1:ALTERNATES + 1]]
    slots = list(sb.slots)
    slots[i] = new_slot.model_copy(update={"chosen": choice_from(best.clip, best.relevance), "alternates": alts,
                                           "asset": None})
    return Patch(kind="research", storyboard=sb.model_copy(update={"slots": slots}), rescript=[i],
                 note=f"shot {n}: clip {best.clip.clip_id} for {q[:80]!r}")
