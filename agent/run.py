"""The planner's one front door: `FrontDoor` owns the checkpointer connection and the compiled graph, and passes
the run's collaborators (`Deps`) as LangGraph context on every invoke. The CLI, batch, the studio and the eval all
drive the planner through it; `make_ad`, `start_chat`, `resume_chat` and `thread_brain` are one-call forms of it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.brain.base import Brain
from agent.brain.offline import OfflineBrain
from agent.graph import Deps, build_graph, open_checkpointer
from agent.runrecord import RunRecord
from agent.sources import ClipSource, LibrarySource
from agent.toolbox import Toolbox
from cutpilot.errors import CutpilotError, InputError, NotFoundError
from cutpilot.outdir import claim
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief, Storyboard
from cutpilot.timeline import Timeline

Planner = Literal["offline", "llm"]
Quality = Literal["draft", "standard", "high"]


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


def _source(library: Any) -> ClipSource | None:
    if library is None:
        return None
    return library if hasattr(library, "find") else LibrarySource(library)


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


class FrontDoor:
    """One planner session over one library: owns the sqlite checkpointer connection and the compiled graph.

    `make` (batch, no pause), `start` (plan to the review pause), `resume` (answer it), `state` / `brain_of` (a
    stored thread, read through the graph). Every call builds the run's collaborators afresh (brain, a Toolbox
    unless one was given, the home's product facts) and passes them as the run's context, so a thread started in
    one front door can be resumed by another, in this or a later process. Use it as a context manager."""

    def __init__(self, settings: Settings, library: Any = None, *, planner: Planner | None = None,
                 brain: Brain | None = None, tools: Toolbox | None = None, checkpointer: Any = None,
                 perf_mode: str = "mean") -> None:
        self.settings = settings
        self.perf_mode = perf_mode  # "thompson" for batch test variants (cutpilot.perf.rank)
        self._ranker: Any = None
        self.source = _source(library)
        self.planner = planner
        self.brain = brain
        self.tools = tools
        self._own = checkpointer is None
        self.checkpointer = open_checkpointer(settings) if checkpointer is None else checkpointer
        self.graph = build_graph(self.checkpointer)

    def __enter__(self) -> FrontDoor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the checkpointer connection this front door opened (not one it was given)."""
        from cutpilot.checkpoints import close

        if self._own:
            close(self.checkpointer)

    # --- the run's context ---------------------------------------------------------------------------------------
    def context(self, brain: Brain) -> Deps:
        """The graph's collaborators for one call; product facts come from the home's book (`cutpilot products
        import`), read each call so an import shows in the next plan."""
        from cutpilot.products import load_book

        if self.source is None:
            raise InputError("this front door has no library: open it with one to plan")
        return Deps(settings=self.settings, source=self.source, brain=brain, tools=self.tools,
                    products=load_book(self.settings), perf=self.ranker(), perf_mode=self.perf_mode)

    def ranker(self) -> Any:
        """Performance ranking over the home's latest import (read once per front door); None when turned off
        (settings.perf, `--no-perf`) or before the first `cutpilot perf import`."""
        if not self.settings.perf:
            return None
        if self._ranker is None:
            from cutpilot.perf.rank import PerfRanker

            try:
                self._ranker = PerfRanker.from_store(self.settings, weight=self.settings.perf_weight)
            except (CutpilotError, OSError, ValueError) as e:
                import warnings

                warnings.warn(f"performance ranking off: {e}", stacklevel=2)
                self._ranker = PerfRanker.empty()
        return self._ranker if self._ranker.snapshot_id else None

    def _brain(self, planner: Planner | None = None) -> Brain:
        return self.brain or choose_brain(self.settings, planner or self.planner)

    @staticmethod
    def _cfg(thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}}

    def _invoke(self, value: Any, thread_id: str, brain: Brain) -> None:
        self.graph.invoke(value, self._cfg(thread_id), context=self.context(brain))

    # --- the calls ------------------------------------------------------------------------------------------------
    def make(self, brief: Brief | str, *, out_dir: Path, render: bool = True, quality: Quality = "draft",
             thread_id: str | None = None, base: Brief | None = None, strict: bool = False,
             planner: Planner | None = None) -> MakeResult:
        """Brief → rendered ad + storyboard.json, timeline.json, captions.srt, timeline.otio, run.json (no pause).

        `base` carries explicit values (CLI flags) that override what the free text implies. Re-running with the
        same thread_id resumes it; a finished thread whose files are no longer in `out_dir` is made again.
        `strict`: a claim the ad may not make fails the run (agent.claims.ClaimsError, nothing written) instead of
        being rewritten, dropped or muted."""
        brain = self._brain(planner)
        thread_id = thread_id or uuid.uuid4().hex[:12]
        cfg = self._cfg(thread_id)
        snap = self.graph.get_state(cfg)
        if snap.values and not snap.next and not outputs_on_disk(snap.values, thread_id, out_dir):
            self.checkpointer.delete_thread(thread_id)  # finished, but its files are gone, replaced or elsewhere
            snap = self.graph.get_state(cfg)
        claim(out_dir, self.settings.home)
        if snap.values and snap.next:  # an unfinished run of this thread: continue where it stopped
            self._invoke(None, thread_id, brain)
        elif not snap.values:
            state = _initial(brief, out_dir=out_dir, mode="batch", render=render, quality=quality,
                             thread_id=thread_id, brain=brain, strict=strict)
            if base is not None and "brief" not in state:
                state["brief"] = base.model_dump(mode="json")
            self._invoke(state, thread_id, brain)
        return _result(thread_id, self.graph.get_state(cfg).values)  # (already finished: returned as it is)

    def start(self, brief: Brief | str, *, out_dir: Path, render: bool = True, quality: Quality = "draft",
              thread_id: str | None = None, base: Brief | None = None, planner: Planner | None = None) -> ChatTurn:
        """Plan until the review pause; the returned thread id can be resumed by any later front door."""
        brain = self._brain(planner)
        thread_id = thread_id or uuid.uuid4().hex[:12]
        claim(out_dir, self.settings.home)
        state = _initial(brief, out_dir=out_dir, mode="chat", render=render, quality=quality, thread_id=thread_id,
                         brain=brain)
        if base is not None and "brief" not in state:
            state["brief"] = base.model_dump(mode="json")
        self._invoke(state, thread_id, brain)
        return self.turn(thread_id)

    def resume(self, thread_id: str, answer: str | dict[str, Any] | None, *, brain: Brain | None = None
               ) -> ChatTurn:
        """Answer the pending review of a stored thread: approve, a text revision, or a per-shot action
        (`{"action": "swap" | "lock" | "line" | "research", "slot": i, ...}`); a crashed run just continues;
        `answer=None` on a pending review returns it unanswered.
        The thread keeps the brain it was started with unless one is given."""
        from langgraph.types import Command

        snap = self.graph.get_state(self._cfg(thread_id))
        if not snap.values:
            raise NotFoundError(f"no run with thread id {thread_id!r} under {self.settings.home}")
        if brain is None:
            brain = self.brain or choose_brain(self.settings, "llm" if _brain_name(snap.values) == "llm"
                                               else "offline")
        if snap.next and any(t.interrupts for t in snap.tasks):
            if answer is None:  # no answer to a pending review: show it again, record nothing
                return self.turn(thread_id)
            self._invoke(Command(resume=answer), thread_id, brain)
        elif snap.next:
            self._invoke(None, thread_id, brain)
        return self.turn(thread_id)

    def turn(self, thread_id: str) -> ChatTurn:
        """Where a thread stands: its pending review payload, or its result."""
        snap = self.graph.get_state(self._cfg(thread_id))
        if not snap.values:
            raise NotFoundError(f"no run with thread id {thread_id!r} under {self.settings.home}")
        pending = [i for t in snap.tasks for i in (t.interrupts or ())]
        if pending:
            return ChatTurn(thread_id=thread_id, review=pending[0].value)
        return ChatTurn(thread_id=thread_id, result=_result(thread_id, snap.values))

    def state(self, thread_id: str) -> dict[str, Any]:
        """The thread's current state (storyboard / timeline / run dicts, as checkpointed)."""
        values = self.graph.get_state(self._cfg(thread_id)).values
        if not values:
            raise NotFoundError(f"no run with thread id {thread_id!r} under {self.settings.home}")
        return dict(values)

    def brain_of(self, thread_id: str) -> str:
        """Which brain a stored thread was started with (so a resume uses the same one)."""
        return _brain_name(self.state(thread_id))


def _brain_name(values: dict[str, Any]) -> str:
    return str((values.get("run") or {}).get("brain", "offline"))


def make_ad(
    brief: Brief | str,
    *,
    settings: Settings,
    library: Any,
    out_dir: Path,
    planner: Planner | None = None,
    render: bool = True,
    quality: Quality = "draft",
    thread_id: str | None = None,
    base: Brief | None = None,
    brain: Brain | None = None,
    tools: Toolbox | None = None,
    strict: bool = False,
) -> MakeResult:
    """`FrontDoor.make` in one call (`brain` / `tools` let tests inject a scripted brain or instrumented tools)."""
    with FrontDoor(settings, library, planner=planner, brain=brain, tools=tools) as door:
        return door.make(brief, out_dir=out_dir, render=render, quality=quality, thread_id=thread_id, base=base,
                         strict=strict)


def start_chat(
    brief: Brief | str, *, settings: Settings, library: Any, out_dir: Path, planner: Planner | None = None,
    render: bool = True, quality: Quality = "draft", thread_id: str | None = None,
    base: Brief | None = None, brain: Brain | None = None, tools: Toolbox | None = None,
) -> ChatTurn:
    """`FrontDoor.start` in one call: plan until the review pause."""
    with FrontDoor(settings, library, planner=planner, brain=brain, tools=tools) as door:
        return door.start(brief, out_dir=out_dir, render=render, quality=quality, thread_id=thread_id, base=base)


def thread_brain(settings: Settings, thread_id: str) -> str:
    """Which brain a stored thread was started with (so a resume uses the same one)."""
    with FrontDoor(settings) as door:
        return door.brain_of(thread_id)


def resume_chat(
    thread_id: str, answer: str | dict[str, Any] | None, *, settings: Settings, library: Any,
    brain: Brain | None = None, tools: Toolbox | None = None,
) -> ChatTurn:
    """`FrontDoor.resume` in one call: answer the pending review of a stored thread, from this or a fresh
    process."""
    with FrontDoor(settings, library, brain=brain, tools=tools) as door:
        return door.resume(thread_id, answer)
