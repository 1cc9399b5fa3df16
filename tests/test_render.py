"""The renderer, checked by probing its output (never by hashing bytes): real + synthetic media, small frames."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cutpilot.cli import main
from cutpilot.errors import RenderError, TimelineError
from cutpilot.settings import Settings
from cutpilot.timeline import (
    BrandKit,
    Caption,
    CardItem,
    ClipItem,
    Crossfade,
    ImageItem,
    KenBurns,
    MusicBed,
    OutputSpec,
    Timeline,
    VoiceoverItem,
)
from tools.captions import safe_box
from tools.render import RenderResult, render

FIX = Path(__file__).resolve().parent / "fixtures" / "render"
LEGO = str(FIX / "hug_lego_product_shot.mp4")  # 560x320, has audio
CITY = str(FIX / "kivy_city_night_cc0.mpg")  # 720x405, no audio stream
FACE = str(FIX / "pyfeat_woman_face_pexels.mp4")  # 640x360 23.976 fps
CUP = str(FIX / "skimage_coffee_cup.png")
VO_EN = str(FIX / "cmu_arctic_a0007.wav")
VO_ZH = str(FIX / "zh_gcin_phrase_voice5.wav")
SPEC = OutputSpec.preset("9:16", scale=0.25)  # 270x480


def _ff(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("synth")
    out = {"tsrc": str(d / "testsrc.mp4"), "music": str(d / "music.wav"), "portrait": str(d / "portrait.mp4")}
    _ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3", "-f", "lavfi", "-i", "sine=f=440:d=3",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", out["tsrc"])
    _ff("-f", "lavfi", "-i", "sine=f=220:d=6,volume=0.5", "-f", "lavfi", "-i", "sine=f=330:d=6,volume=0.5",
        "-filter_complex", "[0][1]amerge=inputs=2", "-ac", "2", out["music"])
    _ff("-f", "lavfi", "-i", "testsrc=s=240x320:r=30:d=2", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", out["portrait"])
    return out


def _settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def _streams(p: Path) -> dict[str, Any]:
    r = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(p)],
                       capture_output=True, text=True, check=True)
    data = json.loads(r.stdout)
    return {s["codec_type"]: s for s in data["streams"]} | {"format": data["format"]}


def _frame(p: Path, t: float) -> np.ndarray:
    r = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{t:.3f}", "-i", str(p), "-frames:v", "1", "-f", "rawvideo",
                        "-pix_fmt", "rgb24", "-"], capture_output=True, check=True)
    s = _streams(p)["video"]
    return np.frombuffer(r.stdout, np.uint8).reshape(int(s["height"]), int(s["width"]), 3).astype(np.int16)


def _loudness(p: Path) -> tuple[float, float]:
    r = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(p), "-filter_complex", "ebur128=peak=true",
                        "-f", "null", "-"], capture_output=True, text=True)
    summary = r.stderr[r.stderr.rfind("Summary:"):]
    i = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    tp = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))  # type: ignore[union-attr]
    return i, tp


def _check_output(res: RenderResult, tl: Timeline) -> dict[str, Any]:
    s = _streams(res.path)
    v, a = s["video"], s["audio"]
    fps = tl.output.fps
    assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
    assert (int(v["width"]), int(v["height"])) == (tl.output.width, tl.output.height)
    assert v["r_frame_rate"] == f"{fps}/1"
    assert a["codec_name"] == "aac"
    vdur, adur = float(v["duration"]), float(a["duration"])
    assert abs(vdur - tl.duration_ms / 1000) <= 1 / fps + 1e-6, (vdur, tl.duration_ms)
    assert abs(adur - vdur) <= 1 / fps + 1e-6, (adur, vdur)  # audio stream as long as the video: A/V in sync
    head = res.path.read_bytes()[:200_000]
    assert 0 <= head.find(b"moov") < max(head.find(b"mdat"), 0) or head.find(b"mdat") < 0  # +faststart
    return s


def _full_timeline(synth: dict[str, str], logo: str | None = None) -> Timeline:
    return Timeline(
        output=SPEC,
        video=[
            ClipItem(id="lego", source=LEGO, in_ms=500, out_ms=1500, start_ms=0, duration_ms=1000, audio=True,
                     gain_db=-6, slot=0, focus=(0.6, 0.5)),
            ClipItem(id="city", source=CITY, in_ms=0, out_ms=1200, start_ms=700, duration_ms=1200, fit="blur",
                     transition_in=Crossfade(duration_ms=300), audio=True, slot=1),
            ImageItem(id="cup", source=CUP, start_ms=1900, duration_ms=900, motion=KenBurns(zoom_to=1.3), slot=2),
            CardItem(id="offer", text="限时优惠 Buy now", subtitle="买一送一", start_ms=2800, duration_ms=700, slot=3),
        ],
        voiceover=[VoiceoverItem(id="vo", source=VO_EN, start_ms=200)],
        music=MusicBed(source=synth["music"], gain_db=-10),
        captions=[Caption(text="新品上市，限时优惠", start_ms=0, end_ms=1500, lang="zh"),
                  Caption(text="New arrivals, limited offer", start_ms=0, end_ms=1500, lang="en")],
        brand=BrandKit(name="Acme", logo=logo, end_card_ms=500, end_card_text="立即购买 Shop now"),
    )


def test_full_render_probe_loudness_cache_and_partial(tmp_path: Path, synth: dict[str, str]) -> None:
    settings = _settings(tmp_path)
    tl = _full_timeline(synth, logo=CUP)
    res = render(tl, tmp_path / "ad.mp4", settings=settings, quality="draft")
    assert not res.cached and res.segments_rendered == res.segments_total == 4  # lego+city share a crossfade
    _check_output(res, tl)
    lufs, tp = _loudness(res.path)
    assert abs(lufs - (-14.0)) <= 1.0, lufs
    assert tp <= -1.0, tp
    # identical timeline + assets → cached result, nothing re-encoded
    again = render(tl, tmp_path / "ad2.mp4", settings=settings, quality="draft")
    assert again.cached and again.segments_rendered == 0
    assert _streams(again.path)["video"]["nb_frames"] == _streams(res.path)["video"]["nb_frames"]
    # a changed slot re-renders only its own segment
    items = list(tl.video)
    items[2] = items[2].model_copy(update={"motion": KenBurns(zoom_from=1.2, zoom_to=1.0)})
    tl2 = tl.model_copy(update={"video": items})
    part = render(tl2, tmp_path / "ad3.mp4", settings=settings, quality="draft")
    assert not part.cached and part.segments_rendered == 1 and part.segments_total == 4
    _check_output(part, tl2)
    # a different quality is a different encode
    assert render(tl, tmp_path / "ad4.mp4", settings=settings, quality="standard").segments_rendered == 4


def test_captions_are_burned_inside_the_safe_zone(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    spec = OutputSpec.preset("9:16", scale=0.25)
    base = Timeline(output=spec, video=[ClipItem(id="c", source=FACE, in_ms=0, out_ms=2000, start_ms=0,
                                                 duration_ms=2000)])
    caps = [Caption(text="新品上市，限时优惠，买一送一", start_ms=0, end_ms=2000, lang="zh"),
            Caption(text="Buy one get one free today", start_ms=0, end_ms=2000, lang="en")]
    with_caps = base.model_copy(update={"captions": caps})
    a = render(base, tmp_path / "plain.mp4", settings=settings, quality="draft").path
    b = render(with_caps, tmp_path / "caps.mp4", settings=settings, quality="draft").path
    diff = np.abs(_frame(b, 1.0) - _frame(a, 1.0)).max(axis=2)
    text = diff > 60
    assert text.sum() > 300, "caption pixels missing"
    ys, xs = np.where(text)
    box = safe_box("9:16", spec.width, spec.height)
    assert xs.min() >= box.x0 - 2 and xs.max() <= box.x1 + 2
    assert ys.min() >= box.y0 - 2 and ys.max() <= box.y1 + 2
    assert ys.max() > spec.height * 0.5  # subtitles sit in the lower half, above the bottom UI


def test_freeze_and_slow_fill_never_loop(tmp_path: Path, synth: dict[str, str]) -> None:
    settings = _settings(tmp_path)
    outs = {}
    for fill in ("freeze", "slow"):
        tl = Timeline(output=OutputSpec.preset("1:1", scale=0.25), video=[
            ClipItem(id="t", source=synth["tsrc"], in_ms=0, out_ms=600, start_ms=0, duration_ms=1800, fill=fill,
                     audio=True)])
        res = render(tl, tmp_path / f"{fill}.mp4", settings=settings, quality="draft")
        _check_output(res, tl)
        outs[fill] = res.path
    f_late = [_frame(outs["freeze"], t) for t in (1.0, 1.4, 1.7)]
    assert all(np.abs(f - f_late[0]).mean() < 2 for f in f_late)  # held last frame
    assert np.abs(_frame(outs["freeze"], 0.1) - f_late[0]).mean() > 5  # it did move before the hold
    s_late = [_frame(outs["slow"], t) for t in (1.0, 1.4, 1.7)]
    assert np.abs(s_late[1] - s_late[0]).mean() > 2 and np.abs(s_late[2] - s_late[1]).mean() > 2  # still moving
    # slow-down, not a loop: the last frame is the source's end (= the frozen frame), not its start
    assert np.abs(s_late[2] - f_late[2]).mean() < np.abs(s_late[2] - _frame(outs["slow"], 0.0)).mean()


def test_blur_fit_and_crop_fit(tmp_path: Path, synth: dict[str, str]) -> None:
    settings = _settings(tmp_path)
    outs = {}
    for fit in ("crop", "blur"):
        tl = Timeline(output=SPEC, video=[ClipItem(id="t", source=synth["tsrc"], in_ms=0, out_ms=1000, start_ms=0,
                                                   duration_ms=1000, fit=fit)])
        outs[fit] = _frame(render(tl, tmp_path / f"{fit}.mp4", settings=settings, quality="draft").path, 0.5)
    blur, crop = outs["blur"], outs["crop"]
    h = blur.shape[0]

    def detail(x: np.ndarray) -> float:
        return float(np.abs(np.diff(x.mean(axis=2), axis=1)).mean())

    top_blur, mid_blur = blur[: h // 5], blur[2 * h // 5: 3 * h // 5]
    assert top_blur.mean() > 10  # blurred picture, not black bars
    assert detail(top_blur) < detail(mid_blur) / 3  # soft background, sharp centre band
    assert detail(crop[: h // 5]) > detail(top_blur) * 2  # crop fills the frame with the sharp picture


def test_ken_burns_still_and_portrait_source_in_landscape(tmp_path: Path, synth: dict[str, str]) -> None:
    settings = _settings(tmp_path)
    tl = Timeline(output=OutputSpec.preset("16:9", scale=0.25), video=[
        ImageItem(id="cup", source=CUP, start_ms=0, duration_ms=1500, motion=KenBurns(zoom_from=1.0, zoom_to=1.6)),
        ClipItem(id="p", source=synth["portrait"], in_ms=0, out_ms=1000, start_ms=1500, duration_ms=1000,
                 fit="blur")])
    res = render(tl, tmp_path / "kb.mp4", settings=settings, quality="draft")
    _check_output(res, tl)
    first, last = _frame(res.path, 0.0), _frame(res.path, 1.4)
    assert first.mean() > 20 and last.mean() > 20
    assert np.abs(first - last).mean() > 5  # the still moves
    # zoom in: the centre of the last frame is an enlarged version, so fewer edges across the frame
    assert np.abs(np.diff(last.mean(axis=2), axis=1)).mean() < np.abs(np.diff(first.mean(axis=2), axis=1)).mean()


@pytest.mark.parametrize("aspect", ["9:16", "1:1", "4:5", "16:9"])
def test_presets_and_silent_sources(tmp_path: Path, aspect: str) -> None:
    """CITY has no audio stream: the render still carries a (silent) AAC track of the right length."""
    tl = Timeline(output=OutputSpec.preset(aspect, scale=0.2), video=[
        ClipItem(id="city", source=CITY, in_ms=1000, out_ms=2000, start_ms=0, duration_ms=1000, audio=True)])
    res = render(tl, tmp_path / "o.mp4", settings=_settings(tmp_path), quality="draft")
    _check_output(res, tl)
    assert res.audio_lufs is None  # nothing to normalise


def test_zh_voiceover_and_card_items(tmp_path: Path) -> None:
    tl = Timeline(output=SPEC, video=[
        CardItem(id="t", text="新品上市", subtitle="New arrivals", start_ms=0, duration_ms=1500),
        CardItem(id="c", text="立即购买", style="cta", start_ms=1500, duration_ms=1500, background=CUP)],
        voiceover=[VoiceoverItem(id="zh", source=VO_ZH, start_ms=0, duration_ms=3000)])
    res = render(tl, tmp_path / "cards.mp4", settings=_settings(tmp_path), quality="draft")
    _check_output(res, tl)
    lufs, _ = _loudness(res.path)
    assert abs(lufs + 14) <= 1.0
    f1 = _frame(res.path, 0.5)
    assert (f1 > 200).all(axis=2).sum() > 200  # white title text on the brand field
    assert np.abs(f1 - _frame(res.path, 2.0)).mean() > 10  # a different card


def test_missing_source_fails_before_ffmpeg(tmp_path: Path) -> None:
    tl = Timeline(output=SPEC, video=[
        CardItem(id="a", text="x", start_ms=0, duration_ms=500),
        ClipItem(id="ghost", source=str(tmp_path / "nope.mp4"), in_ms=0, out_ms=500, start_ms=500, duration_ms=500)])
    settings = _settings(tmp_path)
    with pytest.raises(RenderError) as ei:
        render(tl, tmp_path / "o.mp4", settings=settings, cache_dir=tmp_path / "cache")
    assert ei.value.item_id == "ghost" and "nope.mp4" in ei.value.one_line()
    assert not list((tmp_path / "cache").glob("seg-*"))  # ffmpeg never ran


def test_out_of_source_range_rejected(tmp_path: Path) -> None:
    tl = Timeline(output=SPEC, video=[ClipItem(id="long", source=LEGO, in_ms=4000, out_ms=9000, start_ms=0,
                                               duration_ms=5000)])
    with pytest.raises(TimelineError, match="item long: out_ms 9000 is past the end"):
        render(tl, tmp_path / "o.mp4", settings=_settings(tmp_path))


def test_ffmpeg_failure_names_item_and_carries_stderr(tmp_path: Path) -> None:
    bad_logo = tmp_path / "logo.png"
    bad_logo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    tl = Timeline(output=SPEC, video=[CardItem(id="only", text="x", start_ms=0, duration_ms=500)],
                  brand=BrandKit(logo=str(bad_logo)))
    with pytest.raises(RenderError) as ei:
        render(tl, tmp_path / "o.mp4", settings=_settings(tmp_path), quality="draft")
    assert ei.value.item_id == "only"
    assert ei.value.stderr_tail.strip()
    assert "\n" not in ei.value.one_line()


def test_cli_render_and_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tl = Timeline(output=SPEC, video=[
        ClipItem(id="a", source=LEGO, in_ms=0, out_ms=1000, start_ms=0, duration_ms=1000, audio=True),
        CardItem(id="b", text="立即购买", start_ms=800, duration_ms=700, transition_in=Crossfade(duration_ms=200))],
        captions=[Caption(text="新品", start_ms=0, end_ms=1000)])
    p = tl.save(tmp_path / "t.json")
    out = tmp_path / "cli.mp4"
    assert main(["render", str(p), "--out", str(out), "--quality", "draft"]) == 0
    s = _streams(out)
    assert abs(float(s["video"]["duration"]) - 1.5) <= 1 / 30
    assert main(["render", str(p), "--out", str(out), "--quality", "ultra"]) == 2
    err = capsys.readouterr().err
    assert "--quality" in err and "draft, standard, high" in err
    ghost = tl.model_copy(update={"video": [tl.video[0].model_copy(update={"source": str(tmp_path / "gone.mp4")}),
                                            tl.video[1]]})
    assert main(["render", str(ghost.save(tmp_path / "g.json")), "--out", str(out)]) == 7
    err = capsys.readouterr().err
    assert "[item a]" in err and "gone.mp4" in err and len(err.strip().splitlines()) == 1
    prev = tmp_path / "prev.mp4"
    assert main(["render", str(p), "--out", str(prev), "--preview"]) == 0  # moviepy low-res preview
    sp = _streams(prev)
    assert int(sp["video"]["width"]) < 400 and abs(float(sp["format"]["duration"]) - 1.5) < 0.15


def test_still_placed_as_clip_item_renders_as_held_frame(tmp_path: Path) -> None:
    """Planners sometimes put a product photo in a ClipItem; render it as a still instead of failing."""
    tl = Timeline(output=SPEC, video=[ClipItem(id="photo", source=CUP, in_ms=0, out_ms=1000, start_ms=0,
                                               duration_ms=1000, audio=True)])
    res = render(tl, tmp_path / "still.mp4", settings=_settings(tmp_path), quality="draft")
    _check_output(res, tl)
    a, b = _frame(res.path, 0.1), _frame(res.path, 0.9)
    assert a.mean() > 20 and np.abs(a - b).mean() < 2


def test_relative_home_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CUTPILOT_HOME defaults to a relative path; the concat list must still find its segments."""
    monkeypatch.chdir(tmp_path)
    tl = Timeline(output=OutputSpec.preset("9:16", scale=0.2), video=[
        ClipItem(id="a", source=LEGO, in_ms=0, out_ms=1000, start_ms=0, duration_ms=1000, audio=True),
        CardItem(id="b", text="限时优惠", start_ms=1000, duration_ms=1000)])
    res = render(tl, Path("o.mp4"), settings=Settings(home=Path("rel-home")), quality="draft")
    _check_output(res, tl)
