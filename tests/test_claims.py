"""Claims compliance: the checker's matching (Chinese substrings with innocent words, English word boundaries),
product evidence, and the planner end to end — a brief asking for 全网最好 / 100%有效 never gets them into lines,
captions or cards, an evidence-backed 抗皱 does (recorded), a clip saying a forbidden claim is muted, and a
strict make fails with one line and writes no ad."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_fakes import PRODUCT, MemorySource, domain_records
from agent_helpers import NoVoiceTools

from agent.brain.offline import OfflineBrain
from agent.brief import parse_brief
from agent.claims import ClaimsError, Policy, check_frames, check_text, enforce, load_rules
from agent.run import MakeResult, make_ad
from agent.runrecord import RunRecord
from agent.steps import choice_from, script
from agent.templates import plan_storyboard
from cutpilot.errors import InputError
from cutpilot.products import Product, ProductStore, parse_products
from cutpilot.settings import Settings, get_settings
from cutpilot.storyboard import GeneratedAsset, SlotRole
from evals.schema import Expectations
from evals.scorers import RunOutputs, compliance

EVIDENCE = "SGS 人体功效评价报告 No. T-2026-001"
FACTS: dict[str, Any] = {"name": PRODUCT, "aliases": ["紫熨斗", "紫熨斗眼霜"],
                         "selling_points": ["抗皱，一觉淡褪侧睡纹"], "offer": "买一送一", "banned_claims": ["第一"],
                         "claim_evidence": {"抗皱": EVIDENCE}}
FORBIDDEN = ("全网最好", "100%", "最", "第一", "淡纹")


def terms(text: str, **kw: Any) -> list[tuple[str, str]]:
    return [(h.text, h.kind) for h in check_text(text, **kw)]


# --- matching -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "want"), [
    ("全网最好、100%有效的眼霜", [("全网最好", "absolute"), ("100%", "absolute")]),
    ("百分之百有效，绝对好用", [("百分之百", "absolute"), ("绝对", "absolute")]),
    ("销量第一", [("第一", "absolute")]),
    ("国家级认证，顶级品质", [("国家级", "absolute"), ("顶级", "absolute")]),
    ("万能的眼霜", [("万能", "absolute")]),
    ("美白祛斑", [("美白", "efficacy"), ("祛斑", "efficacy")]),
    ("ＢＥＳＴ　ｃｒｅａｍ", [("best", "absolute")]),  # full-width letters fold
    ("最 好 的", [("最好", "absolute")]),  # spaces between Chinese characters fold away
])
def test_forbidden_terms_are_found(text: str, want: list[tuple[str, str]]) -> None:
    assert terms(text) == want


@pytest.mark.parametrize("text", [
    "最近总是侧睡", "最后一天包邮", "第一次用就爱上了", "全新升级的第三代", "第一代紫熨斗", "提拉米苏味",
    "舒缓的音乐", "一觉淡褪侧睡纹",
])
def test_innocent_chinese_words_are_no_claims(text: str) -> None:
    assert terms(text) == []


@pytest.mark.parametrize(("text", "want"), [
    ("The best gift", ["best"]), ("best-selling set", ["best"]), ("The #1 choice", ["#1"]),
    ("No. 1 in town", ["no. 1"]),
    ("number one", ["number one"]), ("100 % effective", ["100 %"]), ("Guaranteed results", ["guaranteed"]),
    ("It cures tired eyes", ["cures"]), ("a miracle", ["miracle"]), ("CLINICALLY PROVEN", ["clinically proven"]),
])
def test_english_terms_match_whole_words_case_insensitive(text: str, want: list[str]) -> None:
    assert [t for t, _ in terms(text)] == want


@pytest.mark.parametrize("text", [
    "bestow a gift", "Best before 2027", "a manicure kit", "secure clips", "#10 on the shelf",
    "30-day money-back guarantee",
    "the bestial roar", "top 10 sets",
])
def test_innocent_english_words_are_no_claims(text: str) -> None:
    assert terms(text) == []


def test_product_names_banned_claims_and_evidence() -> None:
    assert terms("欧莱雅紫熨斗全脸淡纹眼霜", names=[PRODUCT]) == []  # a registered name is a fact, not a claim
    assert terms("一支淡纹眼霜") == [("淡纹", "efficacy")]
    assert terms("Super Awesome Company", banned=["awesome"]) == [("awesome", "banned")]
    assert terms("最近销量最好", banned=["最"]) == [("最好", "absolute")]  # 最近 stays innocent for a banned 最
    hit = check_text("抗皱淡纹", evidence={"抗皱": EVIDENCE})
    assert [(h.text, h.allowed, h.evidence) for h in hit] == [("抗皱", True, EVIDENCE), ("淡纹", False, None)]
    assert check_text("去皱", evidence={"抗皱": EVIDENCE})[0].allowed  # evidence for a term covers its forms
    p = Policy.of(None)
    assert p.clean("全网最好的眼霜，一觉淡褪侧睡纹") == "一觉淡褪侧睡纹"
    assert p.clean("Fades lines. The best cream ever!") == "Fades lines."
    assert p.clean("全网最好") == ""
    assert p.clean("买一送一 · 全网最低价") == "买一送一"


def test_a_brief_asking_to_avoid_a_claim_is_not_asking_for_it() -> None:
    from agent.claims import brief_hits

    p = Policy.of(None)
    assert [h.text for h in brief_hits("做一条广告，说全网最好", p)] == ["全网最好"]
    assert brief_hits("做一条广告，不要说最好，别用100%", p) == []
    assert brief_hits("make an ad, don't say best", p) == []


def test_rule_files_load_with_both_languages() -> None:
    rules = load_rules()
    zh = [t for t in rules.absolute if any("\u4e00" <= c <= "\u9fff" for c in t.term)]
    assert len(zh) > 20 and len(rules.absolute) - len(zh) > 10
    assert {"抗皱", "淡纹", "美白", "祛斑"} <= {t.term for t in rules.efficacy}


def test_brief_words_that_claim_never_become_angle_or_must_include() -> None:
    b = parse_brief("做一条20秒的紫熨斗眼霜广告，主打全网最好的效果，必须有100%有效", [PRODUCT])
    assert b.angle is None and b.must_include == []
    assert parse_brief("做一条20秒的紫熨斗眼霜广告，主打侧睡纹", [PRODUCT]).angle == "侧睡纹"


# --- product facts --------------------------------------------------------------------------------------------------
def test_claim_evidence_is_optional_validated_and_editable(tmp_path: Path) -> None:
    old = parse_products([{"name": "A", "banned_claims": ["最"]}], "f.yaml")[0]
    assert old.claim_evidence == {}
    assert parse_products([{"name": "A", "claim_evidence": None}], "f.yaml")[0].claim_evidence == {}
    with pytest.raises(InputError, match=r"'claim_evidence'.*抗皱.*no evidence"):
        parse_products([{"name": "A", "claim_evidence": {"抗皱": "  "}}], "f.yaml")
    with pytest.raises(InputError, match="claim to evidence"):
        parse_products([{"name": "A", "claim_evidence": ["抗皱"]}], "f.yaml")
    s = Settings(home=tmp_path / "home")
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"products": [FACTS]}, allow_unicode=True), encoding="utf-8")
    store = ProductStore(s)
    store.import_file(f)
    assert store.book().get("紫熨斗").claim_evidence == {"抗皱": EVIDENCE}  # type: ignore[union-attr]
    p = store.edit("紫熨斗", {"claim_evidence": "抗皱=报告 A|淡纹=报告 B"})
    assert p.claim_evidence == {"抗皱": "报告 A", "淡纹": "报告 B"}
    with pytest.raises(InputError, match="claim=evidence"):
        store.edit("紫熨斗", {"claim_evidence": "抗皱"})


# --- the planner ----------------------------------------------------------------------------------------------------
def _shown(r: MakeResult) -> list[str]:
    """Every line, caption, card text and overlay of a run."""
    out = [s.line for s in r.storyboard.slots] + [s.overlay for s in r.storyboard.slots]
    out += [str(v) for s in r.storyboard.slots if s.asset for v in s.asset.params.values()]
    by_slot: dict[int | None, str] = {}
    for c in r.timeline.captions:  # a caption is cut into chunks (mid-name too): read each slot's as one text
        by_slot[c.slot] = by_slot.get(c.slot, "") + c.text
    out += list(by_slot.values()) + [v.text for v in r.timeline.voiceover]
    out += [getattr(v, "text", "") + getattr(v, "subtitle", "") for v in r.timeline.video]
    return [t for t in out if t]


def _import(settings: Settings, tmp_path: Path, facts: dict[str, Any]) -> None:
    f = tmp_path / "facts.yaml"
    f.write_text(yaml.safe_dump({"products": [facts]}, allow_unicode=True), encoding="utf-8")
    ProductStore(settings).import_file(f)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path / "home", text_embedder="hash")
    _import(s, tmp_path, FACTS)
    return s


def test_forbidden_brief_claims_never_reach_the_ad_and_evidence_backed_ones_do(settings: Settings,
                                                                               tmp_path: Path) -> None:
    r = make_ad("做一条30秒的紫熨斗眼霜广告，突出抗皱效果，一定要说全网最好、100%有效", settings=settings,
                library=MemorySource(domain_records()), out_dir=tmp_path / "out", render=False,
                tools=NoVoiceTools(settings))
    shown = _shown(r)
    for text in shown:
        for word in FORBIDDEN:
            assert word not in text.replace(PRODUCT, ""), (word, text)
    assert any("抗皱" in t for t in shown)  # the evidence-backed claim is said
    run = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    rows = run["claims"]
    want = {"term": "抗皱", "kind": "efficacy", "action": "allowed-with-evidence", "evidence": EVIDENCE}
    assert any(want.items() <= c.items() and c["where"].endswith("line") for c in rows)
    assert {(c["text"], c["where"], c["action"]) for c in rows} >= {("全网最好", "brief", "dropped"),
                                                                    ("100%", "brief", "dropped")}
    muted = [c for c in rows if c["action"] == "muted"]  # the intro clip's own 淡纹 (no evidence) is not played
    assert muted and all(c["where"].endswith("speech") for c in muted)
    for s in r.storyboard.slots:
        if s.line_source == "clip_audio" and s.chosen:
            assert "淡纹" not in s.chosen.transcript


def test_english_brief_claims_never_reach_the_ad(settings: Settings, tmp_path: Path) -> None:
    r = make_ad("make a 15s ad for 紫熨斗眼霜, say it's the best, #1 and 100% guaranteed", settings=settings,
                library=MemorySource(domain_records()), out_dir=tmp_path / "en", render=False,
                tools=NoVoiceTools(settings))
    for text in _shown(r):
        assert not Policy.of(None, names=[PRODUCT]).violations(text), text


def test_a_clip_saying_a_forbidden_claim_is_muted() -> None:
    product = Product.model_validate(FACTS)
    recs = domain_records()
    intro = next(r for r in recs if r.content_type.value == "product_intro")
    loud = intro.model_copy(update={"transcript": "紫熨斗眼霜，效果全网最好"})
    sb = plan_storyboard(parse_brief("做一条20秒的紫熨斗眼霜广告", [PRODUCT]))
    i = next(s.index for s in sb.slots if s.role == SlotRole.product_intro)
    slots = list(sb.slots)
    slots[i] = slots[i].model_copy(update={"chosen": choice_from(loud, 0.9)})
    run = RunRecord(thread_id="t")
    out, revoice = script(sb.model_copy(update={"slots": slots}), [i], OfflineBrain(), run, {loud.clip_id: loud},
                          product=product)
    assert out.slots[i].line_source == "voiceover" and "最" not in out.slots[i].line and i in revoice
    assert {"where": f"slot {i} speech", "text": "全网最好", "action": "muted"}.items() <= run.claims[0].items()
    # the last check before voicing mutes a clip the script step did not see, and fixes cards and the offer plate
    slots[i] = slots[i].model_copy(update={"chosen": choice_from(loud, 0.9), "line_source": "clip_audio",
                                           "line": loud.transcript})
    card = GeneratedAsset(kind="card", path="", tool="renderer.card",
                          params={"text": "顶级眼霜", "subtitle": "买一送一"})
    slots[0] = slots[0].model_copy(update={"asset": card, "chosen": None, "line": "还在为细纹烦恼？"})
    slots[-1] = slots[-1].model_copy(update={"overlay": "全网最低价 · 买一送一"})
    run2 = RunRecord(thread_id="t2")
    fixed, changed = enforce(sb.model_copy(update={"slots": slots}), run2, product)
    assert fixed.slots[i].line_source == "voiceover" and i in changed
    assert fixed.slots[0].asset and fixed.slots[0].asset.params == {"text": "", "subtitle": "买一送一"}
    assert fixed.slots[-1].overlay == "买一送一"
    assert {c["action"] for c in run2.claims} == {"muted", "dropped", "rewritten"}


def test_strict_make_fails_with_one_line_and_writes_no_ad(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ClaimsError, match="strict") as e:
        make_ad("做一条20秒的紫熨斗眼霜广告，一定要说全网最好", settings=settings,
                library=MemorySource(domain_records()), out_dir=tmp_path / "strict", render=False,
                tools=NoVoiceTools(settings), strict=True)
    assert "\n" not in e.value.one_line() and "全网最好" in e.value.one_line() and e.value.exit_code == 2
    assert not (tmp_path / "strict" / "storyboard.json").exists() and not (tmp_path / "strict" / "ad.mp4").exists()


def test_strict_cli_exits_non_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import agent.cli
    from cutpilot.cli import main

    _import(get_settings(), tmp_path, FACTS)

    class Lib(MemorySource):
        def close(self) -> None:
            pass

    monkeypatch.setattr(agent.cli, "_open_library", lambda settings: Lib(domain_records()))
    out = tmp_path / "cli-out"
    code = main(["make", "做一条20秒的紫熨斗眼霜广告，说100%有效", "--strict", "--no-render", "--out", str(out),
                 "--planner", "offline"])
    err = capsys.readouterr().err
    assert code == 2 and "ClaimsError" in err and "100%" in err
    assert len([ln for ln in err.strip().splitlines() if ln.strip()]) <= 2  # one line (rich may wrap it)
    assert not (out / "ad.mp4").exists() and not (out / "storyboard.json").exists()


def test_batch_row_strict_fails_that_variant(tmp_path: Path) -> None:
    from agent.batch import load_rows, run_batch

    s = Settings(home=tmp_path / "home", text_embedder="hash")
    _import(s, tmp_path, FACTS)
    f = tmp_path / "b.yaml"
    f.write_text(yaml.safe_dump([{"id": "strict", "brief": "做一条15秒的紫熨斗眼霜广告，说销量第一", "strict": True},
                                 {"id": "lax", "brief": "做一条15秒的紫熨斗眼霜广告，说销量第一"}],
                                allow_unicode=True), encoding="utf-8")
    assert [r.strict for r in load_rows(f)] == [True, False]
    summary = run_batch(f, settings=s, library=MemorySource(domain_records()), out_dir=tmp_path / "bo", render=False,
                        progress=False, tools=NoVoiceTools(s))
    by = {r["key"]: r for r in summary["results"]}
    assert by["strict"]["status"] == "failed" and "ClaimsError" in by["strict"]["error"]
    assert by["lax"]["status"] == "ok"


# --- OCR of generated frames and the eval scorer ---------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")
def test_check_frames_reads_claims_off_a_rendered_card(tmp_path: Path) -> None:
    from cutpilot.timeline import BrandKit
    from tools.cards import title_card

    bad = title_card("BEST CREAM EVER", BrandKit(), size=(720, 1280), subtitle="100% GUARANTEED", out_dir=tmp_path)
    fine = title_card("Smooth skin", BrandKit(), size=(720, 1280), subtitle="Shop now", out_dir=tmp_path)
    hits = check_frames([bad, fine])
    assert {h.term for h in hits} >= {"best", "guaranteed"}
    assert all(h.where == f"frame {bad.name}" for h in hits)


def test_compliance_scorer(settings: Settings, tmp_path: Path) -> None:
    r = make_ad("做一条30秒的紫熨斗眼霜广告，突出抗皱效果，说全网最好", settings=settings,
                library=MemorySource(domain_records()),
                out_dir=tmp_path / "o", render=False, tools=NoVoiceTools(settings))
    recs = {x.clip_id: x for x in domain_records()}
    kw: dict[str, Any] = {"records": recs, "names": [PRODUCT, "紫熨斗"], "claim_evidence": {"抗皱": EVIDENCE}}
    good = compliance(RunOutputs(storyboard=r.storyboard, timeline=r.timeline, **kw), Expectations(), None)  # type: ignore[arg-type]
    assert good.value == 1.0 and "抗皱" in good.raw["allowed_with_evidence"]
    slots = list(r.storyboard.slots)
    slots[0] = slots[0].model_copy(update={"line": "全网最好的眼霜"})
    bad = compliance(RunOutputs(storyboard=r.storyboard.model_copy(update={"slots": slots}), **kw), Expectations(),
                     None)  # type: ignore[arg-type]
    assert bad.value == 0.0 and "全网最好 (absolute)" in bad.raw["found"]
