"""The one adapter to OpenAI-compatible chat / vision endpoints (langchain-openai is imported only here).

Works with OpenAI, DeepSeek, Qwen, Ollama, vLLM: anything that speaks the chat-completions API.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from cutpilot.errors import ProviderError
from cutpilot.settings import Settings

T = TypeVar("T", bound=BaseModel)


def chat_model(settings: Settings, *, model: str | None = None, temperature: float = 0.0,
               max_retries: int | None = None) -> Any:
    """A ChatOpenAI bound to the configured endpoint; ProviderError when none is configured.

    `max_retries` overrides the client's own transport retries (settings.llm_retries): a caller that keeps a
    wall-clock budget (the LLM planner) passes 0 and retries itself while its budget lasts."""
    name = model or settings.llm_model
    if not name or not (settings.openai_api_key or settings.openai_base_url):
        raise ProviderError("no LLM endpoint configured (set OPENAI_BASE_URL / OPENAI_API_KEY and CUTPILOT_LLM_MODEL)")
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=name,
        api_key=settings.openai_api_key or "not-needed",  # type: ignore[arg-type]
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_retries if max_retries is None else max_retries,
        temperature=temperature,
    )


def vision_model(settings: Settings) -> Any:
    """The configured vision-language model (CUTPILOT_VLM_MODEL) on the same endpoint."""
    if not settings.vlm_model:
        raise ProviderError("no vision model configured (set CUTPILOT_VLM_MODEL)")
    return chat_model(settings, model=settings.vlm_model)


def image_part(path: str | Path) -> dict[str, Any]:
    """An image as an OpenAI `image_url` content part (data URL), for vision prompts."""
    p = Path(path)
    mime = mimetypes.guess_type(p.name)[0] or "image/jpeg"
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


def invoke_structured(model: Any, schema: type[T], messages: list[Any]) -> T:
    """Ask for a pydantic object via tool calling; any transport or parse failure becomes ProviderError."""
    try:
        runnable = model.with_structured_output(schema, method="function_calling")
        out = runnable.invoke(messages)
    except Exception as e:  # network, HTTP status, bad JSON, validation
        raise ProviderError(f"LLM call for {schema.__name__} failed: {type(e).__name__}: {e}") from e
    if isinstance(out, schema):
        return out
    try:
        return schema.model_validate(out)
    except Exception as e:
        raise ProviderError(f"LLM returned an invalid {schema.__name__}: {e}") from e


# --- one bounded call, and answers that arrive as text ----------------------------------------------------------
@dataclass
class CallResult:
    """One chat-completions round trip: the AIMessage, its wall time and the token counts the server reported."""

    message: Any
    wall_s: float
    tokens_in: int | None = None
    tokens_out: int | None = None


def invoke_chat(model: Any, messages: list[Any], *, tools: list[Any] | None = None, tool_choice: str | None = None,
                max_tokens: int | None = None, timeout_s: float | None = None) -> CallResult:
    """One call with a token cap (`max_tokens`) and a per-request timeout (`timeout_s`, seconds), tools bound
    (`tool_choice` = a tool name forces that tool; None lets the model choose). Any transport failure becomes
    ProviderError; the reply is returned as is (see `tool_args` for reading it)."""
    runnable = model.bind_tools(tools, tool_choice=tool_choice) if tools else model
    kw: dict[str, Any] = {}
    if max_tokens:
        kw.update(token_cap(model, int(max_tokens)))
    if timeout_s:
        kw["timeout"] = max(0.05, float(timeout_s))
    if kw:
        runnable = runnable.bind(**kw)
    t0 = time.perf_counter()
    try:
        msg = runnable.invoke(messages)
    except Exception as e:  # network, HTTP status, timeout, a server that cannot parse the request
        raise ProviderError(f"LLM call failed after {time.perf_counter() - t0:.1f} s: {type(e).__name__}: {e}") from e
    wall = time.perf_counter() - t0
    usage = getattr(msg, "usage_metadata", None) or {}
    return CallResult(message=msg, wall_s=wall, tokens_in=usage.get("input_tokens"),
                      tokens_out=usage.get("output_tokens"))


def token_cap(model: Any, n: int) -> dict[str, Any]:
    """The call kwargs that cap a reply at `n` tokens. ChatOpenAI sends `max_tokens` as `max_completion_tokens`,
    which OpenAI wants, but OpenAI-compatible servers at another base URL (llama.cpp's, Ollama, vLLM, ...) read the
    older `max_tokens` and some silently ignore the new name; OpenAI itself rejects a request with both. So: OpenAI
    (no base URL, or api.openai.com) gets max_completion_tokens, any other endpoint max_tokens only."""
    base = str(getattr(model, "openai_api_base", None) or "")
    if base and "api.openai.com" not in base:
        return {"extra_body": {**dict(getattr(model, "extra_body", None) or {}), "max_tokens": n}}
    return {"max_tokens": n}


_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript)?[ \t]*\n?(.*?)```", re.S)


def json_in_text(text: str, *, truncated: bool = False) -> Any | None:
    """The first JSON object or array in a model's text: a fenced ```json block, the whole text, or the first
    decodable `{...}` / `[...]` inside prose; with `truncated`, also an object cut off mid-way (a reply stopped at
    its token cap), closed after its last complete value. None when there is none."""
    if not text or not text.strip():
        return None
    if truncated:
        start = min((k for k in (text.find("{"), text.find("[")) if k >= 0), default=-1)
        return close_truncated(text[start:]) if start >= 0 else None
    dec = json.JSONDecoder()
    for chunk in [*_FENCE.findall(text), text]:
        c = chunk.strip()
        try:
            return json.loads(c)
        except ValueError:
            pass
        for k in _top_level_openings(c):
            try:
                obj, _ = dec.raw_decode(c[k:])
            except ValueError:
                continue
            if isinstance(obj, dict | list):
                return obj
    return None


def _top_level_openings(text: str) -> list[int]:
    """Positions of `{` / `[` outside any string and any earlier open bracket (never the inside of an object that
    was cut off, which would pass a fragment for the answer)."""
    out: list[int] = []
    depth = 0
    in_str = esc = False
    for k, ch in enumerate(text):
        if in_str:
            esc, in_str = (False, True) if esc else (ch == "\\", ch != '"')
            continue
        if ch == '"' and depth:
            in_str = True
        elif ch in "{[":
            if depth == 0:
                out.append(k)
            depth += 1
        elif ch in "}]" and depth:
            depth -= 1
    return out


def close_truncated(text: str) -> Any | None:
    """A JSON object or array cut off mid-way, closed after its last complete value: '{"a": 1, "b": ["x", "y'
    → {"a": 1, "b": ["x"]}. None when no prefix closes into valid JSON."""
    stack: list[str] = []
    in_str = esc = False
    cuts: list[tuple[int, str]] = []  # (end of a complete value or container opening, closers needed there)
    for k, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
                cuts.append((k + 1, "".join(reversed(stack))))
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            if k == 0:  # only the root may close empty; an emptied inner object would not validate
                cuts.append((k + 1, "".join(reversed(stack))))
        elif ch in "}]":
            if not stack:
                break
            stack.pop()
            cuts.append((k + 1, "".join(reversed(stack))))
            if not stack:
                break
        elif ch in "0123456789el" and k + 1 < len(text) and text[k + 1] in ",}] \n":
            cuts.append((k + 1, "".join(reversed(stack))))  # end of a number / true / false / null
    for end, closers in reversed(cuts[-200:]):
        head = text[:end].rstrip()
        for candidate in (head + closers, re.sub(r",\s*$", "", head) + closers):
            try:
                obj = json.loads(candidate)
            except ValueError:
                continue
            if isinstance(obj, dict | list):
                return obj
    return None


def _unwrap(obj: Any, name: str) -> Any:
    """{"name": X, "arguments": {...}} / {"X": {...}} / a list holding one of those → the arguments."""
    for _ in range(3):
        if isinstance(obj, list) and len(obj) == 1 and isinstance(obj[0], dict) and (
                "name" in obj[0] or "function" in obj[0]):
            obj = obj[0]
        if not isinstance(obj, dict):
            return obj
        inner = next((obj[k] for k in ("arguments", "parameters", "args", "input") if k in obj), None)
        if inner is not None and set(obj) <= {"name", "type", "id", "arguments", "parameters", "args", "input"}:
            obj = json.loads(inner) if isinstance(inner, str) else inner
            continue
        if "function" in obj and isinstance(obj["function"], dict):
            obj = obj["function"]
            continue
        if len(obj) == 1 and name in obj and isinstance(obj[name], dict):
            obj = obj[name]
            continue
        return obj
    return obj


def tool_args(message: Any, name: str) -> tuple[dict[str, Any] | list[Any] | None, str | None, str]:
    """What a reply says for tool `name`: (arguments, None, how) from its tool call, else from JSON in the message
    text (a model that answered in prose or a fenced block instead of calling the tool); (None, error, '') when
    neither is there. `how` is 'tool_call' or 'content'; the arguments are a dict, or a list when the model
    answered with a bare array (the caller decides whether that is usable). 'truncated' marks arguments cut off at
    the token cap and closed after their last complete value."""
    calls = list(getattr(message, "tool_calls", None) or [])
    call = next((c for c in calls if c.get("name") == name), calls[0] if len(calls) == 1 else None)
    if call is not None and isinstance(call.get("args"), dict):
        return _unwrap(call["args"], name), None, "tool_call"
    error = None
    raws = [str(bad.get("args") or "") for bad in getattr(message, "invalid_tool_calls", None) or []]
    for raw in raws:
        obj = _unwrap(json_in_text(raw), name)
        if isinstance(obj, dict | list):
            return obj, None, "tool_call"
        error = f"the {name} arguments are not valid JSON: {raw[:120]!r}"
    content = message.content if isinstance(getattr(message, "content", None), str) else ""
    if isinstance(getattr(message, "content", None), list):
        content = " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in message.content)
    obj = _unwrap(json_in_text(content), name)
    if isinstance(obj, dict | list):
        return obj, None, "content"
    for raw in [*raws, content]:  # cut off at the token cap: keep what was complete
        obj = _unwrap(json_in_text(raw, truncated=True), name)
        if isinstance(obj, dict | list) and obj:
            return obj, None, "truncated"
    return None, error or f"no {name} tool call and no JSON object in the reply ({content.strip()[:80]!r})", ""
