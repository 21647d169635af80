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

SUMMARY_METRICS = (
    "val_accuracy", "val_loss", "test_accuracy", "test_loss", "gap_accuracy", "gap_loss",
    "best_epoch", "epochs_after_best", "seconds_per_epoch",
)
COUNT_METRICS = ("params_total", "params_trainable", "trials_finished", "trials_failed")
COLORS = {"lstm": "#1f77b4", "gru": "#ff7f0e", "simple_rnn": "#2ca02c"}
REPORT_FILES = ("report.md", "report.html", "summary.json", "runs.csv")


def build_summary(record: dict[str, Any]) -> dict[str, Any]:
    """Per architecture: best hyperparameters, accuracies, parameter counts, gaps, timing and the seed spread;
    per pair of architectures: the significance tests on the seed scores and their verdict."""
    from rnncompare.stats import compare, describe

    config = record["config"]
    evaluation = config["evaluation"]
    architectures = {}
    seed_scores: dict[str, list[float]] = {}
    for entry in record["architectures"]:
        metrics = entry["metrics"]
        row: dict[str, Any] = {
            "run_id": entry["run_id"],
            "status": entry["status"],
            "best_trial_id": entry["best_trial_id"],
            "hyperparameters": {k: entry["params"][k] for k in sorted(entry["params"])},
        }
        row.update({name: metrics.get(name) for name in SUMMARY_METRICS})
        row.update({name: int(metrics[name]) if name in metrics else None for name in COUNT_METRICS})
        finished = [seed for seed in entry.get("seeds", []) if seed["status"] == "FINISHED"]
        scores = [seed["metrics"]["test_accuracy"] for seed in finished]
        row["seeds"] = {
            "seeds": [seed["seed"] for seed in finished],
            "failed": sum(seed["status"] != "FINISHED" for seed in entry.get("seeds", [])),
            "test_accuracy": scores,
            "test_accuracy_stats": describe(scores, evaluation["confidence"]) if scores else None,
        }
        for name in ("best_epoch", "gap_accuracy", "epochs_after_best"):
            spread = describe([seed["metrics"][name] for seed in finished]) if finished else None
            row["seeds"][f"{name}_std"] = spread["std"] if spread else None
            row["seeds"][f"{name}_mean"] = spread["mean"] if spread else None
        if scores:
            seed_scores[entry["name"]] = scores
        architectures[entry["name"]] = row
    names = list(seed_scores)
    pairs = [(a, b) for index, a in enumerate(names) for b in names[index + 1:]]
    comparisons = [
        compare(a, seed_scores[a], b, seed_scores[b], confidence=evaluation["confidence"], pairs=len(pairs),
                aso_threshold=evaluation["aso_threshold"], seed=config["seed"])
        for a, b in pairs
        if len(seed_scores[a]) >= 2 and len(seed_scores[b]) >= 2
    ]
    def headline(name: str) -> float:
        stats = architectures[name]["seeds"]["test_accuracy_stats"]
        return stats["mean"] if stats else architectures[name]["test_accuracy"]

    ranked = sorted((name for name, row in architectures.items() if row["test_accuracy"] is not None),
                    key=lambda name: -headline(name))
    return {
        "study": record["study"],
        "study_run_id": record["study_run_id"],
        "task": config["task"]["name"],
        "dataset": record.get("dataset", {}),
        "seed": config["seed"],
        "tuner": {key: config["tuner"][key] for key in ("algorithm", "max_trials", "epochs", "batch_size", "objective")},
        "search": config["search"],
        "evaluation": evaluation,
        "architectures": architectures,
        "ranking": ranked,
        "ranked_by": "mean test accuracy over seeds" if seed_scores else "test accuracy of the selected trial",
        "comparisons": comparisons,
    }


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
    if not ranked:
        return "No architecture finished a trial, so there is nothing to compare."
    parts = []
    for name in ranked:
        stats = rows[name]["seeds"]["test_accuracy_stats"]
        if stats:
            parts.append(
                f"{name} {stats['mean']:.3f} +/- {stats['std']:.3f} test accuracy over {stats['n']} seeds "
                f"({summary['evaluation']['confidence']:.0%} interval {stats['ci_low']:.3f} to {stats['ci_high']:.3f}; "
                f"{rows[name]['params_total']:,} parameters, gap {rows[name]['gap_accuracy']:+.3f})"
            )
        else:
            parts.append(f"{name} {rows[name]['test_accuracy']:.3f} test accuracy from one run "
                         f"({rows[name]['params_total']:,} parameters)")
    lines = ["Ranked by " + summary["ranked_by"] + ": " + "; ".join(parts) + "."]
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
    else:
        lines.append("With fewer than two seeds per architecture there is no test: this is a ranking of one run, "
                     "not a verdict. Set evaluation.seeds to 5 or more.")
    return " ".join(lines)


def write_report(record: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write report.md, report.html (figures embedded), summary.json, runs.csv and figures/*.png to `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = build_summary(record)
    table = trials_table(record)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    table.to_csv(out_dir / "runs.csv", index=False)
    figures = _draw_figures(record, table, out_dir / "figures")
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
        (out_dir / name).write_text(text, encoding="utf-8")
    return [out_dir / name for name in REPORT_FILES] + list(figures.values())


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


def _draw_figures(record: dict[str, Any], table: pd.DataFrame, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    figures = {}

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for entry in record["architectures"]:
        history, color = entry["best_history"], COLORS.get(entry["name"])
        for axis, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            for key, style in ((metric, "--"), (f"val_{metric}", "-")):
                points = history.get(key) or []
                if points:
                    steps, values = zip(*points)
                    label = f"{entry['name']} {'validation' if key.startswith('val_') else 'train'}"
                    axis.plot(steps, values, style, color=color, label=label)
    for axis, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        _label(axis, "epoch", metric)
    ax_acc.legend(fontsize=7)
    fig.suptitle("Learning curves of each architecture's best trial")
    figures["learning_curves"] = _save(fig, folder / "learning_curves.png")

    fig, axis = plt.subplots(figsize=(6, 4))
    finished = table[table["status"] == "FINISHED"] if not table.empty else table
    for name, rows in finished.groupby("architecture") if not finished.empty else []:
        axis.scatter(rows["params_total"], rows["best_val_accuracy"], color=COLORS.get(name), label=name, alpha=0.7)
        best = rows[rows["is_best"]]
        axis.scatter(best["params_total"], best["best_val_accuracy"], color=COLORS.get(name), marker="*", s=200,
                     edgecolor="black")
    axis.set_xscale("log")
    _label(axis, "parameters (log scale)", "validation accuracy at best epoch",
           "Every trial: accuracy against parameter count (star: selected)", legend=True)
    figures["accuracy_vs_parameters"] = _save(fig, folder / "accuracy_vs_parameters.png")

    fig, axis = plt.subplots(figsize=(6, 4))
    names = [entry["name"] for entry in record["architectures"]]
    for position, name in enumerate(names):
        rows = finished[finished["architecture"] == name] if not finished.empty else finished
        if rows.empty:
            continue
        axis.scatter([position] * len(rows), rows["gap_accuracy"], color=COLORS.get(name), alpha=0.5)
        best = rows[rows["is_best"]]
        axis.bar(position, float(best["gap_accuracy"].iloc[0]) if not best.empty else 0.0, color=COLORS.get(name),
                 alpha=0.4, width=0.6)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(names)), names)
    _label(axis, None, "train - validation accuracy at best epoch",
           "Overfitting gap (bar: selected trial; dots: every trial)", grid="y")
    figures["overfitting_gap"] = _save(fig, folder / "overfitting_gap.png")

    seeded = [entry for entry in record["architectures"] if any(s["status"] == "FINISHED" for s in entry["seeds"])]
    if seeded:
        fig, axis = plt.subplots(figsize=(6, 4))
        for position, entry in enumerate(seeded):
            scores = [s["metrics"]["test_accuracy"] for s in entry["seeds"] if s["status"] == "FINISHED"]
            axis.scatter([position] * len(scores), scores, color=COLORS.get(entry["name"]), alpha=0.7)
            axis.errorbar(position + 0.15, sum(scores) / len(scores),
                          yerr=pd.Series(scores).std() if len(scores) > 1 else 0, fmt="o", color="black", capsize=4)
        axis.set_xticks(range(len(seeded)), [entry["name"] for entry in seeded])
        _label(axis, None, "test accuracy", "Test accuracy of every seed (black: mean +/- std)", grid="y")
        figures["seed_scores"] = _save(fig, folder / "seed_scores.png")

        fig, axis = plt.subplots(figsize=(6, 4))
        for entry in seeded:
            curves = {}
            for seed in entry["seeds"]:
                for step, value in seed["history"].get("val_accuracy", []):
                    curves.setdefault(step, []).append(value)
            steps = sorted(curves)
            frame = pd.DataFrame({"mean": [pd.Series(curves[s]).mean() for s in steps],
                                  "low": [min(curves[s]) for s in steps], "high": [max(curves[s]) for s in steps]},
                                 index=steps)
            axis.plot(frame.index, frame["mean"], color=COLORS.get(entry["name"]), label=entry["name"])
            axis.fill_between(frame.index, frame["low"], frame["high"], color=COLORS.get(entry["name"]), alpha=0.2)
        _label(axis, "epoch", "validation accuracy", "Seed runs: mean validation accuracy, band = min to max over seeds",
               legend=True)
        figures["seed_learning_curves"] = _save(fig, folder / "seed_learning_curves.png")
    return figures


def _label(axis, xlabel: str | None, ylabel: str, title: str | None = None, *, grid: str = "both",
           legend: bool = False) -> None:
    if xlabel:
        axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title)
    axis.grid(alpha=0.3, axis=grid)
    if legend:
        axis.legend()


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
