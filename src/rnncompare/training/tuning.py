"""Tuning: one keras-tuner search per architecture, same space, same budget, same tuner seed.

Roles follow keras-tuner's seams: `make_hypermodel(...).build(hp)` says what to build (it only declares the search
space and hands `hp.values` to the model builder), the oracle picks what to try next, and `run_trial` (wrapped by
the tuner class `make_tuner` builds) reports every trial and epoch to a `TrialObserver`. The same tuner runs a
search in one process, serves the chief's oracle, or runs a worker's trials. This module never imports MLflow.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Callable
from typing import Any

from rnncompare.compat import keras_tuner as kt_compat
from rnncompare.config import TUNER_ALGORITHMS
from rnncompare.core.errors import FailedTrial, StudyStopped
from rnncompare.core.metrics import OBJECTIVE_DIRECTIONS
from rnncompare.core.seeds import derive_seed, trial_seed
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import ArchitectureOutcome, FanOut, ResultCollector, TrialObserver, TrialResult
from rnncompare.runtime.backend import current_backend
from rnncompare.runtime.frameworks import set_random_seed
from rnncompare.tasks import TaskData
from rnncompare.training.fitting import (
    draw_as_a_first_fit,
    early_stopping,
    epoch_recorder,
    evaluate_test,
    failure_reason,
    fit_arguments,
    validation_compiled_ahead,
)
from rnncompare.training.models import CompiledModels, build_model

WEIGHTS_FILES = ("checkpoint.weights.h5", "build_config.json")


def fixed_hyperparameters(architecture: str, config) -> dict[str, Any]:
    """What the study fixes for every model of `architecture` (logged as params beside the searched ones)."""
    fixed = {"architecture": str(architecture)}
    body = config.body_of(architecture)
    if body is not None:  # the user's own architecture: where its body comes from
        fixed["body"] = body
    if config.search.learning_rate is None:
        fixed["learning_rate"] = config.training.learning_rate
    return fixed


def model_hyperparameters(architecture: str, config, searched: dict[str, Any]) -> dict[str, Any]:
    """The full dict `build_model` takes: the searched values plus what the study fixes."""
    return {**fixed_hyperparameters(architecture, config), **searched}


def declare_search_space(hp, search) -> dict[str, Any]:
    """Map the config's `search` ranges onto keras-tuner hyperparameters; a range with min == max is fixed, and
    the learning rate is searched only when `search.learning_rate` is set."""
    values = {}
    for name in ("units", "layers"):
        bounds = getattr(search, name)
        values[name] = (
            hp.Fixed(name, bounds.min)
            if bounds.min == bounds.max
            else hp.Int(name, bounds.min, bounds.max, step=bounds.step)
        )
    dropout = search.dropout
    values["dropout"] = (
        hp.Fixed("dropout", dropout.min)
        if dropout.min == dropout.max
        else hp.Float("dropout", dropout.min, dropout.max, step=dropout.step)
    )
    if search.learning_rate is not None:
        rate = search.learning_rate
        values["learning_rate"] = hp.Float("learning_rate", rate.min, rate.max, sampling=rate.sampling)
    return values


def trials_per_search(config) -> int:
    """The trials each architecture's search runs at most: `tuner.max_trials`, or the grid's points where a grid
    search has fewer (4 for two widths and two dropouts: keras-tuner stops there)."""
    if config.tuner.algorithm != "grid":
        return config.tuner.max_trials
    hp = kt_compat.load().HyperParameters()
    declare_search_space(hp, config.search)
    return min(config.tuner.max_trials, math.prod(len(list(parameter.values)) for parameter in hp.space))


def make_hypermodel(architecture: str, config, task: TaskData):
    """The keras-tuner hypermodel for one architecture: declares the space, delegates building to `build_model`."""
    kt = kt_compat.load()

    class RecurrentHyperModel(kt.HyperModel):
        # Under JAX the trials of one width share one compiled model (their dropout and learning rate are state);
        # elsewhere every trial's model is new (the first fit's shuffle is TensorFlow's, not reproduced here).
        compiled = CompiledModels(task.input_spec, task.output_spec) if current_backend() == "jax" else None
        reused = None

        def declare_hyperparameters(self, hp):
            declare_search_space(hp, config.search)  # the whole space, unconditionally: no model built for it

        def build(self, hp):
            hyperparameters = model_hyperparameters(architecture, config, declare_search_space(hp, config.search))
            if self.compiled is None:
                return build_model(hyperparameters, task.input_spec, task.output_spec)
            model, reused = self.compiled.build(hyperparameters)
            self.reused = model if reused else None
            return model

        def fit(self, hp, model, *args, **kwargs):
            if model is self.reused:
                draw_as_a_first_fit(kwargs)
            return model.fit(*args, **kwargs)

    return RecurrentHyperModel(name=architecture)


def _trial_reporting_class(
    base, observer: TrialObserver, config, kind_metrics, fetch_weights: Callable[[str, str], None] | None
):
    kt = kt_compat.load()

    class TrialReporting(kt_compat.patched_tuner_class(base)):
        """Reports each trial to `observer` as it starts and ends, failed or not."""

        def extra_fit_callbacks(self) -> list:
            return [self._recorder]

        def run_trial(self, trial, *args, **kwargs):
            searched = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
            self._recorder = epoch_recorder(trial.trial_id, observer, kind_metrics.epoch)
            observer.trial_started(trial.trial_id, searched)
            set_random_seed(trial_seed(config.seed, trial.trial_id))
            try:
                parent = trial.hyperparameters.values.get("tuner/trial_id")
                if parent and fetch_weights and not kt_compat.has_checkpoint(self, parent):
                    # Hyperband continues a trial that another worker may have run: get its weights first.
                    fetch_weights(parent, self.get_trial_dir(parent))
                fitted = super().run_trial(trial, *args, **kwargs)
                if self._recorder.diverged_at is not None:
                    raise FailedTrial(f"loss became NaN or infinite at epoch {self._recorder.diverged_at}")
                summary = self._recorder.summary(config.tuner.objective, kind_metrics.score, config.training.min_delta)
            except Exception as exc:  # any failure of one trial is that trial's, recorded, and the search goes on
                reason = failure_reason(exc)
                observer.trial_ended(
                    TrialResult(
                        trial.trial_id,
                        searched,
                        RunStatus.FAILED,
                        history=self._recorder.history,
                        failure_reason=reason,
                    )
                )
                raise kt.errors.FailedTrialError(reason.split(": ", 1)[1]) from exc
            trial_dir = self.get_trial_dir(trial.trial_id)
            weights = [
                os.path.join(trial_dir, name) for name in WEIGHTS_FILES if os.path.exists(os.path.join(trial_dir, name))
            ]
            observer.trial_ended(
                TrialResult(
                    trial.trial_id, searched, RunStatus.FINISHED, summary, self._recorder.history, weights_files=weights
                )
            )
            return fitted

    return TrialReporting


def make_tuner(
    architecture: str,
    config,
    task: TaskData,
    observer: TrialObserver,
    directory: str,
    resume: bool = False,
    fetch_weights: Callable[[str, str], None] | None = None,
):
    """A keras-tuner tuner of the configured algorithm, reporting to `observer`.

    With `resume`, an existing project folder is reloaded: finished trials are kept and the trial that was
    running when the process stopped is run again (keras-tuner sends it to its retry queue).
    `fetch_weights(trial_id, folder)`, on a worker, puts a trial's saved weights into `folder` when Hyperband
    continues a trial that ran elsewhere.

    Every architecture gets the same tuner seed, so random and grid searches try the same points for each.
    Hyperband's trial count is capped at `tuner.max_trials` like the others, with `tuner.epochs` as max_epochs.
    """
    kt = kt_compat.load()
    tuner_config = config.tuner
    bases = dict(zip(TUNER_ALGORITHMS, (kt.RandomSearch, kt.BayesianOptimization, kt.Hyperband, kt.GridSearch)))
    objective = kt.Objective(tuner_config.objective, direction=OBJECTIVE_DIRECTIONS[tuner_config.objective])
    common = dict(
        hypermodel=make_hypermodel(architecture, config, task),
        objective=objective,
        seed=derive_seed(config.seed, "tuner"),
        directory=directory,
        project_name=architecture,
        overwrite=not resume,
        # keras-tuner raises RuntimeError at this many failures in a row; tune_architecture turns it into
        # StudyStopped. Below the limit, an architecture whose trials all fail ends as a FAILED run.
        max_consecutive_failed_trials=tuner_config.max_consecutive_failures,
        max_retries_per_trial=0,
    )
    if tuner_config.algorithm == "grid":
        bases["grid"] = kt.Tuner
        oracle_arguments = {
            name: common.pop(name)
            for name in ("objective", "seed", "max_consecutive_failed_trials", "max_retries_per_trial")
        }
        common["oracle"] = kt_compat.persistent_grid_oracle_class()(
            max_trials=tuner_config.max_trials, **oracle_arguments
        )
    tuner_class = _trial_reporting_class(
        bases[tuner_config.algorithm], observer, config, task.output_spec.metrics, fetch_weights
    )
    # keras-tuner prints "Reloading Tuner from ..." on resume; the progress display already says it resumes.
    with contextlib.redirect_stdout(io.StringIO()):
        if tuner_config.algorithm == "hyperband":
            tuner = tuner_class(max_epochs=tuner_config.epochs, factor=3, **common)
            tuner.oracle.max_trials = tuner_config.max_trials
        elif tuner_config.algorithm == "grid":
            tuner = tuner_class(**common)
        else:
            tuner = tuner_class(max_trials=tuner_config.max_trials, **common)
    if resume:
        kt_compat.drop_ended_from_retry_queue(tuner.oracle)
    return tuner


def tune_architecture(
    architecture: str,
    config,
    task: TaskData,
    observer: TrialObserver,
    directory: str,
    previous: list[TrialResult] | None = None,
) -> ArchitectureOutcome:
    """Search one architecture's hyperparameters and evaluate its best model once on the test split.

    `previous`: the trials an interrupted run of this search already finished (read back from the tracking
    store); the search resumes from its tuner folder and runs only what is left.
    """
    collected = ResultCollector()
    tuner = make_tuner(architecture, config, task, FanOut(observer, collected), directory, resume=previous is not None)
    try:
        search(tuner, config, task)
    except RuntimeError as exc:
        if "consecutive failures" not in str(exc):
            raise
        kt_compat.save_failed_state(tuner.oracle)
        last = next((t.failure_reason for t in reversed(collected.results) if t.status == RunStatus.FAILED), "unknown")
        raise StudyStopped(stopped_message(architecture, config, last)) from None
    fresh = {trial.trial_id for trial in collected.results}
    trials = [*(t for t in previous or [] if t.trial_id not in fresh), *collected.results]
    return select_best(architecture, trials, tuner, lambda trial_id: tuner.get_best_models(1)[0], config, task)


def search(tuner, config, task: TaskData) -> None:
    """Run `tuner`'s search over the task's training split, selecting on validation, with early stopping."""
    arguments = fit_arguments(task, config.tuner.batch_size)
    tuner.search(
        **arguments,
        epochs=config.tuner.epochs,
        callbacks=[early_stopping(config), validation_compiled_ahead(arguments)],
        verbose=0,
    )


def stopped_message(architecture: str, config, last_reason: str) -> str:
    """The one line a study stopped by consecutive failed trials ends with."""
    return (
        f"{architecture}: {config.tuner.max_consecutive_failures} trials in a row failed (last: {last_reason}); "
        "the study stops. Each is a FAILED run with its reason; fix the cause and run the same command to resume"
    )


def select_best(
    architecture: str, trials: list[TrialResult], tuner, load_model: Callable[[str], Any], config, task: TaskData
) -> ArchitectureOutcome:
    """The architecture's outcome: the oracle's best trial, its model (from `load_model(trial_id)`) scored once
    on the test split and kept for logging, and every trial."""
    trials = sorted(trials, key=lambda trial: trial.trial_id)
    finished = [trial for trial in trials if trial.status == RunStatus.FINISHED]
    if not finished:
        return ArchitectureOutcome(architecture, trials, None, {}, {}, {})
    best_trial_id = tuner.oracle.get_best_trials(1)[0].trial_id
    best = next((trial for trial in finished if trial.trial_id == best_trial_id), None)
    if best is None:
        raise RuntimeError(
            f"{architecture}: the oracle's best trial {best_trial_id} has no FINISHED run in the tracking store"
        )
    model = load_model(best_trial_id)
    return ArchitectureOutcome(
        architecture=architecture,
        trials=trials,
        best_trial_id=best_trial_id,
        best_hyperparameters=dict(best.hyperparameters),
        selected_metrics=dict(best.metrics),
        test_metrics=evaluate_test(model, task, config.tuner.batch_size),
        selected_model=model,
    )


def load_trial_model(architecture: str, hyperparameters: dict[str, Any], weights_folder: str, config, task: TaskData):
    """A trial's model rebuilt from its hyperparameters, with the best-epoch weights a worker saved and its
    optimizer's state then, as the model a search in this process keeps."""
    model = build_model(model_hyperparameters(architecture, config, hyperparameters), task.input_spec, task.output_spec)
    model.optimizer.build(model.trainable_variables)  # else Keras skips the saved optimizer state, with a warning
    model.load_weights(os.path.join(weights_folder, WEIGHTS_FILES[0]))
    return model
