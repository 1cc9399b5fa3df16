"""CLI commands of the `index` package: ingest (cli_ingest) and the library / search / labels commands (cli_library)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this package's commands to the root app."""
    from index.cli_ingest import register as reg_ingest
    from index.cli_library import register as reg_library

    reg_ingest(app)
    reg_library(app)
