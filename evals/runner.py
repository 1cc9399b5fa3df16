"""The eval runner: golden library → every case through the real agent → scores → results, report, gate.

The gate compares each scorer's mean with the committed baseline (mean − tolerance). A case that errors scores 0
on every scorer the baseline knows, so a crash can never look like an improvement. Updating the baseline is an
explicit flag, and the report lists what moved.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.sources import LibrarySource
from cutpilot.errors import CutpilotError, EvalRegressionError, InputError
from cutpilot.media import probe
from cutpilot.procs import child_kwargs
from cutpilot.products import Product, ProductBook, load_products_file
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief, Storyboard
from cutpilot.timeline import ClipItem, Timeline
from evals.golden import GoldenLibrary, build_golden
from evals.schema import Case, load_cases, merged
from evals.scorers import RenderFacts, RunOutputs, Score, revision_answered, revision_locality, score_all

EVALS_DIR = Path(__file__).parent
DEFAULT_BASELINE = EVALS_DIR / "baseline.json"
PRODUCTS_PATH = EVALS_DIR / "golden" / "products.yaml"
RESULTS_DIR = EVALS_DIR / "results"
DEFAULT_TOLERANCE = 0.03
# Wall time is noisy on a shared 2-core runner: gate it loosely.
# Intelligibility is three renders heard by Whisper through a music bed: ±0.13 between identical runs measured.
TOLERANCES = {"run_time": 0.25, "render_validity": 0.1, "narration_agreement": 0.05, "intelligibility": 0.15}

MakeFn = Callable[..., Any]


class Row(BaseModel):
    """One scored run: a case (or one revision turn of it, `turn` > 0)."""

    case: str
    turn: int = 0
    request: str = ""
    ok: bool = True
    error: str | None = None
    wall_s: float = 0.0
    brain: str | None = None
    model: str | None = None
    scores: list[dict[str, Any]] = Field(default_factory=list)
    slots: list[dict[str, Any]] = Field(default_factory=list)

    def value(self, name: str) -> float | None:
        return next((s["value"] for s in self.scores if s["name"] == name), None)


class EvalReport(BaseModel):
    started_at: str
    planner: Literal["offline", "llm"]
    render: bool
    cases: int
    rows: list[Row]
    means: dict[str, float]
    counts: dict[str, int]
    baseline: dict[str, Any] | None = None
    regressions: list[str] = Field(default_factory=list)
    moved: list[str] = Field(default_factory=list)
    wall_s: float = 0.0
    golden_s: float = 0.0
    judge_model: str | None = None
    results_path: str | None = None
    report_path: str | None = None


# --- one run ---------------------------------------------------------------------------------------------------
def render_facts(path: Path, settings: Settings) -> RenderFacts:
    """ffprobe streams + ffmpeg ebur128 integrated loudness of a rendered ad."""
    p = probe(path, settings.ffprobe)
    vdur = adur = None
    for st in p.raw.get("streams", []):
        d = st.get("duration")
        if d is None:
            continue
        if st.get("codec_type") == "video" and vdur is None:
            vdur = float(d)
        elif st.get("codec_type") == "audio" and adur is None:
            adur = float(d)
    lufs = None
    if p.has_audio:
        cmd = [settings.ffmpeg, "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0",
               "-af", "ebur128=framelog=verbose", "-f", "null", "-"]
        proc = subprocess.run(cmd, capture_output=True, text=True, **child_kwargs())
        m = re.findall(r"I:\s+(-?[\d.]+) LUFS", proc.stderr)
        lufs = float(m[-1]) if m and proc.returncode == 0 else None
    return RenderFacts(duration_s=p.duration, has_video=p.has_video, has_audio=p.has_audio, width=p.width,
                       height=p.height, video_duration_s=vdur, audio_duration_s=adur, integrated_lufs=lufs)


def speech_spans(tl: Timeline) -> list[tuple[int, int]]:
    """Where the ad means to be heard: its voiceover items and the clips that play their own speech."""
    spans = [(v.start_ms, v.start_ms + (v.duration_ms or tl.duration_ms - v.start_ms)) for v in tl.voiceover]
    spans += [(v.start_ms, v.end_ms) for v in tl.video if isinstance(v, ClipItem) and v.audio]
    return sorted(spans)


def heard_text(path: Path, lang: str, settings: Settings, spans: list[tuple[int, int]] | None = None,
               vocabulary: tuple[str, ...] = ()) -> str:
    """What the packaged Whisper hears in a rendered ad, language forced to the ad's: in the stretches where the
    ad speaks when they are given (the same transcriber as the synthesis-time ASR gate), else the whole track."""
    from tools.voicecheck import transcribe_spans, transcribe_text

    if spans is not None:
        return transcribe_spans(path, spans, lang, settings, vocabulary=vocabulary) if spans else ""
    return transcribe_text(path, lang, settings, vocabulary)


def listen(facts: RenderFacts, path: Path, lang: str, settings: Settings,
           spans: list[tuple[int, int]] | None = None, vocabulary: tuple[str, ...] = ()) -> RenderFacts:
    """The render facts plus what was heard; an ASR failure is recorded (the scorer fails it), not raised."""
    if not facts.has_audio:
        return facts.model_copy(update={"heard_text": ""})
    try:
        return facts.model_copy(update={"heard_text": heard_text(path, lang, settings, spans, vocabulary)})
    except Exception as e:  # a broken ASR pass must not hide the render's other scores
        msg = e.one_line() if isinstance(e, CutpilotError) else f"{type(e).__name__}: {e}"
        return facts.model_copy(update={"asr_error": msg[:300]})


def load_products(path: Path = PRODUCTS_PATH) -> ProductBook | None:
    """The golden products' facts (`products: [{name, aliases, selling_points, ...}]`); None when absent."""
    if not path.exists():
        return None
    return ProductBook(load_products_file(path))


def product_of(brief: Brief, book: ProductBook | None) -> Product | None:
    """The brief's product in the golden facts (by name or alias, else named in the brief text)."""
    if not book:
        return None
    return (book.get(brief.product) or book.match(brief.product)) if brief.product else book.match(brief.text)


def product_facts(brief: Brief, book: ProductBook | None) -> tuple[str, ...]:
    """Names, aliases, selling points and offer (zh + en) of the brief's product; the name only without a book."""
    fallback = (brief.product,) if brief.product else ()
    if not book:
        return fallback
    p = (book.get(brief.product) or book.match(brief.product)) if brief.product else book.match(brief.text)
    if p is None:
        return fallback
    facts = [*fallback, *p.names(), *p.selling_points, *p.selling_points_en, p.offer or "", p.offer_en or ""]
    return tuple(dict.fromkeys(f for f in facts if f))


def product_names(brief: Brief, book: ProductBook | None) -> tuple[str, ...]:
    """The product's names (the vocabulary a viewer reads on screen and the recogniser is told)."""
    p = (book.get(brief.product) or book.match(brief.product)) if (book and brief.product) else None
    names = ([brief.product] if brief.product else []) + (p.names() if p is not None else [])
    return tuple(dict.fromkeys(names))


def _slots(sb: Storyboard, gl: GoldenLibrary) -> list[dict[str, Any]]:
    return [{"role": s.role.value, "clip": gl.gold.key(s.chosen.clip_id) if s.chosen else None,
             "asset": s.asset.kind if s.asset else None, "s": s.target_s, "line": s.line} for s in sb.slots]


def _outputs(sb: Storyboard, tl: Timeline | None, run: dict[str, Any], ctx: Ctx, wall: float,
             render: RenderFacts | None = None) -> RunOutputs:
    p = product_of(sb.brief, ctx.products)
    return RunOutputs(storyboard=sb, timeline=tl, run=run, records=ctx.gl.records, wall_s=wall, render=render,
                      facts=product_facts(sb.brief, ctx.products), names=p.names() if p else (),
                      banned_claims=p.banned_claims if p else (), claim_evidence=p.claim_evidence if p else {})


def _thread_values(door: Any, thread_id: str) -> dict[str, Any]:
    """The current state of a chat thread (storyboard / timeline / run dicts), read through the front door."""
    return dict(door.state(thread_id))


@dataclass
class Ctx:
    gl: GoldenLibrary
    library: Any
    planner: Literal["offline", "llm"]
    render: bool
    work: Path
    embedder: Any
    make: MakeFn | None
    judge: Callable[[Case, Storyboard], Score | None] | None
    products: ProductBook | None = None  # evals/golden/products.yaml, for the grounding facts
    door: Any = None  # agent.run.FrontDoor over `library`: every case is planned through it


def _error_row(case: Case, turn: int, e: Exception, wall: float) -> Row:
    msg = e.one_line() if isinstance(e, CutpilotError) else f"{type(e).__name__}: {e}"
    return Row(case=case.id, turn=turn, ok=False, error=msg[:400], wall_s=round(wall, 3))


def _row(case: Case, turn: int, out: RunOutputs, scores: list[Score], ctx: Ctx, request: str = "") -> Row:
    return Row(case=case.id, turn=turn, request=request, wall_s=round(out.wall_s or 0.0, 3),
               brain=out.run.get("brain"), model=out.run.get("model"),
               scores=[s.to_json() for s in scores] + [{"name": "completed", "value": 1.0, "detail": "", "raw": {}}],
               slots=_slots(out.storyboard, ctx.gl))


def run_case(case: Case, ctx: Ctx) -> list[Row]:
    """A plain case → one row; a revision case → one row per turn (turn 0 is the first plan)."""
    if case.revisions:
        return _run_revisions(case, ctx)
    out_dir = ctx.work / re.sub(r"[^A-Za-z0-9_.-]+", "_", case.id)
    do_render = bool(ctx.render and case.render)
    t0 = time.perf_counter()
    try:
        if ctx.make is not None:
            res = ctx.make(case.brief, settings=ctx.gl.settings, library=ctx.library, out_dir=out_dir,
                           planner=ctx.planner, render=do_render, quality="draft")
        else:
            with _door(ctx) as door:
                res = door.make(case.brief, out_dir=out_dir, render=do_render, quality="draft")
        wall = time.perf_counter() - t0
        ad = Path(res.ad) if do_render and res.ad else None
        facts = None
        if ad is not None:
            facts = listen(render_facts(ad, ctx.gl.settings), ad, res.storyboard.brief.lang, ctx.gl.settings,
                           speech_spans(res.timeline), product_names(res.storyboard.brief, ctx.products))
    except Exception as e:  # a failing case is a result, not a crash of the eval
        return [_error_row(case, 0, e, time.perf_counter() - t0)]
    out = _outputs(res.storyboard, res.timeline, res.run.model_dump(mode="json"), ctx, wall, facts)
    scores = score_all(out, case.expect, ctx.gl.gold, embedder=ctx.embedder)
    if ctx.judge is not None:
        j = ctx.judge(case, res.storyboard)
        if j is not None:
            scores.append(j)
    return [_row(case, 0, out, scores, ctx)]


@contextmanager
def _door(ctx: Ctx) -> Iterator[Any]:
    """The eval's front door, or one for this case when the caller gave none."""
    if ctx.door is not None:
        yield ctx.door
        return
    from agent.run import FrontDoor

    with FrontDoor(ctx.gl.settings, ctx.library, planner=ctx.planner) as door:
        yield door


def _run_revisions(case: Case, ctx: Ctx) -> list[Row]:
    with _door(ctx) as door:
        return _revision_turns(case, ctx, door)


def _revision_turns(case: Case, ctx: Ctx, door: Any) -> list[Row]:
    out_dir = ctx.work / re.sub(r"[^A-Za-z0-9_.-]+", "_", case.id)
    rows: list[Row] = []
    t0 = time.perf_counter()
    try:
        turn = door.start(case.brief, out_dir=out_dir, render=False)
        values = _thread_values(door, turn.thread_id)
        wall = time.perf_counter() - t0
    except Exception as e:
        return [_error_row(case, 0, e, time.perf_counter() - t0)]
    sb = Storyboard.model_validate(values["storyboard"])
    out = _outputs(sb, Timeline.model_validate(values["timeline"]), values.get("run") or {}, ctx, wall)
    rows.append(_row(case, 0, out, score_all(out, case.expect, ctx.gl.gold, embedder=ctx.embedder), ctx))
    exp = case.expect
    n_records = len((values.get("run") or {}).get("revisions") or [])
    for i, rev in enumerate(case.revisions, start=1):
        t1 = time.perf_counter()
        try:
            door.resume(turn.thread_id, rev.request)
            values = _thread_values(door, turn.thread_id)
        except Exception as e:
            rows.append(_error_row(case, i, e, time.perf_counter() - t1))
            break
        before = sb
        sb = Storyboard.model_validate(values["storyboard"])
        run = values.get("run") or {}
        exp = merged(exp, rev.expect)
        out = _outputs(sb, Timeline.model_validate(values["timeline"]), run, ctx, time.perf_counter() - t1)
        scores = score_all(out, exp, ctx.gl.gold, embedder=ctx.embedder)
        locality = revision_locality(before, sb, rev.expect_changed_slots_max, rev.expect_changed_slots_min)
        scores.append(locality)
        recs = run.get("revisions")
        records: list[Any] = recs if isinstance(recs, list) else []
        last: dict[str, Any] = records[-1] if len(records) > n_records and isinstance(records[-1], dict) else {}
        n_records = len(records)
        understood = last.get("kind") not in (None, "not_understood")
        scores.append(Score("revision_understood", float(understood), str(last.get("kind")), {}))
        if rev.expect_answered:
            scores.append(revision_answered(before, sb, last or None, locality=locality,
                                            expect_message=rev.expect_message))
        rows.append(_row(case, i, out, scores, ctx, request=rev.request))
    return rows


# --- aggregation, baseline, report -------------------------------------------------------------------------------
def aggregate(rows: list[Row], baseline_names: set[str]) -> tuple[dict[str, float], dict[str, int]]:
    """Per-scorer means over the rows where the scorer applies; failed rows count 0 on every known scorer."""
    vals: dict[str, list[float]] = {}
    for r in rows:
        if r.ok:
            for s in r.scores:
                if s["value"] is not None:
                    vals.setdefault(s["name"], []).append(float(s["value"]))
        else:
            for name in baseline_names | {"completed"}:
                vals.setdefault(name, []).append(0.0)
    means = {k: round(sum(v) / len(v), 4) for k, v in sorted(vals.items())}
    return means, {k: len(v) for k, v in sorted(vals.items())}


def load_baseline(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("scorers"), dict):
            raise ValueError("no 'scorers' mapping")
        return dict(data)
    except (ValueError, AttributeError) as e:
        raise InputError(f"baseline {path}: not a valid baseline file ({e})") from None


def compare(means: dict[str, float], baseline: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """(regressions, moved): a regression is a mean below baseline − tolerance (failed runs count 0)."""
    if baseline is None:
        return [], []
    regressions, moved = [], []
    for name, b in baseline["scorers"].items():
        base, tol = float(b["mean"]), float(b.get("tolerance", DEFAULT_TOLERANCE))
        cur = means.get(name)
        if cur is None:  # not applicable in this run (no render, no judge, a case subset); crashes score 0
            moved.append(f"{name}: not measured in this run (baseline {base:.3f})")
            continue
        delta = cur - base
        if cur < base - tol:
            regressions.append(f"{name}: {cur:.3f} < baseline {base:.3f} − {tol:g} (Δ {delta:+.3f})")
        elif abs(delta) >= 0.005:
            moved.append(f"{name}: {base:.3f} → {cur:.3f} (Δ {delta:+.3f})")
    for name in means:
        if name not in baseline["scorers"]:
            moved.append(f"{name}: new scorer, mean {means[name]:.3f}")
    return regressions, moved


def new_baseline(report: EvalReport) -> dict[str, Any]:
    return {
        "version": 1, "planner": report.planner, "updated_at": report.started_at, "cases": report.cases,
        "rows": len(report.rows),
        "scorers": {k: {"mean": v, "tolerance": TOLERANCES.get(k, DEFAULT_TOLERANCE), "n": report.counts.get(k, 0)}
                    for k, v in report.means.items()},
    }


def render_markdown(report: EvalReport, *, worst: int = 3) -> str:
    """The human report: scorer table vs baseline, regressions / moves, worst cases per scorer, per-case table."""
    base = (report.baseline or {}).get("scorers", {})
    failed = [r for r in report.rows if not r.ok]
    lines = [
        f"# cutpilot eval — {report.started_at}", "",
        f"planner **{report.planner}**, render {'on' if report.render else 'off'}, {report.cases} cases, "
        f"{len(report.rows)} runs ({len(failed)} failed), golden library {report.golden_s:.1f} s, "
        f"total {report.wall_s:.1f} s" + (f", judge {report.judge_model}" if report.judge_model else ""), "",
        "## Gate", "",
    ]
    if report.baseline is None:
        lines.append("No baseline file: nothing to compare (run with `--update-baseline` to create one).")
    elif report.regressions:
        lines += ["**REGRESSION**", ""] + [f"- {x}" for x in report.regressions]
    else:
        lines.append("PASS: every scorer is within its tolerance of the baseline.")
    if report.moved:
        lines += ["", "What moved:", ""] + [f"- {x}" for x in report.moved]
    lines += ["", "## Scorers", "", "| scorer | mean | n | baseline | Δ |", "|---|---:|---:|---:|---:|"]
    for name, mean in report.means.items():
        b = base.get(name, {}).get("mean")
        delta = f"{mean - b:+.3f}" if b is not None else ""
        lines.append(f"| {name} | {mean:.3f} | {report.counts.get(name, 0)} | "
                     f"{'' if b is None else f'{b:.3f}'} | {delta} |")
    lines += ["", "## Worst cases per scorer", ""]
    for name in report.means:
        scored = [(r.value(name), r) for r in report.rows if r.ok and r.value(name) is not None]
        bad = sorted([x for x in scored if (x[0] or 0) < 1.0], key=lambda x: x[0] or 0)[:worst]
        if not bad:
            continue
        lines.append(f"- **{name}**: " + "; ".join(
            f"`{r.case}{'#' + str(r.turn) if r.turn else ''}` {v:.2f} ({_detail(r, name)})" for v, r in bad))
    if failed:
        lines += ["", "## Failed runs", ""] + [f"- `{r.case}#{r.turn}`: {r.error}" for r in failed]
    cols = ["retrieval_ndcg", "role_order", "hook_first", "duration", "no_repeats", "narration_budget",
            "narration_agreement", "forbidden_words", "banned_clips"]
    lines += ["", "## Per case", "", "| case | ok | s | " + " | ".join(cols) + " | roles → clips |",
              "|---|---|---:|" + "---:|" * len(cols) + "---|"]
    for r in report.rows:
        cells = [("" if r.value(c) is None else f"{r.value(c):.2f}") for c in cols]
        plan = ", ".join(f"{s['role']}:{s['clip'] or s['asset'] or '-'}" for s in r.slots)
        name = r.case + (f" #{r.turn} {r.request}" if r.turn else "")
        lines.append(f"| {name} | {'✓' if r.ok else '✗'} | {r.wall_s:.1f} | " + " | ".join(cells) + f" | {plan} |")
    return "\n".join(lines) + "\n"


def _detail(r: Row, name: str) -> str:
    s = next((s for s in r.scores if s["name"] == name), None)
    return str(s["detail"])[:80] if s else ""


def run_eval(
    settings: Settings,
    *,
    cases: str = "*.yaml",
    planner: Literal["offline", "llm"] = "offline",
    render: bool = False,
    baseline: Path = DEFAULT_BASELINE,
    update_baseline: bool = False,
    results_dir: Path = RESULTS_DIR,
    make: MakeFn | None = None,
    judge: bool | None = None,
    progress: bool = True,
    gate: bool = True,
) -> EvalReport:
    """Build the golden library, run every matching case, score, write results + report, then gate.

    Raises EvalRegressionError (after writing the report) when a scorer regresses and the baseline was not
    being updated."""
    t_all = time.perf_counter()
    from agent.run import FrontDoor
    from evals.golden import load_spec

    spec = load_spec()
    case_list = load_cases(cases, known_keys=spec.keys())
    say = print if progress else (lambda *a, **k: None)
    say(f"golden library: building/reusing ({len(spec.clips)} clips) …", flush=True)
    t0 = time.perf_counter()
    gl = build_golden(settings, progress=progress)
    golden_s = time.perf_counter() - t0
    judge_fn, judge_model = None, None
    if judge or (judge is None and settings.llm_configured and planner == "llm"):
        from evals.judge import make_judge

        judge_fn, judge_model = make_judge(settings, gl.settings.home / "judge-cache")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = gl.settings.home / "runs" / stamp
    library = gl.open()
    rows: list[Row] = []
    try:
        embedder = getattr(library, "embedder", None)
        # the golden library is read-only to the planner: a generated shot written back would be found by the next
        # case (or the next eval run) and move the scores
        source = LibrarySource(library, writable=False)
        with FrontDoor(gl.settings, source, planner=planner) as door:
            ctx = Ctx(gl=gl, library=source, planner=planner, render=render, work=work, embedder=embedder,
                      make=make, judge=judge_fn, products=load_products(), door=door)
            for i, case in enumerate(case_list, start=1):
                new = run_case(case, ctx)
                rows += new
                status = "ok" if all(r.ok for r in new) else f"FAILED: {new[-1].error}"
                say(f"[{i}/{len(case_list)}] {case.id}: {status} ({sum(r.wall_s for r in new):.1f} s)", flush=True)
    finally:
        library.close()
    base = load_baseline(baseline)
    means, counts = aggregate(rows, set((base or {}).get("scorers", {})))
    regressions, moved = compare(means, base)
    report = EvalReport(started_at=stamp, planner=planner, render=render, cases=len(case_list), rows=rows,
                        means=means, counts=counts, baseline=base, regressions=regressions, moved=moved,
                        wall_s=round(time.perf_counter() - t_all, 2), golden_s=round(golden_s, 2),
                        judge_model=judge_model)
    results_dir.mkdir(parents=True, exist_ok=True)
    res_path = results_dir / f"{stamp}.jsonl"
    with res_path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(r.model_dump_json() + "\n")
        f.write(json.dumps({"summary": report.model_dump(exclude={"rows"})}, ensure_ascii=False) + "\n")
    report.results_path = str(res_path)
    if update_baseline:
        baseline.parent.mkdir(parents=True, exist_ok=True)
        baseline.write_text(json.dumps(new_baseline(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        report.regressions = []
    md = results_dir / f"{stamp}.md"
    md.write_text(render_markdown(report), encoding="utf-8")
    report.report_path = str(md)
    if gate and report.regressions:
        raise EvalRegressionError(
            f"{len(report.regressions)} scorer(s) regressed: {'; '.join(report.regressions)} (report: {md})"
        )
    return report
