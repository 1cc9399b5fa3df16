"""Eval cases are data: the shipped ones load and refer to real golden clips; broken ones fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutpilot.cli import main
from cutpilot.errors import InputError
from evals.golden import load_spec
from evals.schema import Case, load_case_file, load_cases, merged


def test_shipped_cases_load_and_cover_the_brief() -> None:
    spec = load_spec()
    raw = load_cases(known_keys=spec.keys(), expand=False)
    assert len(raw) >= 25
    expanded = load_cases(known_keys=spec.keys())
    assert len({c.id for c in expanded}) == len(expanded) > len(raw)  # variant matrices expand, ids stay unique
    langs = {c.lang for c in raw}
    assert {"zh", "en"} <= langs
    assert any(c.revisions for c in raw) and any(c.variants for c in raw)
    assert any(not isinstance(c.brief, str) for c in raw) and any(isinstance(c.brief, str) for c in raw)
    assert any("lor-inject" in c.expect.must_not_use for c in raw)


def test_golden_spec_covers_products_languages_and_hard_cases() -> None:
    spec = load_spec()
    products = {c.product for c in spec.clips if c.product}
    assert len(products) >= 3
    assert {c.lang for c in spec.clips} == {"zh", "en"}
    assert any(c.dup_of for c in spec.clips) and any(c.product is None for c in spec.clips)
    assert any("忽略之前" in c.transcript for c in spec.clips)  # injected instruction
    video_products = {c.product for c in spec.clips if c.media.kind != "still"}
    assert products - video_products  # a product with only a photo
    media = Path(load_spec.__code__.co_filename).parent / "golden" / "media"
    assert sum(f.stat().st_size for f in media.iterdir()) < 6 * 1024 * 1024
    assert (media / "NOTICE.md").read_text().count("|") > 20


def test_variants_expand_with_expectations() -> None:
    variants = {"audiences": ["学生党", "moms"], "aspects": ["9:16", "1:1"], "durations": [15]}
    c = Case.model_validate({"id": "m@v2", "brief": {"text": "x", "product": "P"}, "variants": variants})
    cells = c.expand()
    assert len(cells) == 4
    assert {x.id for x in cells} >= {"m-aud1-9x16-15s@v2", "m-moms-1x1-15s@v2"}
    assert cells[0].expect.duration_s == (14.5, 15.5) and cells[0].expect.aspect == "9:16"
    assert not isinstance(cells[0].brief, str) and cells[0].brief.audience == "学生党"


def test_revision_expectations_merge() -> None:
    c = Case.model_validate({"id": "r@v1", "brief": "b", "expect": {"duration_s": [29.5, 30.5], "language": "zh"},
                             "revisions": [{"request": "make it 15 s", "expect": {"duration_s": [14.5, 15.5]}}]})
    m = merged(c.expect, c.revisions[0].expect)
    assert m.duration_s == (14.5, 15.5) and m.language == "zh"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("id: nover\nbrief: x\n", "field id"),
        ("id: a@v1\nbrief: ''\n", "field brief"),
        ("id: a@v1\nbrief: x\nexpect: {duration_s: [30, 10]}\n", "field expect.duration_s"),
        ("id: a@v1\nbrief: x\nexpect: {roles_in_order: [hook, intro]}\n", "field expect.roles_in_order.1"),
        ("id: a@v1\nbrief: x\nexpect: {aspect: '3:4'}\n", "field expect.aspect"),
        ("id: a@v1\nbrief: x\nexpct: {}\n", "field expct"),
        ("id: a@v1\nbrief: {text: x, duration_s: 1000}\n", "field brief"),
        ("id: a@v1\nbrief: [unclosed\n", "not valid YAML"),
        ("- just a string\n", "expected a mapping"),
    ],
)
def test_broken_case_names_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "broken_case.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_case_file(f)
    assert "broken_case.yaml" in str(e.value) and needle in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_golden_key_and_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: a@v1\nbrief: x\nexpect: {must_not_use: [no-such-clip]}\n")
    with pytest.raises(InputError, match=r"a\.yaml: field expect: unknown golden clip key.*no-such-clip"):
        load_cases("*.yaml", tmp_path, known_keys=load_spec().keys())
    (tmp_path / "a.yaml").write_text("id: a@v1\nbrief: x\n")
    (tmp_path / "b.yaml").write_text("id: a@v1\nbrief: y\n")
    with pytest.raises(InputError, match=r"b\.yaml: field id: 'a@v1' already defined in a\.yaml"):
        load_cases("*.yaml", tmp_path)
    with pytest.raises(InputError, match="no eval cases match"):
        load_cases("nothing-*.yaml", tmp_path)


def test_cli_reports_a_broken_case_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("id: bad@v1\nbrief: x\nexpect: {language: fr}\n")
    code = main(["eval", "--cases", str(tmp_path / "bad.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.yaml" in err and "expect.language" in err
