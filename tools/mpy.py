"""The one moviepy adapter: a quick low-res preview render, and the plain-moviepy composite benchmark baseline.

moviepy composites frames in Python (numpy), so it is 4–6× slower than an ffmpeg filter graph for the final
render (render-notes); it stays here where its simplicity is worth it: previews a human glances at, and as the
honest baseline that peers ship. Captions and cards reuse the PIL PNGs (moviepy's TextClip clips Noto CJK lines and
picks the Japanese face of the .ttc).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cutpilot import atomic
from cutpilot.settings import Settings
from cutpilot.timeline import CardItem, ClipItem, ImageItem, OutputSpec, Timeline


def _cover(clip: Any, W: int, H: int, focus: tuple[float, float] | None) -> Any:
    from moviepy import vfx

    s = max(W / clip.w, H / clip.h)
    c = clip.with_effects([vfx.Resize(s)])
    fx, fy = focus or (0.5, 0.5)
    x1 = min(max(0, round(c.w * fx - W / 2)), c.w - W)
    y1 = min(max(0, round(c.h * fy - H / 2)), c.h - H)
    return c.with_effects([vfx.Crop(x1=x1, y1=y1, width=W, height=H)])


def _blur_fit(clip: Any, W: int, H: int) -> Any:
    from moviepy import CompositeVideoClip, vfx
    from PIL import Image, ImageFilter

    def blur(frame: Any) -> Any:
        import numpy as np

        im = Image.fromarray(frame).resize((max(2, W // 8), max(2, H // 8))).filter(ImageFilter.GaussianBlur(3))
        return np.asarray(im.resize((W, H)))

    bg = _cover(clip, W, H, None).image_transform(blur)
    s = min(W / clip.w, H / clip.h)
    fgc = clip.with_effects([vfx.Resize(s)]).with_position("center")
    return CompositeVideoClip([bg, fgc], size=(W, H)).with_duration(clip.duration)


def composite(tl: Timeline, out: Path, *, settings: Settings, preset: str = "medium", fps: int | None = None,
              work_dir: Path | None = None, threads: int = 2, logger: Any = None) -> Path:
    """Render the timeline with plain moviepy: clips, Ken Burns stills, crossfades, caption PNGs, ducked music."""
    from moviepy import AudioFileClip, CompositeAudioClip, CompositeVideoClip, ImageClip, VideoFileClip, afx, vfx

    from tools.captions import layout_captions
    from tools.cards import title_card
    from tools.render import end_card_item

    spec = tl.output
    W, H = spec.width, spec.height
    fps = fps or spec.fps
    work = work_dir or settings.home / "cache" / "mpy"
    layers: list[Any] = []
    items: list[Any] = list(tl.video)
    ec = end_card_item(tl)
    if ec is not None:
        items.append(ec)
    opened: list[Any] = []
    for it in items:
        dur = it.duration_ms / 1000
        if isinstance(it, ClipItem):
            src = VideoFileClip(it.source, audio=it.audio)
            opened.append(src)
            c = src.subclipped(it.in_ms / 1000, min(it.out_ms / 1000, src.duration))
            if it.fill == "slow" and dur > c.duration * 1.001:
                c = c.with_effects([vfx.MultiplySpeed(final_duration=dur)])
            elif dur > c.duration:
                last = c.to_ImageClip(t=max(0.0, c.duration - 0.05))
                from moviepy import concatenate_videoclips

                c = concatenate_videoclips([c, last.with_duration(dur - c.duration)])
            c = _blur_fit(c, W, H) if it.fit == "blur" else _cover(c, W, H, it.focus)
            if c.audio is not None and it.gain_db:
                c = c.with_audio(c.audio.with_effects([afx.MultiplyVolume(10 ** (it.gain_db / 20))]))
        elif isinstance(it, ImageItem):
            img = ImageClip(it.source).with_duration(dur)
            c = _blur_fit(img, W, H) if it.fit == "blur" else _cover(img, W, H, it.focus)
            if it.motion is not None:
                z0, z1 = it.motion.zoom_from, it.motion.zoom_to
                c = c.with_effects([vfx.Resize(lambda t, z0=z0, z1=z1, d=dur: z0 + (z1 - z0) * t / d)])
                c = c.with_position("center")
                c = CompositeVideoClip([c], size=(W, H)).with_duration(dur)
        else:
            assert isinstance(it, CardItem)
            png = title_card(it.text, tl.brand, size=(W, H), subtitle=it.subtitle, style=it.style,
                             out_dir=work / "cards", background=it.background)
            c = ImageClip(str(png)).with_duration(dur)
        c = c.with_duration(dur).with_start(it.start_ms / 1000)
        if it.transition_in is not None:
            c = c.with_effects([vfx.CrossFadeIn(it.transition_in.duration_ms / 1000)])
        layers.append(c)
    for cap in layout_captions(tl, work / "captions"):
        layers.append(ImageClip(str(cap.path)).with_start(cap.start_ms / 1000)
                      .with_duration((cap.end_ms - cap.start_ms) / 1000).with_position((cap.x, cap.y)))
    total = tl.duration_ms / 1000
    video = CompositeVideoClip(layers, size=(W, H), bg_color=(0, 0, 0)).with_duration(total)
    audio: list[Any] = [layer.audio for layer in layers if getattr(layer, "audio", None) is not None]
    spans = []
    for vo in tl.voiceover:
        a = AudioFileClip(vo.source)
        d = min(a.duration, (vo.duration_ms or 10**9) / 1000, total - vo.start_ms / 1000)
        audio.append(a.subclipped(0, d).with_start(vo.start_ms / 1000))
        spans.append((vo.start_ms / 1000, vo.start_ms / 1000 + d))
    if tl.music:
        m = AudioFileClip(tl.music.source)
        m = m.with_effects([afx.AudioLoop(duration=total), afx.MultiplyVolume(10 ** (tl.music.gain_db / 20))])
        m = m.with_effects([afx.MultiplyVolume(10 ** (tl.music.duck_db / 20), start_time=a, end_time=b)
                            for a, b in spans])
        audio.append(m)
    video = video.with_audio(CompositeAudioClip(audio).with_duration(total)) if audio else video.with_audio(None)
    with atomic.replacing(out) as tmp:  # a killed preview never leaves a half mp4 under the final name
        video.write_videofile(str(tmp), fps=fps, codec="libx264", preset=preset, audio_codec="aac", threads=threads,
                              pixel_format="yuv420p", logger=logger,
                              ffmpeg_params=["-movflags", "+faststart", "-metadata", "comment=cutpilot"])
    video.close()
    for s in opened:
        s.close()
    return out


def preview(tl: Timeline, out: Path, *, settings: Settings, scale: float = 0.33, fps: int = 15) -> Path:
    """A quick low-res look at the cut (third-size frame, 15 fps, ultrafast); not loudness-normalised."""
    small = OutputSpec.preset(tl.output.aspect, fps=fps, scale=scale)
    return composite(tl.model_copy(update={"output": small}), out, settings=settings, preset="ultrafast", fps=fps)
