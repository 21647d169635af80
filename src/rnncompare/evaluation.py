"""After the search: the selected hyperparameters retrained with several seeds, the budget-matched widths, and the
statistics over seeds (the only place they are computed, for the runs and for the report alike)."""

from __future__ import annotations

from typing import Any, Sequence

from rnncompare.errors import FailedTrial
from rnncompare.fitting import early_stopping, epoch_recorder, evaluate_test, failure_reason
from rnncompare.models import build_model, units_for_budget
from rnncompare.seeds import evaluation_seeds
from rnncompare.stats import describe
from rnncompare.tasks import TaskData
from rnncompare.trials import FAILED, FINISHED, TrialObserver, TrialResult
from rnncompare.tuning import model_hyperparameters


def train_seeds(
    architecture: str, hyperparameters: dict[str, Any], config, task: TaskData, observer: TrialObserver,
    done: dict[str, TrialResult] | None = None,
) -> list[TrialResult]:
    """Retrain the selected hyperparameters from scratch once per evaluation seed; test each model once.

    Each seed is reported to `observer` like a trial whose id is the seed. A diverging or raising fit is a FAILED
    result with its reason; the others go on. Seeds in `done` (finished before an interruption) are not rerun.
    The seeds share one compiled model (`SeedModels`); the result of the representative seed
    (`representative_seed`) carries that model with its weights, the others none.
    """
    models = SeedModels(model_hyperparameters(architecture, config, hyperparameters), task)
    results, trained = [], {}
    for seed in evaluation_seeds(config.seed, config.evaluation.seeds):
        seed_id = str(seed)
        if done and seed_id in done:
            results.append(done[seed_id])
            continue
        observer.trial_started(seed_id, dict(hyperparameters))
        result = _train_seed(models, hyperparameters, seed, config, task, observer)
        observer.trial_ended(result)
        results.append(result)
        if result.status == FINISHED:
            trained[seed_id] = models.model.get_weights()
    chosen = representative_seed(results, task.output_spec.metrics.headline, among=set(trained))
    if chosen is not None:
        models.model.set_weights(trained[chosen.trial_id])
        chosen.model = models.model
    return results


class SeedModels:
    """One compiled model for every seed of one set of hyperparameters, so its training step is traced once.

    `for_seed(seed)` gives the model as it would be had it been built right after ``set_random_seed(seed)``: a
    model is built that way (building is cheap; tracing is not), and its initial weights and dropout seed states
    are copied into the shared one, whose optimizer starts over. Same seeds, same results as a new model each.
    """

    def __init__(self, hyperparameters: dict[str, Any], task: TaskData):
        self.hyperparameters = hyperparameters
        self.task = task
        self.model = None
        self._optimizer_start: list = []

    def for_seed(self, seed: int):
        import keras

        keras.utils.set_random_seed(seed)
        fresh = build_model(self.hyperparameters, self.task.input_spec, self.task.output_spec)
        if self.model is None:
            fresh.optimizer.build(fresh.trainable_variables)  # what the first fit would do; its start is kept
            self._optimizer_start = [variable.numpy() for variable in fresh.optimizer.variables]
            self.model = fresh
            return fresh
        for shared, new in zip(self.model.layers, fresh.layers):
            for variable, value in zip(shared.variables, new.variables):  # weights and dropout seed states
                variable.assign(value)
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_start):
            variable.assign(value)
        return self.model


def _train_seed(models: SeedModels, hyperparameters: dict[str, Any], seed: int, config, task: TaskData,
                observer: TrialObserver) -> TrialResult:
    seed_id = str(seed)
    recorder = epoch_recorder(seed_id, observer, task.output_spec.metrics.epoch)
    try:
        model = models.for_seed(seed)
        model.fit(task.x_train, task.y_train, validation_data=(task.x_val, task.y_val),
                  epochs=config.tuner.epochs, batch_size=config.tuner.batch_size,
                  callbacks=[early_stopping(config), recorder], verbose=0)
        if recorder.diverged_at is not None:
            raise FailedTrial(f"loss became NaN or infinite at epoch {recorder.diverged_at}")
        test_metrics = evaluate_test(model, task, config.tuner.batch_size)
    except Exception as exc:  # one seed's failure is recorded; the other seeds still run
        return TrialResult(seed_id, dict(hyperparameters), FAILED, history=recorder.history,
                           failure_reason=failure_reason(exc))
    metrics = {**recorder.summary(config.tuner.objective, task.output_spec.metrics.score), **test_metrics}
    return TrialResult(seed_id, dict(hyperparameters), FINISHED, metrics, recorder.history)


def representative_seed(seed_results: Sequence[TrialResult], headline: str,
                        among: set[str] | None = None) -> TrialResult | None:
    """The finished seed run (of those in `among`, by default any) whose headline score is closest to the seeds'
    mean: the one model that stands for the architecture's typical result. None when there is no such run."""
    finished = [result for result in seed_results if result.status == FINISHED]
    candidates = [result for result in finished if among is None or result.trial_id in among]
    if not candidates:
        return None
    mean = sum(result.metrics[headline] for result in finished) / len(finished)
    return min(candidates, key=lambda result: (abs(result.metrics[headline] - mean), int(result.trial_id)))


def matched_width(architecture: str, hyperparameters: dict[str, Any], target_params: int, config,
                  task: TaskData) -> tuple[dict[str, Any], int]:
    """`hyperparameters` with the width whose model comes closest to `target_params` parameters, and that count."""
    units, params_total = units_for_budget(model_hyperparameters(architecture, config, hyperparameters),
                                           target_params, task.input_spec, task.output_spec)
    return {**hyperparameters, "units": units}, params_total


def seed_spread_metrics(kind_metrics) -> tuple[str, ...]:
    """Metrics whose mean and standard deviation over seeds the architecture run and the report carry."""
    return ("best_epoch", kind_metrics.gap, "gap_loss", "epochs_after_best", "val_loss_rise",
            *(name for name in kind_metrics.test if name != kind_metrics.headline))


def seed_spread(finished_metrics: Sequence[dict[str, float]], kind_metrics) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over the finished seeds of each of `seed_spread_metrics`."""
    spread = {}
    for name in seed_spread_metrics(kind_metrics):
        described = describe([metrics[name] for metrics in finished_metrics])
        spread[name] = {"mean": described["mean"], "std": described["std"]}
    return spread


def seed_statistics(seed_results: Sequence[TrialResult], confidence: float, kind_metrics) -> dict[str, float]:
    """Architecture-level numbers over the seed runs, as the architecture run logs them: the headline test
    metric's spread and confidence interval (e.g. ``test_accuracy_mean``, ``test_accuracy_ci_low``), and the mean
    and spread of the other metrics (``gap_accuracy_seed_mean``, ...)."""
    finished = [result.metrics for result in seed_results if result.status == FINISHED]
    values = {"seeds_finished": float(len(finished)), "seeds_failed": float(len(seed_results) - len(finished))}
    if not finished:
        return values
    headline = describe([m[kind_metrics.headline] for m in finished], confidence)
    values.update({f"{kind_metrics.headline}_{key}": value for key, value in headline.items() if key != "n"})
    for name, spread in seed_spread(finished, kind_metrics).items():
        values[f"{name}_seed_mean"] = spread["mean"]
        values[f"{name}_seed_std"] = spread["std"]
    return values


def seed_scores_summary(seeds: Sequence[dict[str, Any]], headline: str, confidence: float) -> dict[str, Any]:
    """For the report, from seed records: the seeds that finished, how many failed, their headline scores and the
    statistics of those."""
    finished = [seed for seed in seeds if seed["status"] == FINISHED]
    scores = [seed["metrics"][headline] for seed in finished]
    return {"seeds": [seed["seed"] for seed in finished], "failed": len(seeds) - len(finished), "scores": scores,
            "stats": describe(scores, confidence) if scores else None}
