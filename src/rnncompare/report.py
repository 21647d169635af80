"""The report: built only from what the tracking store holds (see `tracking.load_study`), never from memory.

`rnncompare run` and `rnncompare report` both read the study back and call `write_report`, so the two produce the
same `summary.json` by construction.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pandas as pd

COUNT_METRICS = ("params_total", "params_trainable", "trials_finished", "trials_failed")
COLORS = {"lstm": "#1f77b4", "gru": "#ff7f0e", "simple_rnn": "#2ca02c"}
REPORT_FILES = ("report.md", "report.html", "summary.json", "runs.csv")
SEARCHED = ("units", "dropout", "layers")


def selected_metrics(kind_metrics) -> tuple[str, ...]:
    """The selected trial's numbers each architecture row shows (validation, test, gaps, timing)."""
    score, gap = kind_metrics.score, kind_metrics.gap
    return ("val_loss", f"val_{score}", *kind_metrics.test, "gap_loss", gap, "gap_loss_last", f"{gap}_last",
            "val_loss_rise", "best_epoch", "epochs_after_best", "seconds_per_epoch")


def build_summary(record: dict[str, Any]) -> dict[str, Any]:
    """Per architecture: best hyperparameters, scores, parameter counts, gaps, timing and the seed spread;
    per pair of architectures: the significance tests on the seed scores and their verdict."""
    from rnncompare.metrics import for_kind
    from rnncompare.stats import describe
    from rnncompare.study import seed_spread_metrics

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
            **_seed_summary(entry.get("seeds", []), headline, evaluation["confidence"]),
            "spread": {
                name: {key: value for key, value in describe([seed["metrics"][name] for seed in finished]).items()
                       if key in ("mean", "std")}
                for name in seed_spread_metrics(metrics)
            } if finished else {},
        }
        if row["seeds"]["scores"]:
            seed_scores[entry["name"]] = row["seeds"]["scores"]
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
    baseline = {key.removeprefix("baseline_"): float(value) for key, value in record.get("dataset", {}).items()
                if key.startswith("baseline_")}
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
    }


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
        rows[entry["name"]] = {
            "run_id": entry["run_id"],
            "status": entry["status"],
            "units": entry["params"].get("units"),
            "selected_units": architectures.get(entry["name"], {}).get("hyperparameters", {}).get("units"),
            "params_total": int(entry["metrics"]["params_total"]),
            "hyperparameters": {k: entry["params"][k] for k in sorted(entry["params"])},
            "seeds": _seed_summary(entry["seeds"], metrics.headline, evaluation["confidence"]),
        }
    reference_scores = seed_scores.get(reference, [])
    testable = [name for name, row in rows.items()
                if len(row["seeds"]["scores"]) >= 2 and len(reference_scores) >= 2]
    comparisons = [
        _compare(reference, reference_scores, f"{name}{MATCHED_SUFFIX}", rows[name]["seeds"]["scores"],
                 len(testable), evaluation, seed, metrics)
        for name in testable
    ]
    return {"reference": reference, "reference_params": architectures.get(reference, {}).get("params_total"),
            "architectures": rows, "comparisons": comparisons}


def _seed_summary(seeds: list[dict[str, Any]], headline: str, confidence: float) -> dict[str, Any]:
    """The seeds that finished, how many failed, their headline scores and the statistics of those."""
    from rnncompare.stats import describe

    finished = [seed for seed in seeds if seed["status"] == "FINISHED"]
    scores = [seed["metrics"][headline] for seed in finished]
    return {"seeds": [seed["seed"] for seed in finished], "failed": len(seeds) - len(finished), "scores": scores,
            "stats": describe(scores, confidence) if scores else None}


def _compare(name_a: str, a: list[float], name_b: str, b: list[float], pairs: int, evaluation: dict[str, Any],
             seed: int, metrics) -> dict[str, Any]:
    """`stats.compare` with the study's evaluation settings and the direction of its headline metric."""
    from rnncompare.stats import compare

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
    """Plain-words reading of the comparison, with the numbers behind it; never a winner from a single run."""
    ranked = summary["ranking"]
    rows = summary["architectures"]
    label, gap = summary["metrics"]["headline_label"], summary["metrics"]["gap"]
    if not ranked:
        return "No architecture finished a trial, so there is nothing to compare."
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
            if pair["verdict"].endswith("better"):
                lines.append(f"{pair['verdict'].replace(' better', '')} is better than "
                             f"{pair['b'] if pair['verdict'].startswith(pair['a']) else pair['a']} "
                             f"(Welch p = {pair['welch_p']:.3g}, ASO epsilon_min = "
                             f"{min(pair['aso_epsilon_min_a_over_b'], pair['aso_epsilon_min_b_over_a']):.2f}).")
            else:
                needed = (f"; about {pair['seeds_needed']} seeds each would be needed to separate them"
                          if pair["seeds_needed"] else "")
                lines.append(f"{pair['a']} vs {pair['b']}: no significant difference at {pair['n_a']} seeds "
                             f"(Welch p = {pair['welch_p']:.3g}{needed}).")
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
    return " ".join(lines)


def write_report(record: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write report.md, report.html (figures embedded), summary.json, runs.csv and figures/*.png to `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = build_summary(record)
    table = trials_table(record)
    _write_text(out_dir / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    _write_text(out_dir / "runs.csv", table.to_csv(index=False))
    figures = _draw_figures(record, summary, table, out_dir / "figures")
    context = {
        "summary": summary,
        "record": record,
        "verdict": verdict(summary),
        "figures": figures,
        "embedded": {name: base64.b64encode(path.read_bytes()).decode("ascii") for name, path in figures.items()},
        "trials": table.to_dict(orient="records"),
    }
    environment = _templates()
    for name in ("report.md", "report.html"):
        text = environment.get_template(f"{name}.j2").render(**context)
        _write_text(out_dir / name, text)
    return [out_dir / name for name in REPORT_FILES] + list(figures.values())


def _write_text(path: Path, text: str) -> None:
    # A failed write (disk full) often carries no file name: attach it, so the one-line error can say which.
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _templates():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    environment = Environment(
        loader=PackageLoader("rnncompare", "templates"),
        autoescape=select_autoescape(["html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _format_number
    return environment


def _format_number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _draw_figures(record: dict[str, Any], summary: dict[str, Any], table: pd.DataFrame,
                  folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    score = summary["metrics"]["score"]
    gap = summary["metrics"]["gap"]
    headline, headline_label = summary["metrics"]["headline"], summary["metrics"]["headline_label"]
    from rnncompare.metrics import for_kind

    higher_is_better = for_kind(summary["kind"]).score_higher_is_better
    val_score = f"best_val_{score}"
    figures = {}

    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 4))
    for entry in record["architectures"]:
        history, color = entry["best_history"], COLORS.get(entry["name"])
        for axis, metric in ((ax_loss, "loss"), (ax_score, score)):
            for key, style in ((metric, "--"), (f"val_{metric}", "-")):
                points = history.get(key) or []
                if points:
                    steps, values = zip(*points)
                    label = f"{entry['name']} {'validation' if key.startswith('val_') else 'train'}"
                    axis.plot(steps, values, style, color=color, label=label)
    for axis, metric in ((ax_loss, "loss"), (ax_score, score)):
        _label(axis, "epoch", metric)
    if ax_score.get_legend_handles_labels()[0]:
        ax_score.legend(fontsize=7)
    fig.suptitle("Learning curves of each architecture's best trial")
    figures["learning_curves"] = _save(fig, folder / "learning_curves.png")

    finished = table[table["status"] == "FINISHED"] if not table.empty else table
    fig, axis = plt.subplots(figsize=(6.5, 4.2))
    for name, rows in finished.groupby("architecture") if not finished.empty else []:
        axis.scatter(rows["params_total"], rows[val_score], color=COLORS.get(name), label=name, alpha=0.7)
        best = rows[rows["is_best"]]
        axis.scatter(best["params_total"], best[val_score], color=COLORS.get(name), marker="*", s=200,
                     edgecolor="black")
    front = pareto_front(finished, val_score, higher_is_better) if not finished.empty else finished
    if not front.empty:
        axis.step(front["params_total"], front[val_score], where="post", color="black", linewidth=1,
                  label="Pareto front")
        axis.scatter(front["params_total"], front[val_score], facecolors="none", edgecolors="black", s=90)
    axis.set_xscale("log")
    _label(axis, "parameters (log scale)", f"validation {score} at best epoch",
           f"Every trial: {score} against parameters (star: selected; ring: Pareto front)", legend=True)
    figures["score_vs_parameters"] = _save(fig, folder / "score_vs_parameters.png")

    fig, axis = plt.subplots(figsize=(6, 4))
    names = [entry["name"] for entry in record["architectures"]]
    for position, name in enumerate(names):
        rows = finished[finished["architecture"] == name] if not finished.empty else finished
        if rows.empty:
            continue
        axis.scatter([position] * len(rows), rows[gap], color=COLORS.get(name), alpha=0.5)
        best = rows[rows["is_best"]]
        axis.bar(position, float(best[gap].iloc[0]) if not best.empty else 0.0, color=COLORS.get(name),
                 alpha=0.4, width=0.6)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(names)), names)
    _label(axis, None, f"{gap.replace('_', ' ')} at best epoch (positive: overfitting)",
           "Overfitting gap (bar: selected trial; dots: every trial)", grid="y")
    figures["overfitting_gap"] = _save(fig, folder / "overfitting_gap.png")

    searched = [name for name in SEARCHED if not finished.empty and f"hp_{name}" in finished
                and finished[f"hp_{name}"].nunique() > 1] or [name for name in ("units", "dropout")
                                                               if not finished.empty and f"hp_{name}" in finished]
    if searched:
        figures["gap_vs_hyperparameters"] = _hyperparameter_grid(
            plt, finished, searched, [(gap, f"{gap.replace('_', ' ')} (best epoch)"),
                                      ("val_loss_rise", "val_loss rise after its minimum")],
            "Overfitting against the tuned knobs, per architecture (line: mean per value)",
            folder / "gap_vs_hyperparameters.png")
        figures["hyperparameters_vs_score"] = _hyperparameter_grid(
            plt, finished, searched, [(val_score, f"validation {score} (best epoch)"),
                                      ("params_total", "parameters")],
            "Every trial's hyperparameters against its score", folder / "hyperparameters_vs_score.png")

    seeded = [entry for entry in record["architectures"] if any(s["status"] == "FINISHED" for s in entry["seeds"])]
    matched = [{**entry, "label": f"{entry['name']}{MATCHED_SUFFIX}"} for entry in record.get("matched") or []
               if any(s["status"] == "FINISHED" for s in entry["seeds"])]
    if seeded:
        fig, axis = plt.subplots(figsize=(6 + 0.8 * len(matched), 4))
        for position, entry in enumerate(seeded + matched):
            scores = [s["metrics"][headline] for s in entry["seeds"] if s["status"] == "FINISHED"]
            axis.scatter([position] * len(scores), scores, color=COLORS.get(entry["name"]), alpha=0.7)
            axis.errorbar(position + 0.15, sum(scores) / len(scores),
                          yerr=pd.Series(scores).std() if len(scores) > 1 else 0, fmt="o", color="black", capsize=4)
        baseline = summary["baseline"].get(headline)
        if baseline is not None:
            axis.axhline(baseline, color="grey", linestyle=":", label="constant predictor")
            axis.legend(fontsize=8)
        axis.set_xticks(range(len(seeded) + len(matched)),
                        [entry["name"] for entry in seeded] + [entry["label"] for entry in matched])
        _label(axis, None, headline_label, f"{headline_label[:1].upper()}{headline_label[1:]} of every seed "
               "(black: mean +/- std; @budget: resized to the reference's parameters)",
               grid="y")
        figures["seed_scores"] = _save(fig, folder / "seed_scores.png")

        fig, axis = plt.subplots(figsize=(6, 4))
        for entry in seeded:
            curves = {}
            for seed in entry["seeds"]:
                for step, value in seed["history"].get(f"val_{score}", []):
                    curves.setdefault(step, []).append(value)
            steps = sorted(curves)
            frame = pd.DataFrame({"mean": [pd.Series(curves[s]).mean() for s in steps],
                                  "low": [min(curves[s]) for s in steps], "high": [max(curves[s]) for s in steps]},
                                 index=steps)
            axis.plot(frame.index, frame["mean"], color=COLORS.get(entry["name"]), label=entry["name"])
            axis.fill_between(frame.index, frame["low"], frame["high"], color=COLORS.get(entry["name"]), alpha=0.2)
        _label(axis, "epoch", f"validation {score}",
               f"Seed runs: mean validation {score}, band = min to max over seeds", legend=True)
        figures["seed_learning_curves"] = _save(fig, folder / "seed_learning_curves.png")
    return figures


def pareto_front(trials: pd.DataFrame, score_column: str, higher_is_better: bool) -> pd.DataFrame:
    """The trials no other trial beats on both counts: fewer (or as many) parameters and a better score."""
    ordered = trials.sort_values(["params_total", score_column], ascending=[True, not higher_is_better])
    keep, best = [], None
    for index, row in ordered.iterrows():
        value = row[score_column]
        if best is None or (value > best if higher_is_better else value < best):
            keep.append(index)
            best = value
    return ordered.loc[keep]


def _hyperparameter_grid(plt, trials: pd.DataFrame, hyperparameters: list[str], rows: list[tuple[str, str]],
                         title: str, path: Path) -> Path:
    fig, axes = plt.subplots(len(rows), len(hyperparameters), figsize=(3.6 * len(hyperparameters), 3 * len(rows)),
                             squeeze=False)
    for row_index, (metric, label) in enumerate(rows):
        for column_index, name in enumerate(hyperparameters):
            axis = axes[row_index][column_index]
            for architecture, group in trials.groupby("architecture"):
                color = COLORS.get(architecture)
                axis.scatter(group[f"hp_{name}"], group[metric], color=color, alpha=0.6, label=architecture)
                means = group.groupby(f"hp_{name}")[metric].mean()
                axis.plot(means.index, means.values, color=color, linewidth=1)
            _label(axis, name if row_index == len(rows) - 1 else None, label if column_index == 0 else "")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def _label(axis, xlabel: str | None, ylabel: str, title: str | None = None, *, grid: str = "both",
           legend: bool = False) -> None:
    if xlabel:
        axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title)
    axis.grid(alpha=0.3, axis=grid)
    if legend and axis.get_legend_handles_labels()[0]:
        axis.legend()


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- several studies side by side ------------------------------------------------------------------------------


def build_comparison(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per study and architecture: the headline score over seeds, parameters, gap and the pairwise verdicts.

    The studies must measure the same thing (one task kind). When they all come from one sweep over a single
    numeric key (e.g. task.length), that key is the x axis; otherwise the studies are listed in the order given.
    """
    from rnncompare.errors import UserError

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


def write_comparison(summaries: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write comparison.md, comparison.html (figure embedded), comparison.json and its figure to `out_dir`."""
    comparison = build_comparison(summaries)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / "comparison.json", json.dumps(comparison, indent=2, sort_keys=True) + "\n")
    figure = _draw_comparison(comparison, out_dir / "figures")
    environment = _templates()
    context = {"comparison": comparison, "figure": figure.name,
               "embedded": base64.b64encode(figure.read_bytes()).decode("ascii")}
    files = [out_dir / "comparison.json", figure]
    for name in ("comparison.md", "comparison.html"):
        _write_text(out_dir / name, environment.get_template(f"{name}.j2").render(**context))
        files.append(out_dir / name)
    return files


def _draw_comparison(comparison: dict[str, Any], folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    metrics, studies = comparison["metrics"], comparison["studies"]
    positions = [study["x"] for study in studies] if comparison["axis"] else list(range(len(studies)))
    fig, (ax_score, ax_gap) = plt.subplots(1, 2, figsize=(11, 4.2))
    for offset, name in enumerate(comparison["architectures"]):
        color = COLORS.get(name)
        present = [(x, study["architectures"][name]) for x, study in zip(positions, studies)
                   if name in study["architectures"]]
        if not present:
            continue
        xs = [x for x, _ in present]
        ax_score.errorbar(xs, [row["mean"] for _, row in present], yerr=[row["std"] or 0 for _, row in present],
                          color=color, marker="o", capsize=4, label=name)
        for x, row in present:
            ax_score.scatter([x] * len(row["scores"]), row["scores"], color=color, alpha=0.35, s=14)
        ax_gap.plot(xs, [row["gap_mean"] for _, row in present], color=color, marker="o", label=name)
    baselines = [(x, study["baseline"]) for x, study in zip(positions, studies) if study["baseline"] is not None]
    if baselines:
        ax_score.plot([x for x, _ in baselines], [b for _, b in baselines], ":", color="grey",
                      label="constant predictor")
    for axis in (ax_score, ax_gap):
        if not comparison["axis"]:
            axis.set_xticks(positions, [study["study"] for study in studies], rotation=20, ha="right")
    xlabel = comparison["axis"]
    _label(ax_score, xlabel, f"{metrics['headline_label']} (mean +/- std over seeds; dots: seeds)", legend=True)
    _label(ax_gap, xlabel, f"{metrics['gap'].replace('_', ' ')} at best epoch (seed mean)")
    ax_gap.axhline(0, color="black", linewidth=0.8)
    fig.suptitle(f"{metrics['headline_label'][:1].upper()}{metrics['headline_label'][1:]} across studies")
    return _save(fig, folder / "comparison.png")
