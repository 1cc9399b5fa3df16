"""The MediaTools protocol over the real tools (small PIL / ffmpeg inputs, offline paths only), the tool step's
error handling (a failing tool is a message to the model, the run goes on), and the LLM planner calling the
generated LangChain tools through the graph's ToolNode, against a scripted model and over HTTP."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import PRODUCT, MemorySource, domain_records
from agent_helpers import NoVoiceTools, assert_ad_invariants
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from openai_server import PlannerServer
from PIL import Image, ImageDraw
from scripted_chat import ScriptedChatModel, tool_reply
from test_agent_graph import _scripted_replies

from agent.brain.llm import LLMBrain, StepBudget
from agent.graph import ToolStepState, tool_error_message
from agent.mediatools import (
    Card,
    ClipHit,
    Cutout,
    GeneratedClip,
    MediaTools,
    ModelIn,
    Motion,
    MusicBed,
    SpeechVerdict,
    Still,
    ToolContext,
    TryOnRanking,
    TryOnResult,
    VoiceTake,
)
from agent.run import make_ad
from agent.toolbox import Toolbox
from cutpilot.errors import InputError, ProviderError, ToolError
from cutpilot.settings import Settings
from cutpilot.storyboard import ClipChoice
from cutpilot.timeline import BrandKit, CardItem, KenBurns, OutputSpec, Timeline
from index.embed import HashEmbedder
from index.library import Library
from tests.http_servers import Reply, TestServer
from tools.lc import lc_tools


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny product shot: a red bottle on white."""
    p = tmp_path_factory.mktemp("img") / "bottle.png"
    im = Image.new("RGB", (64, 96), "white")
    d = ImageDraw.Draw(im)
    d.rectangle((22, 30, 42, 86), fill=(200, 30, 40))
    d.rectangle((28, 18, 36, 30), fill=(40, 40, 40))
    im.save(p)
    return p


def test_every_protocol_method_on_real_inputs(tmp_path: Path, photo: Path) -> None:
    s = Settings(home=tmp_path / "home")
    tools: MediaTools = Toolbox(s)  # mypy: Toolbox implements the protocol
    out = tmp_path / "assets"

    cut = tools.cutout(photo, out_dir=out)
    assert isinstance(cut, Cutout) and cut.size == (64, 96) and cut.provenance.tool == "remove_background"
    with Image.open(cut.path) as im:
        assert im.mode == "RGBA" and im.getpixel((2, 2))[3] < 64 and im.getpixel((32, 60))[3] > 192

    still = tools.scene(photo, "sunset beach", size=(48, 80), out_dir=out)
    assert isinstance(still, Still) and still.size == (48, 80) and still.path.is_file()
    assert still.provenance.provider == "offline:gradient" and still.provenance.params["cutout"] == str(cut.path)

    mo = tools.image_to_video(photo, 0.5, size=(32, 48), fps=10, motion=KenBurns(zoom_to=1.2), fit="blur",
                              prompt="", out_dir=out)
    assert isinstance(mo, Motion) and mo.size == (32, 48) and mo.seconds == 0.5 and mo.provider == "offline:ken_burns"
    frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                             "stream=nb_read_frames", "-of", "csv=p=0", str(mo.path)],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert frames == "5"

    with pytest.raises(ProviderError, match="CUTPILOT_TRYON_URL"):
        tools.try_on(photo, photo, cloth_type="upper", out_dir=out)
    buf = tmp_path / "dressed.png"
    Image.new("RGB", (40, 60), (10, 120, 200)).save(buf)
    with TestServer({"POST /tryon": Reply(200, buf.read_bytes(), content_type="image/png")}) as srv:
        worn = Toolbox(Settings(home=tmp_path / "home", tryon_url=srv.url)).try_on(
            photo, photo, cloth_type="overall", out_dir=out)
    assert isinstance(worn, TryOnResult) and worn.size == (40, 60) and worn.cloth_type == "overall"
    assert worn.provider.startswith("http:")

    plan = tools.plan_try_on({"top_category": "大衣", "top_length": "长款"}, [
        ModelIn(id="a", wearing={"top_category": "t_shirt", "top_length": "short"}),
        ModelIn(id="b", image=str(photo), wearing={"top_category": "trench", "top_length": "long"})])
    assert isinstance(plan, TryOnRanking) and plan.models[0].id == "b" and plan.models[0].image == photo
    assert plan.style == "autumn_winter" and plan.scenes

    take = tools.tts("Hello there, friends.", lang="en", out_dir=out)
    assert isinstance(take, VoiceTake) and take.path.is_file() and take.duration_s > 0.3 and take.words
    assert take.lang == "en" and take.provider and take.provenance.kind == "tts"
    pace = tools.voice_pace("en")
    assert pace is None or pace > 0
    heard = tools.check_speech(take.path, "Hello there, friends.", lang="en")
    assert isinstance(heard, SpeechVerdict) and 0.0 <= heard.error <= 1.0
    again = tools.hear_clip(ClipChoice(clip_id="x", source=str(take.path), start=0.0, end=take.duration_s,
                                       transcript="Hello there, friends."), "en")
    assert isinstance(again, SpeechVerdict) and again.error == pytest.approx(heard.error, abs=0.35)
    assert Toolbox(Settings(home=tmp_path / "home", voice_check=False)).check_speech(take.path, "x", lang="en") is None

    bed = tools.music(1.0, "calm", out_dir=out)
    assert isinstance(bed, MusicBed) and bed.duration_s == 1.0 and bed.source == "generated" and bed.mood == "calm"

    card = tools.card("限时优惠", brand=BrandKit(), size=(60, 100), subtitle="买一送一", style="cta", out_dir=out)
    assert isinstance(card, Card) and card.path.is_file() and card.size == (60, 100)
    with Image.open(card.path) as im:
        assert im.size == (60, 100)

    lib = Library.open(s, embedder=HashEmbedder(64))
    try:
        clip = tools.register_clip(mo.path, library=lib, description="red bottle zoom", content_type="产品介绍",
                                   product="bottle")
        assert isinstance(clip, GeneratedClip) and clip.content_type == "product_intro"
        assert clip.provenance.tool == "image_to_video" and lib.get(clip.clip_id).generated
    finally:
        lib.close()

    tl = Timeline(output=OutputSpec.preset("9:16", scale=0.1),
                  video=[CardItem(id="c", text="Hi", start_ms=0, duration_ms=500)])
    res = tools.render(tl, tmp_path / "ad.mp4", quality="draft", cache_dir=tmp_path / "rc")
    assert res.path.is_file() and res.duration_s == pytest.approx(0.5, abs=0.1)


def test_tool_errors_are_one_line_messages(tmp_path: Path, photo: Path) -> None:
    """A typed failure comes back as ToolError; in the ToolNode both it and bad arguments are one line."""
    from langgraph.graph import END, START, StateGraph
    from langgraph.prebuilt import ToolNode

    ctx = ToolContext(tools=Toolbox(Settings(home=tmp_path)), out_dir=tmp_path,
                      source=MemorySource(domain_records()))
    belt = lc_tools(ctx, names=["image_to_video", "search_library"])
    assert [t.name for t in belt] == ["image_to_video", "search_library"]
    with pytest.raises(ToolError, match=r"^image_to_video: InputError: .*not an image"):
        belt[0].invoke({"image": str(tmp_path / "nope.txt")})
    g: StateGraph[Any] = StateGraph(ToolStepState)
    g.add_node("media_tools", ToolNode(belt, handle_tool_errors=tool_error_message))
    g.add_edge(START, "media_tools")
    g.add_edge("media_tools", END)
    ai = AIMessage(content="", tool_calls=[
        {"name": "image_to_video", "args": {"image": "nope.txt"}, "id": "a", "type": "tool_call"},
        {"name": "image_to_video", "args": {"seconds": "soon"}, "id": "b", "type": "tool_call"},
        {"name": "search_library", "args": {"query": "眼霜 侧睡"}, "id": "c", "type": "tool_call"}])
    msgs = g.compile().invoke({"messages": [ai], "rounds": 0})["messages"]
    bad, wrong, ok = msgs[1:]
    assert bad.status == "error" and bad.content.startswith("ToolError: image_to_video: InputError")
    assert wrong.status == "error" and wrong.content.startswith("ToolError: ") and "\n" not in wrong.content
    hits = json.loads(ok.content)
    assert ok.status == "success" and hits and all(isinstance(h, ClipHit) for h in ok.artifact)
    assert {"clip_id", "transcript", "still"} <= set(hits[0]) and "source" not in hits[0]
    with pytest.raises(ToolError, match="not available here: register_generated_clip"):
        lc_tools(ctx, names=["register_generated_clip"])  # no writable library in this context
    with pytest.raises(InputError):
        Toolbox(Settings(home=tmp_path)).image_to_video(photo, 99, size=(32, 32), fps=10, motion=None,
                                                         fit="crop", prompt="", out_dir=tmp_path)


def _ran(messages: list[BaseMessage], name: str) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage) and m.name == name]


def test_llm_planner_calls_media_tools_through_the_tool_node(tmp_path: Path) -> None:
    """The hook gets no clip (the model named an unknown one); in the gap step the model calls image_to_video on a
    missing file (the error comes back as a message) and title_card (runs for real), then answers with the card."""
    settings = Settings(home=tmp_path / "home", voice_check=False)
    replies: list[Any] = _scripted_replies([PRODUCT])
    replies[3] = lambda m: tool_reply("choose_clips", {"choices": [{"slot": 0, "clip_id": "not-a-clip"}]})

    def answer(messages: list[BaseMessage]) -> AIMessage:
        card = next(m for m in _ran(messages, "title_card") if m.status == "success")
        return tool_reply("use_for_gaps", {"slot_0": json.loads(str(card.content))["path"]}, "call_g2")

    replies += [
        AIMessage(content="", tool_calls=[
            {"name": "image_to_video", "args": {"image": "/nonexistent/p.png", "seconds": 3}, "id": "g1",
             "type": "tool_call"},
            {"name": "title_card", "args": {"text": "侧睡纹？一觉淡褪", "width": 90, "height": 160}, "id": "g2",
             "type": "tool_call"}]),
        answer,
    ]
    model = ScriptedChatModel(replies=replies)
    r = make_ad("做一条20秒的侧睡纹广告", settings=settings, library=MemorySource(domain_records()),
                out_dir=tmp_path / "o", render=False, brain=LLMBrain(model, model_name="scripted"),
                tools=NoVoiceTools(settings))
    assert not model.replies and not r.run.fallbacks
    assert {"search_library", "image_to_video", "title_card", "use_for_gaps"} <= set(model.bound_tools[-1])
    seen = model.seen[-1]
    err = _ran(seen, "image_to_video")[0]
    assert err.status == "error" and str(err.content).startswith("ToolError: image_to_video: InputError")
    assert any("gaps: tool image_to_video failed" in w for w in r.run.warnings)
    hook = r.storyboard.slots[0]
    assert hook.asset is not None and hook.asset.tool == "title_card" and Path(hook.asset.path).is_file()
    assert hook.asset.params["text"] == "侧睡纹？一觉淡褪" and r.timeline.video[0].kind == "card"
    gaps = [x for x in r.run.llm_steps if x["step"] == "gaps"]
    assert [x["tool_calls"] for x in gaps] == [["image_to_video", "title_card"], ["use_for_gaps"]]
    assert any(g.get("tool") == "title_card" for g in r.run.generated)
    assert_ad_invariants(r, 20)


def test_gap_step_budget_spent_keeps_the_cards(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", voice_check=False)
    replies: list[Any] = _scripted_replies([PRODUCT])
    replies[3] = lambda m: tool_reply("choose_clips", {"choices": [{"slot": 0, "clip_id": "not-a-clip"}]})
    model = ScriptedChatModel(replies=replies)
    brain = LLMBrain(model, model_name="scripted", budgets={"gaps": StepBudget(max_tokens=64, wall_s=0.0)})
    r = make_ad("做一条20秒的侧睡纹广告", settings=settings, library=MemorySource(domain_records()),
                out_dir=tmp_path / "o", render=False, brain=brain, tools=NoVoiceTools(settings))
    assert [f.step for f in r.run.fallbacks] == ["gaps"] and "wall budget" in r.run.fallbacks[0].error
    assert r.storyboard.slots[0].asset is not None and r.storyboard.slots[0].asset.tool == "renderer.card"
    assert_ad_invariants(r, 20)


def test_llm_gap_step_over_http_searches_and_fills_a_gap(tmp_path: Path) -> None:
    """Over the wire: the select step named no usable clip, so every shot is a card (no product photo for the gap
    policy); in the gap step the model searches the library and puts a clip it found into the hook."""

    def pick(body: dict[str, Any]) -> dict[str, Any]:
        hits = json.loads(next(m["content"] for m in body["messages"] if m.get("role") == "tool"))
        return PlannerServer.call("use_for_gaps", {"slot_0": hits[0]["clip_id"], "slot_1": "/etc/passwd"})

    with PlannerServer() as srv:
        srv.script["choose_clips"] = [PlannerServer.call("choose_clips", {"choices": [
            {"slot": 0, "clip_id": "made-up"}]})]
        srv.script["use_for_gaps"] = [PlannerServer.call("search_library", {"query": "侧睡 细纹 压力"}), pick]
        s = Settings(home=tmp_path / "home", openai_base_url=srv.base_url, openai_api_key="k", llm_model="m",
                     llm_timeout_s=5.0, llm_retries=1, voice_check=False)
        r = make_ad("做一条20秒的侧睡纹广告", settings=s, library=MemorySource(domain_records()),
                    out_dir=tmp_path / "o", render=False, tools=NoVoiceTools(s))
    gap_reqs = srv.step_requests("use_for_gaps")
    assert len(gap_reqs) == 2 and not r.run.fallbacks
    tools = {t["function"]["name"]: t["function"] for t in gap_reqs[0]["tools"]}
    assert set(tools) == {"search_library", "image_to_video", "title_card", "use_for_gaps"}  # no writable library
    args = tools["search_library"]["parameters"]["properties"]
    assert "query" in args and not {"settings", "out_dir", "ctx"} & set(args)
    hits = json.loads(next(m["content"] for m in gap_reqs[1]["messages"] if m.get("role") == "tool"))
    assert hits and "/nonexistent" not in json.dumps(hits)  # ids and text, never source paths
    hook = r.storyboard.slots[0]
    assert hook.chosen is not None and hook.chosen.clip_id == hits[0]["clip_id"]
    assert r.timeline.video[0].kind == "clip"
    assert any("'/etc/passwd' is no clip found or made" in w for w in r.run.warnings)  # invented: not used
    assert r.storyboard.slots[1].chosen is None
