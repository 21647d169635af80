"""One fit, observed: per-epoch history and timing, the summary of a fit, and the one test scoring.

Shared by the search (`tuning`) and the seed runs (`seed_runs`), so a trial and a seed run are measured the same
way. Keras is imported only when a fit happens.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from rnncompare.compat.jax import cheaper_cpu_fusions
from rnncompare.core.metrics import OBJECTIVE_DIRECTIONS, score_higher_is_better
from rnncompare.core.trials import TrialObserver
from rnncompare.runtime.interrupts import raise_if_stop_requested
from rnncompare.tasks import TaskData
from rnncompare.training.models import count_parameters

# The most input values (samples x steps x features) scored in one batch under JAX; a larger split is scored in
# batches of the fit's size (and pays a compile for its last, partial batch).
ONE_BATCH_VALUES = 1 << 22
# Under JAX on CPU, XLA's older kernels for fused element-wise work compile a new model's steps about 0.9 s faster
# and train about 5.5e-7 s slower per sequence step of a batch row: they repay below this many sequence steps
# trained per model compiled (`compiles_outweigh_training`; measurements in docs/performance.md).
SEQUENCE_STEPS_PER_COMPILE = 1_600_000


def compiles_outweigh_training(config, task: TaskData) -> bool:
    """Whether a study's new models cost more to compile than its fits cost to train, in the measure that decides
    XLA's CPU kernels (`compat.jax.cheaper_cpu_fusions`): the sequence steps an architecture trains at most (its trials
    and seed runs, every epoch) against the models it compiles at most (a trial's width is its model: the dropout
    and learning rate are not compiled in).

    Per model: the benchmark study 0.2 M, the quickstart 0.7 M, sunspots 1.0 M; `memory_length`'s adding problem
    4.2 M at length 10 and 42 M at length 100.
    """
    search, tuner = config.search, config.tuner
    widths = _choices(search.units) * _choices(search.layers)
    models = min(tuner.max_trials, widths)
    fits = tuner.max_trials + config.evaluation.initial_seeds
    steps_trained = fits * tuner.epochs * task.split_sizes["train"] * task.input_spec.steps
    return steps_trained < models * SEQUENCE_STEPS_PER_COMPILE


def choose_cpu_kernels(config, task: TaskData) -> bool:
    """Before JAX starts: XLA's faster-compiling CPU kernels for a study whose compiles outweigh its training
    (`compiles_outweigh_training`, `compat.jax.cheaper_cpu_fusions`). Returns whether they are in use."""
    return compiles_outweigh_training(config, task) and cheaper_cpu_fusions()


def _choices(values) -> int:
    return (values.max - values.min) // values.step + 1


def early_stopping(config):
    """Early stopping on validation loss with the best weights restored, as every fit here uses."""
    import keras

    return keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=config.training.patience,
        min_delta=config.training.min_delta,
        restore_best_weights=True,
    )


def epoch_recorder(trial_id: str, observer: TrialObserver, epoch_metrics: tuple[str, ...]):
    """A Keras callback that collects per-epoch metrics and timings, reports each epoch to `observer` once, and
    stops a fit whose metrics become NaN or infinite (`diverged_at`)."""
    import keras

    class EpochRecorder(keras.callbacks.Callback):
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
            raise_if_stop_requested()  # a Ctrl-C or SIGTERM that a library turned into something else
            if not all(math.isfinite(value) for value in metrics.values()):
                self.diverged_at = epoch + 1
                self.model.stop_training = True

        def summary(self, objective: str, score: str, min_delta: float = 0.0) -> dict[str, float]:
            """`summarize_epochs` of this fit, with the model's parameter counts."""
            return {
                **summarize_epochs(self.history, self.epochs, self.seconds, objective, score, min_delta),
                **{name: float(count) for name, count in self.parameters.items()},
            }

    return EpochRecorder()


def validation_compiled_ahead(arguments: dict):
    """A Keras callback for a fit with `arguments` (`fit_arguments`'s) that, under JAX with the persistent
    compilation cache on as a study sets it (`runtime.xla.use_compile_cache`), compiles a new model's validation step
    in a background thread as the fit starts, while the main thread compiles its training step; the first
    validation waits for that thread and loads the step from the cache instead of compiling it.

    A new model's compiles are most of a short trial on CPU, the validation step about a quarter of them, and XLA
    compiles with the GIL released: the benchmark's 16 fits, alternated with and without it on 2 cores, took 0.13
    to 0.29 s less on average. The step is traced in the main thread (the first validation traces it again, about 0.1 s)
    and compiled in the other. It is the program Keras 3.15 compiles (`model.test_step` jitted with
    its state donated, state and data as its JAX trainer passes them), so the cache entry is the same;
    `tests/test_fitting.py` checks that the first validation finds it. Elsewhere (TensorFlow, no cache, a model
    whose step is compiled already, a distribution, eager runs) it does nothing.
    """
    import keras

    rows = arguments.get("validation_batch_size") or arguments.get("batch_size")
    first_batch = [
        ((min(rows, len(array)), *array.shape[1:]), array.dtype.name) for array in arguments["validation_data"]
    ]

    class ValidationCompiledAhead(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self._thread: threading.Thread | None = None

        def on_train_begin(self, logs=None):
            if not _compiles_ahead(self.model):
                return
            import jax

            model = self.model
            state = tuple(
                [jax.ShapeDtypeStruct(variable.shape, variable.dtype) for variable in variables]
                for variables in (model.trainable_variables, model.non_trainable_variables, model.metrics_variables)
            )
            data = tuple(jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in first_batch)

            # Traced here, in the main thread: Keras's layers keep per-call state (an RNN's dropout masks), so a
            # model traced in two threads at once can mix their shapes. The compile touches no Keras object.
            # Where either fails, the first validation compiles the step as it always does.
            try:
                lowered = jax.jit(model.test_step, donate_argnums=0).lower(state, data)
            except Exception:
                return

            def compile_step():
                try:
                    lowered.compile()
                except Exception:
                    pass

            self._thread = threading.Thread(target=compile_step, name="rnncompare-validation-compile", daemon=True)
            self._thread.start()

        def on_test_begin(self, logs=None):
            self._join()

        def on_train_end(self, logs=None):
            self._join()

        def _join(self):
            if self._thread is not None:
                self._thread.join()
                self._thread = None

    return ValidationCompiledAhead()


def _compiles_ahead(model) -> bool:
    import keras

    if keras.config.backend() != "jax" or model.test_function is not None or model.run_eagerly:
        return False
    import jax

    return (
        bool(model.jit_compile)
        and keras.distribution.distribution() is None
        and not keras.config.is_nnx_enabled()
        and bool(jax.config.jax_compilation_cache_dir)
        and jax.config.jax_persistent_cache_min_compile_time_secs == 0
    )


def summarize_epochs(
    history: dict[str, list[float]],
    epochs: list[int],
    seconds: list[float],
    objective: str = "val_loss",
    score: str = "accuracy",
    min_delta: float = 0.0,
) -> dict[str, float]:
    """Summary metrics of one fit from its per-epoch history.

    The best epoch is the one the objective picks (lowest val_loss, or best validation score): the epoch whose
    weights the tuner keeps. For val_loss it is the epoch early stopping restores: the last that lowered
    val_loss by more than `min_delta` (with 0, the lowest). The gaps are positive when a model overfits: ``gap_loss`` = validation minus train
    loss; ``gap_accuracy`` = train minus validation accuracy (``gap_mae`` = validation minus train MAE). They are
    measured at the best epoch and, with the suffix ``_last``, at the last one. ``val_loss_rise`` is how far
    validation loss climbed from its minimum by the last epoch. ``seconds_per_epoch`` leaves out the first epoch
    when there are others, since it includes graph tracing.
    """
    scores = np.asarray(history[objective], dtype=float)
    best_index = int(np.nanargmin(scores) if OBJECTIVE_DIRECTIONS[objective] == "min" else np.nanargmax(scores))
    if objective == "val_loss" and min_delta > 0:
        best_index = restored_epoch_index(scores, min_delta)
    last_index = len(epochs) - 1
    # train minus validation for a score where higher is better (accuracy), the reverse otherwise (MAE)
    sign = 1.0 if score_higher_is_better(score) else -1.0

    def gaps(index: int) -> tuple[float, float]:
        return (
            float(history["val_loss"][index] - history["loss"][index]),
            float(sign * (history[score][index] - history[f"val_{score}"][index])),
        )

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


def restored_epoch_index(val_loss: np.ndarray, min_delta: float) -> int:
    """The epoch Keras's EarlyStopping on val_loss restores: the first, then each that lowers the best by more
    than `min_delta`."""
    best_index, best = 0, math.inf
    for index, value in enumerate(val_loss):
        if value < best - min_delta:
            best_index, best = index, value
    return best_index


# Under JAX every new array shape is a new XLA compile: about 0.4 to 0.8 s for a small recurrent model on CPU,
# against 0.01 s for an epoch of digits; and Keras's last, partial batch of each pass is such a shape. So under
# JAX a fit sees one training shape (its last batch filled up with rows of weight zero) and one evaluation shape
# (the validation and test splits padded with weight-zero rows to one length, each scored in one batch where
# they are small enough: `ONE_BATCH_VALUES`). Models are compiled with the "mean_with_sample_weight" loss
# reduction and weighted metrics (`models.build_model`), so those rows change no gradient and no validation or
# test number. One logged number differs from an unpadded fit: the training loss's epoch mean, which weighs the
# filled-up batch as a full one. Under TensorFlow (which traces shapes loosely) fits take the arrays as they are.


def _jax_in_use() -> bool:
    import keras

    return keras.backend.backend() == "jax"


def _padded(x: np.ndarray, y: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`x` and `y` followed by copies of their first rows up to `length` rows, and weights 1 then 0."""
    rows = np.arange(length) % len(x)
    weights = (np.arange(length) < len(x)).astype("float32")
    return x[rows], y[rows], weights


def evaluation_length(task: TaskData) -> int | None:
    """The one length to which the validation and test splits are padded and scored in one batch under JAX; None
    where they are too large for one batch (scored in batches of the fit's size)."""
    length = max(len(task.x_val), len(task.x_test))
    values_per_sample = int(np.prod(task.x_val.shape[1:]))
    return length if length * values_per_sample <= ONE_BATCH_VALUES else None


def full_batches(x: np.ndarray, y: np.ndarray, batch_size: int):
    """A `keras.utils.PyDataset` of `x`, `y` in shuffled batches of exactly `batch_size` rows, the last filled up
    with weight-zero rows; each epoch's order is drawn from NumPy's generator at the epoch's start."""
    import keras

    class FullBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.steps = math.ceil(len(x) / batch_size)
            self.weights = (np.arange(self.steps * batch_size) < len(x)).astype("float32")
            self.order: np.ndarray | None = None

        def __len__(self):
            return self.steps

        def on_epoch_begin(self):
            # Drawn here, after the trial's or seed's seed is set, never carried over from an earlier fit.
            self.order = epoch_order(np.random, len(x), batch_size)

        def on_epoch_end(self):
            self.order = None

        def __getitem__(self, index):
            # Keras peeks at the first batch for its shapes before the first epoch begins: any rows do.
            order = self.order if self.order is not None else np.arange(len(self.weights)) % len(x)
            rows = slice(index * batch_size, (index + 1) * batch_size)
            return x[order[rows]], y[order[rows]], self.weights[rows]

    return FullBatches()


def epoch_order(generator, rows: int, batch_size: int) -> np.ndarray:
    """One epoch's order of `rows` training rows in batches of exactly `batch_size`, drawn from `generator` (NumPy's
    global one or a `RandomState`): a permutation, then its first rows again to fill the last batch."""
    shuffled = generator.permutation(rows)
    return np.concatenate([shuffled, shuffled[: math.ceil(rows / batch_size) * batch_size - rows]])


def draw_as_a_first_fit(arguments: dict) -> None:
    """Draw from NumPy's generator what a new model's first fit with `arguments` (`fit_arguments`'s) draws before
    its first epoch, for a fit of a model that is not new (`models.CompiledModels`), so that its batches come in
    the order a new model's would: under JAX, Keras builds a new model's loss and metrics from a batch it peeks at,
    and the peek starts an epoch of `full_batches`, which draws an order. A built model does not peek."""
    batches = arguments["x"]
    if hasattr(batches, "on_epoch_begin"):
        batches.on_epoch_begin()
        batches.on_epoch_end()


def fit_arguments(task: TaskData, batch_size: int) -> dict:
    """The data arguments of every `model.fit` (and `tuner.search`) here: training and validation splits."""
    if not _jax_in_use():
        return dict(x=task.x_train, y=task.y_train, validation_data=(task.x_val, task.y_val), batch_size=batch_size)
    length = evaluation_length(task)
    validation = (
        (_padded(task.x_val, task.y_val, length), length)
        if length is not None
        else ((task.x_val, task.y_val), batch_size)
    )
    return dict(
        x=full_batches(task.x_train, task.y_train, batch_size),
        shuffle=False,
        validation_data=validation[0],
        validation_batch_size=validation[1],
    )


def failure_reason(exc: BaseException) -> str:
    """The one line a failed trial or seed run records: the exception's type and the last line of its text."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[-1] if text else type(exc).__name__}"


def evaluate_test(model, task: TaskData, batch_size: int) -> dict[str, float]:
    """Score a trained model once on the test split: loss and accuracy plus macro F1, or MSE and MAE."""
    length = evaluation_length(task) if _jax_in_use() else None
    if length is None:
        (x, y, weights), batch = (task.x_test, task.y_test, None), batch_size
    else:
        (x, y, weights), batch = _padded(task.x_test, task.y_test, length), length
    results = model.evaluate(x, y, sample_weight=weights, batch_size=batch, verbose=0, return_dict=True)
    if task.kind == "regression":
        return {
            "test_loss": float(results["loss"]),
            "test_mse": float(results["loss"]),
            "test_mae": float(results["mae"]),
        }
    from sklearn.metrics import f1_score

    predicted = np.argmax(model.predict(x, batch_size=batch, verbose=0)[: len(task.x_test)], axis=-1)
    return {
        "test_loss": float(results["loss"]),
        "test_accuracy": float(results["accuracy"]),
        "test_f1_macro": float(
            f1_score(
                task.y_test, predicted, average="macro", labels=np.arange(task.output_spec.classes), zero_division=0
            )
        ),
    }
