"""Every revision is answered: applied and shown, or refused at once with the reason and what could be used instead.

Unit level (apply_revision with a probe that says what the library holds) for each phrase in zh and en, then a
chat thread through the real graph where a refused request leaves the storyboard untouched and searches nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_fakes import MemorySource, domain_records
from agent_helpers import NoVoiceTools

from agent.brief import parse_brief
from agent.revise import Refusal, apply_revision
from agent.run import resume_chat, start_chat
from agent.state import Candidate
from agent.templates import plan_storyboard
from cutpilot.models import ClipRecord, clip_id_for
from cutpilot.products import ProductBook, ProductStore, load_products_file
from cutpilot.settings import Settings
from cutpilot.storyboard import ClipChoice, GeneratedAsset, Slot, Storyboard

LEGO = "LEGO Technic"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def lego_records() -> list[ClipRecord]:
    rows = [("product_intro", "LEGO Technic model on a table under studio lights, packshot", 5.5),
            ("feature_demo", "close-up of LEGO Technic gears turning and the steering linkage", 6.0),
            ("brand_intro", "LEGO brand film: a family building a Technic set together", 6.3),
            ("usage_demo", "hands clicking LEGO Technic pieces together on a desk", 5.0)]
    out, t = [], 0.0
    for ct, desc, dur in rows:
        out.append(ClipRecord(clip_id=clip_id_for("lego", t, t + dur), source="/nonexistent/lego.mp4",
                              source_hash="lego", start=t, end=t + dur, language=None, transcript="",
                              description=desc, content_type=ct, format=["product_still"], product=LEGO,
                              tags=["LEGO", "Technic"], label_source="human", has_audio=False))
        t += dur
    return out


ZH_BRIEF = "做一条15秒的乐高机械组广告，突出拼装乐趣，抖音"


def _storyboard(text: str = ZH_BRIEF, cards: tuple[int, ...] = ()) -> Storyboard:
    book = ProductBook(load_products_file(SAMPLES / "products.yaml"))
    sb = plan_storyboard(parse_brief(text, [LEGO], book=book))
    recs = lego_records()
    slots = []
    for s, r in zip(sb.slots, recs, strict=False):
        if s.index in cards:
            slots.append(s.model_copy(update={"asset": GeneratedAsset(kind="card", path="", tool="renderer.card"),
                                              "line": "本周包邮"}))
        else:
            slots.append(s.model_copy(update={"chosen": ClipChoice(clip_id=r.clip_id, score=0.9, start=r.start,
                                                                   end=r.end, source=r.source),
                                              "line": "拼装乐趣，从乐高机械组开始！"}))
    return sb.model_copy(update={"slots": slots + list(sb.slots[len(slots):])})


def _probe(records: list[ClipRecord]):  # type: ignore[no-untyped-def]
    def probe(slot: Slot, exclude: list[str]) -> list[Candidate]:
        return [Candidate(clip=r, score=0.9, relevance=0.9) for r in records if r.clip_id not in exclude
                and (not slot.content_types or r.content_type in slot.content_types)
                and (not slot.formats or set(slot.formats) & set(r.format))]
    return probe


EXTRA = ClipRecord(clip_id=clip_id_for("lego2", 0, 4), source="/nonexistent/lego2.mp4", source_hash="lego2", start=0,
                   end=4, description="LEGO Technic brand intro footage", content_type="brand_intro",
                   format=["product_still"], product=LEGO, label_source="human", has_audio=False)


@pytest.mark.parametrize("text", ["把第3个镜头换成乐高的视频片段", "replace shot 3 with a product clip"])
def test_replace_shot_with_product_footage(text: str) -> None:
    sb = _storyboard()
    p = apply_revision(sb, text, _probe([*lego_records(), EXTRA]))
    assert p.kind == "replace_shot" and p.refetch == [2] and p.storyboard.slots[2].content_types == []
    assert p.storyboard.slots[2].require_product  # footage of LEGO, never an unlabelled clip
    assert p.storyboard.slots[2].chosen is None and p.exclude[2] == [sb.slots[2].chosen.clip_id]  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["把第3个镜头换成乐高的视频片段", "replace shot 3 with a product clip"])
def test_replace_shot_refused_when_nothing_is_left(text: str) -> None:
    sb = _storyboard()
    with pytest.raises(Refusal) as e:
        apply_revision(sb, text, _probe(lego_records()))  # every LEGO clip is already in the ad
    assert "shot 3" in e.value.message and "\n" not in e.value.message and e.value.alternatives


@pytest.mark.parametrize("text", ["use the brand intro footage instead of the cards", "用品牌介绍的画面替换卡片"])
def test_cards_to_brand_footage(text: str) -> None:
    sb = _storyboard(cards=(3,))
    p = apply_revision(sb, text, _probe([*lego_records(), EXTRA]))
    assert p.kind == "cards_to_footage" and p.refetch == [3]
    assert [c.value for c in p.storyboard.slots[3].content_types] == ["brand_intro"]
    with pytest.raises(Refusal) as e:
        apply_revision(sb, text, _probe(lego_records()))
    assert "brand_intro" in e.value.message and "cards stay" in e.value.message


@pytest.mark.parametrize("text", ["用真实画面替换卡片", "use real footage instead of the cards"])
def test_cards_to_any_footage_and_no_cards(text: str) -> None:
    p = apply_revision(_storyboard(cards=(3,)), text, _probe([*lego_records(), EXTRA]))
    assert p.kind == "cards_to_footage" and p.storyboard.slots[3].content_types == []
    with pytest.raises(Refusal) as e:
        apply_revision(_storyboard(), text, _probe([*lego_records(), EXTRA]))
    assert "no full-screen cards" in e.value.message


@pytest.mark.parametrize("text", ["换个开头", "swap the hook"])
def test_swap_hook_or_say_why_not(text: str) -> None:
    sb = _storyboard()
    p = apply_revision(sb, text, _probe([*lego_records(), EXTRA]))
    assert p.kind == "swap_hook" and p.refetch == [0]
    with pytest.raises(Refusal) as e:
        apply_revision(sb, text, _probe(lego_records()))
    assert "open the ad" in e.value.message and e.value.alternatives


@pytest.mark.parametrize("text", ["shorter lines", "台词短一点"])
def test_shorter_lines(text: str) -> None:
    p = apply_revision(_storyboard(), text)
    assert p.kind == "shorter_lines" and p.storyboard.line_budget == pytest.approx(0.7)
    assert p.rescript == [0, 1, 2, 3]


@pytest.mark.parametrize("text", ["name the product in the hook", "开头要提到产品名"])
def test_name_in_hook(text: str) -> None:
    sb = _storyboard()
    sb = sb.model_copy(update={"slots": [sb.slots[0].model_copy(update={"line": "拼装乐趣！"}), *sb.slots[1:]]})
    p = apply_revision(sb, text)
    assert p.kind == "name_in_hook" and p.storyboard.hook_names_product and p.rescript == [0]


@pytest.mark.parametrize("text", ["replace shot 9 with a drone shot", "把第9个镜头换成航拍"])
def test_shot_that_does_not_exist(text: str) -> None:
    with pytest.raises(Refusal) as e:
        apply_revision(_storyboard(), text, _probe(lego_records()))
    assert e.value.message.startswith("there is no shot 9") and "4 shots" in e.value.message


@pytest.mark.parametrize("text", ["make it purple", "加点魔法"])
def test_not_understood_lists_what_works(text: str) -> None:
    with pytest.raises(Refusal) as e:
        apply_revision(_storyboard(), text)
    assert e.value.kind == "not_understood" and any("swap the hook" in a for a in e.value.alternatives)


# --- through the graph ---------------------------------------------------------------------------------------------
def _state(settings: Settings, thread: str) -> dict:  # type: ignore[type-arg]
    from agent.graph import open_checkpointer

    cp = open_checkpointer(settings)
    try:
        tup = cp.get_tuple({"configurable": {"thread_id": thread}})
        return dict(tup.checkpoint["channel_values"])  # type: ignore[union-attr]
    finally:
        cp.conn.close()


def test_chat_answers_every_revision_in_both_languages(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", text_embedder="hash", voice_check=False)
    ProductStore(settings).import_file(SAMPLES / "products.yaml")
    src = MemorySource(domain_records() + lego_records() + [EXTRA])
    tools = NoVoiceTools(settings)
    turn = start_chat("做一条15秒的乐高机械组广告，突出拼装乐趣，抖音", settings=settings, library=src,
                      out_dir=tmp_path / "out", render=False, tools=tools)
    assert turn.review is not None
    rows = turn.review["slots"]
    assert ("乐高" in rows[0]["line"] or "拼装" in rows[0]["line"]) and "？" not in rows[0]["line"]  # fun, not pain
    before = [r["clip_id"] for r in rows]

    turn = resume_chat(turn.thread_id, "replace shot 9 with a drone shot", settings=settings, library=src,
                       tools=tools)
    assert turn.review is not None
    ans = turn.review["answer"]
    assert ans["applied"] is False and "no shot 9" in ans["message"] and ans["alternatives"]
    assert [r["clip_id"] for r in turn.review["slots"]] == before  # nothing redrawn

    n = len(_state(settings, turn.thread_id)["run"]["searches"])
    turn = resume_chat(turn.thread_id, "把第2个镜头换成乐高的视频片段", settings=settings, library=src, tools=tools)
    assert turn.review is not None and turn.review["answer"]["applied"] is True
    after = [r["clip_id"] for r in turn.review["slots"]]
    assert after[1] != before[1] and after[0] == before[0] and after[2:] == before[2:]
    assert src.get(after[1]).product == LEGO
    assert len(_state(settings, turn.thread_id)["run"]["searches"]) == n + 1

    share = Storyboard.model_validate(_state(settings, turn.thread_id)["storyboard"]).line_budget
    turn = resume_chat(turn.thread_id, "shorter lines", settings=settings, library=src, tools=tools)
    assert turn.review is not None and turn.review["answer"]["kind"] == "shorter_lines"
    sb = Storyboard.model_validate(_state(settings, turn.thread_id)["storyboard"])
    assert sb.line_budget == pytest.approx(round(share * 0.7, 3))

    turn = resume_chat(turn.thread_id, "用真实画面替换卡片", settings=settings, library=src, tools=tools)
    assert turn.review is not None
    ans = turn.review["answer"]
    assert ans["applied"] is False and "no full-screen cards" in ans["message"]
