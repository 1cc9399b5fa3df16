"""The planner's one front door: a graph compiled per test with its collaborators as LangGraph runtime context; a
thread started in one front door and answered by a fresh one; every per-shot review action applied and refused
(bad slot, unknown clip, wrong product, used footage, claims, budget); the CLI end to end through it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import PRODUCT, MemorySource, domain_records
from agent_helpers import NoVoiceTools
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.runtime import Runtime

import agent.graph as G
from agent.graph import Deps, build_graph
from agent.run import FrontDoor, resume_chat, start_chat, thread_brain
from agent.runrecord import RunRecord
from cutpilot.errors import CutpilotError, NotFoundError
from cutpilot.models import ClipFormat, ClipRecord, clip_id_for
from cutpilot.settings import Settings
from cutpilot.storyboard import Storyboard

BRIEF = "做一条30秒的侧睡纹广告"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", text_embedder="hash")


class FakeRender(NoVoiceTools):
    """No TTS, and a render that writes a stand-in file (the CLI's chat renders)."""

    def render(self, timeline, out, *, quality, cache_dir):
        self._count("render")
        out.write_bytes(b"not really a video")
        return {"path": str(out), "duration_s": timeline.duration_ms / 1000}


def _state(out_dir: Path, mode: str = "batch") -> dict[str, Any]:
    return {"request": BRIEF, "mode": mode, "out_dir": str(out_dir.resolve()), "render": False, "quality": "draft",
            "run": RunRecord(thread_id="t", brain="offline").model_dump(mode="json"), "approved": False,
            "exclude": {}, "voice": {}, "music": None}


def test_graph_compiled_per_test_takes_its_collaborators_as_runtime_context(settings: Settings,
                                                                            tmp_path: Path) -> None:
    deps = Deps(settings=settings, source=MemorySource(domain_records()), tools=NoVoiceTools(settings))
    graph = build_graph(InMemorySaver())
    cfg = {"configurable": {"thread_id": "a"}}
    out = graph.invoke(_state(tmp_path / "a"), cfg, context=deps)
    assert Storyboard.model_validate(out["storyboard"]).brief.product == PRODUCT
    assert (tmp_path / "a" / "run.json").is_file() and set(out["outputs"]) >= {"storyboard", "timeline", "run"}
    json.dumps(graph.get_state(cfg).values)  # the checkpoint is plain data: no collaborator was stored

    with pytest.raises(CutpilotError, match="context"):  # nothing is bound at compile time
        build_graph(InMemorySaver()).invoke(_state(tmp_path / "b"), {"configurable": {"thread_id": "b"}})

    made: list[Deps] = []

    def factory() -> Deps:  # the langgraph.json host cannot pass a context: the default is built once, lazily
        made.append(Deps(settings=settings, source=MemorySource(domain_records()), tools=NoVoiceTools(settings)))
        return made[-1]

    hosted = build_graph(InMemorySaver(), default_context=factory)
    assert not made
    hosted.invoke(_state(tmp_path / "c"), {"configurable": {"thread_id": "c"}})
    assert len(made) == 1 and (tmp_path / "c" / "run.json").is_file()


def test_nodes_are_module_functions_and_a_locked_slot_survives_a_refetch(settings: Settings,
                                                                         tmp_path: Path) -> None:
    src = MemorySource(domain_records())
    deps = Deps(settings=settings, source=src, tools=NoVoiceTools(settings))
    rt = Runtime(context=deps)
    state: dict[str, Any] = _state(tmp_path)
    for node in (G.understand, G.storyboard, G.fetch):
        state.update(node(state, rt))  # type: ignore[arg-type]
    sb = Storyboard.model_validate(state["storyboard"])
    i = next(s.index for s in sb.slots if s.chosen is not None)
    slots = list(sb.slots)
    slots[i] = slots[i].model_copy(update={"locked": True})
    state["storyboard"] = sb.model_copy(update={"slots": slots}).model_dump(mode="json")
    state["dirty_fetch"], state["dirty_script"] = [i], []
    n = len(src.queries)
    out = G.fetch(state, rt)  # type: ignore[arg-type]
    after = Storyboard.model_validate(out["storyboard"])
    assert after.slots[i].chosen == sb.slots[i].chosen and len(src.queries) == n, "a locked slot was re-fetched"
    assert out["dirty_script"] == []


def test_thread_started_in_one_front_door_is_answered_by_a_fresh_one(settings: Settings, tmp_path: Path) -> None:
    src = MemorySource(domain_records())
    with FrontDoor(settings, src, tools=NoVoiceTools(settings)) as first:
        turn = first.start(BRIEF, out_dir=tmp_path / "o", render=False)
    assert turn.review is not None
    for row in turn.review["slots"]:
        assert row["locked"] is False and isinstance(row["alternates"], list)
        assert 3 <= len(row["alternate_clips"]) <= 5, row
        for alt in row["alternate_clips"]:
            assert set(alt) == {"clip_id", "thumbnail", "source", "start", "end", "score", "description"}
            assert alt["clip_id"] not in {r["clip_id"] for r in turn.review["slots"]}
    with FrontDoor(settings, src, tools=NoVoiceTools(settings)) as second:  # a new connection and graph
        assert second.brain_of(turn.thread_id) == "offline"
        assert second.state(turn.thread_id)["storyboard"]["brief"]["product"] == PRODUCT
        same = second.resume(turn.thread_id, None)  # no answer: the pending review again, nothing recorded
        assert same.review is not None and _clips(same.review) == _clips(turn.review)
        assert second.state(turn.thread_id)["run"]["revisions"] == []
        done = second.resume(turn.thread_id, {"action": "approve"})
        assert done.result is not None and done.result.run.revisions[-1]["kind"] == "approve"
        again = second.resume(turn.thread_id, "approve")  # a finished thread: its result, nothing re-run
        assert again.result is not None and again.result.run.revisions == done.result.run.revisions
    assert thread_brain(settings, turn.thread_id) == "offline"
    with FrontDoor(settings) as bare:
        with pytest.raises(NotFoundError):
            bare.state("no-such-thread")
        with pytest.raises(NotFoundError):
            bare.resume("no-such-thread", "approve")


def _last(door: FrontDoor, tid: str) -> dict[str, Any]:
    return dict(door.state(tid)["run"]["revisions"][-1])


def _clips(review: dict[str, Any]) -> list[str | None]:
    return [r["clip_id"] for r in review["slots"]]


def test_per_shot_actions_applied_and_refused(settings: Settings, tmp_path: Path) -> None:
    lego = ClipRecord.model_validate({
        "clip_id": clip_id_for("lego", 0, 5), "source": "/nonexistent/lego.mp4", "source_hash": "lego", "start": 0,
        "end": 5, "description": "LEGO Technic model", "content_type": "product_intro", "format": "live_action",
        "product": "LEGO Technic"})
    src = MemorySource(domain_records(extra=[lego]))
    tools = NoVoiceTools(settings)
    door = FrontDoor(settings, src, tools=tools)
    try:
        turn = door.start(BRIEF, out_dir=tmp_path / "o", render=False)
        tid = turn.thread_id
        assert turn.review is not None
        before = _clips(turn.review)

        def refused(answer: Any, needle: str, kind: str) -> None:
            t = door.resume(tid, answer)
            last = _last(door, tid)
            assert t.review is not None, "a refusal ended the thread"
            assert last["applied"] is False and last["kind"] == kind and needle in last["message"], last
            assert t.review["answer"]["message"] == last["message"]
            assert _clips(t.review) == before, "a refusal changed the plan"

        refused({"action": "swap", "slot": 99, "clip_id": lego.clip_id}, "no slot 99", "swap")
        refused({"action": "swap", "slot": "two", "clip_id": lego.clip_id}, "slot number", "swap")
        refused({"action": "swap", "slot": 1, "clip_id": "not-a-clip"}, "no clip", "swap")
        refused({"action": "swap", "slot": 1, "clip_id": lego.clip_id}, "shows LEGO Technic", "swap")
        refused({"action": "dance", "slot": 1}, "unknown action", "unknown_action")
        sb = Storyboard.model_validate(door.state(tid)["storyboard"])
        whole = next(s for s in sb.slots if s.chosen is not None and s.index != 1
                     and (s.chosen.start, s.chosen.end) == (src.get(s.chosen.clip_id).start,
                                                            src.get(s.chosen.clip_id).end))
        refused({"action": "swap", "slot": 1, "clip_id": whole.chosen.clip_id},  # type: ignore[union-attr]
                "already on screen", "swap")

        # swap: the alternate is shown, the slot is locked, nothing else moves and nothing is searched again
        i = next(k for k, r in enumerate(turn.review["slots"]) if r["clip_id"] and r["alternate_clips"])
        alt = turn.review["slots"][i]["alternate_clips"][0]["clip_id"]
        searches = len(door.state(tid)["run"]["searches"])
        t = door.resume(tid, {"action": "swap", "slot": i, "clip_id": alt})
        last = _last(door, tid)
        assert last["kind"] == "swap" and last["applied"] and alt in last["message"] and last["slot"] == i
        assert t.review is not None and t.review["answer"]["applied"] is True
        row = t.review["slots"][i]
        assert row["clip_id"] == alt and row["locked"] is True
        assert [c for k, c in enumerate(_clips(t.review)) if k != i] == [c for k, c in enumerate(before) if k != i]
        assert len(door.state(tid)["run"]["searches"]) == searches
        before = _clips(t.review)

        # lock
        refused({"action": "lock", "slot": i, "locked": True}, "already locked", "lock")
        refused({"action": "lock", "slot": i, "locked": "yes"}, "true or false", "lock")
        t = door.resume(tid, {"action": "lock", "slot": i, "locked": False})
        assert _last(door, tid)["applied"] and t.review is not None and t.review["slots"][i]["locked"] is False
        assert _clips(t.review) == before

        # the user's own line: checked like every line, then voiced
        k = next(s.index for s in sb.slots if s.index != i)
        refused({"action": "line", "slot": k, "text": "全网最好的眼霜"}, "may not say", "line")
        refused({"action": "line", "slot": k, "text": "侧睡" * 60}, "too long", "line")
        refused({"action": "line", "slot": k, "text": "an english line"}, "in zh", "line")
        refused({"action": "line", "slot": k, "text": "  "}, "empty", "line")
        tts = tools.calls.get("tts", 0)
        t = door.resume(tid, {"action": "line", "slot": k, "text": "侧睡的你看过来"})
        assert _last(door, tid)["applied"] and t.review is not None
        assert t.review["slots"][k]["line"] == "侧睡的你看过来"
        assert tools.calls.get("tts", 0) == tts + 1, "the new line was not sent to the voice"
        assert _clips(t.review) == before

        # research: a new search for one slot, the best new hit
        t = door.resume(tid, {"action": "research", "slot": k, "text": "主播 直播间 哑铃"})
        last = _last(door, tid)
        assert last["applied"] and last["kind"] == "research" and t.review is not None
        assert t.review["slots"][k]["clip_id"] not in before
        assert Storyboard.model_validate(door.state(tid)["storyboard"]).slots[k].query == "主播 直播间 哑铃"

        t = door.resume(tid, {"text": "approve"})
        assert t.result is not None
        kinds = [(r["kind"], r["applied"]) for r in t.result.run.revisions]
        assert ("swap", True) in kinds and ("line", True) in kinds and ("research", True) in kinds
        assert kinds[-1] == ("approve", True)
    finally:
        door.close()


def test_research_refused_with_alternatives_when_nothing_new_matches(settings: Settings, tmp_path: Path) -> None:
    src = MemorySource(domain_records()[:4])  # a 15 s ad over four clips: every one is on screen
    turn = start_chat("做一条15秒的侧睡纹广告", settings=settings, library=src, out_dir=tmp_path / "o", render=False,
                      tools=NoVoiceTools(settings))
    assert turn.review is not None
    t = resume_chat(turn.thread_id, {"action": "research", "slot": 0, "text": "哑铃"}, settings=settings,
                    library=src, tools=NoVoiceTools(settings))
    assert t.review is not None
    ans = t.review["answer"]
    assert ans["kind"] == "research" and ans["applied"] is False and "nothing for" in ans["message"]
    assert ans["alternatives"]


# --- the CLI, through the front door ---------------------------------------------------------------------------
class ClosableSource(MemorySource):
    def close(self) -> None:
        pass


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[ClosableSource]:
    src = ClosableSource(domain_records())
    monkeypatch.setattr("agent.cli._open_library", lambda settings: src)
    monkeypatch.setattr(G, "Toolbox", FakeRender)  # Deps builds its Toolbox from agent.graph's name
    yield src


def test_cli_make_chat_resume_end_to_end(cli_env: ClosableSource, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from cutpilot.cli import main
    from cutpilot.settings import get_settings

    assert main(["make", "做一条15秒的侧睡纹广告", "--no-render", "--json", "--out", str(tmp_path / "m")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["brain"] == "offline" and summary["total_s"] == pytest.approx(15, abs=0.5)
    assert (tmp_path / "m" / "run.json").is_file() and not (tmp_path / "m" / "ad.mp4").exists()

    answers = iter(['{"action": "lock", "slot": 0, "locked": true}', "{not json", "approve"])
    monkeypatch.setattr("rich.prompt.Prompt.ask", lambda *a, **k: next(answers))
    assert main(["chat", "做一条15秒的侧睡纹广告", "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "applied" in out and "not JSON" in out
    run = json.loads((tmp_path / "c" / "run.json").read_text())
    assert [r["kind"] for r in run["revisions"]] == ["lock", "approve"]
    assert (tmp_path / "c" / "ad.mp4").is_file()

    with FrontDoor(get_settings(), cli_env) as door:
        tid = door.start("做一条15秒的侧睡纹广告", out_dir=tmp_path / "r", render=False).thread_id
    assert main(["resume", tid, "--answer", '{"action": "swap", "slot": 9, "clip_id": "x"}']) == 0
    assert "not applied" in capsys.readouterr().out
    assert main(["resume", tid, "--answer", "{oops"]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["resume", tid, "--answer", "approve"]) == 0
    assert (tmp_path / "r" / "run.json").is_file()
    assert main(["resume", "no-such-thread", "--answer", "approve"]) != 0


def _rec(key: str, start: float, end: float, fmt: str = "live_action", product: str = "LEGO Technic") -> ClipRecord:
    return ClipRecord.model_validate({
        "clip_id": clip_id_for(key, start, end), "source": f"/nonexistent/{key}.mp4", "source_hash": key,
        "start": start, "end": end, "description": f"{product} {key}", "content_type": "product_intro",
        "format": fmt, "product": product})


def test_swap_takes_another_moment_of_a_used_clip_and_keeps_the_slot_filters() -> None:
    from agent.revise import Refusal, ShotDesk, apply_action
    from agent.steps import choice_from
    from cutpilot.storyboard import Brief, Slot, SlotRole

    long, other, stream = _rec("long", 0, 10), _rec("other", 0, 4), _rec("stream", 0, 4, fmt="livestream")
    src = MemorySource([long, other, stream])
    desk = ShotDesk(get=src.get, search=lambda slot, ex: [], usable=lambda rec: True, claims=lambda t, w: ([], t))
    sb = Storyboard(brief=Brief(text="LEGO", product="LEGO Technic", lang="en", duration_s=8), slots=[
        Slot(index=0, role=SlotRole.hook, target_s=3, product="LEGO Technic",
             chosen=choice_from(long, 0.9).model_copy(update={"end": 4.0})),
        Slot(index=1, role=SlotRole.product_intro, target_s=5, product="LEGO Technic",
             chosen=choice_from(other, 0.8))])
    p = apply_action(sb, {"action": "swap", "slot": 1, "clip_id": long.clip_id}, desk)
    c = p.storyboard.slots[1].chosen
    assert c is not None and c.clip_id == long.clip_id and (c.start, c.end) == (4.0, 10.0)
    assert p.storyboard.slots[1].locked and p.rescript == [1] and p.refetch == []
    assert p.storyboard.slots[1].alternates[0].clip_id == other.clip_id  # the clip it replaced, to swap back
    assert p.storyboard.slots[0] == sb.slots[0]

    whole = sb.model_copy(update={"slots": [sb.slots[0].model_copy(update={"chosen": choice_from(long, 0.9)}),
                                            sb.slots[1]]})
    with pytest.raises(Refusal, match="already on screen in shot 1"):
        apply_action(whole, {"action": "swap", "slot": 1, "clip_id": long.clip_id}, desk)
    streamed = sb.slots[1].model_copy(update={"formats": [ClipFormat.livestream]})
    live = sb.model_copy(update={"slots": [sb.slots[0], streamed]})
    with pytest.raises(Refusal, match="this shot takes livestream"):
        apply_action(live, {"action": "swap", "slot": 1, "clip_id": long.clip_id}, desk)
    assert apply_action(live, {"action": "swap", "slot": 1, "clip_id": stream.clip_id}, desk).kind == "swap"
    with pytest.raises(Refusal, match="reads as instructions"):
        apply_action(sb, {"action": "swap", "slot": 1, "clip_id": stream.clip_id},
                     ShotDesk(get=src.get, search=desk.search, usable=lambda rec: False, claims=desk.claims))
