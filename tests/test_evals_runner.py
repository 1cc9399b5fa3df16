"""The eval runner end to end on the real golden library and the real offline planner (hash embedder for speed):
baseline written, a clean rerun passes, a simulated bad planner change trips the gate, the report renders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cutpilot.errors import EvalRegressionError
from cutpilot.settings import Settings
from cutpilot.timeline import ClipItem
from evals.runner import EvalReport, Row, aggregate, compare, render_markdown, run_eval

CASES = """
- id: t-loreal@v1
  brief: 做一条15秒的侧睡纹广告，欧莱雅紫熨斗眼霜，9:16
  expect:
    duration_s: [14.5, 15.5]
    language: zh
    product: 欧莱雅紫熨斗眼霜
    relevant:
      hook: [lor-pain-dumbbell, lor-spokes-sofa, lor-pain-glass]
      product_intro: [lor-live-intro, lor-spokes-upgrade]
    must_not_use: [lor-inject]
- id: t-lego@v1
  brief: Make a 10s ad for the LEGO Technic set, 9:16
  expect:
    duration_s: [9.5, 10.5]
    language: en
    product: LEGO Technic
    relevant:
      product_intro: [lego-shot, lego-shot-dup]
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("evalrun")
    (root / "cases").mkdir()
    (root / "cases" / "t.yaml").write_text(CASES, encoding="utf-8")
    settings = Settings(home=root / "home", text_embedder="hash")
    kw: dict[str, Any] = {"cases": str(root / "cases" / "*.yaml"), "baseline": root / "baseline.json",
          "results_dir": root / "results", "progress": False}
    first = run_eval(settings, update_baseline=True, **kw)
    return {"settings": settings, "kw": kw, "first": first, "root": root}


def test_baseline_written_and_report_renders(env: dict[str, Any]) -> None:
    first: EvalReport = env["first"]
    base = json.loads(Path(env["kw"]["baseline"]).read_text())
    assert set(base["scorers"]) >= {"role_order", "hook_first", "no_repeats", "duration", "retrieval_ndcg"}
    assert base["scorers"]["completed"]["mean"] == 1.0
    assert all(r.ok for r in first.rows), [r.error for r in first.rows]
    md = Path(str(first.report_path)).read_text(encoding="utf-8")
    assert "## Scorers" in md and "t-loreal@v1" in md and "| role_order |" in md
    lines = Path(str(first.results_path)).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(first.rows) + 1 and "summary" in json.loads(lines[-1])


def test_clean_rerun_passes_the_gate(env: dict[str, Any]) -> None:
    again = run_eval(env["settings"], **env["kw"])  # golden library cached: no rebuild
    assert again.regressions == []
    assert again.golden_s < 5
    assert "PASS" in Path(str(again.report_path)).read_text(encoding="utf-8")


def _bad_planner(brief: Any, **kw: Any) -> Any:
    """A known-bad planner change: the real plan with its slots reversed and one clip on every shot."""
    from agent.run import make_ad

    res = make_ad(brief, **kw)
    n = len(res.storyboard.slots)
    slots = list(reversed(res.storyboard.slots))
    first = next(s.chosen for s in slots if s.chosen)
    slots = [s.model_copy(update={"chosen": first if s.chosen else None}) for s in slots]
    sb = res.storyboard.model_copy(update={"slots": slots}).renumbered()
    video, t = [], 0
    for v in reversed(res.timeline.video):  # play the shots in reverse order too
        upd: dict[str, Any] = {"start_ms": t, "transition_in": None,
                               "slot": n - 1 - v.slot if v.slot is not None else None}
        if isinstance(v, ClipItem):
            upd["clip_id"] = first.clip_id
        video.append(v.model_copy(update=upd))
        t += v.duration_ms
    return res.model_copy(update={"storyboard": sb, "timeline": res.timeline.model_copy(update={"video": video})})


def test_simulated_bad_planner_trips_the_gate(env: dict[str, Any]) -> None:
    with pytest.raises(EvalRegressionError) as e:
        run_eval(env["settings"], make=_bad_planner, **env["kw"])
    msg = str(e.value)
    for name in ("role_order", "hook_first", "no_repeats"):
        assert name in msg
    reports = sorted(Path(env["kw"]["results_dir"]).glob("*.md"))
    assert "REGRESSION" in reports[-1].read_text(encoding="utf-8") or any(
        "REGRESSION" in p.read_text(encoding="utf-8") for p in reports)


def test_crashing_planner_counts_as_zero(env: dict[str, Any]) -> None:
    def crash(brief: Any, **kw: Any) -> Any:
        raise RuntimeError("planner exploded")

    with pytest.raises(EvalRegressionError, match="completed"):
        run_eval(env["settings"], make=crash, **env["kw"])


def test_aggregate_and_compare_units() -> None:
    rows = [Row(case="a@v1", scores=[{"name": "x", "value": 1.0}, {"name": "y", "value": None}]),
            Row(case="b@v1", ok=False, error="boom")]
    means, counts = aggregate(rows, {"x"})
    assert means["x"] == 0.5 and counts["x"] == 2 and "y" not in means and means["completed"] == 0.0
    base = {"scorers": {"x": {"mean": 0.9, "tolerance": 0.05}, "z": {"mean": 1.0}}}
    reg, moved = compare({"x": 0.5, "w": 1.0}, base)
    assert any(r.startswith("x:") for r in reg) and any(m.startswith("z: not measured") for m in moved)
    assert any("w: new scorer" in m for m in moved)
    near = {"scorers": {"x": {"mean": 0.9, "tolerance": 0.05}}}
    assert compare({"x": 0.88}, near) == ([], ["x: 0.900 → 0.880 (Δ -0.020)"])
    report = EvalReport(started_at="t", planner="offline", render=False, cases=2, rows=rows, means=means,
                        counts=counts, baseline=base, regressions=reg, moved=moved)
    md = render_markdown(report)
    assert "REGRESSION" in md and "## Failed runs" in md and "boom" in md
