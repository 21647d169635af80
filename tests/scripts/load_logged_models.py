"""Run by tests/test_backend.py in a process of its own (see the test that names tests/scripts/load_logged_models.py)."""

import sys

import mlflow
import numpy as np

mlflow.set_tracking_uri(sys.argv[1])
models = [mlflow.pyfunc.load_model(f"runs:/{run_id}/model") for run_id in sys.argv[2:]]
assert not any(name.startswith("rnncompare") for name in sys.modules), "rnncompare was imported"
from rnncompare.config import load_config
from rnncompare.tasks import load_task

config = load_config("tiny.yaml")
task = load_task(config.task, config.seed)
print(*(np.mean(np.argmax(model.predict(task.x_test), axis=-1) == task.y_test) for model in models))
