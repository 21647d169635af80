"""Whether a score can carry a verdict: did the model learn, was the budget enough, did early stopping end it on the
constant predictor's plateau, did the search pick a value at the edge of its space.

Pure functions over plain numbers (no Keras, no MLflow): the report's summary computes them from the records in
the tracking store, and the study writes them back onto each architecture run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

SEARCHED_RANGES = ("units", "dropout", "layers", "learning_rate")
# The config keys that widen a range at each edge; an edge that cannot move (dropout 0, one unit or layer) is none.
EDGE_KEYS = {
    ("units", "max"): "search.units.max",
    ("units", "min"): "search.units.min",
    ("dropout", "max"): "search.dropout.max",
    ("dropout", "min"): "search.dropout.min",
    ("layers", "max"): "search.layers.max",
    ("learning_rate", "max"): "search.learning_rate.max",
    ("learning_rate", "min"): "search.learning_rate.min",
}


def skill(score: float, baseline: float, higher_is_better: bool) -> float:
    """How far `score` went from the constant predictor's `baseline` towards a perfect score (1 for accuracy, 0 for
    an error): 0 at the baseline, 1 when perfect, negative when worse (MSE skill score; Cohen's kappa-like for
    accuracy)."""
    perfect = 1.0 if higher_is_better else 0.0
    room = perfect - baseline
    return 0.0 if room == 0 else (score - baseline) / room


def last_epoch(fit: Mapping[str, float]) -> float:
    """The last epoch a fit reached, counted from the start of its training (from its ``best_epoch`` and
    ``epochs_after_best``). Not ``epochs_run``: a Hyperband trial that goes on from another trial's checkpoint
    runs epochs 3 to 6, say, which is 4 epochs run and the cap of 6 reached."""
    return fit["best_epoch"] + fit["epochs_after_best"]


def still_improving(best_epoch: float, last_epoch: float, max_epochs: int, patience: int) -> bool:
    """Whether a fit ran into the epoch cap with its best epoch among the last few: it might have gone on improving.

    "The last few" is a tenth of the cap, at least one epoch and at most the early-stopping patience.
    """
    margin = max(1, min(patience, math.ceil(max_epochs / 10)))
    return last_epoch >= max_epochs and best_epoch > max_epochs - margin


def learned(
    scores: Sequence[float], baseline: float, higher_is_better: bool, min_skill: float, confidence: float
) -> dict[str, Any]:
    """Whether the scores beat the constant predictor by more than `min_skill`, and the test that says so.

    Two or more scores: a one-sided one-sample t-test of skill > min_skill at 1 - `confidence` (equal scores: their
    skill against min_skill). One score: its skill against min_skill, with no test.
    """
    skills = np.array([skill(score, baseline, higher_is_better) for score in scores], dtype=float)
    alpha = round(1 - confidence, 6)
    above = int(np.sum(skills > min_skill))
    result = {
        "skill_mean": float(skills.mean()),
        "min_skill": min_skill,
        "runs": len(skills),
        "runs_above_min_skill": above,
    }
    if len(skills) >= 2 and np.ptp(skills) > 0:
        p_value = float(scipy_stats.ttest_1samp(skills, min_skill, alternative="greater").pvalue)
        return {
            **result,
            "learned": p_value < alpha,
            "p": p_value,
            "test": f"one-sided t-test of skill > {min_skill} over {len(skills)} seeds at alpha {alpha}",
        }
    if len(skills) >= 2:
        return {
            **result,
            "learned": bool(skills[0] > min_skill),
            "p": None,
            "test": f"{len(skills)} seeds with the same score, skill against {min_skill}",
        }
    return {
        **result,
        "learned": bool(skills.mean() > min_skill),
        "p": None,
        "test": f"one run's skill against {min_skill} (no test)",
    }


def search_edges(selected: Mapping[str, Any], search: Mapping[str, Any]) -> dict[str, str]:
    """The searched hyperparameters whose selected value sits at an edge of the space that could be moved:
    ``{"units": "max"}`` says a wider space may hold a better model."""
    edges = {}
    for name in SEARCHED_RANGES:
        bounds = search.get(name)
        value = selected.get(name)
        if not bounds or value is None or bounds["min"] == bounds["max"]:
            continue
        low, high, value = float(bounds["min"]), float(bounds["max"]), float(value)
        if bounds.get("sampling") == "log":
            low, high, value = math.log(low), math.log(high), math.log(value)
        # stepped ranges reach their ends exactly; a continuous one counts its outer tenths as the edge
        tolerance = bounds["step"] / 2 if "step" in bounds else (high - low) / 10
        for edge, at_edge in (("max", value >= high - tolerance), ("min", value <= low + tolerance)):
            if at_edge and (name, edge) in EDGE_KEYS and not (edge == "min" and _floor(name, bounds["min"])):
                edges[name] = edge
    return edges


def _floor(name: str, minimum: float) -> bool:
    # an edge that cannot go lower: no dropout, one unit, one layer
    return (name == "dropout" and minimum == 0) or (name in ("units", "layers") and minimum <= 1)


# A fit whose accuracy's skill is this close to perfect has nothing left to gain from more epochs or patience,
# whatever its loss still does: "still improving" and "stopped short" ignore it, and a cell whose mean is there sits
# at the ceiling. Only a score with a top (accuracy) has one.
CEILING_SKILL = 0.99
# Early stopping "decided" a fit that it ended this far (in skill) below the best the same architecture reached on
# the same task (its best seed, or its selected trial): a quarter of the way from the constant predictor to perfect.
# Seed-to-seed noise on a converged study stays an order of magnitude under it (the quickstart: about 0.02).
STOPPED_SHORT_SKILL = 0.25


def diagnose(
    fits: Sequence[Mapping[str, float]],
    headline: str,
    baseline: float | None,
    higher_is_better: bool,
    *,
    max_epochs: int,
    patience: int,
    min_skill: float,
    confidence: float,
    selected: Mapping[str, Any] | None = None,
    search: Mapping[str, Any] | None = None,
    selected_score: float | None = None,
) -> dict[str, Any]:
    """The diagnostics of one architecture from its fits' summaries (the finished seed runs, or else the selected
    trial with its test scores): `learned`, `budget_limited`, `stopped_short`, `plateau_stop`, `at_ceiling` and
    the search's edges.

    Each fit needs `headline`, ``best_epoch`` and ``epochs_after_best``. `budget_limited` holds when any fit below
    the ceiling was still improving at the epoch cap; `stopped_short` counts the fits that early stopping ended
    more than `STOPPED_SHORT_SKILL` below the architecture's best (its best fit, or `selected_score`, the selected
    trial's); `plateau_stop` when more than half were stopped early about the constant predictor's score.
    """
    skills = (
        [skill(fit[headline], baseline, higher_is_better) for fit in fits]
        if baseline is not None
        else [None] * len(fits)
    )
    # an error has no ceiling: an MSE ten times smaller is a real difference however close both are to zero
    at_ceiling = [higher_is_better and value is not None and value >= CEILING_SKILL for value in skills]
    improving = [
        still_improving(fit["best_epoch"], last_epoch(fit), max_epochs, patience) and not ceiling
        for fit, ceiling in zip(fits, at_ceiling)
    ]
    result: dict[str, Any] = {
        "fits": len(fits),
        "patience": patience,
        "score_mean": float(np.mean([fit[headline] for fit in fits])),
        "budget_limited": sum(improving) > 0,
        "still_improving": sum(improving),
        "still_improving_fraction": sum(improving) / len(fits) if fits else 0.0,
        "search_edges": search_edges(selected or {}, search or {}),
    }
    if baseline is None:
        return {
            **result,
            "learned": None,
            "plateau_stop": None,
            "plateau_stopped": 0,
            "stopped_short": 0,
            "at_ceiling": False,
        }
    learning = learned([fit[headline] for fit in fits], baseline, higher_is_better, min_skill, confidence)
    # on the plateau: about the constant predictor's score (a diverged fit, far below it, is not)
    plateau = [last_epoch(fit) < max_epochs and -min_skill <= value <= min_skill for fit, value in zip(fits, skills)]
    references = [value for value in skills if value is not None]
    if selected_score is not None:
        references.append(skill(selected_score, baseline, higher_is_better))
    best = max(references)
    # short of a best that learned: where no fit nor the search's pick learned, "did not learn" says it
    short = [
        best > min_skill and last_epoch(fit) < max_epochs and value < best - STOPPED_SHORT_SKILL
        for fit, value in zip(fits, skills)
    ]
    best_score = max(
        [fit[headline] for fit in fits] + ([selected_score] if selected_score is not None else []),
        key=lambda score: skill(score, baseline, higher_is_better),
    )
    return {
        **result,
        **learning,
        "baseline": baseline,
        "plateau_stop": sum(plateau) > len(fits) / 2,
        "plateau_stopped": sum(plateau),
        "stopped_short": sum(short),
        "best_score": float(best_score),
        "at_ceiling": higher_is_better and bool(np.mean(skills) >= CEILING_SKILL),
    }


def limits(name: str, diagnostics: Mapping[str, Any], label: str) -> list[str]:
    """What keeps `name`'s score from carrying a plain verdict, one phrase each (empty when nothing does)."""
    found = []
    if diagnostics.get("learned") is False and diagnostics["skill_mean"] <= diagnostics["min_skill"]:
        # a diverged fit scores far below the constant predictor, not at it
        where = "worse than" if diagnostics["skill_mean"] < -diagnostics["min_skill"] else "at"
        found.append(
            f"{name} did not learn ({label} {_mean_score(diagnostics)}{where} the constant predictor's "
            f"{diagnostics['baseline']:.3f}, skill {diagnostics['skill_mean']:.2f})"
        )
    elif diagnostics.get("learned") is False:
        found.append(
            f"{name} did not learn reliably (skill {diagnostics['skill_mean']:.2f} over "
            f"{diagnostics['runs']} seeds is not significantly above {diagnostics['min_skill']}: "
            f"{diagnostics['runs_above_min_skill']} of {diagnostics['runs']} seeds above it)"
        )
    if diagnostics.get("stopped_short"):
        found.append(stopped_short_words(name, diagnostics, label))
    elif diagnostics.get("plateau_stop"):
        found.append(
            f"early stopping ended {diagnostics['plateau_stopped']} of {diagnostics['fits']} {name} fits "
            "on the constant predictor's plateau"
        )
    if diagnostics.get("budget_limited"):
        found.append(
            f"{name} was still improving at the last epoch in {diagnostics['still_improving']} of "
            f"{diagnostics['fits']} fits"
        )
    return found


def stopped_short_words(name: str, diagnostics: Mapping[str, Any], label: str) -> str:
    """The stopped-short finding in words: how many fits, the patience, and the score they fell short of."""
    return (
        f"early stopping (patience {diagnostics['patience']}) ended {diagnostics['stopped_short']} of "
        f"{diagnostics['fits']} {name} fits far below the {label} {diagnostics['best_score']:.3f} that {name} "
        "reached on this task"
    )


def _mean_score(diagnostics: Mapping[str, Any]) -> str:
    score = diagnostics.get("score_mean")
    return "" if score is None else f"{score:.3f} "


def suggestions(diagnostics: Mapping[str, Mapping[str, Any]], more_data: bool = True) -> list[dict[str, Any]]:
    """The changes that would settle what the diagnostics leave open, each with the config keys to set.

    `more_data`: whether the task can give more training sequences (``task.samples``, a generated task's); not
    where the data is what it is (a built-in set, the user's file)."""
    found: dict[str, dict[str, Any]] = {}

    def suggest(change: str, keys: Sequence[str], architecture: str) -> None:
        entry = found.setdefault(change, {"change": change, "keys": list(keys), "architectures": []})
        entry["architectures"].append(architecture)

    for name, row in diagnostics.items():
        if row.get("learned") is False or row.get("plateau_stop"):
            suggest(
                "search the learning rate and give early stopping more patience: a cell on a plateau is often "
                "a learning-rate question",
                ["search.learning_rate", "training.patience"],
                name,
            )
            if more_data:
                suggest("more training sequences", ["task.samples"], name)
        if row.get("stopped_short"):
            suggest(
                "give early stopping more patience, or count smaller gains as progress: it ended fits far below "
                "what the same architecture reached",
                ["training.patience", "training.min_delta"],
                name,
            )
        if row.get("budget_limited"):
            suggest("more epochs: the fits were still improving when they hit the cap", ["tuner.epochs"], name)
        for hyperparameter, edge in row.get("search_edges", {}).items():
            suggest(
                f"widen the search: the selected {hyperparameter} is at the {edge} of its range",
                [EDGE_KEYS[(hyperparameter, edge)]],
                name,
            )
    return list(found.values())


def qualify(
    pair: Mapping[str, Any],
    diagnostics_a: Mapping[str, Any] | None,
    diagnostics_b: Mapping[str, Any] | None,
    label: str,
) -> dict[str, Any]:
    """The pair's verdict with what limits it: ``limits`` (phrases) and ``qualified``; a winner's verdict reads
    "A better at this budget; B did not learn (...)" instead of a plain "A better"."""
    found = [*limits(pair["a"], diagnostics_a or {}, label), *limits(pair["b"], diagnostics_b or {}, label)]
    verdict = pair["verdict"]
    if found and pair["winner"]:  # "gru better" (or "gru better, settled at 7 seeds (...)") at this budget
        won = f"{pair['winner']} better"
        verdict = won + " at this budget" + verdict.removeprefix(won) + "; " + "; ".join(found)
    elif found:
        verdict = f"{verdict}; " + "; ".join(found)
    return {**pair, "verdict": verdict, "qualified": bool(found), "limits": found}
