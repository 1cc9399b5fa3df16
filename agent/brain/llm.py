"""The LLM planner: structured outputs (pydantic, via tool calling) for brief, storyboard and script, and a small
tool loop (search_clips → choose_clips) for clip selection, over any OpenAI-compatible endpoint (cutpilot.llm).

The model only decides: it names clip ids from candidates it was shown; code copies times and paths, enforces the
hook / CTA / budget invariants, and any provider failure raises ProviderError so the graph falls back offline.

Every step runs under a budget (STEP_BUDGETS): a token cap on each call and one wall-clock allowance for the whole
step (every call, transport retry and repair round of it). Each call is logged in `run.llm_steps` (step, wall_s,
tokens_in, tokens_out, ok, error) and counted in `run.llm_calls`. Answers are read leniently: a tool call, or JSON
in the message text (fenced or not); near-misses (a 0-second slot, a missing hook, a duplicate clip) are repaired
in code; an answer that cannot be used is shown to the model with its error ONCE, then the step falls back.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import prompts
from agent.brain.offline import pick_best
from agent.brief import ANGLES, PLATFORM_ASPECT, angle_family, explicit_facts, match_product
from agent.mediatools import Card, ClipHit, GeneratedClip, Motion
from agent.rules import CJK, budget, is_injection, speech_units, trim_to_budget
from agent.runrecord import RunRecord
from agent.sources import ClipSource
from agent.state import Candidate
from agent.templates import ROLE_INTENT, hook_family, plan_storyboard, slot_query
from cutpilot.errors import CutpilotError, ProviderError
from cutpilot.llm import CallResult, invoke_chat, tool_args
from cutpilot.models import ClipFormat, parse_formats
from cutpilot.settings import Settings
from cutpilot.storyboard import ROLE_CONTENT_TYPES, Brief, Slot, SlotRole, Storyboard

MAX_TOOL_ROUNDS = 3
MAX_SLOTS = 12
MIN_SLOT_S = 1.5  # a storyboard slot shorter than this after rescaling is dropped (too short to show anything)
MIN_CALL_S = 0.5  # don't start a call with less than this left of the step's wall budget
CARDS_PER_SLOT = 4  # candidates shown per slot in the select prompt (a search adds more)
CARD_TEXT = 48  # characters of transcript / description shown per candidate (prompt tokens are the cost)


@dataclass(frozen=True)
class StepBudget:
    """max_tokens caps every call of the step; wall_s bounds the whole step (calls, retries, the repair round)."""

    max_tokens: int
    wall_s: float


# Sized for a 0.5B model on two shared CPU cores (see BENCHMARKS.md "LLM planner (live)"); a hosted model uses a
# fraction of each. A step that runs out falls back to the offline planner for that step only.
STEP_BUDGETS: dict[str, StepBudget] = {
    "understand": StepBudget(max_tokens=256, wall_s=60.0),
    "storyboard": StepBudget(max_tokens=640, wall_s=90.0),
    "select": StepBudget(max_tokens=512, wall_s=120.0),
    "script": StepBudget(max_tokens=640, wall_s=90.0),
    "gaps": StepBudget(max_tokens=384, wall_s=120.0),  # model calls and the media tools they run
}

ROLE_SYNONYMS: dict[str, SlotRole] = {
    "cta": SlotRole.offer_cta, "offer": SlotRole.offer_cta, "call_to_action": SlotRole.offer_cta,
    "intro": SlotRole.product_intro, "product": SlotRole.product_intro, "demo": SlotRole.feature_demo,
    "feature": SlotRole.feature_demo, "pain": SlotRole.pain_point, "problem": SlotRole.pain_point,
    "testimonial": SlotRole.social_proof, "review": SlotRole.social_proof, "proof": SlotRole.social_proof,
    "brand_story": SlotRole.brand, "presenter": SlotRole.spokesperson, "opening": SlotRole.hook,
}
MOODS = ("upbeat", "energetic", "calm", "premium", "fun")


# --- structured outputs --------------------------------------------------------------------------------------
# The JSON schemas the model sees are strict (enums, numbers); validation is lenient (near-misses are coerced here
# and repaired in code), so one odd field never throws the whole answer away.
def _num(v: Any) -> Any:
    if isinstance(v, str):
        m = re.search(r"-?\d+(?:\.\d+)?", v)
        return float(m.group(0)) if m else None
    return v


def _str_list(v: Any) -> Any:
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in re.split(r"[,，、;；]", v) if x.strip()]
    return v


class BriefDraft(BaseModel):
    """The brief as the model understands it."""

    product: str | None = None
    angle: str | None = Field(default=None, json_schema_extra={"maxLength": 40})
    angle_family: Literal["pain", "benefit", "fun", "curiosity", "offer"] | None = None
    duration_s: float = 30.0
    aspect: Literal["9:16", "1:1", "4:5", "16:9"] = "9:16"
    platform: str | None = Field(default=None, json_schema_extra={"maxLength": 40})
    lang: Literal["zh", "en"] = "zh"
    audience: str | None = Field(default=None, json_schema_extra={"maxLength": 40})
    tone: str | None = Field(default=None, json_schema_extra={"maxLength": 40})
    must_include: list[str] = Field(default_factory=list, json_schema_extra={"maxItems": 3})
    must_avoid: list[str] = Field(default_factory=list, json_schema_extra={"maxItems": 3})
    formats: list[str] = Field(default_factory=list, json_schema_extra={
        "items": {"enum": [f.value for f in ClipFormat]}, "maxItems": 2,
        "description": "only the formats the request names; usually []"})

    @field_validator("product", "angle", "platform", "audience", "tone", mode="before")
    @classmethod
    def _opt_text(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip().lower() in ("", "null", "none", "n/a")):
            return None
        return v if isinstance(v, str) else str(v)

    @field_validator("angle_family", mode="before")
    @classmethod
    def _family(cls, v: Any) -> Any:
        v = str(v).strip().lower() if v is not None else None
        return v if v in ("pain", "benefit", "fun", "curiosity", "offer") else None

    @field_validator("duration_s", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        v = _num(v)
        return 30.0 if v is None else v

    @field_validator("aspect", mode="before")
    @classmethod
    def _aspect(cls, v: Any) -> Any:
        s = str(v or "").strip().lower().replace("：", ":").replace("x", ":").replace("/", ":").replace(" ", "")
        if s in ("9:16", "1:1", "4:5", "16:9"):
            return s
        return PLATFORM_ASPECT.get(s, "9:16")

    @field_validator("lang", mode="before")
    @classmethod
    def _lang(cls, v: Any) -> Any:
        s = str(v or "").strip().lower()
        if s.startswith(("en", "英")):
            return "en"
        return "zh"

    @field_validator("must_include", "must_avoid", "formats", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _str_list(v)


class SlotDraft(BaseModel):
    # role and length are asked for on the wire (a constrained model then always writes one); validation is lenient
    model_config = ConfigDict(json_schema_extra={"required": ["role", "seconds"]})

    role: str = Field(json_schema_extra={"enum": [r.value for r in SlotRole]})
    seconds: Any = Field(default=None, json_schema_extra={"type": "number", "description": "> 0"})
    query: str = ""
    intent: str = ""

    @field_validator("query", "intent", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return "" if v is None else str(v)


class StoryboardDraft(BaseModel):
    """Ordered slots; hook first, offer_cta last."""

    slots: list[SlotDraft] = Field(min_length=1)
    music_mood: str = Field(default="upbeat", json_schema_extra={"enum": list(MOODS)})

    @field_validator("music_mood", mode="before")
    @classmethod
    def _mood(cls, v: Any) -> Any:
        return str(v or "upbeat")


class Line(BaseModel):
    slot: int
    line: str

    @field_validator("line", mode="before")
    @classmethod
    def _line(cls, v: Any) -> Any:
        return "" if v is None else str(v)


class Script(BaseModel):
    """One line per requested slot."""

    lines: list[Line]


class search_clips(BaseModel):
    """Search the clip library for more candidates for one slot."""

    slot: int = Field(description="slot number as listed")
    query: str = Field(description="what to look for")


class Choice(BaseModel):
    slot: int
    clip_id: str | None = None


class choose_clips(BaseModel):
    """Final answer: one clip id (or null) per slot."""

    choices: list[Choice]


def compact_tool(schema: type[BaseModel]) -> dict[str, Any]:
    """An OpenAI tool dict for `schema` without pydantic's titles and defaults (prompt tokens a small local model
    pays for on every call); the constraints stay."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            # annotations, not property names: a property called "title" has a schema (a dict) as its value
            return {k: strip(v) for k, v in node.items() if k not in ("title", "default") or isinstance(v, dict)}
        if isinstance(node, list):
            return [strip(x) for x in node]
        return node

    params = strip(schema.model_json_schema())
    return {"type": "function", "function": {"name": schema.__name__, "description": (schema.__doc__ or "").strip(),
                                             "parameters": params}}


class _Unusable(Exception):
    """An answer that parsed but cannot be used; its message goes back to the model once."""


# --- the brain ------------------------------------------------------------------------------------------------
class _Clock:
    def __init__(self, step: str, spec: StepBudget) -> None:
        self.step, self.spec, self.t0 = step, spec, time.perf_counter()

    def left(self) -> float:
        return self.spec.wall_s - (time.perf_counter() - self.t0)


class LLMBrain:
    """Brain over a LangChain chat model (ChatOpenAI from cutpilot.llm, or a scripted model in tests)."""

    name = "llm"

    def __init__(self, model: Any, *, model_name: str | None = None, retries: int = 1,
                 call_timeout_s: float | None = None, budgets: dict[str, StepBudget] | None = None) -> None:
        self.chat = model
        self.model = model_name or getattr(model, "model_name", None) or type(model).__name__
        self.retries = retries  # transport retries per call, while the step's wall budget lasts
        self.call_timeout_s = call_timeout_s  # one request's timeout (settings.llm_timeout_s); the step may cut it
        self.budgets = {**STEP_BUDGETS, **(budgets or {})}

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMBrain:
        from cutpilot.llm import chat_model

        # the brain retries (and keeps the wall budget); the HTTP client does not retry on its own
        return cls(chat_model(settings, max_retries=0), model_name=settings.llm_model, retries=settings.llm_retries,
                   call_timeout_s=settings.llm_timeout_s)

    def _messages(self, user: str) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        return [SystemMessage(prompts.read("planner/system.md")), HumanMessage(user)]

    # -- one call, bounded and logged
    def _call(self, clock: _Clock, messages: list[Any], run: RunRecord, *, tools: list[Any],
              tool_choice: str | None) -> tuple[CallResult, dict[str, Any]]:
        """One model call under the step's budget; transport failures are retried while the budget lasts."""
        last: ProviderError | None = None
        for _ in range(1 + max(0, self.retries)):
            left = clock.left()
            if left < MIN_CALL_S:
                break
            timeout = min(left, self.call_timeout_s) if self.call_timeout_s else left
            rec: dict[str, Any] = {"step": clock.step, "wall_s": 0.0, "tokens_in": None, "tokens_out": None,
                                   "ok": False, "error": None, "max_tokens": clock.spec.max_tokens,
                                   "timeout_s": round(timeout, 2)}
            run.llm_calls += 1
            steps = getattr(run, "llm_steps", None)
            if isinstance(steps, list):
                steps.append(rec)
            t0 = time.perf_counter()
            try:
                res = invoke_chat(self.chat, messages, tools=tools, tool_choice=tool_choice,
                                  max_tokens=clock.spec.max_tokens, timeout_s=timeout)
            except ProviderError as e:
                rec.update(wall_s=round(time.perf_counter() - t0, 3), error=e.one_line()[:200])
                last = e
                continue
            rec.update(wall_s=round(res.wall_s, 3), tokens_in=res.tokens_in, tokens_out=res.tokens_out, ok=True)
            if clock.left() < 0:  # the answer came, but after the step's time was up
                rec.update(ok=False, error=f"over the {clock.step} wall budget of {clock.spec.wall_s:g} s")
                raise ProviderError(f"LLM {clock.step}: answer came after the step's wall budget of "
                                    f"{clock.spec.wall_s:g} s")
            return res, rec
        spent = f"the step's wall budget of {clock.spec.wall_s:g} s is spent"
        raise ProviderError(f"LLM {clock.step} failed: {last.one_line() if last else spent}"
                            + (f"; {spent}" if last and clock.left() < MIN_CALL_S else ""))

    def _ask(self, step: str, schema: type[BaseModel], user: str, run: RunRecord,
             use: Callable[[Any], tuple[Any, list[str]]] | None = None, *, tool: dict[str, Any] | None = None,
             prepare: Callable[[Any], Any] | None = None) -> Any:
        """A structured answer: the tool is forced, JSON in the message text is accepted too. `tool` (an OpenAI
        tool dict named like `schema`) replaces the schema's own JSON schema when the step builds a tighter one per
        call; `prepare(args)` maps that form back onto `schema`. `use(obj)` turns the validated object into the
        step's result and lists what is still wrong with it; an unparseable, invalid or faulty answer is shown to
        the model with its errors once. After that, a faulty-but-usable result is returned as it is (the caller and
        agent.steps deal with it) and an unusable one raises ProviderError."""
        from langchain_core.messages import AIMessage, HumanMessage

        clock = _Clock(step, self.budgets[step])
        messages = self._messages(user)
        name = schema.__name__
        kept: tuple[Any, list[str]] | None = None  # the last usable (if faulty) result
        problems: list[str] = []
        for attempt in range(2):
            try:
                res, rec = self._call(clock, messages, run, tools=[tool or schema], tool_choice=name)
            except ProviderError:
                if kept is None:
                    raise
                break  # the correction round failed in transport or time: keep the first, faulty answer
            args, err, how = tool_args(res.message, name)
            problems = []
            result: Any = None
            usable = False
            if args is None:
                problems = [err or "no answer"]
            else:
                try:
                    obj = schema.model_validate(prepare(args) if prepare else args)
                    result, problems = use(obj) if use else (obj, [])
                    usable = True
                except ValidationError as e:
                    problems = [_brief_errors(e)]
                except (_Unusable, CutpilotError) as e:
                    problems = [str(e)]
            if how in ("content", "truncated"):
                rec["answer_in"] = how
            if how == "truncated" and args is not None:
                run.warn(f"{step}: the model's answer was cut off at {clock.spec.max_tokens} tokens; its complete "
                         "part was used")
            if not problems:
                return result
            rec["problems"] = [p[:160] for p in problems[:6]]
            if usable:
                kept = (result, problems)
            else:
                rec.update(ok=False, error=problems[0][:200])
            if attempt == 1:
                break
            raw = json.dumps(args, ensure_ascii=False) if args is not None else str(res.message.content or "")
            messages = [*messages, AIMessage(content=raw[:2000]), HumanMessage(
                f"That answer cannot be used: {'; '.join(problems)[:1200]}. Call the {name} tool again with the "
                f"whole corrected answer.")]
        if kept is not None:
            run.warn(f"{step}: the model's answer still had problems after one correction "
                     f"({'; '.join(kept[1])[:160]}); code handles them")
            return kept[0]
        raise ProviderError(f"LLM {step}: no usable {name} after one correction: {problems[0][:200]}")

    # -- understand
    def understand(self, text: str, products: list[str], run: RunRecord, base: Brief | None = None) -> Brief:
        facts = explicit_facts(text) if text.strip() else {}
        user = prompts.read("planner/brief.md").format(products=json.dumps(products, ensure_ascii=False),
                                                       facts=json.dumps(facts, ensure_ascii=False), request=text)

        def use(d: BriefDraft) -> tuple[Brief, list[str]]:
            fmts: list[ClipFormat] = []
            for f in d.formats:
                try:
                    fmts += [x for x in parse_formats(f) if x not in fmts]
                except CutpilotError:
                    run.warn(f"LLM brief named an unknown footage format {f!r}; ignored")
            if fmts and text.strip() and "formats" not in facts:  # a format filter the request never asked for
                run.warn(f"LLM brief restricted footage to {[f.value for f in fmts]}, which the request does not "
                         "name; dropped")
                fmts = []
            product = d.product if d.product in products else None
            if d.product and product is None:
                product = match_product(d.product, products)
                if product is None:
                    run.warn(f"LLM named product {d.product!r}, which the library does not have; ignored")
            fam = d.angle_family or angle_family(text)
            return Brief(text=text, product=product, angle=d.angle, angle_family=fam,
                         duration_s=min(180, max(3, d.duration_s)), aspect=d.aspect, platform=d.platform,
                         lang=d.lang, audience=d.audience, tone=d.tone, must_include=d.must_include,
                         must_avoid=d.must_avoid, formats=fmts), []

        brief: Brief = self._ask("understand", BriefDraft, user, run, use, tool=compact_tool(BriefDraft))
        return brief

    # -- storyboard
    def storyboard(self, brief: Brief, run: RunRecord) -> Storyboard:
        """The brief it is given is final (the graph has enforced the request's explicit facts): length, formats
        and product come from it, never from the model's plan."""
        plan = plan_storyboard(brief)
        typical = [{"role": s.role.value, "seconds": s.target_s} for s in plan.slots]
        norms = "; ".join(plan.notes) + (f"; suggested music_mood: {plan.music_mood}" if plan.notes else "")
        user = prompts.read("planner/storyboard.md").format(
            norms=norms or "none given", duration_s=f"{brief.duration_s:g}", n_slots=len(typical),
            typical=json.dumps(typical, ensure_ascii=False), brief=brief.model_dump_json(exclude={"text"}))

        def use(d: StoryboardDraft) -> tuple[Storyboard, list[str]]:
            return normalise_storyboard(brief, d, run), []

        sb: Storyboard = self._ask("storyboard", StoryboardDraft, user, run, use,
                                   tool=compact_tool(StoryboardDraft))
        return sb

    # -- select
    def select(self, storyboard: Storyboard, candidates: dict[int, list[Candidate]], source: ClipSource,
               used: set[str], run: RunRecord) -> dict[int, str | None]:
        """Clip ids per slot from the candidates shown. The model sees each clip under a short alias (c1, c2, ...)
        and the final answer's schema lists, per slot, only that slot's aliases (so a grammar-constrained model
        cannot invent one); code maps them back. Clips a search_clips call finds are appended to
        `candidates[slot]` in place, so the caller can resolve every id the model may name."""
        from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

        pools = candidates
        order = sorted(pools)
        alias = _Aliases()
        shown = {i: [alias.of(c.clip.clip_id) for c in pools[i][:CARDS_PER_SLOT]] for i in order}
        listing = [{"slot": i, "role": storyboard.slots[i].role.value, "seconds": storyboard.slots[i].target_s,
                    "intent": storyboard.slots[i].intent,
                    "candidates": [_card(c, alias) for c in pools[i][:CARDS_PER_SLOT]]} for i in order]
        messages = self._messages(prompts.read("planner/select.md").format(
            slots=json.dumps(listing, ensure_ascii=False)))
        clock = _Clock("select", self.budgets["select"])
        corrected = False
        force = False
        for rnd in range(MAX_TOOL_ROUNDS + 1):
            choice = "choose_clips" if force or rnd == MAX_TOOL_ROUNDS else "auto"
            tools = [search_clips, _choose_tool(storyboard, order, shown)]
            res, rec = self._call(clock, messages, run, tools=tools, tool_choice=choice)
            ai = res.message
            calls = list(getattr(ai, "tool_calls", None) or [])
            if not calls:  # prose or JSON in the text instead of a tool call
                args, err, _ = tool_args(ai, "choose_clips")
                picks = _coerce_choices(args, order, alias)
                if picks is not None:
                    rec["answer_in"] = "content"
                    return self._repair_choices(storyboard, picks, pools, used, run)
                named = _NAMED_TOOL.match(str(ai.content or ""))
                if named and named.group(1) == "choose_clips" and not force:
                    # it named the tool but sent no arguments (llama-cpp-python's "auto" mode does this): ask
                    # for that tool outright; this is not a correction
                    rec.update(ok=False, error="named choose_clips without arguments; forced next")
                    force = True
                    continue
                problem = err or "no tool call"
                rec.update(ok=False, error=f"no tool call: {problem}"[:200])
                if corrected:
                    raise ProviderError(f"LLM clip selection returned no usable choice after one correction: "
                                        f"{problem[:160]}")
                corrected = force = True
                messages = [*messages, AIMessage(content=str(ai.content or "")[:1000]), HumanMessage(
                    "That reply called no tool. Call choose_clips now: for every slot, one clip_id from that "
                    "slot's candidates above, or null.")]
                continue
            messages.append(ai)
            retry = False
            for call in calls:
                if call["name"] == "choose_clips" and not retry:
                    picks = _coerce_choices(call["args"], order, alias)
                    if picks is not None:
                        return self._repair_choices(storyboard, picks, pools, used, run)
                    problem = f"choose_clips arguments invalid: {json.dumps(call['args'], ensure_ascii=False)[:160]}"
                    rec.update(ok=False, error=problem[:200])
                    if corrected:
                        raise ProviderError(f"LLM {problem} after one correction")
                    corrected = force = retry = True
                    messages.append(ToolMessage(content=f"error: {problem}. Call choose_clips again: for every "
                                                "slot, one clip_id from that slot's candidates, or null.",
                                                tool_call_id=call["id"]))
                elif call["name"] == "search_clips" and not retry:
                    try:
                        q = search_clips.model_validate(call["args"])
                    except ValidationError as e:
                        messages.append(ToolMessage(content=f"error: {_brief_errors(e)}", tool_call_id=call["id"]))
                        continue
                    found: list[Candidate] = []
                    if q.slot in pools:
                        s = storyboard.slots[q.slot]
                        found = source.find(q.query, content_types=list(s.content_types), formats=list(s.formats),
                                            product=s.product, exclude_ids=sorted(used), limit=6)
                        have = {c.clip.clip_id for c in pools[q.slot]}
                        found = [c for c in found if c.clip.clip_id not in have]
                        pools[q.slot] += found
                        shown[q.slot] += [alias.of(c.clip.clip_id) for c in found]
                    payload = {"slot": q.slot, "candidates": [_card(c, alias) for c in found]}
                    messages.append(ToolMessage(content="<clip_data>" + json.dumps(payload, ensure_ascii=False)
                                                + "</clip_data>", tool_call_id=call["id"]))
                else:
                    messages.append(ToolMessage(content=f"unknown tool {call['name']}" if not retry else "skipped",
                                                tool_call_id=call["id"]))
        raise ProviderError("LLM clip selection did not finish within the tool-call budget")

    def _repair_choices(self, storyboard: Storyboard, picks: dict[int, str | None],
                        pools: dict[int, list[Candidate]], used: set[str], run: RunRecord) -> dict[int, str | None]:
        """Near-misses in a selection: a clip the model gave two slots goes to the first (product / proof slots
        before the hook, as offline) and the other gets its best unused candidate (the offline rule), as does a
        slot given another slot's candidate. A null or a
        slot left out stays a gap (the program fills it); an id that is no candidate is passed on (agent.steps
        ignores it and fills the gap) so invented ids never reach the timeline."""
        out: dict[int, str | None] = {}
        taken = set(used)
        missing = [i for i in sorted(pools) if i not in picks]
        if missing:
            run.warn(f"the model chose nothing for slot(s) {', '.join(map(str, missing))}; gaps filled by the program")
        elsewhere = {c.clip.clip_id for cs in pools.values() for c in cs}
        for i in sorted(pools, key=lambda k: (storyboard.slots[k].role == SlotRole.hook, k)):
            ids = {c.clip.clip_id for c in pools[i]}
            cid = picks.get(i)
            if cid is not None and ((cid in ids and cid in taken) or (cid not in ids and cid in elsewhere)):
                alt = pick_best(pools[i], taken, storyboard.slots[i].target_s)
                why = "gave clip {} to two slots" if cid in ids else "chose clip {}, a candidate of another slot"
                run.warn(f"slot {i}: the model {why.format(cid)}; " + (f"using {alt}" if alt else "leaving a gap"))
                cid = alt
            out[i] = cid
            if cid:
                taken.add(cid)
        return out

    # -- script
    def script(self, storyboard: Storyboard, slots: list[int], run: RunRecord, *, product: Any = None
               ) -> dict[int, str]:
        """One line per slot, in the ad's language. The answer's schema gives each slot a string pattern in that
        language and about its length (a grammar-constrained model cannot write a Chinese line for an English ad);
        a model that ignores it gets the language / length errors back once; lines over budget are trimmed on
        word boundaries (agent.rules.trim_to_budget)."""
        lang = storyboard.captions_lang or storyboard.brief.lang
        facts = product.model_dump(mode="json") if product is not None and hasattr(product, "model_dump") else {}
        rows = []
        rooms: dict[int, float] = {}
        for i in slots:
            s = storyboard.slots[i]
            rooms[i] = s.target_s * storyboard.line_budget
            row: dict[str, Any] = {"slot": i, "role": s.role.value, "seconds": s.target_s, "intent": s.intent,
                                   "max_units": max(1, int(budget(rooms[i], lang)))}
            said = s.chosen.transcript if s.chosen else ""
            if said and (lang == "zh") == bool(CJK.search(said)):  # another language's words invite copying
                row["clip_transcript"] = said[:120]
            rows.append(row)
        user = prompts.read("planner/script.md").format(
            lang=f"{lang} ({'Chinese' if lang == 'zh' else 'English'})",
            brief=storyboard.brief.model_dump_json(exclude={"text"}),
            facts=json.dumps(facts, ensure_ascii=False), family=hook_family(storyboard.brief),
            slots=json.dumps(rows, ensure_ascii=False, indent=1))
        got: dict[int, str] = {}
        terms = _grounding(storyboard, product, lang)
        echoes = {i: [storyboard.slots[i].intent, ROLE_INTENT[storyboard.slots[i].role]] for i in slots}

        def problem(i: int) -> str | None:
            line = got.get(i, "")
            if line and any(_echoes(line, x) for x in echoes[i]):
                return "the line repeats the slot's intent; write the words the voiceover says"
            return _line_problem(line, rooms[i], lang, terms)

        def use(out: Script) -> tuple[dict[int, str], list[str]]:
            for ln in out.lines:
                if ln.slot in rooms and ln.line.strip() and (ln.slot not in got or problem(ln.slot)):
                    got[ln.slot] = ln.line.strip()
            return dict(got), [f"slot {i}: {p}" for i in slots if (p := problem(i))]

        self._ask("script", Script, user, run, use, tool=_script_tool(rows, lang), prepare=_lines_form)
        out: dict[int, str] = {}
        for i in slots:
            p = problem(i)
            if p:  # still unusable after the one correction: agent.steps writes the offline line
                if got.get(i):
                    run.warn(f"slot {i}: the model's line {got[i][:40]!r} is unusable ({p}); the offline line "
                             "instead")
                continue
            line = got[i]
            if speech_units(line, lang) > budget(rooms[i], lang) + 1e-6:
                line = trim_to_budget(line, rooms[i], lang)
            out[i] = line
        return out

    # -- gaps: a tool loop over the media tools (the graph runs the tools in a ToolNode)
    def gap_session(self, storyboard: Storyboard, gaps: list[int], tools: list[Any], run: RunRecord) -> GapSession:
        """The model's side of the gap-filling tool step for slots left with a plain card."""
        return GapSession(self, storyboard, gaps, tools, run)


def _least_units(max_units: int) -> int:
    """The shortest line worth voicing in a slot: a third of its budget, at least 2 units, at most 4."""
    return max(1, min(4, max_units // 3, max_units))


def _grounding(sb: Storyboard, product: Any, lang: str) -> list[str]:
    """What a line may name to be about this ad: the product (names, aliases), its selling points and offer, the
    brief's angle. Banned claims are not in it."""
    terms = [sb.brief.product or "", sb.brief.angle or ""]
    if product is not None:
        names = product.names() if hasattr(product, "names") else [getattr(product, "name", "")]
        terms += [*names, *getattr(product, "aliases", []), *getattr(product, "selling_points", []),
                  *getattr(product, "selling_points_en", []), getattr(product, "offer", None) or "",
                  getattr(product, "offer_en", None) or ""]
    angle = (sb.brief.angle or "").lower()
    for keys, zh, en in ANGLES:  # a known angle in either language (a model may name it in the other one)
        if angle and (angle in (zh, en.lower()) or any(k in angle for k in keys)):
            terms += [zh, en]
    return [str(t) for t in terms if t and len(str(t).strip()) >= 2]


def _echoes(line: str, intent: str) -> bool:
    """The line is (a piece of) the slot's intent: a small model copying its instructions."""
    def norm(t: str) -> str:
        return re.sub(r"[\W_]+", " ", t.lower()).strip()

    a, b = norm(line), norm(intent)
    return len(a) >= 6 and bool(b) and (a in b or b in a)


def _keys(text: str, lang: str) -> set[str]:
    """Match keys: CJK bigrams (zh) and 5-letter word stems (both), lower-cased."""
    low = text.lower()
    out = {w[:5] for w in re.findall(r"[a-z]{4,}", low)}
    if lang == "zh":
        cjk = "".join(CJK.findall(low))
        out |= {cjk[k:k + 2] for k in range(len(cjk) - 1)}
    return out


def _grounded(line: str, terms: list[str], lang: str) -> bool | None:
    """Whether the line names one of the ad's terms; None when no term can be named in this language."""
    keys = set().union(*(_keys(t, lang) for t in terms)) if terms else set()
    if not keys:
        return None
    return bool(_keys(line, lang) & keys)


def _line_problem(line: str, room: float, lang: str, terms: list[str] | None = None) -> str | None:
    if not line.strip():
        return "no line"
    if lang == "en" and CJK.search(line):
        return "the line is in Chinese; write it in English"
    if lang == "zh" and not CJK.search(line):
        return "the line is not in Chinese; write it in Chinese"
    if is_injection(line):
        return "the line repeats instructions from the data"
    cap = budget(room, lang)
    if speech_units(line, lang) < min(_least_units(int(cap)), 2) or _LABEL.search(line):
        return "the line is a label, not a line: write what the voiceover says"
    if speech_units(line, lang) > 1.5 * cap + 1:
        unit = "Chinese characters" if lang == "zh" else "words"
        return f"the line has {int(speech_units(line, lang))} {unit}; at most {int(cap)}"
    if terms and _grounded(line, terms, lang) is False:
        return "the line names neither the product, its selling points or offer, nor the angle"
    return None


def _brief_errors(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:5])


_SLOT_KEY = re.compile(r"(?:slot[_ ]?)?(\d+)", re.I)
# a slot label or a role name copied from the schema instead of a line
_LABEL = re.compile(r"(槽|slot)\s*_?\d+|\b(hook|pain_?point|product_?intro|feature_?demo|offer_?cta|social_?proof|"
                    r"spokesperson|intent|max_units)\b|painPoint|productIntro|featureDemo|offerCta", re.I)
_NAMED_TOOL = re.compile(r"\s*functions\.(\w+):?\s*$")


class _Aliases:
    """Short names (c1, c2, ...) for the clip ids shown to the model; real ids and unknown names pass through."""

    def __init__(self) -> None:
        self.by_id: dict[str, str] = {}
        self.by_alias: dict[str, str] = {}

    def of(self, clip_id: str) -> str:
        if clip_id not in self.by_id:
            a = f"c{len(self.by_id) + 1}"
            self.by_id[clip_id] = a
            self.by_alias[a] = clip_id
        return self.by_id[clip_id]

    def real(self, name: str) -> str:
        return self.by_alias.get(name.strip().lower(), name.strip())


def _choose_tool(sb: Storyboard, order: list[int], shown: dict[int, list[str]]) -> dict[str, Any]:
    """The final answer's schema for this selection: one property per slot whose value is one of that slot's
    candidate aliases (null only for a slot with none: a small constrained model otherwise answers null everywhere;
    code still drops a clip that scores under MIN_SCORE)."""
    none: list[Any] = [None]
    props = {f"slot_{i}": {"enum": list(shown.get(i) or none),
                           "description": f"{sb.slots[i].role.value}, {sb.slots[i].target_s:g} s"} for i in order}
    return {"type": "function", "function": {
        "name": "choose_clips", "description": "Final answer: for every slot one clip_id from its candidates, or null.",
        "parameters": {"type": "object", "properties": props, "required": list(props)}}}


def _script_tool(rows: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    """The Script answer's schema for these slots: one string per slot, in `lang` by its pattern, with room for
    half as much again as the budget (code trims to the budget on a word boundary)."""
    props: dict[str, Any] = {}
    for r in rows:
        cap = max(2, int(1.5 * r["max_units"]) + 1)
        least = _least_units(r["max_units"])
        if lang == "zh":
            pattern = f"^[\u4e00-\u9fff][\u4e00-\u9fff0-9A-Za-z，。！？、%+ ]{{{max(1, least - 1)},{cap}}}$"
            unit = "Chinese characters"
        else:
            pattern = (f"^[A-Za-z0-9$][A-Za-z0-9$',.!?%&-]*( [A-Za-z0-9$',.!?%&-]+){{{max(0, least - 1)},"
                       f"{cap - 1}}}$")
            unit = "English words"
        props[f"slot_{r['slot']}"] = {"type": "string", "pattern": pattern,
                                      "description": f"the words spoken in slot {r['slot']}: {least} to "
                                                     f"{r['max_units']} {unit}"}
    return {"type": "function", "function": {
        "name": "Script", "description": "One voiceover / caption line per slot.",
        "parameters": {"type": "object", "properties": props, "required": list(props)}}}


def _lines_form(args: Any) -> Any:
    """A Script answer as {"lines": [...]}: from the per-slot form {"slot_0": "..."} or a bare list too."""
    if isinstance(args, list):
        return {"lines": args}
    if isinstance(args, dict) and "lines" not in args:
        keyed = [(_SLOT_KEY.fullmatch(str(k)), v) for k, v in args.items()]
        if keyed and all(m for m, _ in keyed):
            return {"lines": [{"slot": int(m.group(1)), "line": v} for m, v in keyed if m]}
    return args


def _coerce_choices(args: Any, order: list[int], alias: _Aliases | None = None) -> dict[int, str | None] | None:
    """choose_clips arguments as {slot: clip_id}: the per-slot form {"slot_0": "c3"}, the {"choices": [...]}
    form, a bare list of choices, or a list of ids in slot order; aliases mapped back to clip ids; None when it is
    none of those."""
    if isinstance(args, dict) and "choices" not in args:
        if "slot" in args and "clip_id" in args:
            args = {"choices": [args]}
        elif args and all(_SLOT_KEY.fullmatch(str(k)) for k in args):
            args = {"choices": [{"slot": int(m.group(1)), "clip_id": v} for k, v in args.items()
                                if (m := _SLOT_KEY.fullmatch(str(k)))]}
    if isinstance(args, list):
        if all(isinstance(x, str) or x is None for x in args):
            args = {"choices": [{"slot": s, "clip_id": x} for s, x in zip(order, args, strict=False)]}
        else:
            args = {"choices": args}
    if isinstance(args, dict) and isinstance(args.get("choices"), dict):
        args = {"choices": [{"slot": k, "clip_id": v} for k, v in args["choices"].items()]}
    try:
        final = choose_clips.model_validate(args)
    except ValidationError:
        return None
    real = alias.real if alias is not None else str.strip
    out = {c.slot: (real(c.clip_id) if isinstance(c.clip_id, str) and c.clip_id.strip() not in ("", "null")
                    else None) for c in final.choices if c.slot in order}
    return out if out or not final.choices else None


def _card(c: Candidate, alias: _Aliases) -> dict[str, Any]:
    """What the model sees of a clip: a short id and its text, never times or paths."""
    r = c.clip
    return {"clip_id": alias.of(r.clip_id), "content_type": r.content_type.value, "duration_s": round(r.duration, 1),
            "transcript": r.transcript[:CARD_TEXT], "description": r.description[:CARD_TEXT],
            "score": round(c.relevance, 2)}


def _role(raw: str) -> SlotRole | None:
    key = re.sub(r"[\s/-]+", "_", str(raw or "").strip().lower())
    try:
        return SlotRole(key)
    except ValueError:
        return ROLE_SYNONYMS.get(key)


def _seconds(raw: Any) -> float | None:
    v = _num(raw)
    try:
        f = float(v) if v is not None else None
    except (TypeError, ValueError):
        return None
    return f if f is not None and 0 < f < 1000 else None


@dataclass(eq=False)
class _Draft:
    role: SlotRole
    seconds: float | None
    query: str
    intent: str


# Which middle slots go first when a plan has more slots than its length can show.
_DROP_ORDER = (SlotRole.social_proof, SlotRole.brand, SlotRole.spokesperson, SlotRole.pain_point,
               SlotRole.feature_demo, SlotRole.product_intro)


def normalise_storyboard(brief: Brief, d: StoryboardDraft, run: RunRecord) -> Storyboard:
    """Repair an LLM plan onto the contract: unknown roles dropped, a missing or 0-second length filled, adjacent
    repeats merged, hook first (≤ 3 s), a product slot present, offer / CTA last, no more slots than the length can
    show, seconds rescaled to the brief's duration and renumbered. Length, formats and product come from `brief`
    (never from the model); content types from the role."""
    drafts: list[_Draft] = []
    for k, sd in enumerate(d.slots):
        role = _role(sd.role)
        if role is None:
            run.warn(f"LLM storyboard slot {k} has an unknown role {sd.role!r}; dropped")
            continue
        secs = _seconds(sd.seconds)
        if secs is None:
            run.warn(f"LLM storyboard slot {k} ({role.value}) has no usable length ({sd.seconds!r}); repaired")
        drafts.append(_Draft(role, secs, sd.query.strip(), sd.intent.strip()))
    if not drafts:
        raise _Unusable("no slot has a known role (use: " + ", ".join(r.value for r in SlotRole) + ")")
    known = [x.seconds for x in drafts if x.seconds is not None]
    fill = statistics.median(known) if known else brief.duration_s / max(1, len(drafts))
    for x in drafts:
        if x.seconds is None:
            x.seconds = fill
    # hook first: move the model's first hook to the front, merge any other hook into its neighbour
    hooks = [x for x in drafts if x.role == SlotRole.hook]
    if not hooks:
        run.warn("LLM storyboard did not open with a hook; one was added")
        drafts.insert(0, _Draft(SlotRole.hook, 3.0, "", ""))
    elif drafts[0].role != SlotRole.hook:
        run.warn("LLM storyboard did not open with its hook; the hook was moved first")
        drafts.remove(hooks[0])
        drafts.insert(0, hooks[0])
    for extra in [x for x in drafts[1:] if x.role == SlotRole.hook]:
        run.warn("LLM storyboard had a second hook; merged into the plan")
        drafts.remove(extra)
    # offer / CTA last: keep the model's last offer slot there, merge earlier ones into it
    offers = [x for x in drafts if x.role == SlotRole.offer_cta]
    if not offers:
        run.warn("LLM storyboard did not end on the offer; an offer / CTA slot was added")
        drafts.append(_Draft(SlotRole.offer_cta, 3.0, "", ""))
    else:
        last = offers[-1]
        for extra in offers[:-1]:
            run.warn("LLM storyboard had an offer slot before the end; merged into the last one")
            last.seconds = (last.seconds or 0) + (extra.seconds or 0)
            drafts.remove(extra)
        if drafts[-1] is not last:
            run.warn("LLM storyboard did not end on the offer; the offer slot was moved last")
            drafts.remove(last)
            drafts.append(last)
    if not any(x.role in (SlotRole.product_intro, SlotRole.spokesperson) for x in drafts):
        run.warn("LLM storyboard had no product slot; a product intro was added")
        drafts.insert(len(drafts) - 1, _Draft(SlotRole.product_intro, fill, "", ""))
    merged: list[_Draft] = [drafts[0]]
    for x in drafts[1:]:
        if x.role == merged[-1].role:
            run.warn(f"LLM storyboard repeated {x.role.value} in two adjacent slots; merged")
            merged[-1].seconds = (merged[-1].seconds or 0) + (x.seconds or 0)
            merged[-1].query = merged[-1].query or x.query
            merged[-1].intent = merged[-1].intent or x.intent
        else:
            merged.append(x)
    drafts = merged
    total = float(brief.duration_s)
    hook = round(min(3.0, max(1.0, drafts[0].seconds or 3.0), total * 0.3), 2)
    room = max(1, min(MAX_SLOTS - 1, int((total - hook) // MIN_SLOT_S)))
    while len(drafts) - 1 > room:  # more slots than the length can show: drop the least needed middle slot
        middle = drafts[1:-1]
        product_slots = [x for x in middle if x.role in (SlotRole.product_intro, SlotRole.spokesperson)]
        victim = next((x for role in _DROP_ORDER for x in reversed(middle)
                       if x.role == role and not (x in product_slots and len(product_slots) == 1)), None)
        if victim is None:
            break
        run.warn(f"LLM storyboard has more slots than a {total:g} s ad can show; dropped a {victim.role.value} slot")
        drafts.remove(victim)
    rest = _rescale([x.seconds or fill for x in drafts[1:]], total - hook, floor=min(MIN_SLOT_S, (total - hook)
                                                                                     / max(1, len(drafts) - 1)))
    lengths = [hook, *rest]
    lengths[-1] = round(total - sum(lengths[:-1]), 2)
    slots = []
    for i, (x, sec) in enumerate(zip(drafts, lengths, strict=True)):
        slots.append(Slot(index=i, role=x.role, target_s=sec, query=x.query or slot_query(x.role, brief),
                          content_types=list(ROLE_CONTENT_TYPES[x.role]), formats=list(brief.formats),
                          product=brief.product, intent=x.intent or ROLE_INTENT[x.role]))
    mood = str(d.music_mood).strip().lower()
    mood = mood if mood in MOODS else (brief.tone if brief.tone in MOODS else "upbeat")
    return Storyboard(brief=brief, slots=slots, music_mood=mood, captions_lang=brief.lang)


def _rescale(raw: list[float], target: float, *, floor: float) -> list[float]:
    """Shares of `target` proportional to `raw`, none below `floor` (taken from the longer ones), 2 decimals."""
    weights = [max(0.1, x) for x in raw]
    out = [target * w / sum(weights) for w in weights]
    for _ in range(len(out)):
        short = [k for k, v in enumerate(out) if v < floor - 1e-9]
        if not short:
            break
        need = sum(floor - out[k] for k in short)
        for k in short:
            out[k] = floor
        long_ = [k for k, v in enumerate(out) if v > floor + 1e-9]
        pool = sum(out[k] - floor for k in long_)
        if pool <= 0:
            break
        for k in long_:
            out[k] -= need * (out[k] - floor) / pool
    return [round(v, 2) for v in out]


GAP_ANSWER = "use_for_gaps"
GAP_TOOLS = ("search_library", "image_to_video", "title_card", "register_generated_clip")
MAX_GAP_ROUNDS = 3  # tool rounds before the answer is forced


@dataclass(frozen=True)
class GapFill:
    """What the model chose for one gap: a library clip it found, or an asset a tool made in this step."""

    slot: int
    clip_id: str | None = None
    score: float = 0.0  # the search's relevance of `clip_id`
    asset: Motion | Card | None = None  # an artifact of this step's tool messages


class GapSession:
    """One gap-filling step: the prompt, one bounded model call per round (the step's budget covers the calls and
    the tools they run), and the final answer read against what the tools really found or made, so a path or
    clip id the model invents is never used."""

    def __init__(self, brain: LLMBrain, sb: Storyboard, gaps: list[int], tools: list[Any], run: RunRecord) -> None:
        from langchain_core.messages import HumanMessage, SystemMessage

        self.brain, self.sb, self.gaps, self.tools, self.run = brain, sb, sorted(gaps), tools, run
        self.clock = _Clock("gaps", brain.budgets["gaps"])
        rows = [{"slot": i, "role": sb.slots[i].role.value, "seconds": sb.slots[i].target_s,
                 "line": sb.slots[i].line[:60], "intent": sb.slots[i].intent[:60]} for i in self.gaps]
        user = prompts.read("planner/gaps.md").format(product=json.dumps(sb.brief.product, ensure_ascii=False),
                                                      slots=json.dumps(rows, ensure_ascii=False))
        self.messages: list[Any] = [SystemMessage(prompts.read("planner/system.md")), HumanMessage(user)]

    def answer_tool(self) -> dict[str, Any]:
        props = {f"slot_{i}": {"type": ["string", "null"],
                               "description": f"{self.sb.slots[i].role.value}, {self.sb.slots[i].target_s:g} s"}
                 for i in self.gaps}
        return {"type": "function", "function": {
            "name": GAP_ANSWER, "description": "Final answer: per slot a clip_id or a made clip's path, or null.",
            "parameters": {"type": "object", "properties": props, "required": list(props)}}}

    def turn(self, messages: list[Any], *, final: bool) -> Any:
        """One model call with the tools bound (only the answer when `final`); raises ProviderError when the
        step's budget is spent."""
        tools = [self.answer_tool()] if final else [*self.tools, self.answer_tool()]
        res, rec = self.brain._call(self.clock, messages, self.run, tools=tools,
                                    tool_choice=GAP_ANSWER if final else "auto")
        rec["tool_calls"] = [c["name"] for c in getattr(res.message, "tool_calls", None) or []][:8]
        return res.message

    def answer(self, messages: list[Any]) -> list[GapFill]:
        """The fills the final answer names, each checked against this step's tool results; tool failures and
        unusable choices are recorded as warnings."""
        from langchain_core.messages import ToolMessage

        found: dict[str, ClipHit | GeneratedClip] = {}
        made: dict[str, Motion | Card] = {}
        for m in messages:
            if not isinstance(m, ToolMessage):
                continue
            if m.status == "error":
                self.run.warn(f"gaps: tool {m.name} failed: {str(m.content)[:200]}")
                continue
            art = m.artifact
            for x in art if isinstance(art, list) else [art]:
                if isinstance(x, ClipHit | GeneratedClip):
                    found[x.clip_id] = x
                if isinstance(x, Motion | Card):
                    made[str(x.path)] = x
        last = messages[-1] if messages else None
        args, err, _ = tool_args(last, GAP_ANSWER) if last is not None else (None, "no answer", "")
        if not isinstance(args, dict):
            self.run.warn(f"gaps: the model gave no {GAP_ANSWER} answer ({err or 'not an object'}); cards kept")
            return []
        out: list[GapFill] = []
        taken: set[str] = set()
        for key, value in args.items():
            m2 = _SLOT_KEY.fullmatch(str(key))
            if m2 is None or int(m2.group(1)) not in self.gaps or not isinstance(value, str) or not value.strip():
                continue
            slot, v = int(m2.group(1)), value.strip()
            if v in taken:
                self.run.warn(f"gaps: slot {slot}: {v[:60]!r} was already used for another slot; card kept")
            elif v in found:
                out.append(GapFill(slot=slot, clip_id=v, score=_found_score(found[v])))
            elif v in made:
                out.append(GapFill(slot=slot, asset=made[v]))
            else:
                self.run.warn(f"gaps: slot {slot}: {v[:60]!r} is no clip found or made in this step; card kept")
                continue
            taken.add(v)
        return out


def _found_score(x: ClipHit | GeneratedClip) -> float:
    """A search hit's relevance; a clip this step registered itself counts as a full match."""
    return x.score if isinstance(x, ClipHit) else 1.0
