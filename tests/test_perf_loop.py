"""T+1 closed: variants go out with keys, the platform's export comes back through `perf import`, and the next
edit's search ranks the hook that held viewers higher — never past a hard filter, and not at all with --no-perf."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from agent_fakes import PRODUCT, MemorySource, domain_records
from agent_helpers import NoVoiceTools

from agent.batch import run_batch
from agent.run import FrontDoor
from cutpilot.models import ClipRecord, clip_id_for
from cutpilot.perf import store
from cutpilot.settings import Settings

YAML = f"""
briefs:
  - id: w
    brief: 做一条15秒侧睡纹广告
    product: {PRODUCT}
    variants: 3
"""
HEADER = ("stat_time_day,ad_id,ad_name,impressions,clicks,spend,video_play_actions,video_watched_2s,"
          "video_watched_6s,video_views_p25,video_views_p50,video_views_p75,video_views_p100,average_video_play,"
          "conversion")


def _manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _hook(r: object) -> str | None:
    sb = r.storyboard  # type: ignore[attr-defined]
    return sb.slots[0].chosen.clip_id if sb.slots[0].chosen else None


def test_an_import_changes_the_next_hook_and_never_a_hard_filter(tmp_path: Path) -> None:
    rival = ClipRecord(clip_id=clip_id_for("rival", 0, 3), source="/nonexistent/rival.mp4", source_hash="rival",
                       start=0.0, end=3.0, language="zh", transcript="侧睡纹 熬夜", description="另一个品牌的眼霜",
                       content_type="pain point", format="live action", product="别家眼霜", label_source="human")
    src = MemorySource(domain_records(extra=[rival]))
    s = Settings(home=tmp_path / "home", perf_weight=0.2)  # a team that trusts its data: w = 0.2
    (tmp_path / "b.yaml").write_text(YAML, encoding="utf-8")
    out = tmp_path / "out"
    summary = run_batch(tmp_path / "b.yaml", settings=s, library=src, out_dir=out, render=False, progress=False,
                        tools=NoVoiceTools(s))
    assert summary["ok"] == 3
    rows = _manifest(out)
    top = rows[0]  # variant 1 opened on the search's best hook; variant 2 on the runner-up
    third = rows[1]
    assert top["hook_clip_id"] != third["hook_clip_id"]
    # the platform says: variant 2's hook holds viewers, variant 1's loses them in two seconds
    lines = [HEADER]
    for day in ("2026-11-28", "2026-11-29"):
        lines.append(f"{day},1,{top['ad_name']},20000,40,50,16000,3200,1600,2400,1200,600,300,2.1,1")
        lines.append(f"{day},3,{third['ad_name']},20000,400,50,16000,12800,9600,11000,9000,7000,5200,9.4,30")
        lines.append(f"{day},9,rival_CP{'7' * 7},20000,900,50,16000,15900,15000,15000,14000,13000,12000,12.0,90")
    export = tmp_path / "tiktok.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rep = store.import_file(s, export, "tiktok")
    assert rep.rows_upserted == 6 and any(u.ad_name.startswith("rival") for u in rep.unmatched)
    # a registered rival variant whose hook is another product's clip, performing best of all
    from cutpilot.perf.model import Variant, VariantShot

    store.register_variants(s, [Variant(variant_key="CP" + "7" * 7, ad_name=f"rival_CP{'7' * 7}",
                                        product="别家眼霜", duration_s=15.0, aspect="9:16")],
                            [VariantShot(variant_key="CP" + "7" * 7, start=0, end=3, clip_id=rival.clip_id,
                                         role="hook")])
    rep2 = store.import_file(s, export, "tiktok")  # a re-pull: rows replaced, the rival now matched
    assert rep2.rows_replaced == 6
    # the credit is stored on each clip, per platform, for `cutpilot clips show`
    from index.cli_library import _credit_line

    good, bad = (store.clip_credit(s, r["hook_clip_id"]) for r in (third, top))
    assert [c["platform"] for c in good] == ["tiktok"] and good[0]["snapshot"] == rep2.snapshot_id
    assert good[0]["hook_rate"] > bad[0]["hook_rate"]
    assert _credit_line(good[0]).startswith("hook ") and "2 ads" not in _credit_line(bad[0])

    with FrontDoor(s, src, tools=NoVoiceTools(s)) as door:
        learned = door.make("做一条15秒侧睡纹广告", out_dir=tmp_path / "next", render=False)
    assert _hook(learned) == third["hook_clip_id"], "the hook that held viewers should lead the next edit"
    assert _hook(learned) != rival.clip_id  # another product's clip stays out, however well it did
    assert all(sl.chosen is None or src.get(sl.chosen.clip_id).product == PRODUCT for sl in learned.storyboard.slots)
    ranking = json.loads((tmp_path / "next" / "run.json").read_text(encoding="utf-8"))["ranking"]
    assert ranking["snapshot"] == store.latest_snapshot(s) and ranking["mode"] == "mean"

    off = s.model_copy(update={"perf": False})
    with FrontDoor(off, src, tools=NoVoiceTools(off)) as door:
        plain = door.make("做一条15秒侧睡纹广告", out_dir=tmp_path / "plain", render=False)
    assert _hook(plain) == top["hook_clip_id"]
    assert json.loads((tmp_path / "plain" / "run.json").read_text(encoding="utf-8"))["ranking"] is None
