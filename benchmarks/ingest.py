"""Ingest benchmark: the bundled samples, and long generated footage (5, 30, 60 min).

Samples: footage seconds per wall second, per stage, peak RSS, with baselines measured in the same run:
- frame decoding: naive `fps=1` sampling of every source to JPEGs (then picking frames per clip) vs the
  batched keyframe + motion-proxy decode ingest uses;
- whole ingest: sequential (`--jobs 1`) vs `--jobs 2`, each into a fresh library (ASR caches not shared).

Long footage: a 320x180 10 fps source with a shot change every 10–30 s and real speech (the shared media's
recordings, see /work/shared/media/NOTICE.md) in a quarter of it, generated once per length and cached. Each is
ingested in its own subprocess (fresh home, default embedder); the parent reports footage seconds per wall
second and the child's peak RSS (wait4), and how both grow 5 → 30 → 60 min (memory must stay flat, time
linear). Baselines on the 5-minute source: the ingest code before windowing (taken from git), and the current
code forced to one window (whole-file ASR and shot detection).

Run: .venv/bin/python benchmarks/ingest.py [--samples samples] [--write]  (--write updates BENCHMARKS.md)
     .venv/bin/python benchmarks/ingest.py --quick   (5-minute long source only: a smoke check)
     .venv/bin/python benchmarks/ingest.py --long-only [--minutes 5 30 60]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def bench_decoding(files: list[Path]) -> dict[str, float]:
    from cutpilot.media import probe
    from index.keyframes import batches, extract_batch
    from index.slicing import slice_source

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
            for run in batches(clips):
                extract_batch(f, run, Path(td) / f"k{i}", fps=pr.fps, duration=pr.duration)
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
    ap.add_argument("--quick", action="store_true", help="only the 5-minute long source, no baselines")
    ap.add_argument("--long-only", action="store_true", help="skip the bundled samples")
    ap.add_argument("--minutes", type=int, nargs="+", default=[5, 30, 60])
    ap.add_argument("--baselines-only", action="store_true", help="only the long-footage baselines")
    ap.add_argument("--no-baselines", action="store_true", help="long footage without the baselines")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "cutpilot-bench-long")
    ap.add_argument("--child", nargs=3, metavar=("SRC", "HOME", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(Path(args.child[0]), Path(args.child[1]), args.child[2])
    if args.quick or args.long_only or args.baselines_only or args.no_baselines:
        text = bench_long([5] if args.quick else args.minutes, args.cache,
                          baselines=not (args.quick or args.no_baselines), windowed=not args.baselines_only)
        print(text)
        return 0
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
        f"| batched keyframes + motion proxy | {dec['onepass_s']:.2f} | {dec['footage_s'] / dec['onepass_s']:.1f}x |",
        f"| ratio | | {dec['naive_fps1_s'] / dec['onepass_s']:.2f}x faster |",
        "",
        f"Peak RSS: benchmark process {own:.0f} MB (Whisper base int8 + USE v3 + embedded Qdrant, two ingest "
        "runs). (The child figure from getrusage counts fork-time pages, so it is not reported.)",
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    long_text = bench_long(args.minutes, args.cache, baselines=True)
    print("\n" + long_text)
    text += "\n\n" + long_text
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


# -- long footage ----------------------------------------------------------------------------------------------
CYCLE_S = 300
SPEECH_AT = 260.0  # the speech block wraps over the cycle end, so it straddles every 300 s window edge
_SOURCES = ["testsrc2", "smptehdbars", "mandelbrot", "rgbtestsrc", "cellauto=rule=110", "life=ratio=0.2:mold=8",
            "color=c=navy", "testsrc", "color=c=orange", "yuvtestsrc"]


def _shot_lengths() -> list[float]:
    """Deterministic shot lengths in 10–30 s filling one cycle."""
    out: list[float] = []
    x = 7
    while sum(out) < CYCLE_S:
        x = (x * 1103515245 + 12345) % (1 << 31)
        out.append(10.0 + (x % 2001) / 100.0)
    out[-1] -= sum(out) - CYCLE_S
    if out[-1] < 10.0:  # keep every shot ≥ 10 s
        tail = out.pop()
        out[-1] += tail
    return out


def _speech_pcm() -> Any:
    """The shared media's English recordings, 16 kHz mono int16, 0.6 s apart (~75 s: a quarter of a cycle)."""
    import numpy as np

    media = Path(os.environ.get("CUTPILOT_TEST_MEDIA", "/work/shared/media")) / "audio"
    files = [media / "asterisk_ivr_super_awesome_company.wav", media / "jfk_ask_not.wav",
             media / "cmu_arctic_a0007.wav", *sorted((media / "librivox").glob("*.wav"))]
    parts = []
    gap = np.zeros(int(0.6 * 16000), dtype=np.int16)
    for f in files:
        raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(f), "-ac", "1", "-ar", "16000",
                              "-f", "s16le", "-"], capture_output=True, check=True).stdout
        parts += [np.frombuffer(raw, dtype=np.int16), gap]
    pcm = np.concatenate(parts)
    while len(pcm) < 75 * 16000:
        pcm = np.concatenate([pcm, pcm])
    return pcm[: 75 * 16000]


def make_long_source(minutes: int, cache: Path) -> Path:
    """A `minutes`-long 320x180 10 fps H.264/AAC source (cached): a 5-minute cycle of shots looped."""
    import wave

    import numpy as np

    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"long_{minutes}min.mp4"
    if out.exists():
        return out
    cycle = cache / "cycle.mp4"
    if not cycle.exists():
        pcm = np.zeros(CYCLE_S * 16000, dtype=np.int16)
        speech = _speech_pcm()
        at = int(SPEECH_AT * 16000)
        head = min(len(speech), len(pcm) - at)
        pcm[at: at + head] = speech[:head]
        pcm[: len(speech) - head] = speech[head:]
        wav = cache / "cycle.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm.tobytes())
        lengths = _shot_lengths()
        inputs: list[str] = []
        for i, d in enumerate(lengths):
            src = _SOURCES[i % len(_SOURCES)]
            sep = ":" if "=" in src else "="
            inputs += ["-f", "lavfi", "-t", f"{d:.2f}", "-i", f"{src}{sep}s=320x180:r=10"]
        n = len(lengths)
        graph = "".join(f"[{i}:v]setsar=1,format=yuv420p[v{i}];" for i in range(n))
        graph += "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[v]"
        tmp = cache / ".cycle.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *inputs, "-i", str(wav), "-filter_complex", graph,
                        "-map", "[v]", "-map", f"{n}:a", "-t", str(CYCLE_S), "-c:v", "libx264", "-preset", "veryfast",
                        "-g", "50", "-c:a", "aac", "-b:a", "48k", str(tmp)], check=True)
        os.replace(tmp, cycle)
    tmp = cache / f".long_{minutes}min.mp4"
    loops = max(0, minutes * 60 // CYCLE_S - 1)
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-stream_loop", str(loops), "-i", str(cycle),
                    "-c", "copy", "-t", str(minutes * 60), str(tmp)], check=True)
    os.replace(tmp, out)
    return out


def _baseline_module() -> Any:
    """The ingest module as it was before windowing (from git), to measure today's whole-file path."""
    import importlib.util

    rev = os.environ.get("CUTPILOT_BENCH_BASELINE_REV", "6273e0b~1")
    code = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:index/ingest.py"], capture_output=True,
                          text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="cp-bench-base-")) / "ingest_before_windows.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("ingest_before_windows", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # pydantic resolves the module's postponed annotations through it
    spec.loader.exec_module(mod)
    return mod


def _child(src: Path, home: Path, mode: str) -> int:
    """One ingest in this process: `windows` (default), `one-window` or `before` (the pre-windowing code)."""
    from cutpilot.settings import Settings
    from index.asr import model_dir
    from index.library import Library

    whisper = model_dir(Settings(home=Path(tempfile.gettempdir()) / "cutpilot-bench"))
    settings = Settings(home=home, whisper_model=str(whisper))
    t = time.perf_counter()
    with Library.open(settings) as lib:
        if mode == "before":
            report = _baseline_module().ingest([src], settings, lib, progress=False)
        else:
            from index.ingest import ingest
            from index.windows import WINDOW_S

            window = 1e9 if mode == "one-window" else WINDOW_S
            report = ingest([src], settings, lib, progress=False, window_s=window)
        n = lib.count()
    wall = time.perf_counter() - t
    row = report.rows[0]
    print(json.dumps({"footage": row.duration if row.status in ("ok", "warning") else 0.0, "wall": wall,
                      "clips": n, "status": row.status, "message": row.message,
                      "stages": report.stage_seconds}))
    return 0


def _run_child(src: Path, mode: str) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="cp-bench-long-"))
    try:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(src), str(home), mode],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        res: dict[str, Any] = json.loads(lines[-1]) if lines else {"footage": 0.0, "wall": wall, "clips": 0,
                                                                   "status": "crashed", "message": out[-200:],
                                                                   "stages": {}}
        res["process_wall"] = wall
        res["rss_mb"] = usage.ru_maxrss / 1024
        res["rc"] = proc.returncode
        return res
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench_long(minutes: list[int], cache: Path, *, baselines: bool, windowed: bool = True,
               one_window_minutes: int = 30) -> str:
    """Ingest generated long sources in subprocesses; a markdown table of speed and peak memory. Baselines: the
    pre-windowing code on the shortest source, and one window (whole-file ASR + shot scan) on a longer one (a
    5-minute source is a single window either way)."""
    rows: list[tuple[str, int, dict[str, Any]]] = []
    for m in minutes if windowed else []:
        src = make_long_source(m, cache)
        print(f"[long] {m} min: ingesting {src.name}", file=sys.stderr, flush=True)
        rows.append(("windowed (300 s windows)", m, _run_child(src, "windows")))
    if baselines:
        for label, mode, m in (("before windowing (today's whole-file path)", "before", minutes[0]),
                               ("one window (whole-file ASR + shots)", "one-window", one_window_minutes)):
            print(f"[long] {m} min baseline: {label}", file=sys.stderr, flush=True)
            rows.append((label, m, _run_child(make_long_source(m, cache), mode)))
    load = os.getloadavg()[0]
    lines = [
        f"Long generated footage (320x180, 10 fps, a shot every 10–30 s, real speech in a quarter); each ingest in a "
        f"fresh subprocess and home, default embedder; {os.cpu_count()} CPUs, load average at end {load:.1f}.",
        "",
        "| run | footage min | clips | status | wall s (ingest) | footage s / wall s | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, m, r in rows:
        speed = r["footage"] / r["wall"] if r["wall"] and r["footage"] else 0.0
        status = r["status"] + (f": {r['message'][-80:]}" if r["status"] == "failed" else "")
        lines.append(f"| {label} | {m} | {r['clips']} | {status} | {r['wall']:.1f} | {speed:.2f}x | "
                     f"{r['rss_mb']:.0f} |")
    win = [(m, r) for label, m, r in rows if label.startswith("windowed") and r["footage"]]
    if len(win) > 1:
        (m0, r0) = win[0]
        lines += ["", "| growth vs " + f"{m0} min | footage × | wall × | peak RSS × |", "|---|---|---|---|"]
        for m, r in win[1:]:
            lines.append(f"| {m} min | {m / m0:.1f} | {r['wall'] / r0['wall']:.2f} | "
                         f"{r['rss_mb'] / r0['rss_mb']:.2f} |")
    if win:
        m, r = win[-1]
        stages = ", ".join(f"{k} {v:.0f}s" for k, v in sorted(r["stages"].items(), key=lambda x: -x[1]))
        lines += ["", f"Stages at {m} min: {stages}."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
