"""The chief: one oracle per architecture served over gRPC, all at once, each on its own port; the workers train
the trials, the chief scores each architecture's best trial with the weights its worker logged."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

from rnncompare.compat import keras_tuner as kt_compat
from rnncompare.compat import keras_tuner_distributed as kt_distributed
from rnncompare.core.errors import StudyStopped, UserError
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import ArchitectureOutcome, ResultCollector
from rnncompare.orchestration.context import StudyContext
from rnncompare.orchestration.distributed.role import Role, keras_tuner_environment
from rnncompare.tracking import PreviousRun
from rnncompare.training.tuning import load_trial_model, make_tuner, select_best, stopped_message


class ServedOracle:
    """One architecture's oracle, served over gRPC from background threads until its search is over.

    The search is over when a worker has been told to stop (no trial left) and no trial is running. When
    keras-tuner's limit of consecutive failed trials is hit, `failure` holds its message and every worker is
    told to stop.
    """

    def __init__(
        self,
        architecture: str,
        oracle,
        address: str,
        on_trial_end: Callable[[str, str, str, float | None], None] | None = None,
        on_trial_start: Callable[[str, str, dict], None] | None = None,
    ):
        self.architecture = architecture
        self.oracle = oracle
        self.address = address
        self.servicer = kt_distributed.oracle_servicer(oracle, on_trial_end, on_trial_start)
        self._server = None

    def start(self) -> None:
        from concurrent import futures

        import grpc

        # One thread, as keras-tuner's chief: the oracle's calls are serialised anyway.
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        kt_distributed.add_oracle_servicer(self.servicer, self._server)
        if self._server.add_insecure_port(self.address) == 0:
            raise UserError(f"--oracle: the chief cannot serve on {self.address}")
        self._server.start()

    @property
    def failure(self) -> str | None:
        return self.servicer.failure

    @property
    def finished(self) -> bool:
        # Read without the oracle's lock: `end_trial` empties ongoing_trials as its very last step. A chief resumed
        # after its search was over hears from no worker: its reloaded oracle has nothing left.
        over = self.servicer.stop_triggered or self.failure is not None or kt_compat.nothing_left(self.oracle)
        return over and not self.oracle.ongoing_trials and not kt_compat.trials_waiting(self.oracle)

    def wait(
        self,
        lease_seconds: float,
        poll_seconds: float = 0.5,
        check: Callable[[], None] | None = None,
        on_expired: Callable[[str, str], None] | None = None,
    ) -> None:
        """Block until the search is over. At each poll, a trial whose worker has not been heard from in
        `lease_seconds` goes to the next worker that asks (`on_expired(trial_id, worker)` hears of it first, before
        a worker can take it up and close the silent worker's run itself), and `check()` may raise to stop
        waiting."""
        while not self.finished:
            kt_distributed.expire_silent(self.servicer, lease_seconds, before_requeue=on_expired)
            if check is not None:
                check()
            time.sleep(poll_seconds)

    def stop(self, grace_seconds: float) -> None:
        """Stop serving; a call already under way gets `grace_seconds` to finish."""
        if self._server is not None:
            self._server.stop(grace_seconds).wait()
            self._server = None


def chief_tuner(architecture: str, config, task, directory: str, role: Role, index: int, resume: bool):
    """The tuner whose oracle the chief serves for one architecture (it trains nothing itself)."""
    with keras_tuner_environment(role, index):
        # the chief's tuner trains nothing, so its observer never hears of a trial
        tuner = make_tuner(architecture, config, task, ResultCollector(), directory, resume=resume)
    tuner.oracle.verbose = 0
    tuner.save()
    return tuner


class ServedSearch:
    """The chief's side of the study's search seam: serve every unfinished architecture's oracle at `start`, then
    give each architecture's outcome once the workers have finished its search."""

    def __init__(self, context: StudyContext, role: Role, check: Callable[[], None] | None = None):
        self.context = context
        self.role = role
        # raises while waiting when the workers can no longer finish the search (a `LocalCluster`'s `check`)
        self.check = check
        self.served: dict[str, tuple[ServedOracle, object]] = {}

    def start(self) -> None:
        context, role = self.context, self.role
        config = context.config
        for index, architecture in enumerate(config.architectures):
            previous = context.runs.previous_architectures.get(architecture)
            if previous and previous.finished:
                continue
            run_id = context.tracker.start_architecture(context.runs, config.study, architecture)
            tuner = chief_tuner(
                architecture, config, context.task, str(context.tuner_dir), role, index, resume=previous is not None
            )
            server = ServedOracle(
                architecture,
                tuner.oracle,
                f"{role.host}:{role.port_for(index)}",
                context.progress.served_trial_reporter(architecture, config.tuner.objective),
                context.progress.served_trial_starter(architecture),
            )
            server.start()
            self.served[architecture] = (server, tuner)
            context.tracker.mark_search(run_id, "searching")
        context.progress.stage(
            "chief",
            f"{role.describe(config.architectures)}; waiting for workers (rnncompare run "
            f"EXPERIMENT --worker NAME --oracle {role.host}:{role.port})",
        )

    def outcome(self, architecture: str, previous: PreviousRun | None) -> ArchitectureOutcome:
        """Wait for the workers to finish one architecture's search, then score its best trial on the test split
        with the weights its worker logged."""
        context = self.context
        server, tuner = self.served[architecture]
        run_id = context.runs.architecture_run_ids[architecture]
        lease = context.config.execution.worker_timeout

        def expired(trial_id: str, worker: str) -> None:
            context.tracker.mark_abandoned(
                run_id,
                trial_id,
                worker,
                f"worker {worker} not heard from in {lease:g} s "
                "(execution.worker_timeout); its trial went to "
                "the next worker that asked",
            )
            context.progress.stage(
                "chief",
                f"{architecture} trial {trial_id}: {worker} not heard from in {lease:g} "
                "s; handed to the next worker that asks",
            )

        server.wait(lease, check=self.check, on_expired=expired)
        context.tracker.settle_trial_runs(run_id, kt_compat.completed_trial_ids(tuner.oracle))
        context.tracker.mark_search(run_id, "done")
        trials = context.tracker.previous_results(run_id, "trial", context.fixed(architecture))
        if server.failure is not None:
            failed = sorted((t for t in trials if t.status == RunStatus.FAILED), key=lambda t: t.trial_id)
            raise StudyStopped(
                stopped_message(architecture, context.config, failed[-1].failure_reason if failed else "unknown")
            )

        def load_model(trial_id: str):
            hyperparameters = next(t.hyperparameters for t in trials if t.trial_id == trial_id)
            with tempfile.TemporaryDirectory() as folder:
                context.tracker.trial_weights(run_id, trial_id, folder)
                return load_trial_model(architecture, hyperparameters, folder, context.config, context.task)

        return select_best(architecture, trials, tuner, load_model, context.config, context.task)

    def close(self) -> None:
        for server, _ in self.served.values():
            server.stop(grace_seconds=1)
