"""Several studies at once: a sweep (one study per value, then a comparison report), a comparison of finished
studies, and a study's report rebuilt from the tracking store alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rnncompare.config import expand_sweep
from rnncompare.core.errors import UserError
from rnncompare.core.metrics import for_kind
from rnncompare.orchestration.distributed import Role
from rnncompare.orchestration.preflight import CheckedStudy, Experiment, check_output_folder, check_study
from rnncompare.orchestration.progress import Progress
from rnncompare.orchestration.study import Overrides, StudyResult, run_study
from rnncompare.report import write_comparison, write_report
from rnncompare.report.suite import write_suite
from rnncompare.tracking import load_study, load_summary, resolve_tracking_uri


def run_sweep(
    experiment: Experiment,
    overrides: Overrides = None,
    *,
    progress: Progress | None = None,
    fresh: bool = False,
    role: Role | None = None,
) -> tuple[list[StudyResult], Path | None]:
    """Run a study, or each study of its sweep and then the comparison report over them.

    Every swept study is checked (config, data, folders, store, resume) before the first one trains. Returns the
    study results and the comparison report's folder (None without a sweep).
    """
    base, expanded = expand_sweep(experiment, overrides)
    if role is not None and base.suite is not None:
        raise UserError(
            f"suite: --chief and --worker run one study, and {base.study} is a suite of {len(base.suite)} tasks; run "
            "each task as its own study (--set suite=null --set task={name: ...} --set study=NAME), then "
            "`rnncompare compare` them"
        )
    if role is not None and base.sweep:
        raise UserError(
            f"sweep: --chief and --worker run one study, and {base.study} sweeps "
            f"{', '.join(base.sweep)}; run each value as its own study (--set sweep={{}} --set KEY=VALUE "
            "--set study=NAME), then `rnncompare compare` them"
        )
    checked = []
    try:
        for swept, config in expanded:
            checked.append((swept, check_study(config, fresh=fresh, role=role)))
        if base.suite is not None and base.evaluation.rope is not None:
            _check_rope_unit(base.evaluation.rope, [(swept["suite"], study) for swept, study in checked])
        results = [run_study(study, progress=progress, swept=swept, role=role) for swept, study in checked]
    finally:
        for _, study in checked:
            study.lock.release()
    if base.suite is not None:
        out_dir = compare_studies(
            [result.study for result in results],
            results[0].tracking_uri,
            Path(base.report.dir) / base.study,
            suite=True,
        )
        if progress is not None:
            progress.stage("suite", f"{out_dir / 'suite.html'}")
        return results, out_dir
    if not base.sweep:
        return results, None
    out_dir = compare_studies(
        [result.study for result in results], results[0].tracking_uri, Path(base.report.dir) / base.study
    )
    if progress is not None:
        progress.stage("compare", f"{out_dir / 'comparison.html'}")
    return results, out_dir


def _check_rope_unit(rope: float, studies: Sequence[tuple[str, CheckedStudy]]) -> None:
    """A suite's one rope needs one headline metric to be measured in."""
    headlines = {label: for_kind(study.task.kind).headline_label for label, study in studies}
    if len(set(headlines.values())) > 1:
        listed = ", ".join(f"{headline} on {label}" for label, headline in headlines.items())
        raise UserError(
            f"evaluation.rope: {rope:g} has no one unit in this suite, whose tasks score in different metrics "
            f"({listed}); run the classification and the regression tasks as two suites, or set rope to null"
        )


def compare_studies(
    studies: Sequence[str],
    tracking_uri: str | None,
    out_dir: str | Path,
    *,
    suite: bool | None = None,
    confidence: float | None = None,
    seed: int | None = None,
) -> Path:
    """Write one report over several finished studies (read from the tracking store) to `out_dir`: the suite
    report (`report.suite.write_suite`: ranks, Friedman, Nemenyi, Bayesian signed-rank, at `confidence`, the
    first study's by default) where
    `suite`, or by default where they are studies of different tasks; else the comparison of one task's studies
    (a sweep's)."""
    uri = resolve_tracking_uri(tracking_uri)
    check_output_folder("--out", Path(out_dir))
    summaries = [load_summary(uri, study) for study in studies]
    if suite is None:
        suite = len({summary["task"] for summary in summaries}) > 1
    if suite:
        # by default the first study's confidence and seed: `compare` rebuilds what the suite's run wrote
        first = summaries[0]
        write_suite(
            summaries,
            Path(out_dir),
            first["evaluation"]["confidence"] if confidence is None else confidence,
            first["seed"] if seed is None else seed,
        )
    else:
        write_comparison(summaries, Path(out_dir))
    return Path(out_dir)


def rebuild_report(study: str, tracking_uri: str | None = None, report_dir: str | Path | None = None) -> Path:
    """Rebuild a study's report from the tracking store alone (its newest finished study run)."""
    uri = resolve_tracking_uri(tracking_uri)
    record = load_study(uri, study)
    out_dir = Path(report_dir or record["config"]["report"]["dir"]) / study
    check_output_folder("--out" if report_dir else "report.dir", out_dir)
    write_report(record, out_dir)
    return out_dir
