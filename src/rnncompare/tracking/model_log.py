"""Logging Keras models to MLflow: MLflow's Keras flavour, with a signature and an input example, under the run's
own experiment, and without the checks that would cost a study time and prove nothing (see each)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from rnncompare.compat.mlflow import fluent_tracking, requirements_check_skipped


def _save_keras_model(path: str, **arguments) -> None:
    # mlflow.keras.save_model (MLflow 3.17) writes the input example before it creates the model's folder
    import mlflow.keras

    os.makedirs(path, exist_ok=True)
    arguments.pop("validate_serving_input", None)  # `Model.log`'s own option, which it hands on to the flavour
    with requirements_check_skipped():
        mlflow.keras.save_model(path=path, **arguments)


# MLflow's Keras flavour as `Model.log` calls it, with the folder made first
_KERAS_FLAVOR = SimpleNamespace(__name__="mlflow.keras", save_model=_save_keras_model)


def log_keras_models(client, run_id: str, models: Sequence[tuple[str, Any, str | None]], input_example) -> None:
    """Log each `(name, Keras model, registered name or None)` of `models` to run `run_id` as an MLflow model
    called `name`, with MLflow's Keras flavour, a signature and `input_example`."""
    import mlflow
    from mlflow.models import Model, infer_signature

    experiment_id = client.get_run(run_id).info.experiment_id
    with fluent_tracking(client.tracking_uri, experiment_id):
        for name, keras_model, registered in models:
            # The signature needs the output's type and shape, not values: predicting would compile the model
            # for the example's shape under JAX (a second or so a model).
            output = np.zeros((len(input_example), *keras_model.output_shape[1:]), dtype=keras_model.output.dtype)
            Model.log(
                artifact_path=None,
                name=name,
                flavor=_KERAS_FLAVOR,
                run_id=run_id,
                model=keras_model,
                signature=infer_signature(input_example, output),
                input_example=input_example,
                # given, not inferred: inferring them loads the model again in a subprocess
                pip_requirements=mlflow.keras.get_default_pip_requirements(),
                registered_model_name=registered,
                # MLflow's check loads the saved model and predicts the example (and only warns when that
                # fails), printing Keras progress bars to stdout from a thread of Keras's own under JAX;
                # test_end_to_end loads and predicts the logged models instead
                validate_serving_input=False,
            )
