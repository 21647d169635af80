"""Writing the report files: report.md and report.html (jinja2, figures embedded), summary.json, runs.csv; and
the comparison of several studies."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnncompare.analysis.diagnostics import CEILING_SKILL, STOPPED_SHORT_SKILL
from rnncompare.analysis.stats import BOOTSTRAP_RESAMPLES, INTERVAL_METHOD
from rnncompare.core.architectures import BUILT_IN
from rnncompare.report.comparison import build_comparison
from rnncompare.report.figures import architecture_figures, comparison_figure, draw_figures
from rnncompare.report.summary import build_summary, trials_table
from rnncompare.report.verdict import bouthillier_words, headline, verdict

REPORT_FILES = ("report.md", "report.html", "summary.json", "runs.csv")


@dataclass
class WrittenReport:
    """A written report: its summary (what summary.json holds), every file of the report, figures included, and
    the figures of each architecture on its own (for its MLflow run)."""

    summary: dict[str, Any]
    files: list[Path]
    architecture_figures: dict[str, list[Path]]


def write_report(record: dict[str, Any], out_dir: Path) -> WrittenReport:
    """Write report.md, report.html (figures embedded), summary.json, runs.csv and figures/*.png to `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = build_summary(record)
    table = trials_table(record)
    write_text(out_dir / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_text(out_dir / "runs.csv", table.to_csv(index=False))
    figures = draw_figures(record, summary, table, out_dir / "figures")
    context = {
        "summary": summary,
        "record": record,
        "headline": headline(summary),
        "bouthillier": bouthillier_words,
        "generic_loop": [name for name in summary["architectures"] if name in BUILT_IN and BUILT_IN[name].variant],
        "bodies": record.get("bodies", {}),
        **_importance_context(summary),
        "verdict": verdict(summary),
        "stopped_short_skill": STOPPED_SHORT_SKILL,
        "ceiling_margin": round(1 - CEILING_SKILL, 6),
        "interval_method": INTERVAL_METHOD.format(resamples=BOOTSTRAP_RESAMPLES),
        "figures": figures,
        "embedded": {name: base64.b64encode(path.read_bytes()).decode("ascii") for name, path in figures.items()},
        "trials": table.to_dict(orient="records"),
    }
    environment = _templates()
    for name in ("report.md", "report.html"):
        write_text(out_dir / name, environment.get_template(f"{name}.j2").render(**context))
    return WrittenReport(
        summary,
        [out_dir / name for name in REPORT_FILES] + list(figures.values()),
        architecture_figures(record, summary, out_dir / "figures"),
    )


def write_comparison(summaries: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write comparison.md, comparison.html (figure embedded), comparison.json and its figure to `out_dir`."""
    comparison = build_comparison(summaries)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "comparison.json", json.dumps(comparison, indent=2, sort_keys=True) + "\n")
    figure = comparison_figure(comparison, out_dir / "figures")
    environment = _templates()
    context = {
        "comparison": comparison,
        "figure": figure.name,
        "embedded": base64.b64encode(figure.read_bytes()).decode("ascii"),
    }
    files = [out_dir / "comparison.json", figure]
    for name in ("comparison.md", "comparison.html"):
        write_text(out_dir / name, environment.get_template(f"{name}.j2").render(**context))
        files.append(out_dir / name)
    return files


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path`; a failed write (disk full) carries the file's name, so the one-line error can say
    which."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _templates():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    environment = Environment(
        loader=PackageLoader("rnncompare.report", "templates"),
        autoescape=select_autoescape(["html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = format_number
    return environment


def format_number(value: Any, digits: int = 3) -> str:
    """A number as the report prints it: thousands separators for counts, `digits` decimals, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _importance_context(summary: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters the importance table has columns for, or, where no architecture has importances, why."""
    rows = summary["architectures"].values()
    columns = sorted({name for row in rows for name in (row.get("importance") or {})})
    reasons = sorted(
        {row.get("importance_note") for row in rows if not row.get("importance") and row.get("importance_note")}
    )
    return {
        "importance_columns": columns,
        "importance_reason": "; ".join(reasons) or "no architecture finished a trial",
    }
