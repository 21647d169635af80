import math
import subprocess
import sys

import pytest

from rnncompare.config import load_config
from rnncompare.training.fitting import summarize_epochs
from rnncompare.training.tuning import declare_search_space, trials_per_search

from conftest import SCRIPTS, clean_env

HISTORY = {
    "loss": [1.0, 0.6, 0.4, 0.3, 0.2],
    "val_loss": [1.1, 0.7, 0.5, 0.6, 0.8],
    "accuracy": [0.5, 0.7, 0.8, 0.9, 0.95],
    "val_accuracy": [0.45, 0.65, 0.75, 0.78, 0.74],
}


def test_summary_is_taken_at_the_epoch_of_lowest_validation_loss():
    summary = summarize_epochs(HISTORY, [1, 2, 3, 4, 5], [3.0, 1.0, 1.2, 0.8, 1.0], "val_loss")
    assert summary["best_epoch"] == 3
    assert summary["epochs_run"] == 5
    assert summary["epochs_after_best"] == 2
    assert summary["val_accuracy"] == 0.75
    assert summary["gap_accuracy"] == pytest.approx(0.8 - 0.75)
    assert summary["gap_loss"] == pytest.approx(0.5 - 0.4)
    # the first epoch (graph tracing) is left out of the timing
    assert summary["seconds_per_epoch"] == pytest.approx(1.0)


def test_summary_follows_a_val_accuracy_objective_and_resumed_epoch_numbers():
    summary = summarize_epochs(HISTORY, [3, 4, 5, 6, 7], [1.0] * 5, "val_accuracy")
    assert summary["best_epoch"] == 6
    assert summary["epochs_after_best"] == 1
    assert summary["gap_accuracy"] == pytest.approx(0.9 - 0.78)


def test_overfitting_is_measured_at_the_best_and_at_the_last_epoch():
    summary = summarize_epochs(HISTORY, [1, 2, 3, 4, 5], [1.0] * 5)
    assert summary["gap_accuracy_last"] == pytest.approx(0.95 - 0.74)
    assert summary["gap_loss_last"] == pytest.approx(0.8 - 0.2)
    assert summary["val_loss_rise"] == pytest.approx(0.8 - 0.5)


def test_regression_summary_speaks_mae_and_its_gap_grows_with_overfitting():
    history = {
        "loss": [0.9, 0.5, 0.3],
        "val_loss": [1.0, 0.6, 0.7],
        "mae": [0.8, 0.5, 0.4],
        "val_mae": [0.85, 0.6, 0.65],
    }
    summary = summarize_epochs(history, [1, 2, 3], [1.0] * 3, "val_mae", "mae")
    assert summary["best_epoch"] == 2 and summary["val_mae"] == 0.6 and "accuracy" not in summary
    assert summary["gap_mae"] == pytest.approx(0.6 - 0.5)
    assert summary["gap_mae_last"] == pytest.approx(0.65 - 0.4)


def test_summary_ignores_nan_epochs_when_choosing_the_best():
    history = {key: list(values) for key, values in HISTORY.items()}
    history["val_loss"][0] = math.nan
    assert summarize_epochs(history, [1, 2, 3, 4, 5], [1.0] * 5)["best_epoch"] == 3


def test_search_space_comes_from_the_config():
    import keras_tuner

    config = load_config(
        {},
        [
            "search.units.min=16",
            "search.units.max=48",
            "search.units.step=16",
            "search.dropout.min=0.1",
            "search.dropout.max=0.1",
        ],
    )
    hp = keras_tuner.HyperParameters()
    declare_search_space(hp, config.search)
    units, layers, dropout = (hp._hps[name][0] for name in ("units", "layers", "dropout"))
    assert list(units.values) == [16, 32, 48]
    assert type(layers).__name__ == "Fixed" and layers.value == 1
    assert type(dropout).__name__ == "Fixed" and dropout.value == 0.1


def test_a_grid_search_counts_its_points_not_its_budget():
    # two widths x two dropouts: keras-tuner stops after 4 trials whatever max_trials says
    grid = [
        "tuner.algorithm=grid",
        "search.units.min=8",
        "search.units.max=16",
        "search.units.step=8",
        "search.dropout.max=0.1",
        "search.dropout.step=0.1",
    ]
    assert trials_per_search(load_config({}, [*grid, "tuner.max_trials=10"])) == 4
    assert trials_per_search(load_config({}, [*grid, "tuner.max_trials=3"])) == 3
    # a learning rate without a step is 10 grid values (keras-tuner's rule)
    rate = ["search.learning_rate.min=0.001", "search.learning_rate.max=0.01", "search.learning_rate.sampling=log"]
    assert trials_per_search(load_config({}, [*grid, "tuner.max_trials=100", *rate])) == 40
    assert trials_per_search(load_config({}, ["tuner.algorithm=random", "tuner.max_trials=10"])) == 10


@pytest.mark.slow
def test_diverging_trials_are_recorded_as_failed_and_the_search_goes_on(capfd, tmp_path):
    import numpy as np

    from rnncompare.compat.frameworks import import_deep_learning
    from rnncompare.core.trials import ResultCollector
    from rnncompare.tasks import load_task
    from rnncompare.training.tuning import tune_architecture

    import_deep_learning()
    config = load_config({}, ["tuner.max_trials=2", "tuner.epochs=2"])
    task = load_task(config.task, config.seed)
    task.x_train = task.x_train.copy()
    task.x_train[0, 0, 0] = np.nan  # the loss turns NaN in the first epoch of every trial

    observer = ResultCollector()
    outcome = tune_architecture("gru", config, task, observer, str(tmp_path))
    assert [result.status for result in observer.results] == ["FAILED", "FAILED"]
    assert observer.results[0].failure_reason == "FailedTrial: loss became NaN or infinite at epoch 1"
    assert outcome.best_trial_id is None and outcome.test_metrics == {}
    assert "Traceback" not in capfd.readouterr().err


def test_the_learning_rate_is_fixed_unless_the_search_names_a_range():
    import keras_tuner

    from rnncompare.training.tuning import fixed_hyperparameters

    fixed = load_config({})
    assert fixed_hyperparameters("gru", fixed) == {"architecture": "gru", "learning_rate": 0.001}
    hp = keras_tuner.HyperParameters()
    assert "learning_rate" not in declare_search_space(hp, fixed.search)

    searched = load_config({}, ["search.learning_rate={min: 0.0001, max: 0.01, sampling: log}"])
    assert fixed_hyperparameters("gru", searched) == {"architecture": "gru"}
    hp = keras_tuner.HyperParameters()
    declare_search_space(hp, searched.search)
    rate = hp._hps["learning_rate"][0]
    assert (type(rate).__name__, rate.min_value, rate.max_value, rate.sampling) == ("Float", 0.0001, 0.01, "log")


@pytest.mark.slow
def test_the_selected_model_is_the_trained_one_with_its_best_epoch_weights(tmp_path):
    import numpy as np

    from rnncompare.compat.frameworks import import_deep_learning
    from rnncompare.core.trials import ResultCollector
    from rnncompare.tasks import load_task
    from rnncompare.training.tuning import load_trial_model, tune_architecture

    import_deep_learning()
    config = load_config({}, ["tuner.max_trials=2", "tuner.epochs=3", "tuner.batch_size=128"])
    task = load_task(config.task, config.seed)
    outcome = tune_architecture("gru", config, task, ResultCollector(), str(tmp_path))
    model = outcome.selected_model
    # kept from the search, not built again: its optimizer has taken the fit's steps
    assert int(model.optimizer.iterations.numpy()) == 3 * int(np.ceil(len(task.x_train) / 128))
    (checkpoint,) = tmp_path.glob(f"**/trial_{outcome.best_trial_id}/checkpoint.weights.h5")
    reloaded = load_trial_model("gru", outcome.best_hyperparameters, str(checkpoint.parent), config, task)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), reloaded.get_weights()))
    # and its optimizer's state with them (the best epoch's, which a worker's chief gets)
    assert len(reloaded.optimizer.variables) == len(model.optimizer.variables)
    assert 0 < int(reloaded.optimizer.iterations.numpy()) <= int(model.optimizer.iterations.numpy())


SHARED_MODELS_SCRIPT = str(SCRIPTS / "shared_models.py")


@pytest.mark.slow
def test_under_jax_trials_of_one_width_share_a_compiled_model_and_train_as_new_models():
    # Under JAX a trial's dropout and learning rate are state: trials of one width train one compiled model, each
    # from the initial weights, seed states and optimizer a new model of its own would have, to the same numbers
    # (its batches in the same order).
    completed = subprocess.run(
        [sys.executable, SHARED_MODELS_SCRIPT], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()[-4:]
    assert lines[0] == "trials: 4 same as new models: [True, True, True, True]"
    assert lines[1] == "models: 1"  # the 4 trials' fits, the kept best's included
    # the best trial's model is the one the search selects, with its best epoch's weights, dropout and learning rate
    # (handed on to a later trial, it is built again and its checkpoint loaded)
    assert lines[2] == "kept: True True True"
    # a model handed on is logged with its new trial's dropout and learning rate
    assert lines[3] == "handed on: True [0.3, 0.3] 0.005"
