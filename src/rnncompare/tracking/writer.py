"""Writing a study's run tree (one MLflow experiment per study)::

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

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from rnncompare.compat.mlflow import dataset_entity
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import ArchitectureOutcome
from rnncompare.runtime.backend import current_backend
from rnncompare.tracking.model_log import log_keras_models
from rnncompare.tracking.runs import RunReader, StudyRuns
from rnncompare.tracking.store import (
    CONFIG_ARTIFACT,
    INTERRUPTED,
    TAG_ARCHITECTURE,
    TAG_BACKEND,
    TAG_BEST_TRIAL_ID,
    TAG_CONFIG_DIGEST,
    TAG_DATASET_PREFIX,
    TAG_DIAGNOSTIC_PREFIX,
    TAG_EXPERIMENT_KIND,
    TAG_FAILURE,
    TAG_GIT_COMMIT,
    TAG_MATCHED_TO,
    TAG_NOTE,
    TAG_ORACLE,
    TAG_PARENT,
    TAG_ROLE,
    TAG_SEARCH,
    TAG_SEED_MODEL,
    TAG_SOURCE_NAME,
    TAG_SOURCE_TYPE,
    TAG_STUDY,
    TAG_SWEEP_PREFIX,
    TAG_TRIAL_ID,
    TAG_VERDICT_PREFIX,
    TAG_VERSION_PREFIX,
    TRAINING_KIND,
    artifact_location,
    flatten,
    metrics_batch,
    params_batch,
    run_filter,
    search_all,
    tags_batch,
)
from rnncompare.tracking.trial_logger import TrialLogger


class Tracker(RunReader):
    """Writes a study's run tree. Create with `Tracker.connect(uri)` after the config and data are valid."""

    def __init__(
        self,
        uri: str,
        source_name: str | None = None,
        git_commit: str | None = None,
        artifacts_beside: str | None = None,
    ):
        super().__init__(uri)
        # a loopback server in front of a local store: new experiments keep their artifacts beside that store
        self.artifacts_beside = artifacts_beside or uri
        # on every run, so the runs table says what started it and from which commit
        self.source_tags = {TAG_SOURCE_NAME: source_name, TAG_SOURCE_TYPE: "LOCAL"} if source_name else {}
        if git_commit:
            self.source_tags[TAG_GIT_COMMIT] = git_commit
        backend = current_backend()
        if backend:
            self.source_tags[TAG_BACKEND] = backend
        self._open_run_ids: list[str] = []
        self._children_of: dict[str, list[str]] = {}

    def open_run(self, experiment_id: str, tags: Mapping[str, str], run_name: str, started_at: float | None = None):
        """Create a run that this process closes (`close_run`), or that `close_open_runs` closes if it breaks off;
        `started_at` (seconds since the epoch) for one that began before it is written, else now."""
        start = None if started_at is None else int(started_at * 1000)
        run_id = self.client.create_run(experiment_id, start, {**self.source_tags, **tags}, run_name).info.run_id
        self._open_run_ids.append(run_id)
        if TAG_PARENT in tags:
            self._children_of.setdefault(tags[TAG_PARENT], []).append(run_id)
        return run_id

    def close_run(self, run_id: str, status: str, ended_at: float | None = None) -> None:
        """End a run with `status` (FINISHED, FAILED or KILLED), at `ended_at` (seconds since the epoch) or now."""
        self.client.set_terminated(run_id, status, end_time=None if ended_at is None else int(ended_at * 1000))
        if run_id in self._open_run_ids:
            self._open_run_ids.remove(run_id)

    def start_study(
        self,
        study: str,
        resolved_config: Mapping[str, Any],
        versions: Mapping[str, str],
        dataset: Mapping[str, str],
        swept: Mapping[str, Any] | None = None,
        config_digest: str = "",
        resume: StudyRuns | None = None,
        oracle: str | None = None,
    ) -> StudyRuns:
        """Open the study run: reopen `resume` (found by `find_resumable`), else create the experiment if needed
        and a new study run with config, versions and dataset.

        Runs a killed process left RUNNING are marked KILLED first, so none stays RUNNING forever.
        """
        self.check_experiment(study)
        experiment = self.client.get_experiment_by_name(study)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(study, artifact_location=artifact_location(self.artifacts_beside, study))
        )
        if experiment is None or experiment.tags.get(TAG_EXPERIMENT_KIND) != TRAINING_KIND:
            self.client.set_experiment_tag(experiment_id, TAG_EXPERIMENT_KIND, TRAINING_KIND)
        self.close_interrupted_runs(experiment_id)
        if resume is not None:
            self.reopen(resume.study_run_id)
            if oracle:
                self.client.set_tag(resume.study_run_id, TAG_ORACLE, oracle)
            return resume
        tags = {TAG_ROLE: "study", TAG_STUDY: study, TAG_CONFIG_DIGEST: config_digest}
        if oracle:
            tags[TAG_ORACLE] = oracle
        tags.update({f"{TAG_VERSION_PREFIX}{name}": version for name, version in versions.items()})
        tags.update({f"{TAG_DATASET_PREFIX}{key}": value for key, value in dataset.items()})
        tags.update(
            {
                f"{TAG_SWEEP_PREFIX}{key}": yaml.safe_dump(value).strip().removesuffix("...").strip()
                for key, value in (swept or {}).items()
            }
        )
        run_id = self.open_run(experiment_id, tags, study)
        self.client.log_batch(run_id, params=params_batch(flatten(resolved_config)))
        self.client.log_text(run_id, yaml.safe_dump(dict(resolved_config), sort_keys=False), CONFIG_ARTIFACT)
        return StudyRuns(experiment_id, run_id)

    def close_interrupted_runs(self, experiment_id: str) -> None:
        """Mark every run a killed process left RUNNING as interrupted (a SIGKILL cannot close its runs)."""
        for run in search_all(self.client, experiment_id, run_filter(status=RunStatus.RUNNING)):
            self.mark_interrupted(run.info.run_id)

    def mark_interrupted(self, run_id: str, reason: str = INTERRUPTED) -> None:
        """Close a run whose process died (or fell silent) as KILLED, tagged with `reason` (it is run again)."""
        self.client.set_tag(run_id, TAG_FAILURE, reason)
        self.client.set_terminated(run_id, RunStatus.KILLED)

    def mark_abandoned(self, architecture_run_id: str, trial_id: str, worker: str, reason: str) -> None:
        """Close as KILLED the run of `trial_id` that `worker` left RUNNING when it fell silent (see
        `TrialLogger.trial_ended` for a worker that comes back)."""
        for run in search_all(
            self.client,
            self.client.get_run(architecture_run_id).info.experiment_id,
            run_filter(architecture_run_id, status=RunStatus.RUNNING, trial_id=trial_id, worker=worker),
        ):
            self.mark_interrupted(run.info.run_id, reason)

    def settle_trial_runs(self, architecture_run_id: str, completed: Iterable[str]) -> None:
        """After a distributed search, leave one FINISHED run for each trial the oracle `completed`. The chief
        closes a silent worker's run (`mark_abandoned`) with no lock on the store, so where a lease ran out as its
        worker finished, the chief's KILLED can land last (that run, holding a finished fit's ``epochs_run``, is
        finished again if the trial has no other), or two workers finish the trial (the later run is KILLED)."""
        by_trial: dict[str, list] = {trial_id: [] for trial_id in completed}
        experiment_id = self.client.get_run(architecture_run_id).info.experiment_id
        for run in search_all(self.client, experiment_id, run_filter(architecture_run_id, "trial")):
            by_trial.get(run.data.tags.get(TAG_TRIAL_ID), []).append(run)
        for trial_id, runs in by_trial.items():
            finished = sorted(
                (run for run in runs if run.info.status == RunStatus.FINISHED),
                key=lambda run: (run.info.end_time or 0, run.info.run_id),
            )
            if not finished:
                finished = [
                    run for run in runs if run.info.status == RunStatus.KILLED and "epochs_run" in run.data.metrics
                ][:1]
                for run in finished:
                    self.client.set_terminated(run.info.run_id, RunStatus.FINISHED)
            if finished and TAG_FAILURE in finished[0].data.tags:  # the mark of a close that the worker's overtook
                self.client.delete_tag(finished[0].info.run_id, TAG_FAILURE)
            for extra in finished[1:]:
                self.mark_interrupted(
                    extra.info.run_id,
                    f"trial {trial_id} ran twice; run {finished[0].info.run_id} is the one that counts",
                )

    def reopen(self, run_id: str) -> None:
        """Mark a run of an interrupted study RUNNING again, to be finished by this process."""
        if TAG_FAILURE in self.client.get_run(run_id).data.tags:  # the "interrupted" mark no longer holds
            self.client.delete_tag(run_id, TAG_FAILURE)
        self.client.update_run(run_id, status=RunStatus.RUNNING)
        if run_id not in self._open_run_ids:
            self._open_run_ids.append(run_id)

    def forget(self, run_id: str) -> None:
        """Leave a run to whoever closed it: this process no longer closes it (`close_open_runs`)."""
        if run_id in self._open_run_ids:
            self._open_run_ids.remove(run_id)

    def mark_search(self, run_id: str, state: str) -> None:
        """Tell workers whether the chief serves this architecture's oracle (``searching``) or not (``done``)."""
        self.client.set_tag(run_id, TAG_SEARCH, state)

    def log_dataset(self, runs: StudyRuns, task) -> None:
        """Record the task's three splits as the study run's dataset inputs (MLflow's Datasets view), each with
        the task name, a content digest, its source and the context train, validation or test."""
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
                dataset = mlflow.data.from_numpy(
                    x, targets=y, source=source, name=f"{task.name}-{split}", digest=task.digest(split)
                )
            inputs.append(DatasetInput(dataset_entity(dataset), tags=[InputTag("mlflow.data.context", split)]))
        self.client.log_inputs(runs.study_run_id, datasets=inputs)

    def start_architecture(self, runs: StudyRuns, study: str, architecture: str) -> str:
        """Open the architecture run under the study run (or reopen the one an interrupted run left)."""
        if architecture in runs.previous_architectures:
            run_id = runs.previous_architectures[architecture].run_id
            self.reopen(run_id)
        else:
            run_id = self.open_run(
                runs.experiment_id,
                {
                    TAG_ROLE: "architecture",
                    TAG_STUDY: study,
                    TAG_ARCHITECTURE: architecture,
                    TAG_PARENT: runs.study_run_id,
                },
                architecture,
            )
        runs.architecture_run_ids[architecture] = run_id
        return run_id

    def trial_logger(
        self,
        runs: StudyRuns,
        study: str,
        architecture: str,
        fixed_params: Mapping[str, Any],
        role: str = "trial",
        parent_run_id: str | None = None,
        worker: str | None = None,
    ) -> TrialLogger:
        """A `TrialObserver` writing each trial (role ``trial``) or seed run (role ``seed``) under the architecture
        run (or under `parent_run_id`, e.g. a budget-matched run). A `worker`'s trial runs carry its name and the
        trial's weights, which the chief scores on the test split."""
        parent = parent_run_id or runs.architecture_run_ids[architecture]
        return TrialLogger(self, runs.experiment_id, study, architecture, fixed_params, role, parent, worker)

    def start_matched(
        self,
        runs: StudyRuns,
        study: str,
        architecture: str,
        reference: str,
        hyperparameters: Mapping[str, Any],
        params_total: int,
    ) -> str:
        """Open the run of `architecture` resized to `reference`'s parameter budget, under the study run (or
        reopen the one an interrupted run left)."""
        previous = runs.previous_matched.get(architecture)
        if previous is not None:
            self.reopen(previous.run_id)
            return previous.run_id
        run_id = self.open_run(
            runs.experiment_id,
            {
                TAG_ROLE: "matched",
                TAG_STUDY: study,
                TAG_ARCHITECTURE: architecture,
                TAG_MATCHED_TO: reference,
                TAG_PARENT: runs.study_run_id,
            },
            f"{architecture}-at-{reference}-budget",
        )
        self.client.log_batch(
            run_id, params=params_batch(hyperparameters), metrics=metrics_batch({"params_total": params_total})
        )
        return run_id

    def finish_matched(self, run_id: str, seed_metrics: Mapping[str, float]) -> None:
        """Put the seed statistics on a budget-matched run and close it (FAILED when no seed finished)."""
        self.client.log_batch(run_id, metrics=metrics_batch(seed_metrics))
        self.close_run(run_id, RunStatus.FINISHED if seed_metrics.get("seeds_finished") else RunStatus.FAILED)

    def finish_architecture(self, run_id: str, outcome: ArchitectureOutcome, fixed_params: Mapping[str, Any]) -> None:
        """Put the best trial's hyperparameters and metrics, its test scores and the seed statistics on the run."""
        # A child run that never heard its end (a bug, or a fit killed from inside) must not stay RUNNING.
        for child_id in [r for r in self._open_run_ids if r in self._children_of.get(run_id, ())]:
            self.client.set_tag(child_id, TAG_FAILURE, "the run ended without reporting a result")
            self.close_run(child_id, RunStatus.FAILED)
        failed = sum(trial.status == RunStatus.FAILED for trial in outcome.trials)
        counts = {"trials_finished": len(outcome.trials) - failed, "trials_failed": failed, **outcome.seed_metrics}
        if not outcome.selected:
            self.client.log_batch(run_id, metrics=metrics_batch(counts))
            self.client.set_tag(run_id, TAG_FAILURE, "every trial failed")
            self.close_run(run_id, RunStatus.FAILED)
            return
        self.client.log_batch(
            run_id,
            metrics=metrics_batch({**outcome.selected_metrics, **outcome.test_metrics, **counts}),
            params=params_batch({**fixed_params, **outcome.best_hyperparameters}),
        )
        self.client.set_tag(run_id, TAG_BEST_TRIAL_ID, outcome.best_trial_id)
        self.close_run(run_id, RunStatus.FINISHED)

    def log_models(
        self,
        run_id: str,
        model,
        input_example,
        registered_name: str | None = None,
        seed_model: tuple[str, Any] | None = None,
    ) -> None:
        """Log an architecture's selected Keras model as "model" (registered as `registered_name` if given) and a
        seed run's as "seed_model" (its seed tagged on the run), with MLflow's Keras flavour, a signature and an
        input example: ``mlflow.pyfunc.load_model("runs:/<run>/model")`` predicts."""
        models = [("model", model, registered_name)]
        if seed_model is not None:
            self.client.set_tag(run_id, TAG_SEED_MODEL, seed_model[0])
            models.append(("seed_model", seed_model[1], None))
        log_keras_models(self.client, run_id, models, input_example)

    def log_source(self, run_id: str, path: Path) -> None:
        """Attach the source file of a user's architecture to its run, under ``body/``."""
        self.client.log_artifact(run_id, str(path), artifact_path="body")

    def log_report(self, runs: StudyRuns, files: Iterable[Path]) -> None:
        """Attach the report files to the study run."""
        for path in files:
            self.client.log_artifact(runs.study_run_id, str(path), artifact_path="report")

    def log_review(
        self,
        runs: StudyRuns,
        notes: Mapping[str, str],
        diagnostics: Mapping[str, Mapping[str, Any] | None],
        figures: Mapping[str, Iterable[Path]],
        study_metrics: Mapping[str, float],
        verdicts: Mapping[str, str],
        architecture_metrics: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        """Put what a reviewer reads in the MLflow UI on the runs: each run's description (`notes`, the study's
        under ``""``), the study run's own `study_metrics` and each pair's verdict (``"<a>_vs_<b>"``) as tags,
        each architecture's diagnostics as tags and metrics (and its `architecture_metrics`), and its own figures."""
        study_tags = {TAG_NOTE: notes[""], **{f"{TAG_VERDICT_PREFIX}{pair}": text for pair, text in verdicts.items()}}
        self.client.log_batch(runs.study_run_id, metrics=metrics_batch(study_metrics), tags=tags_batch(study_tags))
        for architecture, run_id in runs.architecture_run_ids.items():
            for path in figures.get(architecture, ()):
                self.client.log_artifact(run_id, str(path), artifact_path="figures")
            tags = {TAG_NOTE: notes[architecture]} if architecture in notes else {}
            found = diagnostics.get(architecture)
            metrics = {}
            if found:
                tags.update(
                    {
                        f"{TAG_DIAGNOSTIC_PREFIX}{name}": str(found[name]).lower()
                        for name in ("learned", "budget_limited", "plateau_stop")
                        if found.get(name) is not None
                    }
                )
                tags[f"{TAG_DIAGNOSTIC_PREFIX}search_edges"] = (
                    ", ".join(f"{key}={edge}" for key, edge in found["search_edges"].items()) or "none"
                )
                metrics = {name: found[name] for name in ("skill_mean", "still_improving_fraction") if name in found}
            metrics.update((architecture_metrics or {}).get(architecture, {}))
            self.client.log_batch(run_id, metrics=metrics_batch(metrics), tags=tags_batch(tags))

    def close_open_runs(self, status: str) -> None:
        """Close every run this process opened or reopened and has not closed, the study run last (FAILED or
        KILLED when the study or a worker broke off)."""
        for run_id in reversed(list(self._open_run_ids)):
            self.close_run(run_id, status)
