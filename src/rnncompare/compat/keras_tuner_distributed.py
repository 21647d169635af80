"""keras-tuner's private API for a search shared by a chief and its workers: the oracle's gRPC service, the
client's timeout and idle wait, and a silent worker's trial sent back to the queue. Checked as
`compat.keras_tuner` is (importing it checks keras-tuner's version)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

from rnncompare.compat.keras_tuner import ENV_ORACLE_IP, ENV_ORACLE_PORT, ENV_TUNER_ID, save_failed_state
from rnncompare.runtime.quiet import environment_kept


@contextlib.contextmanager
def oracle_environment(tuner_id: str, host: str, port: int, timeout_seconds: float) -> Iterator[None]:
    """While the block runs, tuners built in it talk to the oracle at `host:port` as `tuner_id`.

    Upstream reads its ``KERASTUNER_*`` variables when a tuner is built, and its client waits an hour for a silent
    chief (the module's TIMEOUT): here it waits `timeout_seconds`.
    """
    from keras_tuner.src.distribute import oracle_client

    values = {ENV_TUNER_ID: tuner_id, ENV_ORACLE_IP: host, ENV_ORACLE_PORT: str(port)}
    saved_timeout = oracle_client.TIMEOUT
    with environment_kept(values):
        os.environ.update(values)
        oracle_client.TIMEOUT = timeout_seconds
        try:
            yield
        finally:
            oracle_client.TIMEOUT = saved_timeout


def pause_when_idle(client, seconds: float = 0.5) -> None:
    """Upstream's search loop asks again at once when the oracle answers IDLE (Hyperband waiting for a round's
    results); without a pause, every idle worker keeps the chief busy answering."""
    ask = client.create_trial

    def create_trial(tuner_id):
        trial = ask(tuner_id)
        if trial.status == "IDLE":
            time.sleep(seconds)
        return trial

    client.create_trial = create_trial


def keep_alive(client, seconds: float) -> Callable[[], None]:
    """Tell the chief every `seconds`, from a thread of its own, that this worker still runs its trial (the
    chief's lease, `expire_silent`, would otherwise hand the trial on during an epoch longer than the lease).
    Returns the function that stops it."""
    from keras_tuner.src.engine.trial import TrialStatus

    current: dict[str, str | None] = {"trial": None}
    ask = client.create_trial

    def create_trial(tuner_id):
        trial = ask(tuner_id)
        current["trial"] = trial.trial_id if trial.status == TrialStatus.RUNNING else None
        return trial

    def beat() -> None:
        while not stopped.wait(seconds):
            if current["trial"] is not None:
                with contextlib.suppress(Exception):  # a chief that is gone is found by the search itself
                    client.get_trial(current["trial"])

    client.create_trial = create_trial
    stopped = threading.Event()
    threading.Thread(target=beat, name="rnncompare-heartbeat", daemon=True).start()
    return stopped.set


@contextlib.contextmanager
def _oracle_locked(oracle) -> Iterator[None]:
    # the lock upstream's `synchronized` methods take, so that no gRPC call changes the oracle meanwhile
    from keras_tuner.src.engine import oracle as oracle_module

    oracle_module.LOCKS[oracle].acquire()
    oracle_module.THREADS[oracle] = threading.current_thread().name
    try:
        yield
    finally:
        oracle_module.THREADS[oracle] = None
        oracle_module.LOCKS[oracle].release()


def _release_oracle_lock(oracle) -> None:
    # Upstream's `synchronized` takes the oracle's lock and does not release it when the method raises.
    from keras_tuner.src.engine import oracle as oracle_module

    if oracle_module.THREADS[oracle] is not None:
        oracle_module.THREADS[oracle] = None
        oracle_module.LOCKS[oracle].release()


def _stopped_trial(oracle):
    """The trial that tells a worker the search stopped."""
    from keras_tuner.src.engine import trial as trial_module

    return trial_module.Trial(oracle.get_space(), trial_id="stopped", status=trial_module.TrialStatus.STOPPED)


def _tuner_running(oracle, trial_id: str) -> str:
    """The id of the tuner (worker) running `trial_id`, or "" when none is."""
    return next((tuner for tuner, trial in oracle.ongoing_trials.items() if trial.trial_id == trial_id), "")


def oracle_servicer(
    oracle,
    on_trial_end: Callable[[str, str, str, float | None], None] | None,
    on_trial_start: Callable[[str, str, dict], None] | None = None,
):
    """Upstream's gRPC `OracleServicer` for `oracle`, with these changes:

    - upstream raises inside the gRPC call when trials fail in a row; here every worker is told STOPPED instead
      and `failure` holds the message;
    - the oracle's lock is released when `end_trial` raises (see `_release_oracle_lock`);
    - the oracle is saved again after each ended trial, since upstream saves before it drops the trial from the
      running ones and a chief resumed from that state would hand it out again;
    - every call from a worker renews its lease on its trial (`expire_silent`); a trial ends once (a second end
      of it, from a silent worker that came back or the one its trial went to, is ignored).

    `on_trial_end(trial_id, tuner_id, status, score)` hears of each ended trial, `on_trial_start(trial_id,
    tuner_id, values)` of each trial handed out (again, to a worker that restarted)."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    class StudyOracleServicer(OracleServicer):
        def __init__(self):
            super().__init__(oracle)
            self.failure: str | None = None
            self.heard: dict[str, float] = {}  # tuner id -> when it last called

        def _heard_about(self, trial_id: str) -> None:
            for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
                if trial.trial_id == trial_id:
                    self.heard[tuner_id] = time.monotonic()

        def CreateTrial(self, request, context):
            self.heard[request.tuner_id] = time.monotonic()
            if self.failure is not None:
                self.stop_triggered = True
                return protos.get_service().CreateTrialResponse(trial=_stopped_trial(self.oracle).to_proto())
            response = super().CreateTrial(request, context)
            handed = self.oracle.ongoing_trials.get(request.tuner_id)
            if on_trial_start is not None and handed is not None:
                on_trial_start(handed.trial_id, request.tuner_id, dict(handed.hyperparameters.values))
            return response

        def UpdateTrial(self, request, context):
            self._heard_about(request.trial_id)
            if request.trial_id in self.oracle.end_order:
                trial = self.oracle.trials[request.trial_id]
                return protos.get_service().UpdateTrialResponse(trial=trial.to_proto())
            return super().UpdateTrial(request, context)

        def GetTrial(self, request, context):
            self._heard_about(request.trial_id)
            return super().GetTrial(request, context)

        def EndTrial(self, request, context):
            trial_id = request.trial.trial_id
            if trial_id in self.oracle.end_order:
                return protos.get_service().EndTrialResponse()
            if trial_id in self.oracle._retry_queue:  # its silent worker came back before another took it
                self.oracle._retry_queue.remove(trial_id)
            tuner_id = _tuner_running(self.oracle, trial_id)
            try:
                response = super().EndTrial(request, context)
            except RuntimeError as exc:
                if "consecutive failures" not in str(exc):
                    raise
                _release_oracle_lock(self.oracle)
                self.failure = str(exc).splitlines()[0]
                save_failed_state(self.oracle, trial_id)
                response = protos.get_service().EndTrialResponse()
            self.oracle.save()
            if on_trial_end is not None:
                on_trial_end(
                    trial_id, tuner_id, self.oracle.trials[trial_id].status, self.oracle.trials[trial_id].score
                )
            return response

    return StudyOracleServicer()


def expire_silent(servicer, seconds: float, before_requeue: Callable[[str, str], None] | None = None) -> None:
    """Take the running trials of workers that `servicer` has not heard from in `seconds` off them and queue them
    for the next worker that asks. `before_requeue(trial_id, tuner_id)` runs before a trial is queued, so that it
    acts before any worker can take the trial up."""
    oracle = servicer.oracle
    now = time.monotonic()
    with _oracle_locked(oracle):
        silent = [
            (tuner_id, trial)
            for tuner_id, trial in oracle.ongoing_trials.items()
            if now - servicer.heard.setdefault(tuner_id, now) > seconds
        ]
        for tuner_id, trial in silent:
            oracle.ongoing_trials.pop(tuner_id)
            if before_requeue is not None:
                before_requeue(trial.trial_id, tuner_id)
            oracle._retry_queue.append(trial.trial_id)
        if silent:
            oracle.save()


def add_oracle_servicer(servicer, server) -> None:
    """Register `servicer` on a grpc `server` with upstream's generated service code."""
    from keras_tuner.src import protos

    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
