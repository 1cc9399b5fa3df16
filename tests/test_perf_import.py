"""`cutpilot perf import|report` and `insights`: every platform adapter on Chinese and English exports and API
JSON, upserts that replace a re-pulled day, unmatched ads reported (and stored), bad files refused whole."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from cutpilot.cli import main
from cutpilot.errors import InputError
from cutpilot.perf import store
from cutpilot.perf.adapters import norm, parse_file, parse_records
from cutpilot.perf.model import Variant, VariantShot
from cutpilot.settings import get_settings
from tests.conftest import FIXTURES

PERF = FIXTURES / "perf"
A, B, C = "CPABR24PA", "CPRHYG5G0", "CPSYJR0X9"  # C is never registered

# file -> (platform, rows, first row's expected figures)
CASES: dict[str, tuple[str, int, dict[str, Any]]] = {
    "tiktok_en.csv": ("tiktok", 3, dict(date=dt.date(2026, 11, 29), ad_id="1780000000000001", variant_key=A,
                                        impressions=12000, spend=85.5, plays=9000, views_2s=5400, views_6s=3600,
                                        p25=4500, p100=1200, avg_watch_s=6.2, clicks=240, conversions=12)),
    "tiktok_zh.csv": ("tiktok", 2, dict(date=dt.date(2026, 11, 30), impressions=13500, spend=91.2, plays=10000,
                                        views_2s=6100, p75=2200, p100=1300, avg_watch_s=6.4, conversions=14)),
    "meta_en.csv": ("meta", 2, dict(ad_id="238000000000001", impressions=8000, spend=40.1, plays=6000,
                                    views_2s=3900, views_3s=3300, p50=2000, p100=800, avg_watch_s=5.5,
                                    conversions=4, revenue=356.0)),
    "meta_zh.csv": ("meta", 1, dict(date=dt.date(2026, 11, 30), impressions=8200, clicks=125, spend=41.0,
                                    plays=6100, views_2s=4000, views_3s=3400, p25=3150, p100=810,
                                    avg_watch_s=5.0, conversions=5, revenue=445.0)),
    "meta_api.json": ("meta", 1, dict(date=dt.date(2026, 12, 1), impressions=8100, plays=6050, views_3s=3350,
                                      p100=805, avg_watch_s=5.0, conversions=4, revenue=360.0, clicks=118)),
    "oceanengine_en.csv": ("oceanengine", 2, dict(impressions=20000, clicks=300, spend=150.0, plays=16000,
                                                  views_2s=11000, views_3s=9600, views_5s=7000, views_10s=4000,
                                                  p25=8000, p100=2100, avg_watch_s=6.8, conversions=20)),
    "oceanengine_zh.csv": ("oceanengine", 1, dict(date=dt.date(2026, 11, 30), ad_id="7310000000000002",
                                                  variant_key=B, impressions=17500, spend=115.0, plays=13600,
                                                  views_3s=6800, views_5s=4600, p50=3500, p100=1250,
                                                  avg_watch_s=5.1, conversions=None)),
    "oceanengine_api.json": ("oceanengine", 2, dict(ad_id="7310000000000001", conversions=26, p75=3400)),
    "qianchuan_en.csv": ("qianchuan", 2, dict(impressions=30000, spend=400.0, plays=25000, views_3s=15000,
                                              p100=3000, conversions=45, revenue=6705.0)),
    "qianchuan_zh.csv": ("qianchuan", 1, dict(impressions=31000, clicks=610, spend=410.0, views_3s=15300,
                                              p25=12200, p100=3020, conversions=47, revenue=7003.0)),
    "kuaishou_en.csv": ("kuaishou", 2, dict(ad_id="5500000001", impressions=40000, clicks=2000, spend=220.0,
                                            views_3s=12000, plays=20000, views_5s=9000, p100=2400,
                                            conversions=18)),
    "kuaishou_zh.csv": ("kuaishou", 1, dict(impressions=35000, clicks=1450, spend=195.0, views_3s=8800,
                                            plays=17600, views_5s=6248, p100=1408, conversions=8)),
    "kuaishou_api.json": ("kuaishou", 1, dict(ad_id="5500000001", plays=21000, views_3s=12600, p100=2520)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_adapter_maps_export(name: str) -> None:
    platform, n, want = CASES[name]
    parsed = parse_file(PERF / name, platform)
    assert len(parsed.rows) == n
    row = parsed.rows[0]
    assert row.platform == platform
    got = {k: getattr(row, k) for k in want}
    assert got == want
    if platform == "kuaishou":  # ratios became counts, and the import says so
        assert any("ratio" in note for note in parsed.notes)


def test_every_platform_has_chinese_and_english_fixtures() -> None:
    for p in ("tiktok", "meta", "oceanengine", "qianchuan", "kuaishou"):
        assert f"{p}_en.csv" in CASES and f"{p}_zh.csv" in CASES


def test_headers_are_case_space_bom_and_unit_insensitive() -> None:
    assert norm("\ufeff Show_Cnt ") == norm("showcnt") == "showcnt"
    assert norm("消耗(元)") == norm("消耗（元）") == norm("消耗")
    assert norm("Amount spent (USD)") == norm("amount_spent")
    rows = parse_records([{"\ufeffSTAT_DATETIME": "2026-11-29", " Ad ID": "7", "AD_NAME": "x_CP-abr24pa",
                           "Show Cnt": "1,234", "STAT_COST": "¥12.50", "total_play": "--", "play_over": ""}],
                         "oceanengine").rows
    assert rows[0].impressions == 1234 and rows[0].spend == 12.5 and rows[0].variant_key == A
    assert rows[0].plays is None and rows[0].p100 is None  # "--" and empty are unknown, not 0


def test_json_shapes(tmp_path: Path) -> None:
    rec = {"stat_time_day": "2026-11-29 00:00:00", "ad_id": "1", "ad_name": f"n_{A}", "impressions": "100",
           "video_play_actions": "80", "video_watched_2s": "40"}
    nested = {"dimensions": {"stat_time_day": "2026-11-29 00:00:00", "ad_id": "1"},
              "metrics": {"ad_name": f"n_{A}", "impressions": "100", "video_play_actions": "80",
                          "video_watched_2s": "40"}}
    for i, doc in enumerate(([rec], {"data": [rec]}, {"code": 0, "data": {"list": [rec]}},
                             {"code": 0, "data": {"list": [nested], "page_info": {}}})):
        f = tmp_path / f"t{i}.json"
        f.write_text(json.dumps(doc))
        (row,) = parse_file(f, "tiktok").rows
        assert (row.ad_id, row.impressions, row.plays, row.views_2s, row.variant_key) == ("1", 100, 80, 40, A)


def test_meta_api_day_without_purchases_has_zero(tmp_path: Path) -> None:
    f = tmp_path / "m.json"
    day = {"date_start": "2026-12-01", "ad_name": f"n_{A}", "impressions": "50"}
    f.write_text(json.dumps({"data": [{**day, "ad_id": "9", "actions": [{"action_type": "link_click", "value": "2"}]},
                                      {**day, "ad_id": "8"}]}))
    a, b = parse_file(f, "meta").rows
    assert (a.conversions, a.revenue, b.conversions) == (0, None, None)  # no action_values asked for: unknown


def test_bad_files_are_one_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing ad_id .*ad_name .*impressions"):
        parse_file(PERF / "bad.csv", "tiktok")
    with pytest.raises(InputError, match="unknown platform"):
        parse_file(PERF / "tiktok_en.csv", "weibo")
    f = tmp_path / "x.csv"
    f.write_text("stat_time_day,ad_id,ad_name,impressions\n2026-11-29,1,a,12x\n")
    with pytest.raises(InputError, match="line 2: impressions is not a number"):
        parse_file(f, "tiktok")
    f.write_text("stat_time_day,ad_id,ad_name,impressions\n2026-11-29,1.78E+18,a,1\n")
    with pytest.raises(InputError, match="rounded by a spreadsheet"):
        parse_file(f, "tiktok")


def test_cli_bad_file_exits_2_and_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["perf", "import", str(PERF / "bad.csv"), "--platform", "tiktok"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "InputError" in err and "missing" in err
    assert store.daily_rows(get_settings()) == [] and store.latest_snapshot(get_settings()) is None
    assert main(["perf", "import", str(PERF / "nope.csv"), "--platform", "tiktok"]) == 2
    assert main(["perf", "import", str(PERF / "tiktok_en.csv"), "--platform", "weibo"]) == 2


def _import(capsys: pytest.CaptureFixture[str], name: str, platform: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["perf", "import", str(PERF / name), "--platform", platform, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_repull_replaces_the_day(capsys: pytest.CaptureFixture[str]) -> None:
    first = _import(capsys, "oceanengine_en.csv", "oceanengine")
    assert (first["rows_upserted"], first["rows_replaced"]) == (2, 0)
    # the API re-pull restates 11-29 (conversions back-dated 20 → 26) and adds 11-30
    again = _import(capsys, "oceanengine_api.json", "oceanengine")
    assert (again["rows_read"], again["rows_upserted"], again["rows_replaced"], again["rows_changed"]) == (2, 2, 1, 1)
    assert again["dates"] == ["2026-11-29", "2026-11-30"] and again["snapshot_id"] != first["snapshot_id"]
    rows = store.daily_rows(get_settings(), platform="oceanengine")
    assert len(rows) == 3
    day = {(r.ad_id, r.date): r for r in rows}[("7310000000000001", dt.date(2026, 11, 29))]
    assert day.conversions == 26
    assert len(store.daily_rows(get_settings(), since=dt.date(2026, 11, 30))) == 1
    same = _import(capsys, "oceanengine_api.json", "oceanengine")
    assert (same["rows_replaced"], same["rows_changed"]) == (2, 0)
    assert [s.rows for s in store.snapshots(get_settings())] == [2, 2, 2]


def test_unmatched_ads_are_reported_stored_and_matched_later(capsys: pytest.CaptureFixture[str]) -> None:
    settings = get_settings()
    store.register_variants(settings, [_variant(A)], [])
    rep = _import(capsys, "tiktok_en.csv", "tiktok")
    reasons = {u["ad_id"]: u["reason"] for u in rep["unmatched"]}
    assert reasons == {"1780000000000002": f"variant key {B} is not a registered variant",
                       "1780000000000003": "no variant key in the ad name"}
    assert len(store.daily_rows(settings)) == 3  # stored anyway, never guessed onto a variant
    assert {r.variant_key for r in store.daily_rows(settings)} == {A, B, None}
    store.register_variants(settings, [_variant(B)], [])
    assert [u["ad_id"] for u in _import(capsys, "tiktok_en.csv", "tiktok")["unmatched"]] == ["1780000000000003"]
    capsys.readouterr()
    assert main(["perf", "import", str(PERF / "meta_en.csv"), "--platform", "meta"]) == 0
    out = capsys.readouterr().out
    assert "1 unmatched ad(s)" in out and C in out


def _variant(key: str, hook: str = "clipA") -> Variant:
    return Variant(variant_key=key, ad_name=f"紫熨斗眼霜_15s_9x16_{key}", brief="侧睡纹", product="紫熨斗眼霜",
                   audience="熬夜学生", duration_s=15.0, aspect="9:16", folder=key, hook_clip_id=hook,
                   hook_source=f"{hook}.mp4")


def _shots(key: str, hook: str, tail: str) -> list[VariantShot]:
    return [VariantShot(variant_key=key, start=0.0, end=3.0, clip_id=hook, role="hook"),
            VariantShot(variant_key=key, start=3.0, end=9.0, clip_id="clipM", role="body"),
            VariantShot(variant_key=key, start=9.0, end=15.0, clip_id=tail, role="cta")]


def test_register_variants_is_idempotent() -> None:
    settings = get_settings()
    for _ in range(2):
        store.register_variants(settings, [_variant(A), _variant(B, "clipB")],
                                _shots(A, "clipA", "clipC") + _shots(B, "clipB", "clipD"))
    assert [v.variant_key for v in store.variants(settings)] == [A, B]
    assert len(store.shots(settings)) == 6 and [s.clip_id for s in store.shots(settings, [B])] == [
        "clipB", "clipM", "clipD"]


def test_report_json_shape_and_html(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    capsys.readouterr()
    assert main(["perf", "report", "--json"]) == 0
    empty = json.loads(capsys.readouterr().out)
    assert empty["hooks"] == [] and empty["snapshot"] is None and "no performance data yet" in empty["notes"][0]
    settings = get_settings()
    store.register_variants(settings, [_variant(A), _variant(B, "clipB")],
                            _shots(A, "clipA", "clipC") + _shots(B, "clipB", "clipD"))
    for name, platform in (("tiktok_en.csv", "tiktok"), ("tiktok_zh.csv", "tiktok"),
                           ("oceanengine_en.csv", "oceanengine"), ("oceanengine_api.json", "oceanengine")):
        snap = _import(capsys, name, platform)["snapshot_id"]
    page = tmp_path / "r.html"
    assert main(["perf", "report", "--json", "--html", str(page)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert {"hooks", "clips", "snapshot", "curves", "changes"} <= set(rep) and rep["snapshot"] == snap
    assert rep["hooks"] and all({"clip_id", "source", "hook_rate", "hook_rate_low", "hook_rate_high", "n_ads",
                                 "impressions"} <= set(h) for h in rep["hooks"])
    rates = [h["hook_rate"] for h in rep["hooks"]]
    assert rates == sorted(rates, reverse=True)
    assert all(h["hook_rate_low"] <= h["hook_rate"] <= h["hook_rate_high"] for h in rep["hooks"])
    top = rep["hooks"][0]
    assert (top["clip_id"], top["source"]) == ("clipA", "clipA.mp4")  # 60 % vs 49 % on TikTok's 2 s views
    assert {c["clip_id"] for c in rep["clips"]} == {"clipA", "clipB", "clipC", "clipD", "clipM"}
    curve = next(c for c in rep["curves"] if c["variant_key"] == A and c["platform"] == "tiktok")
    assert curve["plays"] == 19000 and curve["points"][0] == {"t": 0.0, "share": 1.0, "field": "plays"}
    assert [p["t"] for p in curve["points"]] == sorted(p["t"] for p in curve["points"])
    assert next(p for p in curve["points"] if p["field"] == "p100")["share"] == round(2500 / 19000, 4)
    revised = rep["changes"]["revised"]
    assert [(r["ad_id"], r["changes"]) for r in revised] == [("7310000000000001", {"conversions": [20, 26]})]
    assert rep["changes"]["new_dates"] == ["2026-11-30"] and rep["unmatched_ads"] == 1
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text and "clipA" in text
    capsys.readouterr()
    assert main(["perf", "report"]) == 0
    assert "top hooks" in capsys.readouterr().out


def test_insights_clusters_then_trends(capsys: pytest.CaptureFixture[str]) -> None:
    from cutpilot.perf.model import DailyRow
    from index.library import Library
    from tests._library_data import all_records

    recs = all_records()
    recs[0] = recs[0].model_copy(update={"trend_tags": ["熬夜党"]})
    with Library.open(get_settings()) as lib:
        lib.add(recs)
    capsys.readouterr()
    assert main(["insights", "--json", "--k-max", "4"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["clips"] == len(recs) and 1 <= res["k"] <= 4
    assert sum(c["size"] for c in res["clusters"]) == res["clips"] and all(c["name"] for c in res["clusters"])
    assert res["has_performance"] is False and "no performance data yet" in res["notes"][0]

    # two variants: the late-night hook (trend tag 熬夜党) doubles its 3 s rate in the last week, the other holds
    settings = get_settings()
    late, steady = recs[0].clip_id, recs[3].clip_id
    store.register_variants(settings, [_variant(A, late), _variant(B, steady)],
                            _shots(A, late, recs[5].clip_id) + _shots(B, steady, recs[5].clip_id))
    rows = []
    for day, rate_a in ((dt.date(2026, 11, 1), 0.3), (dt.date(2026, 11, 2), 0.3), (dt.date(2026, 11, 20), 0.6),
                        (dt.date(2026, 11, 21), 0.6)):
        for key, rate in ((A, rate_a), (B, 0.5)):
            rows.append(DailyRow(date=day, platform="oceanengine", ad_id=key, ad_name=f"x_{key}", impressions=2000,
                                 plays=1000, views_3s=round(1000 * rate), clicks=20))
    store.upsert_rows(settings, rows, platform="oceanengine", file="synthetic", sha256="0" * 64)
    assert main(["insights", "--json", "--k-max", "4", "--recent-days", "7"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["has_performance"] is True and res["as_of"] == "2026-11-21"
    tags = {t["tag"]: t for t in res["tags"]}
    assert tags["熬夜党"]["movement"] == "rising" and tags["熬夜党"]["kind"] == "trend"
    assert (tags["熬夜党"]["earlier_rate"], tags["熬夜党"]["recent_rate"]) == (0.3, 0.6)
    assert tags["抗老"]["movement"] == "steady" and tags["抗老"]["kind"] == "stable"
    ranked = [c for c in res["clusters"] if c["hook_rate"] is not None]
    assert ranked and all(c["clips_with_data"] > 0 for c in ranked)
    capsys.readouterr()
    assert main(["insights", "--k-max", "3"]) == 0
    assert "rising" in capsys.readouterr().out
