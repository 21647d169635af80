"""The hand-written alternative rnncompare replaces: keras-tuner's RandomSearch per architecture, with MLflow's
Keras autologging into a local SQLite store, over the same data, space and budget as bench.yaml.

Usage: python keras_tuner_autolog.py FOLDER (the tuner folder and the store go there).
"""

import sys
from pathlib import Path

from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.orchestration.preflight import check_config_and_data

BENCH = Path(__file__).with_name("bench.yaml")


def main(folder: str) -> None:
    import_deep_learning()
    import keras
    import keras_tuner as kt
    import mlflow

    config, task = check_config_and_data(BENCH)
    mlflow.set_tracking_uri(f"sqlite:///{Path(folder).resolve() / 'mlflow.db'}")
    mlflow.set_experiment("keras-tuner-autolog")
    mlflow.tensorflow.autolog(log_models=True, silent=True)
    space = config.search

    def build(hp):
        layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[hp.get("architecture")]
        units = hp.Int("units", space.units.min, space.units.max, step=space.units.step)
        dropout = hp.Float("dropout", space.dropout.min, space.dropout.max, step=space.dropout.step)
        inputs = keras.Input(shape=(task.input_spec.steps, task.input_spec.features))
        hidden = keras.layers.Dropout(dropout)(layer(units, dropout=dropout)(inputs))
        outputs = keras.layers.Dense(task.output_spec.classes, activation="softmax")(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(
            optimizer=keras.optimizers.Adam(config.training.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    for architecture in config.architectures:
        hyperparameters = kt.HyperParameters()
        hyperparameters.Fixed("architecture", architecture)
        tuner = kt.RandomSearch(
            build,
            objective="val_loss",
            max_trials=config.tuner.max_trials,
            seed=1,
            hyperparameters=hyperparameters,
            directory=folder,
            project_name=architecture,
            overwrite=True,
        )
        with mlflow.start_run(run_name=architecture):
            tuner.search(
                task.x_train,
                task.y_train,
                validation_data=(task.x_val, task.y_val),
                epochs=config.tuner.epochs,
                batch_size=config.tuner.batch_size,
                verbose=0,
            )


if __name__ == "__main__":
    main(sys.argv[1])
