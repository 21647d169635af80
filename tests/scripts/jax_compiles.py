"""Run by tests/test_fitting.py in a process of its own (see the test that names tests/scripts/jax_compiles.py)."""

import json
import sys

HYPERPARAMETERS = json.loads(sys.argv[1])
import collections
import logging
import re

import jax

from rnncompare.orchestration.preflight import check_config_and_data

config, task = check_config_and_data({"execution": {"backend": "jax"}, "tuner": {"batch_size": 64}})
from rnncompare.training.fitting import evaluate_test, fit_arguments
from rnncompare.training.models import build_model

compiled = collections.Counter()


class Compiles(logging.Handler):
    def emit(self, record):
        found = re.match(r"Finished XLA compilation of jit\((\w+)\)", record.getMessage())
        if found:
            compiled[found.group(1)] += 1


jax.config.update("jax_log_compiles", True)
logging.getLogger("jax").addHandler(Compiles())
logging.getLogger("jax").propagate = False
model = build_model(HYPERPARAMETERS, task.input_spec, task.output_spec)
model.fit(**fit_arguments(task, 64), epochs=2, verbose=0)
scored = evaluate_test(model, task, 64)
print(task.split_sizes, compiled["train_step"], compiled["test_step"])
plain = model.evaluate(task.x_test, task.y_test, batch_size=64, verbose=0, return_dict=True)
print(scored["test_accuracy"] - plain["accuracy"], scored["test_loss"] - plain["loss"])

import numpy as np

from rnncompare.runtime.frameworks import set_random_seed
from rnncompare.training import models

trained = []
for steps in (models.STEPS_PER_EXECUTION_JAX, 1):
    models.STEPS_PER_EXECUTION_JAX = steps
    set_random_seed(3)
    model = build_model(HYPERPARAMETERS, task.input_spec, task.output_spec)
    model.fit(**fit_arguments(task, 64), epochs=2, verbose=0)
    trained.append((model.steps_per_execution, model.get_weights()))
(many, many_weights), (one, one_weights) = trained
print(many, one, max(float(np.max(np.abs(a - b))) for a, b in zip(many_weights, one_weights)))
