"""Garments from photos alone: attributes annotated or read from the words around a photo, product facts that say
what a garment is, and a plain `make` that ranks the library's model photos by the matching rules and tries the
garment on the first one (a local fake try-on server, real sockets; real ingest, Library, u2netp and ffmpeg)."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pytest
from agent_fakes import MemorySource
from agent_helpers import NoVoiceTools
from PIL import Image

from agent import gapfill
from agent.gapfill import Photo
from cutpilot.errors import InputError
from cutpilot.models import ClipRecord, clip_id_for, file_hash
from cutpilot.products import Product, ProductStore
from cutpilot.settings import Settings
from index.annotations import load_annotations
from tests.http_servers import Reply, TestServer
from tools.garments import infer_garment, parse_garment

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PACKSHOT = FIXTURES / "ingest" / "opencv_box_product.png"


@pytest.mark.parametrize(("words", "want"), [
    ("model long coat", {"top_category": "coat", "top_length": "long"}),
    ("长款宽松羊毛大衣 白底", {"top_category": "overcoat", "top_fit": "loose", "top_length": "long"}),
    ("model wearing a cropped tee, short sleeve", {"top_category": "t_shirt", "sleeves": "short",
                                                   "top_length": "cropped"}),
    ("女士修身牛仔裤 九分", {"bottom_category": "jeans", "bottom_fit": "slim", "bottom_length": "seven_tenths"}),
    ("碎花连衣裙 长裙 度假", {"top_category": "dress", "bottom_category": "dress", "bottom_length": "long",
                       "style": "resort"}),
    ("long table with flowers", {}),  # no garment named: nothing inferred
    ("LEGO Technic box on white", {}),
])
def test_garment_attributes_are_inferred_only_from_a_named_garment(words: str, want: dict[str, str]) -> None:
    assert infer_garment(words) == want


def test_annotated_garment_is_checked_and_canonical(tmp_path: Path) -> None:
    assert parse_garment("top_category=大衣, top_length=长款") == {"top_category": "overcoat", "top_length": "long"}
    for bad, says in (({"colour": "red"}, "unknown key 'colour'"), ("top_category=spaceship", "unknown top"),
                      ("nonsense", "not key=value"), (["coat"], "must be a mapping")):
        with pytest.raises(InputError, match=says):
            parse_garment(bad)
    (tmp_path / "a.png").write_bytes(b"x")
    ann = tmp_path / "ann.jsonl"
    ann.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"source": "a.png", "garment": {"top_category": "风衣", "top_fit": "宽松"}},
        {"source": "a.png", "garment": {"top_category": "spaceship"}},
    ]) + "\n", encoding="utf-8")
    loaded = load_annotations(ann, [tmp_path], strict=False)
    [a] = loaded.by_source[(tmp_path / "a.png").resolve()]
    assert a.fields["garment"] == {"top_category": "trench", "top_fit": "loose"}
    assert [(p.line, p.status) for p in loaded.problems] == [(2, "failed")]
    assert "spaceship" in loaded.problems[0].message


def test_product_facts_say_what_a_garment_is() -> None:
    p = Product(name="Trench", garment={"top_category": "风衣", "top_length": "长款"})
    assert p.garment == {"top_category": "trench", "top_length": "long"}
    assert Product(name="Cookies").garment == {}


def _record(path: Path, product: str | None, fmt: str, garment: dict[str, str]) -> ClipRecord:
    h = file_hash(path)
    return ClipRecord.model_validate(dict(
        clip_id=clip_id_for(h, 0.0, 3.0), source=str(path), source_hash=h, start=0.0, end=3.0, description=path.stem,
        content_type="product intro", format=fmt, product=product, label_source="human", garment=garment))


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (240, 360)) -> bytes:
    im = Image.new("RGB", size, colour)
    im.paste((250, 250, 250), (60, 60, 180, 330))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_wardrobe_comes_from_the_facts_or_the_photo_and_the_model_photos(tmp_path: Path) -> None:
    files = {}
    for name, colour in (("garment", (200, 200, 200)), ("m1", (200, 40, 40)), ("m2", (40, 160, 60))):
        files[name] = tmp_path / f"{name}.png"
        files[name].write_bytes(_png(colour))
    garment = _record(files["garment"], "Trench", "product_still", {"top_category": "trench"})
    m1 = _record(files["m1"], None, "model_showcase", {"top_category": "t_shirt"})
    m2 = _record(files["m2"], "Other", "model_showcase", {"top_category": "coat"})
    src = MemorySource([garment, m1, m2])
    photos = [Photo(garment.clip_id, files["garment"], "Trench")]
    w = gapfill.library_wardrobe(gapfill.Storyboard.model_construct(), src, photos, None)
    assert w is not None and w.garment == {"top_category": "trench"} and w.garment_image == files["garment"]
    assert {m.id for m in w.models} == {m1.clip_id, m2.clip_id}
    facts = Product(name="Trench", garment={"top_category": "overcoat", "top_length": "long"})
    w2 = gapfill.library_wardrobe(gapfill.Storyboard.model_construct(), src, photos, facts)
    assert w2 is not None and w2.garment == {"top_category": "overcoat", "top_length": "long"}
    plain = _record(files["garment"], "Trench", "product_still", {})
    assert gapfill.library_wardrobe(gapfill.Storyboard.model_construct(), MemorySource([plain, m1]),
                                    photos, None) is None  # not a garment: no try-on, product scenes


@pytest.mark.slow
def test_plain_make_tries_the_garment_on_the_model_the_rules_rank_first(tmp_path: Path) -> None:
    """Photos in, ad out: the packshot's garment is annotated, the model photos' clothes are read from their
    names, the facts name the product; `make` with a try-on provider sends the long-coat model, not the tee."""
    from agent.run import make_ad
    from index.ingest import ingest
    from index.library import Library

    shots = tmp_path / "photos"
    shots.mkdir()
    images = {"model-cropped-slim-tee.png": _png((200, 40, 40)), "model-long-loose-coat.png": _png((40, 160, 60)),
              "model-red-dress.png": _png((40, 60, 200))}
    for name, data in images.items():
        (shots / name).write_bytes(data)
    (shots / "trench.png").write_bytes(PACKSHOT.read_bytes())
    ann = tmp_path / "ann.jsonl"
    ann.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"source": "trench.png", "product": "Trench Coat", "format": "白底图",
         "garment": {"top_category": "风衣", "top_length": "长款", "top_fit": "宽松", "sleeves": "长袖"}},
        *({"source": n, "format": "模特展示"} for n in images),
    ]) + "\n", encoding="utf-8")
    facts = tmp_path / "products.yaml"
    facts.write_text("products:\n  - name: Trench Coat\n    selling_points_en: [water-repellent cotton, "
                     "a belted waist]\n", encoding="utf-8")
    home = tmp_path / "home"
    with TestServer({"POST /tryon": Reply(200, PACKSHOT.read_bytes(), content_type="image/png")}) as srv:
        s = Settings(home=home, text_embedder="hash", tryon_url=srv.url, provider_timeout_s=10)
        ProductStore(s).import_file(facts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lib = Library.open(s)
        try:
            report = ingest([shots], s, lib, annotations=ann, progress=False)
            assert all(r.status == "ok" for r in report.rows), [(r.path, r.message) for r in report.rows]
            recs = {Path(r.source).name: r for r in lib.records()}
            assert recs["model-long-loose-coat.png"].garment == {"top_category": "coat", "top_length": "long",
                                                                 "top_fit": "loose"}
            assert (recs["model-long-loose-coat.png"].provenance or {}).get("garment") == "inferred"
            assert recs["trench.png"].garment["top_category"] == "trench"
            assert "garment" in recs["trench.png"].verified
            r = make_ad("10 second ad for Trench Coat, 9:16", settings=s, library=lib, out_dir=tmp_path / "ad",
                        quality="draft", tools=NoVoiceTools(s))
        finally:
            lib.close()
        assert srv.count("POST", "/tryon") == 1
        body = srv.requests[0].body
    assert images["model-long-loose-coat.png"] in body
    assert images["model-cropped-slim-tee.png"] not in body and images["model-red-dress.png"] not in body
    tried = [sl.asset.params["provenance"]["try_on"] for sl in r.storyboard.slots
             if sl.asset is not None and "try_on" in sl.asset.params.get("provenance", {})]
    assert tried and tried[0]["model"] == recs["model-long-loose-coat.png"].clip_id
    assert all(sl.asset is not None for sl in r.storyboard.slots)  # every shot generated from the photos
    assert r.ad is not None and Path(r.ad).is_file()
