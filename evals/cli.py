"""CLI commands of the `evals` package (registered on the root app by cutpilot.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach this package's commands to the root app."""

    @app.command("eval")
    def eval_cmd(
        cases: Annotated[str, typer.Option("--cases", help="glob of case files in evals/cases (or a path)")] = "*.yaml",
        planner: Annotated[str, typer.Option("--planner", help="offline | llm")] = "offline",
        render: Annotated[bool, typer.Option("--render", help="also render the cases marked render: true")] = False,
        baseline: Annotated[Path | None, typer.Option("--baseline", help="baseline JSON to gate against")] = None,
        update_baseline: Annotated[
            bool, typer.Option("--update-baseline", help="write the means of this run as the new baseline")
        ] = False,
        judge: Annotated[bool, typer.Option("--judge", help="add the LLM judge (needs a configured model)")] = False,
        json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
        perf_sim: Annotated[bool, typer.Option("--perf/--no-perf", help="also gate the performance loop on its "
                                               "seeded simulator (evals/perf: hook ρ, hold vs naive, regret)")] = True,
    ) -> None:
        """Run the eval suite on the golden library; exit non-zero when a scorer regresses vs the baseline."""
        import json

        from cutpilot.errors import InputError
        from cutpilot.settings import get_settings
        from evals.runner import DEFAULT_BASELINE, run_eval

        if planner not in ("offline", "llm"):
            raise InputError(f"--planner must be offline or llm, not {planner!r}")
        settings = get_settings()
        if judge and not settings.llm_configured:
            raise InputError("--judge needs an LLM endpoint (OPENAI_BASE_URL / OPENAI_API_KEY, CUTPILOT_LLM_MODEL)")
        report = run_eval(settings, cases=cases, planner=planner, render=render,  # type: ignore[arg-type]
                          baseline=baseline or DEFAULT_BASELINE, update_baseline=update_baseline,
                          judge=judge or None, progress=not json_out)
        if json_out:
            print(json.dumps(report.model_dump(exclude={"rows", "baseline"}), ensure_ascii=False, indent=2))
            return
        print("means: " + ", ".join(f"{k}={v:.3f}" for k, v in report.means.items()))
        for m in report.moved:
            print(f"moved: {m}")
        print(f"results: {report.results_path}\nreport:  {report.report_path}")
        if perf_sim:
            _perf_gate()
        print("baseline updated" if update_baseline else ("gate: PASS" if report.baseline else "gate: no baseline"))

    def _perf_gate() -> None:
        """The T+1 loop against a known truth: credit must recover the simulator's hook and hold effects and
        Thompson selection must beat greedy, which must beat semantic-only (fails the gate otherwise)."""
        from cutpilot.errors import EvalRegressionError
        from evals.perf.run import run_perf_eval

        r = run_perf_eval()
        reg = r["regret"]
        print(f"perf loop: hook ρ min {r['hook_rho_min']:.3f} (≥ 0.9), hold ρ {r['hold_rho_mean']:.3f} vs naive "
              f"{r['hold_rho_naive_mean']:.3f}, regret thompson {reg['thompson']:.2f} < greedy {reg['greedy']:.2f} "
              f"< semantic {reg['semantic']:.2f}: {'PASS' if r['passed'] else 'FAIL'}")
        if not r["passed"]:
            failed = ", ".join(k for k, ok in r["checks"].items() if not ok)
            raise EvalRegressionError(f"performance-loop simulator missed its targets: {failed}")
