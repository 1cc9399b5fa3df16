"""Option values shared by several commands, parsed one way."""

from __future__ import annotations

from cutpilot.errors import InputError


def parse_sets(sets: list[str]) -> dict[str, str]:
    """`--set field=value` options as a mapping (the value may itself contain '=')."""
    changes: dict[str, str] = {}
    for item in sets:
        if "=" not in item:
            raise InputError(f"--set needs field=value, got {item!r}")
        key, value = item.split("=", 1)
        changes[key.strip()] = value
    return changes
