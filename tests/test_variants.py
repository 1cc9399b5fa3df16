"""Test variants worth testing: `variants: N` opens each on another distinct hook within the hard rules; every
variant gets a stable key, a platform ad name carrying it, a manifest.csv row and its shots in shots.csv, and is
registered in the performance store (so `perf import` can tie platform figures back to clips)."""

from __future__ import annotations

import csv
from pathlib import Path

from agent_fakes import PRODUCT, MemorySource, domain_records
from agent_helpers import NoVoiceTools

from agent.batch import expand, load_rows, run_batch
from agent.manifest import _name_file
from agent.state import Candidate
from agent.steps import order_candidates
from cutpilot.perf import store
from cutpilot.settings import Settings
from cutpilot.storyboard import Brief, Slot, SlotRole
from cutpilot.variantkey import make_key, parse

YAML = f"""
briefs:
  - id: wrinkle
    brief: 做一条15秒侧睡纹广告
    product: {PRODUCT}
    audiences: [学生党, 职场妈妈]
    variants: 3
"""


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def test_keys_are_short_stable_and_parsed_back() -> None:
    k = make_key("batch-abc")
    assert k == make_key("batch-abc") and k != make_key("batch-abd") and len(k) == 9 and k.startswith("CP")
    assert parse(f"紫熨斗_学生党_15s_9x16_{k}") == k and parse(f"x {k.lower()} y") == k
    assert parse("CPU usage") is None and parse("xCP1234567") is None and parse("") is None


def test_order_candidates_moves_only_within_the_list(tmp_path: Path) -> None:
    recs = domain_records()
    cands = [Candidate(clip=r, score=0.9 - i / 20, relevance=0.9 - i / 20) for i, r in enumerate(recs)]
    hook = Slot(index=0, role=SlotRole.hook, target_s=2.0)
    cta = Slot(index=3, role=SlotRole.offer_cta, target_s=2.0)
    b0, b2 = Brief(text="x"), Brief(text="x", variant=2)
    assert order_candidates(cands, hook, b0, 4) == cands
    moved = order_candidates(cands, hook, b2, 4)
    assert moved[0] is cands[2] and moved[-2:] == cands[:2]
    assert sorted(id(c) for c in moved) == sorted(id(c) for c in cands)
    assert order_candidates(cands, cta, b2, 4) == cands  # the offer keeps its best shot
    assert order_candidates(cands[:1], hook, b2, 4) == cands[:1]


def test_variants_matrix_manifest_and_registration(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(YAML, encoding="utf-8")
    vs = expand(load_rows(tmp_path / "b.yaml"))
    assert [v.key for v in vs][:3] == ["wrinkle__学生党__t1", "wrinkle__学生党__t2", "wrinkle__学生党__t3"]
    assert [v.base.get("variant", 0) for v in vs] == [0, 1, 2, 0, 1, 2]
    s = Settings(home=tmp_path / "home")
    src = MemorySource(domain_records())
    out = tmp_path / "out"
    summary = run_batch(tmp_path / "b.yaml", settings=s, library=src, out_dir=out, render=False, progress=False,
                        tools=NoVoiceTools(s))
    assert summary["ok"] == 6, summary
    rows = _rows(out / "manifest.csv")
    assert len(rows) == 6 and {"variant_key", "ad_name", "brief", "duration_s", "aspect", "folder",
                               "hook_clip_id", "hook_source"} <= set(rows[0])
    keys = [r["variant_key"] for r in rows]
    assert len(set(keys)) == 6 and all(parse(r["ad_name"]) == r["variant_key"] for r in rows)
    assert all((out / r["folder"] / "storyboard.json").is_file() for r in rows)
    # the test variants of one audience open on different hooks
    for aud in ("学生党", "职场妈妈"):
        hooks = [r["hook_clip_id"] for r in rows if r["audience"] == aud]
        assert len(set(hooks)) == 3, hooks
    shots = _rows(out / "shots.csv")
    assert {r["variant_key"] for r in shots} == set(keys)
    assert all(float(r["end"]) > float(r["start"]) and r["clip_id"] and r["role"] for r in shots)
    # registered for `perf import`, and a re-run gives the same keys (skipped variants keep theirs)
    assert {v.variant_key for v in store.variants(s)} == set(keys)
    assert len(store.shots(s, keys)) == len(shots)
    again = run_batch(tmp_path / "b.yaml", settings=s, library=src, out_dir=out, render=False, progress=False,
                      tools=NoVoiceTools(s))
    assert again["skipped"] == 6 and [r["variant_key"] for r in _rows(out / "manifest.csv")] == keys


def test_the_uploaded_file_carries_the_key(tmp_path: Path) -> None:
    vdir = tmp_path / "v"
    vdir.mkdir()
    (vdir / "ad.mp4").write_bytes(b"mp4")
    (vdir / "old_CP1111111.mp4").write_bytes(b"old")
    name = _name_file(vdir, "LEGO_kids_15s_9x16_CP2222222")
    assert name == "LEGO_kids_15s_9x16_CP2222222.mp4" and (vdir / name).read_bytes() == b"mp4"
    assert not (vdir / "old_CP1111111.mp4").exists()
    assert _name_file(vdir, "LEGO_kids_15s_9x16_CP2222222") == name  # idempotent


def test_audiences_the_library_cannot_tell_apart_are_said_to_be_the_same(tmp_path: Path) -> None:
    """Two audiences no profile knows, in another language than the ad (so not even named in it): the ads come out
    the same, and both storyboards say so instead of pretending to be 千人千面 (test variants likewise)."""
    import json

    (tmp_path / "b.yaml").write_text(f"""
briefs:
  - id: same
    brief: make a 15s side-sleep wrinkle ad
    product: {PRODUCT}
    lang: en
    audiences: [火星人, 金星人]
""", encoding="utf-8")
    s = Settings(home=tmp_path / "home")
    summary = run_batch(tmp_path / "b.yaml", settings=s, library=MemorySource(domain_records()),
                        out_dir=tmp_path / "out", render=False, progress=False, tools=NoVoiceTools(s))
    assert summary["identical"] == [["same__火星人", "same__金星人"]]
    for k in ("same__火星人", "same__金星人"):
        notes = json.loads((tmp_path / "out" / k / "storyboard.json").read_text(encoding="utf-8"))["notes"]
        assert any("offers nothing that differs" in n for n in notes), notes


def test_a_bad_variants_count_is_one_line_naming_the_row(tmp_path: Path) -> None:
    import pytest

    from cutpilot.errors import InputError

    for bad in ("0", "21", "three"):
        (tmp_path / "b.yaml").write_text(f"briefs:\n  - brief: make a 15s ad\n    variants: {bad}\n",
                                         encoding="utf-8")
        with pytest.raises(InputError, match=r"b\.yaml row 1: variants"):
            load_rows(tmp_path / "b.yaml")
