"""A whole study: config, then task, then one tuned search per architecture, then tracking, then the report.

`run_study` is the one place that wires the stages together; the CLI is a thin layer over it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from rnncompare.config import StudyConfig, load_config
from rnncompare.errors import UserError
from rnncompare.tasks import TaskData, load_task

VERSIONED_PACKAGES = ("tensorflow", "keras", "keras-tuner", "mlflow")


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
                **{key: value for key, value in row.items()
                   if key not in ("hyperparameters", "selected", "seeds", "failed_trials")},
                **row["selected"],
                f"{headline}_seed_mean": stats.get("mean"),
                f"{headline}_seed_std": stats.get("std"),
                **{f"hp_{key}": value for key, value in row["hyperparameters"].items()},
            }
        return pd.DataFrame.from_dict(rows, orient="index")


def prepare(
    experiment: str | Path | Mapping[str, Any] | StudyConfig,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
) -> tuple[StudyConfig, TaskData]:
    """Load and check the config and the data; trains nothing, writes nothing. Raises `UserError`."""
    config = experiment if isinstance(experiment, StudyConfig) else load_config(experiment, overrides)
    if config.sweep:
        raise UserError(f"study {config.study} has a sweep: run it with `rnncompare run` or `run_sweep`, which "
                        "expand it into one study per value")
    task = load_task(config.task, config.seed)
    allowed = task.output_spec.metrics.objectives
    if config.tuner.objective not in allowed:
        raise UserError(f"tuner.objective: {config.tuner.objective} does not apply to task {task.name}, a "
                        f"{task.kind} task; use {' or '.join(allowed)}")
    return config, task


def run_study(
    experiment: str | Path | Mapping[str, Any] | StudyConfig,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    progress=None,
    swept: Mapping[str, Any] | None = None,
    fresh: bool = False,
    role=None,
) -> StudyResult:
    """Run a study from a YAML path or a dict (with optional dotted overrides) and return its results.

    Args:
        experiment: path of an experiment file, a dict of the keys that differ from configs/default.yaml, or a
            resolved `StudyConfig`.
        overrides: ``["tuner.epochs=3"]`` or ``{"tuner.epochs": 3}``.
        progress: a `rnncompare.progress.Progress` to print to; a quiet one when None.
        swept: the values a sweep gave this study (recorded as ``rnncompare.sweep.<key>`` tags).
        fresh: start over even if an interrupted run of the same config exists (by default it is resumed:
            finished trials and seeds are kept, the interrupted ones run again).
        role: a chief `rnncompare.distributed.Role`: serve the oracles to workers (`run_worker`) instead of
            training the trials here; the seed runs and the report still happen here, after each search.

    Raises:
        UserError: bad config, data or tracking store, before anything is trained or written.
    """
    from rnncompare import tracking
    from rnncompare.progress import Progress
    from rnncompare.report import build_summary, trials_table, write_report
    from rnncompare.runtime import import_deep_learning
    from rnncompare.tuning import FanOut, tune_architecture

    progress = progress or Progress(enabled=False)
    # Every check (config, data, tracking store) happens before anything is printed, trained or written.
    config, task = prepare(experiment, overrides)
    for key, folder in (("tuner.dir", config.tuner.dir), ("report.dir", config.report.dir)):
        check_output_folder(key, Path(folder))
    uri = tracking.resolve_tracking_uri(config.tracking.uri)
    if role is not None:
        _check_distributed(uri, role, len(config.architectures))
    tracker = tracking.Tracker.connect(uri)
    progress.stage("config", f"study {config.study}: {', '.join(config.architectures)}; "
                   f"{config.tuner.algorithm} search, {config.tuner.max_trials} trials x <= {config.tuner.epochs} epochs each")
    progress.stage("data", task.describe())
    progress.stage("tracking", f"{uri} (MLflow experiment {config.study})")

    import_deep_learning()
    dataset = {"name": task.name, "digest": task.digest(), "source": task.source, "kind": task.kind,
               **{f"baseline_{name}": f"{value:.6g}" for name, value in task.baseline.items()}}
    runs = tracker.start_study(config.study, config.to_dict(), _versions(), _git_commit(), dataset, swept or {},
                               config_digest=config_digest(config), fresh=fresh,
                               oracle=f"{role.host}:{role.port}" if role else None)
    if runs.resumed:
        done = [name for name, (_, status) in runs.previous_architectures.items() if status == "FINISHED"]
        progress.stage("resume", f"continuing study run {runs.study_run_id}"
                                 f"{' (' + ', '.join(done) + ' done)' if done else ''}")
    else:
        tracker.log_dataset(runs, task)
    status = "FAILED"
    served = {}
    try:
        fixed = {"architecture": None, "learning_rate": config.training.learning_rate}
        progress.begin_search(config.architectures, config.tuner.max_trials, task.output_spec.metrics)
        outcomes = {}
        tuner_dir = Path(config.tuner.dir) / config.study
        if role is not None:
            served = _serve_oracles(config, task, tracker, runs, role, tuner_dir, progress)
        for architecture in config.architectures:
            fixed["architecture"] = architecture
            previous = runs.previous_architectures.get(architecture)
            if previous and previous[1] == "FINISHED":
                outcomes[architecture] = tracker.finished_outcome(architecture, previous[0], fixed)
                progress.architecture_done(architecture, outcomes[architecture], outcomes[architecture].best_metrics)
                continue
            if architecture in served:
                run_id = runs.architecture_run_ids[architecture]
                outcome = _served_outcome(architecture, *served[architecture], config, task, tracker, run_id, fixed)
            else:
                run_id = tracker.start_architecture(runs, config.study, architecture)
                previous_trials = None
                if previous:
                    _check_tuner_folder(config, tuner_dir, architecture)
                    previous_trials = tracker.previous_results(run_id, "trial", fixed)
                observer = FanOut(tracker.trial_logger(runs, config.study, architecture, fixed),
                                  progress.trial_observer(architecture))
                outcome = tune_architecture(architecture, config, task, observer, str(tuner_dir), previous_trials)
            seed_metrics = {}
            if outcome.best_trial_id is not None and config.evaluation.seeds:
                seed_metrics = _seed_runs(config, task, tracker, runs, fixed, outcome.best_hyperparameters,
                                          run_id, resumed=previous is not None, label=architecture,
                                          progress=progress)
            tracker.finish_architecture(runs.architecture_run_ids[architecture], outcome, fixed, seed_metrics)
            progress.architecture_done(architecture, outcome, seed_metrics)
            outcomes[architecture] = outcome
        if config.evaluation.match_params and config.evaluation.seeds:
            _run_budget_matched(config, task, tracker, runs, outcomes, progress)
        record = tracking.load_study(uri, config.study, runs.study_run_id)
        report_dir = Path(config.report.dir) / config.study
        files = write_report(record, report_dir)
        tracker.log_report(runs, files)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        for server, _ in served.values():
            server.stop(grace_seconds=1)
        tracker.end_study(runs, status)
    summary = build_summary(record)
    progress.summary(summary, report_dir)
    return StudyResult(config.study, summary, trials_table(record), report_dir, uri, runs.study_run_id)


def _check_tuner_folder(config: StudyConfig, tuner_dir: Path, architecture: str) -> None:
    if not (tuner_dir / architecture / "oracle.json").is_file():
        raise UserError(f"tuner.dir: cannot resume {config.study}: {tuner_dir / architecture} is gone; "
                        "run again with --fresh to start the study over")


def _check_distributed(uri: str, role, architectures: int) -> None:
    if not uri.startswith(("http://", "https://")):
        raise UserError(f"tracking.uri: {uri} is a local store; a distributed search needs a tracking server that the "
                        "chief and every worker reach: start one with `rnncompare server` and set "
                        "tracking.uri=http://HOST:PORT")
    if role.is_chief:
        from rnncompare.distributed import check_ports_free

        check_ports_free(role, architectures)


def _serve_oracles(config, task: TaskData, tracker, runs, role, tuner_dir: Path, progress) -> dict[str, tuple]:
    """Chief: open the architecture runs and serve each unfinished architecture's oracle on its own port."""
    from rnncompare.distributed import ServedOracle
    from rnncompare.tuning import chief_tuner

    served = {}
    for index, architecture in enumerate(config.architectures):
        previous = runs.previous_architectures.get(architecture)
        if previous and previous[1] == "FINISHED":
            continue
        if previous:
            _check_tuner_folder(config, tuner_dir, architecture)
        run_id = tracker.start_architecture(runs, config.study, architecture)
        tuner = chief_tuner(architecture, config, task, str(tuner_dir), role, index, resume=previous is not None)
        server = ServedOracle(architecture, tuner.oracle, f"{role.host}:{role.port_for(index)}",
                              progress.served_trial_reporter(architecture, config.tuner.objective))
        server.start()
        served[architecture] = (server, tuner)
        tracker.mark_search(run_id, "searching")
    progress.stage("chief", f"{role.describe(config.architectures)}; waiting for workers (rnncompare run "
                            f"EXPERIMENT --worker NAME --oracle {role.host}:{role.port})")
    return served


def _served_outcome(architecture: str, server, tuner, config, task: TaskData, tracker, run_id: str, fixed):
    """Chief: wait for the workers to finish one architecture's search, then score its best trial on the test
    split with the weights its worker logged."""
    import tempfile

    from rnncompare.errors import StudyStopped
    from rnncompare.tuning import load_trial_model, select_best, stopped_message

    server.wait()
    tracker.mark_search(run_id, "done")
    trials = tracker.previous_results(run_id, "trial", fixed)
    if server.failure is not None:
        failed = sorted((t for t in trials if t.status == "FAILED"), key=lambda t: t.trial_id)
        raise StudyStopped(stopped_message(architecture, config, failed[-1].failure_reason if failed else "unknown"))

    def load_model(trial_id: str):
        hyperparameters = next(t.hyperparameters for t in trials if t.trial_id == trial_id)
        with tempfile.TemporaryDirectory() as folder:
            tracker.trial_weights(run_id, trial_id, folder)
            return load_trial_model(architecture, hyperparameters, folder, config, task)

    return select_best(architecture, trials, tuner, load_model, config, task)


def run_worker(
    experiment: str | Path | Mapping[str, Any] | StudyConfig,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    role,
    progress=None,
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
    import grpc

    from rnncompare import tracking
    from rnncompare.errors import StudyStopped
    from rnncompare.progress import Progress
    from rnncompare.runtime import import_deep_learning
    from rnncompare.distributed import oracle_reachable
    from rnncompare.tuning import FanOut, ResultCollector, search_on_worker

    progress = progress or Progress(enabled=False)
    config, task = prepare(experiment, overrides)
    check_output_folder("tuner.dir", Path(config.tuner.dir))
    uri = tracking.resolve_tracking_uri(config.tracking.uri)
    _check_distributed(uri, role, len(config.architectures))
    tracker = tracking.Tracker.connect(uri)
    digest = config_digest(config)
    runs = tracker.running_study(config.study, digest)
    if runs is None:
        progress.stage("worker", f"{role.name}: waiting for the chief of study {config.study} in {uri}")
        runs = _wait_until(lambda: tracker.running_study(config.study, digest), wait_seconds,
                           f"study {config.study}: no chief runs it in {uri} (waited {wait_seconds:g} s); start "
                           f"`rnncompare run EXPERIMENT --chief --oracle {role.host}:{role.port}` first")
    progress.stage("worker", f"{role.name}: study {config.study} on {task.describe()}; chief at {role.host}:{role.port}")
    import_deep_learning()
    progress.begin_search(config.architectures, config.tuner.max_trials, task.output_spec.metrics)
    collected = ResultCollector()
    folder = Path(config.tuner.dir) / config.study / f"worker-{role.name}"
    try:
        for index, architecture in enumerate(config.architectures):
            fixed = {"architecture": architecture, "learning_rate": config.training.learning_rate}

            def oracle_state() -> str | None:
                state = tracker.refresh_architectures(runs).get(architecture)
                if state == "done" or tracker.run_status(runs.study_run_id) != "RUNNING":
                    return "done"
                if state == "searching" and oracle_reachable(role, index):
                    return state
                return None

            if _wait_until(oracle_state, wait_seconds,
                           f"worker {role.name}: the chief serves no {architecture} oracle at "
                           f"{role.host}:{role.port_for(index)} (waited {wait_seconds:g} s); check --oracle and "
                           "that the port is open") == "done":
                continue
            run_id = runs.architecture_run_ids[architecture]
            observer = FanOut(tracker.trial_logger(runs, config.study, architecture, fixed, worker=role.name),
                              progress.trial_observer(architecture, shared=True), collected)
            try:
                search_on_worker(architecture, config, task, observer, str(folder), role, index,
                                 lambda trial_id, into: tracker.trial_weights(run_id, trial_id, into))
            except grpc.RpcError as exc:
                if tracker.refresh_architectures(runs).get(architecture) == "done":
                    continue  # the search ended while this worker was joining it
                raise StudyStopped(f"worker {role.name}: lost the chief at {role.host}:{role.port_for(index)} "
                                   f"({exc.code().name}); once it is back, restart this worker with the same "
                                   "name and it takes up its trial again") from None
    except KeyboardInterrupt:
        tracker.close_open_runs("KILLED")
        raise
    except BaseException:
        tracker.close_open_runs("FAILED")
        raise
    status = tracker.run_status(runs.study_run_id)
    if status in ("FAILED", "KILLED"):
        raise StudyStopped(f"worker {role.name}: the chief's study run {runs.study_run_id} ended {status}; see the "
                           "chief's output")
    progress.stage("done", f"worker {role.name} ran {len(collected.results)} trials; the chief trains the seed runs "
                           "and writes the report")
    return len(collected.results)


def _wait_until(ready, wait_seconds: float, message: str):
    """Poll `ready()` once a second until it returns something other than None; UserError after `wait_seconds`."""
    import time

    deadline = time.monotonic() + wait_seconds
    while True:
        value = ready()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise UserError(message)
        time.sleep(1.0)


def _run_budget_matched(config, task: TaskData, tracker, runs, outcomes, progress) -> None:
    """Retrain every other architecture, with the same seeds, at the width closest to the reference's budget."""
    from rnncompare.models import units_for_budget

    reference = config.evaluation.reference or config.architectures[0]
    if outcomes[reference].best_trial_id is None:
        progress.stage("budget", f"skipped: {reference} has no selected model to match")
        return
    target = int(outcomes[reference].best_metrics["params_total"])
    for architecture, outcome in outcomes.items():
        if architecture == reference or outcome.best_trial_id is None:
            continue
        fixed = {"architecture": architecture, "learning_rate": config.training.learning_rate}
        previous = runs.previous_matched.get(architecture)
        if previous and previous[1] == "FINISHED":
            continue
        units, params_total = units_for_budget({**fixed, **outcome.best_hyperparameters}, target,
                                               task.input_spec, task.output_spec)
        hyperparameters = {**outcome.best_hyperparameters, "units": units}
        progress.stage("budget", f"{architecture} at {units} units: {params_total:,} parameters against "
                                 f"{reference}'s {target:,}")
        if previous:
            run_id = previous[0]
            tracker.reopen(run_id)
        else:
            run_id = tracker.start_matched(runs, config.study, architecture, reference,
                                           {**fixed, **hyperparameters}, params_total)
        tracker.finish_matched(run_id, _seed_runs(config, task, tracker, runs, fixed, hyperparameters, run_id,
                                                  resumed=previous is not None, label=f"{architecture}*",
                                                  progress=progress))


def _seed_runs(config, task: TaskData, tracker, runs, fixed, hyperparameters, parent_run_id: str, *,
               resumed: bool, label: str, progress) -> dict[str, float]:
    """Train the evaluation seeds of one model as child runs of `parent_run_id` (keeping those an interrupted
    run finished) and return their statistics."""
    from rnncompare.tuning import FanOut, train_seeds

    architecture = fixed["architecture"]
    observer = FanOut(
        tracker.trial_logger(runs, config.study, architecture, fixed, role="seed", parent_run_id=parent_run_id),
        progress.seed_observer(label, config.evaluation.seeds),
    )
    done = {r.trial_id: r for r in tracker.previous_results(parent_run_id, "seed", fixed)} if resumed else None
    results = train_seeds(architecture, hyperparameters, config, task, observer, done)
    return seed_statistics(results, config.evaluation.confidence, task.output_spec.metrics)


def seed_spread_metrics(kind_metrics) -> tuple[str, ...]:
    """Metrics whose mean and standard deviation over seeds the architecture run carries."""
    return ("best_epoch", kind_metrics.gap, "gap_loss", "epochs_after_best", "val_loss_rise",
            *(name for name in kind_metrics.test if name != kind_metrics.headline))


def seed_statistics(seed_results, confidence: float, kind_metrics) -> dict[str, float]:
    """Architecture-level numbers over the seed runs: the headline test metric's spread and confidence interval
    (e.g. ``test_accuracy_mean``, ``test_accuracy_ci_low``), and the mean and spread of the other metrics."""
    from rnncompare.stats import describe

    finished = [result.metrics for result in seed_results if result.status == "FINISHED"]
    values = {"seeds_finished": float(len(finished)), "seeds_failed": float(len(seed_results) - len(finished))}
    if not finished:
        return values
    headline = describe([m[kind_metrics.headline] for m in finished], confidence)
    values.update({f"{kind_metrics.headline}_{key}": value for key, value in headline.items() if key != "n"})
    for name in seed_spread_metrics(kind_metrics):
        spread = describe([m[name] for m in finished], confidence)
        values[f"{name}_seed_mean"] = spread["mean"]
        values[f"{name}_seed_std"] = spread["std"]
    return values


def run_sweep(
    experiment: str | Path | Mapping[str, Any],
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    progress=None,
    fresh: bool = False,
    role=None,
) -> tuple[list[StudyResult], Path | None]:
    """Run a study, or each study of its sweep and then the comparison report over them.

    Every swept study's config and data are checked before the first one trains. Returns the study results and
    the comparison report's folder (None without a sweep).
    """
    from rnncompare.config import expand_sweep

    base, expanded = expand_sweep(experiment, overrides)
    if role is not None and base.sweep:
        raise UserError(f"sweep: --chief and --worker run one study, and {base.study} sweeps "
                        f"{', '.join(base.sweep)}; run each value as its own study (--set sweep={{}} --set KEY=VALUE "
                        "--set study=NAME), then `rnncompare compare` them")
    for _, config in expanded:
        prepare(config)
    results = [run_study(config, progress=progress, swept=swept, fresh=fresh, role=role)
               for swept, config in expanded]
    if not base.sweep:
        return results, None
    out_dir = compare_studies([result.study for result in results], results[0].tracking_uri,
                              Path(base.report.dir) / base.study)
    if progress is not None:
        progress.stage("compare", f"{out_dir / 'comparison.html'}")
    return results, out_dir


def compare_studies(studies: Sequence[str], tracking_uri: str | None, out_dir: str | Path) -> Path:
    """Write one comparison report over several finished studies (read from the tracking store) to `out_dir`."""
    from rnncompare import tracking
    from rnncompare.report import write_comparison

    uri = tracking.resolve_tracking_uri(tracking_uri)
    summaries = [tracking.load_summary(uri, study) for study in studies]
    write_comparison(summaries, Path(out_dir))
    return Path(out_dir)


def rebuild_report(study: str, tracking_uri: str | None = None, report_dir: str | Path | None = None) -> Path:
    """Rebuild a study's report from the tracking store alone (its newest finished study run)."""
    from rnncompare import tracking
    from rnncompare.report import write_report

    uri = tracking.resolve_tracking_uri(tracking_uri)
    record = tracking.load_study(uri, study)
    out_dir = Path(report_dir or record["config"]["report"]["dir"]) / study
    write_report(record, out_dir)
    return out_dir


def check_output_folder(key: str, folder: Path) -> None:
    """Fail with one line, before anything is written, if `folder` cannot be created or written."""
    from rnncompare.tracking import writable_folder

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{key}: cannot create {folder}: {existing} is a file, not a folder")
    if not writable_folder(existing):
        raise UserError(f"{key}: cannot write to {folder}: {existing} is not writable")


def config_digest(config: StudyConfig) -> str:
    """A hash of the resolved config, without where this machine keeps things (tracking.uri, tuner.dir,
    report.dir): an interrupted study run is resumed, and a chief's study joined by a worker, only with the same
    config."""
    import hashlib
    import json

    resolved = config.to_dict()
    resolved.pop("tracking", None)
    resolved["tuner"] = {key: value for key, value in resolved["tuner"].items() if key != "dir"}
    resolved["report"] = {key: value for key, value in resolved["report"].items() if key != "dir"}
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:16]


def _versions() -> dict[str, str]:
    import platform

    versions = {"python": platform.python_version()}
    for distribution in VERSIONED_PACKAGES:
        try:
            versions[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[distribution] = "not installed"
    return versions


def _git_commit() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and len(commit) == 40 else None

