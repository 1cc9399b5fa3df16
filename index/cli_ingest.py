"""`cutpilot ingest PATH... [--annotations FILE] [--product NAME] [--jobs N] [--executor local|ray]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach the ingest command to the root app."""

    @app.command("ingest")
    def ingest_cmd(
        paths: Annotated[list[Path], typer.Argument(help="Video files or folders (searched recursively).")],
        annotations: Annotated[
            Path | None, typer.Option("--annotations", "-a", help="Human clip records (.jsonl or .csv).")
        ] = None,
        product: Annotated[str | None, typer.Option("--product", "-p", help="Product shown in this footage.")] = None,
        jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=16, help="Sources processed in parallel.")] = 1,
        no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars (logs, CI).")] = False,
        wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for another ingest on this "
                                             "home to finish (default: fail at once, naming it).")] = 0.0,
        executor: Annotated[str | None, typer.Option("--executor", help="local (this process, default) | ray (one "
                                                     "task per source window on Ray workers that load the models "
                                                     "once; RAY_ADDRESS or a private cluster)")] = None,
    ) -> None:
        """Slice footage into 1–10 s clips, transcribe, describe, label and add them to the clip library."""
        from rich.console import Console
        from rich.table import Table

        from cutpilot.executors import resolve
        from cutpilot.settings import get_settings
        from index.ingest import ingest
        from index.library import Library
        from index.lock import ingest_lock

        settings = get_settings()
        where = resolve(executor, settings.executor)
        out, err = Console(), Console(stderr=True)
        # one writer per home; the store itself is held only while a finished batch is committed, so search,
        # clips and make keep working during a long ingest
        with ingest_lock(settings.home).hold(wait, on_wait="waiting for the other ingest"), \
                Library.open(settings, lazy=True) as lib:
            report = ingest(paths, settings, lib, annotations=annotations, product=product, jobs=jobs,
                            progress=not no_progress, executor=where, ray_address=settings.ray_address)
            total = lib.count()
        for row in report.rows:
            if row.status == "failed":
                err.print(f"[red]failed[/] {row.path}: {row.message}", highlight=False, soft_wrap=True)
            elif row.status == "warning":
                err.print(f"[yellow]warning[/] {row.path}: {row.message}", highlight=False, soft_wrap=True)
        table = Table(title="ingest summary")
        for col in ("file", "status", "clips", "seconds", "lang", "note"):
            table.add_column(col, justify="right" if col in ("clips", "seconds") else "left")
        style = {"ok": "green", "warning": "yellow", "skipped": "cyan", "failed": "red"}
        for row in report.rows:
            if row.path == "(run)":
                continue
            table.add_row(Path(row.path).name, f"[{style[row.status]}]{row.status}[/]", str(row.clips),
                          f"{row.duration:.1f}", row.language or "-", row.message)
        out.print(table)
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(report.stage_seconds.items(), key=lambda x: -x[1]))
        lines = [r for r in report.rows if annotations is not None and r.path.startswith(f"{annotations} line ")]
        bad_lines = [r for r in lines if r.status == "failed"]
        failed = [r for r in report.failed if r not in bad_lines]
        files = len(report.rows) - len(lines)
        out.print(f"{report.clips} clips from {files - len(failed)} files; library holds {total}. "
                  f"{report.footage_seconds:.1f} s footage in {report.wall_seconds:.1f} s "
                  f"({report.realtime_factor:.1f}x real time). Stages: {stages or '-'}", highlight=False)
        skipped = f"; {len(bad_lines)} annotation line(s) skipped" if bad_lines else ""
        if failed:
            from cutpilot.errors import MediaError

            raise MediaError(f"{len(failed)} of {files} files failed (listed above); the "
                             f"rest were ingested{skipped}")
        if bad_lines and annotations is not None:
            from cutpilot.errors import InputError

            raise InputError(f"{len(bad_lines)} line(s) of {annotations.name} skipped (listed above); every other "
                             "line was applied")
