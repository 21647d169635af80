"""The floor a study is measured against: the same `build_model` calls and `fit`s a study made, and nothing else.

Usage: python bare_fits.py PLAN.json, where the plan (written by bench.py from the study's store) holds the
study's config and Keras backend and, per trial, its hyperparameters and epochs. Each fit takes its data as the
study's did (`fitting.fit_arguments`: under JAX, batches of one shape). No tuner, no tracking, no report.
"""

import json
import sys

from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.orchestration.preflight import check_config_and_data
from rnncompare.runtime.frameworks import set_random_seed
from rnncompare.training.fitting import choose_cpu_kernels, fit_arguments
from rnncompare.training.models import build_model


def main(plan_path: str) -> None:
    plan = json.loads(open(plan_path).read())
    config, task = check_config_and_data(plan["config"], [f"execution.backend={plan['backend']}"])
    choose_cpu_kernels(config, task)  # the XLA kernels the study compiled
    import_deep_learning()
    for fit in plan["fits"]:
        set_random_seed(fit["seed"])
        model = build_model(fit["hyperparameters"], task.input_spec, task.output_spec)
        model.fit(**fit_arguments(task, config.tuner.batch_size), epochs=fit["epochs"], verbose=0)


if __name__ == "__main__":
    main(sys.argv[1])
