"""CLI commands of the `evals` package (registered on the root app by cutpilot.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this package's commands to the root app."""
