"""The LLM planner: structured outputs (pydantic, via tool calling) for brief, storyboard and script, and a small
tool loop (search_clips → choose_clips) for clip selection, over any OpenAI-compatible endpoint (cutpilot.llm).

The model only decides: it names clip ids from candidates it was shown; code copies times and paths, enforces the
hook / CTA / budget invariants, and any provider failure raises ProviderError so the graph falls back offline.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

import prompts
from agent.rules import budget
from agent.runrecord import RunRecord
from agent.sources import ClipSource
from agent.state import Candidate
from agent.templates import hook_family, plan_storyboard
from cutpilot.errors import CutpilotError, ProviderError
from cutpilot.llm import invoke_structured
from cutpilot.models import ClipFormat, parse_formats
from cutpilot.settings import Settings
from cutpilot.storyboard import ROLE_CONTENT_TYPES, Brief, Slot, SlotRole, Storyboard

MAX_TOOL_ROUNDS = 3


# --- structured outputs --------------------------------------------------------------------------------------
class BriefDraft(BaseModel):
    """The brief as the model understands it."""

    product: str | None = None
    angle: str | None = None
    duration_s: float = 30.0
    aspect: Literal["9:16", "1:1", "4:5", "16:9"] = "9:16"
    platform: str | None = None
    lang: Literal["zh", "en"] = "zh"
    audience: str | None = None
    tone: str | None = None
    must_include: list[str] = Field(default_factory=list)
    must_avoid: list[str] = Field(default_factory=list)
    formats: list[str] = Field(default_factory=list)


class SlotDraft(BaseModel):
    role: SlotRole
    seconds: float = Field(gt=0)
    query: str = ""
    intent: str = ""


class StoryboardDraft(BaseModel):
    """Ordered slots; hook first, offer_cta last."""

    slots: list[SlotDraft] = Field(min_length=1)
    music_mood: str = "upbeat"


class Line(BaseModel):
    slot: int
    line: str


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


# --- the brain ------------------------------------------------------------------------------------------------
class LLMBrain:
    """Brain over a LangChain chat model (ChatOpenAI from cutpilot.llm, or a scripted model in tests)."""

    name = "llm"

    def __init__(self, model: Any, *, model_name: str | None = None, retries: int = 1) -> None:
        self.chat = model
        self.model = model_name or getattr(model, "model_name", None) or type(model).__name__
        self.retries = retries

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMBrain:
        from cutpilot.llm import chat_model

        return cls(chat_model(settings), model_name=settings.llm_model, retries=settings.llm_retries)

    def _messages(self, user: str) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        return [SystemMessage(prompts.read("planner/system.md")), HumanMessage(user)]

    def _structured(self, schema: type[Any], user: str, run: RunRecord) -> Any:
        """invoke_structured with retries: transport errors are retried by the client, bad JSON / invalid
        objects here; the last failure propagates as ProviderError (→ offline fallback for this step)."""
        last: ProviderError | None = None
        for _ in range(1 + max(0, self.retries)):
            run.llm_calls += 1
            try:
                return invoke_structured(self.chat, schema, self._messages(user))
            except ProviderError as e:
                last = e
        assert last is not None
        raise last

    # -- understand
    def understand(self, text: str, products: list[str], run: RunRecord, base: Brief | None = None) -> Brief:
        user = prompts.read("planner/brief.md").format(products=json.dumps(products, ensure_ascii=False),
                                                       request=text)
        d: BriefDraft = self._structured(BriefDraft, user, run)
        try:
            fmts: list[ClipFormat] = []
            for f in d.formats:
                fmts += [x for x in parse_formats(f) if x not in fmts]
            product = d.product if d.product in products else None
            if d.product and product is None:
                run.warn(f"LLM named product {d.product!r}, which the library does not have; ignored")
            return Brief(text=text, product=product, angle=d.angle, duration_s=min(180, max(3, d.duration_s)),
                         aspect=d.aspect, platform=d.platform, lang=d.lang, audience=d.audience, tone=d.tone,
                         must_include=d.must_include, must_avoid=d.must_avoid, formats=fmts)
        except (ValidationError, CutpilotError) as e:
            raise ProviderError(f"LLM brief is unusable: {e}") from e

    # -- storyboard
    def storyboard(self, brief: Brief, run: RunRecord) -> Storyboard:
        user = prompts.read("planner/storyboard.md").format(duration_s=brief.duration_s,
                                                            brief=brief.model_dump_json(exclude={"text"}))
        d: StoryboardDraft = self._structured(StoryboardDraft, user, run)
        return normalise_storyboard(brief, d, run)

    # -- select
    def select(self, storyboard: Storyboard, candidates: dict[int, list[Candidate]], source: ClipSource,
               used: set[str], run: RunRecord) -> dict[int, str | None]:
        from langchain_core.messages import ToolMessage

        pools = {i: list(c) for i, c in candidates.items()}
        listing = [{"slot": i, "role": storyboard.slots[i].role.value, "seconds": storyboard.slots[i].target_s,
                    "intent": storyboard.slots[i].intent, "candidates": [_card(c) for c in pools[i]]}
                   for i in sorted(pools)]
        messages = self._messages(prompts.read("planner/select.md").format(
            slots=json.dumps(listing, ensure_ascii=False, indent=1)))
        bound = self.chat.bind_tools([search_clips, choose_clips])
        for _ in range(MAX_TOOL_ROUNDS + 1):
            run.llm_calls += 1
            try:
                ai = bound.invoke(messages)
            except Exception as e:
                raise ProviderError(f"LLM clip selection failed: {type(e).__name__}: {e}") from e
            calls = list(getattr(ai, "tool_calls", None) or [])
            if not calls:
                raise ProviderError("LLM clip selection returned no tool call")
            messages.append(ai)
            for call in calls:
                if call["name"] == "choose_clips":
                    try:
                        final = choose_clips.model_validate(call["args"])
                    except ValidationError as e:
                        raise ProviderError(f"LLM choose_clips arguments invalid: {e}") from e
                    return {c.slot: c.clip_id for c in final.choices if c.slot in pools}
                if call["name"] == "search_clips":
                    try:
                        q = search_clips.model_validate(call["args"])
                    except ValidationError as e:
                        raise ProviderError(f"LLM search_clips arguments invalid: {e}") from e
                    found: list[Candidate] = []
                    if q.slot in pools:
                        s = storyboard.slots[q.slot]
                        found = source.find(q.query, content_types=list(s.content_types), formats=[],
                                            product=s.product, exclude_ids=sorted(used), limit=6)
                        have = {c.clip.clip_id for c in pools[q.slot]}
                        pools[q.slot] += [c for c in found if c.clip.clip_id not in have]
                    payload = {"slot": q.slot, "candidates": [_card(c) for c in found]}
                    messages.append(ToolMessage(content="<clip_data>" + json.dumps(payload, ensure_ascii=False)
                                                + "</clip_data>", tool_call_id=call["id"]))
                else:
                    messages.append(ToolMessage(content=f"unknown tool {call['name']}", tool_call_id=call["id"]))
        raise ProviderError("LLM clip selection did not finish within the tool-call budget")

    # -- script
    def script(self, storyboard: Storyboard, slots: list[int], run: RunRecord, *, product: Any = None
               ) -> dict[int, str]:
        lang = storyboard.captions_lang or storyboard.brief.lang
        facts = product.model_dump(mode="json") if product is not None and hasattr(product, "model_dump") else {}
        rows = []
        for i in slots:
            s = storyboard.slots[i]
            rows.append({"slot": i, "role": s.role.value, "seconds": s.target_s, "intent": s.intent,
                         "max_units": int(budget(s.target_s, lang)),
                         "clip_transcript": (s.chosen.transcript if s.chosen else "")[:200]})
        user = prompts.read("planner/script.md").format(
            lang=lang, brief=storyboard.brief.model_dump_json(exclude={"text"}),
            facts=json.dumps(facts, ensure_ascii=False), family=hook_family(storyboard.brief),
            slots=json.dumps(rows, ensure_ascii=False, indent=1))
        out: Script = self._structured(Script, user, run)
        return {ln.slot: ln.line for ln in out.lines if ln.slot in slots}


def _card(c: Candidate) -> dict[str, Any]:
    """What the model sees of a clip: id and text, never times or paths."""
    r = c.clip
    return {"clip_id": r.clip_id, "content_type": r.content_type.value, "format": [f.value for f in r.format],
            "duration_s": r.duration, "product": r.product, "transcript": r.transcript[:240],
            "description": r.description[:240], "score": round(c.relevance, 3)}


def normalise_storyboard(brief: Brief, d: StoryboardDraft, run: RunRecord) -> Storyboard:
    """Enforce the contract on an LLM plan: hook first (≤ 3 s), product intro present, offer / CTA last, seconds
    rescaled to the brief's duration; filters come from code (role → content types, brief → formats, product)."""
    drafts = list(d.slots)
    if drafts[0].role != SlotRole.hook:
        run.warn("LLM storyboard did not open with a hook; one was added")
        drafts.insert(0, SlotDraft(role=SlotRole.hook, seconds=3.0))
    if drafts[-1].role != SlotRole.offer_cta:
        run.warn("LLM storyboard did not end on the offer; an offer / CTA slot was added")
        drafts.append(SlotDraft(role=SlotRole.offer_cta, seconds=3.0))
    if not any(s.role in (SlotRole.product_intro, SlotRole.spokesperson) for s in drafts):
        run.warn("LLM storyboard had no product slot; a product intro was added")
        drafts.insert(len(drafts) - 1, SlotDraft(role=SlotRole.product_intro, seconds=4.0))
    if len(drafts) > 12:
        raise ProviderError(f"LLM storyboard has {len(drafts)} slots; at most 12 make sense")
    total = brief.duration_s
    hook = min(3.0, drafts[0].seconds, total * 0.3)
    rest = [max(0.5, s.seconds) for s in drafts[1:]]
    scale = (total - hook) / sum(rest)
    secs = [round(hook, 2)] + [round(x * scale, 2) for x in rest]
    secs[-1] = round(total - sum(secs[:-1]), 2)
    fallback = plan_storyboard(brief)
    slots = []
    for i, (sd, sec) in enumerate(zip(drafts, secs, strict=True)):
        query = sd.query.strip() or next((s.query for s in fallback.slots if s.role == sd.role), "")
        slots.append(Slot(index=i, role=sd.role, target_s=sec, query=query,
                          content_types=list(ROLE_CONTENT_TYPES[sd.role]), formats=list(brief.formats),
                          product=brief.product, intent=sd.intent or ""))
    mood = d.music_mood if d.music_mood in ("upbeat", "energetic", "calm", "premium", "fun") else "upbeat"
    return Storyboard(brief=brief, slots=slots, music_mood=mood, captions_lang=brief.lang)
