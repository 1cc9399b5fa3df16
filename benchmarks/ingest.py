"""Ingest benchmark on the bundled samples: footage seconds per wall second, per stage, peak RSS.

Baselines measured in the same run:
- frame decoding: naive `fps=1` sampling of every source to JPEGs (then picking frames per clip) vs the
  one-pass keyframe + motion-proxy decode ingest uses;
- whole ingest: sequential (`--jobs 1`) vs `--jobs 2`, each into a fresh library (ASR caches not shared).

Run: .venv/bin/python benchmarks/ingest.py [--samples samples] [--write]  (--write updates BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def bench_decoding(files: list[Path]) -> dict[str, float]:
    from cutpilot.media import probe
    from index.slicing import slice_source
    from index.visual import extract_keyframes

    out: dict[str, float] = {"footage_s": 0.0, "naive_fps1_s": 0.0, "onepass_s": 0.0}
    with tempfile.TemporaryDirectory() as td:
        for i, f in enumerate(files):
            pr = probe(f)
            clips = slice_source([], [], pr.duration)
            out["footage_s"] += pr.duration
            d = Path(td) / f"n{i}"
            d.mkdir()
            t = time.perf_counter()
            subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(f), "-vf", "fps=1,scale='min(640,iw)':-2",
                            "-q:v", "4", str(d / "%05d.jpg")], check=True)
            out["naive_fps1_s"] += time.perf_counter() - t
            t = time.perf_counter()
            extract_keyframes(f, clips, Path(td) / f"k{i}", fps=pr.fps, duration=pr.duration)
            out["onepass_s"] += time.perf_counter() - t
    return out


def bench_ingest(samples: Path, jobs: int, whisper_dir: Path) -> dict[str, object]:
    from cutpilot.settings import Settings
    from index.ingest import ingest
    from index.library import Library

    home = Path(tempfile.mkdtemp(prefix=f"cp-bench-j{jobs}-"))
    try:
        settings = Settings(home=home, whisper_model=str(whisper_dir))
        from index.asr import load_model

        load_model(settings)  # model load is per process, not per footage second
        with Library.open(settings) as lib:
            t = time.perf_counter()
            report = ingest([samples], settings, lib, annotations=samples / "annotations.jsonl", jobs=jobs,
                            progress=False)
            wall = time.perf_counter() - t
            n = lib.count()
        return {"report": report, "wall": wall, "clips": n}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=Path, default=ROOT / "samples")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    from cutpilot.settings import Settings
    from index.asr import model_dir

    whisper_dir = model_dir(Settings(home=Path(tempfile.gettempdir()) / "cutpilot-bench"))
    files = sorted(p for p in args.samples.iterdir() if p.suffix.lower() in {".mp4", ".mov", ".avi", ".mpg"})
    load = os.getloadavg()[0]

    dec = bench_decoding(files)
    runs = {j: bench_ingest(args.samples, j, whisper_dir) for j in (1, 2)}
    own, _kids = _peak_rss_mb()

    r1 = runs[1]["report"]
    footage = r1.footage_seconds  # type: ignore[attr-defined]
    stages = r1.stage_seconds  # type: ignore[attr-defined]
    w1, w2 = float(runs[1]["wall"]), float(runs[2]["wall"])  # type: ignore[arg-type]
    lines = [
        f"Bundled samples: {len(files)} files, {footage:.1f} s of footage, {runs[1]['clips']} clips; "
        f"{os.cpu_count()} CPUs visible, 1-min load average at start {load:.1f} (shared machine).",
        "",
        "| run | wall s | footage s / wall s |",
        "|---|---|---|",
        f"| ingest --jobs 1 (baseline) | {w1:.1f} | {footage / w1:.2f}x |",
        f"| ingest --jobs 2 | {w2:.1f} | {footage / w2:.2f}x |",
        f"| speed-up jobs 2 vs 1 | | {w1 / w2:.2f}x |",
        "",
        "| stage (jobs 1) | seconds | footage s / stage s |",
        "|---|---|---|",
    ]
    for k, v in sorted(stages.items(), key=lambda x: -x[1]):
        lines.append(f"| {k} | {v:.2f} | {footage / v:.1f}x |" if v > 0 else f"| {k} | 0 | - |")
    lines += [
        "",
        "| frame decoding | seconds | footage s / s |",
        "|---|---|---|",
        f"| naive fps=1 JPEG sampling (baseline) | {dec['naive_fps1_s']:.2f} | "
        f"{dec['footage_s'] / dec['naive_fps1_s']:.1f}x |",
        f"| one-pass keyframes + motion proxy | {dec['onepass_s']:.2f} | {dec['footage_s'] / dec['onepass_s']:.1f}x |",
        f"| ratio | | {dec['naive_fps1_s'] / dec['onepass_s']:.2f}x faster |",
        "",
        f"Peak RSS: benchmark process {own:.0f} MB (Whisper base int8 + USE v3 + embedded Qdrant, two ingest "
        "runs). (The child figure from getrusage counts fork-time pages, so it is not reported.)",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        bm = ROOT / "BENCHMARKS.md"
        body = bm.read_text(encoding="utf-8") if bm.exists() else "# Benchmarks\n"
        section = ("## Ingest\n\nMeasured by `benchmarks/ingest.py` (run " + time.strftime("%Y-%m-%d %H:%M UTC",
                   time.gmtime()) + ").\n\n" + text + "\n")
        if re.search(r"^## Ingest\n", body, flags=re.M):
            body = re.sub(r"^## Ingest\n.*?(?=^## |\Z)", section + "\n", body, flags=re.M | re.S)
        else:
            body = body.rstrip("\n") + "\n\n" + section
        bm.write_text(body, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
