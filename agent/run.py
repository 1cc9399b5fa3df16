"""Front door of the agent: `make_ad` (batch: no review pause) and the chat pair `start_chat` / `resume_chat`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.brain.base import Brain
from agent.brain.offline import OfflineBrain
from agent.graph import Deps, build_graph, open_checkpointer
from agent.runrecord import RunRecord
from agent.sources import ClipSource, LibrarySource
from agent.toolbox import Toolbox
from cutpilot.errors import InputError, NotFoundError
from cutpilot.outdir import claim
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief, Storyboard
from cutpilot.timeline import Timeline

Planner = Literal["offline", "llm"]


class MakeResult(BaseModel):
    """What a finished run produced (paths are absolute strings; ad is None when render=False)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    thread_id: str
    storyboard: Storyboard
    timeline: Timeline
    run: RunRecord
    out_dir: str
    ad: str | None = None
    paths: dict[str, str] = Field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The `--json` view: paths, one row per slot, total seconds, brain."""
        items = {v.slot: v for v in self.timeline.video}
        slots = []
        for s in self.storyboard.slots:
            v = items.get(s.index)
            slots.append({"shot": s.index + 1, "role": s.role.value,
                          "clip_id": s.chosen.clip_id if s.chosen else None,
                          "asset": s.asset.kind if s.asset else None,
                          "start": v.start_ms / 1000 if v else None, "end": v.end_ms / 1000 if v else None,
                          "line": s.line})
        return {"thread_id": self.thread_id, "brain": self.run.brain, "model": self.run.model,
                "total_s": self.timeline.duration_ms / 1000, "paths": self.paths, "slots": slots,
                "warnings": self.run.warnings, "fallbacks": [f.model_dump() for f in self.run.fallbacks]}


class ChatTurn(BaseModel):
    """A chat step: either a review payload (waiting for approve / revise) or the finished result."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    thread_id: str
    review: dict[str, Any] | None = None
    result: MakeResult | None = None


def choose_brain(settings: Settings, planner: Planner | None) -> Brain:
    """LLM brain when asked for (or configured and not told otherwise); the offline brain otherwise."""
    want = planner or ("llm" if settings.llm_configured else "offline")
    if want == "offline":
        return OfflineBrain()
    from agent.brain.llm import LLMBrain

    return LLMBrain.from_settings(settings)


def _source(library: Any) -> ClipSource:
    return library if hasattr(library, "find") else LibrarySource(library)


def _deps(settings: Settings, library: Any, brain: Brain, tools: Toolbox | None) -> Deps:
    """The graph's collaborators; product facts come from the home's book (`cutpilot products import`)."""
    from cutpilot.products import load_book

    return Deps(settings=settings, source=_source(library), brain=brain, tools=tools, products=load_book(settings))


def _initial(brief: Brief | str, *, out_dir: Path, mode: str, render: bool, quality: str, thread_id: str,
             brain: Brain, strict: bool = False) -> dict[str, Any]:
    run = RunRecord(thread_id=thread_id, brain=brain.name, model=brain.model, strict_claims=strict)
    state: dict[str, Any] = {
        "mode": mode, "out_dir": str(Path(out_dir).resolve()), "render": render, "quality": quality,
        "run": run.model_dump(mode="json"),
        "approved": False, "exclude": {}, "voice": {}, "music": None,
    }
    if isinstance(brief, Brief):
        state["brief"] = brief.model_dump(mode="json")
        state["request"] = ""
    else:
        if not brief.strip():
            raise InputError("empty brief: say what ad to make, e.g. 'make a 30s side-sleep wrinkle ad'")
        state["request"] = brief
    return state


def _result(thread_id: str, values: dict[str, Any]) -> MakeResult:
    outputs = dict(values.get("outputs") or {})
    return MakeResult(
        thread_id=thread_id,
        storyboard=Storyboard.model_validate(values["storyboard"]),
        timeline=Timeline.model_validate(values["timeline"]),
        run=RunRecord.model_validate(values["run"]),
        out_dir=values["out_dir"], ad=outputs.get("ad"), paths=outputs,
    )


def outputs_on_disk(values: dict[str, Any], thread_id: str, out_dir: Path) -> bool:
    """Whether a finished thread's files are all in `out_dir` and its run.json is this thread's (a checkpoint
    alone is no proof: the folder may have been emptied, edited by another run, or be another folder)."""
    if values.get("out_dir") != str(Path(out_dir).resolve()):
        return False
    paths = [Path(p) for p in (values.get("outputs") or {}).values()]
    if not paths or not all(p.is_file() for p in paths):
        return False
    try:
        return json.loads((Path(out_dir) / "run.json").read_text(encoding="utf-8")).get("thread_id") == thread_id
    except (OSError, ValueError, AttributeError):
        return False


def make_ad(
    brief: Brief | str,
    *,
    settings: Settings,
    library: Any,
    out_dir: Path,
    planner: Planner | None = None,
    render: bool = True,
    quality: Literal["draft", "standard", "high"] = "draft",
    thread_id: str | None = None,
    base: Brief | None = None,
    brain: Brain | None = None,
    tools: Toolbox | None = None,
    strict: bool = False,
) -> MakeResult:
    """Brief → rendered ad + storyboard.json, timeline.json, captions.srt, timeline.otio, run.json (no pause).

    `base` carries explicit values (CLI flags) that override what the free text implies; `brain` / `tools` let
    tests inject a scripted brain or instrumented tools. Re-running with the same thread_id resumes it; a finished
    thread whose files are no longer in `out_dir` is made again. `strict`: a claim the ad may not make fails the
    run (agent.claims.ClaimsError, nothing written) instead of being rewritten, dropped or muted."""
    brain = brain or choose_brain(settings, planner)
    thread_id = thread_id or uuid.uuid4().hex[:12]
    cp = open_checkpointer(settings)
    try:
        graph = build_graph(_deps(settings, library, brain, tools), cp)
        cfg = {"configurable": {"thread_id": thread_id}}
        snap = graph.get_state(cfg)
        if snap.values and not snap.next and not outputs_on_disk(snap.values, thread_id, out_dir):
            cp.delete_thread(thread_id)  # finished, but its files are gone, replaced or elsewhere: make it again
            snap = graph.get_state(cfg)
        claim(out_dir, settings.home)
        if snap.values and snap.next:  # an unfinished run of this thread: continue where it stopped
            graph.invoke(None, cfg)
        elif snap.values and not snap.next:
            pass  # already finished: return it
        else:
            state = _initial(brief, out_dir=out_dir, mode="batch", render=render, quality=quality,
                             thread_id=thread_id, brain=brain, strict=strict)
            if base is not None and "brief" not in state:
                state["brief"] = base.model_dump(mode="json")
            graph.invoke(state, cfg)
        return _result(thread_id, graph.get_state(cfg).values)
    finally:
        cp.conn.close()


def _turn(graph: Any, thread_id: str) -> ChatTurn:
    cfg = {"configurable": {"thread_id": thread_id}}
    snap = graph.get_state(cfg)
    pending = [i for t in snap.tasks for i in (t.interrupts or ())]
    if pending:
        return ChatTurn(thread_id=thread_id, review=pending[0].value)
    return ChatTurn(thread_id=thread_id, result=_result(thread_id, snap.values))


def start_chat(
    brief: Brief | str, *, settings: Settings, library: Any, out_dir: Path, planner: Planner | None = None,
    render: bool = True, quality: Literal["draft", "standard", "high"] = "draft", thread_id: str | None = None,
    base: Brief | None = None, brain: Brain | None = None, tools: Toolbox | None = None,
) -> ChatTurn:
    """Plan until the review pause; the returned thread id can be resumed by any later process."""
    brain = brain or choose_brain(settings, planner)
    thread_id = thread_id or uuid.uuid4().hex[:12]
    cp = open_checkpointer(settings)
    try:
        graph = build_graph(_deps(settings, library, brain, tools), cp)
        claim(out_dir, settings.home)
        state = _initial(brief, out_dir=out_dir, mode="chat", render=render, quality=quality, thread_id=thread_id,
                         brain=brain)
        if base is not None and "brief" not in state:
            state["brief"] = base.model_dump(mode="json")
        graph.invoke(state, {"configurable": {"thread_id": thread_id}})
        return _turn(graph, thread_id)
    finally:
        cp.conn.close()


def thread_brain(settings: Settings, thread_id: str) -> str:
    """Which brain a stored thread was started with (so a resume uses the same one)."""
    cp = open_checkpointer(settings)
    try:
        tup = cp.get_tuple({"configurable": {"thread_id": thread_id}})
        if tup is None:
            raise NotFoundError(f"no run with thread id {thread_id!r} under {settings.home}")
        run = tup.checkpoint["channel_values"].get("run") or {}
        return str(run.get("brain", "offline"))
    finally:
        cp.conn.close()


def resume_chat(
    thread_id: str, answer: str | dict[str, Any] | None, *, settings: Settings, library: Any,
    brain: Brain | None = None, tools: Toolbox | None = None,
) -> ChatTurn:
    """Answer the pending review (approve / a revision) of a stored thread, from this or a fresh process."""
    from langgraph.types import Command

    if brain is None:
        name = thread_brain(settings, thread_id)
        brain = choose_brain(settings, "llm" if name == "llm" else "offline")
    cp = open_checkpointer(settings)
    try:
        graph = build_graph(_deps(settings, library, brain, tools), cp)
        cfg = {"configurable": {"thread_id": thread_id}}
        snap = graph.get_state(cfg)
        if not snap.values:
            raise NotFoundError(f"no run with thread id {thread_id!r} under {settings.home}")
        if snap.next and any(t.interrupts for t in snap.tasks):
            graph.invoke(Command(resume=answer), cfg)
        elif snap.next:
            graph.invoke(None, cfg)
        return _turn(graph, thread_id)
    finally:
        cp.conn.close()
