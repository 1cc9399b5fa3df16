"""Prompts and label prototypes as data files; read with `prompts.read(name)`."""

from __future__ import annotations

from importlib import resources


def read(name: str) -> str:
    """Text of a prompt file shipped in this package (e.g. 'planner/storyboard.md')."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
