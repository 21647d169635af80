"""What a search and a seed run produce, as plain data, and the observers that hear of it as it happens.

A search (`tuning`), the seed runs (`training.seed_runs`) and a worker all report to a `TrialObserver`; the tracking
module implements one (it writes runs), so does the progress display. Nothing here imports keras or mlflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from rnncompare.core.status import RunStatus


@dataclass
class TrialResult:
    """What one trial (or one seed run, whose id is the seed) produced."""

    trial_id: str
    hyperparameters: dict[str, Any]
    status: RunStatus  # FINISHED or FAILED
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    failure_reason: str | None = None
    # when it ended, seconds since the epoch, for one that trained elsewhere and is reported after (None: now)
    ended_at: float | None = None
    # tags its run carries beside the usual ones (a seed run's: what it drew, `training.draws.SeedDraw.tags`)
    tags: dict[str, str] = field(default_factory=dict)
    # the trial's best-epoch weights and build config as keras-tuner saved them (set by a search, not by seeds)
    weights_files: list[str] = field(default_factory=list)
    # the representative seed run's trained Keras model, for logging (never persisted; other seeds have none)
    model: Any = field(default=None, repr=False, compare=False)


@dataclass
class ArchitectureOutcome:
    """One architecture's search: every trial, the selected (best) trial, its test scores and, once the seed runs
    are done, their statistics."""

    architecture: str
    trials: list[TrialResult]
    best_trial_id: str | None
    best_hyperparameters: dict[str, Any]
    # the selected trial's summary: validation scores, gaps, best epoch, parameter counts, seconds per epoch
    selected_metrics: dict[str, float]
    test_metrics: dict[str, float]
    # statistics over the seed runs (`analysis.seed_statistics`); empty until they ran
    seed_metrics: dict[str, float] = field(default_factory=dict)
    # the selected trial's Keras model as tested, and the seed run closest to the seed mean (with its model)
    selected_model: Any = field(default=None, repr=False, compare=False)
    representative_seed: TrialResult | None = field(default=None, repr=False, compare=False)

    @property
    def selected(self) -> bool:
        """Whether any trial finished, so that there is a model to evaluate."""
        return self.best_trial_id is not None


class TrialObserver(Protocol):
    """Receives a search's (or the seed runs') events, in order, from the process that trains."""

    def trial_started(self, trial_id: str, hyperparameters: dict[str, Any], started_at: float | None = None) -> None:
        """A trial began (at `started_at`, seconds since the epoch, for one that trained elsewhere and is reported
        after; None: now)."""

    def epoch_ended(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None: ...

    def trial_ended(self, result: TrialResult) -> None: ...


class FanOut:
    """A `TrialObserver` that passes every event on to each of several observers, in order."""

    def __init__(self, *observers: TrialObserver):
        self.observers = observers

    def trial_started(self, trial_id, hyperparameters, started_at=None):
        for observer in self.observers:
            observer.trial_started(trial_id, hyperparameters, started_at)

    def epoch_ended(self, trial_id, epoch, metrics):
        for observer in self.observers:
            observer.epoch_ended(trial_id, epoch, metrics)

    def trial_ended(self, result):
        for observer in self.observers:
            observer.trial_ended(result)


class ResultCollector:
    """A `TrialObserver` that keeps the results it is told of."""

    def __init__(self):
        self.results: list[TrialResult] = []

    def trial_started(self, trial_id, hyperparameters, started_at=None):
        pass

    def epoch_ended(self, trial_id, epoch, metrics):
        pass

    def trial_ended(self, result):
        self.results.append(result)
