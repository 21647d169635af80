"""A suite's report: suite.json (`analysis.suite.suite_statistics` of its studies' summaries), suite.md and
suite.html, and the critical-difference diagram (scikit-posthocs' drawing of Demsar's)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnncompare.analysis.suite import suite_statistics
from rnncompare.core.architectures import color
from rnncompare.report.figures import _pyplot, save
from rnncompare.report.render import _templates, write_text

SUITE_FILES = ("suite.json", "suite.md", "suite.html")


def write_suite(
    summaries: Sequence[dict[str, Any]], out_dir: Path, confidence: float = 0.95, seed: int = 0
) -> list[Path]:
    """Write suite.json, suite.md, suite.html and, where the Friedman test ran, the CD diagram to `out_dir`."""
    suite = {
        "studies": [summary["study"] for summary in summaries],
        **suite_statistics(summaries, confidence, seed=seed),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "suite.json"]
    write_text(out_dir / "suite.json", json.dumps(suite, indent=2, sort_keys=True) + "\n")
    figure = critical_difference_figure(suite, out_dir / "figures")
    context = {
        "suite": suite,
        "figure": figure.name if figure else None,
        "embedded": base64.b64encode(figure.read_bytes()).decode("ascii") if figure else None,
    }
    if figure:
        files.append(figure)
    environment = _templates()
    for name in ("suite.md", "suite.html"):
        write_text(out_dir / name, environment.get_template(f"{name}.j2").render(**context))
        files.append(out_dir / name)
    return files


def critical_difference_figure(suite: dict[str, Any], folder: Path) -> Path | None:
    """The average ranks on one axis, the architectures that Nemenyi's test cannot tell apart joined by a bar;
    None where no Friedman test ran."""
    if suite["nemenyi_p"] is None:
        return None
    import pandas as pd
    import scikit_posthocs

    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    names = suite["architectures"]
    fig, axis = plt.subplots(figsize=(7, 0.6 + 0.35 * len(names)))
    scikit_posthocs.critical_difference_diagram(
        pd.Series(suite["ranks"]),
        pd.DataFrame(suite["nemenyi_p"]).loc[names, names],
        alpha=1 - suite["confidence"],
        ax=axis,
        color_palette={name: color(name) for name in names},
    )
    axis.set_title(
        f"average rank over {len(suite['tasks'])} tasks (1 is best); critical difference "
        f"{suite['critical_difference']:.2f} (Nemenyi, {suite['confidence']:.0%})",
        fontsize=9,
    )
    return save(fig, folder / "critical_difference.png")
