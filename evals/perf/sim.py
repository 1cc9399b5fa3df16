"""A seeded ad-delivery simulator with a known truth, for the credit and ranking code.

Every clip has a latent hook effect (logit of the 2 s view rate), hold effect (log hazard of leaving per second
after the hook) and click effect (logit of the click-through rate); content type and product share a group offset
of the hook, which is what the pooled prior is for. Variants are a hook clip plus body clips of one product.
Delivery is confounded the way ad platforms do it: each day a platform spreads its impressions over the live
variants by its own noisy read of their quality, so good variants get most of the spend and bad ones few
impressions. Each day's figures are written as that platform's export (its own column names, Chinese headers for
Qianchuan, ratios for Kuaishou) and read back through `cutpilot.perf.adapters`, so the adapters are on the path.

Clip ids are the golden library's keys (evals/golden/library.yaml: ids, products and content types, no media
build) plus synthetic clips of the same products and types, so each product has a pool worth ranking.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cutpilot.perf.adapters import parse_file
from cutpilot.perf.model import DailyRow, VariantShot
from cutpilot.variantkey import make_key

PLATFORMS = ("tiktok", "meta", "oceanengine", "qianchuan", "kuaishou")
START = dt.date(2026, 11, 1)
ELEMENTS = {
    "hook_type": ("question", "claim", "demo"),
    "cta": ("buy_now", "limited_offer", "learn_more"),
    "voice": ("female", "male", "clip_audio"),
    "music": ("upbeat", "calm"),
    "format": ("9:16",),
}
POOL = 16  # clips per product (golden ones first, synthetic to fill)
BODY_SHOTS = 4
P3_GIVEN_2 = 0.85  # of the viewers at 2 s, the share still there at 3 s
HAZARD = 0.06  # baseline per-second hazard of leaving after the hook
PLAY_RATE = 0.7
BASE_CTR = 0.012
BASE_CVR = 0.08
_BASE_HOOK = {"tiktok": 0.1, "meta": -0.2, "oceanengine": 0.2, "qianchuan": 0.0, "kuaishou": 0.3}


@dataclass
class SimClip:
    clip_id: str
    product: str
    content_type: str
    seconds: float
    hook: float  # logit effect on the 2 s view rate
    hold: float  # log-hazard effect per second on screen (the true hold effect is −hold: lower hazard holds)
    click: float  # logit effect on click-through, by share of screen time
    relevance: float  # semantic relevance to the product's brief


@dataclass
class SimVariant:
    key: str
    product: str
    shots: list[tuple[float, float, str]]  # (start, end, clip id)
    meta: dict[str, str]

    @property
    def duration(self) -> float:
        return self.shots[-1][1]


@dataclass
class World:
    clips: dict[str, SimClip]
    element_effects: dict[tuple[str, str], float]
    rng: np.random.Generator
    variants: dict[str, SimVariant] = field(default_factory=dict)

    def by_product(self) -> dict[str, list[SimClip]]:
        out: dict[str, list[SimClip]] = {}
        for c in self.clips.values():
            out.setdefault(c.product, []).append(c)
        return out


@functools.cache
def golden_clips() -> tuple[tuple[str, str, str, float], ...]:
    """(key, product, content type, seconds) of the golden library's product clips (spec only, no media)."""
    from evals.golden import load_spec

    out = []
    for c in load_spec().clips:
        if c.product is None or c.hard_case:
            continue
        out.append((c.key, c.product, c.content_type, float(c.media.seconds or 4.0)))
    return tuple(out)


def make_world(seed: int = 0, pool: int = POOL) -> World:
    """The library with its latent truth: golden product clips (products with at least 4), topped up to `pool`
    clips per product with synthetic ones of the same content types."""
    rng = np.random.default_rng(seed)
    gold = golden_clips()
    products: dict[str, list[tuple[str, str, str, float]]] = {}
    for item in gold:
        products.setdefault(item[1], []).append(item)
    clips: dict[str, SimClip] = {}
    group: dict[tuple[str, str], float] = {}
    for product, items in sorted(products.items()):
        if len(items) < 4:
            continue
        types = sorted({it[2] for it in items})
        items = list(items)
        i = 0
        while len(items) < pool:
            items.append((f"{product}-syn-{i:02d}", product, types[i % len(types)], float(rng.uniform(3.0, 7.0))))
            i += 1
        for key, prod, ctype, secs in items:
            g = group.setdefault((ctype, prod), float(rng.normal(0.0, 0.3)))
            clips[key] = SimClip(key, prod, ctype, secs, hook=g + float(rng.normal(0.0, 0.45)),
                                 hold=float(rng.normal(0.0, 0.35)), click=float(rng.normal(0.0, 0.3)),
                                 relevance=float(rng.uniform(0.35, 0.65)))
    effects = {(el, v): float(rng.normal(0.0, 0.2)) for el, vals in ELEMENTS.items() for v in vals}
    return World(clips, effects, rng)


def add_clip(world: World, clip_id: str, product: str, content_type: str) -> SimClip:
    """New footage arriving mid-test (no data yet)."""
    rng = world.rng
    c = SimClip(clip_id, product, content_type, float(rng.uniform(3.0, 7.0)), hook=float(rng.normal(0.0, 0.55)),
                hold=float(rng.normal(0.0, 0.35)), click=float(rng.normal(0.0, 0.3)),
                relevance=float(rng.uniform(0.35, 0.65)))
    world.clips[clip_id] = c
    return c


def assemble(world: World, hook: str, body: Sequence[str], tag: str, meta: dict[str, str] | None = None
             ) -> SimVariant:
    """A variant: the hook clip then the body clips, each shot 2.5-4 s of its clip."""
    t = 0.0
    shots = []
    for cid in (hook, *body):
        secs = min(max(world.clips[cid].seconds, 2.5), 4.0)
        shots.append((round(t, 3), round(t + secs, 3), cid))
        t += secs
    if meta is None:
        meta = {el: str(world.rng.choice(vals)) for el, vals in ELEMENTS.items()}
    v = SimVariant(make_key(f"sim:{tag}"), world.clips[hook].product, shots, meta)
    world.variants[v.key] = v
    return v


def shots_of(variants: Sequence[SimVariant]) -> list[VariantShot]:
    return [VariantShot(variant_key=v.key, start=s, end=e, clip_id=c, role="hook" if i == 0 else "body")
            for v in variants for i, (s, e, c) in enumerate(v.shots)]


# --- truth -----------------------------------------------------------------------------------------------------
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def true_p2(world: World, v: SimVariant, platform: str) -> float:
    """2 s view rate: the clips in the first 2 s, by share."""
    secs: dict[str, Any] = {}
    for s, e, c in v.shots:
        o = min(e, 2.0) - s
        if o > 0:
            secs[c] = secs.get(c, 0.0) + o
    total = sum(secs.values())
    return _sigmoid(_BASE_HOOK[platform] + sum(world.clips[c].hook * o / total for c, o in secs.items()))


def true_hook_rate(world: World, clip_id: str, platform: str = "oceanengine") -> float:
    """The 3 s view rate a variant opening on this clip gets."""
    return P3_GIVEN_2 * _sigmoid(_BASE_HOOK[platform] + world.clips[clip_id].hook)


def true_ctr(world: World, v: SimVariant) -> float:
    d = v.duration
    x = math.log(BASE_CTR / (1 - BASE_CTR))
    x += sum(world.clips[c].click * (e - s) / d for s, e, c in v.shots)
    x += sum(world.element_effects.get((el, val), 0.0) for el, val in v.meta.items())
    return _sigmoid(x)


def _survival(world: World, v: SimVariant, t: float) -> float:
    """Share of the 3 s viewers still watching at t (≥ 3 s)."""
    acc = 0.0
    for s, e, c in v.shots:
        o = min(e, t) - max(s, 3.0)
        if o > 0:
            acc += HAZARD * math.exp(world.clips[c].hold) * o
    return math.exp(-acc)


def quality(world: World, v: SimVariant) -> float:
    """What the platform's delivery optimises (it sees engagement, not clips): 3 s rate and click-through."""
    return 4.0 * true_p2(world, v, "oceanengine") + 60.0 * true_ctr(world, v)


# --- delivery and exports --------------------------------------------------------------------------------------
def deliver(world: World, live: Sequence[SimVariant], platform: str, day: dt.date, impressions: int,
            rng: np.random.Generator) -> list[dict[str, Any]]:
    """One day's figures per live variant; impressions follow the platform's noisy read of quality."""
    if not live:
        return []
    q = np.array([quality(world, v) for v in live])
    q = (q - q.mean()) / (q.std() + 1e-9)
    read = q + rng.normal(0.0, 0.5, size=q.size)
    w = np.exp(1.2 * read)
    pi = 0.8 * w / w.sum() + 0.2 / len(live)
    imps = rng.multinomial(impressions, pi)
    out = []
    for v, n in zip(live, imps, strict=True):
        n = int(n)
        plays = int(rng.binomial(n, PLAY_RATE))
        v2 = int(rng.binomial(plays, true_p2(world, v, platform)))
        v3 = int(rng.binomial(v2, P3_GIVEN_2))
        d = v.duration
        times = sorted({5.0, 6.0, 10.0, d / 4, d / 2, 3 * d / 4, d})
        counts: dict[float, int] = {}
        prev_n, prev_s = v3, 1.0
        for t in times:
            if t <= 3.0:
                continue
            s = _survival(world, v, min(t, d))
            nxt = int(rng.binomial(prev_n, min(1.0, s / prev_s))) if prev_n > 0 else 0
            counts[t] = nxt
            prev_n, prev_s = nxt, s
        clicks = int(rng.binomial(n, true_ctr(world, v)))
        conv = int(rng.binomial(clicks, BASE_CVR))
        cpm = float(rng.uniform(20.0, 40.0))
        watched = (2.0 * v2 + 1.0 * v3 + sum(counts.values()) * d / 8) / max(plays, 1)
        out.append({
            "key": v.key, "ad_id": str(1_700_000_000 + int.from_bytes(v.key.encode()[2:6], "big") % 10_000_000),
            "ad_name": f"{v.product}_{round(d)}s_9x16_{v.key}", "date": day.isoformat(), "impressions": n,
            "spend": round(n * cpm / 1000.0, 2), "plays": plays, "v2": v2, "v3": v3,
            "v5": counts[5.0] if d >= 5 else None, "v6": counts[6.0] if d >= 6 else None,
            "v10": counts[10.0] if d >= 10 else None, "p25": counts[d / 4], "p50": counts[d / 2],
            "p75": counts[3 * d / 4], "p100": counts[d], "avg": round(min(watched, d), 2), "clicks": clicks,
            "conv": conv, "revenue": round(conv * 99.0, 2),
        })
    return out


def _ratio(a: float | None, b: float) -> str:
    return "" if a is None or b <= 0 else f"{a / b:.4f}"


def export_csv(platform: str, figures: Sequence[dict[str, Any]]) -> bytes:
    """The day's figures in the platform's own export columns."""
    cols: list[tuple[str, object]]
    rows = []
    for f in figures:
        g = f.get
        if platform == "tiktok":
            cols = [("stat_time_day", g("date")), ("ad_id", g("ad_id")), ("ad_name", g("ad_name")),
                    ("impressions", g("impressions")), ("clicks", g("clicks")), ("spend", g("spend")),
                    ("video_play_actions", g("plays")), ("video_watched_2s", g("v2")),
                    ("video_watched_6s", g("v6")), ("video_views_p25", g("p25")), ("video_views_p50", g("p50")),
                    ("video_views_p75", g("p75")), ("video_views_p100", g("p100")),
                    ("average_video_play", g("avg")), ("conversion", g("conv"))]
        elif platform == "meta":
            cols = [("date_start", g("date")), ("ad_id", g("ad_id")), ("ad_name", g("ad_name")),
                    ("impressions", g("impressions")), ("clicks", g("clicks")), ("spend", g("spend")),
                    ("video_play_actions", g("plays")), ("video_continuous_2_sec_watched_actions", g("v2")),
                    ("video_p25_watched_actions", g("p25")), ("video_p50_watched_actions", g("p50")),
                    ("video_p75_watched_actions", g("p75")), ("video_p100_watched_actions", g("p100")),
                    ("video_avg_time_watched_actions", g("avg")), ("actions:omni_purchase", g("conv"))]
        elif platform == "oceanengine":
            cols = [("stat_datetime", g("date")), ("ad_id", g("ad_id")), ("ad_name", g("ad_name")),
                    ("show_cnt", g("impressions")), ("click_cnt", g("clicks")), ("stat_cost", g("spend")),
                    ("total_play", g("plays")), ("play_duration_2s", g("v2")), ("play_duration_3s", g("v3")),
                    ("play_duration_5s", g("v5")), ("play_duration_10s", g("v10")),
                    ("play_25_feed_break", g("p25")), ("play_50_feed_break", g("p50")),
                    ("play_75_feed_break", g("p75")), ("play_over", g("p100")),
                    ("average_play_time_per_play", g("avg")), ("convert_cnt", g("conv"))]
        elif platform == "qianchuan":  # the console's Chinese headers
            cols = [("日期", g("date")), ("计划id", g("ad_id")), ("计划名称", g("ad_name")),
                    ("展示次数", g("impressions")), ("点击次数", g("clicks")), ("消耗", g("spend")),
                    ("播放数", g("plays")), ("3秒播放数", g("v3")), ("25%进度播放数", g("p25")),
                    ("50%进度播放数", g("p50")), ("75%进度播放数", g("p75")), ("播放完成数", g("p100")),
                    ("成交订单数", g("conv")), ("成交金额", g("revenue"))]
        elif platform == "kuaishou":  # counts for 3 s, ratios for the rest (plays derived by the adapter)
            plays = float(g("plays") or 0)
            cols = [("stat_date", g("date")), ("creative_id", g("ad_id")), ("creative_name", g("ad_name")),
                    ("show", g("impressions")), ("photo_click", g("clicks")), ("charge", g("spend")),
                    ("played_three_seconds", g("v3")), ("play_3s_ratio", _ratio(g("v3"), plays)),
                    ("play_5s_ratio", _ratio(g("v5"), plays)), ("play_end_ratio", _ratio(g("p100"), plays)),
                    ("event_pay", g("conv"))]
        else:
            raise ValueError(platform)
        rows.append(cols)
    buf = io.StringIO()
    if rows:
        w = csv.writer(buf)
        w.writerow([c for c, _ in rows[0]])
        for r in rows:
            w.writerow(["" if v is None else v for _, v in r])
    return buf.getvalue().encode("utf-8")


def read_back(platform: str, figures: Sequence[dict[str, Any]]) -> list[DailyRow]:
    """The export parsed by the platform's adapter (in memory: no file is written)."""
    if not figures:
        return []
    return parse_file(Path(f"{platform}-export.csv"), platform, data=export_csv(platform, figures)).rows


def direct_rows(platform: str, figures: Sequence[dict[str, Any]]) -> list[DailyRow]:
    """The same figures as canonical rows without an export (the regret loop's fast path)."""
    out = []
    for f in figures:
        out.append(DailyRow(
            date=dt.date.fromisoformat(str(f["date"])), platform=platform,  # type: ignore[arg-type]
            ad_id=str(f["ad_id"]), ad_name=str(f["ad_name"]), variant_key=str(f["key"]),
            impressions=int(f["impressions"]), spend=float(f["spend"]), plays=int(f["plays"]),
            views_2s=int(f["v2"]), views_3s=int(f["v3"]),
            views_5s=None if f["v5"] is None else int(f["v5"]),
            views_6s=None if f["v6"] is None else int(f["v6"]),
            views_10s=None if f["v10"] is None else int(f["v10"]), p25=int(f["p25"]), p50=int(f["p50"]),
            p75=int(f["p75"]), p100=int(f["p100"]), avg_watch_s=float(f["avg"]), clicks=int(f["clicks"]),
            conversions=int(f["conv"]), revenue=float(f["revenue"])))
    return out
