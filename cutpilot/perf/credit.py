"""Credit: which clips and which creative elements earned the views, the watching and the clicks.

Pure functions over the canonical daily rows (`DailyRow`) and the variants' shots (`VariantShot`); numpy only,
no store, no settings, so every number here can be recomputed by hand (tests/test_perf_credit.py does).

- Time decay: every count of a row `age` days before the as-of date is weighted by 0.5 ** (age / half-life)
  (default half-life 7 days: last week's data counts half), so credit follows what works now.
- Hook: the 2-3 s view rate. Successes are `views_3s` (else `views_2s`), trials are `plays` (else `impressions`,
  on platforms that do not report plays); the basis each platform used is reported. A variant's counts go to the
  clip(s) on screen in its first 2 s, split by their seconds on screen there. Each clip gets a Beta-binomial
  posterior whose prior is pooled per (content type, product) by the method of moments (empirical Bayes):
  posterior mean and a 90 % equal-tailed credible interval.
- Hold: the retention checkpoints after the hook (3 s / 5 s / 6 s / 10 s views and 25/50/75/100 % of the ad's
  duration) cut each variant into intervals; each interval's log survival ratio is regressed on the seconds each
  clip is on screen in it, weighted by the viewers who entered it, with a per-second platform baseline and a
  ridge prior on the clips' deviations from it. A clip's hold effect is its deviation in log survival per second
  on screen (0 = the platform's average clip, positive = holds viewers better), with a standard error.
- Clicks and conversions: per creative element value (hook type, CTA, voice, music, format: the variant's
  metadata) a Beta-binomial click-through rate and a Gamma-Poisson conversion rate per 1000 impressions, priors
  pooled over the element's values; per clip a click-through rate from the variants it is in, weighted by its
  share of their screen time. Those clip intervals are wide and stay wide: a clip is one part of an ad.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

HALF_LIFE_DAYS = 7.0
HOOK_S = 2.0  # the hook window: clips on screen in these first seconds share the hook credit
CI_MASS = 0.90
RIDGE_LAMBDA = 1.0  # in units of one average interval (viewer weight 1) with one second of the clip on screen
KAPPA_MIN = 2.0  # prior strength bounds (pseudo-trials) for the pooled Beta priors
KAPPA_MAX = 10_000.0
MIN_INTERVAL_S = 0.25  # checkpoints closer than this are merged (a 25 % mark at 3.1 s next to the 3 s view)
HOOK_FIELDS = ("views_3s", "views_2s")
HOOK_TIMES = {"views_3s": 3.0, "views_2s": 2.0}


class RowLike(Protocol):
    """What credit reads of a daily row (cutpilot.perf.model.DailyRow); read-only, so narrower types fit."""

    @property
    def date(self) -> dt.date: ...
    @property
    def platform(self) -> str: ...
    @property
    def ad_id(self) -> str: ...
    @property
    def variant_key(self) -> str | None: ...
    @property
    def impressions(self) -> int | None: ...
    @property
    def plays(self) -> int | None: ...
    @property
    def views_2s(self) -> int | None: ...
    @property
    def views_3s(self) -> int | None: ...
    @property
    def clicks(self) -> int | None: ...
    @property
    def conversions(self) -> int | None: ...

    def checkpoints(self, duration_s: float | None = None) -> list[tuple[float, int]]: ...


class ShotLike(Protocol):
    """What credit reads of a variant's shot (cutpilot.perf.model.VariantShot)."""

    @property
    def variant_key(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def clip_id(self) -> str: ...


class ClipCredit(BaseModel):
    """One clip's credit on one platform. None = no data of that kind (never a made-up zero)."""

    model_config = ConfigDict(frozen=True)

    clip_id: str
    platform: str
    hook_rate: float | None = None
    hook_low: float | None = None
    hook_high: float | None = None
    hold_effect: float | None = None
    hold_se: float | None = None
    n_ads: int = 0
    impressions: int = 0
    snapshot: str = ""
    hook_alpha: float | None = None  # the hook posterior Beta(alpha, beta): Thompson sampling draws from it
    hook_beta: float | None = None
    hook_trials: float = 0.0  # decayed plays (or impressions) credited to the clip's hook
    ctr: float | None = None
    ctr_low: float | None = None
    ctr_high: float | None = None
    cvr_per_1k: float | None = None  # conversions per 1000 impressions, by share of screen time
    cvr_low: float | None = None
    cvr_high: float | None = None


class ElementCredit(BaseModel):
    """One value of one creative element (e.g. cta = "buy now") on one platform."""

    model_config = ConfigDict(frozen=True)

    platform: str
    element: str
    value: str
    ctr: float
    ctr_low: float
    ctr_high: float
    cvr_per_1k: float  # conversions per 1000 impressions
    cvr_low: float
    cvr_high: float
    n_ads: int
    impressions: int
    clicks: float
    conversions: float
    snapshot: str = ""


class CreditReport(BaseModel):
    """Everything one credit pass computed, and the inputs' identity (`snapshot`)."""

    snapshot: str
    as_of: dt.date | None
    half_life_days: float | None
    ridge_lambda: float
    hook_basis: dict[str, str]  # platform -> "views_3s/plays" etc.
    clips: list[ClipCredit]
    elements: list[ElementCredit]
    unmatched_keys: list[str]  # variant keys in the rows with no registered shots
    rows_used: int


# --- special functions (numpy has no beta / gamma quantiles; scipy is not a dependency) ---------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-13
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 20_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        de = d * c
        h *= de
        if abs(de - 1.0) < eps:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def _bisect(cdf: Callable[[float], float], q: float, lo: float, hi: float, iters: int = 60) -> float:
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if cdf(mid) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _cornish_fisher(q: float, mean: float, sd: float, skew: float, ex_kurt: float) -> float:
    """Quantile from the first four moments (accurate to ~1e-5 sd once both shape parameters exceed ~200)."""
    z = NormalDist().inv_cdf(q)
    w = z + (z * z - 1) * skew / 6 + (z ** 3 - 3 * z) * ex_kurt / 24 - (2 * z ** 3 - 5 * z) * skew * skew / 36
    return mean + sd * w


LARGE_SHAPE = 200.0  # above it quantiles come from Cornish-Fisher (the exact CDF's continued fraction is slow)


def beta_ppf(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b): Cornish-Fisher when both a and b exceed LARGE_SHAPE, else safeguarded
    Newton steps on the exact CDF from the moment guess (bisection whenever a step leaves the bracket)."""
    mean = a / (a + b)
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
    n = a + b
    skew = 2 * (b - a) * math.sqrt(n + 1) / ((n + 2) * math.sqrt(a * b))
    kurt = 6 * ((a - b) ** 2 * (n + 1) - a * b * (n + 2)) / (a * b * (n + 2) * (n + 3))
    guess = _cornish_fisher(q, mean, sd, skew, kurt)
    if min(a, b) > LARGE_SHAPE:
        return min(1.0, max(0.0, guess))
    lbeta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    lo, hi = 0.0, 1.0
    x = guess if 0.0 < guess < 1.0 else mean
    for _ in range(100):
        f = beta_cdf(x, a, b) - q
        if abs(f) < 1e-12:
            break
        if f < 0:
            lo = x
        else:
            hi = x
        pdf = math.exp((a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - lbeta)
        step = x - f / pdf if pdf > 0 else -1.0
        x = step if lo < step < hi else 0.5 * (lo + hi)
        if hi - lo < 1e-15:
            break
    return x


def gamma_cdf(x: float, a: float) -> float:
    """Regularized lower incomplete gamma P(a, x) (series below a + 1, continued fraction above)."""
    if x <= 0.0:
        return 0.0
    lg = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        ap, s, delta = a, 1.0 / a, 1.0 / a
        for _ in range(100_000):
            ap += 1.0
            delta *= x / ap
            s += delta
            if abs(delta) < abs(s) * 1e-14:
                break
        return min(1.0, s * math.exp(lg))
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-14:
            break
    return max(0.0, 1.0 - math.exp(lg) * h)


def gamma_ppf(q: float, shape: float, rate: float = 1.0) -> float:
    """The q-quantile of Gamma(shape, rate): bisection of the exact CDF, or Cornish-Fisher above LARGE_SHAPE."""
    sd = math.sqrt(shape)
    if shape > LARGE_SHAPE:
        return max(0.0, _cornish_fisher(q, shape, sd, 2.0 / sd, 6.0 / shape)) / rate
    lo, hi = max(0.0, shape - 12.0 * sd), shape + 12.0 * sd + 20.0
    if gamma_cdf(lo, shape) > q:
        lo = 0.0
    return _bisect(lambda x: gamma_cdf(x, shape), q, lo, hi, iters=56) / rate


# --- pooling ---------------------------------------------------------------------------------------------------
def beta_prior_mom(successes: Sequence[float], trials: Sequence[float], *, kappa_min: float = KAPPA_MIN,
                   kappa_max: float = KAPPA_MAX) -> tuple[float, float] | None:
    """Beta(alpha, beta) prior from several units' counts by the method of moments, or None with no trials.

    m = Σs / Σn; the spread of the true rates is what the units' weighted spread exceeds binomial noise by:
    tau² = (Σ n_i (p_i − m)² − (k − 1) m (1 − m)) / (Σn − Σn²/Σn). Prior strength kappa = m(1 − m)/tau² − 1,
    clipped to [kappa_min, kappa_max] (kappa_max when the spread is all noise, or with one unit: nothing to
    learn a spread from, so the pooled mean is trusted like kappa_max trials — callers with one unit pool wider
    first). alpha = m·kappa, beta = (1 − m)·kappa."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    keep = n > 0
    s, n = s[keep], n[keep]
    if n.size == 0 or n.sum() <= 0:
        return None
    m = float(np.clip(s.sum() / n.sum(), 1e-6, 1 - 1e-6))
    k = n.size
    tau2 = 0.0
    if k >= 2:
        p = s / n
        denom = n.sum() - (n ** 2).sum() / n.sum()
        if denom > 0:
            tau2 = (float((n * (p - m) ** 2).sum()) - (k - 1) * m * (1 - m)) / denom
    kappa = kappa_max if tau2 <= 0 else float(np.clip(m * (1 - m) / tau2 - 1.0, kappa_min, kappa_max))
    return m * kappa, (1 - m) * kappa


def gamma_prior_mom(events: Sequence[float], exposure: Sequence[float], *, kappa_min: float = 0.5,
                    kappa_max: float = KAPPA_MAX) -> tuple[float, float] | None:
    """Gamma(shape, rate) prior on a Poisson rate per unit exposure, by the method of moments, or None.

    mu = Σc / Σe; tau² = (Σ e_i (r_i − mu)² − (k − 1) mu) / (Σe − Σe²/Σe); shape = mu²/tau², rate = mu/tau²,
    the shape clipped to [kappa_min, kappa_max] (kappa_max when the spread is all Poisson noise)."""
    c = np.asarray(events, dtype=float)
    e = np.asarray(exposure, dtype=float)
    keep = e > 0
    c, e = c[keep], e[keep]
    if e.size == 0 or e.sum() <= 0:
        return None
    mu = max(float(c.sum() / e.sum()), 1e-9)
    k = e.size
    tau2 = 0.0
    if k >= 2:
        r = c / e
        denom = e.sum() - (e ** 2).sum() / e.sum()
        if denom > 0:
            tau2 = (float((e * (r - mu) ** 2).sum()) - (k - 1) * mu) / denom
    shape = kappa_max if tau2 <= 0 else float(np.clip(mu * mu / tau2, kappa_min, kappa_max))
    return shape, shape / mu


def beta_posterior(s: float, n: float, prior: tuple[float, float], mass: float = CI_MASS
                   ) -> tuple[float, float, float, float, float]:
    """(mean, low, high, alpha, beta) of Beta(alpha0 + s, beta0 + n − s), equal-tailed interval of `mass`."""
    a, b = prior[0] + s, prior[1] + max(n - s, 0.0)
    tail = (1.0 - mass) / 2.0
    return a / (a + b), beta_ppf(tail, a, b), beta_ppf(1.0 - tail, a, b), a, b


def gamma_posterior(c: float, e: float, prior: tuple[float, float], mass: float = CI_MASS
                    ) -> tuple[float, float, float]:
    """(mean, low, high) of Gamma(shape0 + c, rate0 + e)."""
    shape, rate = prior[0] + c, prior[1] + e
    tail = (1.0 - mass) / 2.0
    return shape / rate, gamma_ppf(tail, shape, rate), gamma_ppf(1.0 - tail, shape, rate)


# --- inputs ----------------------------------------------------------------------------------------------------
def decay_weight(age_days: float, half_life_days: float | None = HALF_LIFE_DAYS) -> float:
    """0.5 ** (age / half-life); 1 without a half-life; rows from the future (age < 0) weigh 0."""
    if age_days < 0:
        return 0.0
    if not half_life_days or math.isinf(half_life_days):
        return 1.0
    return float(0.5 ** (age_days / half_life_days))


@dataclass
class VariantTotals:
    """One variant's decay-weighted sums on one platform."""

    platform: str
    variant_key: str
    ad_ids: set[str] = field(default_factory=set)
    impressions_raw: int = 0
    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # rows reporting each field
    n_rows: int = 0
    checkpoints: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    checkpoint_rows: dict[float, int] = field(default_factory=lambda: defaultdict(int))

    def full(self, name: str) -> bool:
        """Every row of the variant reported this field."""
        return self.n_rows > 0 and self.rows.get(name, 0) == self.n_rows


_SUMMED = ("impressions", "plays", "views_2s", "views_3s", "clicks", "conversions")


_SECONDS_CHECKPOINTS = (("plays", 0.0), ("views_2s", 2.0), ("views_3s", 3.0), ("views_5s", 5.0), ("views_6s", 6.0),
                        ("views_10s", 10.0))
_PERCENT_CHECKPOINTS = (("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p100", 1.0))


def checkpoint_plan(duration_s: float | None) -> tuple[tuple[str, float], ...]:
    """(field, seconds) of every checkpoint a row of an ad this long can report, in `DailyRow.checkpoints` order
    (the seconds ones first; percent ones only with a duration)."""
    plan = [(f, t) for f, t in _SECONDS_CHECKPOINTS if duration_s is None or t <= duration_s]
    if duration_s:
        plan += [(f, round(frac * duration_s, 3)) for f, frac in _PERCENT_CHECKPOINTS]
    return tuple(plan)


def aggregate(rows: Iterable[RowLike], durations: Mapping[str, float], *, as_of: dt.date,
              half_life_days: float | None = HALF_LIFE_DAYS) -> dict[tuple[str, str], VariantTotals]:
    """Decay-weighted totals per (platform, variant key); rows without a key or after `as_of` are left out.
    A checkpoint time two fields share (a 25 % mark at exactly 3 s) counts once: the first field reported."""
    out: dict[tuple[str, str], VariantTotals] = {}
    weights: dict[dt.date, float] = {}
    plans: dict[str, tuple[tuple[str, float], ...]] = {}
    for r in rows:
        vkey = r.variant_key
        if vkey is None:
            continue
        w = weights.get(r.date)
        if w is None:
            w = weights[r.date] = decay_weight((as_of - r.date).days, half_life_days)
        if w <= 0.0:
            continue
        key = (r.platform, vkey)
        t = out.get(key)
        if t is None:
            t = out[key] = VariantTotals(r.platform, vkey)
        t.n_rows += 1
        t.ad_ids.add(r.ad_id)
        t.impressions_raw += r.impressions or 0
        sums, counted = t.sums, t.rows
        for name in _SUMMED:
            v = getattr(r, name)
            if v is not None:
                sums[name] += w * v
                counted[name] += 1
        plan = plans.get(vkey)
        if plan is None:
            plan = plans[vkey] = checkpoint_plan(durations.get(vkey))
        seen: set[float] = set()
        cps, cp_rows = t.checkpoints, t.checkpoint_rows
        for name, sec in plan:
            v = getattr(r, name, None)
            if v is None or sec in seen:
                continue
            seen.add(sec)
            cps[sec] += w * v
            cp_rows[sec] += 1
    return out


def layouts(shots: Iterable[ShotLike]) -> dict[str, list[tuple[float, float, str]]]:
    """variant key -> [(start, end, clip id)] in ad order (zero-length shots dropped)."""
    out: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for s in shots:
        if s.end > s.start:
            out[s.variant_key].append((float(s.start), float(s.end), s.clip_id))
    return {k: sorted(v) for k, v in out.items()}


def on_screen(layout: Sequence[tuple[float, float, str]], t0: float, t1: float) -> dict[str, float]:
    """Seconds each clip is on screen between t0 and t1 of the ad."""
    out: dict[str, float] = defaultdict(float)
    for start, end, clip in layout:
        overlap = min(end, t1) - max(start, t0)
        if overlap > 1e-9:
            out[clip] += overlap
    return dict(out)


def hook_shares(layout: Sequence[tuple[float, float, str]], window: float = HOOK_S) -> dict[str, float]:
    """Each clip's share of the hook window (sums to 1; a variant shorter than the window uses its length)."""
    secs = on_screen(layout, 0.0, window)
    total = sum(secs.values())
    return {c: v / total for c, v in secs.items()} if total > 0 else {}


def hook_basis(totals: Iterable[VariantTotals]) -> tuple[str, str] | None:
    """(success field, trial field) for one platform's variants: the 3 s view if every row reports it, else the
    2 s view; plays if every row reports them (and some are > 0), else impressions. None: no usable field."""
    ts = list(totals)
    succ = next((f for f in HOOK_FIELDS if ts and all(t.full(f) for t in ts)), None)
    if succ is None:  # mixed reporting: the field most variants have in full
        counts = {f: sum(t.full(f) for t in ts) for f in HOOK_FIELDS}
        best = max(HOOK_FIELDS, key=lambda f: counts[f])
        succ = best if counts[best] else None
    if succ is None:
        return None
    plays_ok = all(t.full("plays") for t in ts) and any(t.sums.get("plays", 0.0) > 0 for t in ts)
    return succ, "plays" if plays_ok else "impressions"


# --- credit ----------------------------------------------------------------------------------------------------
@dataclass
class HookCounts:
    """Decay-weighted hook successes / trials credited to one clip on one platform."""

    successes: float = 0.0
    trials: float = 0.0


def hook_counts(totals: Iterable[VariantTotals], lays: Mapping[str, Sequence[tuple[float, float, str]]],
                basis: tuple[str, str], window: float = HOOK_S) -> dict[str, HookCounts]:
    """clip -> its share-weighted hook successes and trials over the variants it opens."""
    succ_f, trial_f = basis
    out: dict[str, HookCounts] = defaultdict(HookCounts)
    for t in totals:
        lay = lays.get(t.variant_key)
        if not lay or not t.full(succ_f):
            continue
        n = t.sums.get(trial_f, 0.0)
        s = min(t.sums.get(succ_f, 0.0), n)
        if n <= 0:
            continue
        for clip, share in hook_shares(lay, window).items():
            out[clip].successes += share * s
            out[clip].trials += share * n
    return dict(out)


def hook_credit(counts: Mapping[str, HookCounts], groups: Mapping[str, object] | None = None,
                mass: float = CI_MASS) -> dict[str, tuple[float, float, float, float, float]]:
    """clip -> (mean, low, high, alpha, beta): Beta-binomial posteriors with the prior pooled per group (content
    type, product); a group with fewer than two clips with data pools over all the platform's clips instead."""
    groups = groups or {}
    clips = sorted(counts)
    everyone = beta_prior_mom([counts[c].successes for c in clips], [counts[c].trials for c in clips])
    by_group: dict[object, list[str]] = defaultdict(list)
    for c in clips:
        by_group[groups.get(c)].append(c)
    priors: dict[object, tuple[float, float] | None] = {}
    for g, members in by_group.items():
        live = [c for c in members if counts[c].trials > 0]
        priors[g] = (beta_prior_mom([counts[c].successes for c in live], [counts[c].trials for c in live])
                     if g is not None and len(live) >= 2 else everyone)
    out = {}
    for c in clips:
        prior = priors[groups.get(c)] or everyone or (1.0, 1.0)
        out[c] = beta_posterior(counts[c].successes, counts[c].trials, prior, mass)
    return out


@dataclass
class HoldDesign:
    """The hold regression's rows: one per (variant, interval)."""

    clips: list[str]
    x: np.ndarray  # (rows, clips): seconds on screen in the interval
    length: np.ndarray  # (rows,): interval seconds
    y: np.ndarray  # (rows,): log survival ratio
    entering: np.ndarray  # (rows,): viewers who entered the interval (decayed)
    surviving: np.ndarray  # (rows,): viewers who reached its end


def hold_design(totals: Iterable[VariantTotals], lays: Mapping[str, Sequence[tuple[float, float, str]]],
                durations: Mapping[str, float], start_s: float) -> HoldDesign:
    """Intervals between consecutive checkpoints from `start_s` (the hook's checkpoint) to the end, using only
    checkpoints every row of the variant reported; a count that rises is read as no loss (the running minimum
    is kept), a zero survivor count as half a viewer."""
    rows_x: list[dict[str, float]] = []
    lengths: list[float] = []
    ys: list[float] = []
    enter: list[float] = []
    surv: list[float] = []
    for t in totals:
        lay = lays.get(t.variant_key)
        dur = durations.get(t.variant_key)
        if not lay or not dur:
            continue
        pts = sorted((sec, v) for sec, v in t.checkpoints.items()
                     if t.checkpoint_rows[sec] == t.n_rows and sec >= start_s - 1e-9 and sec <= dur + 1e-9)
        merged: list[tuple[float, float]] = []
        for sec, v in pts:
            if merged and sec - merged[-1][0] < MIN_INTERVAL_S:
                continue
            merged.append((sec, min(v, merged[-1][1]) if merged else v))  # survival never rises
        for (t0, n0), (t1, n1) in itertools.pairwise(merged):
            if n0 <= 0:
                continue
            secs = on_screen(lay, t0, t1)
            if not secs:
                continue
            rows_x.append(secs)
            lengths.append(t1 - t0)
            ys.append(math.log((n1 if n1 > 0 else 0.5) / n0))
            enter.append(n0)
            surv.append(n1)
    clips = sorted({c for r in rows_x for c in r})
    col = {c: j for j, c in enumerate(clips)}
    x = np.zeros((len(rows_x), len(clips)))
    for i, r in enumerate(rows_x):
        for c, v in r.items():
            x[i, col[c]] = v
    return HoldDesign(clips, x, np.asarray(lengths, float), np.asarray(ys, float), np.asarray(enter, float),
                      np.asarray(surv, float))


def ridge_hold(d: HoldDesign, lam: float = RIDGE_LAMBDA) -> tuple[float, dict[str, tuple[float, float]]]:
    """(baseline log survival per second, clip -> (effect, se)).

    Model: y = theta·length + Σ_c x_c·delta_c; weights w = entering / mean(entering); the baseline theta is
    free, every delta has a ridge penalty lam·delta² (shrinks clips with little screen time to the average).
    Solve (ZᵀWZ + P)β = ZᵀWy with Z = [length | x], P = diag(0, lam, …). Covariance sigma²·(ZᵀWZ + P)⁻¹, with
    sigma² the larger of the weighted residual variance Σw r²/(rows − df) and the binomial floor
    mean((1 − p)/(p·mean(entering))) (p = survival ratio): a perfect fit never claims more than the counts allow."""
    if d.y.size == 0:
        return 0.0, {}
    w = d.entering / d.entering.mean()
    z = np.column_stack([d.length, d.x])
    pen = np.full(z.shape[1], float(lam))
    pen[0] = 0.0
    zw = z * w[:, None]
    a = z.T @ zw + np.diag(pen)
    a_inv = np.linalg.pinv(a)
    beta = a_inv @ (zw.T @ d.y)
    resid = d.y - z @ beta
    df = float(np.trace(a_inv @ (zw.T @ z)))  # trace of the hat matrix, without forming it
    sigma2_resid = float((w * resid ** 2).sum() / max(d.y.size - df, 1.0))
    p = np.clip(np.maximum(d.surviving, 0.5) / d.entering, 1e-9, 1.0)
    sigma2_binom = float(np.mean((1.0 - p) / (p * d.entering.mean())))
    cov = max(sigma2_resid, sigma2_binom) * a_inv
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return float(beta[0]), {c: (float(beta[j + 1]), float(se[j + 1])) for j, c in enumerate(d.clips)}


def element_credit(totals: Iterable[VariantTotals], metadata: Mapping[str, Mapping[str, object]],
                   mass: float = CI_MASS) -> list[ElementCredit]:
    """Click-through (Beta-binomial) and conversions per 1000 impressions (Gamma-Poisson) per element value,
    priors pooled over the values of the same element on the same platform."""
    acc: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    ads: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for t in totals:
        meta = metadata.get(t.variant_key)
        if not meta or not t.full("impressions"):
            continue
        for el, val in meta.items():
            if val is None or val == "":
                continue
            k = (t.platform, el, str(val))
            a = acc[k]
            a[0] += t.sums.get("clicks", 0.0)
            a[1] += t.sums.get("impressions", 0.0)
            a[2] += t.sums.get("conversions", 0.0)
            a[3] += t.impressions_raw
            ads[k] |= t.ad_ids
    out: list[ElementCredit] = []
    by_el: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for k in acc:
        by_el[(k[0], k[1])].append(k)
    for keys in by_el.values():
        keys.sort()
        ctr_prior = beta_prior_mom([acc[k][0] for k in keys], [acc[k][1] for k in keys]) or (1.0, 1.0)
        cvr_prior = gamma_prior_mom([acc[k][2] for k in keys], [acc[k][1] / 1000.0 for k in keys]) or (1.0, 1.0)
        for k in keys:
            clicks, imps, conv, raw = acc[k]
            if imps <= 0:
                continue
            ctr, lo, hi, _, _ = beta_posterior(min(clicks, imps), imps, ctr_prior, mass)
            cvr, clo, chi = gamma_posterior(conv, imps / 1000.0, cvr_prior, mass)
            out.append(ElementCredit(platform=k[0], element=k[1], value=k[2], ctr=ctr, ctr_low=lo, ctr_high=hi,
                                     cvr_per_1k=cvr, cvr_low=clo, cvr_high=chi, n_ads=len(ads[k]),
                                     impressions=int(raw), clicks=clicks, conversions=conv))
    return out


def clip_click_counts(totals: Iterable[VariantTotals], lays: Mapping[str, Sequence[tuple[float, float, str]]]
                      ) -> dict[str, tuple[float, float, float | None]]:
    """clip -> (clicks, impressions, conversions or None) of the variants it is in, weighted by its share of their
    screen time (conversions None when some variant did not report them)."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    conv_ok: dict[str, bool] = defaultdict(lambda: True)
    for t in totals:
        lay = lays.get(t.variant_key)
        if not lay or not t.full("impressions") or not t.full("clicks"):
            continue
        total = sum(e - s for s, e, _ in lay)
        for clip, secs in on_screen(lay, 0.0, float("inf")).items():
            share = secs / total
            out[clip][0] += share * t.sums["clicks"]
            out[clip][1] += share * t.sums["impressions"]
            out[clip][2] += share * t.sums.get("conversions", 0.0)
            conv_ok[clip] = conv_ok[clip] and t.full("conversions")
    return {c: (v[0], v[1], v[2] if conv_ok[c] else None) for c, v in out.items()}


def snapshot_id(rows: Sequence[RowLike], shots: Sequence[ShotLike], *, as_of: dt.date, half_life: float | None,
                lam: float) -> str:
    """A content id of the inputs and parameters: the same data gives the same snapshot."""
    h = hashlib.sha256(f"{as_of}|{half_life}|{lam}".encode())
    for r in sorted(rows, key=lambda r: (r.platform, r.ad_id, r.date)):
        h.update(repr((r.platform, r.ad_id, r.date.isoformat(), r.variant_key, r.impressions, r.plays, r.views_2s,
                       r.views_3s, r.clicks, r.conversions, r.checkpoints(None))).encode())
    for s in sorted(shots, key=lambda s: (s.variant_key, s.start)):
        h.update(repr((s.variant_key, s.start, s.end, s.clip_id)).encode())
    return f"C{as_of:%Y%m%d}-{h.hexdigest()[:10]}"


def compute_credit(
    rows: Sequence[RowLike], shots: Sequence[ShotLike], *, durations: Mapping[str, float] | None = None,
    groups: Mapping[str, object] | None = None, metadata: Mapping[str, Mapping[str, object]] | None = None,
    as_of: dt.date | None = None, half_life_days: float | None = HALF_LIFE_DAYS, ridge_lambda: float = RIDGE_LAMBDA,
    snapshot: str | None = None, mass: float = CI_MASS,
) -> CreditReport:
    """Hook, hold and click credit per (clip, platform), and click / conversion credit per element value.

    `durations`: variant key -> seconds (default: the end of its last shot); `groups`: clip id -> its prior
    pool, e.g. (content type, product); `metadata`: variant key -> {element: value}; `as_of`: the day decay
    counts from (default: the newest row's date); `snapshot`: the id to stamp (default: a content hash)."""
    lays = layouts(shots)
    durs = {k: max(e for _, e, _ in v) for k, v in lays.items()}
    durs.update(durations or {})
    if as_of is None:
        as_of = max((r.date for r in rows), default=dt.date.today())
    snap = snapshot or snapshot_id(rows, shots, as_of=as_of, half_life=half_life_days, lam=ridge_lambda)
    totals = aggregate(rows, durs, as_of=as_of, half_life_days=half_life_days)
    unmatched = sorted({k for (_, k) in totals if k not in lays})
    by_platform: dict[str, list[VariantTotals]] = defaultdict(list)
    for (plat, key), t in sorted(totals.items()):
        if key in lays:
            by_platform[plat].append(t)
    clips: list[ClipCredit] = []
    bases: dict[str, str] = {}
    for plat, ts in by_platform.items():
        basis = hook_basis(ts)
        hooks: dict[str, tuple[float, float, float, float, float]] = {}
        counts: dict[str, HookCounts] = {}
        start_s = 0.0
        if basis is not None:
            bases[plat] = f"{basis[0]}/{basis[1]}"
            counts = hook_counts(ts, lays, basis)
            hooks = hook_credit(counts, groups, mass)
            start_s = HOOK_TIMES[basis[0]] if all(HOOK_TIMES[basis[0]] in t.checkpoints for t in ts) else 0.0
        _, holds = ridge_hold(hold_design(ts, lays, durs, start_s), ridge_lambda)
        clicks = clip_click_counts(ts, lays)
        click_prior = beta_prior_mom([v[0] for v in clicks.values()], [v[1] for v in clicks.values()]) or (1.0, 1.0)
        conv_known = {c: v for c, v in clicks.items() if v[2] is not None}
        conv_prior = gamma_prior_mom([v[2] or 0.0 for v in conv_known.values()],
                                     [v[1] / 1000.0 for v in conv_known.values()]) or (1.0, 1.0)
        n_ads: dict[str, set[str]] = defaultdict(set)
        imps: dict[str, int] = defaultdict(int)
        for t in ts:
            for clip in {c for _, _, c in lays[t.variant_key]}:
                n_ads[clip] |= t.ad_ids
                imps[clip] += t.impressions_raw
        for clip in sorted(n_ads):
            h = hooks.get(clip)
            hold = holds.get(clip)
            ck = clicks.get(clip)
            ctr = beta_posterior(min(ck[0], ck[1]), ck[1], click_prior, mass) if ck and ck[1] > 0 else None
            cvr = (gamma_posterior(ck[2], ck[1] / 1000.0, conv_prior, mass)
                   if ck and ck[1] > 0 and ck[2] is not None else None)
            clips.append(ClipCredit(
                clip_id=clip, platform=plat, hook_rate=h[0] if h else None, hook_low=h[1] if h else None,
                hook_high=h[2] if h else None, hold_effect=hold[0] if hold else None,
                hold_se=hold[1] if hold else None, n_ads=len(n_ads[clip]), impressions=imps[clip], snapshot=snap,
                hook_alpha=h[3] if h else None, hook_beta=h[4] if h else None,
                hook_trials=counts[clip].trials if clip in counts else 0.0,
                ctr=ctr[0] if ctr else None, ctr_low=ctr[1] if ctr else None, ctr_high=ctr[2] if ctr else None,
                cvr_per_1k=cvr[0] if cvr else None, cvr_low=cvr[1] if cvr else None,
                cvr_high=cvr[2] if cvr else None,
            ))
    usable = [t for ts in by_platform.values() for t in ts]
    elements = element_credit(usable, metadata or {}, mass)
    elements = [e.model_copy(update={"snapshot": snap}) for e in elements]
    return CreditReport(snapshot=snap, as_of=as_of, half_life_days=half_life_days, ridge_lambda=ridge_lambda,
                        hook_basis=bases, clips=clips, elements=elements, unmatched_keys=unmatched,
                        rows_used=sum(t.n_rows for t in usable))
