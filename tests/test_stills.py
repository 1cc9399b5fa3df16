"""Photos are library items: a packshot, a sideways phone photo (EXIF orientation) and a scene photo ingest as
still records with the same fields as clips, and search finds them; a broken image fails its own line."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from PIL import Image

from cutpilot.models import ClipFormat, ContentType
from cutpilot.settings import Settings
from index.ingest import ingest
from index.library import Library
from index.search import SearchFilters

FIX = Path(__file__).parent / "fixtures" / "ingest"
WHISPER_DIR = Path(tempfile.gettempdir()) / "cutpilot-test-whisper-base"


def _sideways(path: Path) -> None:
    """A 300x200 landscape picture stored as 200x300 with EXIF orientation 6 (rotate 90° on display)."""
    im = Image.new("RGB", (300, 200), (40, 120, 60))
    for x in range(0, 300, 30):
        im.paste((200, 200, 30), (x, 0, x + 10, 200))
    stored = im.rotate(90, expand=True)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", exif=exif.tobytes())


def _packshot(path: Path) -> None:
    """A product (a striped, detailed box) in the middle of a white studio backdrop."""
    im = Image.new("RGB", (480, 480), (255, 255, 255))
    box = Image.effect_noise((160, 220), 90).convert("RGB")
    for y in range(0, 220, 20):
        box.paste((180, 30, 40), (0, y, 160, y + 8))
    im.paste(box, (160, 130))
    im.save(path, "WEBP", quality=95)


def test_photos_ingest_as_stills_and_search_finds_them(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "home", text_embedder="hash", whisper_model=str(WHISPER_DIR))
    d = tmp_path / "photos"
    d.mkdir()
    shutil.copy(FIX / "opencv_box_product.png", d / "box.png")
    _sideways(d / "phone.jpg")
    _packshot(d / "white.webp")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with Library.open(s, lazy=True) as lib:
        rep = ingest([d], s, lib, product="Bastoncini Cookies", progress=False)
        rows = {Path(r.path).name: r for r in rep.rows}
        assert rows["broken.jpg"].status == "failed" and "not a readable image" in rows["broken.jpg"].message
        assert {n for n, r in rows.items() if r.status == "ok"} == {"box.png", "phone.jpg", "white.webp"}
        recs = {Path(r.source).name: r for r in lib.records()}
        assert set(recs) == {"box.png", "phone.jpg", "white.webp"}
        phone = recs["phone.jpg"]
        assert (phone.width, phone.height) == (300, 200)  # upright: EXIF orientation honoured
        with Image.open(phone.keyframes[0]) as kf:
            assert kf.size[0] > kf.size[1]
        white = recs["white.webp"]
        assert ClipFormat.product_still in white.format and "white-background-photo" in white.tags
        assert all(r.product == "Bastoncini Cookies" and not r.has_audio and r.duration == 3.0 for r in recs.values())
        assert all((r.provenance or {}).get("still") for r in recs.values())
        assert recs["box.png"].content_type in (ContentType.product_intro, ContentType.other)
        hits = lib.search("Bastoncini Cookies", SearchFilters(product="Bastoncini Cookies"), limit=5)
        assert {Path(h.clip.source).name for h in hits} >= {"box.png", "white.webp"}
        again = ingest([d], s, lib, product="Bastoncini Cookies", progress=False)
        assert {Path(r.path).name: r.status for r in again.rows}["box.png"] == "skipped"
        assert lib.count() == 3
