"""Statistics over seed scores: spread, confidence intervals and pairwise significance (no MLflow here)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

from rnncompare.compat import deepsig

# The corrected bar is spelled out: a pair at p 0.03 over three pairs is no difference, and the reader should see why.
ASO_RULE = (
    "ASO epsilon_min < {threshold} and Welch's t-test p < {corrected:.3g} "
    "({alpha} after Bonferroni over {pairs} pair(s))"
)
NO_DIFFERENCE = "no significant difference at this number of seeds"


INTERVAL_METHOD = "percentile bootstrap of the mean ({resamples:,} resamples)"
BOOTSTRAP_RESAMPLES = 9_999


def describe(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean, sample standard deviation, min, max and a percentile-bootstrap confidence interval of the mean.

    Percentile bootstrap, not Student's t: seed scores are often bimodal (solved or not), where a t-interval runs
    past the metric's range ("0.72 to 1.11" for an accuracy); a resampled mean never leaves [min, max] of the
    scores, so never the metric's range either. Seeded, so the same scores give the same interval.
    """
    array = np.asarray(values, dtype=float)
    count = len(array)
    mean = float(array.mean())
    std = float(array.std(ddof=1)) if count > 1 else 0.0
    low = high = mean
    if count > 1 and std > 0:
        interval = scipy_stats.bootstrap(
            (array,),
            np.mean,
            confidence_level=confidence,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            rng=np.random.default_rng(0),
        ).confidence_interval
        low, high = min(float(interval.low), mean), max(float(interval.high), mean)
    return {
        "n": count,
        "mean": mean,
        "std": std,
        "min": float(array.min()),
        "max": float(array.max()),
        "ci_low": float(low),
        "ci_high": float(high),
    }


def welch_p(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's t statistic and two-sided p-value; equal constant samples give p = 1, different constants p = 0."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() == 0 and b.std() == 0:
        return (0.0, 1.0) if a.mean() == b.mean() else (math.copysign(math.inf, a.mean() - b.mean()), 0.0)
    result = scipy_stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def rank_p(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mann-Whitney U statistic and two-sided exact p-value where possible."""
    if np.array_equal(np.sort(a), np.sort(b)):
        return float(len(a) * len(b) / 2), 1.0
    result = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def sorted_quantile_function(scores: Sequence[float]):
    """The empirical quantile function deepsig's `get_quantile_function` returns, over arrays at once.

    deepsig wraps a per-point function (which sorts the scores again at every point) in `np.vectorize`: with the
    default 1000 bootstrap iterations one ASO call evaluates it 400,000 times, about 4 s. This one sorts once and
    indexes every point together, with the same values.
    """
    ordered = np.sort(np.asarray(scores))
    count = len(ordered)

    def quantile(points):
        indices = np.ceil(count * np.asarray(points, dtype=float)).astype(int)
        return ordered[np.clip(indices - 1, 0, count - 1)]

    return quantile


def aso_epsilon(
    a: Sequence[float], b: Sequence[float], confidence: float, pairs: int, seed: int, bootstrap: int = 1000
) -> float:
    """epsilon_min of Almost Stochastic Order (Dror et al., 2019) via deepsig: near 0 means A dominates B."""
    return deepsig.aso(
        a,
        b,
        confidence=confidence,
        pairs=pairs,
        seed=seed,
        bootstrap=bootstrap,
        quantile_function=sorted_quantile_function,
    )


def seeds_needed(
    a: Sequence[float], b: Sequence[float], alpha: float, power: float = 0.8, limit: int = 10_000
) -> int | None:
    """Seeds per architecture for a two-sided two-sample t-test at `alpha` to detect the observed effect with
    `power` (noncentral t, Cohen's d from the observed scores).

    Never fewer than one more than the seeds already run: the call is made when those did not separate the pair.
    None when the observed difference is zero, or when more than `limit` would be needed.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    difference = abs(a.mean() - b.mean())
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if len(a) > 1 and len(b) > 1 else 0.0
    floor = max(len(a), len(b)) + 1
    if difference == 0:
        return None
    if pooled == 0:
        return floor
    return smallest_count(difference / pooled, alpha, power, floor, limit, paired=False)


def smallest_count(effect: float, alpha: float, power: float, floor: int, limit: int, *, paired: bool) -> int | None:
    """The fewest runs (per architecture, or pairs where `paired`) for a two-sided t-test at `alpha` to detect a
    standardized `effect` with `power` (noncentral t), never fewer than `floor`; None above `limit`."""
    for count in range(2, limit + 1):
        df = count - 1 if paired else 2 * count - 2
        critical = scipy_stats.t.ppf(1 - alpha / 2, df)
        shift = effect * math.sqrt(count if paired else count / 2)
        achieved = scipy_stats.nct.sf(critical, df, shift) + scipy_stats.nct.cdf(-critical, df, shift)
        if achieved >= power:
            return max(count, floor)
    return None


def compare(
    name_a: str,
    a: Sequence[float],
    name_b: str,
    b: Sequence[float],
    *,
    confidence: float,
    pairs: int,
    aso_threshold: float,
    seed: int,
    higher_is_better: bool = True,
    aso_bootstrap: int = 1000,
) -> dict:
    """Compare two architectures' seed scores and give a verdict: "A better", "B better" or no difference;
    `winner` names the better one, None where there is no significant difference."""
    alpha = 1 - confidence
    corrected_alpha = alpha / pairs
    t_statistic, t_p = welch_p(a, b)
    u_statistic, u_p = rank_p(a, b)
    sign = 1 if higher_is_better else -1
    better, worse = (a, b) if sign * (np.mean(a) - np.mean(b)) >= 0 else (b, a)
    # ASO asks whether the first sample is almost stochastically larger: feed it in the direction of "better".
    oriented = (lambda x: list(x)) if higher_is_better else (lambda x: [-v for v in x])
    eps_a_over_b = aso_epsilon(oriented(a), oriented(b), confidence, pairs, seed, aso_bootstrap)
    eps_b_over_a = aso_epsilon(oriented(b), oriented(a), confidence, pairs, seed, aso_bootstrap)
    if t_p < corrected_alpha and eps_a_over_b < aso_threshold and sign * (np.mean(a) - np.mean(b)) > 0:
        winner = name_a
    elif t_p < corrected_alpha and eps_b_over_a < aso_threshold and sign * (np.mean(b) - np.mean(a)) > 0:
        winner = name_b
    else:
        winner = None
    verdict = NO_DIFFERENCE if winner is None else f"{winner} better"
    needed = None if verdict != NO_DIFFERENCE else seeds_needed(better, worse, corrected_alpha)
    return {
        "a": name_a,
        "b": name_b,
        "mean_a": float(np.mean(a)),
        "mean_b": float(np.mean(b)),
        "n_a": len(a),
        "n_b": len(b),
        "welch_t": t_statistic,
        "welch_p": t_p,
        "mann_whitney_u": u_statistic,
        "mann_whitney_p": u_p,
        "aso_epsilon_min_a_over_b": eps_a_over_b,
        "aso_epsilon_min_b_over_a": eps_b_over_a,
        "corrected_alpha": corrected_alpha,
        "verdict": verdict,
        "winner": winner,
        "rule": ASO_RULE.format(threshold=aso_threshold, corrected=corrected_alpha, alpha=round(alpha, 6), pairs=pairs),
        "seeds_needed": needed,
    }
