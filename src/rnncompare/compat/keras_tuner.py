"""Every place rnncompare reaches into keras-tuner's private API, each naming the upstream behaviour it works
around, behind one version check.

keras-tuner's internals change without notice between releases; these patches were written against `SUPPORTED`,
and importing this module refuses any other version loudly, rather than letting a patch misbehave quietly.
Only this module and `keras_tuner_distributed` import ``keras_tuner.src``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.compat.versions import require

SUPPORTED = "==1.4.8"
VERSION = require("keras-tuner", SUPPORTED, "keras_tuner")
ENV_TUNER_ID = "KERASTUNER_TUNER_ID"
ENV_ORACLE_IP = "KERASTUNER_ORACLE_IP"
ENV_ORACLE_PORT = "KERASTUNER_ORACLE_PORT"

_loaded = False


def load():
    """keras_tuner, imported quietly, checked and patched once per process."""
    global _loaded
    import_deep_learning()
    import keras_tuner

    if not _loaded:
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
            if (
                saver is not None
                and saver.best_weights is not None
                and (
                    self.best_model_so_far is None
                    or saver.objective.better_than(saver.best_value, self.best_model_so_far[2])
                )
            ):
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
        batch_hooks_unused = (
            type(tuner).on_batch_begin is keras_tuner.Tuner.on_batch_begin
            and type(tuner).on_batch_end is keras_tuner.Tuner.on_batch_end
        )
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
