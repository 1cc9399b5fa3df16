"""Performance-data benchmark: import 100k daily rows (an Ocean Engine export through its adapter into the SQLite
store) and compute credit over them, each against a naive baseline in the same run.

- import: `store.import_file` (adapter parse + validation + upsert with revisions) vs the floor of a bare
  `csv.reader` + one `executemany` into a plain table (what any import must at least do);
- credit: `compute_credit` (one pass over the rows into per-variant totals, then per-clip posteriors, the hold
  ridge and the element credit) vs the naive loop a pandas-free script would write: for each clip, scan every
  row, look the variant's shots up, add the clip's hook share of the decayed counts. The naive loop runs on a
  sample of clips and is extrapolated to all (it is O(clips × rows)); its counts are checked against credit's.

    .venv/bin/python benchmarks/perf.py                    # 100k rows (2000 variants × 50 days), 400 clips
    .venv/bin/python benchmarks/perf.py --rows 20000 --clips 100
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _figures(n_rows: int, n_variants: int, n_clips: int, seed: int) -> tuple[list[dict[str, object]], dict, dict]:
    from cutpilot.variantkey import make_key

    rng = np.random.default_rng(seed)
    keys = [make_key(f"bench:{i}") for i in range(n_variants)]
    clips = [f"clip-{i:04d}" for i in range(n_clips)]
    layouts: dict[str, list[tuple[float, float, str]]] = {}
    for k in keys:
        t, shots = 0.0, []
        for c in rng.choice(clips, size=5, replace=False):
            d = float(rng.uniform(2.5, 4.0))
            shots.append((round(t, 3), round(t + d, 3), str(c)))
            t += d
        layouts[k] = shots
    days = -(-n_rows // n_variants)
    start = dt.date(2026, 9, 1)
    figs: list[dict[str, object]] = []
    for d in range(days):
        day = (start + dt.timedelta(days=d)).isoformat()
        imps = rng.integers(200, 20000, size=n_variants)
        for i, k in enumerate(keys):
            if len(figs) >= n_rows:
                break
            n = int(imps[i])
            plays = int(n * 0.7)
            v2 = int(plays * rng.uniform(0.3, 0.7))
            v3 = int(v2 * 0.85)
            dur = layouts[k][-1][1]
            p25, p50, p75, p100 = (int(v3 * f) for f in (0.8, 0.55, 0.4, 0.3))
            figs.append({"key": k, "ad_id": str(10_000_000 + i), "ad_name": f"bench_{round(dur)}s_{k}", "date": day,
                         "impressions": n, "spend": round(n * 0.03, 2), "plays": plays, "v2": v2, "v3": v3,
                         "v5": int(v3 * 0.9), "v6": None, "v10": int(v3 * 0.6) if dur >= 10 else None,
                         "p25": p25, "p50": p50, "p75": p75, "p100": p100, "avg": 6.5,
                         "clicks": int(n * 0.01), "conv": int(n * 0.001), "revenue": 0.0})
    return figs, layouts, {k: layouts[k][-1][1] for k in keys}


def _timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """(result, wall seconds, CPU seconds of this process): CPU time keeps ratios honest on a shared machine."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def _floor_import(data: bytes, db: Path) -> None:
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    header = next(reader)
    conn = sqlite3.connect(db)
    conn.execute(f"CREATE TABLE t ({', '.join(f'c{i}' for i in range(len(header)))})")
    conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(header))})", reader)
    conn.commit()
    conn.close()


def _naive_hook(rows: list, layouts: dict, clips: list[str], as_of: dt.date) -> dict[str, tuple[float, float]]:
    out = {}
    for clip in clips:
        s = n = 0.0
        for r in rows:
            lay = layouts.get(r.variant_key)
            if lay is None or r.plays is None or r.views_3s is None:
                continue
            w = 0.5 ** ((as_of - r.date).days / 7.0)
            for start, end, c in lay:
                if c == clip and start < 2.0:
                    share = (min(end, 2.0) - start) / 2.0
                    s += share * w * min(r.views_3s, r.plays)
                    n += share * w * r.plays
        out[clip] = (s, n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--variants", type=int, default=2000)
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--naive-sample", type=int, default=10, help="clips the naive loop runs on (extrapolated)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from cutpilot.perf import credit, store
    from cutpilot.perf.model import Variant, VariantShot
    from cutpilot.settings import Settings
    from evals.perf.sim import export_csv

    figs, layouts, durations = _figures(args.rows, args.variants, args.clips, args.seed)
    data = export_csv("oceanengine", figs)
    tmp = Path(tempfile.mkdtemp(prefix="bench-perf-"))
    path = tmp / "oceanengine.csv"
    path.write_bytes(data)
    settings = Settings(home=tmp / "home")
    shots = [VariantShot(variant_key=k, start=s, end=e, clip_id=c, role="") for k, lay in layouts.items()
             for s, e, c in lay]
    store.register_variants(settings, [Variant(variant_key=k, ad_name=f"bench_{k}", duration_s=d)
                                       for k, d in durations.items()], shots)
    print(f"perf benchmark: {len(figs)} daily rows, {len(layouts)} variants, {args.clips} clips, "
          f"{len(data) / 1e6:.1f} MB CSV")

    rep, w_import, c_import = _timed(lambda: store.import_file(settings, path, "oceanengine"))
    _, w_floor, c_floor = _timed(lambda: _floor_import(data, tmp / "floor.sqlite"))
    print("  (wall s / CPU s; ratios on CPU time)")
    print(f"  import   {w_import:7.2f} / {c_import:6.2f}  ({rep.rows_upserted / c_import:,.0f} rows per CPU s, "
          f"{len(rep.unmatched)} unmatched)   floor csv+executemany {w_floor:.2f} / {c_floor:.2f}   "
          f"ratio {c_import / c_floor:.1f}x")
    rows, w_read, c_read = _timed(lambda: store.daily_rows(settings))
    report, w_credit, c_credit = _timed(
        lambda: credit.compute_credit(rows, shots, durations=durations, snapshot=rep.snapshot_id))
    print(f"  read     {w_read:7.2f} / {c_read:6.2f}  (store → DailyRow)")
    print(f"  credit   {w_credit:7.2f} / {c_credit:6.2f}  ({len(report.clips)} clip credits, hook + hold + clicks)")

    as_of = max(r.date for r in rows)
    sample = sorted(layouts[k][0][2] for k in list(layouts)[: args.naive_sample])
    sample = list(dict.fromkeys(sample))
    naive, w_naive, c_naive = _timed(lambda: _naive_hook(rows, layouts, sample, as_of))
    w_naive, c_naive = w_naive / len(sample) * args.clips, c_naive / len(sample) * args.clips
    totals = credit.aggregate(rows, durations, as_of=as_of)
    counts = credit.hook_counts(totals.values(), layouts, ("views_3s", "plays"))
    for c in sample:
        assert abs(counts[c].trials - naive[c][1]) < 1e-6 * max(1.0, naive[c][1]), c
        assert abs(counts[c].successes - naive[c][0]) < 1e-6 * max(1.0, naive[c][0]), c
    print(f"  naive    {w_naive:7.2f} / {c_naive:6.2f}  (per-clip scan of every row, extrapolated from "
          f"{len(sample)} clips; hook counts agree)   ratio naive/credit {c_naive / c_credit:.1f}x")


if __name__ == "__main__":
    main()
