"""Tracking: the only module that talks to MLflow.

Run tree of a study (one MLflow experiment per study)::

    study run                 rnncompare.role=study          config.yaml, versions, git commit, report files
      architecture run        rnncompare.role=architecture   best trial's hyperparameters and metrics, test_accuracy
        trial run             rnncompare.role=trial          hyperparameters, per-epoch curves, summary metrics
        seed run              rnncompare.role=seed           the selected hyperparameters retrained with one seed
      matched run             rnncompare.role=matched        an architecture resized to the reference's budget

In a distributed search the chief writes the study and architecture runs, and each worker writes the trial runs
it trains (tagged rnncompare.worker, with the trial's weights as artifacts) under the chief's architecture run.

Everything is done through `MlflowClient` with explicit run ids (no fluent active-run stack), so nesting never
depends on which run happens to be active.
"""

from __future__ import annotations

import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from rnncompare.config import DEFAULT_TRACKING_URI
from rnncompare.errors import UserError
from rnncompare.metrics import ALL_EPOCH_METRICS
from rnncompare.tuning import ArchitectureOutcome, TrialResult

TAG_ROLE = "rnncompare.role"
TAG_STUDY = "rnncompare.study"
TAG_ARCHITECTURE = "rnncompare.architecture"
TAG_TRIAL_ID = "rnncompare.trial_id"
TAG_SEED = "rnncompare.seed"
TAG_BEST_TRIAL_ID = "rnncompare.best_trial_id"
TAG_FAILURE = "rnncompare.failure_reason"
TAG_VERSION_PREFIX = "rnncompare.version."
TAG_PARENT = "mlflow.parentRunId"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_SWEEP_PREFIX = "rnncompare.sweep."
TAG_MATCHED_TO = "rnncompare.matched_to"
TAG_CONFIG_DIGEST = "rnncompare.config_digest"
TAG_WORKER = "rnncompare.worker"
TAG_ORACLE = "rnncompare.oracle"
TAG_SEARCH = "rnncompare.search"
WEIGHTS_ARTIFACTS = "weights"
INTERRUPTED = "interrupted: the process stopped during this run (it is run again on resume)"
CONFIG_ARTIFACT = "config.yaml"
SUMMARY_ARTIFACT = "report/summary.json"


def resolve_tracking_uri(configured: str | None) -> str:
    """The store to use: the config's (or `--set`'s) `tracking.uri`, then $MLFLOW_TRACKING_URI, then the default."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def check_store(uri: str, timeout_seconds: float = 5.0) -> None:
    """Fail fast, with one line, if the tracking store cannot be used; never waits on MLflow's long retries."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_seconds) as response:
                if response.status != 200:
                    raise UserError(f"tracking.uri: {uri} answered HTTP {response.status} to /health")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"tracking.uri: cannot reach the MLflow server at {uri} ({reason})") from None
        return
    path = _sqlite_path(uri)
    if path is not None:
        folder = path.parent if str(path.parent) else Path(".")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"tracking.uri: cannot create {folder} for {uri} ({exc.strerror})") from None
        if not writable_folder(folder) or (path.exists() and not os.access(path, os.W_OK)):
            raise UserError(f"tracking.uri: {path} is not writable")
        return
    if uri.startswith(("file:", "/", ".")) or "://" not in uri:
        raise UserError(
            f"tracking.uri: {uri!r} is a plain folder store, which current MLflow refuses; "
            f"use a database URI such as {DEFAULT_TRACKING_URI} or a server http://host:port"
        )


def writable_folder(folder: Path) -> bool:
    """Whether a file can really be created in `folder` (os.access says yes to root on a read-only file system)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rnncompare-write-check-"):
            return True
    except OSError:
        return False


def _artifact_location(uri: str, study: str) -> str | None:
    # Beside a local SQLite store, artifacts go to <store folder>/artifacts/<study>; a server chooses its own.
    path = _sqlite_path(uri)
    if path is None:
        return None
    return (path.parent.resolve() / "artifacts" / study).as_uri()


def _metrics_batch(values: Mapping[str, float], step: int = 0):
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, step) for key, value in values.items()]


def _params_batch(values: Mapping[str, Any]):
    from mlflow.entities import Param

    return [Param(key, str(value)) for key, value in values.items()]


@dataclass
class StudyRuns:
    """Run ids of one study run; on a resume, also what the interrupted run had already written."""

    experiment_id: str
    study_run_id: str
    architecture_run_ids: dict[str, str] = field(default_factory=dict)
    resumed: bool = False
    # architecture -> (run id, status) of the architecture and budget-matched runs found on resume
    previous_architectures: dict[str, tuple[str, str]] = field(default_factory=dict)
    previous_matched: dict[str, tuple[str, str]] = field(default_factory=dict)


class Tracker:
    """Writes a study's run tree. Create with `Tracker.connect(uri)` after the config and data are valid."""

    def __init__(self, uri: str):
        self.uri = uri
        self.client = _client(uri)
        self._open_run_ids: list[str] = []
        self._children: dict[str, list[str]] = {}

    def _create_run(self, experiment_id: str, tags: Mapping[str, str], run_name: str) -> str:
        run_id = self.client.create_run(experiment_id, tags=dict(tags), run_name=run_name).info.run_id
        self._open_run_ids.append(run_id)
        if TAG_PARENT in tags:
            self._children.setdefault(tags[TAG_PARENT], []).append(run_id)
        return run_id

    def _terminate(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)
        if run_id in self._open_run_ids:
            self._open_run_ids.remove(run_id)

    @classmethod
    def connect(cls, uri: str) -> "Tracker":
        """Check the store is usable, then open it."""
        check_store(uri)
        return cls(uri)

    def start_study(
        self, study: str, resolved_config: Mapping[str, Any], versions: Mapping[str, str], git_commit: str | None,
        dataset: Mapping[str, str], swept: Mapping[str, Any] | None = None, config_digest: str = "",
        fresh: bool = False, oracle: str | None = None,
    ) -> StudyRuns:
        """Open the study run: resume the newest one with the same config digest if it never finished (unless
        `fresh`), else create the experiment if needed and a new study run with config, versions and commit.

        Runs a killed process left RUNNING are marked KILLED first, so none stays RUNNING forever.
        """
        experiment = self.client.get_experiment_by_name(study)
        if experiment is not None and experiment.lifecycle_stage == "deleted":
            raise UserError(
                f"study: the MLflow experiment {study!r} in {self.uri} is deleted; restore it or pick another name"
            )
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(study, artifact_location=_artifact_location(self.uri, study))
        )
        self._mark_interrupted(experiment_id)
        if not fresh and config_digest:
            resumed = self._resume(experiment_id, config_digest)
            if resumed is not None:
                if oracle:
                    self.client.set_tag(resumed.study_run_id, TAG_ORACLE, oracle)
                return resumed
        tags = {TAG_ROLE: "study", TAG_STUDY: study, TAG_CONFIG_DIGEST: config_digest}
        if oracle:
            tags[TAG_ORACLE] = oracle
        tags.update({f"{TAG_VERSION_PREFIX}{name}": version for name, version in versions.items()})
        tags.update({f"rnncompare.dataset.{key}": value for key, value in dataset.items()})
        tags.update({f"{TAG_SWEEP_PREFIX}{key}": yaml.safe_dump(value).strip().removesuffix("...").strip()
                     for key, value in (swept or {}).items()})
        if git_commit:
            tags[TAG_GIT_COMMIT] = git_commit
        run_id = self._create_run(experiment_id, tags, study)
        flat = _flatten(resolved_config)
        self.client.log_batch(run_id, params=_params_batch(flat))
        self.client.log_text(run_id, yaml.safe_dump(dict(resolved_config), sort_keys=False), CONFIG_ARTIFACT)
        return StudyRuns(experiment_id, run_id)

    def _mark_interrupted(self, experiment_id: str) -> None:
        # A process killed with SIGKILL cannot close its runs: whatever it left RUNNING was interrupted.
        for run in _search_all(self.client, experiment_id, "attributes.status = 'RUNNING'"):
            self.mark_interrupted(run.info.run_id)

    def mark_interrupted(self, run_id: str) -> None:
        """Close a run whose process died as KILLED, tagged as interrupted (it is run again)."""
        self.client.set_tag(run_id, TAG_FAILURE, INTERRUPTED)
        self.client.set_terminated(run_id, "KILLED")

    def _resume(self, experiment_id: str, config_digest: str) -> StudyRuns | None:
        newest = self.client.search_runs(
            [experiment_id], f"tags.`{TAG_ROLE}` = 'study' and tags.`{TAG_CONFIG_DIGEST}` = '{config_digest}'",
            max_results=1, order_by=["attributes.start_time DESC"],
        )
        if not newest or newest[0].info.status == "FINISHED":
            return None
        run_id = newest[0].info.run_id
        self.reopen(run_id)
        runs = StudyRuns(experiment_id, run_id, resumed=True)
        for role, found in (("architecture", runs.previous_architectures), ("matched", runs.previous_matched)):
            for child in _search_all(self.client, experiment_id,
                                     f"tags.`{TAG_PARENT}` = '{run_id}' and tags.`{TAG_ROLE}` = '{role}'"):
                found[child.data.tags[TAG_ARCHITECTURE]] = (child.info.run_id, child.info.status)
        return runs

    def previous_results(self, parent_run_id: str, role: str, fixed_params: Iterable[str]) -> list[TrialResult]:
        """The trial (or seed) runs under `parent_run_id` that ended on their own, FINISHED or FAILED, as
        `TrialResult`s: what an interrupted study need not run again."""
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        results = []
        for run in _search_all(self.client, experiment_id,
                               f"tags.`{TAG_PARENT}` = '{parent_run_id}' and tags.`{TAG_ROLE}` = '{role}'"):
            if run.info.status not in ("FINISHED", "FAILED"):
                continue
            metrics = {name.removeprefix("best_") if name.removeprefix("best_") in ALL_EPOCH_METRICS else name: value
                       for name, value in run.data.metrics.items() if name not in ALL_EPOCH_METRICS}
            results.append(TrialResult(
                trial_id=run.data.tags[TAG_TRIAL_ID if role == "trial" else TAG_SEED],
                hyperparameters={key: _parse_param(value) for key, value in run.data.params.items()
                                 if key not in set(fixed_params)},
                status=run.info.status,
                metrics=metrics,
                failure_reason=run.data.tags.get(TAG_FAILURE),
            ))
        return results

    def finished_outcome(self, architecture: str, run_id: str, fixed_params: Iterable[str]) -> ArchitectureOutcome:
        """An architecture run that finished before an interruption, as the `ArchitectureOutcome` it recorded."""
        run = self.client.get_run(run_id)
        metrics = dict(run.data.metrics)
        return ArchitectureOutcome(
            architecture=architecture,
            trials=self.previous_results(run_id, "trial", fixed_params),
            best_trial_id=run.data.tags.get(TAG_BEST_TRIAL_ID),
            best_hyperparameters={key: _parse_param(value) for key, value in run.data.params.items()
                                  if key not in set(fixed_params)},
            best_metrics=metrics,
            test_metrics={name: value for name, value in metrics.items() if name.startswith("test_")},
        )

    def reopen(self, run_id: str) -> None:
        """Mark a run of an interrupted study RUNNING again, to be finished by this process."""
        if TAG_FAILURE in self.client.get_run(run_id).data.tags:  # the "interrupted" mark no longer holds
            self.client.delete_tag(run_id, TAG_FAILURE)
        self.client.update_run(run_id, status="RUNNING")
        self._open_run_ids.append(run_id)

    def running_study(self, study: str, config_digest: str) -> StudyRuns | None:
        """The chief's RUNNING study run of this config, with its architecture runs so far; None while there is
        none. A worker only reads: it never marks or reopens the chief's runs. Raises `UserError` when the chief
        runs the study with another config."""
        experiment = self.client.get_experiment_by_name(study)
        if experiment is None:
            return None
        running = self.client.search_runs(
            [experiment.experiment_id], f"tags.`{TAG_ROLE}` = 'study' and attributes.status = 'RUNNING'",
            max_results=10, order_by=["attributes.start_time DESC"],
        )
        match = next((run for run in running if run.data.tags.get(TAG_CONFIG_DIGEST) == config_digest), None)
        if match is None:
            if running:
                other = running[0].data.tags.get(TAG_CONFIG_DIGEST)
                raise UserError(f"study {study}: the chief runs it with another config (digest {other}, this "
                                f"worker's {config_digest}); give the worker the chief's experiment file and --set "
                                "options (tracking.uri, tuner.dir and report.dir may differ)")
            return None
        runs = StudyRuns(experiment.experiment_id, match.info.run_id)
        self.refresh_architectures(runs)
        return runs

    def refresh_architectures(self, runs: StudyRuns) -> dict[str, str]:
        """Read the study run's architecture runs into `runs`; return each one's search state: ``searching``
        while its oracle hands out trials, ``done`` after."""
        states = {}
        for child in _search_all(self.client, runs.experiment_id,
                                 f"tags.`{TAG_PARENT}` = '{runs.study_run_id}' and tags.`{TAG_ROLE}` = 'architecture'"):
            name = child.data.tags[TAG_ARCHITECTURE]
            runs.architecture_run_ids[name] = child.info.run_id
            searching = child.info.status == "RUNNING" and child.data.tags.get(TAG_SEARCH) == "searching"
            states[name] = "searching" if searching else "done"
        return states

    def run_status(self, run_id: str) -> str:
        """A run's status: RUNNING, FINISHED, FAILED or KILLED."""
        return self.client.get_run(run_id).info.status

    def mark_search(self, run_id: str, state: str) -> None:
        """Tell workers whether the chief serves this architecture's oracle (``searching``) or not (``done``)."""
        self.client.set_tag(run_id, TAG_SEARCH, state)

    def trial_weights(self, parent_run_id: str, trial_id: str, folder: str) -> str:
        """Put the weight files a worker logged with trial `trial_id` under `parent_run_id` into `folder`."""
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        found = _search_all(self.client, experiment_id,
                            f"tags.`{TAG_PARENT}` = '{parent_run_id}' and tags.`{TAG_TRIAL_ID}` = '{trial_id}' "
                            f"and attributes.status = 'FINISHED'")
        if not found:
            raise RuntimeError(f"trial {trial_id} under run {parent_run_id} has no finished run with weights")
        import shutil

        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as download:
            fetched = Path(self.client.download_artifacts(found[0].info.run_id, WEIGHTS_ARTIFACTS, download))
            for path in fetched.iterdir():
                shutil.move(str(path), str(Path(folder) / path.name))
        return folder

    def log_dataset(self, runs: StudyRuns, task) -> None:
        """Record the task's three splits as the study run's dataset inputs (MLflow's Datasets view), each with
        the task name, a content digest, its source and the context train, validation or test."""
        import warnings

        import mlflow.data
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.entities import DatasetInput, InputTag

        inputs = []
        for split, (x, y) in task.splits().items():
            source: Any = CodeDatasetSource({"rnncompare.task": task.name, "rnncompare.source": task.source})
            if Path(task.source).is_file():
                source = str(Path(task.source).resolve())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a file path resolves to a local source, with a FutureWarning
                dataset = mlflow.data.from_numpy(x, targets=y, source=source, name=f"{task.name}-{split}",
                                                 digest=task.digest(split))
            inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", split)]))
        self.client.log_inputs(runs.study_run_id, datasets=inputs)

    def start_architecture(self, runs: StudyRuns, study: str, architecture: str) -> str:
        """Open the architecture run under the study run (or reopen the one an interrupted run left)."""
        if architecture in runs.previous_architectures:
            run_id = runs.previous_architectures[architecture][0]
            self.reopen(run_id)
            runs.architecture_run_ids[architecture] = run_id
            return run_id
        run_id = self._create_run(
            runs.experiment_id,
            {TAG_ROLE: "architecture", TAG_STUDY: study, TAG_ARCHITECTURE: architecture, TAG_PARENT: runs.study_run_id},
            architecture,
        )
        runs.architecture_run_ids[architecture] = run_id
        return run_id

    def trial_logger(
        self, runs: StudyRuns, study: str, architecture: str, fixed_params: Mapping[str, Any], role: str = "trial",
        parent_run_id: str | None = None, worker: str | None = None,
    ):
        """A `TrialObserver` writing each trial (role ``trial``) or seed run (role ``seed``) under the architecture
        run (or under `parent_run_id`, e.g. a budget-matched run). A `worker`'s trial runs carry its name and the
        trial's weights, which the chief scores on the test split."""
        parent = parent_run_id or runs.architecture_run_ids[architecture]
        return _TrialLogger(self, runs, study, architecture, fixed_params, role, parent, worker)

    def start_matched(
        self, runs: StudyRuns, study: str, architecture: str, reference: str, hyperparameters: Mapping[str, Any],
        params_total: int,
    ) -> str:
        """Open the run of `architecture` resized to `reference`'s parameter budget, under the study run."""
        run_id = self._create_run(
            runs.experiment_id,
            {TAG_ROLE: "matched", TAG_STUDY: study, TAG_ARCHITECTURE: architecture, TAG_MATCHED_TO: reference,
             TAG_PARENT: runs.study_run_id},
            f"{architecture}-at-{reference}-budget",
        )
        self.client.log_batch(run_id, params=_params_batch(hyperparameters),
                              metrics=_metrics_batch({"params_total": params_total}))
        return run_id

    def finish_matched(self, run_id: str, seed_metrics: Mapping[str, float]) -> None:
        """Put the seed statistics on a budget-matched run and close it (FAILED when no seed finished)."""
        self.client.log_batch(run_id, metrics=_metrics_batch(seed_metrics))
        self._terminate(run_id, "FINISHED" if seed_metrics.get("seeds_finished") else "FAILED")

    def finish_architecture(
        self, run_id: str, outcome: ArchitectureOutcome, fixed_params: Mapping[str, Any],
        seed_metrics: Mapping[str, float] | None = None,
    ) -> None:
        """Put the best trial's hyperparameters and metrics, its test scores and the seed statistics on the run."""
        # A child run that never heard its end (a bug, or a fit killed from inside) must not stay RUNNING.
        for child_id in [r for r in self._open_run_ids if r in self._children.get(run_id, ())]:
            self.client.set_tag(child_id, TAG_FAILURE, "the run ended without reporting a result")
            self._terminate(child_id, "FAILED")
        failed = sum(trial.status == "FAILED" for trial in outcome.trials)
        counts = {"trials_finished": len(outcome.trials) - failed, "trials_failed": failed, **(seed_metrics or {})}
        if outcome.best_trial_id is None:
            self.client.log_batch(run_id, metrics=_metrics_batch(counts))
            self.client.set_tag(run_id, TAG_FAILURE, "every trial failed")
            self._terminate(run_id, "FAILED")
            return
        self.client.log_batch(
            run_id,
            metrics=_metrics_batch({**outcome.best_metrics, **outcome.test_metrics, **counts}),
            params=_params_batch({**fixed_params, **outcome.best_hyperparameters}),
        )
        self.client.set_tag(run_id, TAG_BEST_TRIAL_ID, outcome.best_trial_id)
        self._terminate(run_id, "FINISHED")

    def log_report(self, runs: StudyRuns, files: Iterable[Path]) -> None:
        """Attach the report files to the study run."""
        for path in files:
            self.client.log_artifact(runs.study_run_id, str(path), artifact_path="report")

    def end_study(self, runs: StudyRuns, status: str = "FINISHED") -> None:
        """Close the study run and every run still open under it (FAILED or KILLED when the study broke off)."""
        self.close_open_runs(status)

    def close_open_runs(self, status: str) -> None:
        """Close every run this process opened and has not closed (a worker's, when it stops)."""
        for run_id in reversed(list(self._open_run_ids)):
            self._terminate(run_id, status)


class _TrialLogger:
    """Writes trials as they happen: one run per trial, one batched call per epoch."""

    def __init__(
        self, tracker: Tracker, runs: StudyRuns, study: str, architecture: str, fixed: Mapping[str, Any], role: str,
        parent_run_id: str, worker: str | None = None,
    ):
        self.role = role
        self.worker = worker
        self.parent_run_id = parent_run_id
        self.tracker = tracker
        self.client = tracker.client
        self.runs = runs
        self.study = study
        self.architecture = architecture
        self.fixed = dict(fixed)
        self.run_ids: dict[str, str] = {}

    def trial_started(self, trial_id: str, hyperparameters: dict[str, Any]) -> None:
        id_tag = TAG_TRIAL_ID if self.role == "trial" else TAG_SEED
        tags = {TAG_ROLE: self.role, TAG_STUDY: self.study, TAG_ARCHITECTURE: self.architecture, id_tag: trial_id,
                TAG_PARENT: self.parent_run_id}
        if self.worker is not None:
            tags[TAG_WORKER] = self.worker
            self._close_interrupted(trial_id)
        run_id = self.tracker._create_run(self.runs.experiment_id, tags, f"{self.architecture}-{self.role}-{trial_id}")
        self.run_ids[trial_id] = run_id
        self.client.log_batch(run_id, params=_params_batch({**self.fixed, **hyperparameters}))

    def epoch_ended(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        self.client.log_batch(self.run_ids[trial_id], metrics=_metrics_batch(metrics, step=epoch))

    def trial_ended(self, result: TrialResult) -> None:
        run_id = self.run_ids[result.trial_id]
        if result.status == "FAILED":
            self.client.set_tag(run_id, TAG_FAILURE, (result.failure_reason or "unknown")[:5000])
            self.tracker._terminate(run_id, "FAILED")
            return
        # The summary keys `loss`, `accuracy`, ... would clash with the per-epoch series: prefix them with best_.
        summary = {
            (f"best_{name}" if name in ALL_EPOCH_METRICS else name): value for name, value in result.metrics.items()
        }
        self.client.log_batch(run_id, metrics=_metrics_batch(summary))
        if self.worker is not None:
            for path in result.weights_files:
                self.client.log_artifact(run_id, path, WEIGHTS_ARTIFACTS)
        self.tracker._terminate(run_id, "FINISHED")

    def _close_interrupted(self, trial_id: str) -> None:
        # The chief gives a restarted worker back the trial it was running; that trial's run from before the
        # restart is still RUNNING. Only this worker ever gets this trial, so no live run is touched.
        for run in _search_all(self.client, self.runs.experiment_id,
                               f"tags.`{TAG_PARENT}` = '{self.parent_run_id}' and tags.`{TAG_TRIAL_ID}` = '{trial_id}' "
                               "and attributes.status = 'RUNNING'"):
            self.tracker.mark_interrupted(run.info.run_id)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# ---- reading a study back -------------------------------------------------------------------------------------


def _search_all(client, experiment_id: str, filter_string: str, order_by: list[str] | None = None) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=filter_string, max_results=1000, order_by=order_by, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _parse_param(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _study_run(uri: str, study: str, study_run_id: str | None = None):
    check_store(uri)
    client = _client(uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        known = sorted(e.name for e in client.search_experiments() if e.name != "Default")
        listing = f"; studies there: {', '.join(known)}" if known else "; the store holds no studies"
        raise UserError(f"study {study!r} not found in {uri}{listing}")
    if study_run_id is not None:
        return client, experiment, client.get_run(study_run_id)
    finished = _search_all(
        client, experiment.experiment_id,
        f"tags.`{TAG_ROLE}` = 'study' and attributes.status = 'FINISHED'", ["attributes.start_time DESC"],
    )
    if not finished:
        raise UserError(f"study {study!r} in {uri} has no finished study run yet")
    return client, experiment, finished[0]


def load_summary(uri: str, study: str) -> dict[str, Any]:
    """The summary.json that a study's newest finished run logged with its report."""
    import json

    client, _, study_run = _study_run(uri, study)
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(study_run.info.run_id, SUMMARY_ARTIFACT, folder)
        except Exception:  # MLflow raises several types for a missing artifact; all mean the same here
            raise UserError(f"study {study!r} in {uri}: its study run has no {SUMMARY_ARTIFACT}; "
                            f"run `rnncompare report {study}` first") from None
        return json.loads(Path(path).read_text(encoding="utf-8"))


def load_study(uri: str, study: str, study_run_id: str | None = None) -> dict[str, Any]:
    """Read a study back from the tracking store alone, as plain data for the report.

    Takes the given study run, or else the newest FINISHED one. Raises `UserError` when there is none.
    """
    client, experiment, study_run = _study_run(uri, study, study_run_id)
    with tempfile.TemporaryDirectory() as folder:
        config_path = client.download_artifacts(study_run.info.run_id, CONFIG_ARTIFACT, folder)
        config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    architecture_runs = _search_all(
        client, experiment.experiment_id,
        f"tags.`{TAG_PARENT}` = '{study_run.info.run_id}' and tags.`{TAG_ROLE}` = 'architecture'",
    )
    by_name = {run.data.tags[TAG_ARCHITECTURE]: run for run in architecture_runs}
    architectures = []
    for name in config["architectures"]:
        if name not in by_name:
            continue
        run = by_name[name]
        trial_runs = _search_all(
            client, experiment.experiment_id,
            f"tags.`{TAG_PARENT}` = '{run.info.run_id}' and tags.`{TAG_ROLE}` = 'trial'",
        )
        trial_runs = [trial for trial in trial_runs if trial.info.status != "KILLED"]  # interrupted, then rerun
        trials = sorted((_trial_record(trial) for trial in trial_runs), key=lambda t: t["trial_id"])
        seeds = _seed_records(client, experiment.experiment_id, run.info.run_id)
        best_trial_id = run.data.tags.get(TAG_BEST_TRIAL_ID)
        best_history = {}
        for trial_run in trial_runs:
            if trial_run.data.tags.get(TAG_TRIAL_ID) == best_trial_id:
                best_history = _history(client, trial_run)
        architectures.append({
            "name": name,
            "run_id": run.info.run_id,
            "status": run.info.status,
            "params": {key: _parse_param(value) for key, value in run.data.params.items()},
            "metrics": dict(run.data.metrics),
            "best_trial_id": best_trial_id,
            "best_history": best_history,
            "trials": trials,
            "seeds": seeds,
        })
    matched_runs = _search_all(
        client, experiment.experiment_id,
        f"tags.`{TAG_PARENT}` = '{study_run.info.run_id}' and tags.`{TAG_ROLE}` = 'matched'",
    )
    matched = [{
        "name": run.data.tags[TAG_ARCHITECTURE],
        "reference": run.data.tags[TAG_MATCHED_TO],
        "run_id": run.info.run_id,
        "status": run.info.status,
        "params": {key: _parse_param(value) for key, value in run.data.params.items()},
        "metrics": dict(run.data.metrics),
        "seeds": _seed_records(client, experiment.experiment_id, run.info.run_id),
    } for run in matched_runs]
    matched.sort(key=lambda entry: config["architectures"].index(entry["name"]))
    tags = study_run.data.tags
    return {
        "study": study,
        "tracking_uri": uri,
        "experiment_id": experiment.experiment_id,
        "study_run_id": study_run.info.run_id,
        "config": config,
        "versions": {k.removeprefix(TAG_VERSION_PREFIX): v for k, v in tags.items() if k.startswith(TAG_VERSION_PREFIX)},
        "git_commit": tags.get(TAG_GIT_COMMIT),
        "dataset": {k.removeprefix("rnncompare.dataset."): v for k, v in tags.items() if k.startswith("rnncompare.dataset.")},
        "sweep": {k.removeprefix(TAG_SWEEP_PREFIX): _parse_param(v) for k, v in tags.items()
                  if k.startswith(TAG_SWEEP_PREFIX)},
        "architectures": architectures,
        "matched": matched,
    }


def _seed_records(client, experiment_id: str, parent_run_id: str) -> list[dict[str, Any]]:
    seeds = []
    for seed_run in _search_all(
        client, experiment_id, f"tags.`{TAG_PARENT}` = '{parent_run_id}' and tags.`{TAG_ROLE}` = 'seed'"
    ):
        if seed_run.info.status == "KILLED":  # interrupted, then rerun
            continue
        seed = _trial_record(seed_run)
        seed["seed"] = int(seed_run.data.tags[TAG_SEED])
        seed["history"] = _history(client, seed_run)
        seeds.append(seed)
    return sorted(seeds, key=lambda seed: seed["seed"])


def _trial_record(run) -> dict[str, Any]:
    return {
        "trial_id": run.data.tags.get(TAG_TRIAL_ID, ""),
        "run_id": run.info.run_id,
        "status": run.info.status,
        "hyperparameters": {key: _parse_param(value) for key, value in run.data.params.items()},
        "metrics": {key: value for key, value in run.data.metrics.items() if key not in ALL_EPOCH_METRICS},
        "failure_reason": run.data.tags.get(TAG_FAILURE),
    }


def _history(client, run) -> dict[str, list[list[float]]]:
    history = {}
    for key in ALL_EPOCH_METRICS:
        if key not in run.data.metrics:
            continue
        points = sorted(client.get_metric_history(run.info.run_id, key), key=lambda metric: metric.step)
        history[key] = [[metric.step, metric.value] for metric in points]
    return history


def server_command(backend_store_uri: str, artifacts_destination: str, host: str, port: int,
                   workers: int = 1) -> list[str]:
    """The `mlflow server` command line for a team's tracking server: a database backend store, and artifacts
    proxied by the server itself (clients need no access to the artifact folder or bucket)."""
    import sys

    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
            "--artifacts-destination", artifacts_destination, "--serve-artifacts",
            "--host", host, "--port", str(port), "--workers", str(workers)]


def ui_command(uri: str, host: str, port: int) -> list[str]:
    """The `mlflow ui` command line that serves this store's UI."""
    import sys

    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
