"""Offline evaluation of performance credit and ranking against a simulator with a known truth."""

from evals.perf.run import run_perf_eval

__all__ = ["run_perf_eval"]
