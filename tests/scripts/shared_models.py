"""Run by tests/test_tuning.py in a process of its own (see the test that names tests/scripts/shared_models.py)."""

import tempfile

import numpy as np

from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.core.seeds import trial_seed
from rnncompare.core.trials import ResultCollector
from rnncompare.orchestration.preflight import check_config_and_data
from rnncompare.runtime.frameworks import set_random_seed
from rnncompare.training.fitting import fit_arguments
from rnncompare.training.models import CompiledModels, build_model, portable_model
from rnncompare.training.tuning import load_trial_model, make_tuner, model_hyperparameters, select_best

config, task = check_config_and_data(
    {
        "study": "shared",
        "architectures": ["lstm"],
        "search": {
            "units": {"min": 8, "max": 8},
            "dropout": {"min": 0.0, "max": 0.3, "step": 0.1},
            "learning_rate": {"min": 0.001, "max": 0.01, "sampling": "log"},
        },
        "tuner": {"max_trials": 4, "epochs": 2, "batch_size": 128},
        "evaluation": {"seeds": 0},
    },
    ["execution.backend=jax"],
)
import_deep_learning()
import keras

fitted = []


class Models(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        fitted.append(self.model)


collected = ResultCollector()
directory = tempfile.mkdtemp()
tuner = make_tuner("lstm", config, task, collected, directory)
arguments = fit_arguments(task, 128)
tuner.search(**arguments, epochs=2, callbacks=[Models()], verbose=0)
outcome = select_best("lstm", collected.results, tuner, lambda trial_id: tuner.get_best_models(1)[0], config, task)
same = []
for trial in collected.results:
    set_random_seed(trial_seed(config.seed, trial.trial_id))
    hyperparameters = model_hyperparameters("lstm", config, trial.hyperparameters)
    history = (
        build_model(hyperparameters, task.input_spec, task.output_spec)
        .fit(**fit_arguments(task, 128), epochs=2, verbose=0)
        .history
    )
    same.append(history == trial.history)
print("trials:", len(collected.results), "same as new models:", same)
print("models:", len({id(model) for model in fitted}))
best = outcome.selected_model
saved = load_trial_model("lstm", outcome.best_hyperparameters, tuner.get_trial_dir(outcome.best_trial_id), config, task)
print(
    "kept:",
    all(np.array_equal(a, b) for a, b in zip(best.get_weights(), saved.get_weights())),
    [layer.rate for layer in best.layers if "dropout" in layer.name] == [outcome.best_hyperparameters["dropout"]] * 2,
    np.isclose(best.optimizer.learning_rate.numpy(), outcome.best_hyperparameters["learning_rate"]),
)
compiled = CompiledModels(task.input_spec, task.output_spec)
first, _ = compiled.build(dict(architecture="lstm", units=8, layers=1, dropout=0.1, learning_rate=0.001))
second, reused = compiled.build(dict(architecture="lstm", units=8, layers=1, dropout=0.3, learning_rate=0.005))
logged = portable_model(second)
print(
    "handed on:",
    reused and second is first,
    [layer.rate for layer in logged.layers if "dropout" in layer.name],
    round(float(logged.get_compile_config()["optimizer"]["config"]["learning_rate"]), 6),
)
