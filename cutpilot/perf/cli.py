"""`cutpilot perf import|report` and `cutpilot insights`: platform data back into the home, and what it says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

perf_app = typer.Typer(help="Ad performance: import platform exports (T+1), report hooks, clips, retention.",
                       no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
PlatformOpt = Literal["tiktok", "meta", "oceanengine", "qianchuan", "kuaishou"]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@perf_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A platform export: CSV (English or Chinese headers) or API JSON.")],
    platform: Annotated[PlatformOpt, typer.Option("--platform", "-p", help="Which platform exported it.")],
    as_json: JsonOpt = False,
) -> None:
    """Upsert a daily export by (platform, ad, date): a re-pull of recent days replaces them."""
    from cutpilot.errors import InputError
    from cutpilot.perf.store import import_file
    from cutpilot.settings import get_settings

    if not file.is_file():
        raise InputError(f"no such export file: {file}")
    rep = import_file(get_settings(), file, platform)
    if as_json:
        _print_json(rep.model_dump(mode="json"))
        return
    days = f"{rep.dates[0]}…{rep.dates[-1]}" if rep.dates else "no days"
    typer.echo(f"imported {rep.rows_upserted} row(s) from {file.name} ({platform}, {days}): "
               f"{rep.rows_upserted - rep.rows_replaced} new, {rep.rows_replaced} replaced "
               f"({rep.rows_changed} with changed figures); snapshot {rep.snapshot_id}")
    for n in rep.notes:
        typer.echo(f"note: {n}")
    if rep.unmatched:
        typer.echo(f"{len(rep.unmatched)} unmatched ad(s) (stored; credited once a variant with the key is "
                   "registered):")
        for u in rep.unmatched[:20]:
            typer.echo(f"  {u.ad_id}  {u.ad_name}  — {u.reason}")


@perf_app.command("report")
def report_cmd(
    as_json: JsonOpt = False,
    html_out: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")] = None,
) -> None:
    """Top hooks and clips with their credit and uncertainty, retention per variant, what the last import changed."""
    from cutpilot import atomic
    from cutpilot.perf import report
    from cutpilot.settings import get_settings

    rep = report.build(get_settings())
    if html_out is not None:
        atomic.write_text(html_out, report.to_html(rep))
    if as_json:
        _print_json(rep.model_dump(mode="json"))
    else:
        typer.echo(report.text(rep))
        if html_out is not None:
            typer.echo(f"wrote {html_out}")


def insights_cmd(
    as_json: JsonOpt = False,
    k_max: Annotated[int, typer.Option("--k-max", min=2, help="Largest cluster count tried.")] = 8,
    recent_days: Annotated[int, typer.Option("--recent-days", min=1, help="The 'recent' window for trends.")] = 7,
) -> None:
    """Cluster the library's descriptions and tags, name each cluster by its top tags, show which clusters
    perform, and which tags are rising (trend) vs steady (stable)."""
    from cutpilot.perf import insights as insight_mod
    from cutpilot.settings import get_settings

    res = insight_mod.build(get_settings(), k_max=k_max, recent_days=recent_days)
    if as_json:
        _print_json(res.model_dump(mode="json"))
    else:
        typer.echo(insight_mod.text(res))


def register(app: typer.Typer) -> None:
    """Attach `perf` and `insights` to the root command."""
    app.add_typer(perf_app, name="perf")
    app.command("insights")(insights_cmd)
