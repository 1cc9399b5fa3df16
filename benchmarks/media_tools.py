"""Media-tools benchmark, each against a named baseline in the same run.

1. Ken Burns 1080x1920, 5 s @30 fps on the 12 MP EXIF photo: cutpilot (sub-pixel OpenCV warp piped to x264)
   vs the usual ffmpeg `zoompan` one-liner (baseline). Wall time and judder: coefficient of variation of the
   frame-to-frame change over the clip (a smooth zoom changes by a near-constant amount per frame; zoompan's
   whole-pixel crop steps make it jumpy).
2. TTS word timings (estimated from speech spans) vs Whisper word timestamps on the same piper/espeak audio
   (baseline = evenly splitting the whole file by word count).
3. Music bed synthesis: seconds of audio per wall second.
4. Photo-only product → a 10 s 9:16 ad through the planner (agent.gapfill: cut-out → scene → motion → render),
   wall time per stage and peak RSS, then four more variants of the brief (other audiences): the generated
   shots are reused, so later variants pay no generation (targets on 2 cores: ≤ 30 s first, ≤ 10 s after).

    .venv/bin/python benchmarks/media_tools.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cutpilot.media import extract_audio  # noqa: E402
from cutpilot.settings import Settings  # noqa: E402
from cutpilot.timeline import KenBurns  # noqa: E402

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "media" / "image" / "forensics_phone_exif_rot180_4000x3000.jpg"
W, H, FPS, SECONDS = 1080, 1920, 30, 5.0


def judder(path: Path) -> float:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", "scale=270:480", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    f = np.frombuffer(raw, np.uint8).reshape(-1, 480, 270).astype(np.float32)
    d = np.array([np.abs(f[i + 1] - f[i]).mean() for i in range(len(f) - 1)])
    mid = d[len(d) // 5: -len(d) // 5]  # skip the eased ends
    return float(mid.std() / max(1e-6, mid.mean()))


def bench_ken_burns(tmp: Path) -> None:
    from tools.image_video import ken_burns

    s = Settings(home=tmp / "h")
    motion = KenBurns(zoom_from=1.0, zoom_to=1.3, center_from=(0.5, 0.5), center_to=(0.55, 0.45))
    t0 = time.perf_counter()
    ours = ken_burns(PHOTO, SECONDS, motion=motion, size=(W, H), fps=FPS, settings=s, out_dir=tmp)
    t_ours = time.perf_counter() - t0
    # baseline: upright copy first (zoompan does not apply EXIF), then the common zoompan recipe
    upright = tmp / "upright.jpg"
    from PIL import Image, ImageOps

    with Image.open(PHOTO) as im:
        ImageOps.exif_transpose(im).convert("RGB").save(upright, quality=92)
    n = int(SECONDS * FPS)
    base = tmp / "zoompan.mp4"
    t0 = time.perf_counter()
    vf = (f"scale=-2:{H * 2},crop={W * 2}:{H * 2},zoompan=z='min(1+0.3*on/{n - 1},1.3)':"
          f"x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d={n}:s={W}x{H}:fps={FPS}")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(upright), "-vf", vf, "-frames:v", str(n),
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(base)],
                   check=True)
    t_base = time.perf_counter() - t0
    j_ours, j_base = judder(ours.path), judder(base)
    print(f"ken_burns 1080x1920 5s: cutpilot {t_ours:.2f}s judder {j_ours:.3f} | zoompan {t_base:.2f}s "
          f"judder {j_base:.3f} | time ratio {t_ours / t_base:.2f}x, judder ratio {j_base / max(j_ours, 1e-6):.1f}x "
          "smoother")


def _norm(w: str) -> str:
    return re.sub(r"[^a-z0-9\u4e00-\u9fff]", "", w.lower())


def bench_tts_timing(tmp: Path) -> None:
    from index.asr import transcribe
    from tools.tts import WordTiming, tts

    s = Settings(home=tmp / "h2")
    text = ("Meet the new espresso cup. Double walled glass keeps your coffee hot for longer, and the handle "
            "stays cool. Order today and get free shipping!")
    for provider in ("piper", "espeak"):
        t0 = time.perf_counter()
        res = tts(text, lang="en", settings=s, out_dir=tmp, provider=provider)
        wall = time.perf_counter() - t0
        wav16 = extract_audio(res.path, tmp / f"{provider}16.wav")
        asr = transcribe(wav16, s, language="en")
        ref = [(_norm(w.text), w.start) for w in asr.words]
        even = [WordTiming(text=w.text, start_ms=round(i * res.duration_s * 1000 / len(res.words)), end_ms=0)
                for i, w in enumerate(res.words)]
        errs: dict[str, list[float]] = {"cutpilot": [], "even split": []}
        j = 0
        for k, w in enumerate(res.words):
            key = _norm(w.text)
            for jj in range(j, min(j + 4, len(ref))):
                if ref[jj][0] == key:
                    errs["cutpilot"].append(abs(w.start_ms / 1000 - ref[jj][1]))
                    errs["even split"].append(abs(even[k].start_ms / 1000 - ref[jj][1]))
                    j = jj + 1
                    break
        m = {k: 1000 * float(np.mean(v)) if v else float("nan") for k, v in errs.items()}
        print(f"tts {provider} ({res.timing}): {res.duration_s:.2f}s audio in {wall:.2f}s "
              f"(RTF {wall / res.duration_s:.2f}); "
              f"word-start error vs Whisper over {len(errs['cutpilot'])}/{len(res.words)} matched words: "
              f"cutpilot {m['cutpilot']:.0f} ms, even-split baseline {m['even split']:.0f} ms")


def bench_music(tmp: Path) -> None:
    from tools.music import synthesize

    t0 = time.perf_counter()
    a = synthesize("upbeat", 30.0)
    wall = time.perf_counter() - t0
    print(f"music_bed synth 30 s stereo 48k: {wall:.2f}s ({30 / wall:.0f}x real time), {a.nbytes / 1e6:.1f} MB")


PACKSHOT = ROOT / "tests" / "fixtures" / "ingest" / "opencv_box_product.png"
STAGES = {"cutout": "cutout", "backdrop": "scene", "scene": "scene", "image_to_video": "motion",
          "ken_burns": "motion", "try_on": "try_on", "register_generated": "register", "render": "render",
          "tts": "voice", "check_speech": "voice", "music": "music"}


def _timed_toolbox(settings: Settings) -> Any:
    from agent.toolbox import Toolbox

    class Timed(Toolbox):
        """Adds each media call's wall time to its stage."""

        def __init__(self, s: Settings) -> None:
            super().__init__(s)
            self.stage_s: dict[str, float] = {}

    def wrap(name: str) -> Any:
        inner = getattr(Toolbox, name)

        def timed(self: Any, *a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(self, *a, **kw)
            finally:
                st = STAGES[name]
                self.stage_s[st] = self.stage_s.get(st, 0.0) + time.perf_counter() - t0

        return timed

    for name in STAGES:
        setattr(Timed, name, wrap(name))
    return Timed(settings)


def bench_photo_only_ad(tmp: Path) -> None:
    import resource
    import warnings

    from agent.gapfill import GENERATION_CALLS
    from agent.run import make_ad
    from cutpilot.models import ClipRecord, clip_id_for, file_hash
    from index.library import Library

    s = Settings(home=tmp / "photo-only", text_embedder="hash")
    h = file_hash(PACKSHOT)
    rec = ClipRecord.model_validate(dict(
        clip_id=clip_id_for(h, 0.0, 3.0), source=str(PACKSHOT), source_hash=h, start=0.0, end=3.0, language="en",
        description="Front of a Bastoncini cookie box, packshot on a plain background", content_type="product intro",
        format="product still", product="Bastoncini Cookies", label_source="human", keyframes=[str(PACKSHOT)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = Library.open(s)
        lib.add([rec])
        try:
            for k, who in enumerate(["", " for students", " for busy parents", " for office snacking",
                                     " for gift buyers"]):
                tools = _timed_toolbox(s)
                t0 = time.perf_counter()
                r = make_ad(f"10 second ad for Bastoncini Cookies, 9:16{who}", settings=s, library=lib,
                            out_dir=tmp / f"variant{k}", quality="draft", tools=tools)
                wall = time.perf_counter() - t0
                gen = {c: n for c, n in tools.calls.items() if c in GENERATION_CALLS and n}
                made = [g for g in r.run.generated if g["kind"] == "image_video"]
                reused = sum(1 for g in made if g["reused"])
                cards = sum(1 for v in r.timeline.video if v.kind == "card")
                stages = " ".join(f"{k2} {v:.1f}s" for k2, v in sorted(tools.stage_s.items()))
                rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                       resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
                media = sum(v for k2, v in tools.stage_s.items() if k2 in ("cutout", "scene", "motion", "register"))
                nodes = " ".join(f"{n} {v:.1f}" for n, v in r.run.node_wall().items() if v >= 0.05)
                quiet = wall - tools.stage_s.get("voice", 0.0)
                print(f"photo-only ad variant {k + 1}: {wall:.1f}s wall [nodes: {nodes}]\n    ({quiet:.1f}s "
                      f"without the voice stage; generation {media:.1f}s) | {stages} | shots {len(made)} "
                      f"(reused {reused}), cards {cards}, generation calls {gen or 'none'} | peak RSS "
                      f"{rss[0] / 1024:.0f} MB (largest child {rss[1] / 1024:.0f} MB)")
        finally:
            lib.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if sys.argv[1:] == ["photo-only"]:
            bench_photo_only_ad(tmp)
            sys.exit(0)
        bench_photo_only_ad(tmp)
        bench_ken_burns(tmp)
        bench_music(tmp)
        bench_tts_timing(tmp)
