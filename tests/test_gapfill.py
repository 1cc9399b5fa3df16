"""The gap policy (agent.gapfill) on real parts: u2netp cut-outs, offline backdrops, Ken Burns through ffmpeg, the
real Library and renderer; try-on, scene and image-to-video providers are local HTTP servers (real sockets)."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from agent_fakes import MemorySource
from agent_helpers import NoVoiceTools
from PIL import Image

from agent import gapfill
from agent.gapfill import GENERATION_CALLS, Photo, Wardrobe
from agent.mediatools import ModelIn
from agent.run import make_ad
from agent.runrecord import RunRecord
from cutpilot.media import probe
from cutpilot.models import ClipRecord, clip_id_for, file_hash
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief, Slot, SlotRole, Storyboard
from cutpilot.timeline import CardItem, ClipItem, KenBurns
from tests.http_servers import Reply, TestServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PACKSHOT = FIXTURES / "ingest" / "opencv_box_product.png"
COOKIES = "Bastoncini Cookies"
BRIEF = "10 second ad for Bastoncini Cookies, 9:16"


def still_record(path: Path, product: str, description: str) -> ClipRecord:
    """A product photo in the library, as evals/golden.py stores a `kind: still` clip."""
    h = file_hash(path)
    return ClipRecord.model_validate(dict(
        clip_id=clip_id_for(h, 0.0, 3.0), source=str(path.resolve()), source_hash=h, start=0.0, end=3.0,
        language="en", transcript="", description=description, content_type="product intro",
        format="product still", product=product, tags=["packshot"], label_source="human", keyframes=[str(path)]))


def generation_calls(calls: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in calls.items() if k in GENERATION_CALLS and v}


def frame(path: Path, at_s: float) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{at_s:.2f}", "-i", str(path), "-frames:v", "1",
                          "-vf", "scale=108:192", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(192, 108, 3).astype(np.float32)


# --- pure decisions ------------------------------------------------------------------------------------------
def test_each_slot_gets_its_own_scene_backdrop_and_move() -> None:
    photo = Photo("p1", PACKSHOT, COOKIES, "cookie box")
    scenes = gapfill.scenes_for(COOKIES, [photo], None)
    assert scenes[0] == "product:food"
    kinds = gapfill.backdrop_kinds(True, True)
    slots = [Slot(index=i, role=SlotRole.product_intro, target_s=3.0) for i in range(4)]
    plans = [gapfill.plan_shot(s, [photo], scenes, kinds, s.index) for s in slots]
    looks = {(p.scene, p.backdrop, p.motion_name) for p in plans}
    assert len(looks) == 4  # two slots never look the same
    assert all(a.motion_name != b.motion_name for a, b in itertools.pairwise(plans))
    garment = Wardrobe(garment={"top_category": "风衣", "top_length": "长款"}, models=[])
    src, prompts = gapfill.scenes_for("trench", [photo], garment)
    assert src == "womenswear:casual" and "café" in prompts[0]
    assert gapfill.scenes_for("x", [photo], Wardrobe(garment={"style": "通勤"}, models=[]))[0] \
        == "womenswear:formal_business"
    assert gapfill.shot_seconds(2.4) == 3.0 and gapfill.shot_seconds(3.0) == 3.0 and gapfill.shot_seconds(0.5) == 2


# --- photo only → an ad of moving generated shots, reused by the next variant ------------------------------
@pytest.mark.slow
def test_photo_only_product_ad_is_all_generated_motion_and_the_next_variant_reuses_it(tmp_path: Path) -> None:
    from index.library import Library

    s = Settings(home=tmp_path / "home", text_embedder="hash")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = Library.open(s)
    photo = still_record(PACKSHOT, COOKIES, "Front of a Bastoncini cookie box, packshot on a plain background")
    lib.add([photo])
    try:
        tools = NoVoiceTools(s)
        r = make_ad(BRIEF, settings=s, library=lib, out_dir=tmp_path / "v1", quality="draft", tools=tools)
        first = generation_calls(tools.calls)
        tools2 = NoVoiceTools(s)
        r2 = make_ad(BRIEF, settings=s, library=lib, out_dir=tmp_path / "v2", quality="draft", tools=tools2)
        generated = [c for c in lib.records() if c.generated]
    finally:
        lib.close()
    tl = r.timeline
    assert not [v for v in tl.video if isinstance(v, CardItem)], "a card although the product has a photo"
    shots = [v for v in tl.video if isinstance(v, ClipItem)]
    assert shots and all(v.generated and v.generator for v in shots) and len(tl.video) == len(shots)
    assert len({v.source for v in shots}) == len(shots)  # a different shot per slot
    assert first["cutout"] == 1 and first["register_clip"] == len(shots)
    assert first.get("ken_burns", 0) + first.get("parallax", 0) == len(shots) and first.get("parallax")
    # the storyboard says where each shot came from; run.json lists each
    for slot in r.storyboard.slots:
        assert slot.asset is not None and slot.asset.kind == "image_video"
        prov = slot.asset.params["provenance"]
        assert prov["inputs"]["photo_clip_id"] == photo.clip_id
        assert [c["step"] for c in prov["chain"]] == ["cutout", "scene", "motion"] and prov["scene"]
    run = json.loads((tmp_path / "v1" / "run.json").read_text())
    made = [g for g in run["generated"] if g["kind"] == "image_video"]
    assert len(made) == len(shots) and all(g["clip_id"] and not g["reused"] for g in made)
    # written back to the library as generated clips with the whole chain
    assert {c.clip_id for c in generated} == {g["clip_id"] for g in made}
    assert all(c.provenance and c.provenance["tool"] == "gapfill" and c.provenance["chain"] for c in generated)
    # rendered: ffprobe and frames (the product in a scene, not on white; slots differ)
    assert r.ad is not None
    p = probe(r.ad)
    assert p.has_video and (p.width, p.height) == (1080, 1920) and abs(p.duration - 10) <= 0.5
    frames = [frame(r.ad, (v.start_ms + v.duration_ms / 2) / 1000) for v in shots]
    for f in frames:
        assert f.std() > 20 and f.mean() < 235, "looks like a blank or white frame"
    assert all(np.abs(a - b).mean() > 6 for i, a in enumerate(frames) for b in frames[i + 1:])
    # the second variant of the same brief pays no generation
    assert generation_calls(tools2.calls) == {}, tools2.calls
    assert all(v.generated for v in r2.timeline.video if isinstance(v, ClipItem))
    assert not [v for v in r2.timeline.video if isinstance(v, CardItem)]
    assert {v.source for v in r2.timeline.video if isinstance(v, ClipItem)} <= {v.source for v in shots}


# --- garments: try-on with the model the rules rank first, and every provider failure falls back ------------
class _Store:
    def __init__(self) -> None:
        self.records: list[ClipRecord] = []

    def add(self, records: list[ClipRecord]) -> None:
        self.records.extend(records)


class _Source(MemorySource):
    def __init__(self, records: list[ClipRecord]) -> None:
        super().__init__(records)
        self.library = _Store()


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (240, 360)) -> bytes:
    im = Image.new("RGB", size, colour)
    im.paste((250, 250, 250), (60, 60, 180, 330))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def wardrobe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Wardrobe, dict[str, bytes]]:
    d = tmp_path_factory.mktemp("wardrobe")
    images = {"m-tee": _png((200, 40, 40)), "m-coat": _png((40, 160, 60)), "m-dress": _png((40, 60, 200))}
    for k, b in images.items():
        (d / f"{k}.png").write_bytes(b)
    models = [  # the long loose coat should go on the model already wearing a long loose coat
        ModelIn(id="m-tee", image=str(d / "m-tee.png"), wearing={"top_category": "t_shirt", "top_length": "cropped",
                                                                  "top_fit": "slim", "sleeves": "short"}),
        ModelIn(id="m-coat", image=str(d / "m-coat.png"), wearing={"top_category": "coat", "top_length": "long",
                                                                    "top_fit": "loose", "sleeves": "long"}),
        ModelIn(id="m-dress", image=str(d / "m-dress.png"), wearing={"top_category": "dress"}),
    ]
    w = Wardrobe(garment={"top_category": "trench", "top_length": "long", "top_fit": "oversized", "sleeves": "long"},
                 models=models)
    return d, w, images


def _board(product: str) -> Storyboard:
    brief = Brief(text=f"ad for {product}", product=product, duration_s=4.0, aspect="1:1", lang="en")
    return Storyboard(brief=brief, slots=[
        Slot(index=0, role=SlotRole.hook, target_s=2.0, product=product),
        Slot(index=1, role=SlotRole.offer_cta, target_s=2.0, product=product)])


def _fill(settings: Settings, source: _Source, w: Wardrobe) -> tuple[Storyboard, RunRecord, dict[str, int]]:
    from agent.toolbox import Toolbox

    tools = Toolbox(settings)
    run = RunRecord(thread_id="garment")
    sb = gapfill.fill(_board("Trench Coat"), run, tools=tools, source=source, settings=settings, min_score=0.3,
                      wardrobe=w)
    return sb, run, tools.calls


def _tryon_reply(req: Any) -> Reply:
    return Reply(200, PACKSHOT.read_bytes(), content_type="image/png")


@pytest.mark.slow
def test_garment_is_tried_on_the_model_ranked_first(tmp_path: Path, wardrobe: Any) -> None:
    _, w, images = wardrobe
    source = _Source([still_record(PACKSHOT, "Trench Coat", "a trench coat, packshot on white")])
    with TestServer({"POST /tryon": _tryon_reply}) as srv:
        s = Settings(home=tmp_path / "home", tryon_url=srv.url, provider_timeout_s=5)
        sb, run, calls = _fill(s, source, w)
        assert srv.count("POST", "/tryon") == 1  # one try-on per run, shared by the model shots
        body = srv.requests[0].body
    assert images["m-coat"] in body and images["m-tee"] not in body and images["m-dress"] not in body
    assert PACKSHOT.read_bytes() in body  # the garment is the product's own photo
    hook, cta = sb.slots
    assert hook.asset is not None and cta.asset is not None
    prov = hook.asset.params["provenance"]
    assert prov["try_on"]["model"] == "m-coat" and prov["try_on"]["ranked"][0][0] == "m-coat"
    assert [c["step"] for c in prov["chain"]] == ["try_on", "cutout", "scene", "motion"]
    assert prov["scene_source"].startswith("womenswear:")
    assert "try_on" not in cta.asset.params["provenance"]  # shots alternate: model, then the garment itself
    assert len(source.library.records) == 2 and all(r.generated for r in source.library.records)
    assert not run.fallbacks and calls["try_on"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["timeout", "400", "503", "bad payload"])
def test_try_on_failures_fall_back_to_the_product_photo(tmp_path_factory: pytest.TempPathFactory, wardrobe: Any,
                                                         failure: str) -> None:
    _, w, _ = wardrobe
    home = tmp_path_factory.getbasetemp() / "tryon-fallback-home"  # shared: the photo shots are made once
    reply = {"timeout": Reply(200, b"late", delay_s=1.5), "400": Reply(400, {"error": "bad garment"}),
             "503": Reply(503, "busy"), "bad payload": Reply(200, b"\x89PNG not really", content_type="image/png")}
    source = _Source([still_record(PACKSHOT, "Trench Coat", "a trench coat, packshot on white")])
    with TestServer({"POST /tryon": reply[failure]}) as srv:
        s = Settings(home=home, tryon_url=srv.url, provider_timeout_s=0.4)
        sb, run, calls = _fill(s, source, w)
        tried = srv.count("POST", "/tryon")
    assert tried >= 1 and calls["try_on"] == 1
    assert any("try-on with model m-coat failed" in x for x in run.warnings), run.warnings
    assert [f.step for f in run.fallbacks] == ["try_on"]
    for slot in sb.slots:  # down the policy: the product photo in a scene, moving — never a card
        assert slot.asset is not None and slot.asset.kind == "image_video"
        assert "try_on" not in slot.asset.params["provenance"]
        assert Path(slot.asset.path).is_file()


@pytest.mark.slow
def test_scene_and_motion_providers_fail_down_to_offline(tmp_path: Path) -> None:
    source = _Source([still_record(PACKSHOT, COOKIES, "cookie box packshot")])
    routes = {"POST /generate": Reply(500, "scene model down"), "POST /jobs": Reply(200, {"unexpected": True})}
    with TestServer(routes) as srv:
        s = Settings(home=tmp_path / "home", scene_gen_url=srv.url, image_to_video_url=srv.url,
                     provider_timeout_s=2)
        from agent.toolbox import Toolbox

        run = RunRecord(thread_id="cookies")
        tools = Toolbox(s)
        sb = gapfill.fill(_board(COOKIES), run, tools=tools, source=source, settings=s, min_score=0.3)
        assert srv.count("POST", "/generate") >= 1 and srv.count("POST", "/jobs") >= 1
    steps = {f.step for f in run.fallbacks}
    assert steps == {"scene", "image_to_video"}, run.fallbacks
    for slot in sb.slots:
        assert slot.asset is not None
        chain = slot.asset.params["provenance"]["chain"]
        assert chain[1]["tool"] == "backdrop+replace_background" and chain[2]["tool"] in ("ken_burns", "parallax")
        assert probe(Path(slot.asset.path)).has_video


def test_parallax_moves_the_product_further_than_its_scene() -> None:
    from tools.image_video import parallax_frames

    w, h = 96, 160
    xs = np.arange(int(w * 1.2))
    scene = np.zeros((int(h * 1.2), len(xs), 3), np.uint8)
    scene[:, xs % 24 < 12] = 200  # stripes: the scene's shift is measurable
    layer = np.zeros((h, w, 4), np.uint8)
    layer[60:100, 38:58] = (255, 0, 0, 255)  # the product: an opaque red block
    pan = KenBurns(zoom_from=1.15, zoom_to=1.15, center_from=(0.4, 0.5), center_to=(0.6, 0.5))
    f0, *_, f1 = list(parallax_frames(scene, layer, (w, h), 12, pan, depth=0.4))

    def product_x(f: np.ndarray) -> float:
        return float(np.nonzero((f[:, :, 2] > 200) & (f[:, :, 1] < 50))[1].mean())  # BGR: red in channel 2

    def scene_shift(a: np.ndarray, b: np.ndarray) -> int:
        ra, rb = a[5, :, 0].astype(float), b[5, :, 0].astype(float)
        return min(range(-20, 21), key=lambda d: float(np.abs(np.roll(ra, d) - rb).mean()))

    moved = abs(product_x(f1) - product_x(f0))
    assert moved > 8 and moved > 1.5 * abs(scene_shift(f0, f1))


# --- claims in the pictures themselves -----------------------------------------------------------------------
def _claim_photo(path: Path, text: str) -> Path:
    from PIL import ImageDraw, ImageFont

    im = Image.new("RGB", (720, 960), (250, 250, 250))
    d = ImageDraw.Draw(im)
    d.rectangle((180, 200, 540, 620), fill=(200, 60, 40))
    font = ImageFont.truetype("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 84, index=2)
    d.text((70, 700), text, fill=(10, 10, 10), font=font)
    im.save(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("strict", [False, True])
def test_a_photo_whose_printed_words_make_a_forbidden_claim_never_reaches_the_ad(tmp_path: Path,
                                                                                 strict: bool) -> None:
    """The OCR of every picture that would go on screen is checked like a line: '全网第一' printed on the
    packaging is not shown (a card instead), is on record, and fails a strict run."""
    from agent.claims import ClaimsError
    from agent.toolbox import Toolbox

    if not __import__("shutil").which("tesseract"):
        pytest.skip("tesseract is not installed")
    bad = _claim_photo(tmp_path / "bad.png", "全网第一 100%有效")
    source = _Source([still_record(bad, COOKIES, "cookie box packshot")])
    s = Settings(home=tmp_path / "home")
    run = RunRecord(thread_id="claims", strict_claims=strict)
    board = _board(COOKIES)
    if strict:
        with pytest.raises(ClaimsError, match="on-screen text claims"):
            gapfill.fill(board, run, tools=Toolbox(s), source=source, settings=s, min_score=0.3)
        return
    sb = gapfill.fill(board, run, tools=Toolbox(s), source=source, settings=s, min_score=0.3)
    assert all(sl.asset is None for sl in sb.slots), "a picture with a forbidden claim was made into a shot"
    assert any(r.get("action") == "dropped" and r.get("where", "").startswith("photo") for r in run.claims), run.claims
    assert any("on-screen text claims" in w for w in run.warnings)
    clean = _claim_photo(tmp_path / "clean.png", "Bastoncini")
    sb2 = gapfill.fill(board, RunRecord(thread_id="ok"), tools=Toolbox(s),
                       source=_Source([still_record(clean, COOKIES, "cookie box packshot")]), settings=s,
                       min_score=0.3)
    assert all(sl.asset is not None for sl in sb2.slots)
