"""Several studies of one task side by side (a sweep's): the comparison's numbers as plain data."""

from __future__ import annotations

from typing import Any

from rnncompare.analysis.importance import SEARCHED
from rnncompare.core.errors import UserError


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
