"""Paired comparisons of two architectures' seed runs (Bouthillier et al., 2021): run i of A and run i of B drew
the same seeds, so their difference is what A changes. P(A > B) over the pairs, with a bootstrap interval, decides
by Bouthillier's rule beside the t-test and ASO rule of `stats.compare`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

from rnncompare.analysis.stats import smallest_count

GAMMA = 0.75  # Bouthillier et al.'s threshold for a meaningful P(A > B)
BOOTSTRAP = 1000
BOUTHILLIER_RULE = (
    "P(A > B) over paired seed runs: A better when its {confidence:.0%} bootstrap interval lies above 0.5 and "
    "reaches {gamma} (Bouthillier et al., 2021)"
)


def probability_a_better(differences: np.ndarray) -> float:
    """P(A > B) over paired runs, a tie counting half."""
    return float(np.mean((differences > 0) + 0.5 * (differences == 0)))


def paired_statistics(
    a: Sequence[float],
    b: Sequence[float],
    *,
    higher_is_better: bool,
    confidence: float,
    seed: int,
    gamma: float = GAMMA,
    bootstrap: int = BOOTSTRAP,
) -> dict:
    """For paired scores (a[i] and b[i] from the same seeds): the mean difference in A's favour, the paired t-test,
    Wilcoxon's signed-rank test, P(A > B) with its bootstrap interval, and Bouthillier's rule: True (A better),
    False (B better) or None (no decision)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    differences = (a - b) if higher_is_better else (b - a)
    if np.all(differences == 0):
        t_p = w_p = 1.0
    else:
        with warnings.catch_warnings():  # scipy warns of precision on nearly equal differences, and answers
            warnings.simplefilter("ignore", RuntimeWarning)
            t_p = float(scipy_stats.ttest_rel(a, b).pvalue)
            w_p = float(scipy_stats.wilcoxon(differences).pvalue)
        t_p = 0.0 if np.isnan(t_p) else t_p  # one and the same nonzero difference in every pair
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(differences), size=(bootstrap, len(differences)))
    resampled = np.mean((differences[draws] > 0) + 0.5 * (differences[draws] == 0), axis=1)
    tail = (1 - confidence) / 2
    low, high = (float(value) for value in np.quantile(resampled, [tail, 1 - tail]))
    p = probability_a_better(differences)
    decision = True if low > 0.5 and high > gamma else False if high < 0.5 and low < 1 - gamma else None
    return {
        "paired_runs": len(differences),
        "paired_difference": float(np.mean(differences)),
        "paired_t_p": t_p,
        "wilcoxon_p": w_p,
        "p_a_better": p,
        "p_a_better_ci": [min(low, p), max(high, p)],
        "bouthillier_a_better": decision,
        "bouthillier_rule": BOUTHILLIER_RULE.format(confidence=confidence, gamma=gamma),
    }


def paired_scores(
    seeds_a: Sequence[int], scores_a: Sequence[float], seeds_b: Sequence[int], scores_b: Sequence[float]
) -> tuple[list[float], list[float]]:
    """The two architectures' scores on the seeds both finished, in the order of A's seeds."""
    by_seed = dict(zip(seeds_b, scores_b))
    shared = [(score, by_seed[seed]) for seed, score in zip(seeds_a, scores_a) if seed in by_seed]
    return [pair[0] for pair in shared], [pair[1] for pair in shared]


def paired_seeds_needed(
    a: Sequence[float], b: Sequence[float], alpha: float, power: float = 0.8, limit: int = 10_000
) -> int | None:
    """Paired seed runs for a two-sided paired t-test at `alpha` to detect the observed mean difference with
    `power` (noncentral t on the differences): what pairing saves over `stats.seeds_needed`, where run i of both
    drew the same split, order and initialisation. Never fewer than one more than the pairs already run; None when
    the mean difference is zero or more than `limit` would be needed."""
    differences = np.asarray(a, float) - np.asarray(b, float)
    mean, spread = abs(differences.mean()), differences.std(ddof=1) if len(differences) > 1 else 0.0
    floor = len(differences) + 1
    if mean == 0:
        return None
    if spread == 0:
        return floor
    return smallest_count(mean / spread, alpha, power, floor, limit, paired=True)
