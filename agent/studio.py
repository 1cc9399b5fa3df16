"""Entry point for LangGraph Studio / server (langgraph.json): the planner graph over the configured library.

The server supplies its own checkpointer, so none is attached here; settings are read once, at this edge.
"""

from __future__ import annotations

from typing import Any


def graph(config: Any = None) -> Any:
    """Build the compiled graph (offline brain unless an LLM endpoint is configured)."""
    from agent.graph import Deps, build_graph
    from agent.run import choose_brain
    from agent.sources import LibrarySource
    from cutpilot.settings import get_settings
    from index.library import Library

    settings = get_settings()
    return build_graph(Deps(settings=settings, source=LibrarySource(Library.open(settings)),
                            brain=choose_brain(settings, None)))
