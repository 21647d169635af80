"""The report's numbers as plain data: the study summary (summary.json) and the trials table (their words are
`verdict`'s). Built only from a study record read back from the tracking store."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rnncompare.analysis.diagnostics import diagnose, qualify, suggestions
from rnncompare.analysis.importance import importance, searched_ranges, why_absent
from rnncompare.analysis.paired import paired_scores, paired_seeds_needed, paired_statistics
from rnncompare.analysis.seed_statistics import seed_scores_summary, seed_spread
from rnncompare.analysis.stats import BOOTSTRAP_RESAMPLES, INTERVAL_METHOD, compare
from rnncompare.core.metrics import for_kind
from rnncompare.core.seeds import derive_seed
from rnncompare.core.status import RunStatus
from rnncompare.report.decisions import pair_decision, sequential_summary
from rnncompare.tasks import registry

COUNT_METRICS = ("params_total", "params_trainable", "trials_finished", "trials_failed")


def selected_metrics(kind_metrics) -> tuple[str, ...]:
    """The selected trial's numbers each architecture row shows (validation, test, gaps, timing)."""
    score, gap = kind_metrics.score, kind_metrics.gap
    return (
        "val_loss",
        f"val_{score}",
        *kind_metrics.test,
        "gap_loss",
        gap,
        "gap_loss_last",
        f"{gap}_last",
        "val_loss_rise",
        "best_epoch",
        "epochs_after_best",
        "seconds_per_epoch",
    )


def build_summary(record: dict[str, Any]) -> dict[str, Any]:
    """Per architecture: best hyperparameters, scores, parameter counts, gaps, timing and the seed spread;
    per pair of architectures: the significance tests on the seed scores and their verdict."""
    config = record["config"]
    evaluation = config["evaluation"]
    kind = record.get("dataset", {}).get("kind", "classification")
    metrics = for_kind(kind)
    headline = metrics.headline
    architectures = {entry["name"]: _architecture_row(record, entry, metrics) for entry in record["architectures"]}
    seed_scores = {name: row["seeds"]["scores"] for name, row in architectures.items() if row["seeds"]["scores"]}
    comparisons = _comparisons(config, architectures, seed_scores, metrics)

    def headline_value(name: str) -> float:
        stats = architectures[name]["seeds"]["stats"]
        return stats["mean"] if stats else architectures[name]["selected"][headline]

    sign = -1 if metrics.headline_higher_is_better else 1
    ranked = sorted(
        (name for name, row in architectures.items() if row["selected"][headline] is not None),
        key=lambda name: sign * headline_value(name),
    )
    baseline = _baseline(record)
    diagnostics = {name: row["diagnostics"] for name, row in architectures.items()}
    sequential = sequential_summary(config, architectures, metrics)
    comparisons = [
        qualify({**pair, **pair_decision(pair, sequential)}, diagnostics[pair["a"]], diagnostics[pair["b"]],
                metrics.headline_label)
        for pair in comparisons
    ]  # fmt: skip
    matched = _budget_matched(record, architectures, seed_scores, metrics, evaluation, config["seed"])
    return {
        "study": record["study"],
        "study_run_id": record["study_run_id"],
        "task": config["task"]["name"],
        "kind": kind,
        "metrics": {
            "headline": headline,
            "headline_label": metrics.headline_label,
            "higher_is_better": metrics.headline_higher_is_better,
            "score": metrics.score,
            "gap": metrics.gap,
        },
        "baseline": baseline,
        "dataset": record.get("dataset", {}),
        "sweep": record.get("sweep", {}),
        "backend": record.get("backend"),
        "seed": config["seed"],
        "tuner": {
            key: config["tuner"][key] for key in ("algorithm", "max_trials", "epochs", "batch_size", "objective")
        },
        "search": config["search"],
        "evaluation": evaluation,
        "architectures": architectures,
        "ranking": ranked,
        "ranked_by": (
            f"mean {metrics.headline_label} over seeds"
            if seed_scores
            else f"{metrics.headline_label} of the selected trial"
        ),
        "comparisons": comparisons,
        "sequential": sequential,
        "interval": INTERVAL_METHOD.format(resamples=BOOTSTRAP_RESAMPLES),
        "matched": matched,
        "suggestions": suggestions(
            {name: row for name, row in diagnostics.items() if row},
            more_data="samples" in registry()[config["task"]["name"]].options,
        ),
    }


def _comparisons(
    config: dict[str, Any], architectures: dict[str, Any], seed_scores: dict[str, list[float]], metrics
) -> list[dict[str, Any]]:
    """Every pair of architectures with two or more seed scores each: `stats.compare` and the paired statistics."""
    names = list(seed_scores)
    pairs = [(a, b) for index, a in enumerate(names) for b in names[index + 1 :]]
    seeds_of = {name: row["seeds"]["seeds"] for name, row in architectures.items()}
    return [
        _compare(
            a,
            seed_scores[a],
            b,
            seed_scores[b],
            len(pairs),
            config["evaluation"],
            config["seed"],
            metrics,
            seeds=(seeds_of[a], seeds_of[b]),
        )
        for a, b in pairs
        if len(seed_scores[a]) >= 2 and len(seed_scores[b]) >= 2
    ]


def _architecture_row(record: dict[str, Any], entry: dict[str, Any], metrics) -> dict[str, Any]:
    """One architecture's row of the summary: its selected trial, counts, seed scores and diagnostics."""
    headline, confidence = metrics.headline, record["config"]["evaluation"]["confidence"]
    logged = entry["metrics"]
    row: dict[str, Any] = {
        "run_id": entry["run_id"],
        "status": entry["status"],
        "best_trial_id": entry["best_trial_id"],
        "hyperparameters": {k: entry["params"][k] for k in sorted(entry["params"])},
        "selected": {name: logged.get(name) for name in selected_metrics(metrics)},
        "failed_trials": [
            {"trial_id": t["trial_id"], "reason": t["failure_reason"] or "unknown"}
            for t in entry["trials"]
            if t["status"] == RunStatus.FAILED
        ],
    }
    row.update({name: int(logged[name]) if name in logged else None for name in COUNT_METRICS})
    finished = [seed for seed in entry.get("seeds", []) if seed["status"] == RunStatus.FINISHED]
    row["seeds"] = {
        **seed_scores_summary(entry.get("seeds", []), headline, confidence),
        "spread": seed_spread([seed["metrics"] for seed in finished], metrics) if finished else {},
    }
    row["importance"], row["importance_note"] = _importance(record, entry)
    row["diagnostics"] = (
        _diagnostics(
            record,
            [seed["metrics"] for seed in finished] or [logged],
            metrics,
            row["hyperparameters"],
            selected_score=logged.get(headline),
        )
        if finished or headline in logged
        else None
    )
    return row


def _importance(record: dict[str, Any], entry: dict[str, Any]) -> tuple[dict[str, float] | None, str | None]:
    """fANOVA's share of each searched hyperparameter in the variance of the tuner objective over the finished
    trials, and what to know about it: why it is absent, or that a non-random search biased it."""
    config = record["config"]
    objective, algorithm = f"best_{config['tuner']['objective']}", config["tuner"]["algorithm"]
    finished = [
        (trial["hyperparameters"], trial["metrics"][objective])
        for trial in entry["trials"]
        if trial["status"] == RunStatus.FINISHED and objective in trial["metrics"]
    ]
    reason = why_absent(len(finished), searched_ranges(config["search"]))
    if reason is not None:
        return None, reason
    shares = importance(finished, config["search"], seed=derive_seed(config["seed"], f"importance-{entry['name']}"))
    if algorithm == "random":
        return shares, None
    return shares, (
        f"biased by the {algorithm} search, which tried more points where it expected better scores; a random "
        "search measures importance without that bias"
    )


def _baseline(record: dict[str, Any]) -> dict[str, float]:
    return {
        key.removeprefix("baseline_"): float(value)
        for key, value in record.get("dataset", {}).items()
        if key.startswith("baseline_")
    }


def _diagnostics(
    record: dict[str, Any],
    fits: list[dict[str, float]],
    metrics,
    selected: dict[str, Any] | None,
    selected_score: float | None = None,
) -> dict[str, Any]:
    """`diagnostics.diagnose` with the study's budget, its constant predictor and its search space."""
    config = record["config"]
    return diagnose(
        fits,
        metrics.headline,
        _baseline(record).get(metrics.headline),
        metrics.headline_higher_is_better,
        max_epochs=config["tuner"]["epochs"],
        patience=config["training"]["patience"],
        min_skill=config["evaluation"].get("min_skill", 0.1),
        confidence=config["evaluation"]["confidence"],
        selected=selected,
        search=config["search"] if selected is not None else None,
        selected_score=selected_score,
    )


MATCHED_SUFFIX = "@budget"


def _budget_matched(record, architectures, seed_scores, metrics, evaluation, seed) -> dict[str, Any] | None:
    """The equal-budget comparison: the reference's seeds against each other architecture resized to its
    parameter count (named ``<architecture>@budget``), with the same tests and rule as the main comparison."""
    entries = record.get("matched") or []
    if not entries:
        return None
    reference = entries[0]["reference"]
    rows = {}
    for entry in entries:
        finished = [seed["metrics"] for seed in entry["seeds"] if seed["status"] == RunStatus.FINISHED]
        rows[entry["name"]] = {
            "run_id": entry["run_id"],
            "status": entry["status"],
            "units": entry["params"].get("units"),
            "selected_units": architectures.get(entry["name"], {}).get("hyperparameters", {}).get("units"),
            "params_total": int(entry["metrics"]["params_total"]),
            "hyperparameters": {k: entry["params"][k] for k in sorted(entry["params"])},
            "seeds": seed_scores_summary(entry["seeds"], metrics.headline, evaluation["confidence"]),
            "diagnostics": _diagnostics(record, finished, metrics, None) if finished else None,
        }
    reference_scores = seed_scores.get(reference, [])
    testable = [name for name, row in rows.items() if len(row["seeds"]["scores"]) >= 2 and len(reference_scores) >= 2]
    comparisons = [
        qualify(
            _compare(
                reference,
                reference_scores,
                f"{name}{MATCHED_SUFFIX}",
                rows[name]["seeds"]["scores"],
                len(testable),
                evaluation,
                seed,
                metrics,
                seeds=(
                    architectures.get(reference, {}).get("seeds", {}).get("seeds", []),
                    rows[name]["seeds"]["seeds"],
                ),
            ),
            architectures.get(reference, {}).get("diagnostics"),
            rows[name]["diagnostics"],
            metrics.headline_label,
        )
        for name in testable
    ]
    return {
        "reference": reference,
        "reference_params": architectures.get(reference, {}).get("params_total"),
        "architectures": rows,
        "comparisons": comparisons,
    }


def _compare(
    name_a: str,
    a: list[float],
    name_b: str,
    b: list[float],
    pairs: int,
    evaluation: dict[str, Any],
    seed: int,
    metrics,
    seeds: tuple[list[int], list[int]] | None = None,
) -> dict[str, Any]:
    """`stats.compare` with the study's evaluation settings and the direction of its headline metric; with the
    `seeds` of both, the paired statistics of the seed runs they share (`analysis.paired`)."""
    result = _unpaired(name_a, a, name_b, b, pairs, evaluation, seed, metrics)
    if seeds is not None:
        paired_a, paired_b = paired_scores(seeds[0], a, seeds[1], b)
        if len(paired_a) >= 2:
            result.update(
                paired_statistics(
                    paired_a,
                    paired_b,
                    higher_is_better=metrics.headline_higher_is_better,
                    confidence=evaluation["confidence"],
                    seed=derive_seed(seed, f"paired-{name_a}-{name_b}"),
                )
            )
            if result["seeds_needed"] is not None:  # runs pair: the paired test needs fewer where they share noise
                result["seeds_needed_unpaired"] = result["seeds_needed"]
                result["seeds_needed"] = paired_seeds_needed(paired_a, paired_b, result["corrected_alpha"])
    return result


def _unpaired(
    name_a: str, a: list[float], name_b: str, b: list[float], pairs: int, evaluation: dict[str, Any], seed: int, metrics
) -> dict[str, Any]:
    return compare(
        name_a,
        a,
        name_b,
        b,
        confidence=evaluation["confidence"],
        pairs=pairs,
        aso_threshold=evaluation["aso_threshold"],
        aso_bootstrap=evaluation.get("aso_bootstrap", 1000),
        seed=seed,
        higher_is_better=metrics.headline_higher_is_better,
    )


def trials_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row per trial: architecture, trial id, status, hyperparameters and summary metrics."""
    rows = []
    for entry in record["architectures"]:
        for trial in entry["trials"]:
            rows.append(
                {
                    "architecture": entry["name"],
                    "trial_id": trial["trial_id"],
                    "status": trial["status"],
                    "is_best": trial["trial_id"] == entry["best_trial_id"],
                    **{f"hp_{key}": value for key, value in sorted(trial["hyperparameters"].items())},
                    **dict(sorted(trial["metrics"].items())),
                    "failure_reason": trial["failure_reason"] or "",
                    "run_id": trial["run_id"],
                }
            )
    return pd.DataFrame(rows)


# ---- descriptions for the MLflow UI -----------------------------------------------------------------------------
