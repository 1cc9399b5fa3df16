"""The deterministic offline planner: rule-based brief parsing, role templates per ad length, retrieval-driven
slot filling and lines written from the product's facts. It is the default with no LLM endpoint, the fallback for
any failed LLM step, and the baseline an LLM brain has to beat.
"""

from __future__ import annotations

from typing import Any

from agent.brief import parse_brief
from agent.copywriter import Copywriter, Facts
from agent.rules import MIN_SCORE
from agent.runrecord import RunRecord
from agent.sources import ClipSource
from agent.state import Candidate
from agent.templates import plan_storyboard
from cutpilot.storyboard import Brief, SlotRole, Storyboard


def pick_best(cands: list[Candidate], used: set[str], target_s: float, min_score: float = MIN_SCORE) -> str | None:
    """Best-scoring unused clip; a small bonus for clips long enough to fill the slot without freezing."""
    best: tuple[float, str] | None = None
    rank = 0
    for c in cands:
        if c.clip.clip_id in used or c.relevance < min_score:
            continue
        fit = 1.5 if c.clip.duration >= target_s * 0.8 else 0.0
        key = -rank + fit  # keep the search order; prefer a clip that fills its slot among near neighbours
        rank += 1
        if best is None or key > best[0]:
            best = (key, c.clip.clip_id)
    return best[1] if best else None


def write_lines(storyboard: Storyboard, slots: list[int], product: Any = None) -> dict[int, str]:
    """Grounded lines for the given slots, in slot order so selling points are spread over the ad."""
    lang = storyboard.captions_lang or storyboard.brief.lang
    writer = Copywriter(storyboard.brief, Facts.of(product, storyboard.brief, lang), lang)
    out: dict[int, str] = {}
    for i in sorted(slots):
        s = storyboard.slots[i]
        hook = i == 0 and s.role == SlotRole.hook
        out[i] = writer.line(s.role, s.target_s * storyboard.line_budget, is_hook=hook,
                             name_first=hook and storyboard.hook_names_product)
    return out


class OfflineBrain:
    """Deterministic brain: same inputs, same plan."""

    name = "offline"
    model: str | None = None

    def understand(self, text: str, products: list[str], run: RunRecord, base: Brief | None = None,
                   book: Any = None) -> Brief:
        return parse_brief(text, products, base=base, book=book)

    def storyboard(self, brief: Brief, run: RunRecord) -> Storyboard:
        return plan_storyboard(brief)

    def select(
        self,
        storyboard: Storyboard,
        candidates: dict[int, list[Candidate]],
        source: ClipSource,
        used: set[str],
        run: RunRecord,
    ) -> dict[int, str | None]:
        out: dict[int, str | None] = {}
        taken = set(used)
        # the hook may borrow any product shot, so it picks last: product / proof slots choose first
        for idx in sorted(candidates, key=lambda k: (storyboard.slots[k].role == SlotRole.hook, k)):
            slot = storyboard.slots[idx]
            cid = pick_best(candidates[idx], taken, slot.target_s)
            out[idx] = cid
            if cid:
                taken.add(cid)
        return out

    def script(self, storyboard: Storyboard, slots: list[int], run: RunRecord, *, product: Any = None
               ) -> dict[int, str]:
        return write_lines(storyboard, slots, product)
