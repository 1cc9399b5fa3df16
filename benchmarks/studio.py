"""Studio benchmark: a swap on the Make screen → a playable preview of the new cut, against a full re-render.

A 30 s 9:16 ad is planned with the offline planner on the bundled sample library (samples/, products.yaml and
annotations; hash text embedder, so no model weights), then, in the same run and on the same machine:

  (b) preview of the planned cut, cold cache (every segment) and warm (a cache hit)
  (c) swap slot 2 (index 1) to one of its alternates: through `agent.run.resume_chat(thread, {"action": "swap",
      ...})` when the planner answers swaps (request → re-plan of that slot → timeline → preview file ready), else
      the timeline edit a revision makes (storyboard slot re-chosen, timeline re-assembled) + the preview; then the
      renderer alone on that change, repeated (the changed segment removed before each run), and the same swap with
      the shot's own audio on (the audio mix is then redone too)
  (a) baseline: a full render of the swapped timeline at the studio's final size and quality from a cold cache,
      and its preview from a cold cache
  (d) the studio app (when `cutpilot.studio.app.create_app` exists): GET /make/{ad_id} page load and the swap
      request's card update, through FastAPI's TestClient

Every row: wall seconds, ratio to the full re-render (a), peak RSS of this process and its ffmpeg children
(sampled from /proc every 30 ms), CPU seconds (this process + its children:
less moved by other load than wall time). Target on 2 cores: a swap is playable in ≤ 2 s.

    .venv/bin/python benchmarks/studio.py [--repeats 5] [--final-quality draft] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path[:0] = [str(REPO)]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BRIEF = "make a 30s 9:16 ad for LEGO Technic"
SLOT = 1  # "slot 2" on the Make screen


# --- measurement --------------------------------------------------------------------------------------------------
def _kids(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out


def _tree_rss(root: int) -> int:
    """RSS (bytes) of root and all its descendants; walks only the tree (`/proc/<pid>/task/*/children`), so a
    sample costs well under a millisecond and does not take CPU from the 2 cores being measured."""
    page = os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        stack += _kids(p)
    return total


def _cpu() -> float:
    """CPU seconds of this process (all threads) and its finished children (every ffmpeg / ffprobe run)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


class Rows:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    @contextmanager
    def timed(self, name: str, **info: Any) -> Iterator[dict[str, Any]]:
        """Wall time and peak process-tree RSS of the block; `info` and whatever the block adds are kept."""
        row: dict[str, Any] = {"name": name, **info}
        peak = [_tree_rss(os.getpid())]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.03):
                peak[0] = max(peak[0], _tree_rss(os.getpid()))

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        c0 = _cpu()
        t0 = time.perf_counter()
        try:
            yield row
        finally:
            row.setdefault("wall_s", time.perf_counter() - t0)
            row.setdefault("cpu_s", _cpu() - c0)
            done.set()
            th.join()
            row["rss_mb"] = max(peak[0], _tree_rss(os.getpid())) / 1e6
            self.rows.append(row)
            print(f"  {name}: {row['wall_s']:.2f} s", flush=True)


def _lufs(path: Path) -> float:
    """Integrated loudness of a file (ffmpeg ebur128), to show how far the one-pass preview mix lands."""
    import re
    import subprocess

    r = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-filter_complex", "ebur128",
                        "-f", "null", "-"], capture_output=True, text=True)
    m = re.findall(r"I:\s+(-?[\d.]+) LUFS", r.stderr)
    return float(m[-1]) if m else float("nan")


def _probe(path: Path) -> dict[str, Any]:
    import subprocess

    r = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                       capture_output=True, text=True, check=True)
    data = json.loads(r.stdout)
    streams = {s["codec_type"]: s for s in data["streams"]}
    return {"vcodec": streams.get("video", {}).get("codec_name"), "acodec": streams.get("audio", {}).get("codec_name"),
            "size": f"{streams.get('video', {}).get('width')}x{streams.get('video', {}).get('height')}",
            "duration_s": float(data["format"]["duration"])}


# --- setup: home, samples, plan -----------------------------------------------------------------------------------
def setup(home: Path) -> tuple[Any, Any]:
    from cutpilot.products import ProductStore
    from cutpilot.settings import Settings
    from index.ingest import ingest
    from index.library import Library

    s = Settings(home=home, text_embedder="hash")
    ProductStore(s).import_file(REPO / "samples" / "products.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = Library.open(s)
    ingest([REPO / "samples"], s, lib, annotations=REPO / "samples" / "annotations.jsonl", progress=False)
    return s, lib


def thread_values(settings: Any, thread_id: str) -> dict[str, Any]:
    """The planner thread's last checkpointed state (what the studio reads; nothing runs)."""
    from agent.graph import open_checkpointer

    cp = open_checkpointer(settings)
    try:
        tup = cp.get_tuple({"configurable": {"thread_id": thread_id}})
        return dict(tup.checkpoint.get("channel_values") or {}) if tup else {}
    finally:
        cp.conn.close()


def pick_alternates(review: dict[str, Any], lib: Any, current: str | None) -> list[str]:
    """The slot's alternates as the review shows them; other library clips when it shows none."""
    row = review["slots"][SLOT]
    alts = [a for a in row.get("alternates") or [] if a and a != current]
    if len(alts) < 3:
        for rec in lib.records():
            if rec.clip_id != current and rec.clip_id not in alts and rec.end - rec.start >= 2.0 and \
                    Path(rec.source).suffix.lower() not in {".jpg", ".jpeg", ".png", ".webp"}:
                alts.append(rec.clip_id)
    return alts


def edit_swap(values: dict[str, Any], lib: Any, clip_id: str) -> Any:
    """The swap as a revision applies it: the slot re-chosen, the timeline re-assembled from storyboard + voice."""
    from agent.assemble import assemble
    from agent.state import MusicTrack, VoiceTrack
    from cutpilot.storyboard import ClipChoice, Storyboard

    rec = lib.get(clip_id)
    sb = Storyboard.model_validate(values["storyboard"])
    slots = list(sb.slots)
    slots[SLOT] = slots[SLOT].model_copy(update={"chosen": ClipChoice(
        clip_id=rec.clip_id, source=rec.source, start=rec.start, end=rec.end, content_type=rec.content_type)})
    sb = sb.model_copy(update={"slots": slots})
    music = MusicTrack.model_validate(values["music"]) if values.get("music") else None
    voice = {int(k): VoiceTrack.model_validate(v) for k, v in (values.get("voice") or {}).items()}
    return assemble(sb, voice, music, title=sb.brief.text[:60])


def keep_length_swap(tl: Any, rec: Any) -> Any:
    """The slot's item showing another clip for the same length (held or slowed when the clip is shorter)."""
    from cutpilot.timeline import ClipItem

    items = list(tl.video)
    i = next(k for k, v in enumerate(items) if v.slot == SLOT)
    old = items[i]
    in_ms = round(rec.start * 1000)
    clip_ms = round((rec.end - rec.start) * 1000)
    items[i] = ClipItem(id=old.id, start_ms=old.start_ms, duration_ms=old.duration_ms, slot=old.slot,
                        transition_in=old.transition_in, source=rec.source, in_ms=in_ms,
                        out_ms=in_ms + min(old.duration_ms, clip_ms), clip_id=rec.clip_id,
                        fill="freeze" if old.duration_ms <= clip_ms else "slow")
    return tl.model_copy(update={"video": items})


def _lengths(tl: Any) -> list[int]:
    return [v.duration_ms for v in tl.video]


def changed_segments(before: Any, after: Any) -> int:
    """Segments whose key differs between two timelines at preview size (what a preview has to encode)."""
    from tools.captions import layout_aigc, layout_captions
    from tools.render import _seg_key, plan_segments, preview_timeline

    keys = []
    for tl in (before, after):
        ptl = preview_timeline(tl)
        cache = Path(tempfile.mkdtemp(prefix="cp-keys-"))
        caps, labs = layout_captions(ptl, cache), layout_aigc(ptl, cache)
        keys.append({_seg_key(ptl, seg, caps, labs, "draft") for seg in plan_segments(ptl)})
        shutil.rmtree(cache, ignore_errors=True)
    return len(keys[1] - keys[0])


# --- the run ------------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="renderer-only swap repeats")
    ap.add_argument("--final-quality", default="draft", choices=["draft", "standard", "high"],
                    help="quality of the full re-render baseline (the studio's final render uses draft)")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a fresh temp dir)")
    ap.add_argument("--no-app", action="store_true", help="skip (d), the studio app")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    a = ap.parse_args()

    from agent.run import resume_chat, start_chat
    from cutpilot.timeline import ClipItem, Timeline
    from tools.render import render, render_preview

    work = a.work or Path(tempfile.mkdtemp(prefix="cp-bench-studio-"))
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    load0 = os.getloadavg()
    print(f"setup: sample library → {home}", flush=True)
    t = time.perf_counter()
    settings, lib = setup(home)
    ingest_s = time.perf_counter() - t
    cache = home / "render-cache"  # the cache the planner's render node and the studio share
    rows = Rows()
    ad_id = "bench" + os.urandom(3).hex()
    out_dir = home / "studio" / "ads" / ad_id
    with rows.timed("plan: brief → review (offline planner)"):
        turn = start_chat(BRIEF, settings=settings, library=lib, out_dir=out_dir, planner="offline",
                          quality="draft", thread_id=ad_id)
    assert turn.review is not None, "the planner did not stop at review"
    values = thread_values(settings, ad_id)
    tl0 = Timeline.model_validate(values["timeline"])
    current = turn.review["slots"][SLOT]["clip_id"]
    alts = pick_alternates(turn.review, lib, current)
    if not alts:
        raise SystemExit("no alternate clip for slot 2 in the sample library")
    print(f"ad {ad_id}: {tl0.duration_ms / 1000:g} s {tl0.output.aspect} {tl0.output.width}x{tl0.output.height}, "
          f"{len(tl0.video)} shots; slot 2 = {current}, alternates {alts[:5]}", flush=True)

    # (b) preview of the planned cut
    with rows.timed("(b) preview, cold cache") as r:
        res = render_preview(tl0, out_dir / "preview.mp4", settings=settings, cache_dir=cache)
        r.update(segments=f"{res.segments_rendered}/{res.segments_total}", timings=res.timings)
    with rows.timed("(b) preview, warm (unchanged cut)") as r:
        res = render_preview(tl0, out_dir / "preview.mp4", settings=settings, cache_dir=cache)
        r.update(segments=f"{res.segments_rendered}/{res.segments_total}", timings=res.timings)
    before = set(res.cache_files)

    # (c) the swap, as the studio makes it: the planner's front door, then the preview of what it planned.
    # The one-slot edit below gets its own copy of this warm cache, so neither measurement warms the other's.
    keep_cache = work / "cache-keep"
    shutil.rmtree(keep_cache, ignore_errors=True)
    shutil.copytree(cache, keep_cache)
    on_screen = {row["clip_id"] for row in turn.review["slots"]}
    cands = [c for c in alts if c not in on_screen] + [c for c in alts if c in on_screen]
    tl1, clip_id, refused = None, cands[0], []
    for cand in cands[:4]:
        t0 = time.perf_counter()
        turn2 = resume_chat(ad_id, {"action": "swap", "slot": SLOT, "clip_id": cand}, settings=settings, library=lib)
        replan = time.perf_counter() - t0
        answer = (turn2.review or {}).get("answer") or {}
        if answer.get("applied") and turn2.review is not None and turn2.review["slots"][SLOT]["clip_id"] == cand:
            clip_id = cand
            tl1 = Timeline.model_validate(thread_values(settings, ad_id)["timeline"])
            with rows.timed("(c) swap request → re-plan of slot 2 → preview ready") as r:
                res = render_preview(tl1, out_dir / "preview.mp4", settings=settings, cache_dir=cache)
                r.update(segments=f"{res.segments_rendered}/{res.segments_total}", timings=res.timings,
                         replan_s=replan)
            r["wall_s"] += replan  # the request's whole path: re-plan + preview
            r.update(changed_keys=changed_segments(tl0, tl1), moved=_lengths(tl0) != _lengths(tl1),
                     lengths=[_lengths(tl0), _lengths(tl1)])
            break
        refused.append(f"{cand[:8]}: {answer.get('kind')}: {answer.get('message')} ({replan:.2f} s)")
    if refused:
        rows.rows.append({"name": "planner refusals", "wall_s": 0.0, "cpu_s": 0.0, "rss_mb": 0.0, "repeat": True,
                          "note": "swap refused before one applied: " + "; ".join(refused)})
    if tl1 is not None:
        print(f"  planner swap to {clip_id[:8]}: {r['segments']} segments, shot lengths (ms) "
              f"{r['lengths'][0]} → {r['lengths'][1]}", flush=True)
    else:  # the planner takes no swap: the storyboard edit a revision makes, re-assembled
        with rows.timed("(c) swap (slot re-chosen, timeline re-assembled) → preview ready") as r:
            t0 = time.perf_counter()
            tl1 = edit_swap(values, lib, clip_id)
            r["replan_s"] = time.perf_counter() - t0
            res = render_preview(tl1, out_dir / "preview.mp4", settings=settings, cache_dir=cache)
            r.update(segments=f"{res.segments_rendered}/{res.segments_total}", timings=res.timings)
        r.update(changed_keys=changed_segments(tl0, tl1), moved=_lengths(tl0) != _lengths(tl1),
                 lengths=[_lengths(tl0), _lengths(tl1)])

    # the swap as a Make-screen edit that keeps the slot's length: the renderer's one-segment path
    rec = lib.get(clip_id)
    tl_keep = keep_length_swap(tl0, rec)
    with rows.timed("(c) swap keeping the slot's length (timeline edit) → preview ready") as r:
        res = render_preview(tl_keep, work / "keep.mp4", settings=settings, cache_dir=keep_cache)
        r.update(segments=f"{res.segments_rendered}/{res.segments_total}", timings=res.timings)
    r["changed_keys"] = changed_segments(tl0, tl_keep)
    keep_res = res
    check = _probe(work / "keep.mp4")

    # the renderer alone on that change, repeated: the changed segment and the joined file removed each time
    fresh = [n for n in keep_res.cache_files if n.startswith(("seg-", "preview-")) and n not in before]
    cache = keep_cache
    walls: list[float] = []
    for k in range(a.repeats):
        for n in fresh:
            (cache / n).unlink(missing_ok=True)
        with rows.timed(f"(c) renderer only: one-slot swap preview #{k + 1}", repeat=True, rep=True) as r:
            res = render_preview(tl_keep, work / "keep.mp4", settings=settings, cache_dir=cache)
            r.update(segments=f"{res.segments_rendered}/{res.segments_total}", timings=res.timings)
        walls.append(r["wall_s"])

    # the same swap with the shot's own audio on: the audio mix is redone too
    items = list(tl_keep.video)
    idx = next(i for i, v in enumerate(items) if v.slot == SLOT)
    from tools.render import _probe as render_probe

    shot = items[idx]
    if isinstance(shot, ClipItem) and render_probe(shot.source, settings.ffprobe).has_audio:
        items[idx] = shot.model_copy(update={"audio": True})
        tl_a = tl_keep.model_copy(update={"video": items})
        with rows.timed("(c) one-slot swap with the shot's own audio on → preview") as r:
            res = render_preview(tl_a, work / "audio.mp4", settings=settings, cache_dir=cache)
            r.update(segments=f"{res.segments_rendered}/{res.segments_total}", timings=res.timings)
    tl_base = tl_keep

    # (a) baselines, cold caches
    cold = work / "cache-cold"
    shutil.rmtree(cold, ignore_errors=True)
    spec = tl_base.output
    with rows.timed(f"(a) full re-render of the swapped cut, {a.final_quality} {spec.width}x{spec.height}, cold cache",
                    baseline=True) as r:
        res = render(tl_base, work / "full.mp4", settings=settings, quality=a.final_quality, cache_dir=cold)
        r.update(segments=f"{res.segments_rendered}/{res.segments_total}", timings=res.timings)
    base = r["wall_s"]
    shutil.rmtree(cold, ignore_errors=True)
    with rows.timed("(a') preview of the swapped cut, cold cache") as r:
        res = render_preview(tl_base, work / "p3.mp4", settings=settings, cache_dir=cold)
        r.update(segments=f"{res.segments_rendered}/{res.segments_total}", timings=res.timings)

    # (d) the studio app
    # the audio pass alone, 30 s, nothing else running in this process: the final's vs the preview's
    from tools import ffgraph
    from tools.render import check_sources, render_audio, render_audio_preview

    probes = check_sources(tl_base, settings)
    samples = round(ffgraph.frames(tl_base.duration_ms, tl_base.output.fps) * ffgraph.SR / tl_base.output.fps)
    for label, fn in (("final: mix + iterated BS.1770/true-peak + two-loop AAC", render_audio),
                      ("preview: mix + one-pass gain/limiter + fast AAC", render_audio_preview)):
        acache = work / "cache-audio"
        shutil.rmtree(acache, ignore_errors=True)
        acache.mkdir(parents=True)
        with rows.timed(f"(audio) {label}") as r:
            apath = fn(tl_base, probes, samples, acache, settings)[0]
        r["segments"] = f"{_lufs(apath):.1f} LUFS"

    # the app starts from an empty render cache, so its first preview is cold and its swap finds only its own cut
    shutil.rmtree(home / "render-cache", ignore_errors=True)
    app_note = run_app(rows, settings, lib, alts) if not a.no_app else "skipped (--no-app)"
    lib.close()
    load1 = os.getloadavg()

    # report
    print()
    print(f"30 s 9:16 ad on the sample library, {os.cpu_count()} cores, load average {load0[0]:.2f} → "
          f"{load1[0]:.2f}; ingest {ingest_s:.1f} s (setup, untimed); preview {check['size']} "
          f"{check['vcodec']}/{check['acodec']} {check['duration_s']:.3f} s")
    print()
    base_cpu = next(x["cpu_s"] for x in rows.rows if x.get("baseline"))
    print("| step | wall s | × full re-render (wall) | CPU s | × full re-render (CPU) | segments encoded | "
          "peak RSS MB |")
    print("|---|---|---|---|---|---|---|")

    def line(name: str, wall: float, cpu: float | None, segs: Any, rss: float) -> None:
        c = f"{cpu:.2f} | {cpu / base_cpu:.3f}" if cpu is not None else "– | –"
        print(f"| {name} | {wall:.2f} | {wall / base:.3f} | {c} | {segs or '–'} | {rss:.0f} |")

    for row in rows.rows:
        if not row.get("repeat"):
            line(row["name"], row["wall_s"], row.get("cpu_s"), row.get("segments"), row["rss_mb"])
    reps = [x for x in rows.rows if x.get("rep")]
    if reps:
        line(f"(c) renderer only, one-slot swap: median of {len(walls)} (wall {min(walls):.2f}–{max(walls):.2f})",
             statistics.median(walls), statistics.median(x["cpu_s"] for x in reps), reps[0].get("segments"),
             max(x["rss_mb"] for x in reps))
    print()
    for row in rows.rows:
        if row.get("timings") and not row.get("repeat"):
            st = ", ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in row["timings"].items())
            print(f"- {row['name']}: {st}" + (f"; re-plan {row['replan_s']:.2f} s" if "replan_s" in row else ""))
    for row in rows.rows:
        if row.get("note"):
            print(f"- note: {row['note']}")
    print(f"- (d) studio app: {app_note}")
    for row in rows.rows:
        if row["name"].startswith("(c) swap"):
            ok = row["wall_s"] <= 2.0
            print(f"target: {row['name']}: ≤ 2 s {'PASS' if ok else 'FAIL'} ({row['wall_s']:.2f} s; segments "
                  f"{row.get('segments')}, changed keys {row.get('changed_keys')}"
                  + (f", shot lengths {'moved' if row['moved'] else 'unchanged'}" if "moved" in row else "") + ")")
    if walls:
        print(f"target: renderer only, one-slot swap: ≤ 2 s {'PASS' if statistics.median(walls) <= 2 else 'FAIL'} "
              f"(median {statistics.median(walls):.2f} s of {len(walls)})")
    if a.json:
        a.json.write_text(json.dumps({"rows": rows.rows, "baseline_s": base, "load": [load0, load1],
                                      "app": app_note}, indent=2, default=str))


def run_app(rows: Rows, settings: Any, lib: Any, fallback: list[str]) -> str:
    """(d): the Make screen through the studio app (FastAPI TestClient, same process): page load, the swap's card
    update (the HTMX panel the swap POST answers with), then the preview the page plays."""
    import inspect

    try:
        from cutpilot.studio.app import create_app
        from cutpilot.studio.service import Studio
    except ImportError as e:
        return f"skipped: the studio app is not there ({e})"
    from fastapi.testclient import TestClient

    from cutpilot.timeline import Timeline

    studio = Studio(settings, planner="offline", library=lib)
    how = "render_preview" if "render_preview" in inspect.getsource(Studio.preview) else "render (full size, draft)"
    try:
        app = create_app(settings, studio=studio)
        with TestClient(app) as client:
            with rows.timed("(d) studio: create_ad → review (planning job)") as r:
                ad_id = studio.create_ad(BRIEF)
                deadline = time.time() + 600
                while studio.ad(ad_id, shots=False).status == "planning" and time.time() < deadline:
                    time.sleep(0.1)
            view = studio.ad(ad_id)
            if view.status != "review":
                return f"skipped: the studio's plan ended {view.status} ({view.error})"
            with rows.timed("(d) GET /make/{ad_id} (page load, first)") as r:
                r["status"] = client.get(f"/make/{ad_id}").status_code
            with rows.timed("(d) GET /make/{ad_id} (page load, again)") as r:
                r["status"] = client.get(f"/make/{ad_id}").status_code
            with rows.timed("(d) GET /make/{ad_id}/preview.mp4 (first preview, cold cache)") as r:
                r["status"] = client.get(f"/make/{ad_id}/preview.mp4").status_code
            csrf = client.cookies.get("cutpilot_csrf") or ""
            on_screen = {sh.clip.clip_id for sh in view.shots if sh.clip is not None}
            alts = [c.clip_id for c in view.shots[SLOT].alternates] or list(fallback)
            alts = [c for c in alts if c not in on_screen] + [c for c in alts if c in on_screen]
            applied = False
            tl_a = Timeline.model_validate(studio._snapshot(ad_id).values["timeline"])
            for cand in alts[:4]:
                with rows.timed("(d) POST /make/{ad_id}/shots/1/swap (card update)") as r:
                    resp = client.post(f"/make/{ad_id}/shots/{SLOT}/swap", data={"clip_id": cand},
                                       headers={"X-CSRF-Token": csrf})
                    r["status"] = resp.status_code
                msgs = studio.ad(ad_id).messages
                applied = bool(msgs and msgs[-1].applied)
                if applied:
                    swap_s, swap_cpu = r["wall_s"], r["cpu_s"]
                    break
                r["name"] += " (refused)"
                r["repeat"] = True
                r["note"] = f"studio swap to {cand[:8]} refused: {msgs[-1].text if msgs else '?'}"
            if not applied:
                return f"page load timed; no alternate swap applied ({len(alts)} alternates); preview via {how}"
            tl_b = Timeline.model_validate(studio._snapshot(ad_id).values["timeline"])
            with rows.timed("(d) GET /make/{ad_id}/preview.mp4 (after the swap)") as r:
                r["status"] = client.get(f"/make/{ad_id}/preview.mp4").status_code
            rows.rows.append({"name": "(d) studio: swap request → playable preview (card + preview)",
                              "wall_s": swap_s + r["wall_s"], "cpu_s": swap_cpu + r["cpu_s"], "rss_mb": r["rss_mb"],
                              "segments": f"{changed_segments(tl_a, tl_b)} changed"})
            bad = [x for x in rows.rows if x["name"].startswith("(d)") and x.get("status", 200) >= 400]
            return (f"FastAPI TestClient, in process; Studio.preview uses {how}"
                    + (f"; HTTP errors: {[(x['name'], x['status']) for x in bad]}" if bad else ""))
    finally:
        close = getattr(studio, "close", None)
        if callable(close):
            close()


if __name__ == "__main__":
    main()
