"""What every stage of a running study shares (`StudyContext`), and the seam between the study and its searches.

A search gives each architecture's `ArchitectureOutcome`: `LocalSearch` trains the trials in this process;
`distributed.chief.ServedSearch` serves the oracles to workers and scores what they trained. The study does the
same with either.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from rnncompare.config import StudyConfig
from rnncompare.core.errors import UserError
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import ArchitectureOutcome, FanOut
from rnncompare.orchestration.progress import Progress
from rnncompare.tasks import TaskData
from rnncompare.tracking import PreviousRun, StudyRuns, Tracker
from rnncompare.training.seed_runs import SeedPool
from rnncompare.training.tuning import fixed_hyperparameters, tune_architecture


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


# In a study's keras-tuner folder: the digest of the config whose search it holds (a new study run of another config
# of the study overwrites the projects there)
TUNER_CONFIG_FILE = "config_digest"


def claim_tuner_folder(config: StudyConfig, digest: str) -> None:
    """Mark the study's keras-tuner folder as the search of the config with `digest` (a new study run's)."""
    folder = Path(config.tuner.dir) / config.study
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TUNER_CONFIG_FILE).write_text(digest + "\n", encoding="utf-8")


def check_tuner_folder(config: StudyConfig, architecture: str, digest: str) -> None:
    """Refuse to resume an architecture's search whose keras-tuner folder is gone, or now holds the search of
    another config of the study (run after this one was interrupted: keras-tuner would go on from its trials)."""
    folder = Path(config.tuner.dir) / config.study / architecture
    if not (folder / "oracle.json").is_file():
        raise UserError(
            f"tuner.dir: cannot resume {config.study}: {folder} is gone; run again with --fresh to start the study over"
        )
    marker = folder.parent / TUNER_CONFIG_FILE
    other = marker.read_text(encoding="utf-8").strip() if marker.is_file() else digest  # before the mark: trusted
    if other != digest:
        raise UserError(
            f"tuner.dir: cannot resume {config.study} (config {digest}): {folder.parent} now holds the "
            f"search of another config of the study ({other}), run after this one was interrupted; run "
            "again with --fresh to start this config over"
        )


class StudyLock:
    """This process's claim on a study: an exclusive `flock` on ``<tuner.dir>/<study>.lock``, held until `release`
    or the end of the process, however it ends (the system drops it with the process, kill -9 included).

    Resume takes over a study run that never finished; without the lock a second `rnncompare run` of a study that is
    still running took it over too, and both wrote its trial and seed runs (a seed FINISHED twice)."""

    def __init__(self, config: StudyConfig):
        self.path = Path(config.tuner.dir) / f"{config.study}.lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] | None = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "a process that has not said which"
            self.release()
            raise UserError(
                f"study {config.study} is already running ({holder}; its lock is {self.path}): let it "
                "finish, or stop it and run the same command again to resume"
            ) from None
        except OSError:  # a file system without locks (some network mounts): run unguarded, as before the lock
            pass
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        self._handle.flush()

    def release(self) -> None:
        """Let the study go (closing the file drops the lock); a second call does nothing."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


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
        observer = FanOut(
            context.tracker.trial_logger(context.runs, context.config.study, architecture, fixed),
            context.progress.trial_observer(architecture),
        )
        outcome = tune_architecture(
            architecture, context.config, context.task, observer, str(context.tuner_dir), previous_trials
        )
        if previous_trials is not None:
            # A process stopped after a trial's run was FINISHED and before keras-tuner recorded the trial ended
            # (Ctrl-C as its line printed): the tuner ran it again, and the trial has two finished runs. One counts.
            context.tracker.settle_trial_runs(
                run_id, [trial.trial_id for trial in outcome.trials if trial.status == RunStatus.FINISHED]
            )
        return outcome

    def close(self) -> None:
        pass
