"""`cutpilot perf report`: which hooks and clips earn the views (with their uncertainty), how each variant holds
its viewers (retention curves), and what the last import changed (new days, re-stated figures).

Credit comes from `cutpilot.perf.credit.compute_credit` over every stored row and registered shot; retention
curves are the stored checkpoints summed over days (no decay: a curve shows what happened). The HTML page is
self-contained: charts are inline SVG (no plotting library is a dependency).
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, Field

from cutpilot.perf.model import DailyRow, Snapshot, Variant, VariantShot

if TYPE_CHECKING:
    from cutpilot.perf.credit import CreditReport, RowLike
    from cutpilot.settings import Settings

_SECOND_POINTS = (("views_2s", 2.0), ("views_3s", 3.0), ("views_5s", 5.0), ("views_6s", 6.0), ("views_10s", 10.0))
_PCT_POINTS = (("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p100", 1.0))
_TRACKED = ("impressions", "spend", "plays", "clicks", "conversions", "revenue")


class HookRow(BaseModel):
    """A clip's hook credit on one platform: its 2-3 s view rate posterior."""

    clip_id: str
    source: str | None
    platform: str
    hook_rate: float
    hook_rate_low: float
    hook_rate_high: float
    n_ads: int
    impressions: int
    basis: str = ""


class CurvePoint(BaseModel):
    t: float
    share: float
    field: str


class Curve(BaseModel):
    """One variant's retention on one platform: share of plays still watching at each reported checkpoint."""

    variant_key: str
    platform: str
    ad_name: str
    duration_s: float | None
    plays: int
    points: list[CurvePoint]


class Revision(BaseModel):
    """A stored day the last import re-stated (e.g. conversions back-dated by Ocean Engine)."""

    platform: str
    ad_id: str
    date: dt.date
    changes: dict[str, list[Any]]  # field -> [before, after]


class AdChange(BaseModel):
    """One ad's totals before and after the last import."""

    platform: str
    ad: str
    before: dict[str, float | None]
    after: dict[str, float | None]


class Changes(BaseModel):
    snapshot: Snapshot | None = None
    previous: Snapshot | None = None
    new_dates: list[dt.date] = Field(default_factory=list)
    new_ads: list[str] = Field(default_factory=list)
    revised: list[Revision] = Field(default_factory=list)
    ads: list[AdChange] = Field(default_factory=list)


class PerfReport(BaseModel):
    snapshot: str | None
    credit_snapshot: str | None = None
    as_of: dt.date | None = None
    rows: int = 0
    variants: int = 0
    unmatched_ads: int = 0
    hook_basis: dict[str, str] = Field(default_factory=dict)
    hooks: list[HookRow] = Field(default_factory=list)
    clips: list[dict[str, Any]] = Field(default_factory=list)
    elements: list[dict[str, Any]] = Field(default_factory=list)
    curves: list[Curve] = Field(default_factory=list)
    changes: Changes = Field(default_factory=Changes)
    notes: list[str] = Field(default_factory=list)


def curves(rows: Iterable[DailyRow], variants: Sequence[Variant]) -> list[Curve]:
    """Retention per (platform, variant key): each checkpoint's views over the plays of the rows reporting it."""
    by_key = {v.variant_key: v for v in variants}
    groups: dict[tuple[str, str], list[DailyRow]] = defaultdict(list)
    for r in rows:
        if r.variant_key:
            groups[(r.platform, r.variant_key)].append(r)
    out = []
    for (plat, key), rs in sorted(groups.items()):
        v = by_key.get(key)
        dur = v.duration_s if v and v.duration_s > 0 else None
        plays = sum(r.plays or 0 for r in rs)
        pts: list[CurvePoint] = [CurvePoint(t=0.0, share=1.0, field="plays")] if plays else []
        fields = [(f, t) for f, t in _SECOND_POINTS if dur is None or t <= dur]
        fields += [(f, frac * dur) for f, frac in _PCT_POINTS] if dur else []
        for f, t in fields:
            num = sum(getattr(r, f) for r in rs if getattr(r, f) is not None and r.plays)
            den = sum(r.plays or 0 for r in rs if getattr(r, f) is not None and r.plays)
            if den > 0:
                pts.append(CurvePoint(t=round(t, 2), share=round(min(1.0, num / den), 4), field=f))
        if len(pts) > 1:
            pts.sort(key=lambda p: p.t)
            out.append(Curve(variant_key=key, platform=plat, ad_name=v.ad_name if v else rs[-1].ad_name,
                             duration_s=dur, plays=plays, points=pts))
    return out


def _totals(rows: Iterable[DailyRow]) -> dict[tuple[str, str], dict[str, float | None]]:
    acc: dict[tuple[str, str], dict[str, float | None]] = {}
    for r in rows:
        k = (r.platform, r.variant_key or r.ad_id)
        a = acc.setdefault(k, dict.fromkeys((*_TRACKED, "hook_views")))
        for f in _TRACKED:
            x = getattr(r, f)
            if x is not None:
                a[f] = (a[f] or 0) + x
        hv = r.views_3s if r.views_3s is not None else r.views_2s
        if hv is not None:
            a["hook_views"] = (a["hook_views"] or 0) + hv
    for a in acc.values():
        plays, imps = a["plays"], a["impressions"]
        a["hook_rate"] = round(a["hook_views"] / plays, 4) if a["hook_views"] is not None and plays else None
        a["ctr"] = round(a["clicks"] / imps, 4) if a["clicks"] is not None and imps else None
        for f in ("spend", "revenue"):
            if a[f] is not None:
                a[f] = round(float(a[f] or 0.0), 2)
        del a["hook_views"]
    return acc


def changes(settings: Settings) -> Changes:
    """What the latest import changed: days (new to its platform) and ads it added, stored days it re-stated,
    and each affected ad's totals before and after."""
    from cutpilot.perf import store

    snaps = store.snapshots(settings)
    if not snaps:
        return Changes()
    last = snaps[-1]
    now_rows = store.daily_rows(settings)
    before_rows = store.rows_before(settings, last.id)
    old_dates = {r.date for r in before_rows if r.platform == last.platform}
    old_ads = {(r.platform, r.ad_id) for r in before_rows}
    written = [r for r in now_rows if (r.platform, r.ad_id, r.date) in
               {(x.platform, x.ad_id, x.date) for x in store.snapshot_rows(settings, last.id)}]
    revised = []
    for row, old in store.revisions(settings, last.id):
        diff = {f: [old.get(f), getattr(row, f)] for f in old if f != "ad_name" and old.get(f) != getattr(row, f)}
        if diff:
            revised.append(Revision(platform=row.platform, ad_id=row.ad_id, date=row.date, changes=diff))
    before, after = _totals(before_rows), _totals(now_rows)
    touched = sorted({(r.platform, r.variant_key or r.ad_id) for r in written})
    ads = [AdChange(platform=p, ad=a, before=before.get((p, a), {}), after=after.get((p, a), {}))
           for p, a in touched if before.get((p, a)) != after.get((p, a))]
    return Changes(snapshot=last, previous=snaps[-2] if len(snaps) > 1 else None,
                   new_dates=sorted({r.date for r in written} - old_dates),
                   new_ads=sorted({r.ad_name or r.ad_id for r in written if (r.platform, r.ad_id) not in old_ads}),
                   revised=revised, ads=ads)


def compute(rows: Sequence[DailyRow], vs: Sequence[Variant], shots: Sequence[VariantShot],
            snapshot: str | None) -> CreditReport:
    """Credit over the stored rows: priors pooled per product (the variants' product), elements from the
    variants' audience, aspect and length."""
    from cutpilot.perf.credit import compute_credit

    by_key = {v.variant_key: v for v in vs}
    product_of: dict[str, str] = {}
    for s in shots:
        v = by_key.get(s.variant_key)
        if v and v.product:
            product_of.setdefault(s.clip_id, v.product)
    metadata: dict[str, dict[str, object]] = {
        v.variant_key: {"audience": v.audience, "aspect": v.aspect,
                        "length": f"{round(v.duration_s)}s" if v.duration_s else None} for v in vs}
    durations = {v.variant_key: v.duration_s for v in vs if v.duration_s > 0}
    return compute_credit(cast("Sequence[RowLike]", rows), shots, durations=durations, groups=product_of or None,
                          metadata=metadata, snapshot=snapshot)


def build(settings: Settings) -> PerfReport:
    """The whole report from the store (credit recomputed from every row and registered shot)."""
    from cutpilot.perf import store

    rows = store.daily_rows(settings)
    vs = store.variants(settings)
    shots = store.shots(settings)
    snap = store.latest_snapshot(settings)
    rep = PerfReport(snapshot=snap, rows=len(rows), variants=len(vs))
    known = {v.variant_key for v in vs}
    rep.unmatched_ads = len({(r.platform, r.ad_id) for r in rows if r.variant_key not in known})
    if not rows:
        rep.notes.append("no performance data yet: import a platform export with `cutpilot perf import FILE "
                         "--platform …`")
        return rep
    if not vs:
        rep.notes.append("no registered variants: make a batch with variants so imported ads can be credited")
    credit = compute(rows, vs, shots, snap)
    source_of: dict[str, str] = {}
    for v in vs:
        if v.hook_clip_id and v.hook_source:
            source_of.setdefault(v.hook_clip_id, v.hook_source)
    rep.credit_snapshot, rep.as_of, rep.hook_basis = credit.snapshot, credit.as_of, credit.hook_basis
    hooks = [HookRow(clip_id=c.clip_id, source=source_of.get(c.clip_id), platform=c.platform, hook_rate=c.hook_rate,
                     hook_rate_low=c.hook_low if c.hook_low is not None else c.hook_rate,
                     hook_rate_high=c.hook_high if c.hook_high is not None else c.hook_rate,
                     n_ads=c.n_ads, impressions=c.impressions, basis=credit.hook_basis.get(c.platform, ""))
             for c in credit.clips if c.hook_rate is not None and c.hook_trials > 0]
    rep.hooks = sorted(hooks, key=lambda h: (-h.hook_rate, -h.hook_rate_low, h.clip_id))
    rep.clips = sorted((c.model_dump(mode="json", exclude={"hook_alpha", "hook_beta"}) for c in credit.clips),
                       key=lambda c: (-(c["hold_effect"] if c["hold_effect"] is not None else -1e9), c["clip_id"]))
    rep.elements = [e.model_dump(mode="json") for e in credit.elements]
    rep.curves = curves(rows, vs)
    rep.changes = changes(settings)
    if credit.unmatched_keys:
        rep.notes.append(f"{len(credit.unmatched_keys)} variant key(s) in the data have no registered shots: "
                         + ", ".join(credit.unmatched_keys[:6]))
    return rep


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def text(rep: PerfReport) -> str:
    """The terminal summary."""
    out = [f"snapshot {rep.snapshot or '–'} · {rep.rows} daily row(s) · {rep.variants} variant(s) · "
           f"{rep.unmatched_ads} unmatched ad(s)"]
    out += [f"note: {n}" for n in rep.notes]
    if rep.hooks:
        out.append("top hooks (2-3 s view rate, 90% interval):")
        for h in rep.hooks[:10]:
            out.append(f"  {h.clip_id:<14} {h.platform:<11} {_pct(h.hook_rate):>6} "
                       f"[{_pct(h.hook_rate_low)}–{_pct(h.hook_rate_high)}]  {h.n_ads} ad(s), "
                       f"{h.impressions} impr.  {h.source or ''}")
    holds = [c for c in rep.clips if c.get("hold_effect") is not None]
    if holds:
        out.append("hold (log survival per second on screen vs the platform's average clip, ± s.e.):")
        for c in holds[:10]:
            out.append(f"  {c['clip_id']:<14} {c['platform']:<11} {c['hold_effect']:+.3f} ± {c['hold_se'] or 0:.3f}")
    ch = rep.changes
    if ch.snapshot:
        out.append(f"last import {ch.snapshot.id} ({ch.snapshot.platform}, {ch.snapshot.rows} rows): "
                   f"{len(ch.new_dates)} new day(s), {len(ch.new_ads)} new ad(s), {len(ch.revised)} re-stated day(s)")
        for rv in ch.revised[:8]:
            diffs = ", ".join(f"{f} {a}→{b}" for f, (a, b) in rv.changes.items())
            out.append(f"  {rv.date} {rv.platform} {rv.ad_id}: {diffs}")
        for ad in ch.ads[:12]:
            out.append(f"  {ad.platform} {ad.ad}: {_delta(ad)}")
    return "\n".join(out)


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f}" if float(x).is_integer() else f"{x:.2f}"


def _delta(ad: AdChange) -> str:
    """The totals that moved, before → after (rates as percentages)."""
    parts = []
    for f in ("impressions", "plays", "hook_rate", "ctr", "clicks", "conversions", "spend", "revenue"):
        a, b = ad.before.get(f), ad.after.get(f)
        if a != b:
            fa, fb = (_pct(a), _pct(b)) if f in ("hook_rate", "ctr") else (_num(a), _num(b))
            parts.append(f"{f} {fa}→{fb}")
    return ", ".join(parts) or "unchanged"


_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def svg_chart(cs: Sequence[Curve], width: int = 640, height: int = 280) -> str:
    """Retention curves of one platform as an inline SVG line chart (x: seconds into the ad, y: share watching)."""
    pad_l, pad_b, pad_t, pad_r = 44, 30, 10, 10
    t_max = max((p.t for c in cs for p in c.points), default=1.0) or 1.0

    def xy(t: float, s: float) -> str:
        x = pad_l + (width - pad_l - pad_r) * t / t_max
        y = pad_t + (height - pad_t - pad_b) * (1.0 - s)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="retention curves">', f'<rect width="{width}" height="{height}" fill="white"/>']
    for s in (0.0, 0.25, 0.5, 0.75, 1.0):
        a, b = xy(0, s), xy(t_max, s)
        parts.append(f'<polyline points="{a} {b}" stroke="#ddd" fill="none"/>'
                     f'<text x="4" y="{b.split(",")[1]}" font-size="10">{int(s * 100)}%</text>')
    for k in range(0, int(t_max) + 1, max(1, int(t_max) // 6)):
        x = xy(k, 0).split(",")[0]
        parts.append(f'<text x="{x}" y="{height - 12}" font-size="10" text-anchor="middle">{k}s</text>')
    for i, c in enumerate(cs):
        color = _COLORS[i % len(_COLORS)]
        pts = " ".join(xy(p.t, p.share) for p in c.points)
        parts.append(f'<polyline points="{pts}" stroke="{color}" stroke-width="2" fill="none">'
                     f"<title>{html.escape(c.variant_key)}</title></polyline>")
    parts.append("</svg>")
    return "".join(parts)


def to_html(rep: PerfReport) -> str:
    """A self-contained HTML page: hooks, clips, retention charts per platform, what changed."""
    e = html.escape

    def table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
        th = "".join(f"<th>{e(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><tr>{th}</tr>{trs}</table>"

    body = [f"<h1>Ad performance</h1><p>snapshot {e(rep.snapshot or '–')} · {rep.rows} daily rows · "
            f"{rep.variants} variants · {rep.unmatched_ads} unmatched ads</p>"]
    body += [f"<p class=note>{e(n)}</p>" for n in rep.notes]
    body.append("<h2>Hooks</h2>" + table(
        ("clip", "platform", "hook rate", "90% interval", "ads", "impressions", "source"),
        ((h.clip_id, h.platform, _pct(h.hook_rate), f"{_pct(h.hook_rate_low)}–{_pct(h.hook_rate_high)}", h.n_ads,
          h.impressions, h.source or "") for h in rep.hooks)))
    body.append("<h2>Clips</h2>" + table(
        ("clip", "platform", "hold effect", "s.e.", "CTR", "ads", "impressions"),
        ((c["clip_id"], c["platform"], "–" if c.get("hold_effect") is None else f"{c['hold_effect']:+.3f}",
          "–" if c.get("hold_se") is None else f"{c['hold_se']:.3f}", _pct(c.get("ctr")), c["n_ads"],
          c["impressions"]) for c in rep.clips)))
    body.append("<h2>Retention per variant</h2>")
    by_plat: dict[str, list[Curve]] = defaultdict(list)
    for c in rep.curves:
        by_plat[c.platform].append(c)
    for plat, cs in sorted(by_plat.items()):
        legend = "".join(f'<li style="color:{_COLORS[i % len(_COLORS)]}">{e(c.variant_key)} · {e(c.ad_name)} · '
                         f"{c.plays} plays</li>" for i, c in enumerate(cs))
        body.append(f"<h3>{e(plat)}</h3>{svg_chart(cs)}<ul>{legend}</ul>")
    ch = rep.changes
    body.append("<h2>Since the last import</h2>")
    if ch.snapshot:
        body.append(f"<p>{e(ch.snapshot.id)} · {e(ch.snapshot.platform)} · {e(Path(ch.snapshot.file).name)} · "
                    f"{ch.snapshot.rows} rows · new days: {e(', '.join(map(str, ch.new_dates)) or 'none')} · "
                    f"new ads: {len(ch.new_ads)}</p>")
        body.append(table(("date", "platform", "ad id", "re-stated"),
                          ((rv.date, rv.platform, rv.ad_id,
                            ", ".join(f"{f} {a}→{b}" for f, (a, b) in rv.changes.items())) for rv in ch.revised)))
        body.append(table(("platform", "ad", "totals before → after"),
                          ((ad.platform, ad.ad, _delta(ad)) for ad in ch.ads)))
    style = ("body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}.note{color:#a60}")
    return (f'<!doctype html><html lang="en"><meta charset="utf-8"><title>cutpilot perf report</title>'
            f"<style>{style}</style><body>{''.join(body)}</body></html>")
