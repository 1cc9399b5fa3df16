"""The planner graph: understand → storyboard → fetch → script → fill_gaps → assemble → review → render.

State holds only JSON payloads and paths (agent.state); everything live (library, brains, tools, settings) is the
run's LangGraph context (`Deps`, passed on every invoke), so the compiled graph holds nothing and a fresh process
can resume any thread from the sqlite checkpoint. Nodes are module-level functions of `(state, runtime)`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict, TypeVar

from langchain_core.messages import AnyMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolInvocationError
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agent import claims, rules, steps
from agent.assemble import assemble
from agent.brain.base import Brain
from agent.brain.llm import GAP_ANSWER, GAP_TOOLS, MAX_GAP_ROUNDS, GapSession, LLMBrain
from agent.brain.offline import OfflineBrain
from agent.brief import explicit_facts
from agent.mediatools import Card, MediaTools, Motion, ToolContext
from agent.revise import Refusal, ShotDesk, action_record, apply_action, apply_revision, is_approval
from agent.rules import MIN_SCORE
from agent.runrecord import RunRecord
from agent.sources import ClipSource
from agent.state import AgentState, Candidate, MusicTrack, VoiceTrack
from agent.toolbox import Toolbox
from cutpilot.atomic import OutputSet
from cutpilot.errors import CutpilotError, InputError, ProviderError, ToolError
from cutpilot.models import ClipFormat, ClipRecord, parse_formats
from cutpilot.products import Product, ProductBook
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief, ClipChoice, GeneratedAsset, Slot, SlotRole, Storyboard
from cutpilot.timeline import Timeline
from tools.lc import lc_tools

NODES = ("understand", "storyboard", "fetch", "script", "fill_gaps", "assemble", "review", "render")
T = TypeVar("T")


@dataclass
class Deps:
    """Live collaborators of one graph instance (never checkpointed)."""

    settings: Settings
    source: ClipSource
    brain: Brain = field(default_factory=OfflineBrain)
    tools: Toolbox | None = None
    min_score: float = MIN_SCORE
    products: ProductBook = field(default_factory=lambda: ProductBook([]))
    perf: Any = None  # cutpilot.perf.rank.PerfRanker over the latest import; None: relevance only
    perf_mode: str = "mean"  # make / chat: the posterior mean; batch test variants: "thompson"

    def __post_init__(self) -> None:
        if self.tools is None:
            self.tools = Toolbox(self.settings)

    def product(self, brief: Brief) -> Product | None:
        """The facts of the brief's product (None when none were imported)."""
        return self.products.get(brief.product) if brief.product else None


def _fallback(deps: Deps, run: RunRecord, step: str, primary: Callable[[Brain], T], offline: Callable[[], T]) -> T:
    """Run a brain step; a provider failure (after the adapter's retries) falls back to the offline brain."""
    if isinstance(deps.brain, OfflineBrain):
        return offline()
    try:
        return primary(deps.brain)
    except ProviderError as e:
        run.fallback(step, e.one_line())
        run.warn(f"{step}: LLM failed, used the offline planner for this step")
        return offline()


def _records(deps: Deps, sb: Storyboard) -> dict[str, ClipRecord]:
    out: dict[str, ClipRecord] = {}
    for s in sb.slots:
        if s.chosen is not None:
            try:
                out[s.chosen.clip_id] = deps.source.get(s.chosen.clip_id)
            except CutpilotError:
                continue
    return out


def _voice(state: AgentState) -> dict[int, VoiceTrack]:
    return {int(k): VoiceTrack.model_validate(v) for k, v in (state.get("voice") or {}).items()}


# --- the gap-filling tool step (LLM brain): the model and a ToolNode over the generated media tools ----------
class ToolStepState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    rounds: int


@dataclass(frozen=True)
class ToolStepContext:
    """The tool step's runtime context: the brain's session (prompt, budget, answer) and the round cap."""

    session: GapSession
    max_rounds: int = MAX_GAP_ROUNDS


def tool_error_message(e: Exception) -> str:
    """What the model reads when a tool fails or its arguments do not fit the schema: one line, and the run goes
    on. Any other exception is a bug and ends the run."""
    if isinstance(e, ToolError):
        return e.one_line()
    if isinstance(e, ToolInvocationError):
        return "ToolError: " + " ".join(e.message.split())[:300]
    raise e


def tool_model(state: ToolStepState, runtime: Runtime[ToolStepContext]) -> dict[str, Any]:
    ctx = runtime.context
    ai = ctx.session.turn(state["messages"], final=state["rounds"] >= ctx.max_rounds)
    return {"messages": [ai], "rounds": state["rounds"] + 1}


def route_tools(state: ToolStepState) -> str:
    """tools_condition, ending on the final answer and after the round cap."""
    calls = getattr(state["messages"][-1], "tool_calls", None) or []
    if not calls or any(c["name"] == GAP_ANSWER for c in calls) or state["rounds"] > MAX_GAP_ROUNDS:
        return END
    return "media_tools"


def tool_step_graph(tools: list[BaseTool]) -> Any:
    """model ⇄ media_tools (ToolNode) until the model answers; compiled per step, never checkpointed."""
    g: StateGraph[ToolStepState, ToolStepContext] = StateGraph(ToolStepState, context_schema=ToolStepContext)
    g.add_node("model", tool_model)
    g.add_node("media_tools", ToolNode(tools, handle_tool_errors=tool_error_message))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", route_tools, {"media_tools": "media_tools", END: END})
    g.add_edge("media_tools", "model")
    return g.compile(checkpointer=False)


def gap_slots(sb: Storyboard) -> list[int]:
    """Slots left with the plain fallback card (the offer keeps its offer card; a locked slot stays)."""
    return [s.index for s in sb.slots if s.chosen is None and s.asset is not None and s.asset.kind == "card"
            and s.asset.tool == "renderer.card" and s.role != SlotRole.offer_cta and not s.locked]


def fill_with_tools(brain: LLMBrain, tools: MediaTools, source: ClipSource, sb: Storyboard, run: RunRecord,
                    out_dir: Path) -> Storyboard:
    """Give the model one bounded tool step for the card-only slots: search the library, animate a still,
    design a card. What it answers replaces a card only when a tool really found or made it; a provider failure
    or a spent budget keeps the cards (recorded as a fallback)."""
    gaps = gap_slots(sb)
    if not gaps:
        return sb
    store = getattr(source, "library", None)
    ctx = ToolContext(tools=tools, out_dir=out_dir, source=source, library=store if hasattr(store, "add") else None)
    belt = lc_tools(ctx, names=[n for n in GAP_TOOLS if n != "register_generated_clip" or ctx.library is not None])
    session = brain.gap_session(sb, gaps, belt, run)
    try:
        out = tool_step_graph(belt).invoke({"messages": session.messages, "rounds": 0},
                                           context=ToolStepContext(session),
                                           config={"recursion_limit": 2 * MAX_GAP_ROUNDS + 4})
    except ProviderError as e:
        run.fallback("gaps", e.one_line())
        run.warn("gaps: LLM failed; the cards stay")
        return sb
    slots = list(sb.slots)
    used = {s.chosen.clip_id for s in slots if s.chosen is not None}
    for f in session.answer(out["messages"]):
        s = slots[f.slot]
        if f.clip_id is not None:
            try:
                rec = source.get(f.clip_id)
            except CutpilotError:
                run.warn(f"slot {f.slot}: the model chose clip {f.clip_id}, which the library does not have")
                continue
            if f.clip_id in used or not steps.usable(rec, set()):
                run.warn(f"slot {f.slot}: clip {f.clip_id} is already in the ad or not usable; card kept")
                continue
            used.add(f.clip_id)
            slots[f.slot] = s.model_copy(update={"chosen": steps.choice_from(rec, f.score), "asset": None,
                                                 "alternates": [], "overlay": ""})
            run.generated.append({"slot": f.slot, "kind": "clip", "tool": "search_library", "clip_id": f.clip_id})
        elif isinstance(f.asset, Motion):
            asset = GeneratedAsset(kind="image_video", path=str(f.asset.path), tool="image_to_video",
                                   provider=f.asset.provider, params={"seconds": f.asset.seconds})
            slots[f.slot] = s.model_copy(update={"asset": asset, "overlay": ""})
            run.generated.append({"slot": f.slot, "kind": "image_video", "tool": "image_to_video",
                                  "path": str(f.asset.path), "provider": f.asset.provider})
        elif isinstance(f.asset, Card):
            asset = GeneratedAsset(kind="card", path=str(f.asset.path), tool="title_card", provider="offline",
                                   params={"text": f.asset.text, "subtitle": f.asset.subtitle, "role": s.role.value})
            slots[f.slot] = s.model_copy(update={"asset": asset, "overlay": ""})
            run.generated.append({"slot": f.slot, "kind": "card", "tool": "title_card", "path": str(f.asset.path),
                                  "text": f.asset.text})
    return sb.model_copy(update={"slots": slots})


# --- the planner's nodes: module-level functions; their collaborators come from the run's context ---------------
Node = Callable[[AgentState, Runtime[Deps]], dict[str, Any]]
OFFLINE = OfflineBrain()  # the fallback brain (stateless)


def deps_of(runtime: Runtime[Deps]) -> Deps:
    """The run's collaborators: passed as `context=Deps(...)` on every invoke / stream, never checkpointed."""
    ctx = runtime.context
    if not isinstance(ctx, Deps):
        raise CutpilotError("the planner graph runs with its collaborators: graph.invoke(..., context=Deps(...)) "
                            "(agent.run.FrontDoor does this)")
    return ctx


def timed(name: str) -> Callable[[Node], Node]:
    """Record the node's wall time in run.json (the render node records its own, after the encode)."""
    def wrap(fn: Node) -> Node:
        def node(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
            t0 = time.perf_counter()
            out = fn(state, runtime)
            run = RunRecord.model_validate(out.get("run", state["run"]))
            if name != "render":
                run.time_node(name, t0)
            out["run"] = run.model_dump(mode="json")
            return out

        node.__name__ = name
        node.__doc__ = fn.__doc__
        return node

    return wrap


@timed("understand")
def understand(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Request text (and explicit CLI values) → Brief; the model fills soft fields, the text's facts win."""
    deps = deps_of(runtime)
    run = RunRecord.model_validate(state["run"])
    base = Brief.model_validate(state["brief"]) if state.get("brief") else None
    text = state.get("request") or ""
    if not text and base is not None:
        brief = base
    else:
        products = deps.source.products()
        parsed = OFFLINE.understand(text, products, run, base=base, book=deps.products)
        brief = _fallback(deps, run, "understand", lambda b: b.understand(text, products, run),
                          lambda: parsed)
        if brief is not parsed:  # the model fills soft fields; what the text states outright wins
            brief = _enforce_explicit(brief, parsed, text, run)
        if base is not None:  # explicit CLI / structured values win over what the text implies
            explicit = {k: v for k, v in base.model_dump().items()
                        if k != "text" and v not in (None, [], "") and v != Brief.model_fields[k].default}
            brief = brief.model_copy(update=explicit)
    if brief.product is not None and deps.products.get(brief.product) is not None:
        brief = brief.model_copy(update={"product": deps.products.get(brief.product).name})  # type: ignore[union-attr]
    if brief.product is None:
        guess = steps.infer_product(deps.source, brief.angle or brief.text, brief.lang)
        if guess:
            brief = brief.model_copy(update={"product": guess})
            run.warn(f"no product named; using {guess!r}, the product of the best-matching clips")
    return {"brief": brief.model_dump(mode="json"), "run": run.model_dump(mode="json")}


@timed("storyboard")
def storyboard(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Brief → slots (roles, seconds, queries); a slower voice gets shorter lines from the start."""
    deps = deps_of(runtime)
    run = RunRecord.model_validate(state["run"])
    brief = Brief.model_validate(state["brief"])
    sb = _fallback(deps, run, "storyboard", lambda b: b.storyboard(brief, run),
                   lambda: OFFLINE.storyboard(brief, run))
    assert deps.tools is not None
    pace = deps.tools.voice_pace(brief.lang)
    if pace is not None:  # a slower voice gets shorter lines from the start (the budget is what it can say)
        share = round(min(1.0, pace / rules.budget(1.0, brief.lang)), 3)
        if share < sb.line_budget:
            sb = sb.model_copy(update={"line_budget": share})
            run.warn(f"the {brief.lang} voice speaks {pace:g} units/s; lines use {share:.0%} of the budget")
    idx = list(range(len(sb.slots)))
    return {"storyboard": sb.model_dump(mode="json"), "dirty_fetch": idx, "dirty_script": idx, "voice": {},
            "music": None, "run": run.model_dump(mode="json")}


def _ranking(deps: Deps, brief: Brief, run: RunRecord, thread_id: str) -> steps.Rerank | None:
    """The performance re-ranking of this run, recorded in run.json (None before any import or with --no-perf).
    Test variant k of a batch explores (lifts footage with no data) when k % round(1 / share) == 1: at least one in
    every five variants at the default share, from the second on, so the first stays the best bet."""
    ranker = deps.perf
    if ranker is None or not getattr(ranker, "snapshot_id", None):
        return None
    mode = deps.perf_mode if deps.perf_mode in ("mean", "thompson") else "mean"
    period = max(1, round(1 / deps.settings.perf_explore)) if deps.settings.perf_explore > 0 else 0
    explore = mode == "thompson" and period > 0 and brief.variant % period == min(1, period - 1)
    seed = int(hashlib.sha256(thread_id.encode()).hexdigest()[:8], 16)
    run.ranking = {**ranker.record(mode, seed), "explore": explore}
    return steps.perf_rerank(ranker, mode=mode, seed=seed, explore=explore)


@timed("fetch")
def fetch(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """(Re)choose clips for the dirty slots only; a locked slot keeps what it has."""
    deps = deps_of(runtime)
    run = RunRecord.model_validate(state["run"])
    sb = Storyboard.model_validate(state["storyboard"])
    exclude = {int(k): v for k, v in (state.get("exclude") or {}).items()}
    idx = [i for i in state.get("dirty_fetch") or [] if i < len(sb.slots) and not sb.slots[i].locked]
    if idx:
        rerank = _ranking(deps, sb.brief, run, str(run.thread_id))

        def primary(b: Brain) -> Storyboard:
            return steps.fetch(sb, idx, deps.source, b, run, exclude, rerank)

        sb = _fallback(deps, run, "fetch", primary,
                       lambda: steps.fetch(sb, idx, deps.source, OFFLINE, run, exclude, rerank))
        slots = list(sb.slots)
        for i in idx:
            c = slots[i].chosen
            if c is not None and c.score < deps.min_score:
                run.warn(f"slot {i}: best clip scored {c.score:.2f} < {deps.min_score}; filling the gap")
                slots[i] = slots[i].model_copy(update={"chosen": None, "alternates": []})
        sb = steps.footage_first(sb.model_copy(update={"slots": slots}), idx, run, deps.product(sb.brief))
        if len(sb.slots) != len(slots):  # slots were folded: every line is re-written for its new length
            idx = list(range(len(sb.slots)))
    script_idx = sorted(i for i in set(state.get("dirty_script") or []) | set(idx) if i < len(sb.slots))
    return {"storyboard": sb.model_dump(mode="json"), "dirty_fetch": [], "dirty_script": script_idx,
            "run": run.model_dump(mode="json")}


@timed("script")
def script(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """A line for each dirty slot: the clip's own speech where it serves, else a written line."""
    deps = deps_of(runtime)
    run = RunRecord.model_validate(state["run"])
    sb = Storyboard.model_validate(state["storyboard"])
    idx = list(state.get("dirty_script") or [])
    records = _records(deps, sb)
    product = deps.product(sb.brief)
    assert deps.tools is not None
    hear = deps.tools.hear_clip

    def primary(b: Brain) -> tuple[Storyboard, list[int]]:
        return steps.script(sb, idx, b, run, records, product=product, hear=hear)

    sb2, revoice = _fallback(deps, run, "script", primary,
                             lambda: steps.script(sb, idx, OFFLINE, run, records, product=product, hear=hear))
    # a line the user wrote (a review answer) is voiced too, though nothing re-scripted it
    voice = sorted({i for i in state.get("dirty_voice") or [] if i < len(sb2.slots)} | set(revoice))
    return {"storyboard": sb2.model_dump(mode="json"), "dirty_script": [], "dirty_voice": voice,
            "run": run.model_dump(mode="json")}


@timed("fill_gaps")
def fill_gaps(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Gap policy for slots without footage, then voice and music."""
    deps = deps_of(runtime)
    run = RunRecord.model_validate(state["run"])
    sb = Storyboard.model_validate(state["storyboard"])
    sb = steps.fill_gaps(sb, run, min_score=deps.min_score, product=deps.product(sb.brief), tools=deps.tools,
                         source=deps.source, settings=deps.settings)
    out_dir = Path(state["out_dir"]) / "assets"
    assert deps.tools is not None
    if isinstance(deps.brain, LLMBrain):
        sb = fill_with_tools(deps.brain, deps.tools, deps.source, sb, run, out_dir)
    sb, voice = steps.synth_voice(sb, list(state.get("dirty_voice") or []), _voice(state), deps.tools, out_dir,
                                  run, product=deps.product(sb.brief))
    cur = MusicTrack.model_validate(state["music"]) if state.get("music") else None
    music = steps.make_music(sb, cur, deps.tools, out_dir, run)
    return {"storyboard": sb.model_dump(mode="json"), "dirty_voice": [],
            "voice": {str(k): v.model_dump(mode="json") for k, v in voice.items()},
            "music": music.model_dump(mode="json") if music else None, "run": run.model_dump(mode="json")}


@timed("assemble")
def assemble_node(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Storyboard + voice + music → timeline (code, not the brain, copies every time)."""
    sb = Storyboard.model_validate(state["storyboard"])
    music = MusicTrack.model_validate(state["music"]) if state.get("music") else None
    tl = assemble(sb, _voice(state), music, title=sb.brief.text[:60], previous=_shot_lengths(state, sb))
    return {"timeline": json.loads(tl.to_json())}


def _shot_lengths(state: AgentState, sb: Storyboard) -> list[int] | None:
    """The current cut's shot lengths when this assembly revises it (same shots, same total), else None."""
    prev = state.get("timeline")
    if not prev:
        return None
    items = {int(v["slot"]): int(v["duration_ms"]) for v in prev.get("video", []) if v.get("slot") is not None}
    if sorted(items) != list(range(len(sb.slots))):
        return None
    return [items[i] for i in range(len(sb.slots))]


def _avoid(sb: Storyboard) -> set[ClipFormat]:
    out: set[ClipFormat] = set()
    for a in sb.brief.must_avoid:
        with contextlib.suppress(CutpilotError):
            out.update(parse_formats(a))
    return out


def desk(deps: Deps, sb: Storyboard) -> ShotDesk:
    """What a review answer may ask of the library: a clip by id, a search for one slot, the claims check."""
    avoid = _avoid(sb)
    policy = claims.policy_for(sb, deps.product(sb.brief))

    def search(slot: Slot, exclude: list[str]) -> list[Candidate]:
        hits, _ = steps.search_slot(deps.source, sb, slot, exclude)
        return [h for h in hits if h.relevance >= deps.min_score and h.clip.clip_id not in exclude]

    def check(text: str, where: str) -> tuple[list[str], str]:
        return [h.text for h in policy.violations(text, where)], policy.clean(text)

    return ShotDesk(get=deps.source.get, search=search, usable=lambda rec: steps.usable(rec, avoid),
                    claims=check, min_score=deps.min_score)


def _probe(deps: Deps, sb: Storyboard) -> Callable[[Slot, list[str]], list[Candidate]]:
    return desk(deps, sb).search


def _refused(run: RunRecord, e: Refusal | InputError, record: dict[str, Any]) -> dict[str, Any]:
    if isinstance(e, Refusal):
        row = {"kind": e.kind, **record, "applied": False, "message": e.message, "alternatives": e.alternatives}
    else:
        row = {"kind": "refused", **record, "applied": False, "message": str(e), "alternatives": []}
    run.revisions.append(row)
    return {"approved": False, "answered": True, "run": run.model_dump(mode="json")}


@timed("review")
def review(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Chat mode pauses here with the review payload; the answer (approve, a text revision or a per-shot action)
    is applied or refused at once, with a one-line reason, in run.revisions."""
    if state.get("mode", "batch") != "chat":
        return {"approved": True}
    deps = deps_of(runtime)
    run = RunRecord.model_validate(state["run"])
    sb = Storyboard.model_validate(state["storyboard"])
    payload = review_payload(sb, Timeline.model_validate(state["timeline"]), deps)
    last = run.revisions[-1] if run.revisions else None
    if last and last.get("kind") != "approve":
        payload["answer"] = {k: last.get(k) for k in ("kind", "applied", "message", "alternatives")}
    answer = interrupt(payload)
    action = answer.get("action") if isinstance(answer, dict) else None
    text = str(answer.get("text") or "") if isinstance(answer, dict) else str(answer or "")
    if action == "approve" or (action is None and is_approval(text)):
        run.revisions.append({"kind": "approve", "applied": True})
        return {"approved": True, "run": run.model_dump(mode="json")}
    record: dict[str, Any] = {"text": text}
    try:
        if action is not None:
            assert isinstance(answer, dict)
            record = action_record(answer)
            patch = apply_action(sb, answer, desk(deps, sb))
        else:
            patch = apply_revision(sb, text, _probe(deps, sb))
    except (Refusal, InputError) as e:
        return _refused(run, e, record)
    except CutpilotError as e:  # the library failed to answer (a store error): the thread goes on
        return _refused(run, InputError(e.one_line()), record)
    run.revisions.append({"kind": patch.kind, **record, "applied": True, "message": patch.note,
                          "alternatives": [], "refetch": patch.refetch, "rescript": patch.rescript})
    if not patch.replan:  # nothing to re-plan (a lock): the same plan, with the answer, back to the user
        return {"approved": False, "answered": True, "storyboard": patch.storyboard.model_dump(mode="json"),
                "run": run.model_dump(mode="json")}
    ex = {str(k): v for k, v in (state.get("exclude") or {}).items()}
    for k, v in patch.exclude.items():
        ex[str(k)] = sorted(set(ex.get(str(k), [])) | set(v))
    upd: dict[str, Any] = {
        "approved": False, "answered": False, "storyboard": patch.storyboard.model_dump(mode="json"),
        "dirty_fetch": patch.refetch, "dirty_script": patch.rescript, "dirty_voice": patch.revoice, "exclude": ex,
        "run": run.model_dump(mode="json"),
    }
    if patch.kind == "duration":
        upd["voice"] = {}  # slot indexes moved; re-voice the re-scripted lines
        upd["dirty_script"] = sorted(set(patch.rescript) | {i for i, s in enumerate(patch.storyboard.slots)
                                                            if s.line_source == "voiceover"})
        upd["music"] = None
    return upd


def route_review(state: AgentState) -> str:
    if state.get("approved"):
        return "render"
    if state.get("answered"):  # answered at once: the same storyboard, with the reason, back to the user
        return "review"
    return "fetch"


@timed("render")
def render(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """The whole output set, switched at once (a kill leaves the old set or the new one, never a mix)."""
    deps = deps_of(runtime)
    t0 = time.perf_counter()
    run = RunRecord.model_validate(state["run"])
    out_dir = Path(state["out_dir"])
    tl = Timeline.model_validate(state["timeline"])
    sb = Storyboard.model_validate(state["storyboard"])
    make_ad_file = state.get("render", True)
    with OutputSet(out_dir) as staged:
        outputs = write_outputs(out_dir, sb, tl, staged=staged)
        if make_ad_file:
            assert deps.tools is not None
            res = deps.tools.render(tl, staged.path("ad.mp4"), quality=state.get("quality", "draft"),
                                    cache_dir=deps.settings.home / "render-cache")
            run.record_render(res.model_dump(mode="json") if hasattr(res, "model_dump") else dict(res),
                              str(out_dir / "ad.mp4"))
            outputs["ad"] = str(out_dir / "ad.mp4")
        run.time_node("render", t0)
        outputs["run"] = str(out_dir / "run.json")
        staged.write_text("run.json", run.model_dump_json(indent=2))
        staged.commit(drop=() if make_ad_file else ("ad.mp4",))
    return {"outputs": outputs, "run": run.model_dump(mode="json")}


BODIES: dict[str, Node] = {
    "understand": understand, "storyboard": storyboard, "fetch": fetch, "script": script, "fill_gaps": fill_gaps,
    "assemble": assemble_node, "review": review, "render": render,
}


def _with_default(fn: Node, default: Callable[[], Deps]) -> Node:
    def node(state: AgentState, runtime: Runtime[Deps]) -> dict[str, Any]:
        if not isinstance(runtime.context, Deps):
            runtime = runtime.override(context=default())
        return fn(state, runtime)

    node.__name__ = fn.__name__
    return node


def build_graph(checkpointer: Any = None, *, default_context: Callable[[], Deps] | None = None) -> Any:
    """Compile the planner graph (no collaborators bound: pass `context=Deps(...)` on every invoke / stream).

    `default_context` is for hosts that cannot pass a context (the LangGraph server behind langgraph.json): a run
    that brings none gets the factory's Deps (built on first use, then reused)."""
    made: list[Deps] = []

    def once() -> Deps:
        if not made:
            assert default_context is not None
            made.append(default_context())
        return made[0]

    g: StateGraph[AgentState, Deps] = StateGraph(AgentState, context_schema=Deps)
    for name in NODES:
        fn = BODIES[name] if default_context is None else _with_default(BODIES[name], once)
        action: Any = fn
        g.add_node(name, action)
    g.add_edge(START, "understand")
    g.add_edge("understand", "storyboard")
    g.add_edge("storyboard", "fetch")
    g.add_edge("fetch", "script")
    g.add_edge("script", "fill_gaps")
    g.add_edge("fill_gaps", "assemble")
    g.add_edge("assemble", "review")
    g.add_conditional_edges("review", route_review, {"render": "render", "fetch": "fetch", "review": "review"})
    g.add_edge("render", END)
    return g.compile(checkpointer=checkpointer)


ALTERNATE_CLIPS = (3, 5)  # how many alternates a review row offers (fewer only when the library has no more)


def alternate_clips(deps: Deps, sb: Storyboard, s: Slot,
                    search: Callable[[Slot, list[str]], list[Candidate]] | None = None) -> list[dict[str, Any]]:
    """3–5 clips the reviewer could swap in: the slot's retrieved alternates, topped up by a search for the slot
    (never a clip another slot shows)."""
    held = {o.chosen.clip_id for o in sb.slots if o.chosen is not None}
    picks: list[ClipChoice] = [a for a in s.alternates if a.clip_id not in held]
    if len(picks) < ALTERNATE_CLIPS[0]:
        seen = held | {a.clip_id for a in picks}
        with contextlib.suppress(CutpilotError):
            for h in (search or _probe(deps, sb))(s, sorted(seen)):
                if len(picks) >= ALTERNATE_CLIPS[1]:
                    break
                if h.clip.clip_id not in seen:
                    picks.append(steps.choice_from(h.clip, h.relevance))
                    seen.add(h.clip.clip_id)
    out = []
    for c in picks[:ALTERNATE_CLIPS[1]]:
        try:
            description = deps.source.get(c.clip_id).description
        except CutpilotError:
            continue
        out.append({"clip_id": c.clip_id, "thumbnail": c.thumbnail, "source": c.source, "start": c.start,
                    "end": c.end, "score": c.score, "description": description})
    return out


def review_payload(sb: Storyboard, tl: Timeline, deps: Deps | None = None) -> dict[str, Any]:
    """What the reviewer sees: one row per slot (role, clip id, thumbnail, line, seconds, lock, alternates)."""
    by_slot = {v.slot: v for v in tl.video}
    search = _probe(deps, sb) if deps is not None else None
    rows = []
    for s in sb.slots:
        v = by_slot.get(s.index)
        rows.append({
            "shot": s.index + 1, "role": s.role.value,
            "clip_id": s.chosen.clip_id if s.chosen else None,
            "asset": s.asset.kind if s.asset else None,
            "thumbnail": s.chosen.thumbnail if s.chosen else None,
            "line": s.line, "line_source": s.line_source, "overlay": s.overlay,
            "alternates": [a.clip_id for a in s.alternates],
            "alternate_clips": alternate_clips(deps, sb, s, search) if deps is not None else [],
            "locked": s.locked,
            "seconds": round(v.duration_ms / 1000, 2) if v else s.target_s,
        })
    return {"kind": "review", "total_s": tl.duration_ms / 1000, "music": sb.music_mood,
            "captions_lang": sb.captions_lang, "slots": rows,
            "hint": "approve, or revise: 'replace shot 3 with a livestream clip', '把第3个镜头换成产品画面', "
                    "'swap the hook', 'use real footage instead of the cards', 'shorter lines', "
                    "'name the product in the hook', 'make it 15 s', '英文字幕', 'more energetic music'; "
                    "or act on one shot (slot is 0-based): {\"action\": \"swap\", \"slot\": 1, \"clip_id\": …}, "
                    "{\"action\": \"lock\", \"slot\": 1, \"locked\": true}, "
                    "{\"action\": \"line\", \"slot\": 1, \"text\": …}, {\"action\": \"research\", \"slot\": 1, "
                    "\"text\": …}"}


def write_outputs(out_dir: Path, sb: Storyboard, tl: Timeline, staged: OutputSet | None = None) -> dict[str, str]:
    """storyboard.json, timeline.json, captions.srt, timeline.otio (ad.mp4 and run.json come from the render node).

    Staged into `staged` (the caller commits the whole set), or, alone, written and switched as one set."""
    own = staged is None
    with OutputSet(out_dir) if staged is None else contextlib.nullcontext(staged) as out:
        out.write_text("storyboard.json", sb.model_dump_json(indent=2))
        tl.save(out.path("timeline.json"))
        out.write_text("captions.srt", tl.to_srt())
        tl.write_otio(out.path("timeline.otio"))
        if own:
            out.commit()
    return {k: str(out_dir / f) for k, f in (("storyboard", "storyboard.json"), ("timeline", "timeline.json"),
                                             ("captions", "captions.srt"), ("otio", "timeline.otio"))}


def open_checkpointer(settings: Settings) -> Any:
    """The persistent checkpointer: SQLite under CUTPILOT_HOME, or Postgres at CUTPILOT_CHECKPOINT_URL."""
    from cutpilot.checkpoints import open_checkpointer as open_store

    return open_store(settings)


def _enforce_explicit(brief: Brief, parsed: Brief, text: str, run: RunRecord) -> Brief:
    """A model's brief keeps the facts the request states outright (length, aspect, platform, formats, product,
    language), as the deterministic parse reads them; each disagreement is recorded in run.json."""
    facts = explicit_facts(text) if text.strip() else {}
    if parsed.product:
        facts["product"] = parsed.product
    fixes: dict[str, Any] = {}
    for key, want in facts.items():
        got = getattr(brief, key)
        got_cmp = [f.value for f in got] if key == "formats" else got
        if got_cmp != want:
            run.brief_disagreements.append({"field": key, "model": got_cmp, "text": want})
            fixes[key] = want
    return brief.model_copy(update=fixes) if not fixes else Brief.model_validate({**brief.model_dump(), **fixes})
