"""The Timeline IR contract: validation with one-line messages, JSON / OTIO round trips, SRT export, CLI export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cutpilot.cli import main
from cutpilot.errors import TimelineError
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
    build_timeline,
)


def _tl(**over: object) -> Timeline:
    data: dict = {
        "output": OutputSpec.preset("9:16", scale=0.25).model_dump(),
        "video": [
            {"kind": "clip", "id": "a", "source": "a.mp4", "in_ms": 0, "out_ms": 1000, "start_ms": 0,
             "duration_ms": 1000, "slot": 0, "audio": True, "gain_db": -3},
            {"kind": "image", "id": "b", "source": "b.png", "start_ms": 800, "duration_ms": 1200,
             "transition_in": {"duration_ms": 200}, "motion": {"zoom_to": 1.3}, "slot": 1},
            {"kind": "card", "id": "c", "text": "限时优惠 Buy now", "start_ms": 2000, "duration_ms": 1000,
             "style": "cta"},
        ],
        "voiceover": [{"id": "vo", "source": "vo.wav", "start_ms": 100, "text": "hello"}],
        "music": {"source": "m.wav", "mood": "upbeat"},
        "captions": [
            {"text": "新品上市", "start_ms": 0, "end_ms": 1500, "lang": "zh"},
            {"text": "New arrivals", "start_ms": 0, "end_ms": 1500, "lang": "en",
             "words": [{"text": "New", "start_ms": 0, "end_ms": 600}]},
        ],
        "brand": {"name": "Acme", "end_card_ms": 500},
    }
    data.update(over)
    return build_timeline(**data)


def test_json_round_trip_is_exact(tmp_path: Path) -> None:
    tl = _tl()
    assert tl.duration_ms == 3500 and tl.content_ms == 3000
    again = Timeline.from_json(tl.to_json())
    assert again == tl
    p = tl.save(tmp_path / "t.json")
    assert Timeline.load(p) == tl
    assert isinstance(again.video[1], ImageItem) and again.video[1].motion == KenBurns(zoom_to=1.3)
    assert isinstance(again.video[2], CardItem)


def test_otio_round_trip(tmp_path: Path) -> None:
    import opentimelineio as otio

    tl = _tl()
    p = tl.write_otio(tmp_path / "t.otio")
    back = otio.adapters.read_from_file(str(p))
    vtrack = next(t for t in back.tracks if t.name == "video")
    clips = list(vtrack.find_clips())
    assert [c.name for c in clips] == ["a", "b", "c"]
    assert clips[0].source_range.duration.to_seconds() == pytest.approx(1.0)
    assert clips[0].media_reference.target_url.endswith("a.mp4")
    # every item's full IR travels in metadata, so the timeline can be rebuilt from the OTIO file
    items = [dict(c.metadata["cutpilot"]) for c in clips]
    rebuilt = build_timeline(output=tl.output.model_dump(), video=items)
    assert rebuilt.video == tl.video
    assert {m.name for m in vtrack.markers} == {"新品上市", "New arrivals"}
    assert {t.name for t in back.tracks} >= {"voiceover", "music"}


def test_srt_export() -> None:
    srt = _tl().to_srt()
    assert "00:00:00,000 --> 00:00:01,500" in srt
    assert "新品上市" in srt and "New arrivals" in srt
    assert srt.count("-->") == 2


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"video": [{"kind": "clip", "id": "a", "source": "a.mp4", "in_ms": 0, "out_ms": 1000, "start_ms": 0,
                     "duration_ms": 0}]}, "greater than 0"),
        ({"video": [{"kind": "clip", "id": "a", "source": "a.mp4", "in_ms": 500, "out_ms": 500, "start_ms": 0,
                     "duration_ms": 500}]}, "must be after in_ms"),
        ({"video": [{"kind": "clip", "id": "a", "source": "a.mp4", "in_ms": 0, "out_ms": 3000, "start_ms": 0,
                     "duration_ms": 3000, "source_duration_ms": 2000}]}, "past the end of the source"),
        ({"video": [{"kind": "card", "id": "a", "text": "x", "start_ms": 0, "duration_ms": 1000},
                    {"kind": "card", "id": "b", "text": "y", "start_ms": 1500, "duration_ms": 1000}]}, "gap of 500 ms"),
        ({"video": [{"kind": "card", "id": "a", "text": "x", "start_ms": 0, "duration_ms": 1000},
                    {"kind": "card", "id": "b", "text": "y", "start_ms": 600, "duration_ms": 1000}]}, "overlapping a"),
        ({"video": [{"kind": "card", "id": "a", "text": "x", "start_ms": 200, "duration_ms": 1000}]}, "start at 0"),
        ({"video": [{"kind": "card", "id": "a", "text": "x", "start_ms": 0, "duration_ms": 1000},
                    {"kind": "card", "id": "b", "text": "y", "start_ms": 0, "duration_ms": 1000,
                     "transition_in": {"duration_ms": 1000}}]}, "crossfade longer"),
        ({"captions": [{"text": "late", "start_ms": 0, "end_ms": 9000}]}, "after the timeline"),
        ({"captions": [{"text": "neg", "start_ms": 500, "end_ms": 500}]}, "end_ms must be after"),
        ({"video": [{"kind": "clip", "id": "a", "source": "a.mp4", "in_ms": 0, "out_ms": 2000, "start_ms": 0,
                     "duration_ms": 1000}]}, "longer than its slot"),
        ({"video": []}, "at least 1"),
    ],
)
def test_invalid_timelines_rejected_with_one_line(change: dict, needle: str) -> None:
    with pytest.raises(TimelineError) as ei:
        _tl(**change)
    msg = ei.value.one_line()
    assert "\n" not in msg and needle in msg, msg


def test_gaps_allowed_when_asked() -> None:
    tl = _tl(allow_gaps=True, video=[
        {"kind": "card", "id": "a", "text": "x", "start_ms": 0, "duration_ms": 1000},
        {"kind": "card", "id": "b", "text": "y", "start_ms": 1500, "duration_ms": 1000}], captions=[])
    assert tl.content_ms == 2500


def test_from_json_reports_bad_json_in_one_line() -> None:
    with pytest.raises(TimelineError, match="not valid JSON"):
        Timeline.from_json("{nope")
    with pytest.raises(TimelineError, match=r"output\.fps"):
        Timeline.from_json(json.dumps({"output": {"fps": 0}, "video": [{"kind": "card", "id": "a", "text": "x",
                                                                         "start_ms": 0, "duration_ms": 10}]}))


def test_typed_construction_matches_json() -> None:
    tl = Timeline(
        output=OutputSpec.preset("1:1", scale=0.5),
        video=[ClipItem(id="a", source="a.mp4", in_ms=0, out_ms=500, start_ms=0, duration_ms=900, fill="slow"),
               CardItem(id="b", text="t", start_ms=700, duration_ms=500, transition_in=Crossfade(duration_ms=200))],
        voiceover=[VoiceoverItem(id="v", source="v.wav", start_ms=0)], music=MusicBed(source="m.wav"),
        captions=[Caption(text="x", start_ms=0, end_ms=100)], brand=BrandKit(end_card_ms=300))
    assert (tl.output.width, tl.output.height) == (540, 540)
    assert tl.duration_ms == 1500
    assert Timeline.from_json(tl.to_json()) == tl


def test_cli_export_and_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _tl().save(tmp_path / "t.json")
    assert main(["timeline", "export", str(p), "--otio", str(tmp_path / "x.otio"), "--srt",
                 str(tmp_path / "x.srt")]) == 0
    assert (tmp_path / "x.otio").stat().st_size > 0
    assert "新品上市" in (tmp_path / "x.srt").read_text(encoding="utf-8")
    assert main(["timeline", "validate", str(p)]) == 0
    assert "3.50 s" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"video": [{"kind": "card", "id": "a", "text": "x", "start_ms": 0,
                                          "duration_ms": -5}]}))
    assert main(["timeline", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "TimelineError" in err and "duration_ms" in err
