"""The node bodies as plain functions over pydantic payloads (the graph only wires them and checkpoints)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent import claims, gapfill
from agent.brain.base import Brain
from agent.brain.offline import write_lines
from agent.gapfill import Wardrobe
from agent.rules import CJK, MIN_SCORE, fold, is_injection, trim_to_budget, within_budget
from agent.runrecord import RunRecord, SearchLog
from agent.sources import ClipSource
from agent.state import Candidate, MusicTrack, VoiceTrack
from agent.templates import hook_family
from agent.toolbox import SpeechVerdict, Toolbox
from cutpilot.errors import CutpilotError
from cutpilot.models import ClipFormat, ClipRecord, ContentType, parse_formats
from cutpilot.settings import Settings
from cutpilot.storyboard import ROLE_CONTENT_TYPES, Brief, ClipChoice, GeneratedAsset, Slot, SlotRole, Storyboard

SEARCH_LIMIT = 8
ALTERNATES = 4
MOMENT_MIN_S = 1.5  # a leftover stretch of a used clip shorter than this is not "another moment"
OFFER_CARD: dict[str, tuple[str, str]] = {"zh": ("限时优惠", "立即下单"), "en": ("Limited-time offer", "Shop now")}
# Words that make a clip's own speech a call to action (a host's "下单买一送一" beats any written CTA).
OFFER_SPEECH = ("下单", "买一送一", "优惠", "送", "抢", "拍", "链接", "包邮", "折", "到手", "shop", "order", "offer",
                "free", "discount", "deal", "buy")


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
    """Footage first: the role's best content type, then all its types, then any footage of the product; only then
    clips with no product label. Requested formats are kept (another format is not what was asked for).
    `claimed` are clips earlier slots of this batch will take, so relaxation goes on until this slot has a clip
    of its own (no clip is used twice in one ad)."""
    avoid = _avoid_formats(sb)
    claimed = claimed or set()
    cts = list(slot.content_types)
    if slot.role == SlotRole.offer_cta:
        cts = [ContentType.offer_cta, *[c for c in cts if c != ContentType.offer_cta]]
    ct_steps: list[tuple[list[ContentType], str]] = [(cts[:1], "")]
    if len(cts) > 1:
        ct_steps.append((cts, "types"))
    if slot.product:
        ct_steps.append(([], "any_type"))
    attempts: list[tuple[list[ContentType], list[ClipFormat], str | None, str]] = []
    for c, what in ct_steps:
        attempts.append((c, list(slot.formats), slot.product, what))
    if slot.product and not slot.require_product:  # product relaxed last: unlabelled clips, never another product
        for c, what in ct_steps[:2]:
            attempts.append((c, list(slot.formats), None, ("product+" + what).rstrip("+")))
    relaxed: list[str] = []
    pooled: dict[str, Candidate] = {}
    for c_types, fmts, product, what in attempts:
        if what and what not in relaxed:
            relaxed.append(what)
        hits = source.find(slot.query, content_types=c_types, formats=fmts, product=product, exclude_ids=exclude,
                           limit=SEARCH_LIMIT)
        hits = [h for h in hits if usable(h.clip, avoid)]
        if product is None and slot.product:
            hits = [h for h in hits if h.clip.product in (None, "", slot.product)]
        if what == "any_type":  # any footage of the product is on-brief whatever the text match says
            hits = [h.model_copy(update={"relevance": max(h.relevance, MIN_SCORE)}) for h in hits]
        for h in hits:
            pooled.setdefault(h.clip.clip_id, h)
        if any(h.clip.clip_id not in claimed and h.relevance >= MIN_SCORE for h in hits):
            break
    return list(pooled.values()), relaxed


Rerank = Callable[[Slot, list[Candidate]], list[Candidate]]


def perf_rerank(ranker: Any, *, mode: str, seed: int, explore: bool) -> Rerank:
    """A slot's candidates in the order of relevance + w · z(performance) (hook credit for the hook, hold credit
    for the body). Only the order moves: relevance, the MIN_SCORE gate and every filter stay as found, so
    performance never lets in a clip the rules kept out."""
    def rerank(slot: Slot, hits: list[Candidate]) -> list[Candidate]:
        if not hits:
            return hits
        role = "hook" if slot.role == SlotRole.hook else "body"
        boost = ranker.boost([h.clip.clip_id for h in hits], mode=mode, seed=seed + slot.index, role=role,
                             relevance=[h.relevance for h in hits], explore=explore and role == "hook")
        order = sorted(range(len(hits)), key=lambda i: (-(hits[i].relevance + boost.get(hits[i].clip.clip_id, 0.0)),
                                                        i))
        return [hits[i] for i in order]

    return rerank


def order_candidates(hits: list[Candidate], slot: Slot, brief: Brief, n_slots: int) -> list[Candidate]:
    """Test variant k of a brief (Brief.variant) opens on the k-th best distinct hook candidate (the k better
    ones move to the end of the list); a body slot moves
    down its ranking too when the library has enough good footage for every slot of every variant to differ.
    Only the order changes: every candidate was found under the slot's hard filters, and the no-repeat and
    compliance checks after this see the same list."""
    k = brief.variant
    if k <= 0:
        return hits
    good = [h for h in hits if h.relevance >= MIN_SCORE]
    if slot.role == SlotRole.hook:
        if len(good) < 2:
            return hits
    elif slot.role == SlotRole.offer_cta or len(good) < n_slots + k:
        return hits
    k %= len(good)
    ahead = good[:k]  # the earlier variants' picks go last, so a near neighbour cannot pull this one back
    return [*(h for h in hits if not any(h is a for a in ahead)), *ahead]


def usable(rec: ClipRecord, avoid: set[ClipFormat]) -> bool:
    """A clip may appear at all: not an avoided format, and no words that try to steer the planner (its text is
    data, and suspect data)."""
    if set(rec.format) & avoid:
        return False
    return not is_injection(rec.transcript) and not is_injection(rec.description)


def choice_from(rec: ClipRecord, score: float) -> ClipChoice:  # score: the candidate's relevance
    """Code, not the brain, copies times and paths from the record."""
    return ClipChoice(
        clip_id=rec.clip_id, score=round(score, 4), source=rec.source, start=rec.start, end=rec.end,
        content_type=rec.content_type, transcript=rec.transcript,
        thumbnail=rec.keyframes[len(rec.keyframes) // 2] if rec.keyframes else None,
    )


def fetch(
    sb: Storyboard, indexes: list[int], source: ClipSource, brain: Brain, run: RunRecord,
    exclude: dict[int, list[str]], rerank: Rerank | None = None,
) -> Storyboard:
    """(Re)choose clips for the given slots only; clips held by other slots are never reused. `rerank` re-orders
    a slot's candidates by past performance (cutpilot.perf.rank) after the hard filters; a test variant then
    takes its place further down (order_candidates)."""
    slots = list(sb.slots)
    held = {s.chosen.clip_id for s in slots if s.chosen and s.index not in indexes}
    cands: dict[int, list[Candidate]] = {}
    claimed: set[str] = set()
    # the hook may borrow any product shot, so it claims last: product / proof slots get first pick
    for i in sorted(indexes, key=lambda k: (slots[k].role == SlotRole.hook, k)):
        s = slots[i]
        ex = sorted(held | set(exclude.get(i, [])))
        hits, relaxed = search_slot(source, sb, s, ex, claimed)
        if rerank is not None:
            hits = rerank(s, hits)
        hits = order_candidates(hits, s, sb.brief, len(slots))
        cands[i] = hits
        fresh = [h for h in hits if h.clip.clip_id not in claimed and h.relevance >= MIN_SCORE]
        if fresh:
            claimed.add(fresh[0].clip.clip_id)
        run.searches.append(SearchLog(slot=i, role=s.role.value, query=s.query, relaxed=relaxed,
                                      hits=[{"clip_id": h.clip.clip_id, "score": round(h.score, 4),
                                            "relevance": round(h.relevance, 4)} for h in hits]))
    chosen = brain.select(sb, cands, source, held, run)
    avoid = _avoid_formats(sb)
    for i, cid in list(chosen.items()):  # a brain may find clips by its own searches: the same guard holds
        if cid is None:
            continue
        try:
            rec = source.get(cid)
        except CutpilotError:
            continue
        if not usable(rec, avoid):
            run.warn(f"slot {i}: the brain chose clip {cid}, whose text reads as instructions or whose format "
                     "is avoided; not used")
            chosen[i] = None
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


def footage_first(sb: Storyboard, indexes: list[int], run: RunRecord, product: Any = None) -> Storyboard:
    """Give every empty slot real footage of the product before a card is considered: another moment of a product
    clip already in the ad (the stretch its own slot does not show), else — on a first plan, not a revision — fold
    the slot into its neighbour so the footage there runs longer (the CTA keeps its place, over the packshot)."""
    slots = list(sb.slots)
    terms = grounding_terms(sb, product)
    family = hook_family(sb.brief)
    _fill_moments(slots, indexes, sb.brief.lang, terms, family, run)
    full = sorted(indexes) == list(range(len(slots)))
    has_footage = any(s.chosen is not None for s in slots)
    if full and has_footage and len(slots) > 2:
        if slots[0].chosen is None:
            slots = _hook_takes_footage(slots, run)
            _fill_moments(slots, list(range(len(slots))), sb.brief.lang, terms, family, run)
        slots = _fold_empty(slots, run)
    return sb.model_copy(update={"slots": [s.model_copy(update={"index": k}) for k, s in enumerate(slots)]})


def _fill_moments(slots: list[Slot], indexes: list[int], voice_lang: str, terms: list[str], family: str,
                  run: RunRecord) -> None:
    for i in sorted(indexes, key=lambda k: (k != 0, k)):  # the hook first: an ad opens on footage
        if slots[i].chosen is not None or not slots[i].product:
            continue
        m = _moment(slots, i, voice_lang, terms, family)
        if m is not None:
            j, donor, moment = m
            slots[j] = slots[j].model_copy(update={"chosen": donor})
            slots[i] = slots[i].model_copy(update={"chosen": moment, "alternates": []})
            run.warn(f"slot {i}: no fresh clip; using another moment of clip {moment.clip_id} "
                     f"({moment.start:.1f}–{moment.end:.1f} s) shown nowhere else")


def _speech_may_play(s: Slot, voice_lang: str, terms: list[str], family: str) -> bool:
    """Whether the script step would play this clip's own words (the same rule it applies)."""
    c = s.chosen
    if c is None or not c.transcript.strip() or _clip_lang(c.transcript) != voice_lang:
        return False
    return speech_fits_role(s, None, terms, family)


def _moment(slots: list[Slot], i: int, voice_lang: str, terms: list[str], family: str
            ) -> tuple[int, ClipChoice, ClipChoice] | None:
    """(donor slot, its shortened choice, the leftover as a new choice) for the longest unused stretch of a product
    clip in the ad; a clip whose speech may be played is never split (it would cut a sentence)."""
    best: tuple[float, int] | None = None
    for j, s in enumerate(slots):
        c = s.chosen
        if j == i or c is None or c.start is None or c.end is None or c.source is None:
            continue
        if _speech_may_play(s, voice_lang, terms, family):
            continue
        if Path(c.source).suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
            continue
        spare = (c.end - c.start) - s.target_s
        if spare >= MOMENT_MIN_S and (best is None or spare > best[0]):
            best = (spare, j)
    if best is None:
        return None
    j = best[1]
    c = slots[j].chosen
    assert c is not None and c.start is not None and c.end is not None
    cut = round(c.start + slots[j].target_s, 3)
    donor = c.model_copy(update={"end": cut})
    moment = c.model_copy(update={"start": cut})
    return j, donor, moment


def _spare(s: Slot) -> float:
    c = s.chosen
    if c is None or c.start is None or c.end is None:
        return 0.0
    return (c.end - c.start) - s.target_s


def _hook_takes_footage(slots: list[Slot], run: RunRecord) -> list[Slot]:
    """An ad opens on footage: with nothing left for the hook, the middle shot before the offer gives up its clip
    to the hook and its seconds to its neighbour."""
    k = next((j for j in range(len(slots) - 2, 0, -1) if slots[j].chosen is not None), None)
    if k is None:
        return slots
    out = list(slots)
    donor = out[k]
    out[0] = out[0].model_copy(update={"chosen": donor.chosen, "alternates": donor.alternates})
    out[k] = donor.model_copy(update={"chosen": None, "alternates": []})
    run.warn(f"slot {k} ({donor.role.value}) gave its clip to the hook: no other footage of {donor.product} left")
    return out


def _fold_empty(slots: list[Slot], run: RunRecord) -> list[Slot]:
    """Drop slots no footage can fill; their seconds go to a neighbour with footage. An empty CTA takes over the
    footage of the slot before it (the offer is drawn over that shot) rather than becoming a card."""
    out = list(slots)
    k = len(out) - 1
    while k >= 1 and len(out) > 2:
        s = out[k]
        if s.chosen is not None or s.asset is not None:
            k -= 1
            continue
        if s.role == SlotRole.offer_cta:
            prev = out[k - 1]
            if prev.chosen is None or k - 1 == 0:
                break
            out[k] = s.model_copy(update={"chosen": prev.chosen, "alternates": prev.alternates,
                                          "target_s": round(s.target_s + prev.target_s, 2)})
            run.warn(f"slot {k - 1} ({prev.role.value}) folded into the offer: no more footage of "
                     f"{s.product}; the offer is drawn over that shot")
            del out[k - 1]
        else:
            near = [j for j in (k - 1, k + 1) if 0 < j < len(out) and out[j].chosen is not None] or [k - 1]
            to = max(near, key=lambda j: _spare(out[j]))
            out[to] = out[to].model_copy(update={"target_s": round(out[to].target_s + s.target_s, 2)})
            run.warn(f"slot {k} ({s.role.value}) dropped: no more footage of {s.product}; its "
                     f"{s.target_s:g} s went to the neighbouring shot")
            del out[k]
        k -= 1
    return out


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


Hear = Callable[[ClipChoice, str, list[str]], SpeechVerdict | None]


def vocabulary(sb: Storyboard, product: Any) -> list[str]:
    """Names the recogniser is told when it checks a take: the product's, as the viewer reads them on screen."""
    names = [sb.brief.product or ""] + (list(product.names()) if product is not None else [])
    return [n for n in dict.fromkeys(names) if n]


def grounding_terms(sb: Storyboard, product: Any) -> list[str]:
    """Words that tie a line or a clip's speech to this ad: product names, selling points, offer, the angle."""
    terms = [sb.brief.product or "", sb.brief.angle or ""]
    if product is not None:
        terms += list(product.names())
        terms += list(getattr(product, "selling_points", []) or []) + list(getattr(product, "selling_points_en", []))
        terms += [getattr(product, "offer", None) or "", getattr(product, "offer_en", None) or ""]
    return [fold(t) for t in terms if t and len(t.strip()) >= 2]


def speech_fits_role(s: Slot, rec: ClipRecord | None, terms: list[str], family: str = "pain") -> bool:
    """A clip's own words serve its slot: a CTA needs words of an offer; any other role needs a clip of one of the
    role's content types, or words that name the product, a selling point or the angle."""
    c = s.chosen
    if c is None:
        return False
    t = fold(c.transcript)
    if s.role == SlotRole.offer_cta:
        return any(w in t for w in OFFER_SPEECH)
    if s.role == SlotRole.hook and s.index == 0:
        return hook_speech_fits(t, family, terms)
    content_type = rec.content_type if rec is not None else c.content_type  # the choice carries the record's
    if content_type in ROLE_CONTENT_TYPES[s.role]:
        return True
    return any(term in t for term in terms)


def hook_speech_fits(t: str, family: str, terms: list[str]) -> bool:
    """A clip's own words may open the ad only when they say what the brief leads with: the angle's family (a pain
    line for a pain brief, the fun for a fun brief, the deal for an offer brief), or the angle itself."""
    from agent.brief import angle_family

    if family == "offer":
        return any(w in t for w in OFFER_SPEECH)
    said = angle_family(t)
    return said == family


def clip_audio_ok(s: Slot, lang: str, records: dict[str, ClipRecord], terms: list[str] | None = None,
                  family: str = "pain") -> bool:
    """Keep a clip's own speech when it is in the ad's language, serves the slot, fits it and is not an
    instruction."""
    c = s.chosen
    if c is None or not c.transcript.strip():
        return False
    rec = records.get(c.clip_id)
    if rec is not None and not rec.has_audio:
        return False
    if is_injection(c.transcript) or _clip_lang(c.transcript) != lang:
        return False
    if terms is not None and not speech_fits_role(s, rec, terms, family):
        return False
    dur = (c.end or 0) - (c.start or 0)
    return 0 < dur <= _speech_limit(s)


def _speech_limit(s: Slot) -> float:
    return 3.5 if s.role == SlotRole.hook and s.index == 0 else max(s.target_s * 1.8, s.target_s + 3)


def sentence_cut(s: Slot, rec: ClipRecord | None) -> ClipChoice | None:
    """The clip shortened to its last sentence (or pause) that ends within the slot's limit, with the words that
    are still heard; None when the transcript is not the recogniser's own (a human rewrite cannot be aligned)."""
    c = s.chosen
    if c is None or rec is None or not rec.words or c.start is None or c.end is None:
        return None
    words = [w for w in rec.words if c.start - 1e-3 <= w.start and w.end <= c.end + 1e-3]
    heard = "".join(w.text for w in words)
    if not words or fold(heard).replace(" ", "") != fold(c.transcript).replace(" ", ""):
        return None
    limit = c.start + _speech_limit(s)
    best: int | None = None
    for k, w in enumerate(words):
        if w.end > limit:
            break
        nxt = words[k + 1] if k + 1 < len(words) else None
        sentence_end = w.text.strip()[-1:] in "，,。.!！?？;；" or nxt is None or nxt.start - w.end >= 0.3
        if sentence_end and w.end - c.start >= 1.0:
            best = k
    if best is None or best == len(words) - 1:
        return None
    end = min(c.end, round(words[best].end + 0.15, 3))
    text = "".join(w.text for w in words[: best + 1]).strip()
    return c.model_copy(update={"end": end, "transcript": text})


_SPEECH_TOKEN = re.compile(r"[a-z0-9']+|[\u4e00-\u9fff]|\|")


def _speech_tokens(text: str, terms: list[str]) -> list[str]:
    """Words (en) and characters (zh) of folded text; grounding terms become a break no run can cross."""
    t = fold(text)
    for term in sorted(terms, key=len, reverse=True):
        t = t.replace(term, " | ")
    return _SPEECH_TOKEN.findall(t)


def _longest_run(a: list[str], b: list[str]) -> int:
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y and x != "|":
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def borrowed_speech(line: str, i: int, sb: Storyboard, records: dict[str, ClipRecord], terms: list[str]
                    ) -> str | None:
    """The clip whose transcript slot i's written line repeats, if any. A clip's words are heard only as its own
    audio in its own slot: a planner line that repeats another clip's words (or its own clip's words that read as
    instructions) would voice or caption footage text as narration, which is how an instruction hidden in a
    transcript gets past the guard. Product names, selling points, offer and angle (`terms`) are the facts'
    words, not the clip's, and do not count."""
    mine = _speech_tokens(line, terms)
    words = [t for t in mine if t != "|"]
    en = not CJK.search(line)
    if len(words) < (2 if en else 3):
        return None
    own = sb.slots[i].chosen
    seen: dict[str, str] = {}
    for s in sb.slots:
        for c in [s.chosen, *s.alternates]:
            if c is not None and c.transcript.strip():
                seen.setdefault(c.clip_id, c.transcript)
    for cid, rec in records.items():
        if rec.transcript.strip():
            seen.setdefault(cid, rec.transcript)
    for cid, text in seen.items():
        if own is not None and cid == own.clip_id and not is_injection(text):
            continue  # its own clean speech may ground its own line
        run = _longest_run(mine, _speech_tokens(text, terms))
        if run >= (2 if en else 3) and (run >= 0.5 * len(words) or run >= (5 if en else 8)):
            return cid
    return None


def script(
    sb: Storyboard, indexes: list[int], brain: Brain, run: RunRecord, records: dict[str, ClipRecord],
    *, product: Any = None, hear: Hear | None = None,
) -> tuple[Storyboard, list[int]]:
    """Bind a line to each given slot: the clip's own speech where it serves the slot and can be heard (trimmed to
    a sentence end when long), else a written line grounded in the product's facts. Returns the storyboard and the
    slots whose voiceover must be re-synthesised."""
    lang = sb.captions_lang or sb.brief.lang
    voice_lang = sb.brief.lang
    terms = grounding_terms(sb, product)
    family = hook_family(sb.brief)
    policy = claims.policy_for(sb, product)
    slots = list(sb.slots)
    need_brain: list[int] = []
    for i in indexes:
        s = slots[i]
        bad = claims.speech_violations(s.chosen.transcript, policy, f"slot {i} speech", run) if s.chosen else []
        if bad and s.chosen is not None:  # ad law: a forbidden claim is not said, not even in the footage's own words
            claims.record(run, bad, "muted")
            run.warn(f"slot {i}: clip {s.chosen.clip_id} says {', '.join(h.text for h in bad)}, a banned claim (ad "
                     "law or the product facts); muted, a written line instead")
            slots[i] = s.model_copy(update={"line_source": "voiceover"})
            need_brain.append(i)
            continue
        if s.chosen is not None and not clip_audio_ok(s, voice_lang, records, terms, family):
            cut = sentence_cut(s, records.get(s.chosen.clip_id))
            if cut is not None and clip_audio_ok(s.model_copy(update={"chosen": cut}), voice_lang, records, terms,
                                                 family):
                run.warn(f"slot {i}: clip {cut.clip_id} trimmed to its sentence end at {cut.end:.2f} s")
                s = s.model_copy(update={"chosen": cut})
        names_ok = not (i == 0 and sb.hook_names_product and sb.brief.product
                        and fold(sb.brief.product) not in fold(s.chosen.transcript if s.chosen else ""))
        if names_ok and clip_audio_ok(s, voice_lang, records, terms, family) and s.chosen is not None:
            verdict = hear(s.chosen, voice_lang, vocabulary(sb, product)) if hear is not None else None
            if verdict is not None:
                run.voice_checks.append({"slot": i, "kind": "clip_audio", "clip_id": s.chosen.clip_id,
                                         "text": s.chosen.transcript, **verdict.record()})
            if verdict is not None and not verdict.ok:
                run.warn(f"slot {i}: the speech of clip {s.chosen.clip_id} is not intelligible "
                         f"(error {verdict.error:.2f}); muted, a written line instead")
                slots[i] = s.model_copy(update={"line_source": "voiceover"})
                need_brain.append(i)
                continue
            line = _clean(s.chosen.transcript)
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
    lines = brain.script(sb, need_brain, run, product=product) if need_brain else {}
    fallback = write_lines(sb, need_brain, product) if need_brain else {}
    revoice: list[int] = []
    slots = list(sb.slots)
    for i in need_brain:
        s = slots[i]
        line = _clean(lines.get(i, "") or "")
        if not line or is_injection(line) or (lang == "en" and CJK.search(line)) or (
                lang == "zh" and not CJK.search(line)):
            if line:
                run.warn(f"slot {i}: the brain's line is not a usable {lang} line; the offline line instead")
            line = fallback[i]
        copied = borrowed_speech(line, i, sb, records, terms) if line != fallback[i] else None
        if copied is not None:
            run.warn(f"slot {i}: the brain's line repeats the speech of clip {copied}; the offline line instead")
            line = fallback[i]
        line = claims.settle(line, [fallback[i]], policy, f"slot {i} line", run)
        room = s.target_s * sb.line_budget
        if not within_budget(line, room, lang):
            run.warn(f"slot {i}: line over the speaking budget; trimmed on a word boundary")
            line = trim_to_budget(line, room, lang)
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


def offer_plate(sb: Storyboard, product: Any) -> tuple[str, str]:
    """(title, subtitle) of the offer: the product's own offer and name when the facts have them."""
    lang = sb.captions_lang or sb.brief.lang
    title, sub = OFFER_CARD[lang]
    name = product.display_name(lang) if product is not None else (sb.brief.product or "")
    offer = product.offer_for(lang) if product is not None else None
    if offer:
        title = offer
    if name:
        sub = f"{name} · {sub}"
    return title, sub


def fill_gaps(
    sb: Storyboard, run: RunRecord, *, min_score: float = MIN_SCORE, product: Any = None,
    tools: Toolbox | None = None, source: ClipSource | None = None, settings: Settings | None = None,
    wardrobe: Wardrobe | None = None,
) -> Storyboard:
    """Slots without real footage follow the gap policy (agent.gapfill: the product's photo cut out, put in a
    scene and made to move) when tools are given. The offer is drawn over the last shot (an end plate, not a
    card); slots that still have no clip (or only a weak one) get a title / offer card with provenance — the last
    resort, never an empty hole."""
    if tools is not None and source is not None and settings is not None:
        sb = gapfill.fill(sb, run, tools=tools, source=source, settings=settings, min_score=min_score,
                          product=product, wardrobe=wardrobe)
    slots = list(sb.slots)
    for i, s in enumerate(slots):
        weak = s.chosen is not None and s.chosen.score < min_score
        moving = s.asset is not None and s.asset.kind in ("image_video", "generated_clip")
        if s.role == SlotRole.offer_cta and (moving or (s.chosen is not None and not weak)):
            title, sub = offer_plate(sb, product)
            slots[i] = s.model_copy(update={"overlay": f"{title} · {sub}"})
            continue
        if moving or (s.chosen is not None and not weak):
            if s.overlay:
                slots[i] = s.model_copy(update={"overlay": ""})
            continue
        if weak and s.chosen is not None:
            run.warn(f"slot {i}: best clip scored {s.chosen.score:.2f} < {min_score}; using a card")
        if s.role == SlotRole.offer_cta:
            text, sub = offer_plate(sb, product)
        else:
            text, sub = (s.line or sb.brief.product or sb.brief.angle or "…"), ""
        asset = GeneratedAsset(kind="card", path="", tool="renderer.card", provider="offline",
                               params={"text": text, "subtitle": sub, "role": s.role.value})
        slots[i] = s.model_copy(update={"chosen": None, "asset": asset, "overlay": ""})
        run.warn(f"slot {i} ({s.role.value}): no footage of the product left; a full-screen card")
        run.generated.append({"slot": i, "kind": "card", "tool": "renderer.card", "text": text})
    return sb.model_copy(update={"slots": slots})


def synth_voice(
    sb: Storyboard, indexes: list[int], voice: dict[int, VoiceTrack], tools: Toolbox, out_dir: Path, run: RunRecord,
    *, check: bool = True, product: Any = None,
) -> tuple[Storyboard, dict[int, VoiceTrack]]:
    """TTS for voiceover slots (the clip-audio slots speak for themselves). Each take is checked by an ASR round
    trip: a line the recogniser cannot recover is not voiced; it stays on screen as a caption over music and clip
    sound, and run.json says why. A TTS failure likewise leaves the caption. Nothing is voiced or drawn before
    the claims check (agent.claims.enforce) has seen every line, card and offer plate."""
    sb, rewritten = claims.enforce(sb, run, product)
    indexes = sorted(set(indexes) | set(rewritten))
    out = {k: v for k, v in voice.items() if k < len(sb.slots) and sb.slots[k].line_source == "voiceover"}
    slots = list(sb.slots)
    lang = sb.brief.lang
    for i in indexes:
        s = slots[i]
        if s.line_source != "voiceover" or not s.line:
            out.pop(i, None)
            continue
        try:
            r = tools.tts(s.line, lang=lang, out_dir=out_dir)
        except CutpilotError as e:
            run.warn(f"no voiceover for slot {i}: {e.one_line()}")
            slots[i] = s.model_copy(update={"line_source": "caption"})
            out.pop(i, None)
            continue
        room = voice_room(s)
        if float(r.duration_s) > room:  # the voice speaks slower than the budget assumed: say less, or show it
            short = _shorter_for(s.line, float(r.duration_s), room, lang, vocabulary(sb, product))
            r2 = None
            if short and short != s.line:
                try:
                    r2 = tools.tts(short, lang=lang, out_dir=out_dir)
                except CutpilotError:
                    r2 = None
            if r2 is None or float(r2.duration_s) > room * 1.05:
                run.warn(f"slot {i}: the voiced line takes {float(r.duration_s):.1f} s, more than its shot's "
                         f"{room:.1f} s; shown as a caption, not voiced")
                slots[i] = s.model_copy(update={"line_source": "caption"})
                out.pop(i, None)
                continue
            run.warn(f"slot {i}: {s.line!r} takes {float(r.duration_s):.1f} s to say (shot {room:.1f} s); "
                     f"voiced as {short!r}")
            s = slots[i] = s.model_copy(update={"line": short})
            r = r2
        provider = str(getattr(r, "provider", "tts"))
        if check:
            verdict = tools.check_speech(Path(r.path), s.line, lang=lang, vocabulary=vocabulary(sb, product))
            if verdict is not None:
                run.voice_checks.append({"slot": i, "kind": "voiceover", "text": s.line, "provider": provider,
                                         **verdict.record()})
                if not verdict.ok:
                    run.warn(f"slot {i}: the {provider} take of {s.line!r} is not intelligible (heard "
                             f"{verdict.heard!r}, error {verdict.error:.2f}); shown as a caption, not voiced")
                    slots[i] = s.model_copy(update={"line_source": "caption"})
                    out.pop(i, None)
                    continue
        out[i] = VoiceTrack(path=str(r.path), duration_s=float(r.duration_s), text=s.line, provider=provider,
                            lang=lang)
        run.generated.append({"slot": i, "kind": "tts", "tool": "tools.tts", "path": str(r.path),
                              "provider": provider})
    return sb.model_copy(update={"slots": slots}), out


def voice_room(s: Slot) -> float:
    """Seconds a voiced line may take in its shot: the hook stays within the first 3 s; other shots may stretch
    a little (assembly gives a voiced shot room for its words)."""
    if s.index == 0 and s.role == SlotRole.hook:
        return min(3.0, s.target_s + 0.5) - 0.2
    return s.target_s * 1.2 + 0.3


def _shorter_for(line: str, took_s: float, room_s: float, lang: str, names: list[str] | None = None) -> str:
    """The line cut (on a clause or word boundary) to what this voice can say in `room_s`, at its measured pace;
    a product name is kept whole or dropped, never cut ("认识乐高机械" → "认识乐高机械组" does not fit → the name)."""
    from agent.rules import EN_WORDS_PER_S, ZH_CHARS_PER_S, speech_units

    units = speech_units(line, lang)
    if units <= 0 or took_s <= 0:
        return line
    fits = units * room_s / took_s * 0.95
    per_s = ZH_CHARS_PER_S if lang == "zh" else EN_WORDS_PER_S
    cut = trim_to_budget(line, max(0.3, fits / per_s), lang)
    for name in sorted(names or [], key=len, reverse=True):
        if name in line and name not in cut:
            k = next((k for k in range(len(name) - 1, 1, -1) if cut.endswith(name[:k])), 0)
            if k:
                head = cut[:-k].rstrip("，,、：: ")
                return name if len(head) <= 2 else head
    return cut


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
