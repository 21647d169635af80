"""The floor a study is measured against: the same `build_model` calls and `fit`s a study made, and nothing else.

Usage: python bare_fits.py PLAN.json, where the plan (written by bench.py from the study's store) holds the
study's config and, per trial, its hyperparameters and epochs. No tuner, no tracking, no report.
"""

import json
import sys

from rnncompare.preflight import check_config_and_data
from rnncompare.runtime import import_deep_learning


def main(plan_path: str) -> None:
    plan = json.loads(open(plan_path).read())
    import_deep_learning()
    import keras

    from rnncompare.models import build_model

    config, task = check_config_and_data(plan["config"])
    for fit in plan["fits"]:
        keras.utils.set_random_seed(fit["seed"])
        model = build_model(fit["hyperparameters"], task.input_spec, task.output_spec)
        model.fit(task.x_train, task.y_train, validation_data=(task.x_val, task.y_val), epochs=fit["epochs"],
                  batch_size=config.tuner.batch_size, verbose=0)


if __name__ == "__main__":
    main(sys.argv[1])
