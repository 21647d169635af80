"""One comparison across several tasks (a suite): average ranks, Friedman's test and Nemenyi's critical difference
(Demsar, 2006), and for each pair Benavoli et al.'s (2017) Bayesian signed-rank test with a region of practical
equivalence. The tests run on each task's mean headline score over seeds; ranks follow each task's own direction
(accuracy up, MSE down), and the Bayesian test reads the scores as skill (`diagnostics.skill`: the share of the
way from the constant predictor to a perfect score), so tasks of different metrics share one scale."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from rnncompare.analysis.diagnostics import skill

MIN_TASKS = 3  # below this, no Friedman test: its chi-square approximation, and the ranks, say nothing
MIN_ARCHITECTURES = 3  # Friedman's test over two is a sign test: the pair's Bayesian test says more
# Demsar (2006) and Benavoli et al. (2016) found the Friedman test weak on fewer data sets than this
FEW_TASKS = 10
ROPE = 0.01  # one hundredth of the way from the constant predictor to a perfect score
LIMITS = ("did_not_learn", "stopped_by_early_stopping", "still_improving", "search_edge")
# Means closer than this tie: float32 accuracies summed differ in the eighth decimal (0.7499999851 against 0.75)
RESOLUTION = 6


def task_scores(study: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per architecture of one study's summary: its mean headline score over seeds (the selected trial's score
    where no seed finished), the spread, how many runs, and the mean as skill."""
    metrics = study["metrics"]
    headline, higher = metrics["headline"], metrics["higher_is_better"]
    baseline = study.get("baseline", {}).get(headline)
    scores = {}
    for name, row in study["architectures"].items():
        stats = row["seeds"]["stats"]
        mean = stats["mean"] if stats else row["selected"].get(headline)
        if mean is None:
            continue
        scores[name] = {
            "mean": float(mean),
            "std": float(stats["std"]) if stats else None,
            "runs": len(row["seeds"]["seeds"]) if stats else 1,
            "skill": None if baseline is None else skill(float(mean), float(baseline), higher),
            "limits": cell_limits(row.get("diagnostics") or {}),
        }
    return scores


def cell_limits(diagnostics: Mapping[str, Any]) -> dict[str, str]:
    """What limits one task's cell, from its study's diagnostics, by kind (`LIMITS`), each in a few words."""
    found = {}
    if diagnostics.get("learned") is False:
        found["did_not_learn"] = f"skill {diagnostics['skill_mean']:.2f}"
    if diagnostics.get("stopped_short"):
        found["stopped_by_early_stopping"] = (
            f"{diagnostics['stopped_short']} of {diagnostics['fits']} fits far below its best, "
            f"patience {diagnostics['patience']}"
        )
    if diagnostics.get("budget_limited"):
        found["still_improving"] = f"{diagnostics['still_improving']} of {diagnostics['fits']} fits at the epoch cap"
    if diagnostics.get("search_edges"):
        found["search_edge"] = ", ".join(f"{key} at its {edge}" for key, edge in diagnostics["search_edges"].items())
    return found


def suite_statistics(
    studies: Sequence[Mapping[str, Any]], confidence: float = 0.95, rope: float = ROPE, seed: int = 0
) -> dict[str, Any]:
    """The suite's numbers from its studies' summaries (one per task): per task and architecture the mean and
    spread of the headline score; each architecture's average rank; Friedman's test (`friedman_p`) and Nemenyi's
    critical difference at `confidence` (`critical_difference`), or why they were not run; and for each pair the
    Bayesian signed-rank probabilities (A better, practically equivalent, B better) with the stated `rope`."""
    tasks = _task_labels(studies)
    per_task = {label: task_scores(study) for label, study in zip(tasks, studies)}
    shared = [name for name in _architectures(studies) if all(name in scores for scores in per_task.values())]
    missing = sorted({name for scores in per_task.values() for name in scores} - set(shared))
    directions = {label: study["metrics"]["higher_is_better"] for label, study in zip(tasks, studies)}
    ranks = {
        label: dict(zip(shared, _ranks([per_task[label][name]["mean"] for name in shared], directions[label])))
        for label in tasks
    }
    average = _average(ranks, tasks, shared)
    limited = {label: sorted(name for name in shared if per_task[label][name]["limits"]) for label in tasks}
    clean = [label for label in tasks if not limited[label]]
    result: dict[str, Any] = {
        "tasks": [
            {
                "task": label,
                "study": study["study"],
                "headline": study["metrics"]["headline"],
                "higher_is_better": study["metrics"]["higher_is_better"],
                "scores": per_task[label],
                "ranks": ranks[label],
                "limited": limited[label],
            }
            for label, study in zip(tasks, studies)
        ],
        "architectures": shared,
        "left_out": missing,
        "ranks": dict(sorted(average.items(), key=lambda item: item[1])),
        "confidence": confidence,
        **_friedman_nemenyi(ranks, tasks, shared, confidence),
        "rope": rope,
        "pairs": _bayesian_pairs(per_task, tasks, shared, rope, seed),
        "limited_tasks": [label for label in tasks if limited[label]],
        "unlimited": {
            "tasks": clean,
            "ranks": dict(sorted(_average(ranks, clean, shared).items(), key=lambda item: item[1])) if clean else {},
            **_friedman_nemenyi(ranks, clean, shared, confidence),
        },
    }
    result["weak"] = _weakness(len(tasks), result)
    result["headline"] = suite_headline(result)
    return result


def _average(ranks: Mapping[str, Mapping[str, float]], tasks: Sequence[str], shared: Sequence[str]) -> dict:
    return {name: float(np.mean([ranks[label][name] for label in tasks])) for name in shared} if tasks else {}


def suite_headline(result: Mapping[str, Any]) -> str:
    """The suite's outcome in one sentence: who ranks first, on which tasks the ranking rests on a limited cell,
    and the ranking over the tasks where none is."""
    if not result["ranks"]:
        return "No architecture has a score on every task, so there is no ranking."
    ranks = ", ".join(f"{name} {rank:.2f}" for name, rank in result["ranks"].items())
    sentence = f"Average ranks over {len(result['tasks'])} tasks: {ranks}"
    if not result["limited_tasks"]:
        return sentence + "; no cell is limited by its budget, its learning or its search."
    where = "; ".join(
        f"{task['task']} ({', '.join(f'{name}: {_limit_words(task, name)}' for name in task['limited'])})"
        for task in result["tasks"]
        if task["limited"]
    )
    sentence += f". It rests on limited cells on {len(result['limited_tasks'])} task(s): {where}"
    unlimited = result["unlimited"]
    if not unlimited["tasks"]:
        return sentence + "; no task is free of them, so no ranking stands without them."
    clean = ", ".join(f"{name} {rank:.2f}" for name, rank in unlimited["ranks"].items())
    return sentence + f". Over the {len(unlimited['tasks'])} task(s) with no limited cell: {clean}."


def _limit_words(task: Mapping[str, Any], name: str) -> str:
    return ", ".join(kind.replace("_", " ") for kind in task["scores"][name]["limits"])


def _task_labels(studies: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each study's task as a suite names it (its entry's label), else its task's name; the study's own name where
    two would share one."""
    labels = [(study.get("sweep") or {}).get("suite") or study["task"] for study in studies]
    return [label if labels.count(label) == 1 else study["study"] for label, study in zip(labels, studies)]


def _architectures(studies: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: list[str] = []
    for study in studies:
        seen += [name for name in study["architectures"] if name not in seen]
    return seen


def _ranks(means: list[float], higher_is_better: bool) -> list[float]:
    """Rank 1 is the best; ties share the mean of their ranks (Demsar's convention), and means equal to
    `RESOLUTION` decimals tie."""
    oriented = np.round([-value if higher_is_better else value for value in means], RESOLUTION)
    return [float(rank) for rank in scipy_stats.rankdata(oriented)]


def _friedman_nemenyi(
    ranks: Mapping[str, Mapping[str, float]], tasks: list[str], shared: list[str], confidence: float
) -> dict[str, Any]:
    if len(tasks) < MIN_TASKS or len(shared) < MIN_ARCHITECTURES:
        return {
            "friedman_statistic": None,
            "friedman_p": None,
            "critical_difference": None,
            "nemenyi_p": None,
            "friedman_absent": (
                f"no Friedman test: it needs at least {MIN_TASKS} tasks and {MIN_ARCHITECTURES} architectures, "
                f"and the suite has {len(tasks)} task(s) and {len(shared)} architecture(s) in every task"
            ),
        }
    import pandas as pd
    import scikit_posthocs

    matrix = np.array([[ranks[label][name] for name in shared] for label in tasks])
    statistic, p = scipy_stats.friedmanchisquare(*matrix.T)
    count, tasks_count = len(shared), len(tasks)
    # Nemenyi: the studentized range's quantile over sqrt(2) (Demsar's q_alpha), for k groups and infinite df
    q_alpha = scipy_stats.studentized_range.ppf(confidence, count, np.inf) / math.sqrt(2)
    critical = q_alpha * math.sqrt(count * (count + 1) / (6 * tasks_count))
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(pd.DataFrame(matrix, columns=shared))
    return {
        "friedman_statistic": float(statistic),
        "friedman_p": float(p) if np.isfinite(p) else 1.0,
        "critical_difference": float(critical),
        "nemenyi_p": {a: {b: float(nemenyi.loc[a, b]) for b in shared} for a in shared},
        "friedman_absent": None,
    }


def _bayesian_pairs(
    per_task: Mapping[str, Mapping[str, Mapping[str, Any]]], tasks: list[str], shared: list[str], rope: float, seed: int
) -> list[dict[str, Any]]:
    import baycomp

    pairs = []
    for index, a in enumerate(shared):
        for b in shared[index + 1 :]:
            x = [per_task[label][a]["skill"] for label in tasks]
            y = [per_task[label][b]["skill"] for label in tasks]
            entry: dict[str, Any] = {"a": a, "b": b, "tasks": len(tasks)}
            if any(value is None for value in x + y) or len(tasks) < 2:
                entry.update(p_a_better=None, p_rope=None, p_b_better=None)
                entry["absent"] = (
                    "needs at least 2 tasks" if len(tasks) < 2 else "a task has no constant-predictor baseline"
                )
            else:
                # baycomp's (left, rope, right): the first sample better, practically equivalent, the second better
                left, middle, right = baycomp.two_on_multiple(np.array(x), np.array(y), rope=rope, random_state=seed)
                entry.update(p_a_better=float(left), p_rope=float(middle), p_b_better=float(right))
                entry["mean_skill_difference"] = float(np.mean(np.array(x) - np.array(y)))
            pairs.append(entry)
    return pairs


def _weakness(tasks: int, result: Mapping[str, Any]) -> str | None:
    """Where the tests are weak, in words."""
    if result["friedman_p"] is None:
        return result["friedman_absent"] + "; the ranks are descriptive only"
    if tasks < FEW_TASKS:
        return (
            f"{tasks} tasks are few for these tests (Demsar 2006 and Bouthillier et al. 2021 warn of it): a difference"
            " in ranks smaller than the critical difference is no evidence of equality, and one task more could move"
            " every rank"
        )
    return None
