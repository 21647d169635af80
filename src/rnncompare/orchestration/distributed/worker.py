"""A worker: trains the trials a chief's oracles hand out, architecture by architecture, until none is left, and
logs each under the chief's architecture run with this worker's name and the trial's weights."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc

from rnncompare.compat import keras_tuner_distributed as kt_distributed
from rnncompare.config import StudyConfig, config_digest
from rnncompare.core.errors import StudyStopped, UserError
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import FanOut, ResultCollector, TrialObserver
from rnncompare.orchestration.distributed.role import Role, keras_tuner_environment, oracle_reachable
from rnncompare.orchestration.progress import Progress
from rnncompare.tasks import TaskData
from rnncompare.tracking import StudyRuns, Tracker
from rnncompare.training.tuning import fixed_hyperparameters, make_tuner, search

# a worker tells the chief it is alive this often while it trains (the chief's lease: execution.worker_timeout)
HEARTBEAT_SECONDS = 1.0
# a worker done with every architecture looks again this often for trials that silent workers left
REVISIT_SECONDS = 2.0


def search_on_worker(
    architecture: str,
    config,
    task: TaskData,
    observer: TrialObserver,
    directory: str,
    role: Role,
    index: int,
    fetch_weights: Callable[[str, str], None],
) -> None:
    """Run trials of one architecture that the chief's oracle hands out, until it has none left."""
    with keras_tuner_environment(role, index):
        # A worker keeps no state of its own: a restarted worker gets its unfinished trial back from the chief.
        tuner = make_tuner(architecture, config, task, observer, directory, resume=False, fetch_weights=fetch_weights)
        kt_distributed.pause_when_idle(tuner.oracle)
        stop_heartbeat = kt_distributed.keep_alive(tuner.oracle, HEARTBEAT_SECONDS)
        try:
            search(tuner, config, task)
        finally:
            stop_heartbeat()


def wait_until(ready, wait_seconds: float, message: str):
    """Poll `ready()` every quarter second until it returns something other than None; UserError after `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        value = ready()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise UserError(message)
        time.sleep(0.25)


def find_chief(config: StudyConfig, tracker: Tracker, role: Role, progress: Progress, wait_seconds: float) -> StudyRuns:
    """The chief's RUNNING study run of this config, waiting up to `wait_seconds` for it. Reads only."""
    digest = config_digest(config)
    runs = tracker.running_study(config.study, digest)
    if runs is None:
        progress.stage("worker", f"{role.name}: waiting for the chief of study {config.study} in {tracker.uri}")
        runs = wait_until(
            lambda: tracker.running_study(config.study, digest),
            wait_seconds,
            f"study {config.study}: no chief runs it in {tracker.uri} (waited {wait_seconds:g} s); "
            f"start `rnncompare run EXPERIMENT --chief --oracle {role.host}:{role.port}` first",
        )
    return runs


def run_trials(
    config: StudyConfig,
    task: TaskData,
    tracker: Tracker,
    runs: StudyRuns,
    role: Role,
    progress: Progress,
    wait_seconds: float,
) -> int:
    """Train what the chief hands out for every architecture in turn, then keep taking up trials that silent
    workers left until every search is done; return how many trials this worker ran."""
    collected = ResultCollector()
    folder = Path(config.tuner.dir) / config.study / f"worker-{role.name}"

    def search_architecture(index: int, architecture: str) -> None:
        fixed = fixed_hyperparameters(architecture, config)
        run_id = runs.architecture_run_ids[architecture]
        observer = FanOut(
            tracker.trial_logger(runs, config.study, architecture, fixed, worker=role.name),
            progress.trial_observer(architecture, shared=True),
            collected,
        )
        try:
            search_on_worker(
                architecture,
                config,
                task,
                observer,
                str(folder),
                role,
                index,
                lambda trial_id, into: tracker.trial_weights(run_id, trial_id, into),
            )
        except grpc.RpcError as exc:
            if tracker.refresh_architectures(runs).get(architecture) == "done":
                return  # the search ended while this worker was joining it
            raise StudyStopped(
                f"worker {role.name}: lost the chief at {role.host}:{role.port_for(index)} "
                f"({exc.code().name}); once it is back, restart this worker with the same "
                "name and it takes up its trial again"
            ) from None

    try:
        for index, architecture in enumerate(config.architectures):
            if _wait_for_oracle(tracker, runs, role, index, architecture, wait_seconds) != "done":
                search_architecture(index, architecture)
        while True:  # the chief marks a search done within a poll of its end: look after that
            time.sleep(REVISIT_SECONDS)
            unfinished = _unfinished_searches(tracker, runs, config.architectures)
            if not unfinished:
                break
            for index, architecture in unfinished:
                if oracle_reachable(role, index):
                    search_architecture(index, architecture)
    except KeyboardInterrupt:
        tracker.close_open_runs(RunStatus.KILLED)
        raise
    except BaseException:
        tracker.close_open_runs(RunStatus.FAILED)
        raise
    status = tracker.run_status(runs.study_run_id)
    if status in (RunStatus.FAILED, RunStatus.KILLED):
        raise StudyStopped(
            f"worker {role.name}: the chief's study run {runs.study_run_id} ended {status}; see the chief's output"
        )
    return len(collected.results)


def _unfinished_searches(tracker: Tracker, runs: StudyRuns, architectures: list[str]) -> list[tuple[int, str]]:
    """The architectures whose search the chief has not closed yet (a trial may wait there for a worker), while
    its study runs."""
    if tracker.run_status(runs.study_run_id) != RunStatus.RUNNING:
        return []
    states = tracker.refresh_architectures(runs)
    return [(index, name) for index, name in enumerate(architectures) if states.get(name) == "searching"]


def _wait_for_oracle(
    tracker: Tracker, runs: StudyRuns, role: Role, index: int, architecture: str, wait_seconds: float
) -> str:
    def oracle_state() -> str | None:
        state = tracker.refresh_architectures(runs).get(architecture)
        if state == "done" or tracker.run_status(runs.study_run_id) != RunStatus.RUNNING:
            return "done"
        if state == "searching" and oracle_reachable(role, index):
            return state
        return None

    return wait_until(
        oracle_state,
        wait_seconds,
        f"worker {role.name}: the chief serves no {architecture} oracle at "
        f"{role.host}:{role.port_for(index)} (waited {wait_seconds:g} s); check --oracle and "
        "that the port is open",
    )
