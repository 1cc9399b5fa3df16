"""The planner graph: understand → storyboard → fetch → script → fill_gaps → assemble → review → render.

State holds only JSON payloads and paths (agent.state); everything live (library, brains, tools, settings) is
bound in by `build_graph(deps)`, so a fresh process can resume any thread from the sqlite checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
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

from agent import rules, steps
from agent.assemble import assemble
from agent.brain.base import Brain
from agent.brain.llm import GAP_ANSWER, GAP_TOOLS, MAX_GAP_ROUNDS, GapSession, LLMBrain
from agent.brain.offline import OfflineBrain
from agent.brief import explicit_facts
from agent.mediatools import Card, MediaTools, Motion, ToolContext
from agent.revise import Refusal, apply_revision, is_approval
from agent.rules import MIN_SCORE
from agent.runrecord import RunRecord
from agent.sources import ClipSource
from agent.state import AgentState, Candidate, MusicTrack, VoiceTrack
from agent.toolbox import Toolbox
from cutpilot.atomic import OutputSet
from cutpilot.errors import CutpilotError, InputError, ProviderError, ToolError
from cutpilot.models import ClipRecord
from cutpilot.products import Product, ProductBook
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief, GeneratedAsset, Slot, SlotRole, Storyboard
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


def build_graph(deps: Deps, checkpointer: Any = None) -> Any:
    """Compile the StateGraph with the given collaborators and (optional) checkpointer."""
    offline = OfflineBrain()

    def timed(name: str, fn: Callable[[AgentState], dict[str, Any]]) -> Callable[[AgentState], dict[str, Any]]:
        def node(state: AgentState) -> dict[str, Any]:
            t0 = time.perf_counter()
            out = fn(state)
            run = RunRecord.model_validate(out.get("run", state["run"]))
            if name != "render":
                run.time_node(name, t0)
            out["run"] = run.model_dump(mode="json")
            return out

        node.__name__ = name
        return node

    def understand(state: AgentState) -> dict[str, Any]:
        run = RunRecord.model_validate(state["run"])
        base = Brief.model_validate(state["brief"]) if state.get("brief") else None
        text = state.get("request") or ""
        if not text and base is not None:
            brief = base
        else:
            products = deps.source.products()
            parsed = offline.understand(text, products, run, base=base, book=deps.products)
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

    def storyboard(state: AgentState) -> dict[str, Any]:
        run = RunRecord.model_validate(state["run"])
        brief = Brief.model_validate(state["brief"])
        sb = _fallback(deps, run, "storyboard", lambda b: b.storyboard(brief, run),
                       lambda: offline.storyboard(brief, run))
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

    def fetch(state: AgentState) -> dict[str, Any]:
        run = RunRecord.model_validate(state["run"])
        sb = Storyboard.model_validate(state["storyboard"])
        exclude = {int(k): v for k, v in (state.get("exclude") or {}).items()}
        idx = list(state.get("dirty_fetch") or [])
        if idx:
            def primary(b: Brain) -> Storyboard:
                return steps.fetch(sb, idx, deps.source, b, run, exclude)

            sb = _fallback(deps, run, "fetch", primary,
                           lambda: steps.fetch(sb, idx, deps.source, offline, run, exclude))
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

    def script(state: AgentState) -> dict[str, Any]:
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
                                 lambda: steps.script(sb, idx, offline, run, records, product=product, hear=hear))
        return {"storyboard": sb2.model_dump(mode="json"), "dirty_script": [], "dirty_voice": revoice,
                "run": run.model_dump(mode="json")}

    def fill_gaps(state: AgentState) -> dict[str, Any]:
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

    def assemble_node(state: AgentState) -> dict[str, Any]:
        sb = Storyboard.model_validate(state["storyboard"])
        music = MusicTrack.model_validate(state["music"]) if state.get("music") else None
        tl = assemble(sb, _voice(state), music, title=sb.brief.text[:60])
        return {"timeline": json.loads(tl.to_json())}

    def probe(sb: Storyboard) -> Callable[[Slot, list[str]], list[Candidate]]:
        def run_probe(slot: Slot, exclude: list[str]) -> list[Candidate]:
            hits, _ = steps.search_slot(deps.source, sb, slot, exclude)
            return [h for h in hits if h.relevance >= deps.min_score and h.clip.clip_id not in exclude]

        return run_probe

    def review(state: AgentState) -> dict[str, Any]:
        run = RunRecord.model_validate(state["run"])
        if state.get("mode", "batch") != "chat":
            return {"approved": True}
        sb = Storyboard.model_validate(state["storyboard"])
        payload = review_payload(sb, Timeline.model_validate(state["timeline"]))
        last = run.revisions[-1] if run.revisions else None
        if last and last.get("kind") != "approve":
            payload["answer"] = {k: last.get(k) for k in ("kind", "applied", "message", "alternatives")}
        answer = interrupt(payload)
        text = answer.get("text", "") if isinstance(answer, dict) else str(answer or "")
        if (isinstance(answer, dict) and answer.get("action") == "approve") or is_approval(text):
            run.revisions.append({"kind": "approve", "applied": True})
            return {"approved": True, "run": run.model_dump(mode="json")}
        try:
            patch = apply_revision(sb, text, probe(sb))
        except Refusal as e:
            run.revisions.append({"kind": e.kind, "text": text, "applied": False, "message": e.message,
                                  "alternatives": e.alternatives})
            return {"approved": False, "answered": True, "run": run.model_dump(mode="json")}
        except InputError as e:
            run.revisions.append({"kind": "refused", "text": text, "applied": False, "message": str(e),
                                  "alternatives": []})
            return {"approved": False, "answered": True, "run": run.model_dump(mode="json")}
        run.revisions.append({"kind": patch.kind, "text": text, "applied": True, "message": patch.note,
                              "refetch": patch.refetch, "rescript": patch.rescript})
        ex = {str(k): v for k, v in (state.get("exclude") or {}).items()}
        for k, v in patch.exclude.items():
            ex[str(k)] = sorted(set(ex.get(str(k), [])) | set(v))
        upd: dict[str, Any] = {
            "approved": False, "answered": False, "storyboard": patch.storyboard.model_dump(mode="json"),
            "dirty_fetch": patch.refetch, "dirty_script": patch.rescript, "exclude": ex,
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
        if state.get("answered"):  # refused at once: the same storyboard, with the reason, back to the user
            return "review"
        return "fetch"

    def render(state: AgentState) -> dict[str, Any]:
        t0 = time.perf_counter()
        run = RunRecord.model_validate(state["run"])
        out_dir = Path(state["out_dir"])
        tl = Timeline.model_validate(state["timeline"])
        sb = Storyboard.model_validate(state["storyboard"])
        make_ad_file = state.get("render", True)
        with OutputSet(out_dir) as staged:  # the whole set is switched at once: a kill leaves the old set or this
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

    g: StateGraph[Any] = StateGraph(AgentState)
    bodies: dict[str, Callable[[AgentState], dict[str, Any]]] = {
        "understand": understand, "storyboard": storyboard, "fetch": fetch, "script": script,
        "fill_gaps": fill_gaps, "assemble": assemble_node, "review": review, "render": render,
    }
    for name in NODES:
        action: Any = timed(name, bodies[name])
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


def review_payload(sb: Storyboard, tl: Timeline) -> dict[str, Any]:
    """What the reviewer sees: one row per slot (role, clip id, thumbnail, line, seconds)."""
    by_slot = {v.slot: v for v in tl.video}
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
            "seconds": round(v.duration_ms / 1000, 2) if v else s.target_s,
        })
    return {"kind": "review", "total_s": tl.duration_ms / 1000, "music": sb.music_mood,
            "captions_lang": sb.captions_lang, "slots": rows,
            "hint": "approve, or revise: 'replace shot 3 with a livestream clip', '把第3个镜头换成产品画面', "
                    "'swap the hook', 'use real footage instead of the cards', 'shorter lines', "
                    "'name the product in the hook', 'make it 15 s', '英文字幕', 'more energetic music'"}


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
    """The persistent sqlite checkpointer under CUTPILOT_HOME (one file for all threads)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(str(settings.path("checkpoints.sqlite")), check_same_thread=False)
    return SqliteSaver(conn)


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
