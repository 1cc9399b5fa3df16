"""Entry point for LangGraph Studio / server (langgraph.json): the planner graph over the configured library.

The server supplies its own checkpointer, so none is attached here, and it cannot pass the run's collaborators as
context: a run that brings none gets this module's default (the configured library and brain, opened on the first
run, not at import). Settings are read once, at this edge.
"""

from __future__ import annotations

from typing import Any


def default_deps() -> Any:
    """The collaborators for a run the server starts without a context (offline brain unless an LLM endpoint is
    configured; the home's product facts)."""
    from agent.graph import Deps
    from agent.run import choose_brain
    from agent.sources import LibrarySource
    from cutpilot.products import load_book
    from cutpilot.settings import get_settings
    from index.library import Library

    settings = get_settings()
    return Deps(settings=settings, source=LibrarySource(Library.open(settings)), brain=choose_brain(settings, None),
                products=load_book(settings))


def graph(config: Any = None) -> Any:
    """Build the compiled graph; its default context is `default_deps()`."""
    from agent.graph import build_graph

    return build_graph(default_context=default_deps)
