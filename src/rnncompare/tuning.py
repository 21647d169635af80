"""Tuning: one keras-tuner search per architecture, same space, same budget, same tuner seed.

Roles follow keras-tuner's seams: `RecurrentHyperModel.build(hp)` says what to build (it only declares the search
space and hands `hp.values` to the model builder), the oracle picks what to try next, and `run_trial` (wrapped by
`_TrialReporting`) reports every trial and epoch to a `TrialObserver`. This module never imports MLflow.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from rnncompare.errors import FailedTrial, StudyStopped
from rnncompare.metrics import CLASSIFICATION, OBJECTIVE_DIRECTIONS, REGRESSION
from rnncompare.models import build_model, count_parameters
from rnncompare.tasks import TaskData, derive_seed

SCORE_HIGHER_IS_BETTER = {kind.score: kind.score_higher_is_better for kind in (CLASSIFICATION, REGRESSION)}


@dataclass
class TrialResult:
    """What one trial produced, as plain data."""

    trial_id: str
    hyperparameters: dict[str, Any]
    status: str  # FINISHED or FAILED
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    failure_reason: str | None = None
    # the trial's best-epoch weights and build config as keras-tuner saved them (set by a search, not by seeds)
    weights_files: list[str] = field(default_factory=list)


@dataclass
class ArchitectureOutcome:
    """The result of one architecture's search: every trial, the best one, and its test scores."""

    architecture: str
    trials: list[TrialResult]
    best_trial_id: str | None
    best_hyperparameters: dict[str, Any]
    best_metrics: dict[str, float]
    test_metrics: dict[str, float]


class TrialObserver(Protocol):
    """Receives a search's events; the tracking module implements it, so does progress display."""

    def trial_started(self, trial_id: str, hyperparameters: dict[str, Any]) -> None: ...

    def epoch_ended(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None: ...

    def trial_ended(self, result: TrialResult) -> None: ...


class FanOut:
    """A `TrialObserver` that passes every event on to each of several observers, in order."""

    def __init__(self, *observers: TrialObserver):
        self.observers = observers

    def trial_started(self, trial_id, hyperparameters):
        for observer in self.observers:
            observer.trial_started(trial_id, hyperparameters)

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

    def trial_started(self, trial_id, hyperparameters):
        pass

    def epoch_ended(self, trial_id, epoch, metrics):
        pass

    def trial_ended(self, result):
        self.results.append(result)


def _early_stopping(config):
    import keras

    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.training.patience, restore_best_weights=True
    )


def summarize_epochs(
    history: dict[str, list[float]], epochs: list[int], seconds: list[float], objective: str = "val_loss",
    score: str = "accuracy",
) -> dict[str, float]:
    """Summary metrics of one fit from its per-epoch history.

    The best epoch is the one the objective picks (lowest val_loss, or best validation score): the epoch whose
    weights the tuner keeps. The gaps are positive when a model overfits: ``gap_loss`` = validation minus train
    loss; ``gap_accuracy`` = train minus validation accuracy (``gap_mae`` = validation minus train MAE). They are
    measured at the best epoch and, with the suffix ``_last``, at the last one. ``val_loss_rise`` is how far
    validation loss climbed from its minimum by the last epoch. ``seconds_per_epoch`` leaves out the first epoch
    when there are others, since it includes graph tracing.
    """
    scores = np.asarray(history[objective], dtype=float)
    best_index = int(np.nanargmin(scores) if OBJECTIVE_DIRECTIONS[objective] == "min" else np.nanargmax(scores))
    last_index = len(epochs) - 1
    # train minus validation for a score where higher is better (accuracy), the reverse otherwise (MAE)
    sign = 1.0 if SCORE_HIGHER_IS_BETTER[score] else -1.0

    def gaps(index: int) -> tuple[float, float]:
        return (float(history["val_loss"][index] - history["loss"][index]),
                float(sign * (history[score][index] - history[f"val_{score}"][index])))

    timed = seconds[1:] if len(seconds) > 1 else seconds
    gap_loss, gap_score = gaps(best_index)
    gap_loss_last, gap_score_last = gaps(last_index)
    return {
        "best_epoch": float(epochs[best_index]),
        "epochs_run": float(len(epochs)),
        "epochs_after_best": float(last_index - best_index),
        "loss": float(history["loss"][best_index]),
        "val_loss": float(history["val_loss"][best_index]),
        score: float(history[score][best_index]),
        f"val_{score}": float(history[f"val_{score}"][best_index]),
        "gap_loss": gap_loss,
        f"gap_{score}": gap_score,
        "gap_loss_last": gap_loss_last,
        f"gap_{score}_last": gap_score_last,
        "val_loss_rise": float(history["val_loss"][last_index] - np.nanmin(history["val_loss"])),
        "seconds_per_epoch": float(np.mean(timed)) if timed else 0.0,
    }


def evaluate_test(model, task: TaskData, batch_size: int) -> dict[str, float]:
    """Score a trained model once on the test split: loss and accuracy plus macro F1, or MSE and MAE."""
    results = model.evaluate(task.x_test, task.y_test, batch_size=batch_size, verbose=0, return_dict=True)
    if task.kind == "regression":
        return {"test_loss": float(results["loss"]), "test_mse": float(results["loss"]),
                "test_mae": float(results["mae"])}
    from sklearn.metrics import f1_score

    predicted = np.argmax(model.predict(task.x_test, batch_size=batch_size, verbose=0), axis=-1)
    return {
        "test_loss": float(results["loss"]),
        "test_accuracy": float(results["accuracy"]),
        "test_f1_macro": float(f1_score(task.y_test, predicted, average="macro",
                                        labels=np.arange(task.output_spec.classes), zero_division=0)),
    }


def declare_search_space(hp, search) -> dict[str, Any]:
    """Map the config's `search` ranges onto keras-tuner hyperparameters; a range with min == max is fixed."""
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
    return values


def _keras_tuner():
    import keras_tuner

    return keras_tuner


def make_hypermodel(architecture: str, config, task: TaskData):
    """The keras-tuner hypermodel for one architecture: declares the space, delegates building to `build_model`."""
    kt = _keras_tuner()

    class RecurrentHyperModel(kt.HyperModel):
        def build(self, hp):
            searched = declare_search_space(hp, config.search)
            hyperparameters = {
                "architecture": architecture,
                "learning_rate": config.training.learning_rate,
                **searched,
            }
            return build_model(hyperparameters, task.input_spec, task.output_spec)

    return RecurrentHyperModel(name=architecture)


FAULT_VARIABLE = "RNNCOMPARE_KILL_AT_EPOCH"
_epochs_seen = 0


def _fault_point() -> None:
    # Fault injection for the resume tests: with RNNCOMPARE_KILL_AT_EPOCH=k the process sends itself SIGKILL at
    # the end of its k-th epoch (trials and seed runs counted together), exactly like `kill -9` from outside.
    global _epochs_seen
    _epochs_seen += 1
    target = os.environ.get(FAULT_VARIABLE)
    if target and _epochs_seen == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def _epoch_recorder(trial_id: str, observer: TrialObserver, epoch_metrics: tuple[str, ...]):
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        """Collects per-epoch metrics and timings, reports each epoch once, and fails a diverging trial."""

        def __init__(self):
            super().__init__()
            self.history: dict[str, list[float]] = {name: [] for name in epoch_metrics}
            self.epochs: list[int] = []
            self.seconds: list[float] = []
            self.parameters: dict[str, int] = {}
            self.diverged_at: int | None = None
            self._started = 0.0

        def on_train_begin(self, logs=None):
            self.parameters = count_parameters(self.model)

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._started)
            logs = logs or {}
            metrics = {name: float(logs[name]) for name in epoch_metrics if name in logs}
            # Epochs are numbered from 1 in every log, table and figure.
            self.epochs.append(epoch + 1)
            for name in epoch_metrics:
                self.history[name].append(metrics.get(name, math.nan))
            observer.epoch_ended(trial_id, epoch + 1, metrics)
            _fault_point()
            if not all(math.isfinite(value) for value in metrics.values()):
                self.diverged_at = epoch + 1
                self.model.stop_training = True

    return EpochRecorder()


WEIGHTS_FILES = ("checkpoint.weights.h5", "build_config.json")


def _trial_reporting_class(base, observer: TrialObserver, objective: str, kind_metrics, weights_seed: int,
                           fetch_weights: Callable[[str, str], None] | None):
    kt = _keras_tuner()

    class TrialReporting(base):
        """Wraps `run_trial` so that each trial is reported as it starts and ends, failed or not."""

        def run_trial(self, trial, *args, **kwargs):
            import keras

            searched = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
            self._recorder = _epoch_recorder(trial.trial_id, observer, kind_metrics.epoch)
            observer.trial_started(trial.trial_id, searched)
            # Each trial's weights come from its own derived seed, so a trial rerun after a crash (or run on
            # another worker) starts exactly as it would have in one uninterrupted process.
            keras.utils.set_random_seed(derive_seed(weights_seed, f"trial-{trial.trial_id}"))
            try:
                parent = trial.hyperparameters.values.get("tuner/trial_id")
                if parent and fetch_weights and not os.path.exists(self._get_checkpoint_fname(parent)):
                    # Hyperband continues a trial that another worker may have run: get its weights first.
                    fetch_weights(parent, self.get_trial_dir(parent))
                outcome = super().run_trial(trial, *args, **kwargs)
                recorder = self._recorder
                if recorder.diverged_at is not None:
                    raise FailedTrial(f"loss became NaN or infinite at epoch {recorder.diverged_at}")
                summary = {
                    **summarize_epochs(recorder.history, recorder.epochs, recorder.seconds, objective,
                                       kind_metrics.score),
                    **{name: float(count) for name, count in recorder.parameters.items()},
                }
            except Exception as exc:  # any failure of one trial is that trial's, recorded, and the search goes on
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                observer.trial_ended(
                    TrialResult(trial.trial_id, searched, "FAILED", history=self._recorder.history,
                                failure_reason=f"{type(exc).__name__}: {reason}")
                )
                raise kt.errors.FailedTrialError(reason) from exc
            trial_dir = self.get_trial_dir(trial.trial_id)
            weights = [os.path.join(trial_dir, name) for name in WEIGHTS_FILES
                       if os.path.exists(os.path.join(trial_dir, name))]
            observer.trial_ended(TrialResult(trial.trial_id, searched, "FINISHED", summary, recorder.history,
                                             weights_files=weights))
            return outcome

        def _build_and_fit_model(self, trial, *args, **kwargs):
            # Added here, after keras-tuner deep-copies the search callbacks, so the recorder is never copied.
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), self._recorder]
            return super()._build_and_fit_model(trial, *args, **kwargs)

    return TrialReporting


def make_tuner(
    architecture: str, config, task: TaskData, observer: TrialObserver, directory: str, resume: bool = False,
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
    kt = _keras_tuner()
    tuner_config = config.tuner
    bases = {
        "random": kt.RandomSearch,
        "bayesian": kt.BayesianOptimization,
        "hyperband": kt.Hyperband,
        "grid": kt.GridSearch,
    }
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
        # keras-tuner 1.4.8's GridSearch forgets its trial order when reloaded (KeyError on resume): build the
        # plain Tuner around an oracle that keeps it.
        bases["grid"] = kt.Tuner
        oracle_arguments = {name: common.pop(name) for name in ("objective", "seed", "max_consecutive_failed_trials",
                                                                  "max_retries_per_trial")}
        common["oracle"] = _persistent_grid_oracle_class()(max_trials=tuner_config.max_trials, **oracle_arguments)
    tuner_class = _trial_reporting_class(
        bases[tuner_config.algorithm], observer, tuner_config.objective, task.output_spec.metrics,
        derive_seed(config.seed, "weights"), fetch_weights,
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
        # keras-tuner saves the oracle inside end_trial before it takes the trial off the running ones, and on
        # reload sends every running trial to be retried: a trial that had ended would run twice.
        oracle = tuner.oracle
        oracle._retry_queue = [trial_id for trial_id in oracle._retry_queue if trial_id not in oracle.end_order]
    return tuner


def _persistent_grid_oracle_class():
    from keras_tuner.src.tuners.gridsearch import GridSearchOracle, LinkedList

    class PersistentGridSearchOracle(GridSearchOracle):
        """GridSearchOracle whose saved state includes the order of tried combinations and the queue of trials
        whose successors are still to be generated, so a reloaded grid search continues where it stopped."""

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


def tune_architecture(
    architecture: str, config, task: TaskData, observer: TrialObserver, directory: str,
    previous: list[TrialResult] | None = None,
) -> ArchitectureOutcome:
    """Search one architecture's hyperparameters and evaluate its best model once on the test split.

    `previous`: the trials an interrupted run of this search already finished (read back from the tracking
    store); the search resumes from its tuner folder and runs only what is left.
    """
    collected = ResultCollector()
    tuner = make_tuner(architecture, config, task, FanOut(observer, collected), directory, resume=previous is not None)
    try:
        _search(tuner, config, task)
    except RuntimeError as exc:
        if "consecutive failures" not in str(exc):
            raise
        save_failed_state(tuner.oracle)
        last = next((t.failure_reason for t in reversed(collected.results) if t.status == "FAILED"), "unknown")
        raise StudyStopped(stopped_message(architecture, config, last)) from None
    fresh = {trial.trial_id for trial in collected.results}
    trials = [*(t for t in previous or [] if t.trial_id not in fresh), *collected.results]
    return select_best(architecture, trials, tuner, lambda trial_id: tuner.get_best_models(1)[0], config, task)


def _search(tuner, config, task: TaskData) -> None:
    tuner.search(
        task.x_train,
        task.y_train,
        validation_data=(task.x_val, task.y_val),
        epochs=config.tuner.epochs,
        batch_size=config.tuner.batch_size,
        callbacks=[_early_stopping(config)],
        verbose=0,
    )


def stopped_message(architecture: str, config, last_reason: str) -> str:
    """The one line a study stopped by consecutive failed trials ends with."""
    return (f"{architecture}: {config.tuner.max_consecutive_failures} trials in a row failed (last: {last_reason}); "
            "the study stops. Each is a FAILED run with its reason; fix the cause and run the same command to resume")


def select_best(architecture: str, trials: list[TrialResult], tuner, load_model: Callable[[str], Any], config,
                task: TaskData) -> ArchitectureOutcome:
    """The architecture's outcome: the oracle's best trial, its model (from `load_model(trial_id)`) scored once
    on the test split, and every trial."""
    trials = sorted(trials, key=lambda trial: trial.trial_id)
    finished = [trial for trial in trials if trial.status == "FINISHED"]
    if not finished:
        return ArchitectureOutcome(architecture, trials, None, {}, {}, {})
    best_trial_id = tuner.oracle.get_best_trials(1)[0].trial_id
    best = next(trial for trial in finished if trial.trial_id == best_trial_id)
    return ArchitectureOutcome(
        architecture=architecture,
        trials=trials,
        best_trial_id=best_trial_id,
        best_hyperparameters=dict(best.hyperparameters),
        best_metrics=dict(best.metrics),
        test_metrics=evaluate_test(load_model(best_trial_id), task, config.tuner.batch_size),
    )


def save_failed_state(oracle, trial_id: str | None = None) -> None:
    """Save the oracle after keras-tuner's consecutive-failure limit, so a resume does not rerun that trial.

    keras-tuner raises before saving the trial that hit the limit and before taking it off the running trials.
    `trial_id` names it when other trials are still running (a distributed search); by default all are taken off.
    """
    for tuner_id, trial in list(oracle.ongoing_trials.items()):
        if trial_id is None or trial.trial_id == trial_id:
            oracle._save_trial(trial)
            oracle.ongoing_trials.pop(tuner_id)
    oracle.save()


def chief_tuner(architecture: str, config, task: TaskData, directory: str, role, index: int, resume: bool):
    """The tuner whose oracle the chief serves for one architecture (it trains nothing itself)."""
    from rnncompare.distributed import keras_tuner_environment

    with keras_tuner_environment(role, index):
        # the chief's tuner trains nothing, so its observer never hears of a trial
        tuner = make_tuner(architecture, config, task, ResultCollector(), directory, resume=resume)
    tuner.oracle.verbose = 0
    tuner.save()
    return tuner


def search_on_worker(architecture: str, config, task: TaskData, observer: TrialObserver, directory: str, role,
                     index: int, fetch_weights: Callable[[str, str], None]) -> None:
    """Run trials of one architecture that the chief's oracle hands out, until it has none left."""
    from rnncompare.distributed import keras_tuner_environment

    with keras_tuner_environment(role, index):
        # A worker keeps no state of its own: a restarted worker gets its unfinished trial back from the chief.
        tuner = make_tuner(architecture, config, task, observer, directory, resume=False,
                           fetch_weights=fetch_weights)
        _pause_when_idle(tuner.oracle)
        _search(tuner, config, task)


def _pause_when_idle(client, seconds: float = 0.5) -> None:
    # keras-tuner's search loop asks again at once when the oracle answers IDLE (Hyperband waiting for a round's
    # results); without a pause, every idle worker keeps the chief busy answering.
    ask = client.create_trial

    def create_trial(tuner_id):
        trial = ask(tuner_id)
        if trial.status == "IDLE":
            time.sleep(seconds)
        return trial

    client.create_trial = create_trial


def load_trial_model(architecture: str, hyperparameters: dict[str, Any], weights_folder: str, config,
                     task: TaskData):
    """A trial's model rebuilt from its hyperparameters, with the best-epoch weights a worker saved."""
    model = build_model({"architecture": architecture, "learning_rate": config.training.learning_rate,
                         **hyperparameters}, task.input_spec, task.output_spec)
    model.load_weights(os.path.join(weights_folder, WEIGHTS_FILES[0]))
    return model


def evaluation_seeds(config) -> list[int]:
    """The seeds every architecture is retrained with after tuning: derived from the study seed, shared by all."""
    return [derive_seed(config.seed, f"evaluation-{index}") for index in range(config.evaluation.seeds)]


def train_seeds(
    architecture: str, hyperparameters: dict[str, Any], config, task: TaskData, observer: TrialObserver,
    done: dict[str, TrialResult] | None = None,
) -> list[TrialResult]:
    """Retrain the selected hyperparameters from scratch once per evaluation seed; test each model once.

    Each seed is reported to `observer` like a trial whose id is the seed. A diverging or raising fit is a FAILED
    result with its reason; the others go on. Seeds in `done` (finished before an interruption) are not rerun.
    """
    import keras

    results = []
    for seed in evaluation_seeds(config):
        seed_id = str(seed)
        if done and seed_id in done:
            results.append(done[seed_id])
            continue
        observer.trial_started(seed_id, dict(hyperparameters))
        recorder = _epoch_recorder(seed_id, observer, task.output_spec.metrics.epoch)
        try:
            keras.utils.set_random_seed(seed)
            model = build_model(
                {"architecture": architecture, "learning_rate": config.training.learning_rate, **hyperparameters},
                task.input_spec, task.output_spec,
            )
            model.fit(task.x_train, task.y_train, validation_data=(task.x_val, task.y_val),
                      epochs=config.tuner.epochs, batch_size=config.tuner.batch_size,
                      callbacks=[_early_stopping(config), recorder], verbose=0)
            if recorder.diverged_at is not None:
                raise FailedTrial(f"loss became NaN or infinite at epoch {recorder.diverged_at}")
            test_metrics = evaluate_test(model, task, config.tuner.batch_size)
        except Exception as exc:  # one seed's failure is recorded; the other seeds still run
            result = TrialResult(seed_id, dict(hyperparameters), "FAILED", history=recorder.history,
                                 failure_reason=f"{type(exc).__name__}: {exc}")
        else:
            metrics = {
                **summarize_epochs(recorder.history, recorder.epochs, recorder.seconds, config.tuner.objective,
                                   task.output_spec.metrics.score),
                **{name: float(count) for name, count in recorder.parameters.items()},
                **test_metrics,
            }
            result = TrialResult(seed_id, dict(hyperparameters), "FINISHED", metrics, recorder.history)
        observer.trial_ended(result)
        results.append(result)
    return results
