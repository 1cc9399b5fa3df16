"""The studio's preview path: a one-slot change re-encodes one segment, the file plays (H.264/AAC, faststart) and
lasts as long as the timeline, an unchanged timeline is a cache hit. Real ffmpeg, real media, small frames."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cutpilot.settings import Settings
from cutpilot.timeline import (
    BrandKit,
    Caption,
    ClipItem,
    Crossfade,
    MusicBed,
    OutputSpec,
    Timeline,
    VoiceoverItem,
)
from tools.render import RenderResult, render, render_preview

FIX = Path(__file__).resolve().parent / "fixtures" / "render"
LEGO = str(FIX / "hug_lego_product_shot.mp4")  # 560x320, has audio
CITY = str(FIX / "kivy_city_night_cc0.mpg")  # 720x405, no audio stream
FACE = str(FIX / "pyfeat_woman_face_pexels.mp4")  # 640x360 23.976 fps
VO_EN = str(FIX / "cmu_arctic_a0007.wav")
SPEC = OutputSpec.preset("9:16", scale=0.25)  # 270x480 → preview 136x240


def _streams(p: Path) -> dict[str, Any]:
    r = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(p)],
                       capture_output=True, text=True, check=True)
    data = json.loads(r.stdout)
    return {s["codec_type"]: s for s in data["streams"]} | {"format": data["format"]}


def _check(res: RenderResult, tl: Timeline) -> None:
    s = _streams(res.path)
    v, a = s["video"], s["audio"]
    fps = tl.output.fps
    assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
    assert (int(v["width"]), int(v["height"])) == (136, 240)  # half of each side, even
    assert v["r_frame_rate"] == f"{fps}/1"
    assert a["codec_name"] == "aac"
    vdur, adur = float(v["duration"]), float(a["duration"])
    assert abs(vdur - tl.duration_ms / 1000) <= 1 / fps + 1e-6, (vdur, tl.duration_ms)
    assert abs(adur - vdur) <= 1 / fps + 1e-6, (adur, vdur)
    assert abs(float(s["format"]["duration"]) - tl.duration_ms / 1000) <= 0.05
    head = res.path.read_bytes()[:200_000]
    assert 0 <= head.find(b"moov") < head.find(b"mdat")  # +faststart: the browser can start at once
    assert res.preview and res.duration_s == pytest.approx(tl.duration_ms / 1000, abs=1 / fps)


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("music") / "music.wav"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=f=220:d=6,volume=0.5", "-ac", "2", str(out)], check=True)
    return str(out)


def _timeline(music: str) -> Timeline:
    """Four shots (one crossfade), captions that span a cut, a voiceover, music, a generated shot, an end card."""
    return Timeline(
        output=SPEC,
        video=[
            ClipItem(id="s0", source=LEGO, in_ms=0, out_ms=1000, start_ms=0, duration_ms=1000, slot=0),
            ClipItem(id="s1", source=FACE, in_ms=1000, out_ms=2000, start_ms=1000, duration_ms=1000, slot=1),
            ClipItem(id="s2", source=CITY, in_ms=0, out_ms=1000, start_ms=2000, duration_ms=1000, slot=2,
                     generated=True, generator="test"),
            ClipItem(id="s3", source=LEGO, in_ms=2000, out_ms=3000, start_ms=2700, duration_ms=1000, slot=3,
                     transition_in=Crossfade(duration_ms=300)),
        ],
        voiceover=[VoiceoverItem(id="vo", source=VO_EN, start_ms=200, duration_ms=2500, generated=True)],
        music=MusicBed(source=music, gain_db=-10),
        captions=[Caption(text="across the first cut", start_ms=500, end_ms=1500, lang="en"),
                  Caption(text="the city", start_ms=2000, end_ms=3000, lang="en")],
        brand=BrandKit(name="Acme", end_card_ms=500, end_card_text="Shop now"),
    )


def _swap(tl: Timeline, i: int, **upd: Any) -> Timeline:
    items = list(tl.video)
    items[i] = items[i].model_copy(update=upd)
    return tl.model_copy(update={"video": items})


def test_swap_reencodes_one_segment_and_repeat_is_a_cache_hit(tmp_path: Path, music: str) -> None:
    settings = Settings(home=tmp_path / "home")
    cache = tmp_path / "cache"
    tl = _timeline(music)
    first = render_preview(tl, tmp_path / "p0.mp4", settings=settings, cache_dir=cache)
    # s2+s3 share the crossfade; the end card is its own segment
    assert not first.cached and first.segments_rendered == first.segments_total == 4
    _check(first, tl)
    again = render_preview(tl, tmp_path / "p0b.mp4", settings=settings, cache_dir=cache)
    assert again.cached and again.segments_rendered == 0
    _check(again, tl)

    # slot 1 swapped to another clip: a caption crossing the s0|s1 cut does not widen the change
    swapped = _swap(tl, 1, source=CITY, in_ms=0, out_ms=1000, clip_id="other")
    res = render_preview(swapped, tmp_path / "p1.mp4", settings=settings, cache_dir=cache)
    assert not res.cached and res.segments_rendered == 1 and res.segments_total == 4
    _check(res, swapped)
    hit = render_preview(swapped, tmp_path / "p1b.mp4", settings=settings, cache_dir=cache)
    assert hit.cached and hit.segments_rendered == 0

    # the shot behind the crossfade: its whole (joined) segment, nothing else
    xf = _swap(swapped, 3, source=FACE, in_ms=0, out_ms=1000)
    assert render_preview(xf, tmp_path / "p2.mp4", settings=settings, cache_dir=cache).segments_rendered == 1

    # a generated shot swapped for footage: its label goes with it, still one segment
    real = _swap(swapped, 2, source=FACE, in_ms=3000, out_ms=4000, generated=False, generator=None)
    res = render_preview(real, tmp_path / "p3.mp4", settings=settings, cache_dir=cache)
    assert res.segments_rendered == 1
    _check(res, real)


def test_clip_audio_swap_remixes_audio_once_and_stays_in_sync(tmp_path: Path, music: str) -> None:
    settings = Settings(home=tmp_path / "home")
    cache = tmp_path / "cache"
    tl = _timeline(music)
    render_preview(tl, tmp_path / "p0.mp4", settings=settings, cache_dir=cache)
    voiced = _swap(tl, 0, in_ms=500, out_ms=1500, audio=True)
    res = render_preview(voiced, tmp_path / "p1.mp4", settings=settings, cache_dir=cache)
    assert res.segments_rendered == 1
    assert any(n.startswith("audio-preview-") for n in res.cache_files)  # the one-pass mix, not the final's
    _check(res, voiced)


def test_preview_and_final_share_only_identical_entries(tmp_path: Path, music: str) -> None:
    settings = Settings(home=tmp_path / "home")
    cache = tmp_path / "cache"
    tl = _timeline(music)
    final = render(tl, tmp_path / "ad.mp4", settings=settings, quality="draft", cache_dir=cache)
    prev = render_preview(tl, tmp_path / "p.mp4", settings=settings, cache_dir=cache)
    # other frame size: every segment is its own encode, but the final's finished audio mix is reused as is
    assert prev.segments_rendered == prev.segments_total
    audio = [n for n in final.cache_files if n.startswith("audio-") and n.endswith(".m4a")]
    assert audio and audio[0] in prev.cache_files
    assert not any(n.startswith("audio-preview-") for n in prev.cache_files)
    assert not set(n for n in prev.cache_files if n.startswith("seg-")) & set(final.cache_files)
    _check(prev, tl)
    assert render(tl, tmp_path / "ad2.mp4", settings=settings, quality="draft", cache_dir=cache).cached


def test_an_empty_cache_entry_is_made_again(tmp_path: Path, music: str) -> None:
    """Preview entries are renamed into place without fsync: one a power cut left empty counts as missing."""
    settings = Settings(home=tmp_path / "home")
    cache = tmp_path / "cache"
    tl = _timeline(music)
    first = render_preview(tl, tmp_path / "p0.mp4", settings=settings, cache_dir=cache)
    seg = next(n for n in first.cache_files if n.startswith("seg-"))
    joined = next(n for n in first.cache_files if n.startswith("preview-") and n.endswith(".mp4"))
    (cache / seg).write_bytes(b"")
    (cache / joined).write_bytes(b"")
    res = render_preview(tl, tmp_path / "p1.mp4", settings=settings, cache_dir=cache)
    assert not res.cached and res.segments_rendered == 1
    _check(res, tl)
    (cache / joined).unlink()  # the handed-out file is its own link: it plays on when the cache entry goes
    _check(res, tl)


def test_media_uris_are_resolved_and_keyed_like_plain_paths(tmp_path: Path, music: str) -> None:
    """The studio hands over the planner's timeline as it is: media:// sources play from the media root, and hit
    the segments the same files made as plain paths."""
    root = FIX
    settings = Settings(home=tmp_path / "home", media_root=root)
    cache = tmp_path / "cache"
    tl = _timeline(music)
    plain = render_preview(tl, tmp_path / "p0.mp4", settings=settings, cache_dir=cache)
    items = [v.model_copy(update={"source": "media://" + Path(v.source).name}) if isinstance(v, ClipItem) else v
             for v in tl.video]
    by_ref = tl.model_copy(update={"video": items})
    res = render_preview(by_ref, tmp_path / "p1.mp4", settings=settings, cache_dir=cache)
    assert res.cached and res.segments_rendered == 0 and plain.segments_total == res.segments_total
    _check(res, tl)
