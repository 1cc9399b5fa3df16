"""Timeline → finished H.264/AAC mp4 with ffmpeg: per-segment video encodes joined by stream copy, one audio pass.

Why segments: a full render costs about the same as one big filter graph on 2 cores (render-notes), but each
segment is cached by the content hash of what it shows, so an identical timeline is free and a changed slot
re-encodes only its own segment. Crossfades stay inside one segment; audio is mixed and loudness-normalised once
for the whole timeline (numpy, BS.1770 via pyloudnorm + a true-peak limiter) and encoded once at the final mux.

AI-generated content (人工智能生成合成内容标识办法, GB 45438-2025): the visible label (tools.captions.layout_aigc) is
overlaid inside each segment for exactly the frames of its generated shots, so it is part of the segment key; the
implicit label is an `AIGC` JSON tag on the final mux (`use_metadata_tags`: the mp4 muxer drops custom keys
otherwise), read back by `read_aigc`.

Preview (`render_preview`): the studio plays the assembled cut after every swap, so a preview is the same
segment plan at half size (540×960 for 9:16) in draft x264, keyed like the final's segments (a swapped slot
re-encodes only its own segment), joined by stream copy, `+faststart`. Its audio is the final's cached mix when
one exists (identical bytes), else a cheap mix: one loudness measurement, one gain, a sample-peak limiter and
the fast AAC coder (the final's iterated true-peak pass and two-loop AAC cost about 3 s for 30 s). Preview
files are renamed into place without fsync (atomic, not durable) and handed out as hard links: on this disk
one fsync costs ~0.2 s, and a swap wrote four.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from cutpilot import atomic
from cutpilot.errors import MediaError, RenderError, TimelineError
from cutpilot.media import IMAGE_EXTS, probe, run_ffmpeg
from cutpilot.settings import Settings
from cutpilot.timeline import CardItem, ClipItem, ImageItem, KenBurns, Timeline
from tools import ffgraph as fg
from tools.captions import CaptionImage, layout_aigc, layout_captions, safe_box

RENDER_VERSION = 4
AIGC_TAG = "AIGC"  # the implicit-label metadata key (GB 45438-2025 file metadata)
MP4_TAG = "cutpilot"  # the container comment that marks a file as a cutpilot render (cutpilot.outdir)
Quality = Literal["draft", "standard", "high"]
SR = fg.SR


class RenderResult(BaseModel):
    path: Path
    duration_s: float
    wall_s: float
    cached: bool
    segments_rendered: int
    segments_total: int
    audio_lufs: float | None = None
    audio_true_peak_db: float | None = None
    cache_dir: str | None = None
    cache_files: list[str] = []  # what this render read or made in cache_dir: `cutpilot gc` keeps these
    aigc: dict[str, Any] | None = None  # labels applied: shots, visible spans, route, the metadata written
    preview: bool = False  # a render_preview draft (half size, draft x264, maybe the one-pass audio)
    timings: dict[str, float] = {}  # wall seconds per stage: probe, plan, segments, audio, mux, total


@dataclass
class _Seg:
    items: list[Any]
    f0: int
    f1: int
    key: str = ""
    path: Path | None = None
    gap: bool = False


_FP: dict[tuple[str, int, int], str] = {}


def fingerprint(path: str | Path) -> str:
    """Content hash of a file (memoised per path/size/mtime so repeated renders don't re-read big sources)."""
    p = Path(path)
    st = p.stat()
    k = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if k not in _FP:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FP[k] = h.hexdigest()[:24]
    return _FP[k]


def _h(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]


def end_card_item(tl: Timeline) -> CardItem | None:
    b = tl.brand
    if b.end_card_ms <= 0:
        return None
    return CardItem(id="end_card", start_ms=tl.content_ms, duration_ms=b.end_card_ms, style="cta",
                    text=b.end_card_text or b.name or " ")


_PROBES: dict[tuple[str, int, int, str], Any] = {}


def _probe(path: str, ffprobe: str) -> Any:
    """ffprobe memoised per path/size/mtime: a warm preview otherwise spends ~1 s probing unchanged sources."""
    p = Path(path)
    st = p.stat()
    k = (str(p.resolve()), st.st_size, st.st_mtime_ns, ffprobe)
    if k not in _PROBES:
        if len(_PROBES) > 4096:  # a long-lived studio process: keep the memo bounded
            _PROBES.clear()
        _PROBES[k] = probe(p, ffprobe)
    return _PROBES[k]


def _probe_all(tl: Timeline, ffprobe: str) -> None:
    """Probe the timeline's not-yet-known sources in parallel (each ffprobe is mostly process start-up)."""
    paths = {it.source for it in tl.video if isinstance(it, ClipItem)} | {v.source for v in tl.voiceover}
    if tl.music:
        paths.add(tl.music.source)
    todo = []
    for src in sorted(paths):
        with contextlib.suppress(OSError):
            st = Path(src).stat()
            if (str(Path(src).resolve()), st.st_size, st.st_mtime_ns, ffprobe) not in _PROBES:
                todo.append(src)
    if len(todo) > 1:
        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            # errors surface below, in timeline order, from the sequential checks
            list(pool.map(lambda src: _try_probe(src, ffprobe), todo))


def _try_probe(path: str, ffprobe: str) -> None:
    with contextlib.suppress(MediaError, OSError):
        _probe(path, ffprobe)


def check_sources(tl: Timeline, settings: Settings) -> dict[str, Any]:
    """Fail fast, before ffmpeg, with one line naming the item whose file is missing or too short."""
    probes: dict[str, Any] = {}
    _probe_all(tl, settings.ffprobe)
    for it in tl.video:
        if isinstance(it, ClipItem | ImageItem) and not Path(it.source).is_file():
            raise RenderError(f"source file not found: {it.source}", item_id=it.id)
        if isinstance(it, CardItem) and it.background and not Path(it.background).is_file():
            raise RenderError(f"card background not found: {it.background}", item_id=it.id)
        if isinstance(it, ClipItem):
            if it.source not in probes:
                probes[it.source] = _probe(it.source, settings.ffprobe)
            pr = probes[it.source]
            if _is_still(it.source):
                continue  # a still placed as a clip: rendered as a held frame (see _segment_graph)
            if not pr.has_video:
                raise RenderError(f"source has no video stream: {it.source}", item_id=it.id)
            if it.out_ms > pr.duration * 1000 + 60:
                raise TimelineError(f"item {it.id}: out_ms {it.out_ms} is past the end of {Path(it.source).name} "
                                    f"({pr.duration * 1000:.0f} ms)")
    for vo in tl.voiceover:
        if not Path(vo.source).is_file():
            raise RenderError(f"voiceover file not found: {vo.source}", item_id=vo.id)
        probes[vo.source] = _probe(vo.source, settings.ffprobe)
    if tl.music:
        if not Path(tl.music.source).is_file():
            raise RenderError(f"music file not found: {tl.music.source}", item_id="music")
        if not _probe(tl.music.source, settings.ffprobe).has_audio:
            raise RenderError(f"music file has no audio stream: {tl.music.source}", item_id="music")
    if tl.brand.logo and not Path(tl.brand.logo).is_file():
        raise RenderError(f"brand logo not found: {tl.brand.logo}", item_id="brand.logo")
    return probes


def _is_still(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def plan_segments(tl: Timeline) -> list[_Seg]:
    """Group items into segments: a crossfade joins an item to its predecessor's segment; gaps become black."""
    fps = tl.output.fps
    items: list[Any] = list(tl.video)
    ec = end_card_item(tl)
    if ec is not None:
        items.append(ec)
    segs: list[_Seg] = []
    cursor = 0
    for it in items:
        f0, f1 = fg.frames(it.start_ms, fps), fg.frames(it.end_ms, fps)
        if it.transition_in is not None and segs:
            segs[-1].items.append(it)
            segs[-1].f1 = max(segs[-1].f1, f1)
        else:
            if f0 > cursor:
                segs.append(_Seg([], cursor, f0, gap=True))
            segs.append(_Seg([it], f0, f1))
        cursor = max(cursor, segs[-1].f1)
    return segs


# --- image preparation -------------------------------------------------------------------------------------
def _prep_image(src: str, size: tuple[int, int], fit: str, focus: tuple[float, float] | None, cache: Path,
                item_id: str = "") -> Path:
    """EXIF-rotate and fit a still to `size` once (PIL), cached: ffmpeg's image decoder ignores EXIF orientation."""
    from PIL import Image, ImageFilter, ImageOps

    key = _h([fingerprint(src), size, fit, focus])
    out = cache / f"img-{key}.png"
    if out.exists():
        return out
    try:
        im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    except OSError as e:
        raise RenderError(f"cannot read image {src}: {e}", item_id=item_id) from None
    W, H = size
    if fit == "blur":
        bg = ImageOps.fit(im, (max(2, W // 8), max(2, H // 8))).filter(ImageFilter.GaussianBlur(3)).resize((W, H))
        fgimg = ImageOps.contain(im, (W, H), Image.Resampling.LANCZOS)
        bg.paste(fgimg, ((W - fgimg.width) // 2, (H - fgimg.height) // 2))
        im = bg
    else:
        im = ImageOps.fit(im, (W, H), Image.Resampling.LANCZOS, centering=focus or (0.5, 0.5))
    cache.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(out) as tmp:
        im.save(tmp, compress_level=1)
    return out


# --- video segments ----------------------------------------------------------------------------------------
def _segment_graph(tl: Timeline, seg: _Seg, caps: list[CaptionImage], aigc_labels: list[CaptionImage],
                   card_pngs: dict[str, Path], cache: Path, probes: dict[str, Any], quality: str) -> list[str]:
    spec = tl.output
    W, H, fps = spec.width, spec.height, spec.fps
    g = fg.Graph()
    n_seg = seg.f1 - seg.f0
    if seg.gap:
        idx = g.add_input(["-f", "lavfi", "-i", f"color=c=black:s={W}x{H}:r={fps}"])
        g.chains.append(f"[{idx}:v]trim=end_frame={n_seg},setsar=1,format=yuv420p[v]")
        base = "v"
    else:
        labels: list[tuple[str, Any]] = []
        for it in seg.items:
            n = fg.frames(it.end_ms, fps) - fg.frames(it.start_ms, fps)
            lab = g.label("item")
            if isinstance(it, ClipItem) and _is_still(it.source):
                png = _prep_image(it.source, (W, H), it.fit, it.focus, cache, it.id)
                idx = g.add_input(["-framerate", str(fps), "-i", str(png)])
                fg.still_chain(g, idx=idx, n=n, fps=fps, out=lab)
            elif isinstance(it, ClipItem):
                rng = (it.out_ms - it.in_ms) / 1000
                idx = g.add_input(["-ss", f"{it.in_ms / 1000:.3f}", "-t", f"{rng:.3f}", "-i", it.source])
                slow = it.duration_ms / (it.out_ms - it.in_ms) if it.fill == "slow" else None
                if slow is not None and slow < 1.001:
                    slow = None
                hold = (it.duration_ms - (it.out_ms - it.in_ms)) / 1000 if slow is None else 0.0
                fg.clip_chain(g, idx=idx, n=n, fps=fps, W=W, H=H, fit=it.fit, focus=it.focus, slow=slow,
                              hold_s=max(0.0, hold) + 2.0 / fps + 0.1, out=lab)
            elif isinstance(it, ImageItem) and it.motion is not None:
                kb: KenBurns = it.motion
                over = 1.5 if quality == "draft" else 2.0
                png = _prep_image(it.source, (fg._even(W * over), fg._even(H * over)), it.fit, it.focus, cache, it.id)
                idx = g.add_input(["-i", str(png)])
                fg.kenburns_chain(g, idx=idx, n=n, fps=fps, W=W, H=H, motion=kb, out=lab)
            else:
                if isinstance(it, ImageItem):
                    png = _prep_image(it.source, (W, H), it.fit, it.focus, cache, it.id)
                else:
                    png = card_pngs[it.id]
                idx = g.add_input(["-framerate", str(fps), "-i", str(png)])
                fg.still_chain(g, idx=idx, n=n, fps=fps, out=lab)
            labels.append((lab, it))
        base, acc_end = labels[0][0], fg.frames(labels[0][1].end_ms, fps) - seg.f0
        for lab, it in labels[1:]:
            off = fg.frames(it.start_ms, fps) - seg.f0
            out = g.label("x")
            fg.xfade(g, base, lab, dur_frames=acc_end - off, offset_frames=off, fps=fps, out=out)
            base, acc_end = out, off + fg.frames(it.end_ms, fps) - fg.frames(it.start_ms, fps)
    t_seg0, t_seg1 = seg.f0 / fps, seg.f1 / fps
    for c in caps:
        a, b = c.start_ms / 1000, c.end_ms / 1000
        if b <= t_seg0 or a >= t_seg1:
            continue
        idx = g.add_input(["-i", str(c.path)])
        out = g.label("cap")
        fg.overlay_png(g, base, idx, x=c.x, y=c.y, t0=a - t_seg0, t1=b - t_seg0, out=out)
        base = out
    is_end = any(getattr(it, "id", "") == "end_card" for it in seg.items)
    if tl.brand.logo and not is_end:
        lw = fg._even(W * 0.16)
        idx = g.add_input(["-i", tl.brand.logo])
        box = safe_box(spec.aspect, W, H)
        m = round(min(W, H) * 0.03)
        pos = tl.brand.logo_position
        x = f"{box.x0 + m}" if pos.endswith("left") else f"{box.x1 - m}-w"
        y = f"{box.y0 + m}" if pos.startswith("top") else f"{box.y1 - m}-h"
        lg, out = g.label("logo"), g.label("lo")
        g.chains.append(f"[{idx}:v]scale={lw}:-2,format=rgba,colorchannelmixer=aa=0.85[{lg}]")
        g.chains.append(f"[{base}][{lg}]overlay={x}:{y}:eof_action=repeat[{out}]")
        base = out
    for lab_img, a, b in _label_spans(aigc_labels, seg, fps):
        idx = g.add_input(["-i", str(lab_img.path)])
        out = g.label("aigc")
        fg.overlay_png(g, base, idx, x=lab_img.x, y=lab_img.y, t0=a, t1=b, out=out)
        base = out
    g.chains.append(f"[{base}]format=yuv420p[vout]")
    return [*g.args(), "-map", "[vout]", *fg.encode_args(quality, fps, n_seg)]


def _label_spans(labels: list[CaptionImage], seg: _Seg, fps: int) -> list[tuple[CaptionImage, float, float]]:
    """Label overlays inside this segment as [t0, t1) in segment seconds, on frame boundaries (half a frame
    early) so the label covers exactly the frames of its shots, whatever the ms → frame rounding."""
    out = []
    for c in labels:
        f0, f1 = max(fg.frames(c.start_ms, fps), seg.f0), min(fg.frames(c.end_ms, fps), seg.f1)
        if f1 > f0:
            out.append((c, (f0 - seg.f0 - 0.5) / fps, (f1 - seg.f0 - 0.5) / fps))
    return out


def _seg_key(tl: Timeline, seg: _Seg, caps: list[CaptionImage], labels: list[CaptionImage], quality: str) -> str:
    fps = tl.output.fps
    items = []
    for it in seg.items:
        d = it.model_dump(mode="json")
        d["start_ms"] = fg.frames(it.start_ms, fps) - seg.f0
        for k in ("source", "background"):
            if d.get(k):
                d[k + "_fp"] = fingerprint(d[k])
                d.pop(k)
        d.pop("slot", None)
        d.pop("id", None)
        d.pop("generated", None)  # what it changes on screen is the label, keyed below
        d.pop("generator", None)
        items.append(d)
    t0, t1 = seg.f0 / fps, seg.f1 / fps
    cap_keys = [(c.path.name, c.x, c.y, round(c.start_ms / 1000 - t0, 4), round(c.end_ms / 1000 - t0, 4))
                for c in caps if c.end_ms / 1000 > t0 and c.start_ms / 1000 < t1]
    b = tl.brand
    brand = [b.model_dump(mode="json"), fingerprint(b.logo) if b.logo else None]
    lab_keys = [(c.path.name, c.x, c.y, round(a, 4), round(b_, 4)) for c, a, b_ in _label_spans(labels, seg, fps)]
    return _h([RENDER_VERSION, tl.output.model_dump(), quality, seg.f1 - seg.f0, seg.gap, items, cap_keys, brand,
               lab_keys])


# --- audio -------------------------------------------------------------------------------------------------
def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 0.3:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _audio_graph(tl: Timeline, probes: dict[str, Any], total_samples: int) -> tuple[list[str], bool]:
    """All audio into one stereo 48 kHz float stream of exactly total_samples; False when there is nothing."""
    g = fg.Graph()
    total_s = total_samples / SR
    fmt = f"aresample={SR},aformat=sample_fmts=fltp:channel_layouts=stereo"
    idx = g.add_input(["-f", "lavfi", "-t", f"{total_s:.6f}", "-i", f"anullsrc=r={SR}:cl=stereo"])
    labels = [f"{idx}:a"]
    any_audio = False
    items: list[Any] = list(tl.video)
    for i, it in enumerate(items):
        if not (isinstance(it, ClipItem) and it.audio and probes[it.source].has_audio):
            continue
        rng = (it.out_ms - it.in_ms) / 1000
        idx = g.add_input(["-ss", f"{it.in_ms / 1000:.3f}", "-t", f"{rng:.3f}", "-i", it.source])
        slot = it.duration_ms / 1000
        tempo = ""
        if it.fill == "slow" and it.duration_ms > (it.out_ms - it.in_ms) * 1.001:
            tempo = "," + fg.atempo_chain((it.out_ms - it.in_ms) / it.duration_ms)
        fades = ""
        if it.transition_in:
            fades += f",afade=t=in:d={it.transition_in.duration_ms / 1000:.3f}"
        nxt = items[i + 1] if i + 1 < len(items) else None
        if nxt is not None and nxt.transition_in:
            d = nxt.transition_in.duration_ms / 1000
            fades += f",afade=t=out:st={slot - d:.3f}:d={d:.3f}"
        lab = g.label("ca")
        g.chains.append(
            f"[{idx}:a]{fmt},asetpts=PTS-STARTPTS{tempo},apad,atrim=end={slot:.6f}{fades},"
            f"volume={it.gain_db:.2f}dB,adelay={it.start_ms}:all=1[{lab}]"
        )
        labels.append(lab)
        any_audio = True
    spans = []
    for vo in tl.voiceover:
        pr = probes[vo.source]
        if not pr.has_audio:
            continue
        dur = min(pr.duration, (vo.duration_ms or 10**9) / 1000, total_s - vo.start_ms / 1000)
        idx = g.add_input(["-i", vo.source])
        lab = g.label("vo")
        g.chains.append(f"[{idx}:a]{fmt},atrim=end={dur:.6f},volume={vo.gain_db:.2f}dB,"
                        f"adelay={vo.start_ms}:all=1[{lab}]")
        labels.append(lab)
        spans.append((vo.start_ms / 1000, vo.start_ms / 1000 + dur))
        any_audio = True
    if tl.music:
        idx = g.add_input(["-stream_loop", "-1", "-i", tl.music.source])
        lab = g.label("mu")
        duck = fg.duck_expr(_merge(spans), tl.music.duck_db)
        g.chains.append(f"[{idx}:a]{fmt},atrim=end={total_s:.6f},volume={tl.music.gain_db:.2f}dB,"
                        f"volume='{duck}':eval=frame[{lab}]")
        labels.append(lab)
        any_audio = True
    ins = "".join(f"[{x}]" for x in labels)
    g.chains.append(f"{ins}amix=inputs={len(labels)}:duration=first:normalize=0,apad=whole_len={total_samples},"
                    f"atrim=end_sample={total_samples}[aout]")
    return [*g.args(), "-map", "[aout]", "-f", "f32le", "-ac", "2", "-ar", str(SR)], any_audio


def true_peak_db(x: Any) -> float:
    """4× oversampled peak (BS.1770 true-peak approximation) in dBTP."""
    import numpy as np
    from scipy.signal import resample_poly

    if x.size == 0:
        return -120.0
    up = resample_poly(x, 4, 1, axis=0)
    peak = float(np.max(np.abs(up)))
    return 20 * np.log10(max(peak, 1e-9))


def normalize_loudness(x: Any, target_lufs: float, ceiling_db: float) -> tuple[Any, float | None, float]:
    """Gain to the integrated target (BS.1770, pyloudnorm), then a look-ahead true-peak limiter; iterate the gain
    so both hold. The 4× oversampled envelope is computed once: gain is linear, so it just scales."""
    import numpy as np
    import pyloudnorm
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    from scipy.signal import resample_poly

    if x.shape[0] < SR // 2 or float(np.max(np.abs(x))) < 1e-6:
        return x, None, true_peak_db(x)
    meter = pyloudnorm.Meter(SR)
    lufs = float(meter.integrated_loudness(x))
    if not np.isfinite(lufs):
        return x, None, true_peak_db(x)
    lim = 10 ** ((ceiling_db - 0.6) / 20)  # margin for AAC encoding overshoot
    up = np.abs(resample_poly(x, 4, 1, axis=0)).max(axis=1)
    env = up[: 4 * x.shape[0]].reshape(-1, 4).max(axis=1) if up.size >= 4 * x.shape[0] else up[: x.shape[0]]
    win = int(SR * 0.005) | 1
    g = 10 ** ((target_lufs - lufs) / 20)
    curve: Any = None
    y = x
    for _ in range(4):
        need = np.minimum(1.0, lim / np.maximum(env * g, 1e-9))
        curve = None if need.min() >= 0.999 else uniform_filter1d(minimum_filter1d(need, 2 * win + 1), win)
        y = (x * g if curve is None else x * (g * curve)[:, None]).astype(np.float32)
        lufs = float(meter.integrated_loudness(y))
        if abs(lufs - target_lufs) < 0.1:
            break
        g *= 10 ** ((target_lufs - lufs) / 20)
    return y, lufs, true_peak_db(y)


def audio_entry(tl: Timeline, total_samples: int, cache: Path) -> Path:
    """The cache file of a timeline's mixed, normalised audio (named by the audio inputs' content)."""
    mat = []
    for it in tl.video:
        if isinstance(it, ClipItem) and it.audio:
            mat.append([it.model_dump(mode="json"), fingerprint(it.source)])
    for vo in tl.voiceover:
        mat.append([vo.model_dump(mode="json"), fingerprint(vo.source)])
    if tl.music:
        mat.append([tl.music.model_dump(mode="json"), fingerprint(tl.music.source)])
    return cache / f"audio-{_h([RENDER_VERSION, total_samples, mat, tl.audio.model_dump()])}.m4a"


def _mixed(tl: Timeline, probes: dict[str, Any], total_samples: int, out: Path, settings: Settings
           ) -> tuple[Any, bool]:
    """The timeline's audio mixed to float32 stereo, exactly `total_samples` long (the final's and the preview's
    shared first step; each then normalises its own way), and whether any source had sound."""
    import numpy as np

    args, any_audio = _audio_graph(tl, probes, total_samples)
    raw = atomic.temp_path(out.with_suffix(".mix.f32"))  # pid-named: `cutpilot gc` removes a killed run's
    try:
        run_ffmpeg([*args, str(raw)], item_id="audio", what="audio mix failed", ffmpeg=settings.ffmpeg)
        x = np.fromfile(raw, dtype=np.float32).reshape(-1, 2)
    finally:
        raw.unlink(missing_ok=True)
    if x.shape[0] < total_samples:
        x = np.vstack([x, np.zeros((total_samples - x.shape[0], 2), np.float32)])
    return x[:total_samples], any_audio


def render_audio(tl: Timeline, probes: dict[str, Any], total_samples: int, cache: Path,
                 settings: Settings) -> tuple[Path, float | None, float]:
    """Mix once, normalise once; cached by the audio inputs' content."""
    import numpy as np

    out = audio_entry(tl, total_samples, cache)
    meta = out.with_suffix(".json")
    if out.exists() and meta.exists():
        m = json.loads(meta.read_text())
        return out, m["lufs"], m["tp"]
    x, any_audio = _mixed(tl, probes, total_samples, out, settings)
    lufs, tp = None, -120.0
    if any_audio:
        x, lufs, tp = normalize_loudness(x, tl.audio.target_lufs, tl.audio.true_peak_db)
    pcm = atomic.temp_path(out.with_suffix(".norm.f32"))
    try:  # encode AAC here, overlapping the video encodes, so the final mux is a pure stream copy
        x.astype(np.float32).tofile(pcm)
        with atomic.replacing(out) as tmp:
            run_ffmpeg(["-f", "f32le", "-ar", str(SR), "-ac", "2", "-i", str(pcm), "-c:a", "aac", "-b:a", "160k",
                        str(tmp)], item_id="audio", what="audio encode failed", ffmpeg=settings.ffmpeg)
    finally:
        pcm.unlink(missing_ok=True)
    atomic.write_text(meta, json.dumps({"lufs": lufs, "tp": tp}))
    return out, lufs, tp


# --- caption / label layout, memoised ------------------------------------------------------------------------
_LAYOUTS: dict[str, tuple[list[CaptionImage], list[CaptionImage]]] = {}


def _layouts(tl: Timeline, cache: Path, settings: Settings) -> tuple[list[CaptionImage], list[CaptionImage]]:
    """Caption and AIGC-label PNGs with their places. Drawing them is ~0.25 s for 11 captions (PIL text), most of
    a warm preview, and a swap changes none of what they depend on: the frame, brand, captions, label settings and
    which spans are generated. Memoised on exactly that; drawn again when a PNG is gone (`cutpilot gc`)."""
    fo = str(settings.font_path or "") or None
    key = _h([tl.model_dump(mode="json", include={"output", "brand", "captions", "caption_highlight", "aigc_label"}),
              [(v.start_ms, v.end_ms, v.generated) for v in tl.video], [v.generated for v in tl.voiceover],
              str(cache), fo, settings.font_index])
    hit = _LAYOUTS.get(key)
    if hit is not None and all(c.path.exists() for c in hit[0] + hit[1]):
        return hit
    caps = layout_captions(tl, cache / "captions", font_override=fo, font_index=settings.font_index)
    labels = layout_aigc(tl, cache / "captions", font_override=fo, font_index=settings.font_index)
    if len(_LAYOUTS) > 256:
        _LAYOUTS.clear()
    _LAYOUTS[key] = (caps, labels)
    return caps, labels


# --- preview files: atomic, not durable ------------------------------------------------------------------------
@contextlib.contextmanager
def _writing(path: Path, durable: bool) -> Iterator[Path]:
    """A temp to write, renamed over `path` on success. Durable (final renders): fsynced first, via
    cutpilot.atomic. Not durable (previews): renamed only — a kill still never leaves a partial file under the
    name, and an fsync costs ~0.2 s here, four of them most of a swap's budget; a power cut may lose a preview
    entry, and an empty one is treated as missing (`_ready`)."""
    if durable:
        with atomic.replacing(path) as tmp:
            yield tmp
        return
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_path(dest)
    try:
        yield tmp
        if not _ready(tmp):
            raise RenderError(f"nothing was written for {dest.name}", item_id="mux")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _ready(path: Path) -> bool:
    """A cache entry that can be used: there and not empty."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _publish(src: Path, dest: Path, durable: bool) -> None:
    """Put a finished cache file at `dest`: a durable copy for a final render, a hard link (no bytes written,
    atomic by rename) for a preview, a plain copy when the link is refused (another filesystem)."""
    if durable:
        atomic.copy_file(src, dest)
        return
    tmp = atomic.temp_path(dest)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


# --- preview audio --------------------------------------------------------------------------------------------
def preview_audio_entry(tl: Timeline, total_samples: int, cache: Path) -> Path:
    """The cache file of a timeline's cheap preview mix (same inputs as `audio_entry`, its own name)."""
    return audio_entry(tl, total_samples, cache).with_name(
        "audio-preview-" + audio_entry(tl, total_samples, cache).name.removeprefix("audio-"))


def render_audio_preview(tl: Timeline, probes: dict[str, Any], total_samples: int, cache: Path,
                         settings: Settings) -> tuple[Path, float | None, float | None]:
    """The same mix as `render_audio`, normalised in one pass: one BS.1770 measurement, one gain, a sample-peak
    limiter (no 4× oversampling, no iteration), fast AAC coder. About 1 LU under the target; for listening only."""
    import numpy as np

    out = preview_audio_entry(tl, total_samples, cache)
    if _ready(out):
        return out, None, None
    x, any_audio = _mixed(tl, probes, total_samples, out, settings)
    if any_audio:
        x = _one_pass_loudness(x, tl.audio.target_lufs, tl.audio.true_peak_db)
    pcm = atomic.temp_path(out.with_suffix(".norm.f32"))
    try:
        x.astype(np.float32).tofile(pcm)
        with _writing(out, durable=False) as tmp:
            run_ffmpeg(["-f", "f32le", "-ar", str(SR), "-ac", "2", "-i", str(pcm), "-c:a", "aac", "-aac_coder", "fast",
                        "-b:a", "128k", str(tmp)], item_id="audio", what="audio encode failed", ffmpeg=settings.ffmpeg)
    finally:
        pcm.unlink(missing_ok=True)
    return out, None, None


def _one_pass_loudness(x: Any, target_lufs: float, ceiling_db: float) -> Any:
    import numpy as np
    import pyloudnorm
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    if x.shape[0] < SR // 2 or float(np.max(np.abs(x))) < 1e-6:
        return x
    lufs = float(pyloudnorm.Meter(SR).integrated_loudness(x))
    if not np.isfinite(lufs):
        return x
    g = 10 ** ((target_lufs - lufs) / 20)
    lim = 10 ** ((ceiling_db - 1.0) / 20)
    env = np.abs(x).max(axis=1) * g
    need = np.minimum(1.0, lim / np.maximum(env, 1e-9))
    if need.min() >= 0.999:
        return (x * g).astype(np.float32)
    win = int(SR * 0.005) | 1
    curve = uniform_filter1d(minimum_filter1d(need, 2 * win + 1), win)
    return (x * (g * curve)[:, None]).astype(np.float32)


# --- public ------------------------------------------------------------------------------------------------
PREVIEW_SCALE = 0.5


def preview_timeline(timeline: Timeline, scale: float = PREVIEW_SCALE) -> Timeline:
    """The timeline at preview size: same shape, fps and segment boundaries, `scale` of each side (even)."""
    spec = timeline.output
    w, h = fg._even(spec.width * scale), fg._even(spec.height * scale)
    return timeline.model_copy(update={"output": spec.model_copy(update={"width": w, "height": h})})


def render_preview(timeline: Timeline, out: Path, *, settings: Settings, cache_dir: Path | None = None,
                   scale: float = PREVIEW_SCALE, progress: bool = False) -> RenderResult:
    """A playable draft of the cut for the studio, as cheap as a one-slot change allows.

    Half-size frames in draft x264 with the final's segment boundaries and keys (so a swapped shot re-encodes only
    its own segment and an unchanged timeline is a cache hit), joined by stream copy, `+faststart` so a browser
    starts playing at once, written atomically. Audio: the final's cached mix when there is one, else the one-pass
    preview mix (cached by the same audio inputs, so a swap of a silent shot reuses it). The studio calls this
    directly, so media references (media://, file://, s3://) are resolved here; plain paths pass unchanged."""
    from cutpilot.mediauri import resolve_timeline

    tl = preview_timeline(resolve_timeline(timeline, settings), scale)
    return _render(tl, out, settings=settings, quality="draft", cache_dir=cache_dir, progress=progress,
                   preview=True)


def render(timeline: Timeline, out: Path, *, settings: Settings, quality: Quality = "standard",
           cache_dir: Path | None = None, progress: bool = False) -> RenderResult:
    """Render a Timeline to an H.264/AAC mp4 (yuv420p, +faststart), reusing cached segments and audio."""
    return _render(timeline, out, settings=settings, quality=quality, cache_dir=cache_dir, progress=progress,
                   preview=False)


def _render(timeline: Timeline, out: Path, *, settings: Settings, quality: str, cache_dir: Path | None,
            progress: bool, preview: bool) -> RenderResult:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if quality not in fg.QUALITY:
        raise RenderError(f"unknown quality {quality!r}; use draft, standard or high")
    out = Path(out)
    # Absolute: the concat demuxer resolves relative entries against the list file's folder, not the cwd.
    cache = (Path(cache_dir) if cache_dir else settings.home / "cache" / "render").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    probes = check_sources(timeline, settings)
    timings["probe_s"] = time.perf_counter() - t0
    spec = timeline.output
    fps = spec.fps
    total_frames = fg.frames(timeline.duration_ms, fps)
    total_samples = round(total_frames * SR / fps)
    segs = plan_segments(timeline)
    caps, labels = _layouts(timeline, cache, settings)
    card_pngs: dict[str, Path] = {}
    from tools.cards import title_card

    for seg in segs:
        for it in seg.items:
            if isinstance(it, CardItem):
                card_pngs[it.id] = title_card(it.text, timeline.brand, size=(spec.width, spec.height),
                                              subtitle=it.subtitle, style=it.style, out_dir=cache / "cards",
                                              background=it.background)
        seg.key = _seg_key(timeline, seg, caps, labels, quality)
        seg.path = cache / f"seg-{seg.key}.mp4"
    audio_key = _h([RENDER_VERSION, total_samples, timeline.model_dump(mode="json", include={"voiceover", "music",
                                                                                               "audio"})])
    full_audio = audio_entry(timeline, total_samples, cache)
    # a preview takes the final's mix only when it is already there (identical bytes); else its own cheap one
    cheap_audio = preview and not (full_audio.exists() and full_audio.with_suffix(".json").exists())
    audio_file = preview_audio_entry(timeline, total_samples, cache) if cheap_audio else full_audio
    label = aigc_metadata(timeline, "")
    key_parts: list[Any] = [[s.key for s in segs], audio_key, _audio_inputs_fp(timeline), "tag:" + MP4_TAG, label]
    if preview:
        key_parts.append(["preview", audio_file.name])
    final_key = _h(key_parts)
    final = cache / f"{'preview' if preview else 'final'}-{final_key}.mp4"
    if label is not None:
        label = aigc_metadata(timeline, final_key)
    aigc = aigc_record(timeline, labels, label)
    used = _cache_use(timeline, segs, caps + labels, card_pngs, final, total_samples, cache, audio_file)
    timings["plan_s"] = time.perf_counter() - t0 - timings["probe_s"]
    out.parent.mkdir(parents=True, exist_ok=True)
    if _ready(final):
        _publish(final, out, durable=not preview)
        meta: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads(final.with_suffix(".json").read_text())
        timings["total_s"] = time.perf_counter() - t0
        return RenderResult(path=out, duration_s=total_frames / fps, wall_s=time.perf_counter() - t0, cached=True,
                            segments_rendered=0, segments_total=len(segs), audio_lufs=meta.get("lufs"),
                            audio_true_peak_db=meta.get("tp"), cache_dir=str(cache), cache_files=used, aigc=aigc,
                            preview=preview, timings=timings)
    todo = [s for s in segs if s.path is not None and not _ready(s.path)]
    jobs = max(1, min(len(todo), settings_jobs(settings)))
    audio_fn = render_audio_preview if cheap_audio else render_audio
    with _progress(progress, len(todo) + 1) as p, ThreadPoolExecutor(max_workers=jobs + 1) as pool:
        task = p.add_task("render", total=len(todo) + 1) if p else None
        # audio (mix + loudness) overlaps the video encodes; segments run `jobs` at a time (ffmpeg per segment)
        audio_future = pool.submit(_timed, audio_fn, timeline, probes, total_samples, cache, settings)
        seg_pool = ThreadPoolExecutor(max_workers=jobs)
        t_seg = time.perf_counter()
        futures = [seg_pool.submit(_encode_segment, timeline, seg, caps, labels, card_pngs, cache, probes, quality,
                                   settings, not preview) for seg in todo]
        try:
            for fut in futures:
                fut.result()
                if p and task is not None:
                    p.advance(task)
        finally:
            seg_pool.shutdown(wait=True, cancel_futures=True)
        timings["segments_s"] = time.perf_counter() - t_seg
        (apath, lufs, tp), timings["audio_s"] = audio_future.result()
        if p and task is not None:
            p.advance(task)
        t_mux = time.perf_counter()
        lst = atomic.temp_path(cache / f"concat-{final_key}.txt")
        try:
            lst.write_text("".join(concat_line(s.path) for s in segs if s.path is not None), encoding="utf-8")
            with _writing(final, durable=not preview) as tmp_final:
                tags = ["-metadata", f"comment={MP4_TAG}"]
                flags = "+faststart"
                if label is not None:  # custom keys survive the mp4 muxer only with use_metadata_tags
                    tags += ["-metadata", f"{AIGC_TAG}={json.dumps(label, ensure_ascii=False, separators=(',', ':'))}"]
                    flags = "use_metadata_tags+faststart"
                run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(lst), "-i", str(apath), "-map", "0:v",
                            "-map", "1:a", "-c", "copy", *tags, "-movflags", flags, str(tmp_final)],
                           item_id="mux", what="final mux failed", ffmpeg=settings.ffmpeg)
        finally:
            lst.unlink(missing_ok=True)
        with _writing(final.with_suffix(".json"), durable=not preview) as tmp_meta:
            tmp_meta.write_text(json.dumps({"lufs": lufs, "tp": tp}), encoding="utf-8")
        timings["mux_s"] = time.perf_counter() - t_mux
    _publish(final, out, durable=not preview)
    timings["total_s"] = time.perf_counter() - t0
    return RenderResult(path=out, duration_s=total_frames / fps, wall_s=time.perf_counter() - t0, cached=False,
                        segments_rendered=len(todo), segments_total=len(segs), audio_lufs=lufs,
                        audio_true_peak_db=tp, cache_dir=str(cache), cache_files=used, aigc=aigc, preview=preview,
                        timings=timings)


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    res = fn(*args)
    return res, time.perf_counter() - t


def _cache_use(tl: Timeline, segs: list[_Seg], caps: list[CaptionImage], card_pngs: dict[str, Path], final: Path,
               total_samples: int, cache: Path, audio: Path | None = None) -> list[str]:
    """The cache entries this render reads or makes, relative to `cache`; the ones already there are touched, so
    `cutpilot gc` (which spares recently used entries) never removes one from under a running render."""
    audio = audio or audio_entry(tl, total_samples, cache)
    paths = [s.path for s in segs if s.path is not None] + [audio, audio.with_suffix(".json"), final,
                                                             final.with_suffix(".json")]
    paths += [c.path for c in caps] + list(card_pngs.values())
    names: list[str] = []
    for p in dict.fromkeys(paths):
        try:
            names.append(str(Path(p).relative_to(cache)))
        except ValueError:
            continue
        if p.exists():
            with contextlib.suppress(OSError):
                os.utime(p)
    return names


# --- AIGC implicit label -------------------------------------------------------------------------------------
def aigc_metadata(tl: Timeline, produce_id: str) -> dict[str, str] | None:
    """The GB 45438-2025 implicit label for the file metadata, or None when nothing is generated.

    Label "1": the file contains AI-generated/synthesised content (generated shots or a TTS voice). ProduceID is the
    render's content hash, so a cached re-render carries the same ID. ContentPropagator / PropagateID belong to the
    distributor (empty unless aigc_label sets them); ReservedCode1/2 hold the producer's / propagator's protection
    codes (signatures), which cutpilot does not issue, so they stay empty."""
    if not tl.has_aigc:
        return None
    lab = tl.aigc_label
    return {"Label": "1", "ContentProducer": lab.producer, "ProduceID": produce_id, "ReservedCode1": "",
            "ContentPropagator": lab.propagator, "PropagateID": lab.propagate_id, "ReservedCode2": ""}


def aigc_record(tl: Timeline, labels: list[CaptionImage], metadata: dict[str, str] | None) -> dict[str, Any] | None:
    """What run.json keeps about the labels: which shots are generated, what was burned in where, the metadata."""
    if metadata is None:
        return None
    lab = tl.aigc_label
    return {
        "shots": [{"id": v.id, "kind": v.kind, "slot": v.slot, "start_ms": v.start_ms, "end_ms": v.end_ms,
                   "generator": v.generator} for v in tl.generated_items],
        "voice": [{"id": v.id, "slot": v.slot, "generator": v.generator} for v in tl.voiceover if v.generated],
        "visible": lab.visible, "route": lab.route, "text": lab.label_text,
        "spans": [{"text": c.text, "start_ms": c.start_ms, "end_ms": c.end_ms, "box": [c.x, c.y, c.w, c.h]}
                  for c in labels],
        "metadata": metadata,
    }


def read_aigc(path: str | Path, ffprobe: str = "ffprobe") -> dict[str, Any] | None:
    """The implicit AIGC label of a media file (its `AIGC` metadata JSON), or None when it has none."""
    tags = (probe(path, ffprobe).raw.get("format") or {}).get("tags") or {}
    raw = next((v for k, v in tags.items() if k.upper() == AIGC_TAG), None)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise MediaError(f"{path}: the AIGC metadata is not JSON") from None
    if not isinstance(data, dict):
        raise MediaError(f"{path}: the AIGC metadata is not a JSON object")
    return data


def concat_line(path: Path | str) -> str:
    """One entry of an ffmpeg concat list: single-quoted, each `'` written as `'\\''` (the demuxer's escaping).

    Unescaped, a `'` anywhere in the path (e.g. in CUTPILOT_HOME) ends the quote and the mux fails."""
    s = str(path)
    if "\n" in s or "\r" in s:
        raise RenderError(f"cannot list a path with a line break for ffmpeg: {s!r}", item_id="mux")
    return "file '" + s.replace("'", "'\\''") + "'\n"


def settings_jobs(settings: Settings) -> int:
    """Parallel segment encodes: one per core up to 4 (x264 threads itself; more only adds memory)."""
    return max(1, min(4, os.cpu_count() or 2))


def _encode_segment(tl: Timeline, seg: _Seg, caps: list[CaptionImage], labels: list[CaptionImage],
                    card_pngs: dict[str, Path], cache: Path, probes: dict[str, Any], quality: str,
                    settings: Settings, durable: bool = True) -> None:
    assert seg.path is not None
    item_id = "+".join(i.id for i in seg.items) or "gap"
    args = _segment_graph(tl, seg, caps, labels, card_pngs, cache, probes, quality)
    with _writing(seg.path, durable) as tmp:
        run_ffmpeg([*args, str(tmp)], item_id=item_id, what="segment encode failed", ffmpeg=settings.ffmpeg)


def _audio_inputs_fp(tl: Timeline) -> list[Any]:
    fps: list[Any] = []
    for it in tl.video:
        if isinstance(it, ClipItem) and it.audio:
            fps.append([it.model_dump(mode="json"), fingerprint(it.source)])
    fps += [fingerprint(v.source) for v in tl.voiceover]
    if tl.music:
        fps.append(fingerprint(tl.music.source))
    return fps


class _NoProgress:
    def __enter__(self) -> Any:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _progress(show: bool, total: int) -> Any:
    if not show:
        return _NoProgress()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), transient=True)
