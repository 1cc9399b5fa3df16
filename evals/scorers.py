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
from pydantic import BaseModel

from cutpilot.models import ClipRecord
from cutpilot.storyboard import Slot, SlotRole, Storyboard
from cutpilot.timeline import CardItem, ClipItem, Timeline
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


@dataclass(frozen=True)
class RunOutputs:
    """One run as the scorers see it. `run` is the run.json dict (read defensively: only a few keys)."""

    storyboard: Storyboard
    timeline: Timeline | None = None
    run: Mapping[str, Any] = field(default_factory=dict)
    records: Mapping[str, ClipRecord] = field(default_factory=dict)
    wall_s: float | None = None
    render: RenderFacts | None = None


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


def repeat_rate(out: RunOutputs, exp: Expectations, gold: Gold) -> Score:
    """Share of shots that repeat an earlier shot (same clip or a near-duplicate of it); score = 1 − excess."""
    ids = _used_clip_ids(out)
    if not ids:
        return Score("no_repeats", None, "no library clips used", {})
    groups = [gold.dup_group.get(c, c) for c in ids]
    repeats = len(groups) - len(set(groups))
    rate = repeats / len(groups)
    v = 1.0 if rate <= exp.max_repeat_rate else max(0.0, 1.0 - (rate - exp.max_repeat_rate) * 2)
    return Score("no_repeats", v, f"{repeats} repeated of {len(groups)} shots", {"rate": round(rate, 3)})


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


def revision_locality(before: Storyboard, after: Storyboard, max_changed: int | None,
                      min_changed: int | None = None) -> Score:
    """A revision is a patch: count slots whose role, clip or line changed (plus added/removed slots).

    At most `max_changed` (a patch, not a regeneration) and at least `min_changed` (it did something)."""
    if max_changed is None and min_changed is None:
        return Score("revision_locality", None, "", {})
    changed = abs(len(before.slots) - len(after.slots))
    for a, b in zip(before.slots, after.slots, strict=False):
        ca = a.chosen.clip_id if a.chosen else None
        cb = b.chosen.clip_id if b.chosen else None
        if a.role != b.role or ca != cb or a.line != b.line:
            changed += 1
    if min_changed is not None and changed < min_changed:
        return Score("revision_locality", 0.0, f"{changed} slots changed (min {min_changed})", {"changed": changed})
    if max_changed is None or changed <= max_changed:
        v = 1.0
    else:
        v = max(0.0, 1 - (changed - max_changed) / max(len(after.slots), 1))
    return Score("revision_locality", v, f"{changed} slots changed (max {max_changed})", {"changed": changed})


SCORERS: tuple[Callable[[RunOutputs, Expectations, Gold], Score], ...] = (
    retrieval_precision, retrieval_ndcg, role_order, hook_first, product_consistency, repeat_rate, banned_clips,
    format_match, duration_error, aspect, narration_budget, forbidden_words, required_words, language, caption_timing,
    render_validity, run_time,
)


def score_all(out: RunOutputs, exp: Expectations, gold: Gold, *, embedder: Embedder | None = None) -> list[Score]:
    """Every scorer on one run (narration agreement only with an embedder)."""
    scores = [f(out, exp, gold) for f in SCORERS]
    scores.append(narration_agreement(out, exp, gold, embedder))
    return scores
