"""A whole study, orchestrated: checks, then the run tree, then one search per architecture (here or served to
workers), the seed and budget-matched runs, and the report. The stages do the work; this module only calls them
in order, over one `StudyContext` and one search seam (`LocalSearch` or `ServedSearch`).

`run_study` is the Python API (with `studies.run_sweep`); the CLI is a thin layer over them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.compat.mlflow import fluent_state_kept
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import ArchitectureOutcome
from rnncompare.orchestration import provenance
from rnncompare.orchestration.context import ArchitectureSearch, LocalSearch, StudyContext, claim_tuner_folder
from rnncompare.orchestration.distributed import Role
from rnncompare.orchestration.distributed.chief import ServedSearch
from rnncompare.orchestration.distributed.loopback import LocalCluster, resolve_workers, seed_process_repays
from rnncompare.orchestration.distributed.worker import find_chief, run_trials
from rnncompare.orchestration.preflight import CheckedStudy, Experiment, check_study, check_worker
from rnncompare.orchestration.progress import Progress
from rnncompare.orchestration.seed_phase import (
    closed_seed_runs,
    fit_seconds,
    run_budget_matched,
    run_seed_rounds,
    seed_count_words,
    seed_run_statistics,
    start_seed_runs,
)
from rnncompare.report import architecture_run_numbers, run_notes, study_run_numbers, trials_table, write_report
from rnncompare.runtime.backend import current_backend
from rnncompare.runtime.memory import rarer_full_collections
from rnncompare.runtime.processes import allowed_cores
from rnncompare.runtime.xla import use_compile_cache
from rnncompare.tracking import Tracker, load_study
from rnncompare.training.bodies import source_file
from rnncompare.training.draws import SeedDraws
from rnncompare.training.fitting import choose_cpu_kernels
from rnncompare.training.models import portable_model
from rnncompare.training.seed_runs import PendingSeeds, SeedPool
from rnncompare.training.tuning import trials_per_search
from rnncompare.training.vectorized import how_seeds_train

Overrides = Sequence[str] | Mapping[str, Any] | None


@dataclass
class StudyResult:
    """What a study produced: per-architecture summary, per-trial table, where the report and runs are."""

    study: str
    summary: dict[str, Any]
    trials: pd.DataFrame
    report_dir: Path
    tracking_uri: str
    study_run_id: str

    @property
    def architectures(self) -> pd.DataFrame:
        """The per-architecture summary as a DataFrame: one row per architecture, with the selected trial's
        metrics, hyperparameters (``hp_*``) and the headline metric's mean and std over seeds."""
        headline = self.summary["metrics"]["headline"]
        rows = {}
        for name, row in self.summary["architectures"].items():
            stats = row["seeds"]["stats"] or {}
            rows[name] = {
                **{
                    key: value
                    for key, value in row.items()
                    if key not in ("hyperparameters", "selected", "seeds", "failed_trials")
                },
                **row["selected"],
                f"{headline}_seed_mean": stats.get("mean"),
                f"{headline}_seed_std": stats.get("std"),
                **{f"hp_{key}": value for key, value in row["hyperparameters"].items()},
            }
        return pd.DataFrame.from_dict(rows, orient="index")


@rarer_full_collections()
def run_study(
    experiment: Experiment | CheckedStudy,
    overrides: Overrides = None,
    *,
    progress: Progress | None = None,
    swept: Mapping[str, Any] | None = None,
    fresh: bool = False,
    role: Role | None = None,
) -> StudyResult:
    """Run a study from a YAML path or a dict (with optional dotted overrides) and return its results.

    Args:
        experiment: path of an experiment file, a dict of the keys that differ from configs/default.yaml, a
            resolved `StudyConfig`, or a `CheckedStudy` that `preflight.check_study` already checked.
        overrides: ``["tuner.epochs=3"]`` or ``{"tuner.epochs": 3}``.
        progress: a `rnncompare.orchestration.progress.Progress` to print to; a quiet one when None.
        swept: the values a sweep gave this study (recorded as ``rnncompare.sweep.<key>`` tags).
        fresh: start over even if an interrupted run of the same config exists (by default it is resumed:
            finished trials and seeds are kept, the interrupted ones run again).
        role: a chief `rnncompare.orchestration.distributed.Role`: serve the oracles to workers (`run_worker`) instead of
            training the trials here; the seed runs and the report still happen here, after each search.

    Raises:
        UserError: bad config, data or tracking store, before anything is trained or written.
    """
    progress = progress or Progress(enabled=False)
    checked = (
        experiment
        if isinstance(experiment, CheckedStudy)
        else check_study(experiment, overrides, fresh=fresh, role=role)
    )
    try:
        with fluent_state_kept():  # a notebook's own MLflow tracking URI and active experiment stay its own
            return _run_checked(checked, progress, swept, role)
    finally:
        checked.lock.release()


def _run_checked(
    checked: CheckedStudy, progress: Progress, swept: Mapping[str, Any] | None, role: Role | None
) -> StudyResult:
    """`run_study` once its checks passed: the backend, the processes that train, then the study itself."""
    config, task = checked.config, checked.task
    progress.stage(
        "config",
        f"study {config.study}: {', '.join(config.architectures)}; {config.tuner.algorithm} "
        f"search, {config.tuner.max_trials} trials x <= {config.tuner.epochs} epochs each",
    )
    progress.stage("data", task.describe())
    progress.stage("tracking", f"{checked.tracking_uri} (MLflow experiment {config.study})")
    backend = current_backend()
    cached = use_compile_cache(config.execution.compile_cache)
    fusions = choose_cpu_kernels(config, task)
    progress.stage(
        "backend",
        f"Keras on {backend}"
        + (" (chosen by execution.backend: auto)" if config.execution.backend == "auto" else "")
        + (f"; compiled programs kept in {config.execution.compile_cache}" if cached else "")
        + ("; XLA's faster-compiling CPU kernels (short fits)" if fusions else ""),
    )
    if config.evaluation.seeds:
        progress.stage(
            "seeds",
            f"{seed_count_words(config.evaluation)} per model, {how_seeds_train(config, backend)}; "
            f"each draws its own {SeedDraws(config, task).describe()}",
        )
    workers = resolve_workers(config, backend) if role is None else 1
    if workers == 1:
        seed_pool = None
        if role is None and seed_process_repays(config, backend):
            progress.stage("workers", "1 process searches; the seed runs train in another, beside the next search")
            seed_pool = SeedPool(config, 1, 1)
        import_deep_learning()
        try:
            return _run(checked, progress, swept, role, checked.tracking_uri, seed_pool=seed_pool)
        finally:
            if seed_pool is not None:
                seed_pool.close()
    loopback = Path(config.tuner.dir) / config.study / "loopback"
    with LocalCluster(config, checked.tracking_uri, workers, loopback) as cluster:
        progress.stage(
            "workers",
            f"{workers} worker processes, {cluster.threads_per_worker} core(s) each, on "
            f"loopback (logs in {cluster.folder}); the seed runs {workers} at once",
        )
        seed_pool = SeedPool(config, workers, cluster.threads_per_worker) if config.evaluation.seeds else None
        import_deep_learning()  # while the server and the other processes start
        cluster.ready()
        try:
            return _run(checked, progress, swept, cluster.role, cluster.tracking_uri, cluster.check, seed_pool)
        finally:
            if seed_pool is not None:
                seed_pool.close()


def _run(
    checked: CheckedStudy,
    progress: Progress,
    swept: Mapping[str, Any] | None,
    role: Role | None,
    tracking_uri: str,
    check_workers: Callable[[], None] | None = None,
    seed_pool: SeedPool | None = None,
) -> StudyResult:
    """The study itself: the run tree, the searches (here, or served to `role`'s workers), seeds, report."""
    config, task = checked.config, checked.task
    context = _open_study(checked, progress, swept, role, tracking_uri, seed_pool)
    search: ArchitectureSearch = (
        ServedSearch(context, role, check_workers) if role is not None else LocalSearch(context)
    )
    report_dir = Path(config.report.dir) / config.study
    status = RunStatus.FAILED
    try:
        progress.begin_search(config.architectures, trials_per_search(config), task.output_spec.metrics)
        search.start()
        outcomes = _architectures(context, search)
        if config.evaluation.match_params and config.evaluation.seeds:
            run_budget_matched(context, outcomes)
        # every write is in: read the store itself (a loopback server would only add its HTTP calls)
        record = load_study(checked.tracking_uri, config.study, context.runs.study_run_id)
        report = write_report(record, report_dir)
        context.tracker.log_report(context.runs, report.files)
        context.tracker.log_review(
            context.runs,
            run_notes(report.summary),
            {name: row["diagnostics"] for name, row in report.summary["architectures"].items()},
            report.architecture_figures,
            *study_run_numbers(report.summary),
            architecture_run_numbers(report.summary),
        )
        status = RunStatus.FINISHED
    except KeyboardInterrupt:
        status = RunStatus.KILLED
        raise
    finally:
        search.close()
        context.tracker.close_open_runs(status)
    progress.summary(report.summary, report_dir)
    return StudyResult(
        config.study, report.summary, trials_table(record), report_dir, checked.tracking_uri, context.runs.study_run_id
    )


def _open_study(
    checked: CheckedStudy,
    progress: Progress,
    swept: Mapping[str, Any] | None,
    role: Role | None,
    tracking_uri: str,
    seed_pool: SeedPool | None = None,
) -> StudyContext:
    """Open (or reopen) the study run and return the context every stage shares."""
    config, task = checked.config, checked.task
    tracker = Tracker(
        tracking_uri, provenance.source_name(), provenance.git_commit(), artifacts_beside=checked.tracking_uri
    )
    dataset = {
        "name": task.name,
        "digest": task.digest(),
        "source": task.source,
        "kind": task.kind,
        **{f"baseline_{name}": f"{value:.6g}" for name, value in task.baseline.items()},
    }
    if config.evaluation.seeds:
        draws = SeedDraws(config, task)
        dataset["varied"] = ",".join(draws.varied)  # what differs between seed runs, in words below
        dataset["varied_words"] = draws.describe()
    runs = tracker.start_study(
        config.study,
        config.to_dict(),
        provenance.versions(),
        dataset,
        swept or {},
        config_digest=checked.digest,
        resume=checked.resume,
        oracle=f"{role.host}:{role.port}" if role else None,
    )
    if runs.resumed:
        done = [name for name, previous in runs.previous_architectures.items() if previous.finished]
        progress.stage(
            "resume", f"continuing study run {runs.study_run_id}{' (' + ', '.join(done) + ' done)' if done else ''}"
        )
    else:
        tracker.log_dataset(runs, task)
        claim_tuner_folder(config, checked.digest)
    return StudyContext(config, task, tracker, runs, progress, seed_pool)


def _architectures(context: StudyContext, search: ArchitectureSearch) -> dict[str, ArchitectureOutcome]:
    """Every architecture's search, seed runs and closed run. With a seed pool, an architecture's seed runs train
    while the next searches go on, and are collected after the last search; without, one after the other."""
    architectures = context.config.architectures
    sequential = context.config.evaluation.sequential
    if context.seed_pool is None and not sequential:
        return {
            name: _finish_architecture(context, name, *_start_architecture(context, search, name))
            for name in architectures
        }
    started = {name: _start_architecture(context, search, name) for name in architectures}
    if sequential:  # every architecture's first seeds, then rounds, then the runs are closed
        run_seed_rounds(context, started, closed_seed_runs(context, started))
    return {name: _finish_architecture(context, name, *started[name]) for name in architectures}


def _start_architecture(context: StudyContext, search: ArchitectureSearch, architecture: str):
    """An architecture's search (or what a finished run recorded), and its seed runs begun."""
    previous = context.runs.previous_architectures.get(architecture)
    if previous and previous.finished:
        return context.tracker.finished_outcome(architecture, previous.run_id, context.fixed(architecture)), None
    outcome = search.outcome(architecture, previous)
    seeds = None
    if outcome.selected and context.config.evaluation.seeds:
        seeds = start_seed_runs(
            context,
            architecture,
            outcome.best_hyperparameters,
            context.runs.architecture_run_ids[architecture],
            resumed=previous is not None,
            label=architecture,
            expected_fit_seconds=fit_seconds(outcome),
        )
    return outcome, seeds


def _finish_architecture(
    context: StudyContext, architecture: str, outcome: ArchitectureOutcome, seeds: PendingSeeds | None
) -> ArchitectureOutcome:
    """The seed runs' statistics and representative model, the models logged, the architecture run closed."""
    previous = context.runs.previous_architectures.get(architecture)
    if previous and previous.finished:
        context.progress.architecture_done(architecture, outcome)
        return outcome
    run_id = context.runs.architecture_run_ids[architecture]
    if seeds is not None:
        outcome.seed_metrics, results = seed_run_statistics(context, seeds)
        outcome.representative_seed = next((seed for seed in results if seed.model is not None), None)
    if outcome.selected and context.config.tracking.log_models:
        _log_models(context, architecture, run_id, outcome)
    body = context.config.body_of(architecture)
    if body is not None and source_file(body) is not None:  # the study reruns from the store, body included
        context.tracker.log_source(run_id, source_file(body))
    context.tracker.finish_architecture(run_id, outcome, context.fixed(architecture))
    context.progress.architecture_done(architecture, outcome)
    return outcome


def _log_models(context: StudyContext, architecture: str, run_id: str, outcome: ArchitectureOutcome) -> None:
    """The selected model (as "model") and the representative seed's (as "seed_model") on the architecture run."""
    seed = outcome.representative_seed
    registered = f"{context.config.study}-{architecture}" if context.config.tracking.register_models else None
    context.tracker.log_models(
        run_id,
        portable_model(outcome.selected_model),
        context.task.x_test[:3],
        registered,
        seed_model=(seed.trial_id, portable_model(seed.model)) if seed else None,
    )


@rarer_full_collections()
def run_worker(
    experiment: Experiment,
    overrides: Overrides = None,
    *,
    role: Role,
    progress: Progress | None = None,
    wait_seconds: float = 600.0,
) -> int:
    """Train the trials a chief's oracles hand out, architecture by architecture, until none is left.

    Each trial is logged under the chief's architecture run, with this worker's name and the trial's weights.
    Waits up to `wait_seconds` for the chief to start the study and to serve each architecture. Returns the
    number of trials this worker ran.

    Raises:
        UserError: bad config or data, no tracking server, no chief, or a chief running another config.
        StudyStopped: the chief stopped the study, or stopped answering.
    """
    progress = progress or Progress(enabled=False)
    config, task, uri = check_worker(experiment, overrides, role, wait_seconds)
    tracker = Tracker(uri, provenance.source_name(), provenance.git_commit())
    runs = find_chief(config, tracker, role, progress, wait_seconds)
    progress.stage(
        "worker",
        f"{role.name}: study {config.study} on {task.describe()}; chief at "
        f"{role.host}:{role.port}; on cores {','.join(map(str, allowed_cores()))}",
    )
    use_compile_cache(config.execution.compile_cache)
    choose_cpu_kernels(config, task)
    import_deep_learning()
    progress.begin_search(config.architectures, trials_per_search(config), task.output_spec.metrics)
    count = run_trials(config, task, tracker, runs, role, progress, wait_seconds)
    progress.stage(
        "done", f"worker {role.name} ran {count} trials; the chief trains the seed runs and writes the report"
    )
    return count
