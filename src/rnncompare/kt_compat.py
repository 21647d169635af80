"""Every place rnncompare reaches into keras-tuner's private API, each naming the upstream behaviour it works
around, behind one version check.

keras-tuner's internals change without notice between releases; these patches were written against
`SUPPORTED_VERSION` and `load()` refuses any other version loudly, rather than letting a patch misbehave quietly.
No other module imports ``keras_tuner.src``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, Callable, Iterator

from rnncompare.runtime import environment_kept, import_deep_learning

SUPPORTED_VERSION = "1.4.8"
ENV_TUNER_ID = "KERASTUNER_TUNER_ID"
ENV_ORACLE_IP = "KERASTUNER_ORACLE_IP"
ENV_ORACLE_PORT = "KERASTUNER_ORACLE_PORT"

_loaded = False


def check_version(version: str) -> None:
    """Raise RuntimeError unless `version` is the keras-tuner these patches were written against."""
    if version != SUPPORTED_VERSION:
        raise RuntimeError(
            f"rnncompare patches keras-tuner {SUPPORTED_VERSION} internals (see rnncompare/kt_compat.py) and "
            f"found keras-tuner {version}; install keras-tuner=={SUPPORTED_VERSION}"
        )


def load():
    """keras_tuner, imported quietly, checked and patched once per process."""
    global _loaded
    import_deep_learning()
    import keras_tuner

    if not _loaded:
        check_version(keras_tuner.__version__)
        # Upstream ships with DEBUG on and prints every failed trial's traceback; rnncompare records the reason
        # on the trial's MLflow run instead.
        from keras_tuner.src import config as keras_tuner_config

        keras_tuner_config.DEBUG = False
        _loaded = True
    return keras_tuner


# ---- the tuner ------------------------------------------------------------------------------------------------


def patched_tuner_class(base):
    """`base` with these changes to upstream's trial loop:

    - a hook that adds `self.extra_fit_callbacks()` to every fit: upstream deep-copies the search's callbacks for
      each trial inside the private `_build_and_fit_model`, and a callback added after the copy (one that collects
      the trial's history) stays the same object;
    - `_try_build` clears the Keras session without the two full garbage collections upstream runs before every
      build (`clear_session()` then `gc.collect()`): in a process that holds TensorFlow and MLflow they cost about
      0.8 s per trial, and Python's own collector frees the old models anyway. The session state a build starts
      from is the same, so are the models;
    - upstream's `SaveBestEpoch` writes the weights file at every epoch that improves the objective (most epochs
      of a fit that is still learning, about 18 ms each); here the best weights are kept in memory and the file is
      written once, when the fit ends. A trial cut off mid-fit is run again on resume either way;
    - the best trial's model so far stays in memory with its best-epoch weights, and `get_best_models(1)` gives
      it rather than building the model again and loading the file: the same weights, and its evaluation step
      already traced (compiled, under JAX) for the validation split's shapes. Where the hypermodel hands that
      model on to a later trial (rnncompare's do under JAX: `models.CompiledModels`), it is no longer kept, and
      the best is built and its checkpoint loaded when asked for, as upstream does;
    - a hypermodel that declares its whole space in `declare_hyperparameters` (as rnncompare's do: no conditional
      scopes) is not also built once when the tuner starts, to discover the space: upstream's
      `_activate_all_conditions` builds a model for that, which under JAX compiles its initializers (about 1 s);
    - upstream's `TunerCallback` forwards every batch to the tuner's `on_batch_begin`/`on_batch_end`, which do
      nothing unless a subclass overrides them. Keras cannot tell, so a callback with batch hooks makes it wait for
      every step and copy its logs to NumPy (no asynchronous dispatch): about 10% of a JAX fit on digits. Here the
      callback forwards epochs only, unless the tuner class overrides a batch hook.
    """
    import keras
    import keras_tuner

    lighter_callback, BestEpochWrittenAtEnd = _lighter_callbacks()

    class PatchedTuner(base):
        best_model_so_far: tuple[str, Any, float] | None = None  # (trial id, model with its best weights, value)

        def extra_fit_callbacks(self) -> list:
            return []

        def _build_and_fit_model(self, trial, *args, **kwargs):
            callbacks = [lighter_callback(self, callback) for callback in kwargs.get("callbacks", [])]
            kwargs["callbacks"] = [*callbacks, *self.extra_fit_callbacks()]
            results = super()._build_and_fit_model(trial, *args, **kwargs)
            saver = next((callback for callback in callbacks if isinstance(callback, BestEpochWrittenAtEnd)), None)
            if saver is not None and saver.best_weights is not None and (
                    self.best_model_so_far is None
                    or saver.objective.better_than(saver.best_value, self.best_model_so_far[2])):
                saver.model.set_weights(saver.best_weights)
                self.best_model_so_far = (trial.trial_id, saver.model, saver.best_value)
            return results

        def get_best_models(self, num_models=1):
            kept = self.best_model_so_far
            if num_models == 1 and kept is not None and kept[0] == self.oracle.get_best_trials(1)[0].trial_id:
                return [kept[1]]
            return super().get_best_models(num_models)

        def _activate_all_conditions(self):
            if type(self.hypermodel).declare_hyperparameters is keras_tuner.HyperModel.declare_hyperparameters:
                super()._activate_all_conditions()

        def _try_build(self, hp):
            keras.backend.clear_session(free_memory=False)
            model = self._build_hypermodel(hp)
            if not isinstance(model, keras.Model):  # upstream's check (its size limit is never set here)
                raise TypeError(f"HyperModel.build() returned {type(model).__name__}, not a Keras model")
            if self.best_model_so_far is not None and self.best_model_so_far[1] is model:
                self.best_model_so_far = None  # handed on: its weights are about to change
            return model

    return PatchedTuner


def _lighter_callbacks() -> tuple[Callable[[Any, Any], Any], type]:
    """`lighter(tuner, callback)`, which replaces upstream's `SaveBestEpoch` and `TunerCallback` as
    `patched_tuner_class` says (any other callback is kept), and the class that replaces `SaveBestEpoch`."""
    import keras
    import keras_tuner
    from keras_tuner.src.engine import tuner_utils

    class BestEpochWrittenAtEnd(tuner_utils.SaveBestEpoch):
        def __init__(self, upstream):
            super().__init__(upstream.objective, upstream.filepath)
            self.best_weights = None

        def _save_model(self):
            self.best_weights = self.model.get_weights()

        def on_train_end(self, logs=None):
            if self.best_weights is None:
                return
            current = self.model.get_weights()
            self.model.set_weights(self.best_weights)
            super()._save_model()
            self.model.set_weights(current)

    class EpochTunerCallback(tuner_utils.TunerCallback):
        on_batch_begin = keras.callbacks.Callback.on_batch_begin  # Keras's own no-ops, marked as the defaults
        on_batch_end = keras.callbacks.Callback.on_batch_end

    def lighter(tuner, callback):
        if type(callback) is tuner_utils.SaveBestEpoch:
            return BestEpochWrittenAtEnd(callback)
        batch_hooks_unused = (type(tuner).on_batch_begin is keras_tuner.Tuner.on_batch_begin
                              and type(tuner).on_batch_end is keras_tuner.Tuner.on_batch_end)
        if type(callback) is tuner_utils.TunerCallback and batch_hooks_unused:
            return EpochTunerCallback(callback.tuner, callback.trial)
        return callback

    return lighter, BestEpochWrittenAtEnd


def has_checkpoint(tuner, trial_id: str) -> bool:
    """Whether `trial_id`'s best-epoch weights are in this tuner's folder (upstream names the file privately)."""
    return os.path.exists(tuner._get_checkpoint_fname(trial_id))


def drop_ended_from_retry_queue(oracle) -> None:
    """After a reload: upstream saves the oracle inside `end_trial` before it takes the trial off the running
    ones, and on reload sends every running trial to be retried, so a trial that had ended would run twice."""
    oracle._retry_queue = [trial_id for trial_id in oracle._retry_queue if trial_id not in oracle.end_order]


def trials_waiting(oracle) -> bool:
    """Whether trials wait in the oracle's retry queue (a silent worker's trial, see `expire_silent`)."""
    return bool(oracle._retry_queue)


def completed_trial_ids(oracle) -> list[str]:
    """The ids of the trials `oracle` ended as completed (not failed, not running)."""
    from keras_tuner.src.engine.trial import TrialStatus

    return [trial_id for trial_id, trial in oracle.trials.items() if trial.status == TrialStatus.COMPLETED]


def nothing_left(oracle) -> bool:
    """Whether a reloaded oracle has used its whole budget and has no trial waiting to be retried."""
    return bool(oracle.max_trials) and len(oracle.trials) >= oracle.max_trials and not oracle._retry_queue


def save_failed_state(oracle, trial_id: str | None = None) -> None:
    """Save the oracle after upstream's consecutive-failure limit, so a resume does not rerun that trial.

    Upstream raises before saving the trial that hit the limit and before taking it off the running trials.
    `trial_id` names it when other trials are still running (a distributed search); by default all are taken off.
    """
    for tuner_id, trial in list(oracle.ongoing_trials.items()):
        if trial_id is None or trial.trial_id == trial_id:
            oracle._save_trial(trial)
            oracle.ongoing_trials.pop(tuner_id)
    oracle.save()


def persistent_grid_oracle_class():
    """GridSearchOracle whose saved state includes the order of tried combinations and the queue of trials whose
    successors are still to be generated: upstream's forgets its order when reloaded (KeyError on resume)."""
    from keras_tuner.src.tuners.gridsearch import GridSearchOracle, LinkedList

    class PersistentGridSearchOracle(GridSearchOracle):
        def get_state(self):
            state = super().get_state()
            ordered = self._ordered_ids
            state["rnncompare_ordered_ids"] = {
                "memory": list(ordered._memory),
                "next": [[key, value] for key, value in ordered._next_index.items()],
                "last": ordered._last_index,
            }
            state["rnncompare_populate_next"] = list(self._populate_next)
            return state

        def set_state(self, state):
            super().set_state(state)
            saved = state.get("rnncompare_ordered_ids")
            if saved is not None:
                ordered = LinkedList()
                ordered._memory = list(saved["memory"])
                ordered._data_to_index = {data: index for index, data in enumerate(ordered._memory)}
                for key, value in saved["next"]:
                    ordered._next_index[key] = value
                ordered._last_index = saved["last"]
                self._ordered_ids = ordered
                self._populate_next = list(state.get("rnncompare_populate_next", []))

    return PersistentGridSearchOracle


# ---- chief and workers ----------------------------------------------------------------------------------------


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
    current: dict[str, str | None] = {"trial": None}
    ask = client.create_trial

    def create_trial(tuner_id):
        trial = ask(tuner_id)
        current["trial"] = trial.trial_id if trial.status == "RUNNING" else None
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


def oracle_servicer(oracle, on_trial_end: Callable[[str, str, str, float | None], None] | None,
                    on_trial_start: Callable[[str, str, dict], None] | None = None):
    """Upstream's gRPC `OracleServicer` for `oracle`, with these changes:

    - upstream raises inside the gRPC call when trials fail in a row; here every worker is told STOPPED instead
      and `failure` holds the message;
    - the oracle's lock is released when `end_trial` raises (see `_release_oracle_lock`);
    - the oracle is saved again after each ended trial, since upstream saves before it drops the trial from the
      running ones and a chief resumed from that state would hand it out again;
    - every call from a worker renews its lease on its trial (`expire_silent`). A trial ends once: a second
      end of it (a silent worker came back, or the one its trial went to finished later) is ignored.

    `on_trial_end(trial_id, tuner_id, status, score)` hears of each ended trial, `on_trial_start(trial_id,
    tuner_id, values)` of each trial handed out (again, to a worker that restarted).
    """
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
    from keras_tuner.src.engine import trial as trial_module

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
                stopped = trial_module.Trial(self.oracle.get_space(), trial_id="stopped",
                                             status=trial_module.TrialStatus.STOPPED)
                return protos.get_service().CreateTrialResponse(trial=stopped.to_proto())
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
            tuner_id = next((tuner for tuner, trial in self.oracle.ongoing_trials.items()
                             if trial.trial_id == trial_id), "")
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
                trial = self.oracle.trials[trial_id]
                on_trial_end(trial_id, tuner_id, trial.status, trial.score)
            return response

    return StudyOracleServicer()


def expire_silent(servicer, seconds: float, before_requeue: Callable[[str, str], None] | None = None) -> None:
    """Take the running trials of workers that `servicer` has not heard from in `seconds` off them and queue them
    for the next worker that asks. `before_requeue(trial_id, tuner_id)` runs before a trial is queued, so that it
    acts before any worker can take the trial up."""
    oracle = servicer.oracle
    now = time.monotonic()
    with _oracle_locked(oracle):
        silent = [(tuner_id, trial) for tuner_id, trial in oracle.ongoing_trials.items()
                  if now - servicer.heard.setdefault(tuner_id, now) > seconds]
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
