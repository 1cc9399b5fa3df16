"""The one adapter to OpenAI-compatible chat / vision endpoints (langchain-openai is imported only here).

Works with OpenAI, DeepSeek, Qwen, Ollama, vLLM: anything that speaks the chat-completions API.
"""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from cutpilot.errors import ProviderError
from cutpilot.settings import Settings

T = TypeVar("T", bound=BaseModel)


def chat_model(settings: Settings, *, model: str | None = None, temperature: float = 0.0) -> Any:
    """A ChatOpenAI bound to the configured endpoint; ProviderError when none is configured."""
    name = model or settings.llm_model
    if not name or not (settings.openai_api_key or settings.openai_base_url):
        raise ProviderError("no LLM endpoint configured (set OPENAI_BASE_URL / OPENAI_API_KEY and CUTPILOT_LLM_MODEL)")
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=name,
        api_key=settings.openai_api_key or "not-needed",  # type: ignore[arg-type]
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_retries,
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
