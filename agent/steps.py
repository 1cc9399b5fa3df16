"""The node bodies as plain functions over pydantic payloads (the graph only wires them and checkpoints)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from agent.brain.base import Brain
from agent.brain.offline import CJK, MIN_SCORE, OFFER_CARD, is_injection, trim_to_budget, within_budget
from agent.runrecord import RunRecord, SearchLog
from agent.sources import ClipSource
from agent.state import Candidate, MusicTrack, VoiceTrack
from agent.toolbox import Toolbox
from cutpilot.errors import CutpilotError
from cutpilot.models import ClipFormat, ClipRecord, ContentType, parse_formats
from cutpilot.storyboard import ClipChoice, GeneratedAsset, Slot, SlotRole, Storyboard

SEARCH_LIMIT = 8
ALTERNATES = 3


def infer_product(source: ClipSource, query: str, lang: str) -> str | None:
    """No product named: take the product most of the top hits for the request share (keeps one product per ad)."""
    hits = source.find(query, content_types=[], formats=[], product=None, exclude_ids=[], limit=6)
    counts: dict[str, float] = {}
    for h in hits:
        if h.clip.product:
            counts[h.clip.product] = counts.get(h.clip.product, 0.0) + max(h.score, 0.01)
    return max(counts, key=lambda p: counts[p]) if counts else None


def _avoid_formats(sb: Storyboard) -> set[ClipFormat]:
    out: set[ClipFormat] = set()
    for a in sb.brief.must_avoid:
        try:
            out.update(parse_formats(a))
        except CutpilotError:
            continue
    return out


def search_slot(
    source: ClipSource, sb: Storyboard, slot: Slot, exclude: list[str], claimed: set[str] | None = None
) -> tuple[list[Candidate], list[str]]:
    """Filters first: the role's best content type, then all its types; formats, then product relaxed only when
    nothing fresh is left. `claimed` are clips earlier slots of this batch will take, so relaxation goes on until
    this slot has a clip of its own (no clip is used twice in one ad)."""
    avoid = _avoid_formats(sb)
    claimed = claimed or set()
    cts = list(slot.content_types)
    if slot.role == SlotRole.offer_cta:
        cts = [ContentType.offer_cta]  # end on a real offer clip, else an offer card (never a random product shot)
    ct_steps = [cts[:1], cts] if len(cts) > 1 else [cts]
    attempts: list[tuple[list[ContentType], list[ClipFormat], str | None, str]] = []
    # requested formats are kept (a gap becomes a card rather than footage of another format)
    for fmts, product, what in [(list(slot.formats), slot.product, ""), (list(slot.formats), None, "product")]:
        if what == "product" and not slot.product:
            continue
        for k, c in enumerate(ct_steps):
            attempts.append((c, fmts, product, what if k == 0 else (what + "+types").lstrip("+")))
    relaxed: list[str] = []
    pooled: dict[str, Candidate] = {}
    for c_types, fmts, product, what in attempts:
        if what and what not in relaxed:
            relaxed.append(what)
        hits = source.find(slot.query, content_types=c_types, formats=fmts, product=product, exclude_ids=exclude,
                           limit=SEARCH_LIMIT)
        hits = [h for h in hits if not (set(h.clip.format) & avoid)]
        # a clip whose words try to steer the planner is not used at all (its text is data, and suspect data)
        hits = [h for h in hits if not is_injection(h.clip.transcript) and not is_injection(h.clip.description)]
        if product is None and slot.product:  # product relaxed: only clips with no product label, never another
            hits = [h for h in hits if h.clip.product in (None, "", slot.product)]
        for h in hits:
            pooled.setdefault(h.clip.clip_id, h)
        if any(h.clip.clip_id not in claimed for h in hits):
            break
    return list(pooled.values()), relaxed


def choice_from(rec: ClipRecord, score: float) -> ClipChoice:  # score: the candidate's relevance
    """Code, not the brain, copies times and paths from the record."""
    return ClipChoice(
        clip_id=rec.clip_id, score=round(score, 4), source=rec.source, start=rec.start, end=rec.end,
        content_type=rec.content_type, transcript=rec.transcript,
        thumbnail=rec.keyframes[len(rec.keyframes) // 2] if rec.keyframes else None,
    )


def fetch(
    sb: Storyboard, indexes: list[int], source: ClipSource, brain: Brain, run: RunRecord,
    exclude: dict[int, list[str]],
) -> Storyboard:
    """(Re)choose clips for the given slots only; clips held by other slots are never reused."""
    slots = list(sb.slots)
    held = {s.chosen.clip_id for s in slots if s.chosen and s.index not in indexes}
    cands: dict[int, list[Candidate]] = {}
    claimed: set[str] = set()
    # the hook may borrow any product shot, so it claims last: product / proof slots get first pick
    for i in sorted(indexes, key=lambda k: (slots[k].role == SlotRole.hook, k)):
        s = slots[i]
        ex = sorted(held | set(exclude.get(i, [])))
        hits, relaxed = search_slot(source, sb, s, ex, claimed)
        cands[i] = hits
        fresh = [h for h in hits if h.clip.clip_id not in claimed and h.relevance >= MIN_SCORE]
        if fresh:
            claimed.add(fresh[0].clip.clip_id)
        run.searches.append(SearchLog(slot=i, role=s.role.value, query=s.query, relaxed=relaxed,
                                      hits=[{"clip_id": h.clip.clip_id, "score": round(h.score, 4),
                                            "relevance": round(h.relevance, 4)} for h in hits]))
    chosen = brain.select(sb, cands, source, held, run)
    used = set(held)
    ranges = [_range(s.chosen, source) for s in slots if s.chosen and s.index not in indexes]
    used_recs: list[ClipRecord] = []
    for s0 in slots:
        if s0.chosen and s0.index not in indexes:
            with contextlib.suppress(CutpilotError):
                used_recs.append(source.get(s0.chosen.clip_id))
    for i in sorted(indexes, key=lambda k: (slots[k].role == SlotRole.hook, k)):
        cid = chosen.get(i)
        hit = next((h for h in cands[i] if h.clip.clip_id == cid), None)
        if hit is not None and (_overlaps(hit.clip, ranges) or any(_near_dup(hit.clip, r) for r in used_recs)):
            # same footage under another id (a whole-file clip and its shots): take the next distinct candidate
            alt = next((h for h in cands[i] if h.clip.clip_id not in used and h.clip.clip_id != cid
                        and h.relevance >= MIN_SCORE and not _overlaps(h.clip, ranges)
                        and not any(_near_dup(h.clip, r) for r in used_recs)), None)
            run.warn(f"slot {i}: clip {cid} repeats footage already in the ad; "
                     + (f"using {alt.clip.clip_id}" if alt else "filling the gap"))
            chosen[i] = alt.clip.clip_id if alt else None
            hit = alt
        if hit is not None:
            ranges.append((hit.clip.source_hash, hit.clip.start, hit.clip.end))
            used_recs.append(hit.clip)
            used.add(hit.clip.clip_id)
    used = set(held)
    for i in indexes:
        by_id = {h.clip.clip_id: h for h in cands[i]}
        cid = chosen.get(i)
        if cid is not None and (cid in used or cid not in by_id):
            run.warn(f"slot {i}: brain chose {cid!r}, which is not an unused candidate; ignored")
            cid = None
        s = slots[i]
        if cid is None:
            slots[i] = s.model_copy(update={"chosen": None, "alternates": [], "asset": None})
        else:
            used.add(cid)
            alts = [choice_from(h.clip, h.relevance) for h in cands[i] if h.clip.clip_id != cid][:ALTERNATES]
            slots[i] = s.model_copy(update={"chosen": choice_from(by_id[cid].clip, by_id[cid].relevance),
                                            "alternates": alts, "asset": None})
        for log in reversed(run.searches):
            if log.slot == i:
                log.chosen = cid
                break
    return sb.model_copy(update={"slots": slots})


def _range(c: ClipChoice, source: ClipSource) -> tuple[str, float, float]:
    """(content hash, start, end): the same bytes under another path are the same footage."""
    try:
        key = source.get(c.clip_id).source_hash
    except CutpilotError:
        key = c.source or ""
    return (key, c.start or 0.0, c.end or 0.0)


def _overlaps(rec: ClipRecord, ranges: list[tuple[str, float, float]]) -> bool:
    """Overlapping more than half of the shorter range in the same source = the same footage."""
    for src, a, b in ranges:
        if src != rec.source_hash:
            continue
        inter = min(b, rec.end) - max(a, rec.start)
        if inter > 0.5 * min(b - a, rec.end - rec.start):
            return True
    return False


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+|[\u4e00-\u9fff]", text.lower()))


def _near_dup(a: ClipRecord, b: ClipRecord) -> bool:
    """Without image vectors, a re-cut of the same take shows up as the same kind of clip with a near-identical
    description and the same (or no) speech."""
    if a.clip_id == b.clip_id or a.content_type != b.content_type or a.product != b.product:
        return False
    da, db = _words(a.description), _words(b.description)
    ta, tb = _words(a.transcript), _words(b.transcript)
    if not da or not db or len(da) < 5:
        return False
    desc = len(da & db) / len(da | db)
    speech = (not ta and not tb) or (bool(ta and tb) and len(ta & tb) / len(ta | tb) >= 0.8)
    return desc >= 0.5 and speech


def _clip_lang(text: str) -> str:
    return "zh" if CJK.search(text) else "en"


def clip_audio_ok(s: Slot, lang: str, records: dict[str, ClipRecord]) -> bool:
    """Keep a clip's own speech when it is in the ad's language, fits the slot and is not an instruction."""
    c = s.chosen
    if c is None or not c.transcript.strip() or s.role == SlotRole.offer_cta:
        return False
    rec = records.get(c.clip_id)
    if rec is not None and not rec.has_audio:
        return False
    if is_injection(c.transcript) or _clip_lang(c.transcript) != lang:
        return False
    dur = (c.end or 0) - (c.start or 0)
    limit = 3.5 if s.role == SlotRole.hook and s.index == 0 else max(s.target_s * 1.8, s.target_s + 3)
    return 0 < dur <= limit


def script(
    sb: Storyboard, indexes: list[int], brain: Brain, run: RunRecord, records: dict[str, ClipRecord]
) -> tuple[Storyboard, list[int]]:
    """Bind a line to each given slot. Returns the storyboard and the slots whose voiceover must be re-synthesised."""
    lang = sb.captions_lang or sb.brief.lang
    voice_lang = sb.brief.lang
    slots = list(sb.slots)
    need_brain: list[int] = []
    for i in indexes:
        s = slots[i]
        if clip_audio_ok(s, voice_lang, records):
            line = _clean(s.chosen.transcript if s.chosen else "")
            if lang != voice_lang:  # captions in another language: the brain writes the caption line
                slots[i] = s.model_copy(update={"line_source": "clip_audio"})
                need_brain.append(i)
            else:
                slots[i] = s.model_copy(update={"line_source": "clip_audio", "line": line})
        else:
            if s.chosen and s.chosen.transcript and is_injection(s.chosen.transcript):
                run.warn(f"slot {i}: transcript of clip {s.chosen.clip_id} looks like instructions; treated as data")
            slots[i] = s.model_copy(update={"line_source": "voiceover"})
            need_brain.append(i)
    slots, demoted = _fit_clip_audio(sb, slots)
    for i in demoted:
        run.warn(f"slot {i}: its clip's speech is too long for a {sb.brief.duration_s:g} s ad; voiceover instead")
        if i not in need_brain:
            need_brain.append(i)
    need_brain.sort()
    sb = sb.model_copy(update={"slots": slots})
    lines = brain.script(sb, need_brain, run) if need_brain else {}
    revoice: list[int] = []
    slots = list(sb.slots)
    for i in need_brain:
        s = slots[i]
        line = _clean(lines.get(i, "") or "")
        if not line or is_injection(line):
            from agent.brain.offline import template_line

            line = template_line(s.role, sb.brief, s.target_s, lang)
        if not within_budget(line, s.target_s, lang):
            run.warn(f"slot {i}: line over the speaking budget; trimmed")
            line = trim_to_budget(line, s.target_s, lang)
        slots[i] = s.model_copy(update={"line": line})
        if slots[i].line_source == "voiceover" and lang == voice_lang:
            revoice.append(i)
    return sb.model_copy(update={"slots": slots}), revoice


def _min_s(s: Slot) -> float:
    return 2.0 if s.role == SlotRole.hook else 1.5


def _fit_clip_audio(sb: Storyboard, slots: list[Slot]) -> tuple[list[Slot], list[int]]:
    """Clips that keep their own speech run whole; if together they cannot fit the ad, the ones that overrun
    their slot most switch to voiceover (cutting a sentence mid-way is worse than a voiceover)."""
    total = sb.brief.duration_s
    demoted: list[int] = []

    def need(s: Slot) -> float:
        if s.line_source == "clip_audio" and s.chosen is not None:
            return (s.chosen.end or 0) - (s.chosen.start or 0)
        return max(_min_s(s), s.target_s * 0.6)

    while sum(need(s) for s in slots) > total:
        cands = [s for s in slots if s.line_source == "clip_audio" and s.chosen is not None]
        if not cands:
            break
        worst = max(cands, key=lambda s: need(s) - s.target_s)
        slots[worst.index] = worst.model_copy(update={"line_source": "voiceover"})
        demoted.append(worst.index)
    return slots, demoted


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def fill_gaps(
    sb: Storyboard, run: RunRecord, *, min_score: float = MIN_SCORE
) -> Storyboard:
    """Slots with no clip (or a weak one) get a title / offer card, with provenance; never an empty hole."""
    slots = list(sb.slots)
    lang = sb.captions_lang or sb.brief.lang
    for i, s in enumerate(slots):
        weak = s.chosen is not None and s.chosen.score < min_score
        if s.chosen is not None and not weak:
            continue
        if weak and s.chosen is not None:
            run.warn(f"slot {i}: best clip scored {s.chosen.score:.2f} < {min_score}; using a card")
        if s.role == SlotRole.offer_cta:
            text, sub = OFFER_CARD[lang]
            if sb.brief.product:
                sub = f"{sb.brief.product} · {sub}"
        else:
            text, sub = (s.line or sb.brief.product or sb.brief.angle or "…"), ""
        asset = GeneratedAsset(kind="card", path="", tool="renderer.card", provider="offline",
                               params={"text": text, "subtitle": sub, "role": s.role.value})
        slots[i] = s.model_copy(update={"chosen": None, "asset": asset})
        run.generated.append({"slot": i, "kind": "card", "tool": "renderer.card", "text": text})
    return sb.model_copy(update={"slots": slots})


def synth_voice(
    sb: Storyboard, indexes: list[int], voice: dict[int, VoiceTrack], tools: Toolbox, out_dir: Path, run: RunRecord
) -> dict[int, VoiceTrack]:
    """TTS for voiceover slots (the clip-audio slots speak for themselves); a TTS failure leaves captions only."""
    out = {k: v for k, v in voice.items() if k < len(sb.slots) and sb.slots[k].line_source == "voiceover"}
    for i in indexes:
        s = sb.slots[i]
        if s.line_source != "voiceover" or not s.line:
            out.pop(i, None)
            continue
        try:
            r = tools.tts(s.line, lang=sb.brief.lang, out_dir=out_dir)
        except CutpilotError as e:
            run.warn(f"no voiceover for slot {i}: {e.one_line()}")
            out.pop(i, None)
            continue
        out[i] = VoiceTrack(path=str(r.path), duration_s=float(r.duration_s), text=s.line,
                            provider=str(getattr(r, "provider", "tts")), lang=sb.brief.lang)
        run.generated.append({"slot": i, "kind": "tts", "tool": "tools.tts", "path": str(r.path),
                              "provider": out[i].provider})
    return out


def make_music(sb: Storyboard, current: MusicTrack | None, tools: Toolbox, out_dir: Path,
               run: RunRecord) -> MusicTrack | None:
    if current is not None and current.mood == sb.music_mood:
        return current
    try:
        r = tools.music(sb.brief.duration_s, sb.music_mood, out_dir=out_dir)
    except CutpilotError as e:
        run.warn(f"no music: {e.one_line()}")
        return None
    prov = str(getattr(r, "provider", "offline"))
    run.generated.append({"kind": "music", "tool": "tools.music", "path": str(r.path), "mood": sb.music_mood})
    return MusicTrack(path=str(r.path), mood=sb.music_mood, provider=prov)
