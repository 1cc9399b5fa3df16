"""Product facts: strict parsing with one-line errors, the atomic upserting store, name matching, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cutpilot.cli import main
from cutpilot.errors import InputError, NotFoundError
from cutpilot.products import (
    BrandKit,
    Product,
    ProductBook,
    ProductStore,
    load_book,
    load_products_file,
    parse_products,
)
from cutpilot.settings import Settings

REPO = Path(__file__).resolve().parent.parent
EYE = "欧莱雅紫熨斗眼霜"
GOOD = """
products:
  - name: LEGO Technic
    aliases: [乐高机械组, 乐高, LEGO, Technic, lego technic]
    selling_points: [齿轮真的会转]
    selling_points_en: [Working gears and real steering]
    offer: 本周包邮
    offer_en: Free shipping this week
    audience: builders 9+
    banned_claims: [最, 第一, "#1"]
    brand: {logo: logo.png, colours: ["#FFCF00"], font: Noto Sans}
  - name: 欧莱雅紫熨斗眼霜
    aliases: [紫熨斗, 紫熨斗眼霜, "L'Oreal eye cream", purple iron eye cream]
    selling_points: [一觉淡褪侧睡纹]
    offer: 买一送一
"""


def _write(tmp_path: Path, text: str, name: str = "products.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _store(home: Path) -> ProductStore:
    return ProductStore(Settings(home=home))


def test_parse_good_file(tmp_path: Path) -> None:
    lego, eye = load_products_file(_write(tmp_path, GOOD))
    assert lego.name == "LEGO Technic"
    assert lego.brand == BrandKit(logo="logo.png", colours=["#FFCF00"], font="Noto Sans")
    assert lego.names() == ["LEGO Technic", "乐高机械组", "乐高", "LEGO", "Technic"]  # "lego technic" is the name
    assert lego.display_name("en") == "LEGO Technic" and lego.display_name("zh") == "乐高机械组"
    assert eye.display_name("en") == "L'Oreal eye cream" and eye.display_name("zh-CN") == EYE
    assert lego.points("zh") == ["齿轮真的会转"] and lego.points("en") == ["Working gears and real steering"]
    assert eye.points("en") == [] and eye.offer_for("en") is None and eye.offer_for("zh") == "买一送一"
    assert lego.offer_for("en") == "Free shipping this week"
    bare = load_products_file(_write(tmp_path, "- name: X\n  aliases:\n", "bare.yaml"))
    assert bare == [Product(name="X")]


BAD = [
    ("- name: LEGO Technic\n  prise: 3\n", ["product 1 ('LEGO Technic')", "unknown key 'prise'", "allowed: name"]),
    ("- name: A\n- name: B\n  selling_point: [x]\n", ["product 2 ('B')", "'selling_point'", "'selling_points'"]),
    ("- name: '  '\n", ["product 1", "'name'", "empty"]),
    ("- aliases: [x]\n", ["product 1", "missing 'name'"]),
    ("- name: 2024\n", ["product 1", "'name'", "number (2024)"]),
    ("- name: A\n  offer: 5\n", ["product 1 ('A')", "'offer'", "expected text", "number (5)"]),
    ("- name: A\n  offer: yes\n", ["'offer'", "true/false"]),
    ("- name: A\n  aliases: {zh: 乐高}\n", ["product 1 ('A')", "'aliases'", "list", "mapping"]),
    ("- name: A\n  banned_claims: 最\n", ["'banned_claims'", "list"]),
    ("- name: A\n  aliases: [x, 3]\n", ["'aliases' item 2", "number (3)"]),
    ("- name: A\n  aliases: [x, '']\n", ["'aliases'", "item 2 is empty"]),
    ("- name: A\n  brand: {fontt: x}\n", ["product 1 ('A')", "'brand.fontt'", "did you mean 'font'"]),
    ("- name: A\n  brand: [red]\n", ["'brand'", "mapping"]),
    ("- name: A\n  brand: {colours: [1]}\n", ["'brand.colours' item 1", "number"]),
    ("- name: A\n  aliases: [x]\n- name: B\n  aliases: [X]\n", ["product 2 ('B')", "alias 'X'", "product 1 ('A')"]),
    ("- name: A\n- name: B\n  aliases: [ａ]\n", ["product 2 ('B')", "the name of product 1"]),
    ("- name: A\n- name: a\n", ["product 2 ('a')", "name 'a'"]),
    ("- name: A\n  offer: x\n  offer: y\n", ["line 3", "duplicate key 'offer'"]),
    ("- name: A\n   offer: [\n", ["not valid YAML", "line"]),
    ("- just a name\n", ["product 1", "expected a mapping"]),
    ("products: {name: A}\n", ["expected a list of products"]),
    ("produkts: []\n", ["unknown top-level key 'produkts'"]),
    ("", ["no products"]),
]


@pytest.mark.parametrize(("text", "parts"), BAD)
def test_bad_input_is_one_precise_line(tmp_path: Path, text: str, parts: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_products_file(path)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    for part in parts:
        assert part in message, (part, message)


def test_parse_does_not_coerce() -> None:
    with pytest.raises(InputError, match="expected text"):
        parse_products([{"name": "A", "audience": 12}], "x")
    with pytest.raises(InputError, match="unsupported version"):
        parse_products({"version": 2, "products": []}, "x")
    assert parse_products({"version": 1, "products": []}, "x") == []


def test_import_upserts_by_name(tmp_path: Path) -> None:
    store = _store(tmp_path / "home")
    path = _write(tmp_path, GOOD)
    assert store.import_file(path) == (2, 0)
    assert store.import_file(path) == (0, 2)
    changed = GOOD.replace("offer: 买一送一", "offer: 第二件半价") + "  - name: Morning Brew Coffee\n"
    assert store.import_file(_write(tmp_path, changed, "v2.yaml")) == (1, 2)
    book = store.book()
    assert book.names() == ["LEGO Technic", EYE, "Morning Brew Coffee"]
    assert book.get("紫熨斗") is not None and book.get("紫熨斗").offer == "第二件半价"  # type: ignore[union-attr]
    assert load_book(Settings(home=tmp_path / "home")).names() == book.names()
    stored = json.loads((tmp_path / "home" / "products.json").read_text(encoding="utf-8"))
    assert stored["version"] == 1 and len(stored["products"]) == 3


def test_bad_import_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = _store(home)
    assert not load_book(Settings(home=home)).products  # nothing imported yet: an empty book, no file
    assert not (home / "products.json").exists()
    store.import_file(_write(tmp_path, GOOD))
    before = (home / "products.json").read_bytes()
    bad = GOOD.replace("offer: 买一送一", "offer: 1")
    with pytest.raises(InputError, match="'offer'"):
        store.import_file(_write(tmp_path, bad, "bad.yaml"))
    # a file that is fine alone but steals an alias of a stored product: refused against the whole book
    thief = _write(tmp_path, "- name: LEGO City\n  aliases: [乐高]\n", "thief.yaml")
    with pytest.raises(InputError) as e:
        store.import_file(thief)
    assert "product 1 ('LEGO City')" in str(e.value) and "'乐高'" in str(e.value) and "LEGO Technic" in str(e.value)
    with pytest.raises(InputError, match="no such file"):
        store.import_file(tmp_path / "missing.yaml")
    assert (home / "products.json").read_bytes() == before
    assert sorted(p.name for p in home.iterdir() if p.name.endswith(".tmp")) == []


def test_corrupt_store_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "products.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_book(Settings(home=home))
    assert "products.json" in str(e.value) and "\n" not in str(e.value)


def test_edit(tmp_path: Path) -> None:
    store = _store(tmp_path / "home")
    store.import_file(_write(tmp_path, GOOD))
    p = store.edit("lego", {"banned_claims": "最| 第一 |best ever", "offer": "", "brand.colours": "#000|#fff"})
    assert p.banned_claims == ["最", "第一", "best ever"] and p.offer is None
    assert p.brand is not None and p.brand.colours == ["#000", "#fff"] and p.brand.logo == "logo.png"
    assert store.book().get("LEGO Technic") == p
    eye = store.edit("紫熨斗", {"offer_en": "Buy one get one free", "brand.font": "Noto Serif"})
    assert eye.name == EYE and eye.offer_en == "Buy one get one free" and eye.brand == BrandKit(font="Noto Serif")
    with pytest.raises(InputError, match="cannot edit 'price'"):
        store.edit("lego", {"price": "9"})
    with pytest.raises(InputError, match="'name': must not be empty"):
        store.edit("lego", {"name": " "})
    with pytest.raises(InputError, match="alias '紫熨斗' is already an alias of"):
        store.edit("lego", {"aliases": "乐高|紫熨斗"})
    with pytest.raises(NotFoundError, match="LEGO Technic"):
        store.edit("Duplo", {"offer": "x"})
    assert store.book().get("lego") == p  # failed edits wrote nothing


def test_book_get_and_match() -> None:
    lego, eye = parse_products(yaml.safe_load(GOOD), "t")
    city = Product(name="LEGO City", aliases=["乐高城市"])
    book = ProductBook([lego, eye, city])
    assert book.get("ＬＥＧＯ technic") is lego and book.get(" l’oréal eye cream ") is eye and book.get("LEG") is None
    assert book.match("做一条15秒的乐高机械组广告") is lego
    assert book.match("make a 30s purple iron eye cream ad") is eye
    assert book.match("Make a 30s ad for the L'Oréal eye cream, English") is eye  # accent and case ignored
    assert book.match("a LEGO City ad for kids") is city  # longest name wins over the alias "LEGO"
    assert book.match("给乐高城市做广告") is city
    assert book.match("quick lego teaser, 9:16") is lego
    assert book.match("买LEGO送积木") is lego  # CJK next to a Latin name is a boundary
    # Decision: Latin names match whole words only, so LEGOLAND (a theme park) is not the LEGO product.
    assert book.match("a day out at LEGOLAND") is None
    assert book.match("Technical drawing") is None
    assert book.match("make a coffee ad") is None and ProductBook([]).match("乐高") is None
    with pytest.raises(InputError, match="already"):
        ProductBook([lego, Product(name="Duplo", aliases=["lego"])])


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD)
    code, out, _ = _run(capsys, ["products", "list"])
    assert code == 0 and "no products" in out
    code, out, _ = _run(capsys, ["products", "import", str(path)])
    assert code == 0 and "2 added, 0 updated" in out
    code, out, _ = _run(capsys, ["products", "list", "--json"])
    assert code == 0 and [p["name"] for p in json.loads(out)] == ["LEGO Technic", EYE]
    code, out, _ = _run(capsys, ["products", "list"])
    assert code == 0 and "LEGO Technic" in out
    code, out, _ = _run(capsys, ["products", "show", "紫熨斗", "--json"])
    assert code == 0 and json.loads(out)["name"] == EYE
    code, out, _ = _run(capsys, ["products", "show", "LEGO"])
    assert code == 0 and "Free shipping this week" in out
    code, out, _ = _run(capsys, ["products", "edit", "LEGO", "--set", "offer_en=Free returns", "--set",
                                 "aliases=乐高|LEGO", "--json"])  # fmt: skip
    edited = json.loads(out)
    assert code == 0 and edited["offer_en"] == "Free returns" and edited["aliases"] == ["乐高", "LEGO"]

    bad = _write(tmp_path, "- name: LEGO Technic\n  prise: 3\n", "bad.yaml")
    code, out, err = _run(capsys, ["products", "import", str(bad)])
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "unknown key 'prise'" in lines[0]
    assert "bad.yaml" in lines[0] and "product 1 ('LEGO Technic')" in lines[0]
    code, _, err = _run(capsys, ["products", "edit", "LEGO", "--set", "mood=happy"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot edit 'mood'" in err
    code, _, err = _run(capsys, ["products", "edit", "LEGO", "--set", "offer"])
    assert code == 2 and "field=value" in err
    code, _, err = _run(capsys, ["products", "show", "Duplo"])
    assert code == 6 and "no product named 'Duplo'" in err


def test_shipped_facts_files_load() -> None:
    sample = load_products_file(REPO / "samples" / "products.yaml")
    labels = {json.loads(line).get("product") for line in (REPO / "samples" / "annotations.jsonl").open()}
    assert [p.name for p in sample] == ["LEGO Technic"] and {p.name for p in sample} == labels - {None}
    lego = sample[0]
    assert lego.points("en") and lego.points("zh") and lego.offer_for("en") and lego.offer_for("zh")
    assert {"最", "第一"} <= set(lego.banned_claims)

    golden = ProductBook(load_products_file(REPO / "evals" / "golden" / "products.yaml"))
    library = yaml.safe_load((REPO / "evals" / "golden" / "library.yaml").read_text(encoding="utf-8"))
    assert set(golden.names()) == set(library["products"].values())
    eye = golden.get("紫熨斗")
    assert eye is not None and eye.name == EYE and eye.offer == "新品限时优惠，买一送一"
    assert {"最", "第一", "国家级", "100%", "根除"} <= set(eye.banned_claims)
    assert golden.match("做一条30秒的侧睡纹广告，欧莱雅紫熨斗眼霜，9:16") is eye
    assert golden.match("make a 30s purple iron eye cream ad") is eye
    assert golden.match("给 LEGO Technic 乐高机械组做一条15秒抖音广告，中文字幕") is golden.get("LEGO Technic")
    assert golden.match("10 second ad for Bastoncini Cookies, 9:16") is golden.get("Bastoncini Cookies")
    assert all(p.points("en") and p.points("zh") for p in golden.products)


def test_a_file_that_is_not_products_gets_a_short_line(tmp_path: Path) -> None:
    bad = tmp_path / "passwd.yaml"
    bad.write_text("root:x:0:0:root:/root:/bin/bash " * 200 + "\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_products_file(bad)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 300 and "expected a list of products" in msg
