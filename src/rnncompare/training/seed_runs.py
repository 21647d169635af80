"""After the search: the selected hyperparameters retrained with several seeds, in this process or a spawned one,
and the budget-matched widths. The statistics over seeds are `analysis.seed_statistics`'."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rnncompare.analysis.seed_statistics import representative_seed
from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.compat.keras import build_compiled_state
from rnncompare.config import load_config
from rnncompare.core.errors import FailedTrial
from rnncompare.core.seeds import evaluation_seeds
from rnncompare.core.status import RunStatus
from rnncompare.core.trials import TrialObserver, TrialResult
from rnncompare.runtime.backend import current_backend, gpu_present
from rnncompare.runtime.frameworks import set_random_seed
from rnncompare.runtime.memory import set_rarer_full_collections
from rnncompare.runtime.processes import allowed_cores, core_share, die_with_parent, pin_to_cores, thread_limits
from rnncompare.tasks import TaskData, load_task
from rnncompare.training.draws import SeedDraw, SeedDraws
from rnncompare.training.fitting import (
    early_stopping,
    epoch_recorder,
    evaluate_test,
    failure_reason,
    fit_arguments,
    validation_compiled_ahead,
)
from rnncompare.training.models import CompiledModels, build_model, units_for_budget
from rnncompare.training.tuning import model_hyperparameters
from rnncompare.training.vectorized import NotVectorizable, SeedRun, train_together, vectorize_refusal


def start_seeds(
    architecture: str,
    hyperparameters: dict[str, Any],
    config,
    task: TaskData,
    observer: TrialObserver,
    done: dict[str, TrialResult] | None = None,
    pool: SeedPool | None = None,
    fit_seconds: float | None = None,
    seeds: Sequence[int] | None = None,
) -> PendingSeeds:
    """Retrain the selected hyperparameters from scratch once per evaluation seed; test each model once.

    Each seed is reported to `observer` like a trial whose id is the seed. A diverging or raising fit is a RunStatus.FAILED
    result with its reason; the others go on. Seeds in `done` (finished before an interruption) are not rerun.
    Under JAX the seeds train together as one vectorized program (`vectorized`, `execution.vectorize`), each
    reported once it is over; elsewhere one after the other, sharing one compiled model (`SeedModels`). Without a
    `pool` they train here before this returns; with one, in its processes, and this returns at once.
    `.results()` of what it returns waits for them and gives every seed's result, the representative seed's
    (`representative_seed`) with its trained model; `.note` says why seeds that could be vectorized were not;
    `.add(seeds)` trains more (a sequential study's next round).
    `fit_seconds`: about how long one seed's fit takes alone, where known (`vectorized.vectorize_refusal`).
    `seeds`: the evaluation seeds to run, by default the study's first `evaluation.initial_seeds`.
    """
    pending = PendingSeeds(architecture, hyperparameters, config, task, observer, done or {})
    if seeds is None:
        seeds = evaluation_seeds(config.seed, config.evaluation.initial_seeds)
    pending.add(seeds, pool, fit_seconds)
    return pending


def train_seeds(
    models: SeedModels,
    hyperparameters: dict[str, Any],
    draws: Sequence[SeedDraw],
    config,
    observer: TrialObserver,
    together: bool,
    threads: int | None = None,
) -> tuple[list[SeedRun], str | None]:
    """The seed runs `draws` trained together (`vectorized.train_together`, their epochs reported to `observer` as each seed is
    over) or, where not `together` or the model cannot be vectorized, one after the other as they go; every seed's
    `SeedRun`, and why a model that was to be vectorized was not. `threads`: vmapped programs run side by side
    (by default one per core on a CPU, one on a GPU)."""
    note = None
    if together:
        try:
            if threads is None:
                threads = 1 if gpu_present() else len(allowed_cores())
            runs = train_together(models, hyperparameters, draws, config, threads)
        except NotVectorizable as exc:
            note = f"its steps do not vectorize ({exc}), so its seeds were fitted one by one"
        else:
            for run, draw in zip(runs, draws):
                run.result.tags = draw.tags
                replay(run, hyperparameters, observer)
            return runs, note
    runs = []
    for draw in draws:
        started_at = time.time()
        observer.trial_started(str(draw.seed), dict(hyperparameters))
        result = _train_seed(models, hyperparameters, draw, config, observer)
        result.tags, result.ended_at = draw.tags, time.time()
        observer.trial_ended(result)
        finished = result.status == RunStatus.FINISHED
        runs.append(SeedRun(result, weights=models.model.get_weights() if finished else None, started_at=started_at))
    return runs, note


def replay(run: SeedRun, hyperparameters: dict[str, Any], observer: TrialObserver) -> None:
    """Report a seed run that trained elsewhere (together with others, or in another process) to `observer`, as
    its own fit would have: started, each epoch, ended."""
    observer.trial_started(run.result.trial_id, dict(hyperparameters), run.started_at)
    for epoch, metrics in run.epochs:
        observer.epoch_ended(run.result.trial_id, epoch, metrics)
    observer.trial_ended(run.result)


class PendingSeeds:
    """The seed runs of one model, begun by `start_seeds`."""

    def __init__(
        self,
        architecture,
        hyperparameters,
        config,
        task: TaskData,
        observer: TrialObserver,
        done: dict[str, TrialResult],
    ):
        self.architecture, self.hyperparameters, self.config, self.task = architecture, hyperparameters, config, task
        self.observer, self.done = observer, done
        self.full = model_hyperparameters(architecture, config, hyperparameters)
        self.models: SeedModels | None = None
        self.futures: dict = {}
        self.fresh: dict[str, TrialResult] = {}
        self.trained: dict[str, list] = {}
        self.note: str | None = None
        self.seeds: list[int] = []

    def add(self, seeds: Sequence[int], pool: SeedPool | None = None, fit_seconds: float | None = None) -> None:
        """Train these evaluation seeds too (in `pool`'s processes where given, else here before returning),
        skipping those an interrupted run finished."""
        config, task = self.config, self.task
        added = [seed for seed in seeds if seed not in self.seeds]
        self.seeds += added
        todo = [seed for seed in added if str(seed) not in self.done]
        refusal = vectorize_refusal(config, current_backend(), len(todo), fit_seconds)
        together = refusal is None
        if (
            refusal is not None
            and vectorize_refusal(config, current_backend(), config.evaluation.initial_seeds) is None
        ):
            # the study's start line (`how_seeds_train`) said they would train together: say here why these did not
            self.note = f"fitted one by one: {refusal}"
        if pool is not None:
            self.futures.update(pool.submit(self.architecture, self.hyperparameters, todo, together))
            return
        if self.models is None:
            self.models = SeedModels(self.full, task)
        draws = SeedDraws(config, task)
        runs, note = train_seeds(
            self.models, self.hyperparameters, [draws.draw(seed) for seed in todo], config, self.observer, together
        )
        self.note = note or self.note
        for run in runs:
            self.keep(run)

    def keep(self, run: SeedRun) -> None:
        """Take one seed's result, and its weights where it finished."""
        self.fresh[run.result.trial_id] = run.result
        if run.weights is not None:
            self.trained[run.result.trial_id] = run.weights

    def finished_results(self) -> list[TrialResult]:
        """Every seed's result so far in seed order, waiting for a pool's (no model attached)."""
        if self.futures:
            self.note = SeedPool.collect(self.futures, self.hyperparameters, self.observer, self.keep) or self.note
            self.futures = {}
        return [self.done.get(str(seed)) or self.fresh[str(seed)] for seed in self.seeds]

    def results(self) -> list[TrialResult]:
        """Every seed's result in seed order (waiting for a pool's), the representative one with its model."""
        results = self.finished_results()
        chosen = representative_seed(results, self.task.output_spec.metrics.headline, among=set(self.trained))
        if chosen is not None:
            model = (
                self.models.model
                if self.models is not None
                else build_model(self.full, self.task.input_spec, self.task.output_spec)
            )
            model.set_weights(self.trained[chosen.trial_id])
            chosen.model = model
        return results


class SeedModels:
    """One compiled model for every seed of one set of hyperparameters (`models.CompiledModels`), so its training
    step is traced once. `for_seed(draw)` gives the model as it would be had it been built right after
    ``set_random_seed(draw.init_seed)``, NumPy's generator then set to draw its data order; same seeds, same
    results as a new model each."""

    def __init__(self, hyperparameters: dict[str, Any], task: TaskData):
        self.hyperparameters = hyperparameters
        self.task = task
        self.model = None
        self._compiled = CompiledModels(task.input_spec, task.output_spec)

    def for_seed(self, draw: SeedDraw):
        set_random_seed(draw.init_seed)
        self.model, reused = self._compiled.build(self.hyperparameters)
        if not reused:
            # A model's first fit builds its loss and metrics from a batch it peeks at, which under JAX draws an
            # extra shuffle from NumPy's generator: built here, every seed's fit draws the same, whichever ran
            # first (a resumed study reruns only some seeds).
            build_compiled_state(self.model, self.task.x_train[:1], self.task.y_train[:1])
        if draw.order_seed != draw.init_seed:  # equal, the order goes on from the one seed, as it always did
            np.random.seed(draw.order_seed)
        return self.model


def _train_seed(
    models: SeedModels, hyperparameters: dict[str, Any], draw: SeedDraw, config, observer: TrialObserver
) -> TrialResult:
    seed_id, task = str(draw.seed), draw.task
    recorder = epoch_recorder(seed_id, observer, task.output_spec.metrics.epoch)
    try:
        model = models.for_seed(draw)
        arguments = fit_arguments(task, config.tuner.batch_size)
        model.fit(
            **arguments,
            epochs=config.tuner.epochs,
            callbacks=[early_stopping(config), recorder, validation_compiled_ahead(arguments)],
            verbose=0,
        )
        if recorder.diverged_at is not None:
            raise FailedTrial(f"loss became NaN or infinite at epoch {recorder.diverged_at}")
        test_metrics = evaluate_test(model, task, config.tuner.batch_size)
    except Exception as exc:  # one seed's failure is recorded; the other seeds still run
        return TrialResult(
            seed_id,
            dict(hyperparameters),
            RunStatus.FAILED,
            history=recorder.history,
            failure_reason=failure_reason(exc),
        )
    metrics = {
        **recorder.summary(config.tuner.objective, task.output_spec.metrics.score, config.training.min_delta),
        **test_metrics,
    }
    return TrialResult(seed_id, dict(hyperparameters), RunStatus.FINISHED, metrics, recorder.history)


class SeedPool:
    """Seed runs trained at once: `processes` child processes, each with its share of the cores, its own copy of
    the task, and its own `SeedModels` per set of hyperparameters. The children die with this process."""

    def __init__(self, config, processes: int, threads: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.config = config
        self.processes = processes
        # spawn, not fork: this process holds TensorFlow's threads, which a forked child would inherit broken
        context = multiprocessing.get_context("spawn")
        # each process takes the next share of the cores, as the workers do (the first process the first share)
        started = context.Value("i", 0)
        self.executor = ProcessPoolExecutor(
            processes,
            mp_context=context,
            initializer=_start_seed_process,
            initargs=(config.to_dict(), threads, started),
        )
        self._start_processes()

    def submit(self, architecture: str, hyperparameters: dict[str, Any], seeds: Sequence[int], together: bool) -> dict:
        """Hand `seeds` to the processes, all in one job where they train `together`, else one job each; returns
        their seeds' ids by future, for `collect`."""
        jobs = [list(seeds)] if together and seeds else [[seed] for seed in seeds]
        return {
            self.executor.submit(_seed_job, architecture, hyperparameters, job, together): [str(seed) for seed in job]
            for job in jobs
        }

    def _start_processes(self) -> None:
        """Start every process now (TensorFlow's import, the task's data), not when the first seeds arrive.

        A spawned process imports the caller's main script again unless told not to; a script that calls
        `run_study` without an ``if __name__ == "__main__":`` guard would then start its study again in each.
        The jobs need nothing from it, so the processes are started with the main module's file hidden."""
        import sys

        main = sys.modules["__main__"]
        saved = {name: getattr(main, name) for name in ("__spec__", "__file__") if hasattr(main, name)}
        main.__spec__ = None
        main.__dict__.pop("__file__", None)
        try:
            for _ in range(self.processes):  # each submit starts one more process, up to `processes`
                self.executor.submit(_nothing)
        finally:
            main.__dict__.update(saved)

    @staticmethod
    def collect(
        futures: dict, hyperparameters: dict[str, Any], observer: TrialObserver, keep: Callable[[SeedRun], None]
    ) -> str | None:
        """Wait for `futures`; report each seed to `observer` as its job ends (its epochs replayed) and hand its
        `SeedRun` to `keep`. Returns why seeds to be vectorized were not, where a job said so."""
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        note = None
        for future in as_completed(futures):
            try:
                runs, job_note = future.result()
            except BrokenProcessPool as exc:
                runs, job_note = (
                    [
                        SeedRun(
                            TrialResult(
                                seed_id,
                                dict(hyperparameters),
                                RunStatus.FAILED,
                                failure_reason=f"the seed's process died ({exc})",
                            )
                        )
                        for seed_id in futures[future]
                    ],
                    None,
                )
            note = note or job_note
            for run in runs:
                replay(run, hyperparameters, observer)
                keep(run)
        return note

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


_process_state: dict[str, Any] = {}


def _start_seed_process(config_dict: dict[str, Any], threads: int, started) -> None:
    with started.get_lock():
        index, started.value = started.value, started.value + 1
    pin_to_cores(core_share(index, threads))
    os.environ.update(thread_limits(threads))
    die_with_parent()
    set_rarer_full_collections()
    import_deep_learning()
    _process_state["config"] = config = load_config(config_dict)
    _process_state["task"] = task = load_task(config.task, config.seed)
    _process_state["draws"] = SeedDraws(config, task)
    _process_state["models"] = {}


def _nothing() -> None:
    pass


def _seed_job(architecture: str, hyperparameters: dict[str, Any], seeds: list[int], together: bool):
    config, task, draws = _process_state["config"], _process_state["task"], _process_state["draws"]
    full = model_hyperparameters(architecture, config, hyperparameters)
    models = _process_state["models"].setdefault(repr(sorted(full.items())), SeedModels(full, task))
    epochs = _EpochLog()
    runs, note = train_seeds(models, hyperparameters, [draws.draw(seed) for seed in seeds], config, epochs, together)
    for run in runs:
        run.epochs = run.epochs or epochs.epochs.get(run.result.trial_id, [])
    return runs, note


class _EpochLog:
    """A `TrialObserver` that keeps the fits' epochs, to be replayed to the study's observers."""

    def __init__(self):
        self.epochs: dict[str, list[tuple[int, dict[str, float]]]] = {}

    def trial_started(self, trial_id, hyperparameters, started_at=None):
        pass

    def epoch_ended(self, trial_id, epoch, metrics):
        self.epochs.setdefault(trial_id, []).append((epoch, dict(metrics)))

    def trial_ended(self, result):
        pass


def matched_width(
    architecture: str, hyperparameters: dict[str, Any], target_params: int, config, task: TaskData
) -> tuple[dict[str, Any], int]:
    """`hyperparameters` with the width whose model comes closest to `target_params` parameters, and that count."""
    units, params_total = units_for_budget(
        model_hyperparameters(architecture, config, hyperparameters), target_params, task.input_spec, task.output_spec
    )
    return {**hyperparameters, "units": units}, params_total
