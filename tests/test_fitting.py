"""The data of every fit: under JAX, batches of one shape whose filler rows count for nothing, 8 steps a call."""

import json
import subprocess
import sys
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from rnncompare.config import load_config
from rnncompare.tasks import InputSpec, OutputSpec, load_task
from rnncompare.training.fitting import (
    ONE_BATCH_VALUES,
    SEQUENCE_STEPS_PER_COMPILE,
    compiles_outweigh_training,
    evaluation_length,
    full_batches,
)
from rnncompare.training.models import build_model

from conftest import REPO, SCRIPTS, clean_env

HYPERPARAMETERS = {"architecture": "gru", "units": 8, "dropout": 0.0, "layers": 1, "learning_rate": 0.01}


def test_full_batches_cover_every_row_once_per_epoch_with_filler_rows_weighted_zero():
    x, y = np.arange(10, dtype="float32").reshape(10, 1, 1), np.arange(10)
    batches = full_batches(x, y, 4)
    orders = []
    for seed in (1, 2, 1):
        np.random.seed(seed)
        batches.on_epoch_begin()
        epoch = [batches[index] for index in range(len(batches))]
        batches.on_epoch_end()
        assert len(epoch) == 3 and all(len(batch_x) == 4 and len(weights) == 4 for batch_x, _, weights in epoch)
        rows = np.concatenate([batch_y for _, batch_y, _ in epoch])
        weights = np.concatenate([weights for _, _, weights in epoch])
        assert sorted(rows[weights == 1]) == list(range(10))
        assert weights.tolist() == [1.0] * 10 + [0.0] * 2  # the filler is at the end of the last batch
        orders.append(rows[:10].tolist())
    assert orders[0] == orders[2] != orders[1]  # each epoch's order is drawn from NumPy's seeded generator


QUICKSTART_0_2 = {
    "study": "quickstart",
    "architectures": ["lstm", "gru", "simple_rnn"],
    "search": {"units": {"min": 16, "max": 64, "step": 16}},
    "tuner": {"max_trials": 4, "epochs": 30},
}


def test_xlas_faster_compiling_kernels_go_to_a_study_whose_compiles_outweigh_its_training():
    def decided(experiment, *overrides):
        source = REPO / "experiments" / experiment if experiment != "quickstart.yaml" else QUICKSTART_0_2
        config = load_config(source, list(overrides))
        return compiles_outweigh_training(config, load_task(config.task, config.seed))

    # the quickstart of 0.2.0: 4 of its 4 widths compiled per architecture; 4 trials and 5 seeds of 30 epochs of
    # digits' 1,257 training sequences of 8 steps train 9 x 30 x 10,056 = 2.7 M sequence steps, below 4 x 1.6 M
    assert SEQUENCE_STEPS_PER_COMPILE == 1_600_000
    assert decided("quickstart.yaml")
    assert decided("quickstart.yaml", "evaluation.seeds=17")  # 21 fits: 6.34 M
    assert not decided("quickstart.yaml", "evaluation.seeds=18")  # 22 fits: 6.64 M
    # a fifth trial compiles no fifth model where the space has 4 widths (23 fits: 6.94 M), and does in one of 8
    assert not decided("quickstart.yaml", "evaluation.seeds=18", "tuner.max_trials=5")
    assert decided(
        "quickstart.yaml", "evaluation.seeds=18", "tuner.max_trials=5", "search.units={min: 8, max: 64, step: 8}"
    )
    assert not decided("memory_length.yaml", "sweep={}", "task.length=10")  # 4.2 M sequence steps per model


def test_validation_and_test_share_one_padded_length_up_to_the_one_batch_limit():
    def splits(validation, test, steps=8, features=8):
        return SimpleNamespace(x_val=np.zeros((validation, steps, features)), x_test=np.zeros((test, steps, features)))

    assert evaluation_length(splits(270, 301)) == 301
    assert evaluation_length(splits(ONE_BATCH_VALUES // 64, 10)) == ONE_BATCH_VALUES // 64
    assert evaluation_length(splits(ONE_BATCH_VALUES // 64 + 1, 10)) is None  # scored in batches of the fit's size


def test_filler_rows_change_no_gradient_and_no_score():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 3, 2)).astype("float32"), rng.integers(0, 3, 10)
    spec = InputSpec(3, 2), OutputSpec("classification", 3, ("a", "b", "c"))

    def model():
        keras.utils.set_random_seed(7)
        return build_model(HYPERPARAMETERS, *spec)

    plain = model()
    plain.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    padded = model()
    batches = full_batches(x, y, 4)
    batches.on_epoch_begin = lambda: setattr(batches, "order", np.arange(12) % 10)  # the plain fit's order
    padded.fit(batches, epochs=2, shuffle=False, verbose=0)
    for plain_weights, padded_weights in zip(plain.get_weights(), padded.get_weights()):
        np.testing.assert_allclose(padded_weights, plain_weights, atol=1e-6)

    filler = np.arange(16) % 10
    weights = (np.arange(16) < 10).astype("float32")
    scored = padded.evaluate(x[filler], y[filler], sample_weight=weights, batch_size=16, verbose=0, return_dict=True)
    unpadded = padded.evaluate(x, y, batch_size=10, verbose=0, return_dict=True)
    assert scored["accuracy"] == unpadded["accuracy"]
    assert scored["loss"] == pytest.approx(unpadded["loss"], abs=1e-6)


JAX_COMPILES_SCRIPT = str(SCRIPTS / "jax_compiles.py")


@pytest.mark.slow
def test_under_jax_a_fit_compiles_one_training_and_one_evaluation_shape_and_8_steps_a_call_train_as_1():
    completed = subprocess.run(
        [sys.executable, JAX_COMPILES_SCRIPT, json.dumps(HYPERPARAMETERS)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    sizes, counts, steps = completed.stdout.strip().splitlines()[-3:]
    # digits: 1257 training rows (19 full batches of 64 and one of 41), 270 validation and 270 test rows
    assert sizes.startswith("{'train': 1257, 'validation': 270, 'test': 270}")
    assert sizes.split("} ")[1] == "1 1"  # unpadded: a second compile of each for the last, partial batch
    accuracy_difference, loss_difference = map(float, counts.split())
    assert accuracy_difference == 0.0 and abs(loss_difference) < 1e-6  # the test split scored in one padded batch
    # 8 training steps per call of the train function: the same weights after 2 epochs as one step per call
    many, one, weight_difference = steps.split()
    assert (many, one) == ("8", "1")
    assert float(weight_difference) < 1e-5


COMPILED_AHEAD_SCRIPT = str(SCRIPTS / "compiled_ahead.py")


@pytest.mark.slow
def test_under_jax_the_validation_step_is_compiled_ahead_in_a_thread_and_the_first_validation_loads_it(tmp_path):
    completed = subprocess.run(
        [sys.executable, COMPILED_AHEAD_SCRIPT, str(tmp_path), json.dumps(HYPERPARAMETERS)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    ahead, untraceable, inert = completed.stdout.strip().splitlines()[-3:]
    # compiled once, by the thread; the main thread's first validation finds Keras's own step in the cache
    assert ahead == "([(('main', 'hit'), 1), (('rnncompare-validation-compile', 'miss'), 1)], 2)"
    # a step that cannot be traced ahead fails nothing: the fit's first validation compiles it
    assert untraceable == "([(('main', 'miss'), 1)], 2)"
    # a cache that would not keep the step: nothing ahead, the first validation compiles it as Keras always does
    assert inert == "([(('main', 'miss'), 1)], 2)"


def test_a_stop_the_user_asked_for_ends_the_fit_at_the_next_epoch_even_if_a_library_swallowed_it():
    # the CLI's Ctrl-C and SIGTERM handlers record the request (runtime.interrupts) before they raise
    from rnncompare.core.trials import TrialObserver
    from rnncompare.runtime.interrupts import clear_stop, request_stop
    from rnncompare.training.fitting import epoch_recorder

    class Quiet(TrialObserver):
        def trial_started(self, trial_id, hyperparameters, started_at=None):
            pass

        def epoch_ended(self, trial_id, epoch, metrics):
            pass

        def trial_ended(self, result):
            pass

    recorder = epoch_recorder("0", Quiet(), ("loss",))
    recorder.on_epoch_begin(0)
    recorder.on_epoch_end(0, {"loss": 1.0})  # nothing asked: the fit goes on
    request_stop(KeyboardInterrupt)
    try:
        recorder.on_epoch_begin(1)
        with pytest.raises(KeyboardInterrupt):
            recorder.on_epoch_end(1, {"loss": 0.9})
    finally:
        clear_stop()
