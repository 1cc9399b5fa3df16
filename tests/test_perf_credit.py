"""Credit on hand-computed cases, ranking that learns without breaking the caller's filters, and the simulator's
targets (hook ρ ≥ 0.9 at 20k impressions a day, hold credit beats the naive baseline, regret Thompson < greedy <
semantic-only)."""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import pytest

from cutpilot.errors import InputError
from cutpilot.perf import credit, store
from cutpilot.perf.credit import (
    beta_ppf,
    beta_prior_mom,
    compute_credit,
    decay_weight,
    gamma_ppf,
    hook_shares,
)
from cutpilot.perf.model import DailyRow, Variant, VariantShot
from cutpilot.perf.rank import ExploreQuota, PerfRanker
from cutpilot.settings import get_settings

DAY = dt.date(2026, 11, 30)
KA, KB = "CPAAAAAAA", "CPBBBBBBB"


def row(key: str, ad: str, day: dt.date = DAY, platform: str = "oceanengine", **kw: int) -> DailyRow:
    return DailyRow(date=day, platform=platform, ad_id=ad, ad_name=f"x_{key}", variant_key=key,  # type: ignore[arg-type]
                    **kw)


def shot(key: str, start: float, end: float, clip: str) -> VariantShot:
    return VariantShot(variant_key=key, start=start, end=end, clip_id=clip)


# --- special functions -----------------------------------------------------------------------------------------
def test_quantiles_match_closed_forms() -> None:
    """Beta(1, 1) is uniform, Beta(2, 1) has CDF x² (quantile √q), Gamma(1, r) is exponential (−ln(1 − q)/r);
    a large Beta uses the Cornish-Fisher branch and must still sit on mean ± 1.645 sd."""
    for q in (0.05, 0.5, 0.95):
        assert beta_ppf(q, 1.0, 1.0) == pytest.approx(q, abs=1e-10)
        assert beta_ppf(q, 2.0, 1.0) == pytest.approx(math.sqrt(q), abs=1e-10)
        assert gamma_ppf(q, 1.0, 2.0) == pytest.approx(-math.log(1 - q) / 2.0, abs=1e-9)
    a, b = 40_000.0, 60_000.0
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert beta_ppf(0.95, a, b) == pytest.approx(0.4 + 1.6449 * sd, abs=0.01 * sd)


def test_decay_half_life() -> None:
    assert decay_weight(0) == 1.0
    assert decay_weight(7) == pytest.approx(0.5)
    assert decay_weight(14) == pytest.approx(0.25)
    assert decay_weight(3, None) == 1.0
    assert decay_weight(-1) == 0.0  # a row after the as-of day


# --- hook ------------------------------------------------------------------------------------------------------
def test_hook_credit_two_ads_by_hand() -> None:
    """Two ads on Ocean Engine, one day (no decay), basis 3 s views / plays.

    Ad A (12 s): clip a 0–1.5 s, b 1.5–6 s, c 6–12 s; plays 1000, 3 s views 400.
    Ad B (12 s): clip b 0–6 s, c 6–12 s; plays 2000, 3 s views 1000.
    Hook window 2 s: A's counts split a 1.5/2 = 0.75, b 0.25; B's all to b.
      a: s = 0.75·400 = 300,  n = 0.75·1000 = 750          (p = 0.4)
      b: s = 0.25·400 + 1000 = 1100,  n = 250 + 2000 = 2250 (p = 0.48889)
    Prior pooled over the group {a, b} by moments:
      m = 1400/3000 = 7/15
      Σ n (p − m)² = 750·(1/15)² + 2250·(1/45)² = 10/3 + 10/9 = 40/9
      (k − 1)·m(1 − m) = 56/225;  Σn − Σn²/Σn = 3000 − 1875 = 1125
      τ² = (40/9 − 56/225)/1125 = 944/253125
      κ = m(1 − m)/τ² − 1 = 63000/944 − 1 = 65.7373;  α0 = 7/15·κ = 30.6774, β0 = 35.0599
    Posterior means: a = (α0 + 300)/(κ + 750) = 0.405372; b = (α0 + 1100)/(κ + 2250) = 0.488258.
    c is never on screen in the first 2 s: no hook credit (None, not 0)."""
    rows = [row(KA, "1", impressions=5000, plays=1000, views_3s=400),
            row(KB, "2", impressions=8000, plays=2000, views_3s=1000)]
    shots = [shot(KA, 0, 1.5, "a"), shot(KA, 1.5, 6, "b"), shot(KA, 6, 12, "c"), shot(KB, 0, 6, "b"),
             shot(KB, 6, 12, "c")]
    rep = compute_credit(rows, shots, groups={"a": "g", "b": "g", "c": "g"})
    by = {c.clip_id: c for c in rep.clips}
    kappa = 63000 / 944 - 1
    a0, b0 = 7 / 15 * kappa, 8 / 15 * kappa
    assert (a0, b0) == pytest.approx(beta_prior_mom([300, 1100], [750, 2250]))
    assert by["a"].hook_rate == pytest.approx((a0 + 300) / (kappa + 750), rel=1e-9)
    assert by["b"].hook_rate == pytest.approx((a0 + 1100) / (kappa + 2250), rel=1e-9)
    assert by["a"].hook_rate == pytest.approx(0.405372, abs=1e-6)
    assert by["b"].hook_rate == pytest.approx(0.488258, abs=1e-6)
    assert by["c"].hook_rate is None and by["c"].hook_low is None
    assert by["a"].hook_trials == pytest.approx(750) and by["b"].hook_trials == pytest.approx(2250)
    for c in (by["a"], by["b"]):
        assert c.hook_low is not None and c.hook_high is not None
        assert c.hook_low < c.hook_rate < c.hook_high  # type: ignore[operator]
        assert c.hook_alpha is not None and c.hook_beta is not None
        assert c.hook_low == pytest.approx(beta_ppf(0.05, c.hook_alpha, c.hook_beta))
    assert by["a"].hook_high - by["a"].hook_low > by["b"].hook_high - by["b"].hook_low  # type: ignore[operator]
    assert rep.hook_basis == {"oceanengine": "views_3s/plays"}
    assert (by["a"].n_ads, by["b"].n_ads, by["c"].n_ads) == (1, 2, 2)
    assert (by["a"].impressions, by["b"].impressions) == (5000, 13000)
    assert {c.snapshot for c in rep.clips} == {rep.snapshot}


def test_hook_shares_and_basis_fallbacks() -> None:
    """Shares follow seconds on screen in the first 2 s; a platform without 3 s views uses 2 s views, and one
    without plays uses impressions (and says so)."""
    assert hook_shares([(0.0, 0.5, "x"), (0.5, 4.0, "y")]) == pytest.approx({"x": 0.25, "y": 0.75})
    assert hook_shares([(0.0, 1.0, "x")]) == {"x": 1.0}  # a 1 s ad: its whole length is the window
    rows = [row(KA, "1", platform="meta", impressions=900, plays=600, views_2s=300),
            row(KB, "2", platform="kuaishou", impressions=1000, views_3s=250)]
    rep = compute_credit(rows, [shot(KA, 0, 10, "a"), shot(KB, 0, 10, "b")])
    assert rep.hook_basis == {"meta": "views_2s/plays", "kuaishou": "views_3s/impressions"}
    by = {(c.platform, c.clip_id): c for c in rep.clips}
    # one clip per platform: the pooled prior is its own rate, so the posterior mean is the rate itself
    assert by[("meta", "a")].hook_rate == pytest.approx(0.5)
    assert by[("kuaishou", "b")].hook_rate == pytest.approx(0.25)


def test_time_decay_applies_to_counts() -> None:
    """One ad, two days a week apart (half-life 7 d): the older day counts half.
    s = 0.5·500 + 300 = 550, n = 0.5·1000 + 1000 = 1500: rate 11/30."""
    rows = [row(KA, "1", day=DAY - dt.timedelta(days=7), impressions=2000, plays=1000, views_3s=500),
            row(KA, "1", day=DAY, impressions=2000, plays=1000, views_3s=300)]
    rep = compute_credit(rows, [shot(KA, 0, 8, "a")])
    (c,) = rep.clips
    assert c.hook_trials == pytest.approx(1500)
    assert c.hook_rate == pytest.approx(550 / 1500)
    assert c.impressions == 4000  # what was shown, undecayed
    flat = compute_credit(rows, [shot(KA, 0, 8, "a")], half_life_days=None)
    assert flat.clips[0].hook_rate == pytest.approx(800 / 2000)
    future = compute_credit(rows, [shot(KA, 0, 8, "a")], as_of=DAY - dt.timedelta(days=1))
    assert future.clips[0].hook_rate == pytest.approx(0.5)  # the day after as-of is not seen


# --- hold ------------------------------------------------------------------------------------------------------
def test_hold_two_ads_by_hand() -> None:
    """Two 16 s ads, one clip each (A: clip a, B: clip b), checkpoints 3 s, 25/50/75/100 % = 4, 8, 12, 16 s.
    Intervals [3,4], [4,8], [8,12], [12,16] (lengths L = 1, 4, 4, 4), y = log(n_end / n_start).

    With one clip per ad, x = L for its clip, so the ridge problem
      min Σ w (y − L(θ + δ_clip))² + λ(δ_a² + δ_b²),  w = entering / mean(entering)
    reduces, with u = θ + δ, S = Σ w L², û = Σ w L y / S per ad, to
      min S_A (u_a − û_a)² + S_B (u_b − û_b)² + λ (u_a − u_b)²/2   (θ free sits at the midpoint)
    so d = u_a − u_b = (û_a − û_b) / (1 + λ/2 · (1/S_A + 1/S_B)) and δ_a = d/2 = −δ_b."""
    a_counts = [1000, 900, 600, 400, 300]
    b_counts = [2000, 1900, 1600, 1400, 1300]
    rows = [row(KA, "1", impressions=3000, plays=1500, views_3s=a_counts[0], p25=a_counts[1], p50=a_counts[2],
                p75=a_counts[3], p100=a_counts[4]),
            row(KB, "2", impressions=5000, plays=2500, views_3s=b_counts[0], p25=b_counts[1], p50=b_counts[2],
                p75=b_counts[3], p100=b_counts[4])]
    shots = [shot(KA, 0, 16, "a"), shot(KB, 0, 16, "b")]
    lengths = [1.0, 4.0, 4.0, 4.0]
    mean_enter = (sum(a_counts[:4]) + sum(b_counts[:4])) / 8  # 1225

    def fit(counts: list[int]) -> tuple[float, float]:
        w = [n / mean_enter for n in counts[:4]]
        y = [math.log(counts[i + 1] / counts[i]) for i in range(4)]
        s = sum(wi * li * li for wi, li in zip(w, lengths, strict=True))
        t = sum(wi * li * yi for wi, li, yi in zip(w, lengths, y, strict=True))
        return t / s, s

    for lam in (1.0, 50.0):
        (ua, sa), (ub, sb) = fit(a_counts), fit(b_counts)
        d = (ua - ub) / (1 + lam / 2 * (1 / sa + 1 / sb))
        rep = compute_credit(rows, shots, ridge_lambda=lam)
        by = {c.clip_id: c for c in rep.clips}
        assert by["a"].hold_effect == pytest.approx(d / 2, abs=1e-9)
        assert by["b"].hold_effect == pytest.approx(-d / 2, abs=1e-9)
        assert by["a"].hold_effect < 0 < by["b"].hold_effect  # type: ignore[operator]
        assert by["a"].hold_se is not None and by["a"].hold_se > 0
    weak, strong = (compute_credit(rows, shots, ridge_lambda=lam).clips[0].hold_effect for lam in (1.0, 50.0))
    assert abs(strong) < abs(weak)  # type: ignore[arg-type]  # the ridge prior shrinks toward the average


def test_hold_design_skips_the_hook_and_caps_rises() -> None:
    """Hold starts at the hook's checkpoint (3 s); a checkpoint count that rises is read as no loss."""
    rows = [row(KA, "1", impressions=100, plays=100, views_3s=50, p50=60, p100=30)]
    rep = credit.aggregate(rows, {KA: 12.0}, as_of=DAY)
    lays = credit.layouts([shot(KA, 0, 4, "a"), shot(KA, 4, 12, "b")])
    d = credit.hold_design(rep.values(), lays, {KA: 12.0}, start_s=3.0)
    assert d.length.tolist() == [3.0, 6.0]  # 3→6 s, 6→12 s
    assert d.y[0] == 0.0 and d.y[1] == pytest.approx(math.log(30 / 50))
    assert d.clips == ["a", "b"] and d.x.tolist() == [[1.0, 2.0], [0.0, 6.0]]


# --- clicks and conversions --------------------------------------------------------------------------------------
def test_element_credit_by_hand() -> None:
    """cta "buy" on ad A: 50 clicks / 5000 impressions, 5 conversions; "learn" on B: 60 / 8000, 9.
    CTR prior by moments: m = 110/13000; Σn(p − m)² = 5000(0.01 − m)² + 8000(0.0075 − m)²;
    τ² = (that − m(1 − m)) / (13000 − (5000² + 8000²)/13000); κ = m(1 − m)/τ² − 1 ≈ 4761.4;
    posterior buy = (mκ + 50)/(κ + 5000) ≈ 0.009250. Conversions per 1000 impressions: the spread
    (Σe(r − μ)² = 0.048 with e = 5, 8) is below Poisson noise ((k − 1)μ = 1.077), so the prior is as strong as
    allowed and both values sit at μ = 14/13."""
    rows = [row(KA, "1", impressions=5000, plays=2000, views_3s=900, clicks=50, conversions=5),
            row(KB, "2", impressions=8000, plays=3000, views_3s=1500, clicks=60, conversions=9)]
    shots = [shot(KA, 0, 10, "a"), shot(KB, 0, 10, "b")]
    rep = compute_credit(rows, shots, metadata={KA: {"cta": "buy", "voice": ""}, KB: {"cta": "learn"}})
    by = {e.value: e for e in rep.elements}
    assert set(by) == {"buy", "learn"}  # an empty value is no element
    m = 110 / 13000
    spread = 5000 * (0.01 - m) ** 2 + 8000 * (0.0075 - m) ** 2
    tau2 = (spread - m * (1 - m)) / (13000 - (5000 ** 2 + 8000 ** 2) / 13000)
    kappa = m * (1 - m) / tau2 - 1
    assert kappa == pytest.approx(4761.4, rel=1e-4)
    assert by["buy"].ctr == pytest.approx((m * kappa + 50) / (kappa + 5000), rel=1e-9)
    assert by["buy"].ctr == pytest.approx(0.009250, abs=1e-6)
    assert by["buy"].ctr > by["learn"].ctr
    for e in by.values():
        assert e.ctr_low < e.ctr < e.ctr_high
        assert e.cvr_per_1k == pytest.approx(14 / 13, rel=1e-3)
        assert e.cvr_low < e.cvr_per_1k < e.cvr_high
        assert e.n_ads == 1
    # clips get click credit too, with intervals that are kept however wide
    clips = {c.clip_id: c for c in rep.clips}
    assert clips["a"].ctr is not None and clips["a"].ctr_low is not None and clips["a"].ctr_high is not None
    assert clips["a"].ctr_low < clips["a"].ctr < clips["a"].ctr_high
    assert clips["a"].cvr_low < clips["a"].cvr_per_1k < clips["a"].cvr_high  # type: ignore[operator]


def test_unmatched_keys_are_reported_not_credited() -> None:
    rows = [row(KA, "1", impressions=100, plays=80, views_3s=40), row("CPZZZZZZZ", "9", impressions=100, plays=80,
                                                                       views_3s=70)]
    rep = compute_credit(rows, [shot(KA, 0, 5, "a")])
    assert rep.unmatched_keys == ["CPZZZZZZZ"]
    assert [c.clip_id for c in rep.clips] == ["a"]


# --- ranking ---------------------------------------------------------------------------------------------------
def _two_clip_report() -> credit.CreditReport:
    """'good' opens an ad with a 60 % 3 s rate, 'bad' one with 20 %; 'banned' (great data) is what a hard
    filter removed before ranking."""
    keys = ["CPGGGGGGG", "CPHHHHHHH", "CPJJJJJJJ"]
    rows = [row(keys[0], "1", impressions=20000, plays=10000, views_3s=6000),
            row(keys[1], "2", impressions=20000, plays=10000, views_3s=2000),
            row(keys[2], "3", impressions=20000, plays=10000, views_3s=9000)]
    shots = [shot(keys[0], 0, 8, "good"), shot(keys[1], 0, 8, "bad"), shot(keys[2], 0, 8, "banned")]
    return compute_credit(rows, shots)


def test_ranking_changes_after_data_and_only_rescores_what_it_is_given() -> None:
    cands = [("bad", 0.52), ("good", 0.50), ("fresh", 0.49)]
    before = PerfRanker.empty().adjust(cands, "mean")
    assert [s.score for s in before] == [0.52, 0.50, 0.49] and before[0].clip_id == "bad"
    assert PerfRanker.empty().snapshot_id is None
    rep = _two_clip_report()
    ranker = PerfRanker.from_credits(rep)
    after = ranker.adjust(cands, "mean")
    assert [s.clip_id for s in after] == ["bad", "good", "fresh"]  # same items, same order: the caller sorts
    best = max(after, key=lambda s: s.score)
    assert best.clip_id == "good"
    assert {s.clip_id: s.perf for s in after}["fresh"] == 0.0  # no data: the average, in mean mode
    assert all(s.score == pytest.approx(s.relevance + s.perf) for s in after)
    boosts = ranker.boost(["bad", "fresh"], mode="mean", seed=1)
    assert set(boosts) == {"bad", "fresh"}  # 'banned' and 'good' were not asked about
    assert boosts["bad"] < 0
    for seed in range(50):  # Thompson never adds or drops a candidate either
        out = ranker.adjust(cands, "thompson", np.random.default_rng(seed))
        assert [s.clip_id for s in out] == ["bad", "good", "fresh"]
        assert "banned" not in {s.clip_id for s in out}
    assert ranker.snapshot_id == rep.snapshot
    assert ranker.record("thompson", seed=3)["snapshot"] == rep.snapshot
    with pytest.raises(InputError):
        ranker.adjust(cands, "best")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        ranker.boost(["a"], relevance=[0.1, 0.2])


def test_thompson_explores_at_least_min_explore() -> None:
    """'fresh' has no data and much lower relevance; the proven clip would win every draw on its own."""
    ranker = PerfRanker.from_credits(_two_clip_report())
    cands = [("good", 0.6), ("bad", 0.4), ("fresh", 0.3)]
    gen = np.random.default_rng(0)
    n = 4000
    tops = [max(ranker.adjust(cands, "thompson", gen, min_explore=0.2), key=lambda s: s.score).clip_id
            for _ in range(n)]
    share = tops.count("fresh") / n
    assert share >= 0.2 - 3 * math.sqrt(0.2 * 0.8 / n)  # the coin gives 0.2 in expectation, draws add a little
    # a batch quota is exact: at least ceil(0.2 · 7) = 2 of 7 variants open on untested footage
    quota = ExploreQuota(7, 0.2)
    explored = 0
    for k in range(7):
        out = ranker.adjust(cands, "thompson", np.random.default_rng(k), explore=quota.force_next())
        top = max(out, key=lambda s: s.score)
        quota.record(not ranker.has_data(top.clip_id))
        explored += top.clip_id == "fresh"
    assert explored >= 2
    # mean mode never explores
    assert all(max(ranker.adjust(cands, "mean", gen), key=lambda s: s.score).clip_id == "good" for _ in range(50))
    # a forced lift puts the explored clip on top and says so
    lifted = ranker.adjust(cands, "thompson", gen, explore=True)
    top = max(lifted, key=lambda s: s.score)
    assert top.clip_id == "fresh" and top.explored


def test_group_prior_for_untested_clips() -> None:
    """An untested clip of a group whose tested clips all did well starts above the population average."""
    rep = _two_clip_report()
    ranker = PerfRanker.from_credits(rep, groups={"good": "G", "banned": "G", "bad": "B", "fresh": "G"})
    assert ranker.z("fresh") > 0
    assert PerfRanker.from_credits(rep).z("fresh") == 0.0


def test_from_store_uses_the_latest_snapshot() -> None:
    settings = get_settings()
    assert PerfRanker.from_store(settings).snapshot_id is None
    store.register_variants(settings, [Variant(variant_key=KA, ad_name=f"x_{KA}", duration_s=8.0, product="p"),
                                       Variant(variant_key=KB, ad_name=f"x_{KB}", duration_s=8.0, product="p")],
                            [shot(KA, 0, 8, "a"), shot(KB, 0, 8, "b")])
    rep = store.upsert_rows(settings, [row(KA, "1", impressions=5000, plays=3000, views_3s=2000),
                                       row(KB, "2", impressions=5000, plays=3000, views_3s=600)],
                            platform="oceanengine", file="t.csv", sha256="0" * 64)
    ranker = PerfRanker.from_store(settings)
    assert ranker.snapshot_id == rep.snapshot_id
    b = ranker.boost(["a", "b"])
    assert b["a"] > 0 > b["b"]


# --- simulator -------------------------------------------------------------------------------------------------
def test_simulator_targets() -> None:
    from evals.perf import run_perf_eval

    t0 = time.perf_counter()
    res = run_perf_eval(seed=0)
    assert time.perf_counter() - t0 < 60
    assert res["hook_rho_min"] >= 0.9, res["hook_rho"]
    assert res["hold_rho_mean"] > res["hold_rho_naive_mean"]
    r = res["regret"]
    assert r["thompson"] < r["greedy"] < r["semantic"], r
    assert res["passed"] is True
    assert set(res["hook_basis"]) == {"tiktok", "meta", "oceanengine", "qianchuan", "kuaishou"}
    assert res["rows"] == res["variants"] * 5 * 10  # every platform's export read back whole by its adapter
