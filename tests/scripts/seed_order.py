"""Run by tests/test_backend.py in a process of its own (see the test that names tests/scripts/seed_order.py)."""

import numpy as np

from rnncompare.orchestration.preflight import check_config_and_data

config, task = check_config_and_data({"execution": {"backend": "jax"}})
from rnncompare.training.draws import SeedDraws
from rnncompare.training.fitting import fit_arguments
from rnncompare.training.seed_runs import SeedModels

hyperparameters = {"architecture": "gru", "units": 8, "dropout": 0.2, "layers": 1, "learning_rate": 0.001}


def fit(model):
    model.fit(**fit_arguments(task, 128), epochs=1, verbose=0)
    return model.get_weights()


draws = SeedDraws(config, task)
after_another = SeedModels(hyperparameters, task)
fit(after_another.for_seed(draws.draw(1)))
second = fit(after_another.for_seed(draws.draw(2)))
first = fit(SeedModels(hyperparameters, task).for_seed(draws.draw(2)))
print(max(float(np.max(np.abs(a - b))) for a, b in zip(first, second)))
