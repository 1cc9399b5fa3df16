"""LangChain tools generated from the MediaTools requests (agent.mediatools.REQUESTS), for the LLM planner.

WHY generated: one typed interface, two callers. Each request model is the tool's argument schema (what the model
may fill in) and its docstring the description; the program's collaborators (the tools, settings, library, the
output folder) are bound in through a ToolContext and never appear as arguments the model sees. A tool answers
with JSON for the model and keeps the typed result as the message artifact; a failing tool raises ToolError (one
line), which the graph's tool node turns into an error message to the model instead of ending the run. Tool
modules (rembg, piper, OpenCV…) load only when a tool runs, so importing this module is cheap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from cutpilot.errors import CutpilotError, ToolError
from cutpilot.settings import Settings

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from agent.mediatools import Request, ToolContext
    from index.library import Library


def tool_for(name: str, request: type[Request], ctx: ToolContext) -> BaseTool:
    """One LangChain tool: `request`'s schema as the arguments, `request.run(ctx)` as the body."""
    from langchain_core.tools import StructuredTool

    from agent.mediatools import jsonable

    def call(**kw: object) -> tuple[str, object]:
        try:
            out = request.model_validate(kw).run(ctx)
        except CutpilotError as e:
            raise ToolError(name, e.one_line()) from e
        return json.dumps(jsonable(out), ensure_ascii=False), out

    return StructuredTool.from_function(func=call, name=name, description=" ".join((request.__doc__ or "").split()),
                                        args_schema=request, response_format="content_and_artifact")


def lc_tools(ctx: ToolContext, names: list[str] | None = None) -> list[BaseTool]:
    """The tools for `ctx` (all, or those `names`); search needs a source, register a writable library."""
    from agent.mediatools import LIBRARY_REQUESTS, REQUESTS, STORE_REQUESTS

    table = dict(REQUESTS)
    if ctx.source is not None:
        table |= LIBRARY_REQUESTS
    if ctx.library is not None:
        table |= STORE_REQUESTS
    unknown = sorted(set(names or []) - set(table))
    if unknown:
        raise ToolError("tools", f"not available here: {', '.join(unknown)}")
    return [tool_for(n, r, ctx) for n, r in table.items() if names is None or n in names]


def media_tools(settings: Settings, *, library: Library | None = None, out_dir: Path | None = None
                ) -> list[BaseTool]:
    """The whole tool belt over the real tools; search and register_generated_clip only with a library."""
    from agent.mediatools import ToolContext
    from agent.sources import LibrarySource
    from agent.toolbox import Toolbox
    from tools.assets import default_asset_dir

    ctx = ToolContext(tools=Toolbox(settings), out_dir=out_dir or default_asset_dir(settings),
                      source=LibrarySource(library) if library is not None else None, library=library)
    return lc_tools(ctx)
