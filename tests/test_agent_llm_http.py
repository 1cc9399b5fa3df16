"""The LLM planner over real HTTP: langchain-openai (cutpilot.llm.chat_model) → a local OpenAI-compatible server
that answers with structured tool calls; provider failures are retried, then that step falls back offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_fakes import PRODUCT, MemorySource, domain_records
from agent_helpers import NoVoiceTools, assert_ad_invariants
from openai_server import PlannerServer

from agent.run import make_ad
from cutpilot.settings import Settings


def _settings(tmp_path: Path, srv: PlannerServer, **kw: object) -> Settings:
    return Settings(home=tmp_path / "home", openai_base_url=srv.base_url, openai_api_key="test-key",
                    llm_model="planner-test", llm_timeout_s=kw.pop("timeout", 5.0), llm_retries=1, **kw)  # type: ignore[arg-type]


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


@pytest.mark.parametrize(("mode", "requests_for_step"), [("500", 4), ("timeout", 4), ("badjson", 2)])
def test_provider_error_retried_then_offline_fallback(tmp_path: Path, mode: str, requests_for_step: int) -> None:
    with PlannerServer() as srv:
        srv.stall_s = 1.5
        s = _settings(tmp_path, srv, timeout=0.5)
        srv.fail = [mode] * requests_for_step  # the whole brief step fails, every retry included
        r = make_ad("做一条30秒的侧睡纹广告", settings=s, library=MemorySource(domain_records()),
                    out_dir=tmp_path / "o", render=False, tools=NoVoiceTools(s))
        n = len(srv.requests)
    assert [f.step for f in r.run.fallbacks] == ["understand"]
    assert n == requests_for_step + 4  # retries happened, then the later steps used the LLM again
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["fallbacks"][0]["step"] == "understand" and run["fallbacks"][0]["used"] == "offline"
    assert any("offline planner" in w for w in run["warnings"])
    assert r.storyboard.brief.duration_s == 30  # the offline parse of the same request
    assert_ad_invariants(r, 30)
