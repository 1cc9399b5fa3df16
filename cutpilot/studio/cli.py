"""`cutpilot serve`: the studio (web UI + REST API) over this CUTPILOT_HOME."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach the serve command to the root app."""

    @app.command("serve")
    def serve_cmd(
        host: Annotated[str, typer.Option("--host", help="address to bind; anything but loopback needs "
                                          "CUTPILOT_API_TOKEN")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port, 1–65535")] = 8765,
        planner: Annotated[str | None, typer.Option("--planner", help="offline | llm (default: llm when an "
                                                    "endpoint is configured)")] = None,
        quality: Annotated[str, typer.Option("--quality", help="draft | standard | high (final renders)")] = "draft",
    ) -> None:
        """Web studio and REST API: library, ingest, make (plan → review → render), batches, runs."""
        from cutpilot.errors import InputError
        from cutpilot.settings import get_settings
        from cutpilot.studio.security import check_bind

        if planner not in (None, "offline", "llm"):
            raise InputError(f"bad value {planner!r} for --planner; allowed: one of offline, llm")
        if quality not in ("draft", "standard", "high"):
            raise InputError(f"bad value {quality!r} for --quality; allowed: one of draft, standard, high")
        settings = get_settings()
        check_bind(host, settings.api_token)
        import uvicorn

        from cutpilot.studio.app import create_app
        from cutpilot.studio.service import Studio

        studio = Studio(settings, planner=planner, quality=quality)
        app = create_app(settings, studio=studio)
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"cutpilot studio on http://{shown}:{port}/  (home {settings.home})", err=True)
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning")
        finally:
            studio.close()
