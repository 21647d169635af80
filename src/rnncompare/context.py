"""What every stage of a running study shares (`StudyContext`), and the seam between the study and its searches.

A search gives each architecture's `ArchitectureOutcome`: `LocalSearch` trains the trials in this process;
`distributed.chief.ServedSearch` serves the oracles to workers and scores what they trained. The study does the
same with either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rnncompare.config import StudyConfig
from rnncompare.errors import UserError
from rnncompare.evaluation import SeedPool
from rnncompare.progress import Progress
from rnncompare.tasks import TaskData
from rnncompare.tracking import PreviousRun, StudyRuns, Tracker
from rnncompare.trials import ArchitectureOutcome, FanOut
from rnncompare.tuning import fixed_hyperparameters, tune_architecture


@dataclass
class StudyContext:
    """One study run in progress: its checked config and data, its run tree, and where it prints."""

    config: StudyConfig
    task: TaskData
    tracker: Tracker
    runs: StudyRuns
    progress: Progress
    # where seed runs train at once (several workers), or None: one after the other in this process
    seed_pool: SeedPool | None = None

    @property
    def tuner_dir(self) -> Path:
        """The study's keras-tuner folder: one project per architecture."""
        return Path(self.config.tuner.dir) / self.config.study

    def fixed(self, architecture: str) -> dict[str, Any]:
        """The hyperparameters the study fixes for every trial of `architecture` (logged as params)."""
        return fixed_hyperparameters(architecture, self.config)


def check_tuner_folder(config: StudyConfig, architecture: str) -> None:
    """Refuse to resume an architecture's search whose keras-tuner folder is gone."""
    folder = Path(config.tuner.dir) / config.study / architecture
    if not (folder / "oracle.json").is_file():
        raise UserError(f"tuner.dir: cannot resume {config.study}: {folder} is gone; "
                        "run again with --fresh to start the study over")


class ArchitectureSearch(Protocol):
    """How a study gets its architectures' searches done."""

    def start(self) -> None:
        """Begin (a served search opens every unfinished architecture's run and oracle at once)."""

    def outcome(self, architecture: str, previous: PreviousRun | None) -> ArchitectureOutcome:
        """The architecture's finished search, its run open; `previous` is what an interrupted run left."""

    def close(self) -> None:
        """Release what `start` took, whether the study finished or not."""


class LocalSearch:
    """Every trial trained here, one architecture after the other."""

    def __init__(self, context: StudyContext):
        self.context = context

    def start(self) -> None:
        pass

    def outcome(self, architecture: str, previous: PreviousRun | None) -> ArchitectureOutcome:
        context = self.context
        run_id = context.tracker.start_architecture(context.runs, context.config.study, architecture)
        fixed = context.fixed(architecture)
        previous_trials = context.tracker.previous_results(run_id, "trial", fixed) if previous else None
        observer = FanOut(context.tracker.trial_logger(context.runs, context.config.study, architecture, fixed),
                          context.progress.trial_observer(architecture))
        return tune_architecture(architecture, context.config, context.task, observer, str(context.tuner_dir),
                                 previous_trials)

    def close(self) -> None:
        pass
