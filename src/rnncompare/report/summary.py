"""The report's numbers as plain data: the study summary (summary.json), the trials table, and the comparison of
several studies (their words are `verdict`'s). Built only from a study record read back from the tracking store."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rnncompare.analysis.diagnostics import diagnose, qualify, suggestions
from rnncompare.analysis.importance import importance, searched_ranges, why_absent
from rnncompare.analysis.paired import paired_scores, paired_seeds_needed, paired_statistics
from rnncompare.analysis.seed_statistics import seed_scores_summary, seed_spread
from rnncompare.analysis.sequential import replay, rule_for, scores_by_index, summary_of
from rnncompare.analysis.stats import BOOTSTRAP_RESAMPLES, INTERVAL_METHOD, compare
from rnncompare.core.errors import UserError
from rnncompare.core.metrics import for_kind
from rnncompare.core.seeds import derive_seed, evaluation_seeds
from rnncompare.core.status import RunStatus
from rnncompare.tasks import registry

COUNT_METRICS = ("params_total", "params_trainable", "trials_finished", "trials_failed")
SEARCHED = ("units", "dropout", "layers")


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
    names = list(seed_scores)
    pairs = [(a, b) for index, a in enumerate(names) for b in names[index + 1 :]]
    seeds_of = {name: row["seeds"]["seeds"] for name, row in architectures.items()}
    comparisons = [
        _compare(
            a,
            seed_scores[a],
            b,
            seed_scores[b],
            len(pairs),
            evaluation,
            config["seed"],
            metrics,
            seeds=(seeds_of[a], seeds_of[b]),
        )
        for a, b in pairs
        if len(seed_scores[a]) >= 2 and len(seed_scores[b]) >= 2
    ]

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
    sequential = _sequential(config, architectures, metrics)
    comparisons = [{**pair, **_decision(pair, sequential)} for pair in comparisons]
    comparisons = [
        qualify(pair, diagnostics[pair["a"]], diagnostics[pair["b"]], metrics.headline_label) for pair in comparisons
    ]
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


def _sequential(config: dict[str, Any], architectures: dict[str, Any], metrics) -> dict[str, Any] | None:
    """A sequential study's rule replayed over its stored seed scores (`analysis.sequential`; the same rounds the
    study ran, since the rule reads nothing else): the schedule, seeds run, fits saved, and each pair's state."""
    evaluation = config["evaluation"]
    if not isinstance(evaluation["seeds"], dict):
        return None
    all_seeds = evaluation_seeds(config["seed"], evaluation["seeds"]["max"])
    scores = {
        name: scores_by_index(row["seeds"]["seeds"], row["seeds"]["scores"], all_seeds)
        for name, row in architectures.items()
        if row["seeds"]["seeds"]
    }
    rule = rule_for(
        evaluation["seeds"],
        scores,
        confidence=evaluation["confidence"],
        higher_is_better=metrics.headline_higher_is_better,
        rope=evaluation.get("rope"),
    )
    if rule is None:
        return None
    replay(rule, scores)
    summary = summary_of(rule, evaluation["seeds"]["max"] * len(rule.names))
    summary["pairs"] = {
        f"{pair.a} vs {pair.b}": {
            "decision": pair.decision,
            "settled_at": pair.settled_at,
            "paired_runs": pair.paired_runs,
            "p_a_better_sequence": list(pair.p_a_better(rule.alpha / (2 if rule.rope is not None else 1))),
            "mean_difference_sequence": None if pair.mean_difference is None else list(pair.mean_difference),
        }
        for pair in rule.pairs
    }
    return summary


def _decision(pair: dict[str, Any], sequential: dict[str, Any] | None) -> dict[str, Any]:
    """The pair's `decision` (a_better, b_better, equivalent, unsettled) and `settled_at` (seeds): the sequential
    rule's where the study ran one (its winner and verdict then are the rule's), else the fixed-count verdict's."""
    state = (sequential or {}).get("pairs", {}).get(f"{pair['a']} vs {pair['b']}")
    if state is None:
        decision = "unsettled" if pair["winner"] is None else "a_better" if pair["winner"] == pair["a"] else "b_better"
        return {"decision": decision, "settled_at": pair["n_a"] if pair["winner"] else None}
    decision, settled_at = state["decision"], state["settled_at"]
    winner = {"a_better": pair["a"], "b_better": pair["b"]}.get(decision)
    low, high = state["p_a_better_sequence"]
    evidence = f"P({pair['a']} > {pair['b']}) in {low:.2f} to {high:.2f} over {state['paired_runs']} paired runs"
    if state["mean_difference_sequence"] is not None:
        low, high = state["mean_difference_sequence"]
        evidence += f"; mean difference in {low:.3g} to {high:.3g}"
    if decision in ("a_better", "b_better"):
        verdict = f"{winner} better, settled at {settled_at} seeds ({evidence})"
    elif decision == "equivalent":
        verdict = (
            f"practically equivalent (within +/- {sequential['rope']:g}), settled at {settled_at} seeds ({evidence})"
        )
    else:
        verdict = f"not settled at {sequential['max']} seeds, the most allowed ({evidence})"
    return {
        "decision": decision,
        "settled_at": settled_at,
        "winner": winner,
        "verdict": verdict,
        "rule": sequential["rule"],
        "seeds_needed": None,
        "fixed_count_verdict": pair["verdict"],
    }


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


# ---- several studies side by side ------------------------------------------------------------------------------


def build_comparison(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per study and architecture: the headline score over seeds, parameters, gap and the pairwise verdicts.

    The studies must measure the same thing (one task kind). When they all come from one sweep over a single
    numeric key (e.g. task.length), that key is the x axis; otherwise the studies are listed in the order given.
    """
    kinds = {summary["kind"] for summary in summaries}
    if len(kinds) > 1:
        listed = ", ".join(f"{summary['study']} ({summary['kind']})" for summary in summaries)
        raise UserError(f"compare: the studies measure different things: {listed}")
    metrics = summaries[0]["metrics"]
    keys = [set(summary.get("sweep", {})) for summary in summaries]
    axis = None
    if all(len(k) == 1 for k in keys) and len(set.union(*keys)) == 1:
        key = next(iter(keys[0]))
        if all(isinstance(summary["sweep"][key], (int, float)) for summary in summaries):
            axis = key
    studies = []
    for summary in summaries:
        architectures = {}
        for name, row in summary["architectures"].items():
            stats = row["seeds"]["stats"] or {}
            spread = row["seeds"]["spread"].get(metrics["gap"], {})
            architectures[name] = {
                "mean": stats.get("mean", row["selected"][metrics["headline"]]),
                "std": stats.get("std"),
                "n": stats.get("n", 0),
                "scores": row["seeds"]["scores"],
                "params_total": row["params_total"],
                "gap_mean": spread.get("mean", row["selected"][metrics["gap"]]),
                "hyperparameters": {k: row["hyperparameters"].get(k) for k in SEARCHED},
            }
        studies.append(
            {
                "study": summary["study"],
                "task": summary["task"],
                "x": summary["sweep"][axis] if axis else summary["study"],
                "baseline": summary["baseline"].get(metrics["headline"]),
                "architectures": architectures,
                "ranking": summary["ranking"],
                "verdicts": [
                    f"{c['a']} vs {c['b']}: {c['verdict']} (Welch p = {c['welch_p']:.3g})"
                    for c in summary["comparisons"]
                ],
            }
        )
    if axis:
        studies.sort(key=lambda study: study["x"])
    names = list(dict.fromkeys(name for study in studies for name in study["architectures"]))
    return {"kind": summaries[0]["kind"], "metrics": metrics, "axis": axis, "architectures": names, "studies": studies}


# ---- descriptions for the MLflow UI -----------------------------------------------------------------------------
