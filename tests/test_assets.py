"""Content-addressed asset store and writing generated assets back into a real clip library."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cutpilot.errors import InputError, MediaError
from cutpilot.models import ClipFormat, ContentType
from cutpilot.settings import Settings
from index.embed import HashEmbedder
from index.library import Library
from index.search import SearchFilters
from tests._media import SHARED_MEDIA
from tools.assets import AssetResult, asset_key, cached, register_generated_clip, save_sidecar
from tools.image_video import image_to_video

CUP = Path(SHARED_MEDIA + "/image/skimage_coffee_cup.png")


def test_key_depends_on_content_not_path(tmp_path: Path) -> None:
    copy = tmp_path / "renamed.png"
    shutil.copy(CUP, copy)
    k1 = asset_key("t", [CUP], {"a": 1, "b": [1, 2]})
    assert k1 == asset_key("t", [copy], {"b": [1, 2], "a": 1})  # same bytes, key order irrelevant
    assert k1 != asset_key("t", [CUP], {"a": 2, "b": [1, 2]})
    assert k1 != asset_key("other", [CUP], {"a": 1, "b": [1, 2]})
    copy.write_bytes(copy.read_bytes() + b"\0")
    assert k1 != asset_key("t", [copy], {"a": 1, "b": [1, 2]})
    with pytest.raises(InputError, match="not found"):
        asset_key("t", [tmp_path / "missing.png"])


def test_cache_needs_file_and_sidecar(tmp_path: Path) -> None:
    key = asset_key("t", (), {"x": 1})
    assert cached(tmp_path, "t", key, ".bin") is None
    path = tmp_path / f"t_{key[:20]}.bin"
    path.write_bytes(b"data")
    assert cached(tmp_path, "t", key, ".bin") is None  # no sidecar: a half-written asset is not a hit
    save_sidecar(AssetResult(path=path, kind="card", tool="t", params={"x": 1}, key=key))
    hit = cached(tmp_path, "t", key, ".bin")
    assert hit is not None and hit.cached and hit.params == {"x": 1}
    assert hit.to_generated_asset().kind == "card"
    path.write_bytes(b"")
    assert cached(tmp_path, "t", key, ".bin") is None  # empty file is never a hit


def test_register_generated_clip_into_real_library(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "home")
    asset = image_to_video(CUP, 1.5, size=(180, 320), fps=20, settings=s, out_dir=tmp_path / "assets")
    lib = Library.open(s, embedder=HashEmbedder(64))
    try:
        rec = register_generated_clip(lib, asset.path, asset.provenance(), product="espresso cup",
                                      content_type="产品介绍", description="espresso cup, slow zoom",
                                      formats=[ClipFormat.product_still], tags=["coffee"])
        assert rec.generated and rec.label_source == "generated" and rec.provenance
        assert rec.provenance["tool"] == "image_to_video" and rec.provenance["key"] == asset.key
        assert (rec.width, rec.height) == (180, 320) and abs(rec.duration - 1.5) < 0.06 and not rec.has_audio
        assert rec.content_type == ContentType.product_intro and Path(rec.keyframes[0]).stat().st_size > 0
        got = lib.get(rec.clip_id)
        assert got.generated and got.provenance == rec.provenance and got.source == str(asset.path.resolve())
        # idempotent by clip id
        register_generated_clip(lib, asset.path, asset.provenance(), product="espresso cup",
                                content_type="product_intro", description="espresso cup, slow zoom")
        assert lib.count() == 1
        hits = lib.search("espresso cup zoom", SearchFilters(product="espresso cup"), limit=3)
        assert hits and hits[0].clip.clip_id == rec.clip_id
        none = lib.search("espresso cup zoom", SearchFilters(include_generated=False), limit=3)
        assert all(not h.clip.generated for h in none)
        # a still image becomes a clip of the still duration
        still = register_generated_clip(lib, CUP, {"tool": "replace_background", "provider": "offline"},
                                        product="espresso cup", content_type="product_intro",
                                        description="cup on gradient", still_duration_s=2.5)
        assert still.duration == 2.5 and (still.width, still.height) == (600, 400) and lib.count() == 2
        with pytest.raises(MediaError, match="video stream"):
            register_generated_clip(lib, Path(SHARED_MEDIA + "/audio/jfk_ask_not.wav"), {}, product=None,
                                    content_type="other", description="")
    finally:
        lib.close()
