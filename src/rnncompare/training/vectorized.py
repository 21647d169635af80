"""The seed runs of one model trained together, as one JAX program: `jax.vmap` over stacked weights, optimizer
states, dropout seed states and per-seed batch orders, built on Keras's stateless steps (`model.train_step` and
`model.test_step` of its JAX trainer, which take and return the whole state).

Each seed starts from exactly the state its own fit would (`SeedModels.for_seed`), draws its batch orders from
the NumPy generator its own fit would, and keeps its own early stopping and best-epoch weights; once it stops, its
updates are masked. A seed's epochs therefore follow its separate fit's to within float rounding
(`tests/training/test_vectorized.py` compares their losses). What it records is what a fit records, but for the
time of an epoch: the vectorized epoch's wall time divided by the seeds it trained.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnncompare.core.status import RunStatus
from rnncompare.core.trials import TrialResult
from rnncompare.runtime.backend import gpu_present
from rnncompare.runtime.interrupts import raise_if_stop_requested
from rnncompare.tasks import TaskData
from rnncompare.training.draws import SeedDraw
from rnncompare.training.fitting import (
    epoch_order,
    evaluate_test,
    evaluation_length,
    failure_reason,
    summarize_epochs,
)
from rnncompare.training.models import count_parameters

# On a CPU, seeds trained together (one vmapped program per core) train about 2.2 times as fast as one by one,
# after compiling their program, about 3 s more than the fits' own compiles (2 cores, digits, `make bench`:
# docs/performance.md, "Vectorized seed runs"). `auto` fits the seeds one by one where that compile
# would cost more than it saves: fits of under about 5.5 s in all.
CPU_TOGETHER_SPEEDUP = 2.2
CPU_TOGETHER_COMPILE_SECONDS = 3.0


def vectorize_refusal(config, backend: str, seeds: int, fit_seconds: float | None = None) -> str | None:
    """Why a study's seed runs are fitted one by one rather than together (None where they are vectorized).
    `fit_seconds`: about how long one seed's fit takes alone (as the search's ran), where known; under `auto` on a
    CPU, seeds whose fits are too short to repay compiling them together are fitted one by one."""
    setting = config.execution.vectorize
    if setting is False:
        return "execution.vectorize: false"
    if backend != "jax":
        return f"vectorized seed runs need the JAX backend, and this study runs on {backend}"
    if seeds < 2:
        return "one seed run has nothing to train beside it"
    if fit_seconds is not None and _weighs_fit_time(config):
        saved = seeds * fit_seconds * (1 - 1 / CPU_TOGETHER_SPEEDUP)
        if saved < CPU_TOGETHER_COMPILE_SECONDS:
            return (
                f"{seeds} fits of about {fit_seconds:.1f} s (as the search's ran), too short to repay compiling "
                f"them together on a CPU (execution.vectorize: auto)"
            )
    return None


def how_seeds_train(config, backend: str) -> str:
    """The study's start line on its seed runs: together, together where their fits repay it (`auto` on a CPU:
    each architecture's seeds are decided once its search has timed them), or one by one and why."""
    refusal = vectorize_refusal(config, backend, config.evaluation.initial_seeds)
    if refusal is not None:
        return f"fitted one by one: {refusal}"
    together = "trained together as one program (execution.vectorize)"
    if _weighs_fit_time(config):
        return together + " where their fits are long enough to repay compiling it, else one by one"
    return together


def _weighs_fit_time(config) -> bool:
    return config.execution.vectorize == "auto" and not gpu_present()


@dataclass
class SeedRun:
    """What one seed's part of a vectorized run produced: its result, its epochs as an observer hears them, and
    its best-epoch weights (`model.get_weights()`'s form) where it finished."""

    result: TrialResult
    epochs: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    weights: list | None = None
    started_at: float | None = None  # seconds since the epoch; its result's `ended_at` says when it ended


class NotVectorizable(Exception):
    """The model's steps could not be traced under `jax.vmap` (the reason is the text)."""


def train_together(
    models, hyperparameters: dict[str, Any], draws: Sequence[SeedDraw], config, threads: int = 1
) -> list[SeedRun]:
    """Train the seed runs `draws` of `models` (a `seed_runs.SeedModels`) together; every seed's `SeedRun`, in
    order. Each trains on its own draw's data (`evaluation.vary: split`) where they differ.

    The seeds are split into `threads` groups of equal size (the last filled up with copies that do not count),
    each one vmapped program run in its own thread: XLA's CPU programs for these small models keep little more than
    one core busy, and two run side by side on two cores train about 1.8 times as much (docs/performance.md).
    Raises `NotVectorizable` before any training where the model's steps do not trace under `jax.vmap`."""
    import jax

    started_at = time.time()
    batch_size, epochs, patience = config.tuner.batch_size, config.tuner.epochs, config.training.patience
    task = draws[0].task
    names = task.output_spec.metrics.epoch
    starts, generators = [], []
    for draw in draws:
        model = models.for_seed(draw)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.reset_metrics()
        starts.append(_state(model))
        # Each seed draws its batch orders from NumPy's generator as its own fit would, right after its model.
        generator = np.random.RandomState()
        generator.set_state(np.random.get_state())
        generators.append(generator)
    parameters = count_parameters(model)
    count = len(draws)
    groups = _groups(count, threads, starts)
    programs = _Programs(model, [draw.task for draw in draws], batch_size, fresh_metrics=starts[-1][3])
    programs.check(groups[0])

    stopping = _Stopping(count, names, patience, config.training.min_delta)
    with ThreadPoolExecutor(len(groups), thread_name_prefix="rnncompare-seeds") as executor:
        while stopping.active.any() and len(stopping.seconds) < epochs:
            started = time.perf_counter()
            for group in groups:
                group.orders = np.stack(
                    [
                        epoch_order(generators[index], len(task.x_train), batch_size)
                        if real
                        else np.arange(programs.weights.size) % len(task.x_train)
                        for index, real in zip(group.slots, group.real)
                    ]
                )
            epoch_logs = executor.map(lambda group: programs.run(group, stopping.threshold(), stopping.active), groups)
            stopping.epoch_ended(_merge(list(epoch_logs), groups, count), time.perf_counter() - started)
            raise_if_stop_requested()

    best: dict[int, tuple[list, list]] = {}
    for group in groups:
        kept = jax.tree_util.tree_map(np.asarray, group.best)
        for slot, (index, real) in enumerate(zip(group.slots, group.real)):
            if real:
                best[index] = tuple([value[slot] for value in values] for values in kept)
    runs = [
        _seed_run(model, str(draw.seed), hyperparameters, stopping, index, best[index], parameters, config, draw.task)
        for index, draw in enumerate(draws)
    ]
    ended_at = time.time()
    for run in runs:  # the seeds trained together: each run's time in the store is the program's
        run.started_at, run.result.ended_at = started_at, ended_at
    return runs


class _Stopping:
    """Every seed's epochs and early stopping, as Keras's EarlyStopping on val_loss (min_delta 0, no baseline, the
    best weights restored) and a fit's check for NaN or infinite metrics would decide them."""

    def __init__(self, count: int, names: Sequence[str], patience: int, min_delta: float):
        self.names, self.patience, self.min_delta = names, patience, min_delta
        self.history = [{name: [] for name in names} for _ in range(count)]
        self.seconds: list[float] = []
        self.active = np.ones(count, dtype=bool)
        self.best_loss = np.full(count, np.inf)
        self.wait = np.zeros(count, dtype=int)
        self.failures: dict[int, str] = {}

    def threshold(self) -> np.ndarray:
        """The val_loss below which each seed's next epoch is its best; the program keeps that epoch's weights by
        the same comparison, of the same float32 numbers."""
        return (self.best_loss - self.min_delta).astype("float32")

    def epoch_ended(self, logs: dict[str, np.ndarray], seconds: float) -> None:
        """Record an epoch's `logs` (per seed) for the seeds that trained it, and stop those that are done."""
        self.seconds.append(seconds / int(self.active.sum()))
        epoch = len(self.seconds)
        threshold = self.threshold()
        for index in np.flatnonzero(self.active):
            metrics = {name: float(logs[name][index]) for name in self.names if name in logs}
            for name in self.names:
                self.history[index][name].append(metrics.get(name, math.nan))
            if not all(math.isfinite(value) for value in metrics.values()):
                self.failures[index] = f"FailedTrial: loss became NaN or infinite at epoch {epoch}"
                self.active[index] = False
                continue
            self.wait[index] += 1
            if np.float32(logs["val_loss"][index]) < threshold[index]:
                self.best_loss[index], self.wait[index] = logs["val_loss"][index], 0
            elif self.wait[index] >= self.patience and epoch > 1:
                self.active[index] = False


@dataclass
class _Group:
    """Seeds trained by one vmapped program: their positions among the seeds (`slots`; `real` False for the copies
    that fill up the last group), their stacked state and best weights, and this epoch's batch orders."""

    slots: list[int]
    real: list[bool]
    state: Any
    best: Any = None
    orders: np.ndarray | None = None


def _groups(count: int, threads: int, starts: list) -> list[_Group]:
    import jax

    size = math.ceil(count / max(1, min(threads, count)))
    groups = []
    for first in range(0, count, size):
        slots = list(range(first, min(first + size, count)))
        real = [True] * len(slots) + [False] * (size - len(slots))
        slots += [slots[0]] * (size - len(slots))
        # stacked on the host: stacked by JAX, each weight's shape would be a program to compile
        state = jax.device_put(
            jax.tree_util.tree_map(
                lambda *values: np.stack([np.asarray(v) for v in values]), *[starts[i] for i in slots]
            )
        )
        groups.append(_Group(slots, real, state, best=(state[0], state[1])))
    return groups


def _merge(logs: list[dict], groups: list[_Group], count: int) -> dict[str, np.ndarray]:
    """Each group's logs put back in the seeds' order."""
    merged = {name: np.full(count, np.nan) for name in logs[0]}
    for group_logs, group in zip(logs, groups):
        for slot, (index, real) in enumerate(zip(group.slots, group.real)):
            if real:
                for name, values in group_logs.items():
                    merged[name][index] = values[slot]
    return merged


def _seed_run(model, seed_id, hyperparameters, stopping: _Stopping, index: int, best, parameters, config, task):
    history, seconds, failure = stopping.history[index], stopping.seconds, stopping.failures.get(index)
    epochs_run = len(next(iter(history.values())))
    epochs = [(number + 1, {name: values[number] for name, values in history.items()}) for number in range(epochs_run)]
    if failure is not None:
        return SeedRun(
            TrialResult(seed_id, dict(hyperparameters), RunStatus.FAILED, history=history, failure_reason=failure),
            epochs,
        )
    for variables, values in zip((model.trainable_variables, model.non_trainable_variables), best):
        for variable, value in zip(variables, values):
            variable.assign(value)
    try:
        test_metrics = evaluate_test(model, task, config.tuner.batch_size)
    except Exception as exc:  # one seed's failure is recorded; the others keep theirs
        return SeedRun(
            TrialResult(
                seed_id, dict(hyperparameters), RunStatus.FAILED, history=history, failure_reason=failure_reason(exc)
            ),
            epochs,
        )
    summary = summarize_epochs(
        history,
        list(range(1, epochs_run + 1)),
        seconds[:epochs_run],
        config.tuner.objective,
        task.output_spec.metrics.score,
    )
    metrics = {**summary, **{name: float(count) for name, count in parameters.items()}, **test_metrics}
    return SeedRun(
        TrialResult(seed_id, dict(hyperparameters), RunStatus.FINISHED, metrics, history), epochs, model.get_weights()
    )


def _state(model) -> tuple[list, list, list, list]:
    """The state Keras's JAX trainer passes its steps: trainable, non-trainable, optimizer and metrics values."""
    return tuple(
        [variable.value for variable in variables]
        for variables in (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
    )


class _Programs:
    """The compiled programs of one vectorized run: an epoch of training steps (a `lax.scan` over its batches),
    a validation pass, and the best-weights update, each mapped over the seeds."""

    def __init__(self, model, tasks: list[TaskData], batch_size: int, fresh_metrics: list):
        import jax
        import jax.numpy as jnp

        # each seed's data (the same object for all unless the split varies), of the same sizes
        self.tasks, self.batch_size = tasks, batch_size
        task = tasks[0]
        steps = math.ceil(len(task.x_train) / batch_size)
        self.weights = (np.arange(steps * batch_size) < len(task.x_train)).astype("float32").reshape(steps, batch_size)
        rows = evaluation_length(task) or batch_size
        length = math.ceil(len(task.x_val) / rows) * rows
        picked = np.arange(length) % len(task.x_val)
        self._validation = [
            (
                each.x_val[picked].reshape(-1, rows, *each.x_val.shape[1:]),
                each.y_val[picked].reshape(-1, rows, *each.y_val.shape[1:]),
                (np.arange(length) < len(each.x_val)).astype("float32").reshape(-1, rows),
            )
            for each in tasks
        ]

        def keep(condition, new, old):
            return jax.tree_util.tree_map(lambda n, o: jnp.where(condition, n, o), new, old)

        def scan(step_function, state, data):
            def step(state, batch):
                logs, state = step_function(state, batch)
                return state, logs

            state, logs = jax.lax.scan(step, state, data)
            return jax.tree_util.tree_map(lambda value: value[-1], logs), state

        def seed_epoch(state, best, threshold, x, y, weights, active, fresh_metrics, validation):
            """One seed's epoch and validation, as a fit has them; its state kept where it has stopped, and its
            weights kept as the best where validation loss fell below `threshold`."""
            logs, trained = scan(model.train_step, (*state[:3], fresh_metrics), (x, y, weights))
            # the new state's non-trainable part: Keras's recurrent layers draw from their seed generators even
            # where they apply no dropout, so a fit's validation moves the seed state its next epoch starts from
            validation_logs, (_, non_trainable, _) = scan(
                model.test_step, (trained[0], trained[1], fresh_metrics), validation
            )
            trained = (trained[0], non_trainable, *trained[2:])
            logs.update({f"val_{name}": value for name, value in validation_logs.items()})
            best = keep(active & (logs["val_loss"] < threshold), (trained[0], trained[1]), best)
            return logs, keep(active, trained, state), best

        self._epoch = jax.jit(jax.vmap(seed_epoch, in_axes=(0, 0, 0, 0, 0, None, 0, None, 0)))
        self.fresh_metrics = [np.asarray(value) for value in fresh_metrics]

    def _batches(self, slots: list[int], orders: np.ndarray):
        steps = self.weights.shape[0]
        x = np.stack([self.tasks[index].x_train[order] for index, order in zip(slots, orders)])
        y = np.stack([self.tasks[index].y_train[order] for index, order in zip(slots, orders)])
        return (
            x.reshape(len(orders), steps, self.batch_size, *x.shape[2:]),
            y.reshape(len(orders), steps, self.batch_size, *y.shape[2:]),
        )

    def check(self, group: _Group) -> None:
        """Trace the program, so a model that cannot be vectorized is refused before any training."""
        state, count = group.state, len(group.slots)
        try:
            self._compiled = self._epoch.lower(
                *self._arguments(
                    group.slots,
                    state,
                    state[:2],
                    np.zeros(count, "float32"),
                    np.zeros((count, self.weights.size), int),
                    np.ones(count, bool),
                )
            )
        except Exception as exc:
            raise NotVectorizable(failure_reason(exc)) from exc
        self._compiled = self._compiled.compile()

    def _arguments(self, slots, state, best, best_loss, orders, active):
        validation = tuple(np.stack(arrays) for arrays in zip(*(self._validation[index] for index in slots)))
        return (
            state,
            best,
            best_loss,
            *self._batches(slots, orders),
            self.weights,
            active,
            self.fresh_metrics,
            validation,
        )

    def run(self, group: _Group, threshold: np.ndarray, active: np.ndarray) -> dict[str, np.ndarray]:
        """One epoch and validation of a group's seeds (their state and best weights updated); their logs."""
        training = active[group.slots] & np.asarray(group.real)
        logs, group.state, group.best = self._compiled(
            *self._arguments(group.slots, group.state, group.best, threshold[group.slots], group.orders, training)
        )
        return {name: np.asarray(value, dtype=float) for name, value in logs.items()}
