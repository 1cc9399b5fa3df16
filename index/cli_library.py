"""`cutpilot clips list|show|edit|export|import`, `cutpilot search` and `cutpilot labels`: review and query the
clip library.

Heavy imports (Qdrant, embedders) happen inside the commands so `cutpilot --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cutpilot.errors import InputError

if TYPE_CHECKING:
    from index.library import Library
    from index.search import SearchFilters

clips_app = typer.Typer(help="Review the clip library: list, show, edit, export, import.", no_args_is_help=True)

ProductOpt = Annotated[str | None, typer.Option("--product", help="Only clips of this product.")]
TypeOpt = Annotated[
    list[str] | None, typer.Option("--content-type", "-t", help="Content type (repeatable; Chinese names ok).")
]
FormatOpt = Annotated[list[str] | None, typer.Option("--format", "-f", help="Format (repeatable; Chinese ok).")]
MinOpt = Annotated[float | None, typer.Option("--min-dur", help="Minimum duration, seconds.")]
MaxOpt = Annotated[float | None, typer.Option("--max-dur", help="Maximum duration, seconds.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _open() -> Library:
    """Open the library; warnings (no CLIP weights, ...) become one plain line on stderr."""
    import warnings

    from cutpilot.settings import get_settings
    from index.library import Library

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lib = Library.open(get_settings())
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    return lib


def _filters(
    product: str | None, types: list[str] | None, formats: list[str] | None, min_dur: float | None,
    max_dur: float | None,
) -> SearchFilters:  # fmt: skip
    from pydantic import ValidationError

    from index.search import SearchFilters

    try:
        return SearchFilters.model_validate(
            {"product": product, "content_types": types or [], "formats": formats or [], "min_dur": min_dur,
             "max_dur": max_dur}
        )  # fmt: skip
    except ValidationError as e:
        raise InputError(f"bad filter: {e.errors()[0]['msg']}") from e


def _check_team_words(lib: Library, filters: SearchFilters) -> None:
    """A filter word that is no canonical name, alias or team label of any clip is a typo, not an empty result."""
    from index.teamlabels import LabelMatch, require_known

    require_known([LabelMatch(w, "content_type", None, "custom") for w in filters.content_type_labels]
                  + [LabelMatch(w, "format", None, "custom") for w in filters.format_labels], lib)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _table(rows: list[dict[str, Any]], title: str, with_score: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for col in ["id", "source", "start–end", "dur", "type", "format", "product", "transcript / description"]:
        t.add_column(col, overflow="fold")
    if with_score:
        t.add_column("score", justify="right")
    for r in rows:
        cells = [
            r["clip_id"][:8], Path(r["source"]).name, f"{r['start']:.1f}–{r['end']:.1f}", f"{r['duration']:.1f}",
            r["content_type"] + (f" ({r['content_type_label']})" if r.get("content_type_label") else ""),
            ",".join(r["format"] + r.get("format_labels", [])), r.get("product") or "",
            _short(r["transcript"] or r["description"]),
        ]  # fmt: skip
        if with_score:
            cells.append(f"{r['score']:.4f}")
        t.add_row(*cells)
    Console().print(t)


@clips_app.command("list")
def list_cmd(
    product: ProductOpt = None,
    content_type: TypeOpt = None,
    fmt: FormatOpt = None,
    min_dur: MinOpt = None,
    max_dur: MaxOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="At most this many clips (1–10000).")
                     ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List clips, with the same filters as search."""
    from index.search import SearchHit

    filters = _filters(product, content_type, fmt, min_dur, max_dur)
    with _open() as lib:
        _check_team_words(lib, filters)
        recs = sorted(lib.records(filters), key=lambda r: (r.source, r.start))
        total = len(recs)
    rows = [{k: v for k, v in SearchHit(clip=r, score=0.0).to_json().items() if k not in ("score", "scores")}
            for r in recs[:limit]]  # fmt: skip
    if as_json:
        _print_json(rows)
        return
    rows = [{**r, "score": 0.0} for r in rows]
    _table(rows, f"{total} clip(s)" + (f", showing {limit}" if total > limit else ""))


@clips_app.command("show")
def show_cmd(
    clip_id: Annotated[str, typer.Argument(help="Clip id (or a unique prefix, as `clips list` shows).")],
    as_json: JsonOpt = False,
) -> None:
    """Show one clip: every field, its words, visual facts and keyframe thumbnail paths."""
    with _open() as lib:
        rec = lib.get(lib.resolve_id(clip_id))
    data = rec.model_dump(mode="json")
    from cutpilot.perf.store import clip_credit
    from cutpilot.settings import get_settings

    perf = clip_credit(get_settings(), rec.clip_id)
    if as_json:
        _print_json({**data, "performance": perf})
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(show_header=False, title=f"clip {rec.clip_id}")
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for key, value in data.items():
        if key == "words":
            value = " ".join(w["text"] for w in value) if value else ""
        elif key == "keyframes":
            value = "\n".join(f"{p} {'(missing)' if not Path(p).exists() else ''}" for p in value)
        elif key == "verified":
            value = ", ".join(value) or "(none)"
        elif not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        t.add_row(key, str(value))
    for c in perf:
        t.add_row(f"performance ({c['platform']})", _credit_line(c))
    if not perf:
        t.add_row("performance", "no ad data yet (cutpilot perf import)")
    Console().print(t)


def _credit_line(c: dict[str, Any]) -> str:
    """'hook 62% (55–69%) · hold +0.12 ± 0.05 · 3 ads · 40,000 impressions · snapshot S00002-…'."""
    parts = []
    if c.get("hook_rate") is not None:
        parts.append(f"hook {c['hook_rate']:.0%} ({c['hook_low']:.0%}–{c['hook_high']:.0%})")
    if c.get("hold_effect") is not None:
        parts.append(f"hold {c['hold_effect']:+.2f} ± {c.get('hold_se') or 0:.2f}")
    if c.get("ctr") is not None:
        parts.append(f"CTR {c['ctr']:.2%}")
    parts += [f"{c.get('n_ads', 0)} ads", f"{c.get('impressions', 0):,} impressions", f"snapshot {c['snapshot']}"]
    return " · ".join(parts)


@clips_app.command("edit")
def edit_cmd(
    clip_id: Annotated[str, typer.Argument(help="Clip id (or unique prefix).")],
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help='field=value, e.g. content_type=pain_point, tags="a,b", language=zh (repeatable)'),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Correct a clip's fields; they become human-verified and survive re-ingest. Re-embeds the clip."""
    from cutpilot.models import EDITABLE_FIELDS

    if not clip_id.strip():
        raise InputError("clip id is empty; give an id or a unique prefix (see `cutpilot clips list`)")
    if not sets:
        raise InputError(f"clips edit {clip_id}: nothing to change; give --set field=value (editable fields: "
                         f"{', '.join(EDITABLE_FIELDS)})")
    from cutpilot.cli_args import parse_sets

    changes = parse_sets(sets)
    from index.library import parse_changes

    parse_changes(changes)  # bad fields and values fail here, before the library is opened
    with _open() as lib:
        rec = lib.edit(lib.resolve_id(clip_id), changes)
    if as_json:
        _print_json(rec.model_dump(mode="json"))
    else:
        typer.echo(f"updated {rec.clip_id}: {', '.join(changes)} (verified: {', '.join(rec.verified)})")


@clips_app.command("export")
def export_cmd(path: Annotated[Path, typer.Argument(help="Output .jsonl or .csv")]) -> None:
    """Export every clip record (lossless; import it back with `clips import`)."""
    with _open() as lib:
        n = lib.export(path)
    typer.echo(f"exported {n} clip(s) to {path}")


@clips_app.command("import")
def import_cmd(path: Annotated[Path, typer.Argument(help="A .jsonl or .csv written by `clips export`")]) -> None:
    """Import clip records (validated first: a bad row writes nothing)."""
    with _open() as lib:
        n = lib.import_(path)
    typer.echo(f"imported {n} clip(s) from {path}")


def search_cmd(
    query: Annotated[str, typer.Argument(help='What you are looking for, zh or en, e.g. "侧睡 细纹"')] = "",
    product: ProductOpt = None,
    content_type: TypeOpt = None,
    fmt: FormatOpt = None,
    min_dur: MinOpt = None,
    max_dur: MaxOpt = None,
    image: Annotated[Path | None, typer.Option("--image", help="Example image (CLIP similarity, if on).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid search: dense text + BM25 keywords (+ CLIP image), fused with RRF, under payload filters."""
    if not query.strip() and image is None:
        raise InputError("give a query text or --image")
    filters = _filters(product, content_type, fmt, min_dur, max_dur)
    with _open() as lib:
        _check_team_words(lib, filters)
        hits = lib.search(query, filters, image=image, limit=limit)
    rows = [h.to_json() for h in hits]
    if as_json:
        _print_json(rows)
    else:
        _table(rows, f"{len(rows)} hit(s) for {query!r}", with_score=True)


def labels_cmd(as_json: JsonOpt = False) -> None:
    """The taxonomy (content types and formats, with Chinese names), each team label mapped onto it, and counts."""
    from index.teamlabels import mapper_for, summary

    with _open() as lib:
        data = summary(lib.records(), mapper_for(lib.embedder))
    if as_json:
        _print_json(data)
        return
    from rich.console import Console
    from rich.table import Table

    def words(labels: list[dict[str, Any]]) -> str:
        return ", ".join(f"{t['label']} ×{t['clips']}" + (f" ({t['how']} {t['score']:.2f})" if t["score"] else
                                                          f" ({t['how']})") for t in labels)

    t = Table(title=f"taxonomy and team labels ({data['clips']} clip(s))")
    for col in ("field", "name", "中文", "clips", "team labels"):
        t.add_column(col, justify="right" if col == "clips" else "left", overflow="fold")
    for field, key in (("content type", "content_types"), ("format", "formats")):
        for e in data[key]:
            t.add_row(field, e["name"], "、".join([e["zh"], *e["aliases"]] if e["zh"] else []), str(e["clips"]),
                      words(e["team_labels"]))
    custom = [x for x in data["team_labels"] if x["field"] == "format" and x["maps_to"] is None]
    if custom:
        t.add_row("format", "(custom)", "", "", words(custom))
    Console().print(t)


library_app = typer.Typer(help="The library as a whole: move it between stores.", no_args_is_help=True)


@library_app.command("migrate")
def migrate_cmd(
    to: Annotated[str | None, typer.Option("--to", help="target store: edge:<home>, local:<home> or "
                                           "http(s)://host:port (default: this home's store)")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="source store, same forms (default: this home's "
                                              "store)")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=10_000, help="points per scroll/upsert")] = 256,
    sample: Annotated[int, typer.Option("--sample", min=0, max=10_000, help="random points whose vectors and "
                                        "payloads are compared after the copy")] = 32,
    as_json: JsonOpt = False,
) -> None:
    """Copy the clip collection to (or from) another store — a Qdrant server, Qdrant Edge, qdrant-client local.

    Batched, resumable (a re-run continues from the checkpoint under the home; upserts are idempotent) and
    verified by counts and a random sample of vectors. The target must be empty or hold the same vector params.
    """
    from cutpilot.settings import get_settings
    from index.migrate import home_endpoint, migrate, parse_url

    if to is None and from_ is None:
        raise InputError("library migrate: give --to URL and/or --from URL (edge:<home>, local:<home> or "
                         "http(s)://host:port)")
    settings = get_settings()
    dst = parse_url(to) if to is not None else None
    src = parse_url(from_) if from_ is not None else None
    src = src or home_endpoint(settings)
    dst = dst or home_endpoint(settings)
    shown = [-1]

    def progress(done: int, total: int) -> None:
        if done != shown[0]:
            shown[0] = done
            typer.echo(f"\rcopied {done}/{total} points", err=True, nl=done >= total)

    res = migrate(settings, src, dst, batch=batch, sample=sample, progress=progress)
    if as_json:
        _print_json(res.model_dump())
        return
    resumed = f" (resumed after {res.resumed_from})" if res.resumed_from else ""
    typer.echo(f"migrated {res.copied} point(s){resumed} {res.source} → {res.target} in {res.wall_s:.1f} s; "
               f"counts {res.source_count} → {res.target_count}; {res.sampled} sampled, min cosine "
               f"{res.min_cosine:.6f}")


def register(app: typer.Typer) -> None:
    """Attach `clips ...`, `library ...`, `search` and `labels` to the root app."""
    app.add_typer(clips_app, name="clips")
    app.add_typer(library_app, name="library")
    app.command("search")(search_cmd)
    app.command("labels")(labels_cmd)
