"""Shared helpers for agent tests: invariant checks over a finished run, and a Toolbox without TTS (fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.rules import within_budget
from agent.run import MakeResult
from agent.toolbox import Toolbox
from cutpilot.errors import ToolMissingError
from cutpilot.storyboard import SlotRole


class NoVoiceTools(Toolbox):
    """Real music and renderer; TTS off (so graph tests stay fast). Counts every call."""

    def tts(self, text: str, *, lang: str, out_dir: Path) -> Any:
        self._count("tts")
        raise ToolMissingError("tts disabled in this test")


def assert_ad_invariants(r: MakeResult, seconds: float) -> None:
    """The contract every planned ad must meet, whichever brain made it."""
    tl, sb = r.timeline, r.storyboard
    assert abs(tl.duration_ms / 1000 - seconds) <= 0.5, tl.duration_ms
    spans = [(s.chosen.clip_id, s.chosen.start or 0.0, s.chosen.end or 0.0) for s in sb.slots if s.chosen]
    for k, (cid, a, b) in enumerate(spans):  # another moment of a clip is fine; the same frames twice are not
        for cid2, a2, b2 in spans[k + 1:]:
            assert cid != cid2 or min(b, b2) - max(a, a2) <= 0.05, f"clip {cid} is shown twice"
    assert sb.slots[0].role == SlotRole.hook and tl.video[0].start_ms == 0 and tl.video[0].duration_ms <= 3000
    assert sb.slots[-1].role == SlotRole.offer_cta, "must end on the offer / CTA"
    product = [s for s in sb.slots if s.role in (SlotRole.product_intro, SlotRole.spokesperson)]
    assert product and any(s.chosen or s.asset for s in product), "the product must appear"
    lang = sb.captions_lang or sb.brief.lang
    for s in sb.slots:
        assert s.line, f"slot {s.index} has no line"
        if s.line_source != "clip_audio":
            assert within_budget(s.line, s.target_s * sb.line_budget, lang), (s.index, s.line, s.target_s)
    for item in tl.video:  # code, not the brain, copied the times: each clip item matches its record
        if item.kind == "clip" and item.clip_id:
            slot = sb.slots[item.slot or 0]
            assert slot.chosen and item.in_ms == round((slot.chosen.start or 0) * 1000)
