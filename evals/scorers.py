"""Scorers: pure functions over one run's outputs. Each returns a Score in [0, 1] (higher is better) or
`None` value when it does not apply to the case, plus the raw numbers it was computed from.

Pure means: no files, no clocks, no models of their own. What a scorer needs from the outside world (the
render's probe facts, the wall time, a text embedder) is handed in, so the same outputs always score the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field

from cutpilot.models import ClipRecord
from cutpilot.storyboard import Slot, SlotRole, Storyboard
from cutpilot.textmetrics import error_rate
from cutpilot.timeline import CardItem, ClipItem, ImageItem, Timeline
from evals.schema import Expectations

ZH_CHARS_PER_S = 5.0  # upper end of the practitioners' 4–5 Chinese characters per second
EN_WORDS_PER_S = 2.5
BUDGET_SLACK = 1.15  # a line may run 15 % over its slot before it counts as over budget
HOOK_WINDOW_MS = 3000
CAPTION_TOL_MS = 120
RETRIEVAL_K = 3
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[A-Za-z0-9']+")


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray: ...


class RenderFacts(BaseModel):
    """What the runner measured on a rendered file (ffprobe + loudness); the render scorer only reads this."""

    duration_s: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    video_duration_s: float | None = None
    audio_duration_s: float | None = None
    integrated_lufs: float | None = None
    heard_text: str | None = Field(
        default=None, description="Whisper's transcript of the rendered audio, language forced to the ad's")
    asr_error: str | None = Field(default=None, description="why there is no transcript (the ASR pass failed)")


@dataclass(frozen=True)
class RunOutputs:
    """One run as the scorers see it. `run` is the run.json dict (read defensively: only a few keys)."""

    storyboard: Storyboard
    timeline: Timeline | None = None
    run: Mapping[str, Any] = field(default_factory=dict)
    records: Mapping[str, ClipRecord] = field(default_factory=dict)
    wall_s: float | None = None
    render: RenderFacts | None = None
    facts: Sequence[str] = ()  # the product's names, aliases, selling points and offer (zh + en)
    names: Sequence[str] = ()  # the product's names and aliases (never a claim)
    banned_claims: Sequence[str] = ()  # the product facts' banned claims
    claim_evidence: Mapping[str, str] = field(default_factory=dict)  # efficacy claim → the evidence the facts name


@dataclass(frozen=True)
class Gold:
    """Golden-library lookups: key ↔ clip id, and near-duplicate groups (clip id → group id)."""

    ids: Mapping[str, str] = field(default_factory=dict)
    dup_group: Mapping[str, str] = field(default_factory=dict)

    def id(self, key: str) -> str:
        return self.ids.get(key, key)

    def key(self, clip_id: str) -> str:
        for k, v in self.ids.items():
            if v == clip_id:
                return k
        return clip_id


@dataclass(frozen=True)
class Score:
    name: str
    value: float | None
    detail: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "detail": self.detail, "raw": self.raw}


# --- helpers ---------------------------------------------------------------------------------------------------
def _chosen_ids(sb: Storyboard) -> list[str]:
    return [s.chosen.clip_id for s in sb.slots if s.chosen is not None]


def _used_clip_ids(out: RunOutputs) -> list[str]:
    """Clips actually on screen: timeline clip items when there is a timeline, else the storyboard's picks."""
    if out.timeline is not None:
        ids = [v.clip_id for v in out.timeline.video if isinstance(v, ClipItem) and v.clip_id and not v.generated]
        if ids or not _chosen_ids(out.storyboard):
            return ids
    return _chosen_ids(out.storyboard)


def _slot_lines(sb: Storyboard, *, include_clip_audio: bool = True) -> list[tuple[Slot, str]]:
    return [
        (s, s.line.strip())
        for s in sb.slots
        if s.line.strip() and (include_clip_audio or s.line_source != "clip_audio")
    ]


def spoken_and_shown_text(out: RunOutputs) -> list[str]:
    """Every text the viewer hears or reads: slot lines, captions, voiceover texts, cards, played transcripts."""
    texts = [line for _, line in _slot_lines(out.storyboard)]
    tl = out.timeline
    if tl is not None:
        texts += [c.text for c in tl.captions]
        texts += [v.text for v in tl.voiceover if v.text]
        for item in tl.video:
            if isinstance(item, CardItem):
                texts += [item.text, item.subtitle]
            elif isinstance(item, ClipItem) and item.audio and item.clip_id and item.clip_id in out.records:
                texts.append(out.records[item.clip_id].transcript)
        if tl.brand.end_card_text:
            texts.append(tl.brand.end_card_text)
    return [t for t in texts if t]


def line_units(text: str, lang: str) -> float:
    """Speaking length: CJK characters (plus Latin words) for zh, words for en."""
    if lang == "zh":
        return len(_CJK.findall(text)) + len(_WORD.findall(text))
    return len(_WORD.findall(text)) + 0.5 * len(_CJK.findall(text))


def text_lang(text: str) -> str | None:
    cjk = len(_CJK.findall(text))
    words = len(_WORD.findall(text))
    if cjk == 0 and words == 0:
        return None
    return "zh" if cjk >= words else "en"


def _contains(haystack: str, needle: str) -> bool:
    if _CJK.search(needle):
        return needle in haystack
    return re.search(r"(?<![A-Za-z])" + re.escape(needle.lower()) + r"(?![A-Za-z])", haystack.lower()) is not None


# --- retrieval -------------------------------------------------------------------------------------------------
def _ranked(slot: Slot) -> list[str]:
    ids = ([slot.chosen.clip_id] if slot.chosen else []) + [a.clip_id for a in slot.alternates]
    return list(dict.fromkeys(ids))


def _per_role(out: RunOutputs, exp: Expectations, gold: Gold,
              metric: Callable[[list[str], list[str]], float]) -> tuple[float | None, dict[str, Any]]:
    if not exp.relevant:
        return None, {}
    per: dict[str, float] = {}
    for role, keys in exp.relevant.items():
        rel = [gold.id(k) for k in keys]
        slots = [s for s in out.storyboard.slots if s.role == role]
        per[str(role)] = sum(metric(_ranked(s), rel) for s in slots) / len(slots) if slots else 0.0
    return sum(per.values()) / len(per), per


def _precision_at_k(ranked: list[str], relevant: list[str], k: int = RETRIEVAL_K) -> float:
    if not relevant:
        return 0.0
    hits = sum(1 for c in ranked[:k] if c in set(relevant))
    return hits / min(k, len(relevant))


def _ndcg_at_k(ranked: list[str], relevant: list[str], k: int = RETRIEVAL_K) -> float:
    """Graded: the first relevant key listed in the case is the best pick (gain n), the last gain 1."""
    n = len(relevant)
    gain = {cid: float(n - i) for i, cid in enumerate(relevant)}
    dcg = sum(gain.get(c, 0.0) / math.log2(i + 2) for i, c in enumerate(ranked[:k]))
    ideal = sorted(gain.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def retrieval_precision(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    v, per = _per_role(out, exp, gold, _precision_at_k)
    return Score("retrieval_precision", v, f"precision@{RETRIEVAL_K} per role", per)


def retrieval_ndcg(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    v, per = _per_role(out, exp, gold, _ndcg_at_k)
    return Score("retrieval_ndcg", v, f"nDCG@{RETRIEVAL_K} per role", per)


# --- structure ---------------------------------------------------------------------------------------------------
def _subsequence_match(required: Sequence[SlotRole], roles: Sequence[SlotRole]) -> int:
    """Length of the longest prefix-free in-order match (LCS) of `required` inside `roles`."""
    m, n = len(required), len(roles)
    dp = [[0] * (n + 1) for _ in range(m + 1)]
    for i in range(m):
        for j in range(n):
            dp[i + 1][j + 1] = dp[i][j] + 1 if required[i] == roles[j] else max(dp[i][j + 1], dp[i + 1][j])
    return dp[m][n]


def role_order(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    roles = [s.role for s in out.storyboard.slots]
    parts: dict[str, float] = {}
    if exp.roles_in_order:
        parts["in_order"] = _subsequence_match(exp.roles_in_order, roles) / len(exp.roles_in_order)
    if exp.first_role:
        parts["first"] = float(roles[0] in exp.first_role)
    last_ok = exp.last_role or [SlotRole.offer_cta]
    parts["last"] = float(roles[-1] in last_ok)
    v = sum(parts.values()) / len(parts)
    return Score("role_order", v, "roles: " + " → ".join(str(r) for r in roles), parts)


def hook_first(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """The hook (or pain point opening) must be on screen within the first 3 s."""
    ok_roles = set(exp.first_role or [SlotRole.hook, SlotRole.pain_point])
    hook_idx = next((s.index for s in out.storyboard.slots if s.role in ok_roles), None)
    if hook_idx is None:
        return Score("hook_first", 0.0, "no hook slot", {})
    if out.timeline is not None:
        starts = [v.start_ms for v in out.timeline.video if v.slot == hook_idx]
        start_ms = min(starts) if starts else None
    else:
        start_ms = int(1000 * sum(s.target_s for s in out.storyboard.slots[:hook_idx]))
    ok = start_ms is not None and start_ms < HOOK_WINDOW_MS
    return Score("hook_first", float(ok), f"hook slot {hook_idx} starts at {start_ms} ms",
                 {"slot": hook_idx, "start_ms": start_ms})


def product_consistency(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    ids = _used_clip_ids(out)
    prods = [out.records[c].product if c in out.records else None for c in ids]
    if not prods:
        return Score("product_consistency", None, "no library clips used", {})
    target = exp.product
    if target is None:
        named = [p for p in prods if p]
        target = max(set(named), key=named.count) if named else None
    good = sum(1 for p in prods if p == target)
    wrong = sorted({gold.key(c) for c, p in zip(ids, prods, strict=True) if p != target})
    return Score("product_consistency", good / len(prods), f"{good}/{len(prods)} clips of {target}",
                 {"off_product": wrong})


def _shown_spans(out: RunOutputs) -> list[tuple[str, float, float]]:
    """(clip id, source in, source out) of each library clip on screen; the storyboard's ranges without a timeline."""
    if out.timeline is not None:
        spans = [(v.clip_id, v.in_ms / 1000, v.out_ms / 1000) for v in out.timeline.video
                 if isinstance(v, ClipItem) and v.clip_id and not v.generated]
        if spans or not _chosen_ids(out.storyboard):
            return spans
    return [(s.chosen.clip_id, s.chosen.start or 0.0, s.chosen.end or 0.0) for s in out.storyboard.slots
            if s.chosen is not None]


def repeat_rate(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """Share of shots that repeat an earlier shot: the same frames of a clip again, or a near-duplicate take of it
    (another, non-overlapping moment of one long clip is not a repeat); score = 1 − excess."""
    spans = _shown_spans(out)
    if not spans:
        return Score("no_repeats", None, "no library clips used", {})
    repeats = 0
    for k, (cid, a, b) in enumerate(spans):
        for cid2, a2, b2 in spans[:k]:
            if cid == cid2 and min(b, b2) - max(a, a2) <= 0.05:
                continue  # another moment of the same clip
            if gold.dup_group.get(cid, cid) == gold.dup_group.get(cid2, cid2):
                repeats += 1
                break
    rate = repeats / len(spans)
    v = 1.0 if rate <= exp.max_repeat_rate else max(0.0, 1.0 - (rate - exp.max_repeat_rate) * 2)
    return Score("no_repeats", v, f"{repeats} repeated of {len(spans)} shots", {"rate": round(rate, 3)})


def banned_clips(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    banned = {gold.id(k) for k in exp.must_not_use}
    if not banned:
        return Score("banned_clips", None, "", {})
    used = sorted({gold.key(c) for c in set(_used_clip_ids(out)) | set(_chosen_ids(out.storyboard)) if c in banned})
    return Score("banned_clips", float(not used), f"used: {used}" if used else "none used", {"used": used})


def format_match(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """Library clips have the asked-for formats: all of them (`formats`), or per slot (`slot_formats`)."""
    checks: list[tuple[str, bool]] = []
    if exp.formats:
        for cid in _used_clip_ids(out):
            rec = out.records.get(cid)
            checks.append((gold.key(cid), bool(rec and set(rec.format) & set(exp.formats))))
    for idx, fmts in exp.slot_formats.items():
        slot = out.storyboard.slots[idx] if idx < len(out.storyboard.slots) else None
        rec = out.records.get(slot.chosen.clip_id) if slot and slot.chosen else None
        checks.append((f"slot {idx}", bool(rec and set(rec.format) & set(fmts))))
    if not checks:
        return Score("format_match", None, "", {})
    bad = [k for k, ok in checks if not ok]
    return Score("format_match", 1 - len(bad) / len(checks), f"wrong format: {bad}" if bad else "ok", {"bad": bad})


def duration_error(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """Inside the window → 1; outside, falls linearly to 0 at 20 % of the target away from it."""
    target = out.storyboard.brief.duration_s
    lo, hi = exp.duration_s or (target - 0.5, target + 0.5)
    actual = out.timeline.duration_ms / 1000 if out.timeline is not None else out.storyboard.total_s
    dist = max(lo - actual, actual - hi, 0.0)
    v = max(0.0, 1.0 - dist / (0.2 * max(hi, 1.0)))
    return Score("duration", v, f"{actual:.2f} s for window [{lo:g}, {hi:g}]",
                 {"actual_s": round(actual, 3), "error_s": round(abs(actual - (lo + hi) / 2), 3)})


def aspect(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    want = exp.aspect or out.storyboard.brief.aspect
    got = out.timeline.output.aspect if out.timeline is not None else out.storyboard.brief.aspect
    return Score("aspect", float(got == want), f"{got} (want {want})", {})


# --- narration ---------------------------------------------------------------------------------------------------
def narration_budget(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """Voiceover/caption lines fit their slot: ≤ ~5 zh chars or 2.5 en words per second (+15 % slack)."""
    lines = _slot_lines(out.storyboard, include_clip_audio=False)
    if not lines:
        return Score("narration_budget", None, "no written lines", {})
    over: list[dict[str, Any]] = []
    for s, line in lines:
        lang = text_lang(line) or "en"
        budget = s.target_s * (ZH_CHARS_PER_S if lang == "zh" else EN_WORDS_PER_S) * BUDGET_SLACK
        units = line_units(line, lang)
        if units > budget:
            over.append({"slot": s.index, "units": units, "budget": round(budget, 1)})
    v = 1 - len(over) / len(lines)
    return Score("narration_budget", v, f"{len(over)}/{len(lines)} lines over budget", {"over": over})


def narration_agreement(out: RunOutputs, exp: Expectations, gold: Gold, embedder: Embedder | None) -> Score:
    """Each written line should talk about its own shot: cosine(line, clip record text), mean over slots.

    The mean is reported relative to the same lines paired with the *wrong* shots (shifted by one), so a
    shuffled narration scores low whatever embedder is used.
    """
    pairs = [
        (line, out.records[s.chosen.clip_id].embed_text())
        for s, line in _slot_lines(out.storyboard, include_clip_audio=False)
        if s.chosen is not None and s.chosen.clip_id in out.records
    ]
    if embedder is None or not pairs:
        return Score("narration_agreement", None, "no embedder or no line over a library clip", {})
    lv = embedder.embed([p[0] for p in pairs])
    cv = embedder.embed([p[1] for p in pairs])
    sims = [float(np.dot(lv[i], cv[i])) for i in range(len(pairs))]
    mean = sum(sims) / len(sims)
    raw: dict[str, Any] = {"mean_cos": round(mean, 4), "per_slot": [round(x, 3) for x in sims]}
    if len(pairs) >= 2:
        shifted = [float(np.dot(lv[i], cv[(i + 1) % len(pairs)])) for i in range(len(pairs))]
        wins = sum(1 for a, b in zip(sims, shifted, strict=True) if a >= b)
        raw["shifted_cos"] = round(sum(shifted) / len(shifted), 4)
        v = 0.5 * max(0.0, min(1.0, mean)) + 0.5 * wins / len(pairs)
    else:
        v = max(0.0, min(1.0, mean))
    return Score("narration_agreement", v, f"mean cos {mean:.3f}", raw)


def forbidden_words(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    texts = spoken_and_shown_text(out)
    found = sorted({w for w in exp.forbidden_words for t in texts if _contains(t, w)})
    return Score("forbidden_words", float(not found), f"found: {found}" if found else "clean", {"found": found})


def compliance(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """No forbidden claim reaches the viewer: no ad-law absolute term, product banned claim or efficacy claim
    without the evidence the facts name, in any voiced line, caption, card or played clip speech (the term lists
    of prompts/claims/, matched as agent.claims does). 1.0 clean, else 0."""
    from agent.claims import Policy

    policy = Policy.of(None, banned=list(out.banned_claims), evidence=dict(out.claim_evidence),
                       names=[n for n in (out.storyboard.brief.product, *out.names) if n])
    texts = spoken_and_shown_text(out)
    if out.timeline is not None:  # captions are cut into chunks (a name too): each slot's are also read as one
        joined: dict[int | None, str] = {}
        for c in out.timeline.captions:
            joined[c.slot] = joined.get(c.slot, "") + c.text
        chunks = {c.text for c in out.timeline.captions}
        texts = [t for t in texts if t not in chunks] + list(joined.values())
    hits = [h for t in texts for h in policy.violations(t)]
    found = sorted({f"{h.text} ({h.kind})" for h in hits})
    allowed = sorted({h.text for t in texts for h in policy.check(t) if h.allowed})
    return Score("compliance", float(not found), f"found: {found}"[:160] if found else "clean",
                 {"found": found, "allowed_with_evidence": allowed})


def required_words(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    if not exp.required_words:
        return Score("required_words", None, "", {})
    text = "\n".join(spoken_and_shown_text(out))
    missing = [w for w in exp.required_words if not _contains(text, w)]
    v = 1 - len(missing) / len(exp.required_words)
    return Score("required_words", v, f"missing: {missing}" if missing else "all present", {"missing": missing})


def language(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    want = exp.language or out.storyboard.captions_lang or out.storyboard.brief.lang
    lines = [line for _, line in _slot_lines(out.storyboard, include_clip_audio=False)]
    if out.timeline is not None:
        lines += [c.text for c in out.timeline.captions if c.slot is None or c.lang in (None, want)]
    langs = [text_lang(t) for t in lines]
    langs = [x for x in langs if x]
    if not langs:
        return Score("language", None, "no text", {})
    good = sum(1 for x in langs if x == want)
    return Score("language", good / len(langs), f"{good}/{len(langs)} lines in {want}", {})


def caption_timing(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """Each slot caption lies inside its slot's shot(s) on the timeline (±120 ms)."""
    tl = out.timeline
    if tl is None or not tl.captions:
        return Score("caption_timing", None, "no captions", {})
    spans: dict[int, tuple[int, int]] = {}
    for v in tl.video:
        if v.slot is not None:
            a, b = spans.get(v.slot, (v.start_ms, v.end_ms))
            spans[v.slot] = (min(a, v.start_ms), max(b, v.end_ms))
    bad: list[dict[str, Any]] = []
    checked = 0
    for c in tl.captions:
        if c.slot is None:
            ok = c.start_ms >= 0 and c.end_ms <= tl.duration_ms + CAPTION_TOL_MS
        elif c.slot not in spans:
            ok = False
        else:
            a, b = spans[c.slot]
            ok = c.start_ms >= a - CAPTION_TOL_MS and c.end_ms <= b + CAPTION_TOL_MS
        checked += 1
        if not ok:
            bad.append({"text": c.text[:20], "slot": c.slot, "start_ms": c.start_ms, "end_ms": c.end_ms})
    return Score("caption_timing", 1 - len(bad) / checked, f"{len(bad)}/{checked} captions outside their shot",
                 {"outside": bad[:5]})


# --- render and time -----------------------------------------------------------------------------------------------
def render_validity(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    r, tl = out.render, out.timeline
    if r is None or tl is None:
        return Score("render_validity", None, "not rendered", {})
    want = tl.duration_ms / 1000
    checks = {
        "duration": abs(r.duration_s - want) <= 0.25,
        "video_stream": r.has_video,
        "audio_stream": r.has_audio,
        "size": (r.width, r.height) == (tl.output.width, tl.output.height),
        "av_sync": (
            r.video_duration_s is not None and r.audio_duration_s is not None
            and abs(r.video_duration_s - r.audio_duration_s) <= 0.1
        ),
        "loudness": r.integrated_lufs is not None and abs(r.integrated_lufs - tl.audio.target_lufs) <= 2.0,
    }
    failed = [k for k, ok in checks.items() if not ok]
    return Score("render_validity", sum(checks.values()) / len(checks), f"failed: {failed}" if failed else "ok",
                 {"failed": failed, "duration_s": r.duration_s, "lufs": r.integrated_lufs})


def run_time(out: RunOutputs, exp: Expectations, gold: Gold, *, budget_s: float | None = None) -> Score:
    """Full marks up to the budget (20 s to plan, 60 s to plan and render), then budget / wall."""
    if out.wall_s is None:
        return Score("run_time", None, "", {})
    if budget_s is None:
        budget_s = 60.0 if out.render is not None else 20.0
    v = 1.0 if out.wall_s <= budget_s else budget_s / out.wall_s
    return Score("run_time", v, f"{out.wall_s:.2f} s (budget {budget_s:g} s)", {"wall_s": round(out.wall_s, 3)})


# --- what the viewer sees and hears ---------------------------------------------------------------------------
def _clip_speech(item: ClipItem, rec: ClipRecord) -> str:
    """The part of a clip's transcript its timeline range plays (whole transcript when there are no word times)."""
    if not rec.words:
        return rec.transcript.strip()
    a, b = item.in_ms / 1000, item.out_ms / 1000
    words = [w.text for w in rec.words if a <= (w.start + w.end) / 2 <= b]
    # Whisper keeps the leading space on Latin words and none on CJK ones; hand-made words may have neither
    return "".join(w if _CJK.match(w) or w[:1].isspace() else " " + w for w in words).strip()


def intended_speech(out: RunOutputs) -> tuple[list[str], list[int]]:
    """(what the ad means to be heard, in timeline order; slots left caption-only by decision).

    Voiceover texts on the timeline plus the played part of every clip kept with its own audio; a slot whose
    line_source is "caption" is not meant to be heard."""
    sb, tl = out.storyboard, out.timeline
    caption_only = [s.index for s in sb.slots if s.line_source == "caption" and s.line.strip()]
    if tl is None:
        return [], caption_only
    skip = set(caption_only)
    timed: list[tuple[int, str]] = [(v.start_ms, v.text.strip()) for v in tl.voiceover
                                    if v.text.strip() and v.slot not in skip]
    for item in tl.video:
        if isinstance(item, ClipItem) and item.audio and item.clip_id and item.clip_id in out.records:
            text = _clip_speech(item, out.records[item.clip_id])
            if text:
                timed.append((item.start_ms, text))
    return [t for _, t in sorted(timed, key=lambda x: x[0])], caption_only


def intelligibility(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """Did the listener hear what the ad says? 1 − CER (zh) / WER (en) of the render's transcript against the
    voiceover texts + played clip speech. Rendered runs only; None when every line is caption-only by decision."""
    name = "intelligibility"
    r = out.render
    if r is None or out.timeline is None:
        return Score(name, None, "not rendered", {})
    lang = out.storyboard.brief.lang
    ref_parts, caption_only = intended_speech(out)
    reference = " ".join(ref_parts) if lang == "en" else "".join(ref_parts)
    heard = r.heard_text
    raw: dict[str, Any] = {"lang": lang, "reference": reference[:160], "heard": (heard or "")[:160],
                           "caption_only_slots": caption_only}
    if not reference.strip():
        raw["caption_only"] = True
        return Score(name, None, "caption-only by decision", raw)
    if heard is None:
        if r.asr_error:  # the ASR pass failed on a rendered ad: unknown must not pass the gate as "fine"
            return Score(name, 0.0, f"no transcript: {r.asr_error}"[:120], raw)
        return Score(name, None, "not transcribed", raw)
    err = error_rate(reference, heard, lang)
    raw["cer" if lang == "zh" else "wer"] = round(err, 3)
    return Score(name, 1.0 - err, f"{'CER' if lang == 'zh' else 'WER'} {err:.2f}", raw)


def _union_ms(spans: list[tuple[int, int]]) -> int:
    total, cur_a, cur_b = 0, None, None
    for a, b in sorted(spans):
        if cur_b is None or a > cur_b:
            if cur_a is not None and cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_a is not None and cur_b is not None:
        total += cur_b - cur_a
    return total


def footage_share(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """Seconds showing footage or stills (real or generated) ÷ the ad's length; cards and the end card count
    against it. Anything drawn over footage still counts as footage (the footage is what is on screen)."""
    tl = out.timeline
    if tl is None:
        total = out.storyboard.total_s
        foot = sum(s.target_s for s in out.storyboard.slots
                   if s.chosen is not None or (s.asset is not None and s.asset.kind != "card"))
        card = total - foot
    else:
        total = tl.duration_ms / 1000
        spans = [(v.start_ms, v.end_ms) for v in tl.video if isinstance(v, ClipItem | ImageItem)]
        cards = [(v.start_ms, v.end_ms) for v in tl.video if isinstance(v, CardItem)]
        foot = _union_ms(spans) / 1000
        card = (_union_ms(spans + cards) - _union_ms(spans) + tl.brand.end_card_ms) / 1000
    if total <= 0:
        return Score("footage_share", None, "empty ad", {})
    share = max(0.0, min(1.0, foot / total))
    return Score("footage_share", share, f"{foot:.1f} s of footage in {total:.1f} s",
                 {"footage_s": round(foot, 3), "card_s": round(card, 3)})


# Grounding: words that carry no fact. A line made only of these fits any product's ad.
def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


EN_STOP_WORDS = _wordset("""
a an the and or but if so as at by for from in into of on onto to with without within about over under up down out off
is are was were be been being am do does did done have has had having will would can could should shall may might must
it its it's this that these those there here then than them they their theirs we our ours us you your yours yourself
yourselves i me my mine he him his she her hers who whom whose which what when where why how all any each every some
no not nor only own same such too very just also again ever even still more most less least much many other another
one ones get gets got getting make makes made making let lets go goes going come comes take takes give gives put
s t don't can't won't isn't aren't you're you'll you've we're it'll that's what's here's there's
something anything everything nothing away back around first last next year years month months week weeks
""")
EN_GENERIC_AD_WORDS = _wordset("""
offer offers shop shopping now buy today tap click link order orders deal deals sale sales limited time hurry grab
don miss free best better great amazing awesome perfect ultimate love loved loving favorite favourite must need want
sound sounds familiar see look looks difference yourself brand brands trust trusted quality product products new
meet introducing discover try check feel life change changer game real really finally every everyone thing things
ad ads video second seconds angle spot clip teaser promo ready right way day days world easy simple results
""")
ZH_GENERIC_AD_WORDS: tuple[str, ...] = tuple(sorted(_wordset("""
立即 下单 优惠 限时 快抢 抢购 马上 赶紧 现在 今天 今日 点击 链接 购买 入手 值得 信赖 品牌 大牌 专研 好物 推荐 必备 神器
效果 看得见 改变 体验 感受 不同 一起 真的 超级 非常 这个 那个 这款 那款 我们 你们 大家 自己 还在 烦恼 问题 是不是
有没有 试试 广告 视频 镜头 画面 抖音 小红书 快手 中文 英文 字幕 拥有 选择 告别 时候 知道 一下 什么 怎么 这样 那样
就是 可以 不要 开始 发现 给你 为你 生活 美好 品质 保证 放心 官方 正品 福利 活动 专属 机会 错过 一个 一样 一定 一直
秒杀 好用 宝藏 安排 冲 做一条 一条 秒 广告片
"""), key=lambda w: (-len(w), w)))
ZH_STOP_CHARS = frozenset("的了吗呢吧啊呀哦哟啦嘛哈你我他她它是在有也都就和与及为让给把被又很更最还"
                          "这那个么们来去看别快")
_LATIN = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ'’]*")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def _stem(w: str) -> str:
    for suf in ("ing", "es", "s"):
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            return w[: -len(suf)]
    return w


def _en_words(text: str, *, min_len: int = 4) -> set[str]:
    out = set()
    for w in _LATIN.findall(text):
        w = w.lower().replace("’", "'").removesuffix("'s").strip("'")
        if len(w) >= min_len and w not in EN_STOP_WORDS and w not in EN_GENERIC_AD_WORDS:
            out.add(_stem(w))
    return out


def _zh_strip(text: str) -> str:
    for g in ZH_GENERIC_AD_WORDS:
        text = text.replace(g, "|")
    return text


def _zh_bigrams(text: str) -> set[str]:
    grams: set[str] = set()
    for run in _CJK_RUN.findall(_zh_strip(text)):
        kept = "".join(c if c not in ZH_STOP_CHARS else "|" for c in run)
        for part in kept.split("|"):
            grams.update(part[i:i + 2] for i in range(len(part) - 1))
    return grams


def content_terms(text: str) -> set[str]:
    """What a text says beyond ad boilerplate: zh character bigrams + en content words (≥ 4 letters, stemmed)."""
    return _zh_bigrams(text) | _en_words(text)


def _has_fact(fact: str) -> bool:
    """A fact phrase carries something once the generic ad words are gone (买一送一 yes, 限时优惠 no)."""
    zh_left = "".join(_CJK_RUN.findall(_zh_strip(fact)))
    return bool(zh_left) or bool(_en_words(fact, min_len=2))


def _grounded_by(line: str, sources: Mapping[str, Sequence[str]]) -> str | None:
    terms = content_terms(line)
    for kind, texts in sources.items():
        for t in texts:
            if not t:
                continue
            if _has_fact(t) and _contains(line, t):
                return kind
            if terms & content_terms(t):
                return kind
    return None


def grounding(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """Every written line can be traced to the brief, the product's facts or its own clip's record.

    A line grounds when it names the product, contains a selling point / offer phrase, or shares content words
    (zh bigrams, en words of 4+ letters; stop words and generic ad words don't count) with one of them, with
    the brief's angle / text, or with the chosen clip's transcript, description or tags. Clip-audio lines are
    the footage's own speech: grounded by definition. "Sound familiar?" grounds in nothing."""
    sb = out.storyboard
    b = sb.brief
    facts = [f for f in [b.product or "", *out.facts] if f]
    brief_texts = [t for t in [b.angle or "", b.text, b.audience or "", *b.must_include] if t]
    per: list[dict[str, Any]] = []
    for s, line in _slot_lines(sb):
        if s.line_source == "clip_audio":
            per.append({"slot": s.index, "line": line[:40], "by": "clip_audio"})
            continue
        clip: list[str] = []
        if s.chosen is not None:
            clip.append(s.chosen.transcript)
            rec = out.records.get(s.chosen.clip_id)
            if rec is not None:
                clip += [rec.transcript, rec.description, *rec.tags, *rec.trend_tags]
        by = _grounded_by(line, {"fact": facts, "brief": brief_texts, "clip": clip})
        per.append({"slot": s.index, "line": line[:40], "by": by})
    if not per:
        return Score("grounding", None, "no lines", {})
    bad = [p for p in per if p["by"] is None]
    v = 1 - len(bad) / len(per)
    detail = f"ungrounded: {[p['line'] for p in bad]}" if bad else f"{len(per)} lines grounded"
    return Score("grounding", v, detail[:160], {"lines": per, "facts": len(facts)})


# Angle families, zh + en. A keyword matches as a substring for zh, as a word (plus plural/-ing/-ed) for en.
ANGLE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "pain": (
        "侧睡纹", "侧睡", "皱纹", "细纹", "纹路", "熬夜", "眼袋", "黑眼圈", "松弛", "显老", "老5岁", "衰老",
        "干燥", "暗沉", "烦恼", "困扰", "痛点", "疲惫", "犯困", "没精神", "压出", "压垮",
        "wrinkle", "fine line", "crow's feet", "eye bag", "dark circle", "puffy", "sagging", "aging", "ageing",
        "older", "tired", "tiredness", "exhausted", "sleepy", "problem", "struggle", "struggling", "pain",
        "side-sleep", "side sleep", "sleep line", "sleep wrinkle", "screen time", "bored", "boredom",
    ),
    "benefit": (
        "拼装", "乐趣", "好玩", "周末", "礼物", "体验", "亲子", "陪伴", "快乐", "开心", "动手", "创造", "齿轮", "转向",
        "fun", "build", "building", "builder", "weekend", "screen-free", "screen free", "gift", "family", "together",
        "creative", "create", "enjoy", "experience", "gears", "steering", "hands-on", "play", "energy", "delicious",
    ),
    "offer": (
        "优惠", "买一送一", "打折", "折扣", "半价", "包邮", "促销", "满减", "秒杀", "限时", "赠品", "赠送", "特价",
        "offer", "discount", "half price", "half-price", "free shipping", "deal", "sale", "promo", "coupon",
        "bogo", "buy one get one", "% off", "percent off",
    ),
    "curiosity": (
        "揭秘", "秘密", "你知道", "猜", "好奇", "黑科技", "新品", "没想到", "居然",
        "curious", "secret", "did you know", "guess", "mystery", "what if", "surprising", "never seen",
        "how does", "ever wondered",
    ),
}
# Hook shapes that open on the viewer's problem, whatever the words.
PAIN_HOOK_PATTERNS: tuple[str, ...] = (
    r"还在为.{0,16}(烦恼|发愁|困扰|头疼|焦虑)", r"你(也|是不是|有没有).{0,10}(问题|烦恼|困扰)", r"怎么办", r"受够了",
    r"sound(s)? familiar", r"still (fighting|struggling|dealing|battling|suffering|stuck)", r"(tired|sick) of",
    r"struggling with", r"fed up",
)
# Which hook families express which brief angle (a fun brief must not open on a pain question).
ANGLE_FITS: dict[str, frozenset[str]] = {
    "pain": frozenset({"pain"}),
    "benefit": frozenset({"benefit", "curiosity"}),
    "offer": frozenset({"offer"}),
    "curiosity": frozenset({"curiosity", "benefit"}),
}
_EN_SUFFIX = r"(?:s|es|d|ed|ing|er|ers)?"


def _keyword_hits(text: str, family: str) -> list[str]:
    low = text.lower()
    hits = []
    for kw in ANGLE_KEYWORDS[family]:
        if _CJK.search(kw) or not kw[0].isalnum():
            ok = kw in low
        else:
            ok = re.search(r"(?<![a-z])" + re.escape(kw) + _EN_SUFFIX + r"(?![a-z])", low) is not None
        if ok:
            hits.append(kw)
    return hits


def angle_family(text: str) -> tuple[str | None, dict[str, list[str]]]:
    """The angle family with the most keyword hits (ties: pain > benefit > offer > curiosity), or None."""
    hits = {f: _keyword_hits(text, f) for f in ANGLE_KEYWORDS}
    best = max(ANGLE_KEYWORDS, key=lambda f: len(hits[f]))
    return (best if hits[best] else None), {f: h for f, h in hits.items() if h}


def _is_question(text: str) -> bool:
    t = text.strip()
    return bool(re.search(r"[?？]|[吗呢]\s*[。！!]?$|^(did|do|does|have|ever|what|why|how|who|is|are|can)\b", t, re.I))


def hook_family(text: str) -> str | None:
    """pain: a problem question ("还在为…烦恼？", "Sound familiar?") or a question about a problem; offer: a question
    or statement about the deal; curiosity: any other question; a statement goes with the family it names most
    (ties: pain > offer > benefit > curiosity), and a bare exclamation is a benefit."""
    if not text.strip():
        return None
    if any(re.search(p, text, re.I) for p in PAIN_HOOK_PATTERNS):
        return "pain"
    hits = {f: len(_keyword_hits(text, f)) for f in ("pain", "offer", "benefit", "curiosity")}
    if _is_question(text):
        return "pain" if hits["pain"] else "offer" if hits["offer"] else "curiosity"
    best = max(hits, key=lambda f: hits[f])
    if hits[best]:
        return best
    return "benefit" if re.search(r"[!！]", text) else None


def angle_fidelity(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """The hook (slot 0) opens on the brief's angle: a pain brief on a pain hook, a fun/benefit brief on fun or
    curiosity, never on a pain question; None when the brief has no clear angle."""
    sb = out.storyboard
    b = sb.brief
    fam, hits = angle_family(b.angle) if b.angle else (None, {})
    if fam is None:
        fam, hits = angle_family(b.text)
    if fam is None:
        return Score("angle_fidelity", None, "brief has no clear angle", {})
    hook = sb.slots[0]
    text = hook.line
    if hook.line_source == "clip_audio" and hook.chosen is not None:
        rec = out.records.get(hook.chosen.clip_id)
        text = (rec.transcript if rec is not None else "") or hook.chosen.transcript or hook.line
    got = hook_family(text)
    ok = got is not None and got in ANGLE_FITS[fam]
    return Score("angle_fidelity", float(ok), f"{fam} brief, {got or 'no-angle'} hook: {text[:30]!r}",
                 {"brief_family": fam, "brief_hits": hits, "hook_family": got, "hook": text[:60],
                  "planner_family": getattr(b, "angle_family", None)})


def changed_slots(before: Storyboard, after: Storyboard) -> int:
    """Slots whose role, clip or line differ (plus added/removed slots)."""
    changed = abs(len(before.slots) - len(after.slots))
    for a, b in zip(before.slots, after.slots, strict=False):
        ca = a.chosen.clip_id if a.chosen else None
        cb = b.chosen.clip_id if b.chosen else None
        if a.role != b.role or ca != cb or a.line != b.line:
            changed += 1
    return changed


def revision_locality(before: Storyboard, after: Storyboard, max_changed: int | None,
                      min_changed: int | None = None) -> Score:
    """A revision is a patch: count slots whose role, clip or line changed (plus added/removed slots).

    At most `max_changed` (a patch, not a regeneration) and at least `min_changed` (it did something)."""
    if max_changed is None and min_changed is None:
        return Score("revision_locality", None, "", {})
    changed = changed_slots(before, after)
    if min_changed is not None and changed < min_changed:
        return Score("revision_locality", 0.0, f"{changed} slots changed (min {min_changed})", {"changed": changed})
    if max_changed is None or changed <= max_changed:
        v = 1.0
    else:
        v = max(0.0, 1 - (changed - max_changed) / max(len(after.slots), 1))
    return Score("revision_locality", v, f"{changed} slots changed (max {max_changed})", {"changed": changed})


NOT_APPLIED_KINDS = frozenset({"not_understood", "refused", "not_applicable"})


def revision_answered(before: Storyboard, after: Storyboard, record: Mapping[str, Any] | None, *,
                      locality: Score | None = None, expect_message: bool = False) -> Score:
    """A revision request gets an answer: the storyboard changed as asked, or the planner said why not.

    Changed as asked: the turn's locality check passed with something changed, or the revision record is an
    applied one (kind not not_understood / refused / not_applicable, `applied` not false) and the storyboard
    differs. Said why not: a declined record (`applied: false` or one of those kinds) with a non-empty `message`
    (ideally with `alternatives`). A silent no-op scores 0, and so does a record claiming a change that is not
    there. With `expect_message` (a request that cannot be applied) only a message saying why not answers it."""
    rec: Mapping[str, Any] = record if isinstance(record, Mapping) else {}
    kind = rec.get("kind")
    applied = rec.get("applied")
    message = rec.get("message")
    message = message.strip() if isinstance(message, str) else ""
    alts = rec.get("alternatives")
    alternatives = [str(a) for a in alts] if isinstance(alts, list | tuple) else []
    n = changed_slots(before, after)
    changed = n > 0 or before.model_dump(mode="json") != after.model_dump(mode="json")
    declined = applied is False or (kind is not None and str(kind) in NOT_APPLIED_KINDS) or (
        kind is None and applied is None and bool(message))
    local_ok = locality is not None and locality.value == 1.0 and int(locality.raw.get("changed", 0)) > 0
    as_asked = local_ok or (kind is not None and not declined and changed)
    explained = declined and bool(message)
    raw: dict[str, Any] = {"kind": kind, "applied": applied, "changed": changed, "changed_slots": n,
                           "message": message[:120], "alternatives": alternatives[:5]}
    if expect_message:
        ok = explained
        how = "explained" if ok else "no message saying why a request that cannot be applied was not"
    elif as_asked:
        ok, how = True, f"changed ({kind})"
    elif explained:
        ok, how = True, "explained"
    elif kind is not None and not declined:
        ok, how = False, f"{kind} claimed, nothing changed"
    else:
        ok, how = False, "silent no-op" if not changed else f"changed but not applied ({kind})"
    detail = how + (f": {message[:60]}" if message else "")
    return Score("revision_answered", float(ok), detail, raw)

SCORERS: tuple[Callable[[RunOutputs, Expectations, Gold], Score], ...] = (
    retrieval_precision, retrieval_ndcg, role_order, hook_first, product_consistency, repeat_rate, banned_clips,
    format_match, duration_error, aspect, narration_budget, forbidden_words, compliance, required_words, language,
    caption_timing,
    render_validity, run_time, intelligibility, footage_share, grounding, angle_fidelity,
)


def score_all(out: RunOutputs, exp: Expectations, gold: Gold, *, embedder: Embedder | None = None) -> list[Score]:
    """Every scorer on one run (narration agreement only with an embedder)."""
    scores = [f(out, exp, gold) for f in SCORERS]
    scores.append(narration_agreement(out, exp, gold, embedder))
    return scores
