"""JSON Lines input: one object per line, numbered, with a one-line error naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cutpilot.errors import InputError


def read_objects(lines: Iterable[str], name: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; the first bad line stops the read before any work."""
    rows: list[tuple[int, dict[str, Any]]] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{name} line {i}: not valid JSON ({e.msg})") from e
        if not isinstance(obj, dict):
            raise InputError(f"{name} line {i}: each line must be a JSON object")
        rows.append((i, obj))
    return rows
