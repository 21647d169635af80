"""A search's trial runs written as the trials go: per-epoch metrics batched, each trial's run closed once."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from rnncompare.core.metrics import ALL_EPOCH_METRICS
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import TrialResult
from rnncompare.tracking.store import (
    TAG_ARCHITECTURE,
    TAG_FAILURE,
    TAG_PARENT,
    TAG_ROLE,
    TAG_SEED,
    TAG_STUDY,
    TAG_TRIAL_ID,
    TAG_WORKER,
    WEIGHTS_ARTIFACTS,
    metrics_batch,
    params_batch,
    run_filter,
    search_all,
    tags_batch,
)

# a running trial's per-epoch metrics are written at most this often (and when it ends)
EPOCH_FLUSH_SECONDS = 5.0
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one `log_batch`
FLUSH_AT_METRICS = MAX_METRICS_PER_BATCH - 100  # so a trial's last epochs and its summary fit in one write


class TrialLogger:
    """A `TrialObserver` that writes trials as they happen: one run per trial, one batched call per epoch."""

    def __init__(
        self,
        tracker,  # the `writer.Tracker` that writes the study's runs
        experiment_id: str,
        study: str,
        architecture: str,
        fixed: Mapping[str, Any],
        role: str,
        parent_run_id: str,
        worker: str | None = None,
    ):
        self.tracker = tracker
        self.client = tracker.client
        self.experiment_id = experiment_id
        self.study = study
        self.architecture = architecture
        self.fixed = dict(fixed)
        self.role = role
        self.parent_run_id = parent_run_id
        self.worker = worker
        self.run_ids: dict[str, str] = {}
        self._pending: dict[str, list] = {}
        self._flushed: dict[str, float] = {}

    def trial_started(self, trial_id: str, hyperparameters: dict[str, Any], started_at: float | None = None) -> None:
        id_tag = TAG_TRIAL_ID if self.role == "trial" else TAG_SEED
        tags = {
            TAG_ROLE: self.role,
            TAG_STUDY: self.study,
            TAG_ARCHITECTURE: self.architecture,
            id_tag: trial_id,
            TAG_PARENT: self.parent_run_id,
        }
        if self.worker is not None:
            tags[TAG_WORKER] = self.worker
            self._close_interrupted(trial_id)
        run_id = self.tracker.open_run(
            self.experiment_id, tags, f"{self.architecture}-{self.role}-{trial_id}", started_at=started_at
        )
        self.run_ids[trial_id] = run_id
        self._flushed[trial_id] = time.monotonic()
        self.client.log_batch(run_id, params=params_batch({**self.fixed, **hyperparameters}))

    def epoch_ended(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        pending = self._pending.setdefault(trial_id, [])
        pending.extend(metrics_batch(metrics, step=epoch))
        # one write per few seconds, not per epoch: the UI's curves stay current, the store is not hammered
        if time.monotonic() - self._flushed.get(trial_id, 0.0) > EPOCH_FLUSH_SECONDS or len(pending) > FLUSH_AT_METRICS:
            self._flush(trial_id)

    def _flush(self, trial_id: str, also: Sequence = (), tags: Sequence = ()) -> None:
        pending = self._pending.pop(trial_id, [])
        together = len(pending) + len(also) <= MAX_METRICS_PER_BATCH
        for batch in [[*pending, *also]] if together else [pending, list(also)]:
            if batch or tags:
                self.client.log_batch(self.run_ids[trial_id], metrics=batch, tags=list(tags))
                tags = ()
        self._flushed[trial_id] = time.monotonic()

    def trial_ended(self, result: TrialResult) -> None:
        run_id = self.run_ids[result.trial_id]
        # The summary keys `loss`, `accuracy`, ... would clash with the per-epoch series: prefix them with best_.
        summary = (
            {(f"best_{name}" if name in ALL_EPOCH_METRICS else name): value for name, value in result.metrics.items()}
            if result.status == RunStatus.FINISHED
            else {}
        )
        # the last epochs, the summary and what a seed run drew: one write
        self._flush(result.trial_id, also=metrics_batch(summary), tags=tags_batch(result.tags))
        if result.status == RunStatus.FINISHED and self.worker is not None:
            for path in result.weights_files:
                self.client.log_artifact(run_id, path, WEIGHTS_ARTIFACTS)
        # A worker's result is all written before it checks whether its run still counts, so that the chief can
        # settle a run whose close raced with its own (`Tracker.settle_trial_runs`).
        if self.worker is not None and self._superseded(result.trial_id, run_id):
            return
        if result.status == RunStatus.FAILED:
            self.client.set_tag(run_id, TAG_FAILURE, (result.failure_reason or "unknown")[:5000])
            self.tracker.close_run(run_id, RunStatus.FAILED, ended_at=result.ended_at)
            return
        self.tracker.close_run(run_id, RunStatus.FINISHED, ended_at=result.ended_at)

    def _superseded(self, trial_id: str, run_id: str) -> bool:
        """Whether this worker's run of `trial_id` was closed while it ran (the chief's lease ran out, or the chief
        restarted) and another run of the trial runs or finished: then this one stays KILLED, so that the trial
        has one finished run. With no other run, this one is finished after all."""
        if self.tracker.run_status(run_id) == RunStatus.RUNNING:
            return False
        others = [
            run
            for run in search_all(self.client, self.experiment_id, run_filter(self.parent_run_id, trial_id=trial_id))
            if run.info.run_id != run_id and run.info.status in (RunStatus.RUNNING, RunStatus.FINISHED)
        ]
        if others:
            self.tracker.forget(run_id)
            return True
        self.tracker.reopen(run_id)
        return False

    def _close_interrupted(self, trial_id: str) -> None:
        # The chief gives a restarted worker back the trial it was running; that trial's run from before the
        # restart is still RUNNING. A trial taken off a silent worker had its run closed by the chief before it was
        # handed on; if that worker came back and reopened it, the chief settles the two after the search.
        for run in search_all(
            self.client, self.experiment_id, run_filter(self.parent_run_id, status=RunStatus.RUNNING, trial_id=trial_id)
        ):
            self.tracker.mark_interrupted(run.info.run_id)
