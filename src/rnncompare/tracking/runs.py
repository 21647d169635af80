"""Reading the run tree while a study runs: what an interrupted study already did, what a chief is serving, and
the weights a worker logged. Read-only: the writer (`Tracker`) builds on it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rnncompare.core.errors import UserError
from rnncompare.core.metrics import ALL_EPOCH_METRICS, ALL_TEST_METRICS
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import ArchitectureOutcome, TrialResult
from rnncompare.tracking.store import (
    TAG_ARCHITECTURE,
    TAG_BEST_TRIAL_ID,
    TAG_CONFIG_DIGEST,
    TAG_FAILURE,
    TAG_SEARCH,
    TAG_SEED,
    TAG_TRIAL_ID,
    WEIGHTS_ARTIFACTS,
    check_store,
    client,
    parse_params,
    run_filter,
    search_all,
)


@dataclass(frozen=True)
class PreviousRun:
    """An architecture or budget-matched run that an interrupted study run left, and how it ended."""

    run_id: str
    status: str

    @property
    def finished(self) -> bool:
        return self.status == RunStatus.FINISHED


@dataclass
class StudyRuns:
    """Run ids of one study run; on a resume, also what the interrupted run had already written."""

    experiment_id: str
    study_run_id: str
    architecture_run_ids: dict[str, str] = field(default_factory=dict)
    resumed: bool = False
    previous_architectures: dict[str, PreviousRun] = field(default_factory=dict)
    previous_matched: dict[str, PreviousRun] = field(default_factory=dict)


def split_architecture_metrics(metrics: dict[str, float]) -> tuple[dict, dict, dict]:
    """An architecture run's metrics as (selected trial's, test, seed statistics); trial counts are dropped."""
    selected, test, seeds = {}, {}, {}
    for name, value in metrics.items():
        if name in ALL_TEST_METRICS:
            test[name] = value
        elif name.startswith(("test_", "seeds_")) or name.endswith(("_seed_mean", "_seed_std")):
            seeds[name] = value
        elif not name.startswith("trials_"):
            selected[name] = value
    return selected, test, seeds


class RunReader:
    """Read access to one tracking store's run tree."""

    def __init__(self, uri: str):
        self.uri = uri
        self.client = client(uri)

    @classmethod
    def connect(cls, uri: str):
        """Check the store is usable, then open it."""
        check_store(uri)
        return cls(uri)

    def _children(self, experiment_id: str, parent_run_id: str, role: str | None = None, **conditions) -> list:
        return search_all(self.client, experiment_id, run_filter(parent_run_id, role, **conditions))

    def check_experiment(self, study: str) -> None:
        """Refuse a study whose MLflow experiment was deleted (MLflow keeps the name taken)."""
        experiment = self.client.get_experiment_by_name(study)
        if experiment is not None and experiment.lifecycle_stage == "deleted":
            raise UserError(
                f"study: the MLflow experiment {study!r} in {self.uri} is deleted; restore it or pick another name"
            )

    def find_resumable(self, study: str, config_digest: str) -> StudyRuns | None:
        """The newest study run of this config that never finished, with what it had done; None if there is none.
        Reads only: `Tracker.start_study` reopens it."""
        experiment = self.client.get_experiment_by_name(study)
        if experiment is None or experiment.lifecycle_stage == "deleted" or not config_digest:
            return None
        newest = self.client.search_runs(
            [experiment.experiment_id],
            f"{run_filter(role='study')} and tags.`{TAG_CONFIG_DIGEST}` = '{config_digest}'",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        if not newest or newest[0].info.status == RunStatus.FINISHED:
            return None
        runs = StudyRuns(experiment.experiment_id, newest[0].info.run_id, resumed=True)
        for role, found in (("architecture", runs.previous_architectures), ("matched", runs.previous_matched)):
            for child in self._children(runs.experiment_id, runs.study_run_id, role):
                found[child.data.tags[TAG_ARCHITECTURE]] = PreviousRun(child.info.run_id, child.info.status)
        return runs

    def previous_results(self, parent_run_id: str, role: str, fixed_params: Iterable[str]) -> list[TrialResult]:
        """The trial (or seed) runs under `parent_run_id` that ended on their own, FINISHED or FAILED, as
        `TrialResult`s: what an interrupted study need not run again."""
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        results = []
        for run in self._children(experiment_id, parent_run_id, role):
            if run.info.status not in (RunStatus.FINISHED, RunStatus.FAILED):
                continue
            metrics = {
                name.removeprefix("best_") if name.removeprefix("best_") in ALL_EPOCH_METRICS else name: value
                for name, value in run.data.metrics.items()
                if name not in ALL_EPOCH_METRICS
            }
            results.append(
                TrialResult(
                    trial_id=run.data.tags[TAG_TRIAL_ID if role == "trial" else TAG_SEED],
                    hyperparameters=parse_params(run.data.params, leave_out=fixed_params),
                    status=run.info.status,
                    metrics=metrics,
                    failure_reason=run.data.tags.get(TAG_FAILURE),
                )
            )
        return results

    def finished_outcome(self, architecture: str, run_id: str, fixed_params: Iterable[str]) -> ArchitectureOutcome:
        """An architecture run that finished before an interruption, as the `ArchitectureOutcome` it recorded."""
        run = self.client.get_run(run_id)
        selected, test, seeds = split_architecture_metrics(dict(run.data.metrics))
        return ArchitectureOutcome(
            architecture=architecture,
            trials=self.previous_results(run_id, "trial", fixed_params),
            best_trial_id=run.data.tags.get(TAG_BEST_TRIAL_ID),
            best_hyperparameters=parse_params(run.data.params, leave_out=fixed_params),
            selected_metrics=selected,
            test_metrics=test,
            seed_metrics=seeds,
        )

    def running_study(self, study: str, config_digest: str) -> StudyRuns | None:
        """The chief's RUNNING study run of this config, with its architecture runs so far; None while there is
        none. A worker only reads: it never marks or reopens the chief's runs. Raises `UserError` when the chief
        runs the study with another config."""
        experiment = self.client.get_experiment_by_name(study)
        if experiment is None:
            return None
        running = self.client.search_runs(
            [experiment.experiment_id],
            run_filter(role="study", status=RunStatus.RUNNING),
            max_results=10,
            order_by=["attributes.start_time DESC"],
        )
        match = next((run for run in running if run.data.tags.get(TAG_CONFIG_DIGEST) == config_digest), None)
        if match is None:
            if running:
                other = running[0].data.tags.get(TAG_CONFIG_DIGEST)
                raise UserError(
                    f"study {study}: the chief runs it with another config (digest {other}, this "
                    f"worker's {config_digest}); give the worker the chief's experiment file and --set "
                    "options (tracking.uri, tuner.dir and report.dir may differ)"
                )
            return None
        runs = StudyRuns(experiment.experiment_id, match.info.run_id)
        self.refresh_architectures(runs)
        return runs

    def refresh_architectures(self, runs: StudyRuns) -> dict[str, str]:
        """Read the study run's architecture runs into `runs`; return each one's search state: ``searching``
        while its oracle hands out trials, ``done`` after."""
        states = {}
        for child in self._children(runs.experiment_id, runs.study_run_id, "architecture"):
            name = child.data.tags[TAG_ARCHITECTURE]
            runs.architecture_run_ids[name] = child.info.run_id
            searching = child.info.status == RunStatus.RUNNING and child.data.tags.get(TAG_SEARCH) == "searching"
            states[name] = "searching" if searching else "done"
        return states

    def run_status(self, run_id: str) -> str:
        """A run's status: RUNNING, FINISHED, FAILED or KILLED."""
        return self.client.get_run(run_id).info.status

    def trial_weights(self, parent_run_id: str, trial_id: str, folder: str) -> str:
        """Put the weight files a worker logged with trial `trial_id` under `parent_run_id` into `folder`."""
        experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        found = self._children(experiment_id, parent_run_id, status=RunStatus.FINISHED, trial_id=trial_id)
        if not found:
            raise RuntimeError(f"trial {trial_id} under run {parent_run_id} has no finished run with weights")
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as download:
            fetched = Path(self.client.download_artifacts(found[0].info.run_id, WEIGHTS_ARTIFACTS, download))
            for path in fetched.iterdir():
                shutil.move(str(path), str(Path(folder) / path.name))
        return folder
