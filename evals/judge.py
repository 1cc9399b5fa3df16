"""Optional LLM judge: a rubric score for a storyboard, only when a chat model is configured.

The rubric lives in prompts/judge.md; the judge model is recorded with every verdict, and verdicts are cached by
(model, rubric, brief, storyboard) so re-running an eval never pays twice for the same plan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

import prompts
from cutpilot.errors import ProviderError
from cutpilot.settings import Settings
from cutpilot.storyboard import Storyboard
from evals.schema import Case
from evals.scorers import Score


class Verdict(BaseModel):
    hook: int = Field(ge=1, le=5)
    on_brief: int = Field(ge=1, le=5)
    story: int = Field(ge=1, le=5)
    narration_fit: int = Field(ge=1, le=5)
    compliance: int = Field(ge=1, le=5)
    overall: int = Field(ge=1, le=5)
    reasons: str = ""


def storyboard_view(sb: Storyboard) -> str:
    """What the judge reads: the brief and one line per slot (no ids, no paths)."""
    rows = [f"brief: {sb.brief.model_dump_json(exclude_defaults=True)}"]
    for s in sb.slots:
        clip = s.chosen.transcript[:80] if s.chosen else ""
        rows.append(f"{s.index + 1}. [{s.role.value}] {s.target_s:.1f}s line={s.line!r} "
                    f"source={s.line_source} clip_speech={clip!r} asset={s.asset.kind if s.asset else None}")
    return "\n".join(rows)


def verdict_score(v: Verdict, model: str) -> Score:
    return Score("llm_judge", (v.overall - 1) / 4, f"{model}: {v.reasons[:120]}",
                 {"model": model, **v.model_dump(exclude={"reasons"})})


def make_judge(settings: Settings, cache_dir: Path,
               chat: object | None = None) -> tuple[Callable[[Case, Storyboard], Score | None], str]:
    """A judge function and its model name. `chat` lets tests pass a scripted chat model."""
    from cutpilot.llm import chat_model, invoke_structured

    model_name = settings.llm_model or "scripted"
    model = chat if chat is not None else chat_model(settings)
    rubric = prompts.read("judge.md")
    cache_dir.mkdir(parents=True, exist_ok=True)

    def judge(case: Case, sb: Storyboard) -> Score | None:
        view = storyboard_view(sb)
        key = hashlib.sha256(json.dumps([model_name, rubric, view]).encode()).hexdigest()[:24]
        cached = cache_dir / f"{key}.json"
        if cached.exists():
            return verdict_score(Verdict.model_validate_json(cached.read_text(encoding="utf-8")), model_name)
        from langchain_core.messages import HumanMessage, SystemMessage

        try:
            v = invoke_structured(model, Verdict, [SystemMessage(rubric), HumanMessage(view)])
        except ProviderError as e:
            return Score("llm_judge", None, f"judge failed: {e.one_line()[:120]}", {"model": model_name})
        cached.write_text(v.model_dump_json(), encoding="utf-8")
        return verdict_score(v, model_name)

    return judge, model_name
