"""CLI commands of the `agent` package: make, chat, resume, batch, demo. Settings are read here, once, and passed
down; heavy imports happen inside the commands so `cutpilot --help` stays fast."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from cutpilot.outdir import check_out

Planner = typer.Option("--planner", help="offline | llm (default: llm when an endpoint is configured)")
# Option values are checked by the parser, before a library is opened or anything is planned; the ranges are
# cutpilot.limits' (MIN_AD_S..MAX_AD_S), spelled out here because typer reads them at import time.
Quality = Literal["draft", "standard", "high"]
Aspect = Literal["9:16", "1:1", "4:5", "16:9"]
Lang = Literal["zh", "en"]
PlannerName = Literal["offline", "llm"]
Force = typer.Option("--force", help="write into a non-empty --out folder that is not a cutpilot output")


def _open_library(settings: Any) -> Any:
    import warnings

    from index.library import Library

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lib = Library.open(settings)
    from rich.console import Console

    for w in caught[:1]:
        Console(stderr=True).print(f"[yellow]note[/]: {w.message}", highlight=False)
    return lib


@contextmanager
def _front_door(settings: Any, planner: Any = None) -> Iterator[Any]:
    """The configured library and the planner's front door over it, both closed on the way out."""
    from agent.run import FrontDoor

    lib = _open_library(settings)
    try:
        with FrontDoor(settings, lib, planner=planner) as door:
            yield door
    finally:
        lib.close()


def _answer(text: str | None) -> str | dict[str, Any] | None:
    """A review answer: approve / a revision in words, or a per-shot action as JSON
    (`{"action": "swap", "slot": 1, "clip_id": "…"}`; slots are 0-based)."""
    if text is not None and text.strip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            from cutpilot.errors import InputError

            raise InputError("the answer starts with '{' but is not JSON: "
                              '{"action": "swap", "slot": 1, "clip_id": "…"}') from None
        if isinstance(data, dict):
            return data
    return text


def _base(duration: float | None, aspect: str | None, product: str | None, lang: str | None) -> Any:
    from pydantic import ValidationError

    from cutpilot.storyboard import Brief

    data: dict[str, Any] = {}
    for k, v in (("duration_s", duration), ("aspect", aspect), ("product", product), ("lang", lang)):
        if v is not None:
            data[k] = v
    try:
        return Brief.model_validate(data) if data else None
    except ValidationError as e:
        from cutpilot.errors import InputError

        err = e.errors()[0]
        opt = {"duration_s": "--duration"}.get(str(err["loc"][0]), f"--{err['loc'][0]}")
        raise InputError(f"bad value for {opt}: {err['msg']}") from None


def _print_result(r: Any, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    if as_json:
        print(json.dumps(r.summary(), ensure_ascii=False, indent=2))
        return
    c = Console()
    t = Table(title=f"{r.storyboard.brief.text[:60]}  ({r.timeline.duration_ms / 1000:g} s)")
    for col in ("#", "role", "clip / asset", "s", "line"):
        t.add_column(col)
    for row in r.summary()["slots"]:
        t.add_row(str(row["shot"]), row["role"], (row["clip_id"] or "")[:8] or str(row["asset"]),
                  f"{(row['end'] or 0) - (row['start'] or 0):.1f}", row["line"])
    c.print(t)
    c.print(f"brain: [bold]{r.run.brain}[/]" + (f" ({r.run.model})" if r.run.model else "")
            + f"   thread: {r.thread_id}")
    for w in r.run.warnings:
        c.print(f"[yellow]warning[/]: {w}", highlight=False)
    for k, p in r.paths.items():
        c.print(f"{k:>10}: {p}", highlight=False)


def _review_table(review: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"storyboard ({review['total_s']:g} s, music {review['music']}, captions {review['captions_lang']})"
    t = Table(title=title)
    for col in ("#", "role", "clip / asset", "s", "line", "thumbnail"):
        t.add_column(col)
    for r in review["slots"]:
        t.add_row(str(r["shot"]), r["role"], (r["clip_id"] or "")[:8] or str(r["asset"]), f"{r['seconds']:.1f}",
                  r["line"] + (f"\n[{r['line_source']}]" if r.get("line_source") == "caption" else ""),
                  r["thumbnail"] or "")
    c = Console()
    c.print(t)
    ans = review.get("answer")
    if ans:  # what the last revision did, or why it could not
        mark = "[green]applied[/]" if ans.get("applied") else "[yellow]not applied[/]"
        c.print(f"{mark}: {ans.get('message') or ans.get('kind')}", highlight=False)
        for alt in ans.get("alternatives") or []:
            c.print(f"  try: {alt}", highlight=False)


QUIT = {"quit", "exit", "q", ":q", "bye", "退出", "结束", "不做了"}


def _chat_loop(turn: Any, door: Any) -> None:
    from rich.console import Console
    from rich.prompt import Prompt

    from cutpilot.errors import InputError

    c = Console()
    while turn.review is not None:
        _review_table(turn.review)
        c.print(f"[dim]{turn.review['hint']}  (thread {turn.thread_id}; Ctrl-C to stop, resume later)[/]",
                highlight=False)
        raw = Prompt.ask("approve / revise")
        if raw.strip().lower() in QUIT:
            c.print(f"stopped; the storyboard is kept: cutpilot resume {turn.thread_id}", highlight=False)
            return
        try:
            answer = _answer(raw)
        except InputError as e:
            c.print(f"[yellow]{e}[/]", highlight=False)
            continue
        turn = door.resume(turn.thread_id, answer)
    _print_result(turn.result, False)


def register(app: typer.Typer) -> None:
    """Attach this package's commands to the root app."""

    @app.command("make")
    def make_cmd(
        brief: Annotated[str, typer.Argument(help="what ad to make, zh or en")],
        duration: Annotated[float | None, typer.Option("--duration", min=3, max=180, help="seconds, 3–180")] = None,
        aspect: Annotated[Aspect | None, typer.Option("--aspect", help="9:16 | 1:1 | 4:5 | 16:9")] = None,
        product: Annotated[str | None, typer.Option("--product", help="at most 200 characters")] = None,
        lang: Annotated[Lang | None, typer.Option("--lang", help="zh | en")] = None,
        quality: Annotated[Quality, typer.Option("--quality", help="draft | standard | high")] = "draft",
        out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
        force: Annotated[bool, Force] = False,
        planner: Annotated[PlannerName | None, Planner] = None,
        no_render: Annotated[bool, typer.Option("--no-render", help="plan only (no ad.mp4)")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print a JSON summary")] = False,
        strict: Annotated[bool, typer.Option("--strict", help="fail on any claim the ad may not make (ad law, "
                                             "banned claims, efficacy without evidence) instead of fixing it")] = False,
        variants: Annotated[int, typer.Option("--variants", min=1, max=20, help="N test variants (distinct hooks), "
                                              "each with a variant key; writes manifest.csv + shots.csv")] = 1,
        no_perf: Annotated[bool, typer.Option("--no-perf", help="rank by relevance only, ignoring imported ad "
                                              "performance")] = False,
    ) -> None:
        """Brief → ad.mp4, storyboard.json, timeline.json, captions.srt, timeline.otio, run.json."""
        from agent.brief import precheck

        precheck(brief)  # before the planner is even imported: a bad request is refused in milliseconds
        from cutpilot.settings import get_settings

        check_out(out, force)
        base = _base(duration, aspect, product, lang)
        settings = get_settings()
        if no_perf:
            settings = settings.model_copy(update={"perf": False})
        if variants > 1:
            _make_variants(brief, base, variants, out, settings, planner, quality, not no_render, strict)
            return
        with _front_door(settings, planner) as door:
            r = door.make(brief, out_dir=out, render=not no_render, quality=quality, base=base, strict=strict)
        _print_result(r, as_json)

    def _make_variants(brief: str, base: Any, n: int, out: Path, settings: Any, planner: Any, quality: Any,
                       render: bool, strict: bool) -> None:
        """`make --variants N`: a one-row batch (its brief.yaml is kept in the folder, so the run can be repeated
        or resumed with `cutpilot batch`)."""
        import yaml

        from agent.batch import run_batch
        from cutpilot.atomic import write_text

        row: dict[str, Any] = {"id": "ad", "brief": brief, "variants": n, "strict": strict}
        if base is not None:
            row.update({k: v for k, v in base.model_dump(mode="json").items()
                        if k in ("duration_s", "aspect", "product", "lang") and v is not None
                        and v != type(base).model_fields[k].default})
        out.mkdir(parents=True, exist_ok=True)
        spec = out / "brief.yaml"
        write_text(spec, yaml.safe_dump({"briefs": [row]}, allow_unicode=True, sort_keys=False))
        lib = _open_library(settings)
        try:
            s = run_batch(spec, settings=settings, library=lib, out_dir=out, planner=planner, render=render,
                          quality=quality, progress=True)
        finally:
            lib.close()
        print(f"{s['ok'] + s['skipped']} of {n} variants → {s['manifest']}")
        for r in s["results"]:
            print(f"  {r.get('variant_key', '-'):10} {r['status']:8} {r.get('ad_name') or r.get('error', '')}")
        if s["failed"]:
            raise typer.Exit(1)

    @app.command("chat")
    def chat_cmd(
        brief: Annotated[str | None, typer.Argument(help="the request (asked for when omitted)")] = None,
        out: Annotated[Path, typer.Option("--out")] = Path("out"),
        quality: Annotated[Quality, typer.Option("--quality")] = "draft",
        planner: Annotated[PlannerName | None, Planner] = None,
        force: Annotated[bool, Force] = False,
    ) -> None:
        """Interactive: request → storyboard → approve / revise → render (resumable by thread id)."""
        from rich.prompt import Prompt

        from agent.brief import precheck
        from cutpilot.settings import get_settings

        check_out(out, force)
        settings = get_settings()
        text = brief or Prompt.ask("what ad should I make?")
        precheck(text)
        with _front_door(settings, planner) as door:
            _chat_loop(door.start(text, out_dir=out, quality=quality), door)

    @app.command("resume")
    def resume_cmd(
        thread_id: Annotated[str, typer.Argument(help="thread id printed by make / chat")],
        answer: Annotated[str | None, typer.Option(
            "--answer", help="approve, a revision, or a per-shot action as JSON (slots 0-based): "
                             '\'{"action": "swap", "slot": 1, "clip_id": "…"}\', lock / line / research')] = None,
    ) -> None:
        """Continue a paused or crashed run from its sqlite checkpoint."""
        from cutpilot.settings import get_settings

        reply = _answer(answer)
        settings = get_settings()
        with _front_door(settings) as door:
            turn = door.resume(thread_id, reply)
            if answer is None and turn.review is not None:
                _chat_loop(turn, door)
            elif turn.review is not None:
                _review_table(turn.review)
            else:
                _print_result(turn.result, False)

    @app.command("batch")
    def batch_cmd(
        file: Annotated[Path, typer.Argument(help=".yaml | .jsonl | .csv, one brief per row")],
        out: Annotated[Path, typer.Option("--out")] = Path("batch-out"),
        force: Annotated[bool, Force] = False,
        jobs: Annotated[int, typer.Option("--jobs", min=1, max=8)] = 1,
        quality: Annotated[Quality, typer.Option("--quality")] = "draft",
        planner: Annotated[PlannerName | None, Planner] = None,
        no_render: Annotated[bool, typer.Option("--no-render")] = False,
        no_perf: Annotated[bool, typer.Option("--no-perf", help="rank by relevance only")] = False,
        executor: Annotated[str | None, typer.Option("--executor", help="local (this process, default) | ray "
                                                     "(one task per variant; RAY_ADDRESS or a private cluster)")]
        = None,
    ) -> None:
        """Every brief × variants matrix; fail-and-continue; re-run to resume; writes summary.json, manifest.csv
        (variant keys and platform ad names) and shots.csv."""
        from agent.batch import run_batch
        from cutpilot.executors import resolve
        from cutpilot.settings import get_settings

        check_out(out, force)
        settings = get_settings()
        where = resolve(executor, settings.executor)
        if no_perf:
            settings = settings.model_copy(update={"perf": False})
        lib = _open_library(settings)
        try:
            s = run_batch(file, settings=settings, library=lib, out_dir=out, planner=planner, render=not no_render,
                          quality=quality, jobs=jobs, executor=where, ray_address=settings.ray_address)
        finally:
            lib.close()
        print(f"{s['ok']} made, {s['skipped']} already done, {s['failed']} failed → {out / 'summary.json'}")
        for r in s["results"]:
            if r["status"] == "failed":
                print(f"  failed {r['key']}: {r['error']}")
        if s["failed"]:
            raise typer.Exit(1)

    @app.command("demo")
    def demo_cmd(
        out: Annotated[Path, typer.Option("--out")] = Path("demo-out"),
        force: Annotated[bool, Force] = False,
        brief: Annotated[str, typer.Option("--brief")] = "make a 20s 9:16 ad for LEGO Technic",
    ) -> None:
        """Ingest the bundled samples/, search them, and make an ad offline."""
        from rich.console import Console

        from agent.run import make_ad
        from cutpilot.errors import InputError
        from cutpilot.settings import get_settings
        from index.ingest import ingest

        check_out(out, force)
        settings = get_settings()
        samples = Path("samples")
        if not samples.is_dir():
            raise InputError("samples/ not found: run the demo from the repository root")
        c = Console()
        lib = _open_library(settings)
        try:
            from cutpilot.products import ProductStore

            added, updated = ProductStore(settings).import_file(samples / "products.yaml")
            c.print(f"products: {added + updated} with facts (samples/products.yaml)")
            rep = ingest([samples], settings, lib, annotations=samples / "annotations.jsonl")
            c.print(f"library: {lib.count()} clips ({getattr(rep, 'clips', '?')} from samples/)")
            hits = lib.search("LEGO Technic product shot", limit=3)
            for h in hits:
                c.print(f"  search hit {h.clip.clip_id[:8]} {h.clip.content_type.value:<16} {h.clip.description[:60]}",
                        highlight=False)
            r = make_ad(brief, settings=settings, library=lib, out_dir=out, planner="offline")
        finally:
            lib.close()
        _print_result(r, False)
        c.print(f"[bold green]done[/]: {r.ad} (brain: {r.run.brain})")
