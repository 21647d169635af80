"""The report's numbers as plain data: the study summary (summary.json), the trials table, the verdict in words,
and the comparison of several studies. Built only from a study record read back from the tracking store."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rnncompare.analysis.diagnostics import diagnose, limits, qualify, suggestions
from rnncompare.core.errors import UserError
from rnncompare.analysis.seed_statistics import seed_scores_summary, seed_spread
from rnncompare.core.metrics import for_kind
from rnncompare.analysis.stats import compare
from rnncompare.tasks import registry

COUNT_METRICS = ("params_total", "params_trainable", "trials_finished", "trials_failed")
SEARCHED = ("units", "dropout", "layers")


def selected_metrics(kind_metrics) -> tuple[str, ...]:
    """The selected trial's numbers each architecture row shows (validation, test, gaps, timing)."""
    score, gap = kind_metrics.score, kind_metrics.gap
    return ("val_loss", f"val_{score}", *kind_metrics.test, "gap_loss", gap, "gap_loss_last", f"{gap}_last",
            "val_loss_rise", "best_epoch", "epochs_after_best", "seconds_per_epoch")


def build_summary(record: dict[str, Any]) -> dict[str, Any]:
    """Per architecture: best hyperparameters, scores, parameter counts, gaps, timing and the seed spread;
    per pair of architectures: the significance tests on the seed scores and their verdict."""
    config = record["config"]
    evaluation = config["evaluation"]
    kind = record.get("dataset", {}).get("kind", "classification")
    metrics = for_kind(kind)
    headline = metrics.headline
    architectures = {}
    seed_scores: dict[str, list[float]] = {}
    for entry in record["architectures"]:
        logged = entry["metrics"]
        row: dict[str, Any] = {
            "run_id": entry["run_id"],
            "status": entry["status"],
            "best_trial_id": entry["best_trial_id"],
            "hyperparameters": {k: entry["params"][k] for k in sorted(entry["params"])},
            "selected": {name: logged.get(name) for name in selected_metrics(metrics)},
            "failed_trials": [{"trial_id": t["trial_id"], "reason": t["failure_reason"] or "unknown"}
                              for t in entry["trials"] if t["status"] == "FAILED"],
        }
        row.update({name: int(logged[name]) if name in logged else None for name in COUNT_METRICS})
        finished = [seed for seed in entry.get("seeds", []) if seed["status"] == "FINISHED"]
        row["seeds"] = {
            **seed_scores_summary(entry.get("seeds", []), headline, evaluation["confidence"]),
            "spread": seed_spread([seed["metrics"] for seed in finished], metrics) if finished else {},
        }
        if row["seeds"]["scores"]:
            seed_scores[entry["name"]] = row["seeds"]["scores"]
        row["diagnostics"] = _diagnostics(record, [seed["metrics"] for seed in finished] or [logged], metrics,
                                          row["hyperparameters"]) if finished or headline in logged else None
        architectures[entry["name"]] = row
    names = list(seed_scores)
    pairs = [(a, b) for index, a in enumerate(names) for b in names[index + 1:]]
    comparisons = [
        _compare(a, seed_scores[a], b, seed_scores[b], len(pairs), evaluation, config["seed"], metrics)
        for a, b in pairs
        if len(seed_scores[a]) >= 2 and len(seed_scores[b]) >= 2
    ]

    def headline_value(name: str) -> float:
        stats = architectures[name]["seeds"]["stats"]
        return stats["mean"] if stats else architectures[name]["selected"][headline]

    sign = -1 if metrics.headline_higher_is_better else 1
    ranked = sorted((name for name, row in architectures.items() if row["selected"][headline] is not None),
                    key=lambda name: sign * headline_value(name))
    baseline = _baseline(record)
    diagnostics = {name: row["diagnostics"] for name, row in architectures.items()}
    comparisons = [qualify(pair, diagnostics[pair["a"]], diagnostics[pair["b"]], metrics.headline_label)
                   for pair in comparisons]
    matched = _budget_matched(record, architectures, seed_scores, metrics, evaluation, config["seed"])
    return {
        "study": record["study"],
        "study_run_id": record["study_run_id"],
        "task": config["task"]["name"],
        "kind": kind,
        "metrics": {"headline": headline, "headline_label": metrics.headline_label,
                    "higher_is_better": metrics.headline_higher_is_better, "score": metrics.score,
                    "gap": metrics.gap},
        "baseline": baseline,
        "dataset": record.get("dataset", {}),
        "sweep": record.get("sweep", {}),
        "backend": record.get("backend"),
        "seed": config["seed"],
        "tuner": {key: config["tuner"][key] for key in ("algorithm", "max_trials", "epochs", "batch_size", "objective")},
        "search": config["search"],
        "evaluation": evaluation,
        "architectures": architectures,
        "ranking": ranked,
        "ranked_by": (f"mean {metrics.headline_label} over seeds" if seed_scores
                      else f"{metrics.headline_label} of the selected trial"),
        "comparisons": comparisons,
        "matched": matched,
        "suggestions": suggestions({name: row for name, row in diagnostics.items() if row},
                                   more_data="samples" in registry()[config["task"]["name"]].options),
    }


def _baseline(record: dict[str, Any]) -> dict[str, float]:
    return {key.removeprefix("baseline_"): float(value) for key, value in record.get("dataset", {}).items()
            if key.startswith("baseline_")}


def _diagnostics(record: dict[str, Any], fits: list[dict[str, float]], metrics, selected: dict[str, Any] | None
                 ) -> dict[str, Any]:
    """`diagnostics.diagnose` with the study's budget, its constant predictor and its search space."""
    config = record["config"]
    return diagnose(
        fits, metrics.headline, _baseline(record).get(metrics.headline), metrics.headline_higher_is_better,
        max_epochs=config["tuner"]["epochs"], patience=config["training"]["patience"],
        min_skill=config["evaluation"].get("min_skill", 0.1), confidence=config["evaluation"]["confidence"],
        selected=selected, search=config["search"] if selected is not None else None,
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
        finished = [seed["metrics"] for seed in entry["seeds"] if seed["status"] == "FINISHED"]
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
    testable = [name for name, row in rows.items()
                if len(row["seeds"]["scores"]) >= 2 and len(reference_scores) >= 2]
    comparisons = [
        qualify(_compare(reference, reference_scores, f"{name}{MATCHED_SUFFIX}", rows[name]["seeds"]["scores"],
                         len(testable), evaluation, seed, metrics),
                architectures.get(reference, {}).get("diagnostics"), rows[name]["diagnostics"],
                metrics.headline_label)
        for name in testable
    ]
    return {"reference": reference, "reference_params": architectures.get(reference, {}).get("params_total"),
            "architectures": rows, "comparisons": comparisons}


def _compare(name_a: str, a: list[float], name_b: str, b: list[float], pairs: int, evaluation: dict[str, Any],
             seed: int, metrics) -> dict[str, Any]:
    """`stats.compare` with the study's evaluation settings and the direction of its headline metric."""
    return compare(name_a, a, name_b, b, confidence=evaluation["confidence"], pairs=pairs,
                   aso_threshold=evaluation["aso_threshold"], aso_bootstrap=evaluation.get("aso_bootstrap", 1000),
                   seed=seed, higher_is_better=metrics.headline_higher_is_better)


def trials_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row per trial: architecture, trial id, status, hyperparameters and summary metrics."""
    rows = []
    for entry in record["architectures"]:
        for trial in entry["trials"]:
            rows.append({
                "architecture": entry["name"],
                "trial_id": trial["trial_id"],
                "status": trial["status"],
                "is_best": trial["trial_id"] == entry["best_trial_id"],
                **{f"hp_{key}": value for key, value in sorted(trial["hyperparameters"].items())},
                **dict(sorted(trial["metrics"].items())),
                "failure_reason": trial["failure_reason"] or "",
                "run_id": trial["run_id"],
            })
    return pd.DataFrame(rows)


def verdict(summary: dict[str, Any]) -> str:
    """Plain-words reading of the comparison, with the numbers behind it; never a winner from a single run, never
    a plain winner over a model that did not learn or was still improving."""
    return " ".join(verdict_sentences(summary))


def verdict_sentences(summary: dict[str, Any]) -> list[str]:
    """The verdict, one sentence (ranking, constant predictor, each pair, rule, equal budget, limits) per item."""
    ranked = summary["ranking"]
    rows = summary["architectures"]
    label, gap = summary["metrics"]["headline_label"], summary["metrics"]["gap"]
    if not ranked:
        return ["No architecture finished a trial, so there is nothing to compare."]
    parts = []
    for name in ranked:
        stats, row = rows[name]["seeds"]["stats"], rows[name]
        if stats:
            parts.append(
                f"{name} {stats['mean']:.3f} +/- {stats['std']:.3f} {label} over {stats['n']} seeds "
                f"({summary['evaluation']['confidence']:.0%} interval {stats['ci_low']:.3f} to {stats['ci_high']:.3f}; "
                f"{row['params_total']:,} parameters, {gap.replace('_', ' ')} {row['selected'][gap]:+.3f})"
            )
        else:
            parts.append(f"{name} {row['selected'][summary['metrics']['headline']]:.3f} {label} from one run "
                         f"({row['params_total']:,} parameters)")
    lines = ["Ranked by " + summary["ranked_by"] + ": " + "; ".join(parts) + "."]
    baseline = summary["baseline"].get(summary["metrics"]["headline"])
    if baseline is not None:
        predictor = "the training majority class" if summary["kind"] == "classification" else "the training mean"
        lines.append(f"A constant predictor ({predictor}) scores {baseline:.3f} {label}.")
    if summary["comparisons"]:
        for pair in summary["comparisons"]:
            caveat = f"; but {'; '.join(pair['limits'])}" if pair.get("limits") else ""
            if pair["winner"] is not None:
                loser = pair["b"] if pair["winner"] == pair["a"] else pair["a"]
                budget = " at this budget" if caveat else ""
                lines.append(f"{pair['winner']} is better than {loser}{budget} "
                             f"(Welch p = {pair['welch_p']:.3g}, ASO epsilon_min = "
                             f"{min(pair['aso_epsilon_min_a_over_b'], pair['aso_epsilon_min_b_over_a']):.2f}){caveat}.")
            else:
                needed = (f"; about {pair['seeds_needed']} seeds each would be needed to separate them"
                          if pair["seeds_needed"] else "")
                lines.append(f"{pair['a']} vs {pair['b']}: no significant difference at {pair['n_a']} seeds "
                             f"(Welch p = {pair['welch_p']:.3g}{needed}){caveat}.")
        lines.append(f"Rule: {summary['comparisons'][0]['rule']}.")
        matched = summary.get("matched")
        if matched and matched["comparisons"]:
            lines.append(f"At {matched['reference']}'s budget of {matched['reference_params']:,} parameters:")
            for pair in matched["comparisons"]:
                name = pair["b"].removesuffix(MATCHED_SUFFIX)
                row = matched["architectures"][name]
                lines.append(f"{name} resized to {row['units']} units ({row['params_total']:,} parameters) scores "
                             f"{pair['mean_b']:.3f} against {pair['mean_a']:.3f}: {pair['verdict']} "
                             f"(Welch p = {pair['welch_p']:.3g}).")
    else:
        lines.append("With fewer than two seeds per architecture there is no test: this is a ranking of one run, "
                     "not a verdict. Set evaluation.seeds to 5 or more.")
        found = [phrase for name in ranked for phrase in limits(name, rows[name]["diagnostics"] or {}, label)]
        if found:
            lines.append("Limits: " + "; ".join(found) + ".")
    if summary.get("suggestions"):
        lines.append("To settle it: " + "; ".join(f"{entry['change']} ({', '.join(entry['keys'])})"
                                                  for entry in summary["suggestions"]) + ".")
    return lines


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
        studies.append({
            "study": summary["study"],
            "task": summary["task"],
            "x": summary["sweep"][axis] if axis else summary["study"],
            "baseline": summary["baseline"].get(metrics["headline"]),
            "architectures": architectures,
            "ranking": summary["ranking"],
            "verdicts": [f"{c['a']} vs {c['b']}: {c['verdict']} (Welch p = {c['welch_p']:.3g})"
                         for c in summary["comparisons"]],
        })
    if axis:
        studies.sort(key=lambda study: study["x"])
    names = list(dict.fromkeys(name for study in studies for name in study["architectures"]))
    return {"kind": summaries[0]["kind"], "metrics": metrics, "axis": axis, "architectures": names,
            "studies": studies}


# ---- descriptions for the MLflow UI -----------------------------------------------------------------------------


def run_notes(summary: dict[str, Any]) -> dict[str, str]:
    """Markdown descriptions for the MLflow UI: the study run's (key ``""``: the verdict, its limits and where the
    report is) and one line per architecture run (keyed by architecture)."""
    label, headline = summary["metrics"]["headline_label"], summary["metrics"]["headline"]
    notes = {}
    rows = []
    for name, row in summary["architectures"].items():
        stats, diagnostics = row["seeds"]["stats"], row.get("diagnostics") or {}
        score = (f"{stats['mean']:.3f} +/- {stats['std']:.3f} over {stats['n']} seeds" if stats
                 else f"{row['selected'][headline]:.3f} from the selected trial" if row["selected"][headline] is not None
                 else "no finished trial")
        learned = {True: "yes", False: "**no**", None: "-"}[diagnostics.get("learned")]
        improving = (f"{diagnostics['still_improving']} of {diagnostics['fits']}" if diagnostics else "-")
        edges = ", ".join(f"{key} at its {edge}" for key, edge in diagnostics.get("search_edges", {}).items())
        rows.append(f"| {name} | {score} | {learned} | {improving} | {edges or 'none'} | {row['params_total'] or 0:,} |")
        found = limits(name, diagnostics, label)
        hyperparameters = ", ".join(f"{key}={value}" for key, value in row["hyperparameters"].items()
                                    if key != "architecture")
        notes[name] = (f"**{name}**: {label} {score}; {hyperparameters}; {row['params_total'] or 0:,} parameters. "
                       + (f"Limits: {'; '.join(found)}." if found else "No budget or learning limits found."))
    table = "\n".join([f"| architecture | {label} | learned | still improving (fits) | search edge | parameters |",
                       "|---|---|---|---|---|---|", *rows])
    sentences = "\n".join(f"- {sentence}" for sentence in verdict_sentences(summary))
    notes[""] = (f"**Verdict**\n\n{sentences}\n\n{table}\n\n"
                 "Full report: `report/report.html` in this run's artifacts (figures, tests, trials).")
    return notes


def study_run_numbers(summary: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """What the study run carries beside its description, so that its row in the MLflow runs table (collapsed, or
    beside other studies' runs) reads without opening it: per architecture ``<architecture>/<metric>`` metrics
    (the headline score's seed mean and std, or the selected trial's without seeds, parameters, seconds per
    epoch), and per pair ``<a>_vs_<b>`` its verdict with the limits it names."""
    headline = summary["metrics"]["headline"]
    metrics = {}
    for name, row in summary["architectures"].items():
        stats = row["seeds"]["stats"]
        if stats:
            metrics.update({f"{name}/{headline}_mean": stats["mean"], f"{name}/{headline}_std": stats["std"]})
        elif row["selected"][headline] is not None:
            metrics[f"{name}/{headline}"] = row["selected"][headline]
        if row["params_total"] is not None:
            metrics[f"{name}/params_total"] = row["params_total"]
        if row["selected"].get("seconds_per_epoch") is not None:
            metrics[f"{name}/seconds_per_epoch"] = row["selected"]["seconds_per_epoch"]
    verdicts = {f"{pair['a']}_vs_{pair['b']}": pair["verdict"] for pair in summary["comparisons"]}
    return metrics, verdicts
