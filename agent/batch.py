"""Batch: one row per brief (yaml / jsonl / csv) times a variants matrix (audiences × aspects × durations) →
千人千面 variants. Fail-and-continue, resumable (a variant whose run.json + outputs exist is skipped), summary.json.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cutpilot.errors import CutpilotError, InputError
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief


class BatchRow(BaseModel):
    """One input row: a free-text brief and/or structured fields, plus the variants to make from it."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    brief: str = ""
    product: str | None = None
    duration_s: float | None = None
    aspect: Literal["9:16", "1:1", "4:5", "16:9"] | None = None
    lang: Literal["zh", "en"] | None = None
    audience: str | None = None
    channel: str | None = None
    audiences: list[str] = Field(default_factory=list)
    aspects: list[Literal["9:16", "1:1", "4:5", "16:9"]] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    durations: list[float] = Field(default_factory=list)


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    row: int
    text: str
    base: dict[str, Any]


def _split(v: Any) -> list[Any]:
    if v is None or v == "":
        return []
    if isinstance(v, list):
        return v
    return [x.strip() for x in re.split(r"[|;,，、]", str(v)) if x.strip()]


def load_rows(path: Path) -> list[BatchRow]:
    """Read .yaml/.yml (a list, or {briefs: [...]}) / .jsonl / .csv; a bad row is a one-line InputError."""
    if not path.is_file():
        raise InputError(f"batch file not found: {path}")
    suffix = path.suffix.lower()
    raw: list[dict[str, Any]]
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            raw = data.get("briefs", []) if isinstance(data, dict) else list(data or [])
        elif suffix == ".jsonl":
            raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as f:
                raw = [{k: v for k, v in r.items() if k and v not in (None, "")} for r in csv.DictReader(f)]
        else:
            raise InputError(f"batch file must be .yaml, .jsonl or .csv (got {path.name})")
    except (json.JSONDecodeError, ValueError) as e:
        raise InputError(f"cannot read {path.name}: {e}") from None
    rows = []
    for n, r in enumerate(raw, start=1):
        if isinstance(r, str):
            r = {"brief": r}
        for k in ("audiences", "aspects", "channels", "durations"):
            if k in r:
                r[k] = _split(r[k])
        try:
            rows.append(BatchRow.model_validate(r))
        except ValidationError as e:
            err = e.errors()[0]
            raise InputError(f"{path.name} row {n}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    if not rows:
        raise InputError(f"{path.name} has no briefs")
    return rows


def expand(rows: list[BatchRow]) -> list[Variant]:
    """The variants matrix of every row, with stable keys (so a re-run finds finished variants)."""
    out = []
    for i, r in enumerate(rows):
        rid = r.id or f"row{i + 1}"
        auds: list[str | None] = list(r.audiences) or [r.audience]
        asps: list[str | None] = list(r.aspects) or [r.aspect]
        chans: list[str | None] = list(r.channels) or [r.channel]
        durs: list[float | None] = list(r.durations) or [r.duration_s]
        for aud, asp, ch, dur in itertools.product(auds, asps, chans, durs):
            base: dict[str, Any] = {"text": r.brief}
            for k, v in (("product", r.product), ("lang", r.lang), ("audience", aud), ("aspect", asp),
                         ("channel", ch), ("duration_s", dur)):
                if v is not None:
                    base[k] = v
            parts = [rid] + [_slug(str(x)) for x in (aud, asp, ch, f"{dur:g}s" if dur else None) if x]
            out.append(Variant(key="__".join(parts), row=i, text=r.brief, base=base))
    return out


def _slug(s: str) -> str:
    return re.sub(r"[^\w\u4e00-\u9fff-]+", "-", s.replace(":", "x")).strip("-")[:40] or "x"


def run_batch(path: Path, *, settings: Settings, library: Any, out_dir: Path, planner: str | None = None,
              render: bool = True, quality: str = "draft", jobs: int = 1, progress: bool = True,
              tools: Any = None) -> dict[str, Any]:
    """Make every variant; failures are recorded and the batch goes on; finished variants are skipped."""
    from agent.run import make_ad

    variants = expand(load_rows(path))
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def one(v: Variant) -> dict[str, Any]:
        vdir = out_dir / v.key
        done = vdir / "run.json"
        if done.is_file() and (not render or (vdir / "ad.mp4").is_file()):
            return {"key": v.key, "status": "skipped", "out_dir": str(vdir), "note": "already finished"}
        try:
            base = Brief.model_validate(v.base)
            r = make_ad(v.text or base, settings=settings, library=library, out_dir=vdir, base=base,
                        planner=planner, render=render, quality=quality,  # type: ignore[arg-type]
                        thread_id=f"batch-{_slug(path.stem)}-{v.key}", tools=tools)
            return {"key": v.key, "status": "ok", "out_dir": str(vdir), "paths": r.paths,
                    "total_s": r.timeline.duration_ms / 1000, "brain": r.run.brain, "warnings": r.run.warnings}
        except (CutpilotError, ValidationError) as e:
            msg = e.one_line() if isinstance(e, CutpilotError) else str(e).splitlines()[0]
            return {"key": v.key, "status": "failed", "out_dir": str(vdir), "error": msg}

    results: list[dict[str, Any]] = []
    if jobs > 1:
        with ThreadPoolExecutor(max_workers=jobs) as ex:
            results = list(ex.map(one, variants))
    else:
        from rich.progress import Progress

        with Progress(disable=not progress, transient=True) as prog:
            task = prog.add_task("variants", total=len(variants))
            for v in variants:
                results.append(one(v))
                prog.advance(task)
    summary = {
        "file": str(path), "variants": len(variants),
        "ok": sum(r["status"] == "ok" for r in results), "skipped": sum(r["status"] == "skipped" for r in results),
        "failed": sum(r["status"] == "failed" for r in results), "wall_s": round(time.perf_counter() - t0, 2),
        "results": results,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary
