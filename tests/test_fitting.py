"""The data of every fit: under JAX, batches of one shape whose filler rows count for nothing, 8 steps a call."""

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

from conftest import REPO, clean_env

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


def test_xlas_faster_compiling_kernels_go_to_a_study_whose_compiles_outweigh_its_training():
    def decided(experiment, *overrides):
        config = load_config(REPO / "experiments" / experiment, list(overrides))
        return compiles_outweigh_training(config, load_task(config.task, config.seed))

    # the quickstart: 4 of its 4 widths compiled per architecture; 4 trials and 5 seeds of 30 epochs of digits'
    # 1,257 training sequences of 8 steps train 9 x 30 x 10,056 = 2.7 M sequence steps, below 4 x 1.6 M
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


JAX_COMPILES_SCRIPT = """
import collections, logging, re
import jax
from rnncompare.orchestration.preflight import check_config_and_data
config, task = check_config_and_data({"execution": {"backend": "jax"}, "tuner": {"batch_size": 64}})
from rnncompare.training.fitting import evaluate_test, fit_arguments
from rnncompare.training.models import build_model

compiled = collections.Counter()
class Compiles(logging.Handler):
    def emit(self, record):
        found = re.match(r"Finished XLA compilation of jit\\((\\w+)\\)", record.getMessage())
        if found:
            compiled[found.group(1)] += 1
jax.config.update("jax_log_compiles", True)
logging.getLogger("jax").addHandler(Compiles())
logging.getLogger("jax").propagate = False
model = build_model(%r, task.input_spec, task.output_spec)
model.fit(**fit_arguments(task, 64), epochs=2, verbose=0)
scored = evaluate_test(model, task, 64)
print(task.split_sizes, compiled["train_step"], compiled["test_step"])
plain = model.evaluate(task.x_test, task.y_test, batch_size=64, verbose=0, return_dict=True)
print(scored["test_accuracy"] - plain["accuracy"], scored["test_loss"] - plain["loss"])

import numpy as np
from rnncompare.training import models
from rnncompare.runtime.frameworks import set_random_seed
trained = []
for steps in (models.STEPS_PER_EXECUTION_JAX, 1):
    models.STEPS_PER_EXECUTION_JAX = steps
    set_random_seed(3)
    model = build_model(%r, task.input_spec, task.output_spec)
    model.fit(**fit_arguments(task, 64), epochs=2, verbose=0)
    trained.append((model.steps_per_execution, model.get_weights()))
(many, many_weights), (one, one_weights) = trained
print(many, one, max(float(np.max(np.abs(a - b))) for a, b in zip(many_weights, one_weights)))
"""


@pytest.mark.slow
def test_under_jax_a_fit_compiles_one_training_and_one_evaluation_shape_and_8_steps_a_call_train_as_1():
    completed = subprocess.run(
        [sys.executable, "-c", JAX_COMPILES_SCRIPT % (HYPERPARAMETERS, HYPERPARAMETERS)],
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


COMPILED_AHEAD_SCRIPT = """
import collections, logging, sys
from rnncompare.orchestration.preflight import check_config_and_data
config, task = check_config_and_data({"execution": {"backend": "jax"}, "tuner": {"batch_size": 64}})
from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.runtime.xla import use_compile_cache
assert use_compile_cache(sys.argv[1])
import_deep_learning()
import jax
from rnncompare.training.fitting import fit_arguments, validation_compiled_ahead
from rnncompare.training.models import build_model

seen = collections.Counter()
class CacheLookups(logging.Handler):
    def emit(self, record):
        message = record.getMessage()
        if "jit_test_step" in message:
            found = "hit" if "cache hit" in message else "miss" if "CACHE MISS" in message else None
            if found:
                seen[(record.threadName == "MainThread" and "main" or record.threadName, found)] += 1
logging.getLogger("jax").addHandler(CacheLookups())
logging.getLogger("jax").setLevel(logging.DEBUG)
logging.getLogger("jax").propagate = False

def fit(units, described=lambda arguments: arguments):
    seen.clear()
    model = build_model({**%r, "units": units}, task.input_spec, task.output_spec)
    arguments = fit_arguments(task, 64)
    ahead = validation_compiled_ahead(described(arguments))
    history = model.fit(**arguments, epochs=2, verbose=0, callbacks=[ahead])
    return sorted(seen.items()), len(history.history["val_loss"])

print(fit(8))
# validation data that the model cannot take (steps without features): the step fails to trace ahead
print(fit(10, lambda arguments: {**arguments, "validation_data": [arguments["validation_data"][0][..., 0]]}))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)  # a cache that keeps only slow compiles
print(fit(12))
"""


@pytest.mark.slow
def test_under_jax_the_validation_step_is_compiled_ahead_in_a_thread_and_the_first_validation_loads_it(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", COMPILED_AHEAD_SCRIPT % (HYPERPARAMETERS,), str(tmp_path)],
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
