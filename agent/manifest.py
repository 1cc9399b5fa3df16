"""The batch's hand-off to ad platforms: a variant key per rendered variant, `manifest.csv` (one row per variant,
with the suggested platform ad name that carries the key) and `shots.csv` (which clip was on screen when), both
also registered in the home's performance store so `cutpilot perf import` can tie platform figures back to clips.

Audience variants that came out identical are said so in their storyboards: the library offered nothing to
differ on (千人千面 needs footage that differs, not only a label).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from cutpilot.atomic import write_text
from cutpilot.perf.model import Variant as PerfVariant
from cutpilot.perf.model import VariantShot
from cutpilot.settings import Settings
from cutpilot.storyboard import Storyboard
from cutpilot.timeline import Timeline
from cutpilot.variantkey import ad_name, make_key

MANIFEST_COLUMNS = ("variant_key", "ad_name", "brief", "duration_s", "aspect", "folder", "hook_clip_id",
                    "hook_source", "product", "audience", "channel", "test", "file")
SHOT_COLUMNS = ("variant_key", "start", "end", "clip_id", "role")


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return "\ufeff" + buf.getvalue()  # a BOM: spreadsheet apps then read Chinese names correctly


def _load(vdir: Path) -> tuple[Storyboard, Timeline] | None:
    try:
        sb = Storyboard.model_validate_json((vdir / "storyboard.json").read_text(encoding="utf-8"))
        tl = Timeline.load(vdir / "timeline.json")
    except (OSError, ValueError):
        return None
    return sb, tl


def shots_of(key: str, sb: Storyboard, tl: Timeline) -> list[VariantShot]:
    """Each video item's on-screen range with the library clip it shows (generated shots by their clip id)."""
    out = []
    for v in tl.video:
        slot = sb.slots[v.slot] if v.slot is not None and 0 <= v.slot < len(sb.slots) else None
        cid = getattr(v, "clip_id", None)
        if slot is not None and slot.chosen is not None:
            cid = cid or slot.chosen.clip_id
        if slot is not None and cid is None and slot.asset is not None:
            cid = slot.asset.params.get("clip_id")
        if not cid:
            continue
        out.append(VariantShot(variant_key=key, start=v.start_ms / 1000, end=(v.start_ms + v.duration_ms) / 1000,
                               clip_id=str(cid), role=slot.role.value if slot is not None else ""))
    return out


def _name_file(vdir: Path, name: str) -> str | None:
    """`<ad name>.mp4` beside ad.mp4 (a hard link: no copy), so the file a marketer uploads carries the key."""
    ad = vdir / "ad.mp4"
    if not ad.is_file():
        return None
    target = vdir / f"{name}.mp4"
    for old in vdir.glob("*_CP*.mp4"):
        if old != target:
            old.unlink(missing_ok=True)
    try:
        if target.exists() and os.path.samefile(target, ad):
            return target.name
        tmp = vdir / f".tmp-{os.getpid()}-{target.name}"
        tmp.unlink(missing_ok=True)
        try:
            os.link(ad, tmp)
        except OSError:
            import shutil

            shutil.copyfile(ad, tmp)
        tmp.replace(target)
    except OSError:
        return None
    return target.name


def _signature(sb: Storyboard) -> str:
    return json.dumps([sb.music_mood, *((s.chosen.clip_id if s.chosen else (s.asset.path if s.asset else None),
                                        s.chosen.start if s.chosen else None, s.line) for s in sb.slots)],
                      ensure_ascii=False)


def write_manifest(out_dir: Path, variants: list[Any], results: list[dict[str, Any]], settings: Settings
                   ) -> dict[str, Any]:
    """manifest.csv + shots.csv for every variant made or kept; registered in the performance store. Returns
    {"manifest", "shots", "variants", "same": [[folder, folder], ...]}."""
    by_key = {v.key: v for v in variants}
    rows: list[dict[str, Any]] = []
    all_shots: list[VariantShot] = []
    perf_rows: list[PerfVariant] = []
    groups: dict[tuple[Any, ...], dict[str, list[str]]] = {}
    loaded: dict[str, Storyboard] = {}
    for res in results:
        if res.get("status") not in ("ok", "skipped") or res["key"] not in by_key:
            continue
        v = by_key[res["key"]]
        vdir = Path(res["out_dir"])
        got = _load(vdir)
        if got is None:
            continue
        sb, tl = got
        loaded[v.key] = sb
        key = make_key(str(res.get("thread_id") or v.key))
        b = sb.brief
        name = ad_name(key, product=b.product, audience=b.audience, duration_s=tl.duration_ms / 1000,
                       aspect=b.aspect)
        res["variant_key"], res["ad_name"] = key, name
        file = _name_file(vdir, name)
        shots = shots_of(key, sb, tl)
        hook = next((x for x in shots if x.role == "hook"), shots[0] if shots else None)
        hook_slot = sb.slots[0] if sb.slots else None
        hook_source = None
        if hook_slot is not None:
            hook_source = (hook_slot.chosen.source if hook_slot.chosen else None) or \
                (hook_slot.asset.path if hook_slot.asset else None)
        folder = os.path.relpath(vdir.resolve(), out_dir.resolve())
        rows.append({"variant_key": key, "ad_name": name, "brief": v.text or b.text, "duration_s":
                     round(tl.duration_ms / 1000, 2), "aspect": b.aspect, "folder": folder,
                     "hook_clip_id": hook.clip_id if hook else None, "hook_source": hook_source,
                     "product": b.product, "audience": b.audience, "channel": b.channel or b.platform,
                     "test": v.test + 1, "file": file})
        all_shots += shots
        perf_rows.append(PerfVariant(variant_key=key, ad_name=name, brief=v.text or b.text, product=b.product,
                                     audience=b.audience, platform=b.channel or b.platform,
                                     duration_s=round(tl.duration_ms / 1000, 2), aspect=b.aspect, folder=folder,
                                     hook_clip_id=hook.clip_id if hook else None, hook_source=hook_source))
        cell = (v.row, b.aspect, b.channel, b.duration_s)  # audiences and test variants of one brief
        groups.setdefault(cell, {}).setdefault(_signature(sb), []).append(v.key)
    same = [keys for cell in groups.values() for keys in cell.values() if len(keys) > 1]
    for keys in same:
        for k in keys:
            sb = loaded[k]
            others = ", ".join(x for x in keys if x != k)
            note = (f"same shots, lines and music as {others}: the library offers nothing that differs for "
                    "these variants (add footage of the product, or per-audience points in the product facts)")
            if note not in sb.notes:
                res = next(r for r in results if r["key"] == k)
                sb = sb.model_copy(update={"notes": [*sb.notes, note]})
                write_text(Path(res["out_dir"]) / "storyboard.json", sb.model_dump_json(indent=2))
                res.setdefault("warnings", []).append(note)
    write_text(out_dir / "manifest.csv", _csv(rows, MANIFEST_COLUMNS))
    write_text(out_dir / "shots.csv", _csv([s.model_dump() for s in all_shots], SHOT_COLUMNS))
    if perf_rows:
        from cutpilot.perf.store import register_variants

        register_variants(settings, perf_rows, all_shots)
    return {"manifest": str(out_dir / "manifest.csv"), "shots": str(out_dir / "shots.csv"),
            "variants": len(rows), "same": same}
