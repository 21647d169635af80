"""The report's figure of which hyperparameters matter: each architecture's fANOVA shares, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnncompare.core.architectures import color


def importance_figure(summary: dict[str, Any], folder: Path, pyplot, save) -> Path | None:
    """Grouped bars: per searched hyperparameter, each architecture's share; None where no architecture has one."""
    rows = {name: row["importance"] for name, row in summary["architectures"].items() if row.get("importance")}
    if not rows:
        return None
    hyperparameters = sorted({name for shares in rows.values() for name in shares})
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(max(5, 1.6 * len(hyperparameters) * max(1, len(rows) / 4)), 4))
    width = 0.8 / len(rows)
    for index, (name, shares) in enumerate(rows.items()):
        positions = [column + (index - (len(rows) - 1) / 2) * width for column in range(len(hyperparameters))]
        axis.bar(positions, [shares.get(hp, 0.0) for hp in hyperparameters], width, color=color(name), label=name)
    axis.set_xticks(range(len(hyperparameters)), [hp.replace("_", " ") for hp in hyperparameters])
    axis.set_ylabel("share of the objective's variance (fANOVA)")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=7, ncol=2)
    axis.set_title(f"Which hyperparameters matter ({summary['tuner']['objective']})")
    return save(fig, folder / "importance.png")
