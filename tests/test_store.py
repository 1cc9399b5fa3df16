"""ClipStore and Library against the real Qdrant engines: the same suite runs on every embedded backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cutpilot.errors import InputError, NotFoundError, StoreError
from cutpilot.models import ClipRecord, ContentType
from cutpilot.settings import Settings
from index.clipvec import tiny_random_embedder
from index.embed import HashEmbedder
from index.library import Library
from index.search import SearchFilters
from index.store import ClipStore, StoreMeta, resolve_backend
from tests._library_data import EYE, all_records, eye_cream_records

BACKENDS = ["edge", "local"]


@pytest.fixture(params=BACKENDS)
def lib(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path / "h", store_backend=request.param)
    library = Library.open(settings, embedder=HashEmbedder(64))
    library.add(all_records())
    yield library
    library.close()


def test_add_is_idempotent_and_get(lib: Library) -> None:
    n = lib.count()
    assert n == len(all_records())
    lib.add(eye_cream_records())  # re-adding the same ids never duplicates
    assert lib.count() == n
    lib.optimize()  # index build after a bulk load keeps every point
    assert lib.count() == n and lib.search("哑铃", limit=1)
    first = eye_cream_records()[0]
    got = lib.get(first.clip_id)
    assert got == first
    assert [r.clip_id for r in lib.get_many([first.clip_id, "nope", eye_cream_records()[2].clip_id])] == [
        first.clip_id,
        eye_cream_records()[2].clip_id,
    ]
    with pytest.raises(NotFoundError):
        lib.get("00000000-0000-0000-0000-000000000000")


def test_filters_records_count_ids_for_source_delete(lib: Library) -> None:
    live = SearchFilters(product=EYE, formats=["直播切片"])
    assert lib.count(live) == 4
    assert {r.clip_id for r in lib.records(live)} == {
        r.clip_id for r in eye_cream_records() if r.format[0].value == "livestream"
    }
    short = list(lib.records(SearchFilters(max_dur=4.0)))
    assert short and all(r.duration <= 4.0 for r in short)
    assert all(r.content_type == ContentType.pain_point for r in lib.records(SearchFilters(content_types=["痛点"])))
    ids = lib.ids_for_source("eyecream0000src1")
    assert len(ids) == 10
    victim = sorted(ids)[0]
    lib.delete([victim])
    assert lib.count() == len(all_records()) - 1 and victim not in lib.ids_for_source("eyecream0000src1")


def test_search_filters_and_exclusions(lib: Library) -> None:
    hits = lib.search("侧睡纹", SearchFilters(product=EYE, content_types=["pain_point"], max_dur=9.0), limit=20)
    assert hits
    for h in hits:
        assert h.clip.product == EYE and h.clip.content_type == ContentType.pain_point and h.clip.duration <= 9
    top = hits[0].clip.clip_id
    again = lib.search("侧睡纹", SearchFilters(product=EYE, exclude_ids=[top]), limit=20)
    assert top not in {h.clip.clip_id for h in again}
    lib.add([eye_cream_records()[0].model_copy(update={"clip_id": "gen-1", "generated": True})])
    with_gen = {h.clip.clip_id for h in lib.search("哑铃", limit=30)}
    without = {h.clip.clip_id for h in lib.search("哑铃", SearchFilters(include_generated=False), limit=30)}
    assert "gen-1" in with_gen and "gen-1" not in without


def test_edit_marks_verified_and_reembeds(lib: Library) -> None:
    rec = eye_cream_records()[3]
    assert lib.search("zebra unicorn", limit=1)[0].clip.clip_id != rec.clip_id
    new = lib.edit(rec.clip_id, {"content_type": "社会认同", "tags": "zebra, unicorn", "description": "zebra unicorn"})
    assert new.content_type == ContentType.social_proof and new.tags == ["zebra", "unicorn"]
    assert {"content_type", "tags", "description"} <= set(new.verified) and new.label_source == "human"
    assert lib.get(rec.clip_id) == new
    assert lib.search("zebra unicorn", limit=1)[0].clip.clip_id == rec.clip_id  # re-embedded and re-indexed
    with pytest.raises(InputError, match="cannot edit clip_id"):
        lib.edit(rec.clip_id, {"clip_id": "x"})
    with pytest.raises(InputError, match="unknown content type"):
        lib.edit(rec.clip_id, {"content_type": "banana"})


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_export_import_round_trip(lib: Library, tmp_path: Path, suffix: str) -> None:
    rec = eye_cream_records()[0].model_copy(
        update={
            "trend_tags": ["美国作息", "眼袋掉到下巴"],
            "verified": ["transcript"],
            "keyframes": ["/k/a.jpg"],
            "provenance": {"tool": "x", "n": 1},
            "width": 1080,
            "fps": 29.97,
            "language": None,
            "product": None,
        }
    )
    lib.add([rec])
    before = sorted(lib.records(), key=lambda r: r.clip_id)
    out = tmp_path / f"lib{suffix}"
    assert lib.export(out) == len(before)
    other = Library.open(Settings(home=tmp_path / "other", store_backend=lib.store.backend), embedder=HashEmbedder(64))
    try:
        assert other.import_(out) == len(before)
        after = sorted(other.records(), key=lambda r: r.clip_id)
        assert after == before
    finally:
        other.close()


def test_import_rejects_unknown_fields_and_writes_nothing(lib: Library, tmp_path: Path) -> None:
    good = eye_cream_records()[0].model_dump(mode="json")
    good["clip_id"] = "11111111-1111-1111-1111-111111111111"
    bad = dict(good, clip_id="22222222-2222-2222-2222-222222222222", mood="happy")
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    n = lib.count()
    with pytest.raises(InputError, match=r"line 2: unknown field\(s\) mood"):
        lib.import_(path)
    assert lib.count() == n
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("source,source_hash,start,end,colour\na.mp4,abcd,0,2,red\n")
    with pytest.raises(InputError, match="unknown field"):
        lib.import_(csv_path)
    with pytest.raises(InputError, match=r"\.jsonl or \.csv"):
        lib.import_(tmp_path / "x.txt") if (tmp_path / "x.txt").write_text("") == 0 else None
    assert lib.count() == n


def test_store_refuses_other_vector_space_and_persists(tmp_path: Path) -> None:
    for backend in BACKENDS:
        s = Settings(home=tmp_path / backend, store_backend=backend)
        with Library.open(s, embedder=HashEmbedder(64)) as lib:
            lib.add(eye_cream_records()[:3])
        with Library.open(s, embedder=HashEmbedder(64)) as lib:
            assert lib.count() == 3  # on disk, reopened
        with pytest.raises(StoreError, match="hash:64"):
            Library.open(s, embedder=HashEmbedder(32))
        with pytest.raises(StoreError, match="image vectors are absent"):
            Library.open(s, embedder=HashEmbedder(64), image_embedder=tiny_random_embedder())


def test_backend_resolution() -> None:
    assert resolve_backend(Settings(store_backend="auto")) == "edge"
    assert resolve_backend(Settings(store_backend="auto", qdrant_url="http://q:6333")) == "server"
    with pytest.raises(StoreError):
        resolve_backend(Settings(store_backend="sqlite"))
    with pytest.raises(StoreError, match="QDRANT_URL"):
        ClipStore.open(Settings(store_backend="server"), StoreMeta(text_model="h", text_dim=4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_image_vectors_and_image_query(backend: str, tmp_path: Path) -> None:
    from PIL import Image

    img = tiny_random_embedder()
    recs = []
    for i, colour in enumerate([(230, 30, 30), (30, 30, 230), (30, 220, 30)]):
        frames = []
        for j in range(3):
            p = tmp_path / f"c{i}_{j}.jpg"
            Image.new("RGB", (64, 48), tuple(max(0, c - 10 * j) for c in colour)).save(p)
            frames.append(str(p))
        recs.append(
            ClipRecord(
                clip_id=f"img-{i}",
                source="s.mp4",
                source_hash="imgsrc",
                start=i,
                end=i + 1,
                description="同一段文字 same words",
                keyframes=frames,
            )
        )
    s = Settings(home=tmp_path / "h", store_backend=backend, image_weight=0.7)
    with Library.open(s, embedder=HashEmbedder(64), image_embedder=img) as lib:
        assert lib.store.meta.image_model == img.model_id
        lib.add(recs)
        query = tmp_path / "q.jpg"
        Image.new("RGB", (64, 48), (30, 30, 225)).save(query)
        hits = lib.search("same words", image=query, limit=3)
        assert hits[0].clip.clip_id == "img-1" and "image" in hits[0].scores
        assert hits[0].scores["image"] >= max(h.scores.get("image", -1) for h in hits)
