"""RunRecord: what a run did and why, written next to the ad as run.json (brain, timings, scores, fallbacks)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NodeTiming(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str
    wall_s: float
    at: str = ""


class SearchLog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot: int
    role: str
    query: str
    hits: list[dict[str, Any]] = Field(default_factory=list)  # clip_id, score
    chosen: str | None = None
    relaxed: list[str] = Field(default_factory=list)


class Fallback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: str
    error: str
    used: str = "offline"


class RunRecord(BaseModel):
    """Everything needed to audit a run: which brain and model, per-node wall time, search scores, fallbacks."""

    model_config = ConfigDict(extra="forbid")
    thread_id: str
    brain: str = "offline"
    model: str | None = None
    started_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    nodes: list[NodeTiming] = Field(default_factory=list)
    searches: list[SearchLog] = Field(default_factory=list)
    ranking: dict[str, Any] | None = Field(default=None, description="the performance snapshot and mode the search "
                                           "ranking used (cutpilot.perf.rank); None: relevance only")
    warnings: list[str] = Field(default_factory=list)
    fallbacks: list[Fallback] = Field(default_factory=list)
    generated: list[dict[str, Any]] = Field(default_factory=list)
    revisions: list[dict[str, Any]] = Field(default_factory=list)
    brief_disagreements: list[dict[str, Any]] = Field(
        default_factory=list, description="fields where the model's brief contradicted the request's explicit text")
    voice_checks: list[dict[str, Any]] = Field(default_factory=list, description="ASR round trip of each voiced line")
    claims: list[dict[str, Any]] = Field(
        default_factory=list, description="claims found (agent.claims): where, term, kind, text, evidence, action "
        "(rewritten / dropped / muted / allowed-with-evidence)")
    strict_claims: bool = Field(default=False, description="a forbidden claim fails the run instead of being fixed")
    llm_calls: int = 0
    llm_steps: list[dict[str, Any]] = Field(
        default_factory=list, description="per LLM call: step, wall_s, tokens_in, tokens_out, ok, error")
    render: dict[str, Any] | None = None
    aigc: dict[str, Any] | None = Field(
        default=None, description="AI-content labels applied (GB 45438-2025): generated shots and TTS voice, the "
        "visible label's text and spans, the other route when not burned in, the mp4's AIGC metadata; None = none")
    total_s: float = 0.0

    def warn(self, msg: str) -> None:
        if msg not in self.warnings:
            self.warnings.append(msg)

    def record_render(self, result: dict[str, Any], path: str | None = None) -> None:
        """Keep a render's result (tools.render.RenderResult as JSON) and lift its AIGC labels to `aigc`."""
        self.render = {**result, **({"path": path} if path else {})}
        self.aigc = result.get("aigc")

    def fallback(self, step: str, error: str) -> None:
        self.fallbacks.append(Fallback(step=step, error=error[:300]))

    def node_wall(self) -> dict[str, float]:
        """Summed wall seconds per node name (a node runs again after a revision)."""
        out: dict[str, float] = {}
        for t in self.nodes:
            out[t.node] = round(out.get(t.node, 0.0) + t.wall_s, 4)
        return out

    def time_node(self, node: str, t0: float) -> None:
        wall = time.perf_counter() - t0
        self.nodes.append(NodeTiming(node=node, wall_s=round(wall, 4),
                                     at=datetime.now(UTC).isoformat(timespec="seconds")))
        self.total_s = round(sum(n.wall_s for n in self.nodes), 4)
