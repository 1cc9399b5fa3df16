"""Deterministic assembly (no LLM): fit each slot's clip in/out to a duration so the ad totals the target
within ±0.5 s (exactly, to the millisecond, here), then place captions, voiceover and music → Timeline IR.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.rules import CJK
from agent.state import MusicTrack, VoiceTrack
from cutpilot.media import IMAGE_EXTS
from cutpilot.storyboard import Slot, SlotRole, Storyboard
from cutpilot.timeline import Timeline, build_timeline

MIN_SLOT_MS = 1000
HOOK_MAX_MS = 3000
CARD_MIN_MS = 1500


def slot_capacity_ms(slot: Slot) -> int | None:
    """Longest this slot can run without freezing a frame (None = any length: cards, stills)."""
    if slot.chosen is not None and slot.chosen.source and Path(slot.chosen.source).suffix.lower() in IMAGE_EXTS:
        return None
    if slot.chosen is not None and slot.chosen.start is not None and slot.chosen.end is not None:
        return max(1, round((slot.chosen.end - slot.chosen.start) * 1000))
    return None


def w_voice(v: VoiceTrack) -> int:
    return round(v.duration_s * 1000) + 200


def fit_durations(storyboard: Storyboard, voice: dict[int, VoiceTrack]) -> list[int]:
    """Slot lengths in ms that sum exactly to the target. Clip audio keeps its speech whole where it can, voiceover
    gets room for its words, clips are not stretched past their length unless nothing else can absorb the time."""
    total = round(storyboard.brief.duration_s * 1000)
    slots = storyboard.slots
    want: list[int] = []
    lo: list[int] = []
    hi: list[float] = []
    for s in slots:
        cap = slot_capacity_ms(s)
        w = round(s.target_s * 1000)
        if s.line_source == "clip_audio" and cap is not None:
            w = cap
        v = voice.get(s.index)
        if v is not None:
            w = max(w, round(v.duration_s * 1000) + 200)
        if cap is not None:  # a clip runs its own length; longer only when its voiceover needs the room
            w = min(w, cap) if s.line_source == "clip_audio" or v is None else min(w, max(cap, w_voice(v)))
        mn = CARD_MIN_MS if cap is None else MIN_SLOT_MS
        if s.index == 0 and s.role == SlotRole.hook:
            mn = min(2000, round(s.target_s * 1000))
        mx: float = float(cap) if cap is not None else float("inf")
        if s.role == SlotRole.hook and s.index == 0:
            w = min(w, HOOK_MAX_MS)
            mx = min(mx, HOOK_MAX_MS)
        want.append(max(w, mn))
        lo.append(mn)
        hi.append(mx)
    diff = total - sum(want)
    out = list(want)
    if diff > 0:
        hook0 = [i for i in range(len(out)) if slots[i].role == SlotRole.hook and i == 0]
        # 1) clips up to their length, cards up to a readable 4 s; 2) clips up to 1.3× (slowed / held);
        # 3) whatever is left goes to cards and clips alike (never the hook)
        card_cap = [max(float(want[i]), 4000.0) if hi[i] == float("inf") else hi[i] for i in range(len(out))]
        diff = _spread(out, diff, [card_cap[i] - out[i] if i not in hook0 else 0.0 for i in range(len(out))])
        if diff > 0:
            diff = _spread(out, diff, [hi[i] * 1.3 - out[i] if hi[i] != float("inf") and i not in hook0 else 0.0
                                       for i in range(len(out))])
        if diff > 0:
            _spread(out, diff, [0.0 if i in hook0 else float("inf") for i in range(len(out))] if len(out) > 1
                    else [float("inf")])
    elif diff < 0:
        need = -diff
        # shrink voiceover/card slots first, then clip-audio ones (cutting speech is the last resort)
        first = [i for i in range(len(out)) if slots[i].line_source != "clip_audio"]
        for group in (set(first), set(range(len(out)))):
            room = [float(out[i] - lo[i]) if i in group else 0.0 for i in range(len(out))]
            need = _spread(out, -need, room, shrink=True)
        if need > 0:
            raise ValueError(f"cannot fit {len(out)} slots into {total} ms")
    out[-1] += total - sum(out)
    return out


def keep_lengths(storyboard: Storyboard, voice: dict[int, VoiceTrack], previous: list[int] | None,
                 fitted: list[int]) -> list[int]:
    """After a revision, the previous shot lengths where they still hold: a swapped or re-lined shot takes what
    it needs from its nearest neighbours only, so one changed shot changes one or two segments of the cut (the
    studio's preview re-encodes just those) instead of reflowing the whole ad. Falls back to `fitted` when the
    shots or the total changed, or the neighbours cannot absorb the difference."""
    slots = storyboard.slots
    if previous is None or len(previous) != len(slots) or sum(previous) != sum(fitted):
        return fitted
    lo: list[int] = []
    hi: list[float] = []
    for s in slots:
        cap = slot_capacity_ms(s)
        v = voice.get(s.index)
        need = w_voice(v) if v is not None else (CARD_MIN_MS if cap is None else MIN_SLOT_MS)
        top = float("inf") if cap is None else cap * 1.3  # a clip may be slowed / held to 1.3× its length
        if s.line_source == "clip_audio" and cap is not None:
            need, top = max(need, min(cap, round(s.target_s * 1000))), float(cap)
        if s.index == 0 and s.role == SlotRole.hook:
            top = min(top, HOOK_MAX_MS)
            need = min(need, HOOK_MAX_MS)
        lo.append(need)  # a voiced line is never cut: the shot holds its clip for as long as the words need
        hi.append(max(top, float(need)))
    out = list(previous)
    broken = [i for i in range(len(out)) if out[i] < lo[i] or out[i] > hi[i]]  # only these move; a neighbour
    for i in broken:                                                       # that absorbs time keeps it
        want = max(out[i], lo[i])
        if hi[i] != float("inf"):
            want = min(want, int(hi[i]))
        delta = out[i] - want  # > 0: time to give away; < 0: time to take
        if delta == 0:
            continue
        out[i] = want
        near = sorted((k for k in range(len(out)) if k != i), key=lambda k: (abs(k - i), k < i))
        for j in near:  # the nearest neighbours take it, each holding or slowing its clip to at most 1.6×
            if delta == 0:
                break
            if delta > 0:
                cap = slot_capacity_ms(slots[j])
                top = min(hi[j], HOOK_MAX_MS) if j == 0 and slots[j].role == SlotRole.hook else \
                    (float("inf") if cap is None else max(hi[j], cap * 1.6))
                room = top - out[j]
            else:
                room = out[j] - lo[j]
            step = int(min(abs(delta), max(0.0, room)))
            out[j] += step if delta > 0 else -step
            delta -= step if delta > 0 else -step
        if delta != 0:
            return fitted
    return out if sum(out) == sum(fitted) else fitted


def _spread(out: list[int], amount: int, room: list[float], *, shrink: bool = False) -> int:
    """Distribute `amount` ms over slots in proportion to their room; returns what could not be placed."""
    left = abs(amount)
    for _ in range(4):
        open_ = [i for i, r in enumerate(room) if r > 0]
        if not open_ or left <= 0:
            break
        weight_total = sum(min(room[i], 1e9) for i in open_)
        placed = 0
        for i in open_:
            share = round(left * min(room[i], 1e9) / weight_total) if weight_total else 0
            share = int(min(share, room[i]))
            out[i] += -share if shrink else share
            room[i] -= share
            placed += share
        left -= placed
        if placed == 0:
            i = max(open_, key=lambda k: room[k])
            step = int(min(left, room[i]))
            out[i] += -step if shrink else step
            room[i] -= step
            left -= step
    return left


def _chunks(text: str, lang: str, zh_chars: int = 14, en_words: int = 7) -> list[str]:
    """Caption-sized pieces: ≤ `zh_chars` CJK chars or ≤ `en_words` words, split at punctuation first (the
    channel's norm sets the density: agent.audiences)."""
    parts = [p.strip() for p in re.split(r"[。！？!?；;，,]\s*", text) if p.strip()]
    out: list[str] = []
    for p in parts or [text.strip()]:
        if lang == "zh" or CJK.search(p):
            while len(p) > zh_chars:
                out.append(p[:zh_chars])
                p = p[zh_chars:]
            if p:
                out.append(p)
        else:
            words = p.split()
            for i in range(0, len(words), en_words):
                out.append(" ".join(words[i : i + en_words]))
    return [o for o in out if o]


def _density(storyboard: Storyboard) -> tuple[int, int]:
    """(CJK chars, English words) per caption for the brief's channel; 14 / 7 when it names none."""
    from agent.audiences import channel_profile

    chan = channel_profile(storyboard.brief)
    if chan is None:
        return 14, 7
    return chan.caption_limit("zh") or 14, max(3, round((chan.caption_limit("en") or 38) / 5.5))


def _even_captions(text: str, start: int, dur: int, lang: str, slot: int,
                   density: tuple[int, int] = (14, 7)) -> list[dict[str, Any]]:
    chunks = _chunks(text, lang, *density)
    if not chunks:
        return []
    weights = [max(1, len(c)) for c in chunks]
    total_w = sum(weights)
    caps, t = [], start
    for c, w in zip(chunks, weights, strict=True):
        d = max(1, round(dur * w / total_w))
        end = min(start + dur, t + d)
        if end > t:
            caps.append({"text": c, "start_ms": t, "end_ms": end, "lang": lang, "slot": slot})
        t = end
    return caps


def assemble(
    storyboard: Storyboard,
    voice: dict[int, VoiceTrack],
    music: MusicTrack | None,
    *,
    fps: int = 30,
    title: str = "",
    aigc_label: dict[str, Any] | None = None,
    previous: list[int] | None = None,
) -> Timeline:
    """Storyboard (+ synthesized voice, music) → a valid Timeline whose length equals the brief's duration.

    Every voiceover line here is TTS, so it is marked generated (implicit AIGC label + a short start notice);
    `aigc_label` overrides the label settings, whose language follows the captions'. `previous`: the shot lengths
    of the cut this one revises (keep_lengths)."""
    durs = keep_lengths(storyboard, voice, previous, fit_durations(storyboard, voice))
    lang = storyboard.captions_lang or storyboard.brief.lang
    density = _density(storyboard)
    video: list[dict[str, Any]] = []
    vo: list[dict[str, Any]] = []
    caps: list[dict[str, Any]] = []
    t = 0
    for s, d in zip(storyboard.slots, durs, strict=True):
        c = s.chosen
        item_id = f"s{s.index}"
        moving = s.asset is not None and s.asset.kind in ("image_video", "generated_clip") and bool(s.asset.path)
        if moving and s.asset is not None and (c is None or Path(str(c.source)).suffix.lower() in IMAGE_EXTS):
            # a generated shot (the slot's photo made to move): marked so the renderer labels it
            shot_ms = round(float(s.asset.params.get("seconds") or d / 1000) * 1000)
            gid = s.asset.params.get("clip_id")
            video.append({
                "kind": "clip", "id": item_id, "start_ms": t, "duration_ms": d, "source": s.asset.path,
                "in_ms": 0, "out_ms": max(1, min(d, shot_ms)), "slot": s.index, "generated": True,
                "clip_id": str(gid) if gid else None, "fill": "slow" if d > shot_ms else "freeze",
                "generator": f"{s.asset.tool} via {s.asset.provider}",
            })
        elif c is not None and c.source and Path(c.source).suffix.lower() in IMAGE_EXTS:
            # a product photo in the library: a still with Ken Burns motion, not a video range
            video.append({"kind": "image", "id": item_id, "start_ms": t, "duration_ms": d, "source": c.source,
                          "slot": s.index})
        elif c is not None and c.source and c.start is not None and c.end is not None:
            in_ms = round(c.start * 1000)
            clip_ms = round((c.end - c.start) * 1000)
            out_ms = in_ms + min(d, clip_ms)
            audio = s.line_source == "clip_audio"
            video.append({
                "kind": "clip", "id": item_id, "start_ms": t, "duration_ms": d, "source": c.source,
                "in_ms": in_ms, "out_ms": out_ms, "clip_id": c.clip_id, "slot": s.index,
                "audio": audio, "fit": "crop", "fill": "freeze" if audio or d <= clip_ms else "slow",
                "generated": moving,  # a generated clip an earlier run wrote to the library
                "generator": f"{s.asset.tool} via {s.asset.provider}" if moving and s.asset else None,
            })
        elif s.asset is not None and s.asset.kind in ("background_swap",):
            video.append({"kind": "image", "id": item_id, "start_ms": t, "duration_ms": d, "source": s.asset.path,
                          "slot": s.index, "generated": True})
        else:
            text = str((s.asset.params.get("text") if s.asset else None) or s.line or storyboard.brief.product or "")
            sub = str(s.asset.params.get("subtitle", "")) if s.asset else ""
            video.append({
                "kind": "card", "id": item_id, "start_ms": t, "duration_ms": d, "text": text or "…",
                "subtitle": sub, "style": "cta" if s.role == SlotRole.offer_cta else "title", "slot": s.index,
            })
        v = voice.get(s.index)
        if v is not None:
            vo.append({"id": f"vo{s.index}", "source": v.path, "start_ms": t, "duration_ms": d, "text": v.text,
                       "slot": s.index, "generated": True, "generator": v.provider})
        if s.line:
            caps.extend(_even_captions(s.line, t, d, lang, s.index, density))
        if s.overlay and (c is not None or s.asset is None or s.asset.kind != "card"):
            # the offer / product plate drawn over the footage for the whole shot
            caps.append({"text": s.overlay, "start_ms": t, "end_ms": t + d, "lang": lang, "slot": s.index,
                         "style": "title"})
        t += d
    data: dict[str, Any] = {
        "output": {"aspect": storyboard.brief.aspect, **_size(storyboard.brief.aspect), "fps": fps},
        "video": video,
        "voiceover": vo,
        "captions": caps,
        "aigc_label": {"lang": lang, **(aigc_label or {})},
        "meta": {"title": title or storyboard.brief.text[:60], "brief": storyboard.brief.text},
    }
    if music is not None:
        data["music"] = {"source": music.path, "mood": music.mood, "gain_db": -14.0}
    return build_timeline(**data)


def _size(aspect: str) -> dict[str, int]:
    from cutpilot.timeline import ASPECTS

    w, h = ASPECTS[aspect]
    return {"width": w, "height": h}
