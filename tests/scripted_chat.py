"""A deterministic scripted chat model for agent tests: each call pops the next scripted reply (an AIMessage or a
function of the messages) and an unscripted call raises, so a test fails loudly if the planner calls the model
more (or differently) than expected. Tool binding is recorded and the replies carry structured tool calls."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

Reply = AIMessage | Callable[[list[BaseMessage]], AIMessage]


class UnscriptedCallError(AssertionError):
    """The planner called the model when the script had no reply left."""


def tool_reply(name: str, args: dict[str, Any], call_id: str = "call_0") -> AIMessage:
    """An assistant message that calls one tool (how structured outputs arrive via function calling)."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


class ScriptedChatModel(BaseChatModel):
    replies: list[Any] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[list[str]] = Field(default_factory=list)
    tool_choices: list[Any] = Field(default_factory=list)
    call_kwargs: list[dict[str, Any]] = Field(default_factory=list)  # per call: max_tokens, timeout, ...

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        names = []
        for t in tools:
            if isinstance(t, dict):  # an OpenAI tool dict (a schema built per call)
                names.append(str(t.get("function", t).get("name")))
                continue
            names.append(getattr(t, "__name__", None) or getattr(t, "name", None) or str(t))
        self.bound_tools.append(names)
        self.tool_choices.append(kwargs.get("tool_choice"))
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        self.call_kwargs.append(dict(kwargs))
        if not self.replies:
            last = messages[-1].content if messages else ""
            raise UnscriptedCallError(f"unscripted model call #{len(self.seen)}: {str(last)[:200]!r}")
        reply = self.replies.pop(0)
        msg = reply(messages) if callable(reply) else reply
        return ChatResult(generations=[ChatGeneration(message=msg)])


def clip_ids_in(messages: list[BaseMessage]) -> dict[int, list[str]]:
    """Candidate clip ids per slot, read back from the select prompt / tool messages (the data the model saw)."""
    out: dict[int, list[str]] = {}
    for m in messages:
        text = str(m.content)
        if "<clip_data>" not in text or m.type == "system":
            continue
        body = text.split("<clip_data>", 1)[1].split("</clip_data>", 1)[0]
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            continue
        for row in data if isinstance(data, list) else [data]:
            if isinstance(row, dict) and "slot" in row:
                out.setdefault(int(row["slot"]), []).extend(c["clip_id"] for c in row.get("candidates", []))
    return out
