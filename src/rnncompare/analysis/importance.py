"""Which hyperparameters matter: fANOVA importances (Hutter et al., 2014) of an architecture's finished trials, as
Greff et al. (2017) measured them, through Optuna's maintained `FanovaImportanceEvaluator` on an Optuna study made
from the keras-tuner trials."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

MIN_TRIALS = 8
SEARCHED = ("units", "dropout", "layers", "learning_rate")


def searched_ranges(search: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The hyperparameters a study's `search` config varies (min < max), with their ranges."""
    ranges = {}
    for name in SEARCHED:
        bounds = search.get(name)
        if bounds and bounds["min"] < bounds["max"]:
            ranges[name] = bounds
    return ranges


def why_absent(finished: int, ranges: Mapping[str, Any]) -> str | None:
    """Why no importance can be computed, in words, or None when it can."""
    if len(ranges) < 2:
        searched = ", ".join(ranges) or "none"
        return f"only one hyperparameter was searched ({searched}): there is nothing to apportion"
    if finished < MIN_TRIALS:
        return f"{finished} finished trial(s); fANOVA needs {MIN_TRIALS} or more"
    return None


def _distribution(name: str, bounds: Mapping[str, Any]):
    from optuna.distributions import FloatDistribution, IntDistribution

    if name in ("units", "layers"):
        return IntDistribution(int(bounds["min"]), int(bounds["max"]), step=int(bounds["step"]))
    if name == "learning_rate":
        return FloatDistribution(float(bounds["min"]), float(bounds["max"]), log=bounds.get("sampling") == "log")
    return FloatDistribution(float(bounds["min"]), float(bounds["max"]))


def importance(
    trials: Sequence[tuple[Mapping[str, float], float]], search: Mapping[str, Any], seed: int
) -> dict[str, float] | None:
    """Each searched hyperparameter's share of the variance of the objective over `trials` ((values, objective)
    pairs of finished trials); the shares sum to 1. None where `why_absent` has a reason."""
    ranges = searched_ranges(search)
    usable = [(values, score) for values, score in trials if math.isfinite(score)]
    if why_absent(len(usable), ranges) is not None:
        return None
    if len({score for _, score in usable}) == 1:  # every trial scored the same: no variance to apportion
        return {name: 1.0 / len(ranges) for name in ranges}
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {name: _distribution(name, bounds) for name, bounds in ranges.items()}
    study = optuna.create_study(direction="minimize")
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={name: _clipped(values[name], distributions[name]) for name in distributions},
                distributions=distributions,
                value=score,
            )
            for values, score in usable
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks the evaluator experimental
        shares = optuna.importance.get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=seed), params=list(distributions)
        )
    total = sum(shares.values())
    return {name: float(shares[name] / total) for name in distributions}


def _clipped(value: float, distribution) -> float:
    # keras-tuner's float steps carry binary noise (0.30000000000000004); Optuna checks values against the range
    low, high = distribution.low, distribution.high
    clipped = min(max(value, low), high)
    return int(round(clipped)) if isinstance(low, int) else float(clipped)
