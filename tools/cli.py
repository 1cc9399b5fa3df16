"""CLI commands of the `tools` package (registered on the root app by cutpilot.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer


def register(app: typer.Typer) -> None:
    """Attach this package's commands to the root app."""

    @app.command("render")
    def render_cmd(
        timeline: Annotated[Path, typer.Argument(help="Timeline JSON")],
        out: Annotated[Path, typer.Option("--out", "-o", help="output .mp4")] = Path("ad.mp4"),
        quality: Annotated[Literal["draft", "standard", "high"], typer.Option("--quality", "-q")] = "standard",
        preview: Annotated[bool, typer.Option("--preview", help="quick low-res moviepy preview instead")] = False,
        cache_dir: Annotated[Path | None, typer.Option("--cache-dir")] = None,
        force: Annotated[bool, typer.Option("--force", help="overwrite an --out file cutpilot did not render")] = False,
    ) -> None:
        """Render a Timeline JSON to an H.264/AAC mp4 (ffmpeg; cached segments).

        Refused before any work: a timeline over 10 min (end card included), a frame over 4096 px a side, fps
        outside 1–120, more than 300 video items or 1000 captions, card text over 200 characters.
        """
        from rich.console import Console

        from cutpilot.errors import InputError
        from cutpilot.outdir import check_out
        from cutpilot.settings import get_settings
        from cutpilot.timeline import Timeline

        check_out(out, force, kind="file")
        settings = get_settings()
        from cutpilot.mediauri import resolve_timeline

        tl = resolve_timeline(Timeline.load(timeline), settings)
        console = Console()
        if preview:
            from tools.mpy import preview as mpy_preview

            path = mpy_preview(tl, out, settings=settings)
            console.print(f"preview → {path}")
            return
        if quality not in ("draft", "standard", "high"):
            raise InputError(f"unknown quality {quality!r}; use draft, standard or high")
        from tools.render import render

        res = render(tl, out, settings=settings, quality=quality, cache_dir=cache_dir, progress=True)
        how = "cached" if res.cached else f"{res.segments_rendered}/{res.segments_total} segments rendered"
        loud = f", {res.audio_lufs:.1f} LUFS" if res.audio_lufs is not None else ""
        console.print(f"{res.path}  {res.duration_s:.2f} s  ({how}, {res.wall_s:.1f} s{loud})")

    timeline_app = typer.Typer(help="Timeline IR utilities.", no_args_is_help=True)
    app.add_typer(timeline_app, name="timeline")

    @timeline_app.command("export")
    def export_cmd(
        timeline: Annotated[Path, typer.Argument(help="Timeline JSON")],
        otio: Annotated[Path | None, typer.Option("--otio", help="write OpenTimelineIO (.otio)")] = None,
        srt: Annotated[Path | None, typer.Option("--srt", help="write captions as SRT")] = None,
    ) -> None:
        """Export a Timeline to OpenTimelineIO (finish in Premiere/Resolve) and/or SRT captions."""
        from cutpilot.errors import InputError
        from cutpilot.timeline import Timeline

        tl = Timeline.load(timeline)
        if otio is None and srt is None:
            raise InputError("nothing to export: give --otio and/or --srt")
        from cutpilot import atomic

        if otio is not None:
            with atomic.replacing(otio) as tmp:
                tl.write_otio(tmp)
            print(f"otio → {otio}")
        if srt is not None:
            atomic.write_text(srt, tl.to_srt())
            print(f"srt → {srt}")

    @timeline_app.command("validate")
    def validate_cmd(timeline: Annotated[Path, typer.Argument(help="Timeline JSON")]) -> None:
        """Check a Timeline JSON; prints its length or one line saying what is wrong."""
        from cutpilot.timeline import Timeline

        tl = Timeline.load(timeline)
        print(f"ok: {len(tl.video)} video items, {tl.duration_ms / 1000:.2f} s, {tl.output.width}x{tl.output.height}")
