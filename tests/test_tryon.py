"""Try-on: the practitioners' matching rules and scene table as data + code; the CatVTON-style adapter against a
local HTTP server (success and failure paths); no provider → a clear error, never fake output."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from cutpilot.errors import InputError, ProviderError
from cutpilot.settings import Settings
from tests._media import SHARED_MEDIA
from tests.http_servers import Reply, TestServer
from tools.garments import Garment, ModelPhoto, infer_style, match_score, rank_models, scene_prompts
from tools.tryon import plan_try_on, try_on

IMG = Path(SHARED_MEDIA + "/image")
GARMENT = IMG / "opencv_box_product.png"  # any real image file stands in for a garment photo
MODEL = IMG / "kphotoalbum_two_people_bar.jpg"


def test_aliases_parse_chinese_and_english() -> None:
    g = Garment(top_category="风衣", top_fit="宽松", top_length="长款", sleeves="长袖", style="通勤")
    assert (g.top_category, g.top_fit, g.top_length, g.sleeves, g.style) == (
        "trench", "loose", "long", "long", "formal_business")
    assert Garment(bottom_category="牛仔裤", bottom_length="九分").bottom_length == "seven_tenths"
    assert Garment(top_category="dress").cloth_type() == "overall"
    assert Garment(bottom_category="jeans").cloth_type() == "lower"
    with pytest.raises(InputError, match=r"unknown top category .spacesuit."):
        Garment(top_category="spacesuit")


@pytest.mark.parametrize(("garment", "good", "bad"), [
    # coat with coat
    (dict(top_category="overcoat"), dict(top_category="trench"), dict(top_category="t_shirt")),
    # dress with dress
    (dict(top_category="dress"), dict(top_category="连衣裙"), dict(top_category="shirt")),
    # long with long, short with short
    (dict(top_category="coat", top_length="long"), dict(top_category="coat", top_length="extra_long"),
     dict(top_category="coat", top_length="cropped")),
    (dict(bottom_category="skirt", bottom_length="mini"), dict(bottom_category="skirt", bottom_length="short"),
     dict(bottom_category="skirt", bottom_length="floor")),
    # slim with slim, loose with loose
    (dict(top_category="sweater", top_fit="slim"), dict(top_category="knitwear", top_fit="tight"),
     dict(top_category="knitwear", top_fit="oversized")),
    (dict(top_category="hoodie", top_fit="loose"), dict(top_category="hoodie", top_fit="oversized"),
     dict(top_category="hoodie", top_fit="slim")),
])
def test_matching_rules(garment: dict, good: dict, bad: dict) -> None:
    g = Garment(**garment)
    s_good, _ = match_score(g, Garment(**good))
    s_bad, reasons = match_score(g, Garment(**bad))
    assert s_good > s_bad and s_good >= 0.75 and s_bad <= 0.5, reasons
    ranked = rank_models(g, [ModelPhoto(id="bad", wearing=Garment(**bad)),
                             ModelPhoto(id="good", wearing=Garment(**good))])
    assert [m.model.id for m in ranked] == ["good", "bad"]


def test_scene_table_and_inference() -> None:
    assert scene_prompts("婚纱")[0].startswith("church")
    assert any("fireplace" in s for s in scene_prompts("autumn-winter"))
    assert any("graffiti" in s for s in scene_prompts("街头"))
    assert infer_style(Garment(top_category="down_jacket")) == "autumn_winter"
    assert infer_style(Garment(top_category="suit")) == "formal_business"
    assert infer_style(Garment(top_category="dress", bottom_length="floor")) == "evening_party"
    assert infer_style(Garment(bottom_category="shorts")) == "summer_light"
    assert infer_style(Garment(top_category="t_shirt")) == "casual"
    with pytest.raises(InputError, match="unknown womenswear type"):
        scene_prompts("cyberpunk")


def test_plan_try_on_ranks_and_warns() -> None:
    g = Garment(top_category="trench", top_length="long", top_fit="regular")
    models = [ModelPhoto(id="tee", wearing=Garment(top_category="t_shirt", top_length="cropped")),
              ModelPhoto(id="coat", wearing=Garment(top_category="overcoat", top_length="long"))]
    plan = plan_try_on(g, models)
    assert plan.models[0].model.id == "coat" and plan.cloth_type == "upper"
    assert plan.style == "casual" and plan.scenes and any("inferred" in n for n in plan.notes)
    poor = plan_try_on(g, models[:1])
    assert any("matches poorly" in n for n in poor.notes)


def test_no_provider_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match=r"CUTPILOT_TRYON_URL.*no offline try-on"):
        try_on(GARMENT, MODEL, settings=Settings(home=tmp_path), out_dir=tmp_path)
    assert not list(tmp_path.glob("try_on_*"))  # nothing fake was written
    with pytest.raises(InputError, match="not found"):
        try_on(tmp_path / "nope.png", MODEL, settings=Settings(home=tmp_path), out_dir=tmp_path)


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 128), (200, 30, 60)).save(buf, "JPEG")
    return buf.getvalue()


def test_provider_success_multipart_and_cache(tmp_path: Path) -> None:
    routes = {"POST /tryon": Reply(200, {"image_b64": base64.b64encode(_jpeg()).decode()})}
    with TestServer(routes) as srv:
        s = Settings(home=tmp_path, tryon_url=srv.url, provider_api_key="k")
        res = try_on(GARMENT, MODEL, settings=s, out_dir=tmp_path,
                     garment=Garment(top_category="dress"), wearing=Garment(top_category="t_shirt"))
        again = try_on(GARMENT, MODEL, settings=s, out_dir=tmp_path, garment=Garment(top_category="dress"))
        body = srv.requests[0].body
        assert srv.count("POST", "/tryon") == 1  # second call was a cache hit
    assert b'name="garment"' in body and b'name="model"' in body and b"overall" in body
    assert GARMENT.read_bytes()[:200] in body and MODEL.read_bytes()[:200] in body
    with Image.open(res.path) as im:
        assert im.format == "PNG" and im.size == (96, 128)
    assert res.params["match_score"] < 0.5 and any("match poorly" in n for n in res.notes)
    assert again.cached


@pytest.mark.parametrize(("reply", "match"), [
    (Reply(400, {"detail": "no person detected"}), "rejected the request: 400.*no person detected"),
    (Reply(502, "bad gateway"), "server error 502"),
    (Reply(200, "{broken", content_type="application/json"), "invalid JSON"),
    (Reply(200, b"\x00\x01 not an image", content_type="image/png"), "unreadable image"),
    (Reply(200, b"", content_type="image/png", delay_s=1.0), "timed out"),
])
def test_provider_failures(tmp_path: Path, reply: Reply, match: str) -> None:
    with TestServer({"POST /tryon": reply}) as srv:
        s = Settings(home=tmp_path, tryon_url=srv.url, provider_timeout_s=0.3)
        with pytest.raises(ProviderError, match=match):
            try_on(GARMENT, MODEL, settings=s, out_dir=tmp_path)
