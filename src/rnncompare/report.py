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
    """Per architecture: best hyperparameters, validation and test accuracy, parameter counts, gaps, timing."""
    config = record["config"]
    architectures = {}
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
        architectures[entry["name"]] = row
    ranked = sorted(
        (name for name, row in architectures.items() if row["test_accuracy"] is not None),
        key=lambda name: -architectures[name]["test_accuracy"],
    )
    return {
        "study": record["study"],
        "study_run_id": record["study_run_id"],
        "task": config["task"]["name"],
        "dataset": record.get("dataset", {}),
        "seed": config["seed"],
        "tuner": {key: config["tuner"][key] for key in ("algorithm", "max_trials", "epochs", "batch_size", "objective")},
        "search": config["search"],
        "architectures": architectures,
        "ranking_by_test_accuracy": ranked,
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
    """Plain-words reading of the comparison, with the numbers behind it."""
    ranked = summary["ranking_by_test_accuracy"]
    rows = summary["architectures"]
    if not ranked:
        return "No architecture finished a trial, so there is nothing to compare."
    best = ranked[0]
    lines = [
        f"{best} reached the highest test accuracy ({rows[best]['test_accuracy']:.3f}) with "
        f"{rows[best]['params_total']:,} parameters."
    ]
    for other in ranked[1:]:
        ratio = rows[other]["params_total"] / rows[best]["params_total"]
        lines.append(
            f"{other}: {rows[other]['test_accuracy']:.3f} with {rows[other]['params_total']:,} parameters "
            f"({ratio:.2f}x {best}'s)."
        )
    gaps = {name: rows[name]["gap_accuracy"] for name in ranked}
    widest = max(gaps, key=gaps.get)
    lines.append(
        f"The widest train/validation accuracy gap at the best epoch is {widest}'s ({gaps[widest]:+.3f})."
    )
    lines.append(
        "Each number comes from one tuned model evaluated once on the test split: a different seed can reorder "
        "architectures that are this close, so read it as a ranking of this run, not a verdict."
    )
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
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
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
    axis.set_xlabel("parameters (log scale)")
    axis.set_ylabel("validation accuracy at best epoch")
    axis.set_title("Every trial: accuracy against parameter count (star: selected)")
    axis.grid(alpha=0.3)
    axis.legend()
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
    axis.set_ylabel("train - validation accuracy at best epoch")
    axis.set_title("Overfitting gap (bar: selected trial; dots: every trial)")
    axis.grid(alpha=0.3, axis="y")
    figures["overfitting_gap"] = _save(fig, folder / "overfitting_gap.png")
    return figures


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
