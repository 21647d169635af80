"""Every check that can refuse a command, run read-only before anything is trained or written: the config, the
data, the output folders, the tracking store, the chief's ports, and whether an interrupted study can resume.

Each refusal is one `UserError` line; nothing here creates or changes a run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.config import StudyConfig, config_digest, load_config
from rnncompare.core.errors import UserError
from rnncompare.orchestration.context import StudyLock, check_tuner_folder
from rnncompare.orchestration.distributed import Role, check_ports_free
from rnncompare.runtime.backend import BackendUnavailable, choose_backend
from rnncompare.tasks import TaskData, load_task
from rnncompare.tracking import RunReader, StudyRuns, is_server, resolve_tracking_uri, writable_folder
from rnncompare.training.draws import varied_sources
from rnncompare.training.models import build_model
from rnncompare.training.tuning import model_hyperparameters

Experiment = str | Path | Mapping[str, Any] | StudyConfig


@dataclass
class CheckedStudy:
    """A study that passed every check: its config and data, its store, the interrupted run it resumes, and this
    process's lock on it (no other process runs it meanwhile; `run_study` releases it)."""

    config: StudyConfig
    task: TaskData
    tracking_uri: str
    digest: str
    resume: StudyRuns | None
    lock: StudyLock


def check_config_and_data(
    experiment: Experiment,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
) -> tuple[StudyConfig, TaskData]:
    """Load and check the config and the data, and settle the Keras backend (before anything imports Keras);
    trains nothing, writes nothing. Raises `UserError`."""
    config = experiment if isinstance(experiment, StudyConfig) else load_config(experiment, overrides)
    if config.sweep:
        raise UserError(
            f"study {config.study} has a sweep: run it with `rnncompare run` or `run_sweep`, which "
            "expand it into one study per value"
        )
    if config.suite is not None:
        raise UserError(
            f"study {config.study} is a suite: run it with `rnncompare run` or `run_sweep`, which run each of its "
            "tasks as a study"
        )
    _choose_backend(config.execution.backend)  # before the data: a user's python task may import Keras
    task = load_task(config.task, config.seed)
    allowed = task.output_spec.metrics.objectives
    if config.tuner.objective not in allowed:
        raise UserError(
            f"tuner.objective: {config.tuner.objective} does not apply to task {task.name}, a "
            f"{task.kind} task; use {' or '.join(allowed)}"
        )
    if config.evaluation.seeds:
        varied_sources(config, task)  # a split the task cannot draw is refused here
    for architecture in config.architectures:
        if architecture.body is not None:
            _check_body(architecture, config, task)
    return config, task


def _check_body(architecture, config: StudyConfig, task: TaskData) -> None:
    """Build the user's architecture once, at the smallest searched size: a body that does not import, raises or
    returns no 2-D tensor is one line now, not a failed search later."""
    search = config.search
    smallest = {"units": search.units.min, "dropout": search.dropout.min, "layers": search.layers.min}
    if search.learning_rate is not None:
        smallest["learning_rate"] = search.learning_rate.min
    import_deep_learning()
    try:
        build_model(model_hyperparameters(architecture, config, smallest), task.input_spec, task.output_spec)
    except UserError:
        raise
    except Exception as exc:  # the head after the user's body: their tensor did not fit it
        raise UserError(
            f"architectures: {architecture}: the model around {architecture.body} cannot be built "
            f"({type(exc).__name__}: {exc})"
        ) from None


def _choose_backend(requested: str) -> None:
    try:
        choose_backend(requested)
    except BackendUnavailable as error:
        raise UserError(f"execution.backend: {error}") from None


def check_study(
    experiment: Experiment,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    fresh: bool = False,
    role: Role | None = None,
) -> CheckedStudy:
    """Every check before a study (or a chief) writes its first run. Raises `UserError`."""
    config, task = check_config_and_data(experiment, overrides)
    for key, folder in (("tuner.dir", config.tuner.dir), ("report.dir", config.report.dir)):
        check_output_folder(key, Path(folder))
    uri = resolve_tracking_uri(config.tracking.uri)
    if role is not None:
        check_distributed(uri, role, len(config.architectures))
    reader = RunReader.connect(uri)
    reader.check_experiment(config.study)
    # before the store is read for a run to resume: a run still going looks interrupted to it
    lock = StudyLock(config)
    try:
        digest = config_digest(config)
        resume = None if fresh else reader.find_resumable(config.study, digest)
        if resume is not None:
            for architecture, previous in resume.previous_architectures.items():
                if not previous.finished:
                    check_tuner_folder(config, architecture, digest)
    except BaseException:
        lock.release()
        raise
    return CheckedStudy(config, task, uri, digest, resume, lock)


def check_worker(
    experiment: Experiment, overrides: Sequence[str] | Mapping[str, Any] | None, role: Role, wait_seconds: float = 0.0
) -> tuple[StudyConfig, TaskData, str]:
    """Every check before a worker joins its chief (waiting up to `wait_seconds` for the tracking server to
    answer, as for the chief); returns the config, the data and the tracking URI."""
    config, task = check_config_and_data(experiment, overrides)
    check_output_folder("tuner.dir", Path(config.tuner.dir))
    uri = resolve_tracking_uri(config.tracking.uri)
    check_distributed(uri, role, len(config.architectures))
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            RunReader.connect(uri)
            return config, task, uri
        except UserError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def check_distributed(uri: str, role: Role, architectures: int) -> None:
    """A distributed search needs a tracking server that every process reaches, and the chief its ports."""
    if not is_server(uri):
        raise UserError(
            f"tracking.uri: {uri} is a local store; a distributed search needs a tracking server that the "
            "chief and every worker reach: start one with `rnncompare server` and set "
            "tracking.uri=http://HOST:PORT"
        )
    if role.is_chief:
        check_ports_free(role, architectures)


def check_output_folder(key: str, folder: Path) -> None:
    """Fail with one line, before anything is written, if `folder` cannot be created or written."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{key}: cannot create {folder}: {existing} is a file, not a folder")
    if not writable_folder(existing):
        raise UserError(f"{key}: cannot write to {folder}: {existing} is not writable")
