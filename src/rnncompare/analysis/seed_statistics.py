"""Statistics over an architecture's seed runs: the only place they are computed, for the runs and for the report
alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rnncompare.analysis.stats import describe
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import TrialResult


def representative_seed(
    seed_results: Sequence[TrialResult], headline: str, among: set[str] | None = None
) -> TrialResult | None:
    """The finished seed run (of those in `among`, by default any) whose headline score is closest to the seeds'
    mean: the one model that stands for the architecture's typical result. None when there is no such run."""
    finished = [result for result in seed_results if result.status == RunStatus.FINISHED]
    candidates = [result for result in finished if among is None or result.trial_id in among]
    if not candidates:
        return None
    mean = sum(result.metrics[headline] for result in finished) / len(finished)
    return min(candidates, key=lambda result: (abs(result.metrics[headline] - mean), int(result.trial_id)))


def seed_spread_metrics(kind_metrics) -> tuple[str, ...]:
    """Metrics whose mean and standard deviation over seeds the architecture run and the report carry."""
    return (
        "best_epoch",
        kind_metrics.gap,
        "gap_loss",
        "epochs_after_best",
        "val_loss_rise",
        *(name for name in kind_metrics.test if name != kind_metrics.headline),
    )


def seed_spread(finished_metrics: Sequence[dict[str, float]], kind_metrics) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over the finished seeds of each of `seed_spread_metrics`."""
    spread = {}
    for name in seed_spread_metrics(kind_metrics):
        described = describe([metrics[name] for metrics in finished_metrics])
        spread[name] = {"mean": described["mean"], "std": described["std"]}
    return spread


def seed_statistics(seed_results: Sequence[TrialResult], confidence: float, kind_metrics) -> dict[str, float]:
    """Architecture-level numbers over the seed runs, as the architecture run logs them: the headline test
    metric's spread and confidence interval (e.g. ``test_accuracy_mean``, ``test_accuracy_ci_low``), and the mean
    and spread of the other metrics (``gap_accuracy_seed_mean``, ...)."""
    finished = [result.metrics for result in seed_results if result.status == RunStatus.FINISHED]
    values = {"seeds_finished": float(len(finished)), "seeds_failed": float(len(seed_results) - len(finished))}
    if not finished:
        return values
    headline = describe([m[kind_metrics.headline] for m in finished], confidence)
    values.update({f"{kind_metrics.headline}_{key}": value for key, value in headline.items() if key != "n"})
    for name, spread in seed_spread(finished, kind_metrics).items():
        values[f"{name}_seed_mean"] = spread["mean"]
        values[f"{name}_seed_std"] = spread["std"]
    return values


def seed_scores_summary(seeds: Sequence[dict[str, Any]], headline: str, confidence: float) -> dict[str, Any]:
    """For the report, from seed records: the seeds that finished, how many failed, their headline scores and the
    statistics of those."""
    finished = [seed for seed in seeds if seed["status"] == RunStatus.FINISHED]
    scores = [seed["metrics"][headline] for seed in finished]
    return {
        "seeds": [seed["seed"] for seed in finished],
        "failed": len(seeds) - len(finished),
        "scores": scores,
        "stats": describe(scores, confidence) if scores else None,
    }
