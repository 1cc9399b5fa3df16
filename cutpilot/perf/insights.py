"""`cutpilot insights`: the practitioners' creative analysis, on the library and its performance.

The library's clips are clustered on their text (description, content type, stable tags, trend tags) with the
packaged text embedder and KMeans (k chosen by silhouette over a small range), and each cluster is named by the
tags that most set it apart. Joined with credit through the variants' shots, it shows which clusters perform;
tags are then compared between the recent window and the days before: rising (trend) vs steady (stable), which is
how a team tells a passing hot expression from a selling point that keeps working.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import numpy as np

    from cutpilot.models import ClipRecord
    from cutpilot.perf.model import DailyRow, VariantShot
    from cutpilot.settings import Settings

RISE = 1.10  # recent / earlier hook rate at or above this is rising; at or below 1 / RISE falling
MIN_PLAYS = 200  # a window with fewer plays than this says nothing about a tag


class Cluster(BaseModel):
    """A group of similar clips, named by its most distinctive tags."""

    id: int
    name: str
    top_tags: list[str]
    size: int
    clip_ids: list[str]
    content_types: dict[str, int]
    clips_with_data: int = 0
    hook_rate: float | None = Field(default=None, description="plays-weighted mean of its clips' hook credit")
    hold_effect: float | None = None
    impressions: int = 0


class TagTrend(BaseModel):
    """One tag's hook rate in the recent window vs the days before."""

    tag: str
    kind: Literal["stable", "trend", "both"]  # how the library labels it
    movement: Literal["rising", "steady", "falling", "new", "thin"]
    recent_rate: float | None
    earlier_rate: float | None
    recent_plays: int
    earlier_plays: int
    clips: int


class Insights(BaseModel):
    clips: int
    k: int
    silhouette: float | None
    clusters: list[Cluster]
    has_performance: bool
    as_of: dt.date | None = None
    recent_days: int = 7
    tags: list[TagTrend] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def clip_text(r: ClipRecord) -> str:
    """What a clip is about, as the embedder reads it (footage text is data: it is only embedded)."""
    parts = [r.content_type_label or r.content_type.value, r.description, " ".join(r.tags), " ".join(r.trend_tags)]
    return " · ".join(p for p in parts if p)


def choose_k(x: np.ndarray, k_max: int, seed: int = 0) -> tuple[int, list[int], float | None]:
    """KMeans with the k in 2..k_max (bounded by the clip count) that maximises the silhouette."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(x)
    if n < 3:
        return 1, [0] * n, None
    best: tuple[float, int, list[int]] | None = None
    for k in range(2, min(k_max, n - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
        if len(set(labels)) < 2:
            continue
        s = float(silhouette_score(x, labels, metric="cosine"))
        if best is None or s > best[0] + 1e-9:
            best = (s, k, [int(v) for v in labels])
    if best is None:
        return 1, [0] * n, None
    return best[1], best[2], round(best[0], 4)


def _tags_of(r: ClipRecord) -> list[str]:
    return list(dict.fromkeys([*r.tags, *r.trend_tags]))


def name_clusters(records: Sequence[ClipRecord], labels: Sequence[int], top: int = 3) -> dict[int, list[str]]:
    """Each cluster's tags ranked by in-cluster share times lift over the library (distinctive, not just common);
    the content type stands in when the clips carry no tags."""
    overall = Counter(t for r in records for t in _tags_of(r))
    n = len(records)
    members: dict[int, list[ClipRecord]] = defaultdict(list)
    for r, lab in zip(records, labels, strict=True):
        members[lab].append(r)
    out = {}
    for lab, rs in members.items():
        cnt = Counter(t for r in rs for t in _tags_of(r))
        scored = sorted(cnt, key=lambda t: (-(cnt[t] / len(rs)) * math.log1p((cnt[t] / len(rs)) / (overall[t] / n)),
                                            t))
        names = scored[:top]
        if not names:
            names = [c for c, _ in Counter(r.content_type_label or r.content_type.value for r in rs).most_common(top)]
        out[lab] = names
    return out


def _hook_views(r: DailyRow) -> int | None:
    return r.views_3s if r.views_3s is not None else r.views_2s


def tag_trends(records: Sequence[ClipRecord], rows: Sequence[DailyRow], shots: Sequence[VariantShot], *,
               as_of: dt.date, recent_days: int) -> list[TagTrend]:
    """Per tag, the pooled hook rate (3 s, else 2 s views over plays) of the variants showing a clip with it,
    recent window vs before. A variant counts for a tag when any of its clips carries the tag."""
    by_clip = {r.clip_id: r for r in records}
    tags_by_variant: dict[str, set[str]] = defaultdict(set)
    clips_by_tag: dict[str, set[str]] = defaultdict(set)
    for s in shots:
        rec = by_clip.get(s.clip_id)
        if rec is None:
            continue
        for t in _tags_of(rec):
            tags_by_variant[s.variant_key].add(t)
            clips_by_tag[t].add(s.clip_id)
    cut = as_of - dt.timedelta(days=recent_days)
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # recent views, plays, earlier views, plays
    for r in rows:
        hv = _hook_views(r)
        if not r.variant_key or hv is None or not r.plays:
            continue
        off = 0 if r.date > cut else 2
        for t in tags_by_variant.get(r.variant_key, ()):
            acc[t][off] += hv
            acc[t][off + 1] += r.plays
    stable = {t for r in records for t in r.tags}
    trend = {t for r in records for t in r.trend_tags}
    out = []
    for t, (rv, rp, ev, ep) in acc.items():
        rr = rv / rp if rp else None
        er = ev / ep if ep else None
        movement: Literal["rising", "steady", "falling", "new", "thin"]
        if rp < MIN_PLAYS:
            movement = "thin"
        elif ep < MIN_PLAYS:
            movement = "new"
        elif rr is not None and er and rr / er >= RISE:
            movement = "rising"
        elif rr is not None and er and rr / er <= 1 / RISE:
            movement = "falling"
        else:
            movement = "steady"
        kind: Literal["stable", "trend", "both"] = ("both" if t in stable and t in trend
                                                    else "trend" if t in trend else "stable")
        out.append(TagTrend(tag=t, kind=kind, movement=movement, recent_rate=None if rr is None else round(rr, 4),
                            earlier_rate=None if er is None else round(er, 4), recent_plays=rp, earlier_plays=ep,
                            clips=len(clips_by_tag[t])))
    order = {"rising": 0, "new": 1, "steady": 2, "falling": 3, "thin": 4}
    return sorted(out, key=lambda x: (order[x.movement], -(x.recent_rate or 0.0), x.tag))


def build(settings: Settings, *, k_max: int = 8, recent_days: int = 7) -> Insights:
    """Cluster the library and join its performance."""
    import numpy as np

    from cutpilot.perf import store
    from cutpilot.perf.report import compute
    from index.embed import get_text_embedder
    from index.library import Library

    with Library.open(settings) as lib:
        records = [r for r in lib.records() if not r.generated]
    notes: list[str] = []
    if not records:
        return Insights(clips=0, k=0, silhouette=None, clusters=[], has_performance=False,
                        notes=["the library is empty: ingest footage first"])
    x = np.asarray(get_text_embedder(settings).embed([clip_text(r) for r in records]), dtype=np.float64)
    k, labels, sil = choose_k(x, k_max)
    names = name_clusters(records, labels)
    rows = store.daily_rows(settings)
    shots = store.shots(settings)
    credit = compute(rows, store.variants(settings), shots, store.latest_snapshot(settings)) if rows else None
    per_clip: dict[str, list[tuple[float | None, float | None, float, int]]] = defaultdict(list)
    for c in credit.clips if credit else []:
        per_clip[c.clip_id].append((c.hook_rate, c.hold_effect, c.hook_trials, c.impressions))
    clusters = []
    for lab in sorted(set(labels)):
        members = [r for r, lb in zip(records, labels, strict=True) if lb == lab]
        creds = [v for r in members for v in per_clip.get(r.clip_id, [])]
        hooks = [(h, w) for h, _, w, _ in creds if h is not None and w > 0]
        holds = [(hd, w) for _, hd, w, _ in creds if hd is not None]
        wsum = sum(w for _, w in hooks)
        clusters.append(Cluster(
            id=lab, name=" / ".join(names[lab]) or f"cluster {lab}", top_tags=names[lab], size=len(members),
            clip_ids=[r.clip_id for r in members],
            content_types=dict(Counter(r.content_type_label or r.content_type.value for r in members)),
            clips_with_data=len({r.clip_id for r in members if r.clip_id in per_clip}),
            hook_rate=round(sum(h * w for h, w in hooks) / wsum, 4) if wsum > 0 else None,
            hold_effect=round(sum(h for h, _ in holds) / len(holds), 4) if holds else None,
            impressions=sum(i for *_, i in creds)))
    clusters.sort(key=lambda c: (c.hook_rate is None, -(c.hook_rate or 0.0), -c.size))
    as_of = max((r.date for r in rows), default=None)
    tags = tag_trends(records, rows, shots, as_of=as_of, recent_days=recent_days) if as_of else []
    if not rows:
        notes.append("no performance data yet: clusters only; import platform exports with `cutpilot perf import`")
    elif not per_clip:
        notes.append("performance data is stored but none of it reaches the library's clips (no registered "
                     "variant shots match): clusters are not ranked")
    return Insights(clips=len(records), k=k, silhouette=sil, clusters=clusters, has_performance=bool(per_clip),
                    as_of=as_of, recent_days=recent_days, tags=tags, notes=notes)


def text(res: Insights) -> str:
    """The terminal summary."""
    out = [f"{res.clips} clip(s) in {res.k} cluster(s)" + (f" (silhouette {res.silhouette:.2f})"
                                                             if res.silhouette is not None else "")]
    out += [f"note: {n}" for n in res.notes]
    for c in res.clusters:
        perf = (f"hook {100 * c.hook_rate:.1f}% over {c.clips_with_data} clip(s) with data"
                if c.hook_rate is not None else "no performance data")
        out.append(f"  [{c.id}] {c.name} — {c.size} clip(s); {perf}")
    if res.tags:
        out.append(f"tags, last {res.recent_days} day(s) vs before (as of {res.as_of}):")
        for t in res.tags[:20]:
            rr = "–" if t.recent_rate is None else f"{100 * t.recent_rate:.1f}%"
            er = "–" if t.earlier_rate is None else f"{100 * t.earlier_rate:.1f}%"
            out.append(f"  {t.movement:<8} {t.tag} ({t.kind} tag): {er} → {rr}")
    return "\n".join(out)
