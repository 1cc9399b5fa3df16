"""Ranking that learns: score = relevance + w · z(performance), applied after the hard filters.

The ranker only re-scores the candidates the caller hands it (already filtered for product, format, compliance
and no-repeat): it never adds, drops or reorders anything itself, and a clip it was not given gets no score. The
caller sorts by the new score. Two modes:

- "mean" (make, chat): z of the posterior mean; a clip without data scores 0 (the library's average), so
  performance only moves proven clips up or down.
- "thompson" (batch variants): z of one draw from the clip's posterior (a clip without data draws from the
  population, z ~ N(0, 1)), and with probability `min_explore` (or when a batch's `ExploreQuota` says so) the
  best untested candidate is lifted to the top, so new footage gets tried.

z is taken against the snapshot's own clips on each platform (their posterior means' mean and spread), combined
across platforms weighted by the evidence (hook trials; equal weights for hold), and clipped to ±3.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cutpilot.errors import InputError
from cutpilot.perf.credit import ClipCredit, CreditReport, compute_credit

if TYPE_CHECKING:
    from cutpilot.settings import Settings

Mode = Literal["mean", "thompson"]
Role = Literal["hook", "body", "any"]
DEFAULT_WEIGHT = 0.1  # relevance is a cosine-like score in [0, 1]; ±2 z moves a clip by ±0.2
MIN_EXPLORE = 0.2
Z_CLIP = 3.0
HOOK_SD_FALLBACK = 0.05  # 3 s rate spread assumed while a platform has fewer than 3 clips with hook data
HOLD_SD_FALLBACK = 0.01  # log survival per second, likewise
GROUP_SD_MIN = 0.5  # an untested clip's prior spread (in z) is never narrower than this


@dataclass(frozen=True)
class Scored:
    """A candidate re-scored: `perf` is the w·z term added to its relevance; `explored` marks an exploration lift."""

    clip_id: str
    relevance: float
    perf: float
    score: float
    explored: bool = False


@dataclass(frozen=True)
class _Pop:
    mean: float
    sd: float


class ExploreQuota:
    """A batch's minimum exploration share: at least ceil(n · share) of its n variants open on an untested clip.
    Thompson picks that already chose an untested clip count; a variant is forced to explore only when the
    variants left could not meet the quota otherwise (so forcing never replaces exploration that happened)."""

    def __init__(self, n_variants: int, share: float = MIN_EXPLORE) -> None:
        if not 0.0 <= share <= 1.0:
            raise InputError(f"min_explore must be within [0, 1], got {share}")
        self.n = max(int(n_variants), 0)
        self.need = min(self.n, math.ceil(self.n * share - 1e-9))
        self.made = 0
        self.explored = 0

    def force_next(self) -> bool:
        """The next variant must explore (pass as `explore=` to adjust / boost)."""
        return self.need - self.explored >= self.n - self.made > 0

    def record(self, explored: bool) -> None:
        """The variant just made opened on an untested clip (or not)."""
        self.made += 1
        self.explored += bool(explored)


class PerfRanker:
    """Performance z-scores from one credit snapshot."""

    def __init__(self, credits: Sequence[ClipCredit], snapshot_id: str | None, *, weight: float = DEFAULT_WEIGHT,
                 platform: str | None = None, groups: Mapping[str, object] | None = None) -> None:
        if weight < 0:
            raise InputError(f"performance weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self.platform = platform
        self.snapshot_id = snapshot_id
        self._by_clip: dict[str, list[ClipCredit]] = defaultdict(list)
        hooks: dict[str, list[float]] = defaultdict(list)
        holds: dict[str, list[float]] = defaultdict(list)
        for c in credits:
            if platform is not None and c.platform != platform:
                continue
            self._by_clip[c.clip_id].append(c)
            if c.hook_rate is not None:
                hooks[c.platform].append(c.hook_rate)
            if c.hold_effect is not None:
                holds[c.platform].append(c.hold_effect)
        self._hook_pop = {p: _pop(v, HOOK_SD_FALLBACK) for p, v in hooks.items()}
        self._hold_pop = {p: _pop(v, HOLD_SD_FALLBACK) for p, v in holds.items()}
        self._groups = dict(groups or {})
        self._group_prior: dict[tuple[str, object], _Pop] = {}
        for role in ("hook", "body"):
            zs: dict[object, list[float]] = defaultdict(list)
            for clip in self._by_clip:
                g = self._groups.get(clip)
                z = self._z_role(clip, role, "mean", None) if g is not None else None
                if z is not None:
                    zs[g].append(z)
            for g, vals in zs.items():
                if len(vals) >= 2:  # a group's tested clips say where its untested ones probably are
                    k = len(vals)
                    mean = float(np.mean(vals)) * k / (k + 1.0)  # shrunk toward the population (one pseudo-clip)
                    self._group_prior[(role, g)] = _Pop(mean, max(float(np.std(vals)), GROUP_SD_MIN))

    # --- constructors -------------------------------------------------------------------------------------------
    @classmethod
    def from_credits(cls, report: CreditReport, *, weight: float = DEFAULT_WEIGHT, platform: str | None = None,
                     groups: Mapping[str, object] | None = None) -> PerfRanker:
        return cls(report.clips, report.snapshot, weight=weight, platform=platform, groups=groups)

    @classmethod
    def empty(cls) -> PerfRanker:
        """No performance data: every boost is 0 in mean mode (`--no-perf`, or before the first import)."""
        return cls([], None)

    @classmethod
    def from_store(cls, settings: Settings, *, platform: str | None = None, weight: float = DEFAULT_WEIGHT,
                   groups: Mapping[str, object] | None = None) -> PerfRanker:
        """Credit over the home's performance store, stamped with its latest import's snapshot id. `groups`
        (clip id -> prior pool, e.g. (content type, product)) defaults to the product of the variants a clip is
        in."""
        from cutpilot.perf import store

        snap = store.latest_snapshot(settings)
        if snap is None:
            return cls.empty()
        variants = store.variants(settings)
        shots = store.shots(settings)
        if groups is None:
            product = {v.variant_key: v.product for v in variants}
            groups = {s.clip_id: product.get(s.variant_key) for s in shots}
        report = compute_credit(store.daily_rows(settings, platform=platform), shots,
                                durations={v.variant_key: v.duration_s for v in variants if v.duration_s > 0},
                                groups=groups, snapshot=snap)
        return cls.from_credits(report, weight=weight, platform=platform, groups=groups)

    # --- scores -------------------------------------------------------------------------------------------------
    def has_data(self, clip_id: str, role: Role = "hook") -> bool:
        """The snapshot has evidence on this clip for the role."""
        return any(_value(c, role) is not None for c in self._by_clip.get(clip_id, []))

    def z(self, clip_id: str, *, role: Role = "hook", mode: Mode = "mean",
          rng: np.random.Generator | None = None) -> float:
        """The clip's performance z-score. Without data: its group's prior (the group's tested clips, shrunk) or
        the population's, N(0, 1): the mean in mean mode, a draw in Thompson mode."""
        if role == "any":
            parts = [self._z_role(clip_id, r, mode, rng) for r in ("hook", "body")]
            got = [p for p in parts if p is not None]
            if got:
                return float(np.mean(got))
            return self._z_prior(clip_id, "hook", mode, rng)
        z = self._z_role(clip_id, role, mode, rng)
        return self._z_prior(clip_id, role, mode, rng) if z is None else z

    def _z_prior(self, clip_id: str, role: Role, mode: Mode, rng: np.random.Generator | None) -> float:
        prior = self._group_prior.get((role, self._groups.get(clip_id)), _Pop(0.0, 1.0))
        if mode == "mean":
            return prior.mean
        return float(np.clip(_rng(rng).normal(prior.mean, prior.sd), -Z_CLIP, Z_CLIP))

    def _z_role(self, clip_id: str, role: Role, mode: Mode, rng: np.random.Generator | None) -> float | None:
        num = den = 0.0
        for c in self._by_clip.get(clip_id, []):
            if role == "hook" and c.hook_rate is not None:
                pop = self._hook_pop[c.platform]
                v = c.hook_rate
                if mode == "thompson" and c.hook_alpha and c.hook_beta:
                    v = float(_rng(rng).beta(c.hook_alpha, c.hook_beta))
                wt = max(c.hook_trials, 1.0)
            elif role == "body" and c.hold_effect is not None:
                pop = self._hold_pop[c.platform]
                v = c.hold_effect
                if mode == "thompson" and c.hold_se:
                    v = float(_rng(rng).normal(c.hold_effect, c.hold_se))
                wt = 1.0
            else:
                continue
            num += wt * (v - pop.mean) / pop.sd
            den += wt
        if den == 0:
            return None
        return float(np.clip(num / den, -Z_CLIP, Z_CLIP))

    def adjust(self, candidates: Sequence[tuple[str, float]], mode: Mode = "mean",
               rng: np.random.Generator | None = None, min_explore: float = MIN_EXPLORE, *, role: Role = "hook",
               explore: bool | None = None) -> list[Scored]:
        """The candidates (clip id, relevance) re-scored, in the order given. Thompson mode lifts the best untested
        candidate to the top when `explore` is True, or (explore None) with probability `min_explore`."""
        if mode not in ("mean", "thompson"):
            raise InputError(f"unknown ranking mode {mode!r} (mean | thompson)")
        if not 0.0 <= min_explore <= 1.0:
            raise InputError(f"min_explore must be within [0, 1], got {min_explore}")
        gen = _rng(rng)
        out = []
        for clip, rel in candidates:
            perf = self.weight * self.z(clip, role=role, mode=mode, rng=gen) if self.weight else 0.0
            out.append(Scored(clip, float(rel), perf, float(rel) + perf))
        if mode != "thompson" or not out:
            return out
        if explore is None:
            explore = bool(gen.random() < min_explore)
        untested = [i for i, s in enumerate(out) if not self.has_data(s.clip_id, role)]
        if not explore or not untested:
            return out
        pick = max(untested, key=lambda i: (out[i].score, -i))
        top = max(s.score for s in out)
        s = out[pick]
        if s.score < top:
            lifted = top + 1e-6
            out[pick] = Scored(s.clip_id, s.relevance, lifted - s.relevance, lifted, explored=True)
        else:
            out[pick] = Scored(s.clip_id, s.relevance, s.perf, s.score, explored=True)
        return out

    def boost(self, clip_ids: Sequence[str], *, mode: Mode = "mean", seed: int | None = None, role: Role = "hook",
              relevance: Sequence[float] | None = None, min_explore: float = MIN_EXPLORE,
              explore: bool | None = None) -> dict[str, float]:
        """clip id -> the term to add to its relevance, for exactly the ids given. With `relevance` (same order),
        a Thompson exploration lift is exact; without it the relevances are taken as equal."""
        rel = list(relevance) if relevance is not None else [0.0] * len(clip_ids)
        if len(rel) != len(clip_ids):
            raise InputError("boost: relevance must have one value per clip id")
        scored = self.adjust(list(zip(clip_ids, rel, strict=True)), mode, np.random.default_rng(seed), min_explore,
                             role=role, explore=explore)
        return {s.clip_id: s.perf for s in scored}

    def record(self, mode: Mode, seed: int | None = None) -> dict[str, Any]:
        """What a run records about the ranking it used (run.json)."""
        return {"snapshot": self.snapshot_id, "mode": mode, "weight": self.weight, "platform": self.platform,
                "seed": seed, "clips_with_data": len(self._by_clip)}


def _pop(values: list[float], fallback_sd: float) -> _Pop:
    """Mean and spread of a platform's clips; with fewer than 3 clips the spread is at least `fallback_sd` (two
    clips' difference is not a population, and one clip has none)."""
    arr = np.asarray(values, dtype=float)
    sd = float(arr.std()) if arr.size > 1 else 0.0
    if arr.size < 3:
        sd = max(sd, fallback_sd)
    return _Pop(float(arr.mean()), max(sd, 1e-6))


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def _value(c: ClipCredit, role: Role) -> float | None:
    if role == "hook":
        return c.hook_rate
    if role == "body":
        return c.hold_effect
    return c.hook_rate if c.hook_rate is not None else c.hold_effect
