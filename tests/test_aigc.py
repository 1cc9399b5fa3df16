"""AI-content labels (GB 45438-2025): the burned-in label on generated shots only, the AIGC metadata on the mp4.

Real ffmpeg renders, checked by probing and by comparing decoded frames of a labelled and an unlabelled render.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cutpilot.errors import TimelineError
from cutpilot.settings import Settings
from cutpilot.timeline import AigcLabel, OutputSpec, Timeline, build_timeline
from tools.captions import aigc_windows, layout_aigc, safe_box
from tools.render import aigc_metadata, read_aigc, render

FIX = Path(__file__).resolve().parent / "fixtures" / "render"
CUP = str(FIX / "skimage_coffee_cup.png")
VO_EN = str(FIX / "cmu_arctic_a0007.wav")
SPEC = OutputSpec.preset("9:16", scale=0.25)  # 270x480
FIELDS = {"Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator", "PropagateID",
          "ReservedCode2"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    p = tmp_path_factory.mktemp("aigc") / "real.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=s=320x240:r=30:d=2", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(p)], check=True)
    return str(p)


CUT_MS = 1517  # not on a frame boundary at 30 fps: the generated shot is frames 0..45, the real one 46..89
CUT_FRAME = 46


def _tl(clip: str, *, generated: bool = True, **extra: Any) -> Timeline:
    return build_timeline(output=SPEC.model_dump(), video=[
        {"kind": "image", "id": "gen", "start_ms": 0, "duration_ms": CUT_MS, "source": CUP, "motion": None,
         "generated": generated, "generator": "background_swap"},
        {"kind": "clip", "id": "real", "start_ms": CUT_MS, "duration_ms": 3000 - CUT_MS, "source": clip, "in_ms": 0,
         "out_ms": 3000 - CUT_MS},
    ], **extra)


def _frames(p: Path) -> np.ndarray:
    r = subprocess.run(["ffmpeg", "-v", "error", "-i", str(p), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                       capture_output=True, check=True)
    return np.frombuffer(r.stdout, np.uint8).reshape(-1, SPEC.height, SPEC.width, 3).astype(np.int16)


def _tags(p: Path) -> dict[str, str]:
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(p)],
                       capture_output=True, text=True, check=True)
    return dict(json.loads(r.stdout).get("format", {}).get("tags", {}))


def test_label_only_on_the_generated_shot_and_metadata(clip: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    cache = tmp_path / "cache"
    labelled = render(_tl(clip), tmp_path / "gen.mp4", settings=settings, quality="draft", cache_dir=cache)
    plain = render(_tl(clip, generated=False), tmp_path / "plain.mp4", settings=settings, quality="draft",
                   cache_dir=cache)
    # the real shot's segment is shared: only the generated shot is re-encoded without its label
    assert plain.segments_rendered == 1 and plain.segments_total == 2
    assert labelled.aigc is not None and plain.aigc is None
    (span,) = labelled.aigc["spans"]
    assert (span["text"], span["start_ms"], span["end_ms"]) == ("AI生成", 0, CUT_MS)
    assert [s["id"] for s in labelled.aigc["shots"]] == ["gen"]
    x, y, w, h = span["box"]
    box = safe_box("9:16", SPEC.width, SPEC.height)
    assert box.x0 <= x and x + w <= box.x1 // 2 and y >= round(SPEC.height * 0.12) and y + h < SPEC.height * 0.25
    fa, fb = _frames(labelled.path), _frames(plain.path)
    assert len(fa) == len(fb) == 90
    for i in range(CUT_FRAME):  # every frame of the generated shot, first and last included
        a, b = fa[i], fb[i]
        inside = np.abs(a[y:y + h, x:x + w] - b[y:y + h, x:x + w]).mean()
        assert inside > 8, f"no label on frame {i}"
        below = np.abs(a[y + h + 8:, :] - b[y + h + 8:, :]).mean()
        assert below < 1.5, f"the label leaked outside its box on frame {i}"
    for i in range(CUT_FRAME, 90):  # the real shot: identical pixels, label box included
        assert np.array_equal(fa[i], fb[i]), f"real shot differs on frame {i}"

    meta = read_aigc(labelled.path)
    assert meta is not None and set(meta) == FIELDS
    assert meta["Label"] == "1" and meta["ContentProducer"] == "cutpilot" and len(meta["ProduceID"]) >= 16
    assert meta == labelled.aigc["metadata"]
    assert _tags(labelled.path).get("comment") == "cutpilot"  # still recognised as a cutpilot render
    assert read_aigc(plain.path) is None and "AIGC" not in _tags(plain.path)

    again = render(_tl(clip), tmp_path / "again.mp4", settings=settings, quality="draft", cache_dir=cache)
    assert again.cached and read_aigc(again.path) == meta  # the cached final keeps its metadata and ID


def test_nothing_generated_has_no_label(clip: str) -> None:
    tl = _tl(clip, generated=False)
    assert not tl.has_aigc and aigc_windows(tl) == [] and aigc_metadata(tl, "x") is None


def test_visible_false_needs_a_route(clip: str) -> None:
    with pytest.raises(TimelineError) as e:
        _tl(clip, aigc_label={"visible": False})
    msg = str(e.value)
    assert "\n" not in msg and "aigc_label.route" in msg
    tl = _tl(clip, aigc_label={"visible": False, "route": "platform AIGC declaration on upload"})
    assert aigc_windows(tl) == []  # not burned in, yet still labelled in the metadata
    assert aigc_metadata(tl, "id") is not None
    with pytest.raises(TimelineError, match="route"):
        Timeline.from_json(json.dumps({"video": [{"kind": "card", "id": "c", "start_ms": 0, "duration_ms": 1000,
                                                  "text": "x"}], "aigc_label": {"voice_notice_ms": 0}}))


def test_zh_and_en_text(clip: str, tmp_path: Path) -> None:
    assert AigcLabel().label_text == "AI生成" and AigcLabel(lang="en").label_text == "AI-generated"
    assert AigcLabel(lang="en").voice_label_text == "AI voice" and AigcLabel(text="AI合成").label_text == "AI合成"
    zh = layout_aigc(_tl(clip), tmp_path / "zh")
    en = layout_aigc(_tl(clip, aigc_label={"lang": "en"}), tmp_path / "en")
    assert [c.text for c in zh] == ["AI生成"] and [c.text for c in en] == ["AI-generated"]
    assert en[0].w > zh[0].w and zh[0].path.is_file() and zh[0].path != en[0].path


def test_tts_voice_gets_a_short_start_notice_not_a_shot_label(clip: str) -> None:
    vo = [{"id": "vo", "source": VO_EN, "start_ms": 0, "generated": True, "generator": "piper"}]
    real = build_timeline(output=SPEC.model_dump(), voiceover=vo, video=[
        {"kind": "clip", "id": "real", "start_ms": 0, "duration_ms": 3000, "source": clip, "in_ms": 0,
         "out_ms": 2000}])
    assert aigc_windows(real) == [(0, 2000, "AI配音")]
    assert aigc_metadata(real, "id") is not None
    mixed = _tl(clip, voiceover=vo)  # the generated shot's label already covers its own span
    assert aigc_windows(mixed) == [(0, CUT_MS, "AI生成"), (CUT_MS, 2000, "AI配音")]


def test_label_starts_on_the_first_frame_of_a_later_shot(clip: str, tmp_path: Path) -> None:
    """1483 ms rounds to frame 44 (1.4667 s): a label timed in ms would miss the shot's first frame."""
    def tl(generated: bool) -> Timeline:
        return build_timeline(output=SPEC.model_dump(), video=[
            {"kind": "clip", "id": "real", "start_ms": 0, "duration_ms": 1483, "source": clip, "in_ms": 0,
             "out_ms": 1483},
            {"kind": "image", "id": "gen", "start_ms": 1483, "duration_ms": 1517, "source": CUP, "motion": None,
             "generated": generated}])

    settings, cache = Settings(home=tmp_path / "home"), tmp_path / "cache"
    a = render(tl(True), tmp_path / "a.mp4", settings=settings, quality="draft", cache_dir=cache)
    b = render(tl(False), tmp_path / "b.mp4", settings=settings, quality="draft", cache_dir=cache)
    assert a.aigc is not None
    x, y, w, h = a.aigc["spans"][0]["box"]
    fa, fb = _frames(a.path), _frames(b.path)
    assert np.array_equal(fa[43], fb[43])
    for i in (44, 89):
        assert np.abs(fa[i, y:y + h, x:x + w] - fb[i, y:y + h, x:x + w]).mean() > 8, f"no label on frame {i}"
