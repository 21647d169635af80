"""The report's figures: one function per figure, each drawing from the study record and its summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from rnncompare.analysis.importance import SEARCHED
from rnncompare.core.architectures import color
from rnncompare.core.metrics import for_kind
from rnncompare.core.status import RunStatus
from rnncompare.report.importance import importance_figure
from rnncompare.report.summary import MATCHED_SUFFIX


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_figures(record: dict[str, Any], summary: dict[str, Any], table: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Every figure of a study's report, saved as PNG in `folder`; returns name -> path of those drawn."""
    folder.mkdir(parents=True, exist_ok=True)
    finished = table[table["status"] == RunStatus.FINISHED] if not table.empty else table
    figures = {
        "learning_curves": learning_curves(record, summary, folder),
        "score_vs_parameters": score_vs_parameters(finished, summary, folder),
        "overfitting_gap": overfitting_gap(finished, record, summary, folder),
    }
    searched = [
        name
        for name in SEARCHED
        if not finished.empty and f"hp_{name}" in finished and finished[f"hp_{name}"].nunique() > 1
    ] or [name for name in ("units", "dropout") if not finished.empty and f"hp_{name}" in finished]
    if searched:
        figures["gap_vs_hyperparameters"] = gap_vs_hyperparameters(finished, searched, summary, folder)
        figures["hyperparameters_vs_score"] = hyperparameters_vs_score(finished, searched, summary, folder)
    seeded = [
        entry for entry in record["architectures"] if any(s["status"] == RunStatus.FINISHED for s in entry["seeds"])
    ]
    if seeded:
        figures["seed_scores"] = seed_scores(seeded, record, summary, folder)
        figures["seed_learning_curves"] = seed_learning_curves(seeded, summary, folder)
    drawn = importance_figure(summary, folder, _pyplot, save)
    if drawn is not None:
        figures["importance"] = drawn
    return figures


def architecture_figures(record: dict[str, Any], summary: dict[str, Any], folder: Path) -> dict[str, list[Path]]:
    """Per architecture, the figures its own MLflow run shows, in `folder/<architecture>/`: its best trial's
    learning curves and, where seeds finished, its seed scores and seed learning curves."""
    drawn = {}
    for entry in record["architectures"]:
        own = {**record, "architectures": [entry], "matched": []}
        target = folder / entry["name"]
        target.mkdir(parents=True, exist_ok=True)
        paths = [learning_curves(own, summary, target)]
        if any(seed["status"] == RunStatus.FINISHED for seed in entry["seeds"]):
            paths += [seed_scores([entry], own, summary, target), seed_learning_curves([entry], summary, target)]
        drawn[entry["name"]] = paths
    return drawn


def learning_curves(record: dict[str, Any], summary: dict[str, Any], folder: Path) -> Path:
    """Train and validation loss and score per epoch of each architecture's best trial."""
    plt = _pyplot()
    score = summary["metrics"]["score"]
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 4))
    for entry in record["architectures"]:
        history, line_color = entry["best_history"], color(entry["name"])
        for axis, metric in ((ax_loss, "loss"), (ax_score, score)):
            for key, style in ((metric, "--"), (f"val_{metric}", "-")):
                points = history.get(key) or []
                if points:
                    steps, values = zip(*points)
                    label = f"{entry['name']} {'validation' if key.startswith('val_') else 'train'}"
                    axis.plot(steps, values, style, color=line_color, label=label)
    for axis, metric in ((ax_loss, "loss"), (ax_score, score)):
        label_axis(axis, "epoch", metric)
    if ax_score.get_legend_handles_labels()[0]:
        ax_score.legend(fontsize=7)
    fig.suptitle("Learning curves of each architecture's best trial", wrap=True)
    return save(fig, folder / "learning_curves.png")


def score_vs_parameters(finished: pd.DataFrame, summary: dict[str, Any], folder: Path) -> Path:
    """Every finished trial's validation score against its parameter count, with the Pareto front."""
    plt = _pyplot()
    score = summary["metrics"]["score"]
    val_score = f"best_val_{score}"
    fig, axis = plt.subplots(figsize=(6.5, 4.2))
    for name, rows in finished.groupby("architecture", sort=False) if not finished.empty else []:  # the study's order
        axis.scatter(rows["params_total"], rows[val_score], color=color(name), label=name, alpha=0.7)
        best = rows[rows["is_best"]]
        axis.scatter(best["params_total"], best[val_score], color=color(name), marker="*", s=200, edgecolor="black")
    higher_is_better = for_kind(summary["kind"]).score_higher_is_better
    front = pareto_front(finished, val_score, higher_is_better) if not finished.empty else finished
    if not front.empty:
        axis.step(
            front["params_total"], front[val_score], where="post", color="black", linewidth=1, label="Pareto front"
        )
        axis.scatter(front["params_total"], front[val_score], facecolors="none", edgecolors="black", s=90)
    axis.set_xscale("log")
    label_axis(
        axis,
        "parameters (log scale)",
        f"validation {score} at best epoch",
        f"Every trial: {score} against parameters\n(star: selected; ring: Pareto front)",
        legend=True,
    )
    return save(fig, folder / "score_vs_parameters.png")


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


def overfitting_gap(finished: pd.DataFrame, record: dict[str, Any], summary: dict[str, Any], folder: Path) -> Path:
    """The train/validation gap at the best epoch: the selected trial's as a bar, every trial's as a dot."""
    plt = _pyplot()
    gap = summary["metrics"]["gap"]
    fig, axis = plt.subplots(figsize=(6, 4))
    names = [entry["name"] for entry in record["architectures"]]
    for position, name in enumerate(names):
        rows = finished[finished["architecture"] == name] if not finished.empty else finished
        if rows.empty:
            continue
        axis.scatter([position] * len(rows), rows[gap], color=color(name), alpha=0.5)
        best = rows[rows["is_best"]]
        axis.bar(position, float(best[gap].iloc[0]) if not best.empty else 0.0, color=color(name), alpha=0.4, width=0.6)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(names)), names)
    label_axis(
        axis,
        None,
        f"{gap.replace('_', ' ')} at best epoch (positive: overfitting)",
        "Overfitting gap (bar: selected trial; dots: every trial)",
        grid="y",
    )
    return save(fig, folder / "overfitting_gap.png")


def gap_vs_hyperparameters(finished: pd.DataFrame, searched: list[str], summary: dict[str, Any], folder: Path) -> Path:
    """Overfitting (gap, validation-loss rise) against each tuned hyperparameter, per architecture."""
    gap = summary["metrics"]["gap"]
    return _hyperparameter_grid(
        finished,
        searched,
        [(gap, f"{gap.replace('_', ' ')} (best epoch)"), ("val_loss_rise", "val_loss rise after its minimum")],
        "Overfitting against the tuned knobs, per architecture (line: mean per value)",
        folder / "gap_vs_hyperparameters.png",
    )


def hyperparameters_vs_score(
    finished: pd.DataFrame, searched: list[str], summary: dict[str, Any], folder: Path
) -> Path:
    """Validation score and parameter count against each tuned hyperparameter, per architecture."""
    score = summary["metrics"]["score"]
    return _hyperparameter_grid(
        finished,
        searched,
        [(f"best_val_{score}", f"validation {score} (best epoch)"), ("params_total", "parameters")],
        "Every trial's hyperparameters against its score",
        folder / "hyperparameters_vs_score.png",
    )


def _hyperparameter_grid(
    trials: pd.DataFrame, hyperparameters: list[str], rows: list[tuple[str, str]], title: str, path: Path
) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(rows), len(hyperparameters), figsize=(3.6 * len(hyperparameters), 3 * len(rows)), squeeze=False
    )
    for row_index, (metric, label) in enumerate(rows):
        for column_index, name in enumerate(hyperparameters):
            axis = axes[row_index][column_index]
            for architecture, group in trials.groupby("architecture", sort=False):  # the study's order
                point_color = color(architecture)
                axis.scatter(group[f"hp_{name}"], group[metric], color=point_color, alpha=0.6, label=architecture)
                means = group.groupby(f"hp_{name}")[metric].mean()
                axis.plot(means.index, means.values, color=point_color, linewidth=1)
            label_axis(axis, name if row_index == len(rows) - 1 else None, label if column_index == 0 else "")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title, wrap=True)
    return save(fig, path)


def seed_scores(seeded: list[dict[str, Any]], record: dict[str, Any], summary: dict[str, Any], folder: Path) -> Path:
    """Every seed's headline test score per architecture (and budget-matched model), with mean and spread and
    the constant predictor's score."""
    plt = _pyplot()
    headline, headline_label = summary["metrics"]["headline"], summary["metrics"]["headline_label"]
    matched = [
        {**entry, "label": f"{entry['name']}{MATCHED_SUFFIX}"}
        for entry in record.get("matched") or []
        if any(s["status"] == RunStatus.FINISHED for s in entry["seeds"])
    ]
    fig, axis = plt.subplots(figsize=(6 + 0.8 * len(matched), 4))
    every_score = []
    for position, entry in enumerate(seeded + matched):
        scores = [s["metrics"][headline] for s in entry["seeds"] if s["status"] == RunStatus.FINISHED]
        every_score += scores
        axis.scatter(
            [position + offset for offset in side_by_side(scores)], scores, color=color(entry["name"]), alpha=0.7
        )
        axis.errorbar(
            position + 0.15,
            sum(scores) / len(scores),
            yerr=pd.Series(scores).std() if len(scores) > 1 else 0,
            fmt="o",
            color="black",
            capsize=4,
        )
    baseline = summary["baseline"].get(headline)
    if baseline is not None:
        if baseline_in_view(every_score, baseline):
            axis.axhline(baseline, color="grey", linestyle=":", label="constant predictor")
        else:  # drawn, it would flatten the seeds' spread (what this figure is for) into a line; named instead
            side = "below" if baseline < min(every_score) else "above"
            axis.plot([], [], color="grey", linestyle=":", label=f"constant predictor {baseline:.3f} ({side} the axis)")
        axis.legend(fontsize=8)
    axis.set_xticks(
        range(len(seeded) + len(matched)), [entry["name"] for entry in seeded] + [entry["label"] for entry in matched]
    )
    key = "black: mean +/- std" + ("; @budget: resized to the reference's parameters" if matched else "")
    label_axis(
        axis, None, headline_label, f"{headline_label[:1].upper()}{headline_label[1:]} of every seed ({key})", grid="y"
    )
    return save(fig, folder / "seed_scores.png")


def side_by_side(scores: list[float], step: float = 0.04) -> list[float]:
    """Horizontal offsets that put equal scores next to each other instead of on top of each other (test scores
    on a few hundred samples repeat: five seeds can show as three dots)."""
    seen = Counter(scores)
    placed: dict[float, int] = {}
    offsets = []
    for score in scores:
        index = placed.get(score, 0)
        placed[score] = index + 1
        offsets.append((index - (seen[score] - 1) / 2) * step)
    return offsets


def baseline_in_view(scores: list[float], baseline: float) -> bool:
    """Whether the constant predictor's score belongs on a seed-score axis: within the scores' own span of them.

    Where every architecture learned, the scores sit far from it and showing it would squash their spread; where
    one did not, it sits near that one's scores and is drawn.
    """
    if not scores:
        return True
    span = max(max(scores) - min(scores), 1e-12)
    return min(scores) - span <= baseline <= max(scores) + span


def seed_learning_curves(seeded: list[dict[str, Any]], summary: dict[str, Any], folder: Path) -> Path:
    """Mean validation score per epoch over each architecture's seed runs, with the min-to-max band."""
    plt = _pyplot()
    score = summary["metrics"]["score"]
    fig, axis = plt.subplots(figsize=(6, 4))
    for entry in seeded:
        curves = {}
        for seed in entry["seeds"]:
            for step, value in seed["history"].get(f"val_{score}", []):
                curves.setdefault(step, []).append(value)
        steps = sorted(curves)
        frame = pd.DataFrame(
            {
                "mean": [pd.Series(curves[s]).mean() for s in steps],
                "low": [min(curves[s]) for s in steps],
                "high": [max(curves[s]) for s in steps],
            },
            index=steps,
        )
        axis.plot(frame.index, frame["mean"], color=color(entry["name"]), label=entry["name"])
        axis.fill_between(frame.index, frame["low"], frame["high"], color=color(entry["name"]), alpha=0.2)
    label_axis(
        axis,
        "epoch",
        f"validation {score}",
        f"Seed runs: mean validation {score}, band = min to max over seeds",
        legend=True,
    )
    return save(fig, folder / "seed_learning_curves.png")


def comparison_figure(comparison: dict[str, Any], folder: Path) -> Path:
    """Several studies side by side: the headline score (every seed) and the gap per study or swept value."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    metrics, studies = comparison["metrics"], comparison["studies"]
    positions = [study["x"] for study in studies] if comparison["axis"] else list(range(len(studies)))
    fig, (ax_score, ax_gap) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in comparison["architectures"]:
        name_color = color(name)
        present = [
            (x, study["architectures"][name]) for x, study in zip(positions, studies) if name in study["architectures"]
        ]
        if not present:
            continue
        xs = [x for x, _ in present]
        ax_score.errorbar(
            xs,
            [row["mean"] for _, row in present],
            yerr=[row["std"] or 0 for _, row in present],
            color=name_color,
            marker="o",
            capsize=4,
            label=name,
        )
        for x, row in present:
            ax_score.scatter([x] * len(row["scores"]), row["scores"], color=name_color, alpha=0.35, s=14)
        ax_gap.plot(xs, [row["gap_mean"] for _, row in present], color=name_color, marker="o", label=name)
    baselines = [(x, study["baseline"]) for x, study in zip(positions, studies) if study["baseline"] is not None]
    if baselines:
        ax_score.plot(
            [x for x, _ in baselines], [b for _, b in baselines], ":", color="grey", label="constant predictor"
        )
    for axis in (ax_score, ax_gap):
        if not comparison["axis"]:
            axis.set_xticks(positions, [study["study"] for study in studies], rotation=20, ha="right")
    xlabel = comparison["axis"]
    label_axis(ax_score, xlabel, f"{metrics['headline_label']} (mean +/- std over seeds; dots: seeds)", legend=True)
    label_axis(ax_gap, xlabel, f"{metrics['gap'].replace('_', ' ')} at best epoch (seed mean)")
    ax_gap.axhline(0, color="black", linewidth=0.8)
    fig.suptitle(f"{metrics['headline_label'][:1].upper()}{metrics['headline_label'][1:]} across studies", wrap=True)
    return save(fig, folder / "comparison.png")


def label_axis(
    axis, xlabel: str | None, ylabel: str, title: str | None = None, *, grid: str = "both", legend: bool = False
) -> None:
    """Axis labels, an optional title, a light grid, and a legend only where there is something to label."""
    if xlabel:
        axis.set_xlabel(xlabel)
    if xlabel == "epoch":  # whole epochs only: a few epochs otherwise tick at 3.5, 4.5, ...
        from matplotlib.ticker import MaxNLocator

        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title, wrap=True)  # a title wider than the figure breaks onto lines, not off its edge
    axis.grid(alpha=0.3, axis=grid)
    if legend and axis.get_legend_handles_labels()[0]:
        axis.legend()


def save(fig, path: Path) -> Path:
    """Save `fig` as PNG at `path` and close it."""
    plt = _pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
