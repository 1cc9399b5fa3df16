"""The LLM planner over real HTTP: langchain-openai (cutpilot.llm.chat_model) → a local OpenAI-compatible server
that answers with structured tool calls. Provider failures are retried by the brain while the step's wall budget
lasts, then that step falls back offline; near-miss answers are repaired in code; an unusable answer goes back to
the model with its error once; every call carries the step's token cap and is logged in run.llm_steps."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import PRODUCT, MemorySource, domain_records
from agent_helpers import NoVoiceTools, assert_ad_invariants
from langchain_core.messages import AIMessage, HumanMessage
from openai_server import PlannerServer
from scripted_chat import ScriptedChatModel, tool_reply

from agent.brain.llm import STEP_BUDGETS, LLMBrain, StepBudget, StoryboardDraft, normalise_storyboard
from agent.run import make_ad
from agent.runrecord import RunRecord
from cutpilot.llm import json_in_text, tool_args
from cutpilot.models import ClipFormat
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief, SlotRole

LIVE_15 = "做一条15秒的紫熨斗眼霜直播切片广告，竖屏"
ALL_FORMATS = ["live_action", "effects_animation", "livestream", "product_still", "ugc", "screen_recording"]


def _settings(tmp_path: Path, srv: PlannerServer, **kw: object) -> Settings:
    return Settings(home=tmp_path / "home", openai_base_url=srv.base_url, openai_api_key="test-key",
                    llm_model="planner-test", llm_timeout_s=kw.pop("timeout", 5.0), llm_retries=1, **kw)  # type: ignore[arg-type]


def _make(tmp_path: Path, srv: PlannerServer, text: str, brain: LLMBrain | None = None, **kw: object) -> Any:
    s = _settings(tmp_path, srv, **kw)
    return make_ad(text, settings=s, library=MemorySource(domain_records()), out_dir=tmp_path / "o", render=False,
                   tools=NoVoiceTools(s), brain=brain)


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The slot rows of a Script request (first user message holding <clip_data>)."""
    for m in body["messages"]:
        text = str(m.get("content") or "")
        if m.get("role") == "user" and "<clip_data>" in text:
            return json.loads(text.split("<clip_data>", 1)[1].split("</clip_data>", 1)[0])
    raise AssertionError("no slot rows in the request")


def _mentions(body: dict[str, Any], needle: str) -> bool:
    return any(needle in str(m.get("content") or "") for m in body["messages"])


def test_llm_round_trip_over_http(tmp_path: Path) -> None:
    with PlannerServer() as srv:
        s = _settings(tmp_path, srv)
        assert s.llm_configured
        r = make_ad("做一条30秒的侧睡纹广告", settings=s, library=MemorySource(domain_records()),
                    out_dir=tmp_path / "o", render=False, tools=NoVoiceTools(s))  # planner=None → configured LLM
    assert r.run.brain == "llm" and r.run.model == "planner-test" and not r.run.fallbacks
    tools = [[t["function"]["name"] for t in b.get("tools", [])] for b in srv.requests]
    assert tools[0] == ["BriefDraft"] and tools[1] == ["StoryboardDraft"]
    assert tools[2] == tools[3] == ["search_clips", "choose_clips"] and tools[4] == ["Script"]
    assert all(b["model"] == "planner-test" for b in srv.requests)
    # the search_clips tool result went back over the wire as a tool message
    assert any(m.get("role") == "tool" and "<clip_data>" in m["content"] for m in srv.requests[3]["messages"])
    # what the model saw of clips: ids and text, never times or paths
    select_prompt = srv.requests[2]["messages"][1]["content"]
    assert "clip_id" in select_prompt and "/nonexistent/source.mp4" not in select_prompt
    assert '"start"' not in select_prompt
    assert r.storyboard.music_mood == "energetic" and r.storyboard.brief.product == PRODUCT
    assert r.storyboard.slots[0].role.value == "hook"
    assert_ad_invariants(r, 30)
    # one record per call, in order, with what the server reported
    assert [x["step"] for x in r.run.llm_steps] == ["understand", "storyboard", "select", "select", "script"]
    assert r.run.llm_calls == 5 and all(x["ok"] and x["tokens_in"] > 1 and x["tokens_out"] >= 1
                                        for x in r.run.llm_steps)


def test_every_call_carries_the_step_token_cap_and_timeout(tmp_path: Path) -> None:
    with PlannerServer() as srv:
        r = _make(tmp_path, srv, "做一条30秒的侧睡纹广告")
    steps = [x["step"] for x in r.run.llm_steps]
    for body, step in zip(srv.requests, steps, strict=True):  # an OpenAI-compatible server reads max_tokens
        assert body["max_tokens"] == STEP_BUDGETS[step].max_tokens and "max_completion_tokens" not in body, step
    for rec in r.run.llm_steps:  # the per-request timeout: the settings' one, cut to what is left of the step
        assert 0 < rec["timeout_s"] <= 5.0 and rec["max_tokens"] == STEP_BUDGETS[rec["step"]].max_tokens


def test_token_cap_field_follows_the_endpoint() -> None:
    from langchain_openai import ChatOpenAI

    from cutpilot.llm import token_cap

    hosted = ChatOpenAI(model="gpt-4.1-mini", api_key="k")
    local = ChatOpenAI(model="m", api_key="k", base_url="http://127.0.0.1:1/v1")
    msgs = [HumanMessage("x")]
    p_hosted = hosted._get_request_payload(msgs, **token_cap(hosted, 9))
    p_local = local._get_request_payload(msgs, **token_cap(local, 9))
    assert p_hosted["max_completion_tokens"] == 9 and "max_tokens" not in p_hosted  # OpenAI rejects both at once
    assert p_local["extra_body"] == {"max_tokens": 9} and "max_completion_tokens" not in p_local


def test_scripted_model_gets_token_cap_and_forced_tool() -> None:
    model = ScriptedChatModel(replies=[tool_reply("BriefDraft", {"duration_s": 20, "lang": "zh"})])
    run = RunRecord(thread_id="t")
    brief = LLMBrain(model).understand("做一条20秒的侧睡纹广告", [PRODUCT], run)
    assert brief.duration_s == 20
    assert model.call_kwargs[0]["max_tokens"] == STEP_BUDGETS["understand"].max_tokens
    assert 0 < model.call_kwargs[0]["timeout"] <= STEP_BUDGETS["understand"].wall_s
    assert model.tool_choices == ["BriefDraft"]


@pytest.mark.parametrize(("mode", "requests_for_step"), [("500", 2), ("timeout", 2), ("badjson", 2)])
def test_provider_error_retried_then_offline_fallback(tmp_path: Path, mode: str, requests_for_step: int) -> None:
    """500 / timeout: the brain retries (llm_retries=1; the client itself does not); bad JSON arguments: the error
    goes back to the model once. Then this step falls back and the later steps use the LLM again."""
    with PlannerServer() as srv:
        srv.stall_s = 1.5
        srv.fail = [mode] * requests_for_step  # the whole brief step fails, every retry included
        r = _make(tmp_path, srv, "做一条30秒的侧睡纹广告", timeout=0.5)
        n = len(srv.requests)
    assert [f.step for f in r.run.fallbacks] == ["understand"]
    assert n == requests_for_step + 4
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["fallbacks"][0]["step"] == "understand" and run["fallbacks"][0]["used"] == "offline"
    assert any("offline planner" in w for w in run["warnings"])
    assert [x["ok"] for x in run["llm_steps"] if x["step"] == "understand"] == [False, False]
    assert r.storyboard.brief.duration_s == 30  # the offline parse of the same request
    assert_ad_invariants(r, 30)


def test_step_wall_budget_cuts_a_stalled_step_and_is_recorded(tmp_path: Path) -> None:
    with PlannerServer() as srv:
        srv.stall_s = 4.0
        srv.fail = ["timeout"] * 3
        brain = LLMBrain.from_settings(_settings(tmp_path, srv, timeout=30.0))
        brain.budgets["understand"] = StepBudget(max_tokens=64, wall_s=1.0)
        t0 = time.perf_counter()
        r = _make(tmp_path, srv, "做一条30秒的侧睡纹广告", brain=brain, timeout=30.0)
        assert srv.step_requests("BriefDraft")[0]["max_tokens"] == 64
    understand = [x for x in r.run.llm_steps if x["step"] == "understand"]
    assert len(understand) == 1 and not understand[0]["ok"] and understand[0]["timeout_s"] <= 1.0
    assert understand[0]["wall_s"] <= 1.5 and "Timeout" in understand[0]["error"]
    assert sum(x["wall_s"] for x in understand) <= 1.5 and time.perf_counter() - t0 < 25
    assert [f.step for f in r.run.fallbacks] == ["understand"]
    assert "wall budget" in r.run.fallbacks[0].error
    assert_ad_invariants(r, 30)


def test_explicit_facts_survive_the_models_brief(tmp_path: Path) -> None:
    """The model says 30 s and every format for a 15 s livestream-only request: the graph's enforced brief wins
    (and records the disagreement) and the LLM storyboard is planned on it: 15 s, livestream clips only."""
    with PlannerServer(brief={"duration_s": 30, "formats": ALL_FORMATS, "aspect": "16:9"}) as srv:
        r = _make(tmp_path, srv, LIVE_15)
        sb_prompt = srv.step_requests("StoryboardDraft")[0]["messages"][1]["content"]
        brief_prompt = srv.step_requests("BriefDraft")[0]["messages"][1]["content"]
    assert not r.run.fallbacks
    assert '"duration_s": 15' in brief_prompt and '"livestream"' in brief_prompt  # the facts were shown
    b = r.storyboard.brief
    assert b.duration_s == 15 and b.formats == [ClipFormat.livestream] and b.aspect == "9:16"
    assert {d["field"] for d in r.run.brief_disagreements} >= {"duration_s", "formats", "aspect"}
    assert '"duration_s":15' in sb_prompt.replace(" ", "") and "The ad is 15 s long" in sb_prompt
    assert abs(r.storyboard.total_s - 15) <= 0.01 and r.storyboard.slots[0].target_s <= 3
    assert all(s.formats == [ClipFormat.livestream] for s in r.storyboard.slots)
    src = MemorySource(domain_records())
    chosen = [s.chosen.clip_id for s in r.storyboard.slots if s.chosen]
    assert chosen and all(ClipFormat.livestream in src.get(c).format for c in chosen)
    assert_ad_invariants(r, 15)


def test_zero_second_slot_is_repaired_not_fatal(tmp_path: Path) -> None:
    bad = {"music_mood": "calm", "slots": [
        {"role": "hook", "seconds": 3, "query": "侧睡纹"}, {"role": "pain_point", "seconds": 0, "query": "侧睡"},
        {"role": "product_intro", "seconds": 6, "query": "紫熨斗眼霜"}, {"role": "offer_cta", "seconds": 5}]}
    with PlannerServer() as srv:
        srv.script["StoryboardDraft"] = [PlannerServer.call("StoryboardDraft", bad)]
        r = _make(tmp_path, srv, "做一条20秒的侧睡纹广告")
        assert len(srv.step_requests("StoryboardDraft")) == 1  # repaired in code: no correction round needed
    assert not r.run.fallbacks and r.storyboard.music_mood == "calm"
    assert [s.role.value for s in r.storyboard.slots] == ["hook", "pain_point", "product_intro", "offer_cta"]
    assert abs(r.storyboard.total_s - 20) <= 0.01 and all(s.target_s >= 1.5 for s in r.storyboard.slots)
    assert any("slot 1 (pain_point) has no usable length" in w for w in r.run.warnings)
    assert_ad_invariants(r, 20)


def test_normalise_storyboard_repairs_near_misses() -> None:
    brief = Brief(text="x", duration_s=15, formats=[ClipFormat.livestream], product=PRODUCT)
    d = StoryboardDraft.model_validate({"music_mood": "LOUD", "slots": [
        {"role": "product_intro", "seconds": "6s"}, {"role": "cta", "seconds": 4},
        {"role": "hook", "seconds": 10}, {"role": "feature_demo", "seconds": -2},
        {"role": "feature_demo", "seconds": 3}, {"role": "dance", "seconds": 2},
        {"role": "offer_cta", "seconds": None}]})
    run = RunRecord(thread_id="t")
    sb = normalise_storyboard(brief, d, run)
    roles = [s.role for s in sb.slots]
    assert roles == [SlotRole.hook, SlotRole.product_intro, SlotRole.feature_demo, SlotRole.offer_cta]
    assert [s.index for s in sb.slots] == [0, 1, 2, 3]
    assert sb.slots[0].target_s == 3.0 and abs(sb.total_s - 15) <= 0.01
    assert all(s.formats == [ClipFormat.livestream] and s.product == PRODUCT and s.query for s in sb.slots)
    assert sb.music_mood == "upbeat" and sb.brief is brief
    assert any("unknown role 'dance'" in w for w in run.warnings)


def test_normalise_storyboard_drops_slots_a_short_ad_cannot_show() -> None:
    brief = Brief(text="x", duration_s=6)
    d = StoryboardDraft.model_validate({"slots": [{"role": r, "seconds": 2} for r in (
        "hook", "pain_point", "brand", "social_proof", "product_intro", "feature_demo", "offer_cta")]})
    sb = normalise_storyboard(brief, d, RunRecord(thread_id="t"))
    assert sb.slots[0].role == SlotRole.hook and sb.slots[-1].role == SlotRole.offer_cta
    assert any(s.role == SlotRole.product_intro for s in sb.slots)
    assert all(s.target_s >= 1.5 - 1e-9 for s in sb.slots[1:]) and abs(sb.total_s - 6) <= 0.01


def test_json_in_content_is_accepted(tmp_path: Path) -> None:
    brief = {"product": PRODUCT, "angle": "侧睡纹", "duration_s": 20, "aspect": "9:16", "lang": "zh"}
    sb = {"music_mood": "fun", "slots": [{"role": "hook", "seconds": 3}, {"role": "product_intro", "seconds": 9},
                                         {"role": "offer_cta", "seconds": 8}]}
    with PlannerServer() as srv:
        srv.script["BriefDraft"] = [PlannerServer.text("Here is the brief:\n```json\n" + json.dumps(brief) + "\n```")]
        srv.script["StoryboardDraft"] = [PlannerServer.text(json.dumps(sb))]
        r = _make(tmp_path, srv, "做一条20秒的侧睡纹广告")
        assert len(srv.step_requests("BriefDraft")) == 1 and len(srv.step_requests("StoryboardDraft")) == 1
    assert not r.run.fallbacks and r.storyboard.music_mood == "fun"
    assert r.storyboard.slots[0].role.value == "hook"
    by_step = {x["step"]: x for x in r.run.llm_steps}
    assert by_step["understand"].get("answer_in") == "content" and by_step["storyboard"].get("answer_in") == "content"
    assert_ad_invariants(r, 20)


def test_select_answer_in_content_and_no_tool_call_corrected_once(tmp_path: Path) -> None:
    def choose_in_text(body: dict[str, Any]) -> dict[str, Any]:
        text = body["messages"][1]["content"]
        rows = json.loads(text.split("<clip_data>", 1)[1].split("</clip_data>", 1)[0])
        picks, used = [], set()
        for row in rows:
            cid = next((c["clip_id"] for c in row["candidates"] if c["clip_id"] not in used), None)
            used.add(cid)
            picks.append({"slot": row["slot"], "clip_id": cid})
        return PlannerServer.text("```json\n" + json.dumps({"choices": picks}) + "\n```")

    with PlannerServer() as srv:
        srv.script["choose_clips"] = [PlannerServer.text("I think these clips look great!"), choose_in_text]
        r = _make(tmp_path, srv, "做一条30秒的侧睡纹广告")
        sel = srv.step_requests("choose_clips")
    assert not r.run.fallbacks and len(sel) == 2
    assert sel[0].get("tool_choice") in (None, "auto")  # round one: the model may search first
    assert sel[1]["tool_choice"]["function"]["name"] == "choose_clips"  # the correction forces the final answer
    assert _mentions(sel[1], "called no tool")
    recs = [x for x in r.run.llm_steps if x["step"] == "select"]
    assert [x["ok"] for x in recs] == [False, True] and recs[1].get("answer_in") == "content"
    assert sum(1 for s in r.storyboard.slots if s.chosen) >= 3
    assert_ad_invariants(r, 30)


def test_select_without_a_tool_call_twice_falls_back(tmp_path: Path) -> None:
    with PlannerServer() as srv:
        srv.script["choose_clips"] = [PlannerServer.text("hmm"), PlannerServer.text("still thinking")]
        r = _make(tmp_path, srv, "做一条30秒的侧睡纹广告")
        assert len(srv.step_requests("choose_clips")) == 2
    assert [f.step for f in r.run.fallbacks] == ["fetch"]
    assert_ad_invariants(r, 30)


def test_validation_error_fed_back_once_then_fallback(tmp_path: Path) -> None:
    junk = PlannerServer.call("StoryboardDraft", {"slots": [{"role": "dance", "seconds": 4}]})
    with PlannerServer() as srv:
        srv.script["StoryboardDraft"] = [junk, dict(junk)]
        r = _make(tmp_path, srv, "做一条20秒的侧睡纹广告")
        sb_reqs = srv.step_requests("StoryboardDraft")
    assert len(sb_reqs) == 2  # asked once more, with the error, then gave up
    assert _mentions(sb_reqs[1], "cannot be used") and _mentions(sb_reqs[1], "no slot has a known role")
    assert not _mentions(sb_reqs[0], "cannot be used")
    assert [f.step for f in r.run.fallbacks] == ["storyboard"]
    assert [x["ok"] for x in r.run.llm_steps if x["step"] == "storyboard"] == [False, False]
    assert_ad_invariants(r, 20)


def test_validation_error_fed_back_once_then_corrected(tmp_path: Path) -> None:
    with PlannerServer() as srv:
        srv.script["StoryboardDraft"] = [PlannerServer.text("I cannot decide."),
                                         PlannerServer.call("StoryboardDraft", {"slots": [
                                             {"role": "hook", "seconds": 2}, {"role": "product_intro", "seconds": 10},
                                             {"role": "offer_cta", "seconds": 8}]})]
        r = _make(tmp_path, srv, "做一条20秒的侧睡纹广告")
    assert not r.run.fallbacks
    assert [s.role.value for s in r.storyboard.slots] == ["hook", "product_intro", "offer_cta"]
    assert_ad_invariants(r, 20)


def _lines(body: dict[str, Any], make: Any) -> dict[str, Any]:
    return PlannerServer.call("Script", {"lines": [{"slot": r["slot"], "line": make(r)} for r in _rows(body)]})


def test_english_brief_lines_asked_again_in_english(tmp_path: Path) -> None:
    zh = "侧睡纹，一觉淡褪，全新升级的第三代紫熨斗眼霜"
    with PlannerServer(brief={"lang": "en", "angle": "side-sleep wrinkles", "duration_s": 15}) as srv:
        srv.script["Script"] = [lambda b: _lines(b, lambda r: zh),
                                lambda b: _lines(b, lambda r: "Side-sleep lines fade overnight, shop now")]
        r = _make(tmp_path, srv, "make a 15s side-sleep wrinkle ad")
        reqs = srv.step_requests("Script")
    assert len(reqs) == 2 and _mentions(reqs[1], "write it in English")
    assert "clip_transcript" not in json.dumps(_rows(reqs[0]))  # zh transcripts are not offered for an en ad
    lines = [s.line for s in r.storyboard.slots]
    assert all(line and not any("\u4e00" <= ch <= "\u9fff" for ch in line) for line in lines)
    assert any(line.startswith("Side-sleep lines") for line in lines)
    assert not any("not a usable en line" in w for w in r.run.warnings)
    assert_ad_invariants(r, 15)


def test_english_brief_lines_still_chinese_fall_back_to_offline_lines(tmp_path: Path) -> None:
    zh = "侧睡纹，一觉淡褪"
    with PlannerServer(brief={"lang": "en", "angle": "side-sleep wrinkles", "duration_s": 15}) as srv:
        srv.script["Script"] = [lambda b: _lines(b, lambda r: zh), lambda b: _lines(b, lambda r: zh)]
        r = _make(tmp_path, srv, "make a 15s side-sleep wrinkle ad")
        assert len(srv.step_requests("Script")) == 2  # one correction, no more
    assert not r.run.fallbacks
    assert any("is unusable (the line is in Chinese" in w and "offline line instead" in w for w in r.run.warnings)
    assert all(not any("\u4e00" <= ch <= "\u9fff" for ch in s.line) for s in r.storyboard.slots)
    assert_ad_invariants(r, 15)


def test_long_lines_are_trimmed_on_word_boundaries(tmp_path: Path) -> None:
    long_en = ("Side sleeping presses your face like a dumbbell all night long, so the purple iron eye cream "
               "smooths every line while you rest and wake up fresher")
    with PlannerServer(brief={"lang": "en", "angle": "side-sleep wrinkles", "duration_s": 15}) as srv:
        srv.script["Script"] = [lambda b: _lines(b, lambda r: long_en)] * 2
        r = _make(tmp_path, srv, "make a 15s side-sleep wrinkle ad")
    words = set(long_en.split())
    for s in r.storyboard.slots:
        if long_en.startswith(s.line.rstrip(",.")):
            assert all(w in words for w in s.line.rstrip(",.").split()), s.line  # whole words only
    assert_ad_invariants(r, 15)


def test_tool_args_reads_calls_fences_and_wrappers() -> None:
    assert tool_args(tool_reply("Script", {"lines": []}), "Script")[0] == {"lines": []}
    fenced = AIMessage(content='Sure!\n```json\n{"name": "Script", "arguments": {"lines": []}}\n```')
    assert tool_args(fenced, "Script")[:1] == ({"lines": []},) and tool_args(fenced, "Script")[2] == "content"
    assert tool_args(AIMessage(content='functions.Script:\n{"lines": [1]} trailing'), "Script")[0] == {"lines": [1]}
    assert tool_args(AIMessage(content='{"Script": {"lines": []}}'), "Script")[0] == {"lines": []}
    none, err, _ = tool_args(AIMessage(content="no idea"), "Script")
    assert none is None and err and "no Script tool call" in err
    assert json_in_text("[1, 2]") == [1, 2] and json_in_text("") is None


def test_answer_cut_at_the_token_cap_keeps_its_complete_part(tmp_path: Path) -> None:
    cut = ('{"product": null, "angle": "侧睡纹", "duration_s": 20, "lang": "zh", '
           '"formats": ["live_action", "eff')  # what a 0.5B model sent when it listed every format into the cap
    with PlannerServer() as srv:
        srv.script["BriefDraft"] = [{"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_b", "type": "function", "function": {"name": "BriefDraft", "arguments": cut}}]}]
        r = _make(tmp_path, srv, "做一条20秒的侧睡纹广告")
        assert len(srv.step_requests("BriefDraft")) == 1  # no correction round needed
    assert not r.run.fallbacks and r.storyboard.brief.angle == "侧睡纹"
    assert r.run.llm_steps[0].get("answer_in") == "truncated"
    assert any("cut off at" in w for w in r.run.warnings)
    assert r.storyboard.brief.formats == []  # the request names no format: the model's guess is not a filter
    assert any("does not name; dropped" in w for w in r.run.warnings)
    assert_ad_invariants(r, 20)


def test_json_readers_prefer_the_whole_object() -> None:
    from cutpilot.llm import close_truncated

    cut = '{"slots": [{"role": "hook", "seconds": 3}, {"role": "pro'
    assert json_in_text(cut) is None  # never the inner fragment
    assert json_in_text(cut, truncated=True) == {"slots": [{"role": "hook", "seconds": 3}]}
    assert close_truncated('{"a": 1, "b": ["x", "y') == {"a": 1, "b": ["x"]}
    assert json_in_text('Sure {not json} then {"a": [1, {"b": 2}]} ok') == {"a": [1, {"b": 2}]}


def test_lines_that_copy_the_slot_intent_are_asked_again_then_replaced(tmp_path: Path) -> None:
    """What the live 0.5B model did on the English brief: it wrote each slot's intent as its line."""
    with PlannerServer(brief={"lang": "en", "angle": "侧睡纹", "duration_s": 15}) as srv:
        srv.script["Script"] = [lambda b: _lines(b, lambda r: r["intent"][:30])] * 2
        r = _make(tmp_path, srv, "make a 15s side-sleep wrinkle ad")
        reqs = srv.step_requests("Script")
    assert len(reqs) == 2 and _mentions(reqs[1], "repeats the slot's intent")
    intents = {s.intent[:30] for s in r.storyboard.slots}
    assert not any(s.line in intents for s in r.storyboard.slots)
    assert any("repeats the slot's intent" in w and "the offline line instead" in w for w in r.run.warnings)
    assert_ad_invariants(r, 15)


def test_an_english_line_is_grounded_by_the_angle_named_in_chinese() -> None:
    from agent.brain.llm import _grounding, _line_problem

    sb = normalise_storyboard(Brief(text="x", duration_s=15, lang="en", angle="侧睡纹", product=PRODUCT),
                              StoryboardDraft.model_validate({"slots": [{"role": "hook", "seconds": 3}]}),
                              RunRecord(thread_id="t"))
    terms = _grounding(sb, None, "en")
    assert _line_problem("Side-sleep wrinkles, gone by morning", 4, "en", terms) is None
    assert "names neither" in str(_line_problem("A brand you can trust", 4, "en", terms))
