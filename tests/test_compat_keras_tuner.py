import os

import pytest

from rnncompare.compat import keras_tuner as kt_compat
from rnncompare.compat import keras_tuner_distributed as kt_distributed


def test_load_checks_the_installed_keras_tuner_and_silences_its_tracebacks():
    keras_tuner = kt_compat.load()
    from keras_tuner.src import config as keras_tuner_config

    assert keras_tuner.__version__ == kt_compat.VERSION == "1.4.8"
    assert keras_tuner_config.DEBUG is False


def test_oracle_environment_sets_and_restores_keras_tuners_variables(monkeypatch):
    kt_compat.load()
    from keras_tuner.src.distribute import oracle_client

    monkeypatch.setenv(kt_compat.ENV_TUNER_ID, "before")
    monkeypatch.delenv(kt_compat.ENV_ORACLE_IP, raising=False)
    timeout = oracle_client.TIMEOUT
    with kt_distributed.oracle_environment("w1", "127.0.0.1", 8001, timeout_seconds=7):
        assert (
            os.environ[kt_compat.ENV_TUNER_ID],
            os.environ[kt_compat.ENV_ORACLE_IP],
            os.environ[kt_compat.ENV_ORACLE_PORT],
        ) == ("w1", "127.0.0.1", "8001")
        assert oracle_client.TIMEOUT == 7
    assert os.environ[kt_compat.ENV_TUNER_ID] == "before" and kt_compat.ENV_ORACLE_IP not in os.environ
    assert oracle_client.TIMEOUT == timeout


@pytest.mark.parametrize("declares, builds_at_start", [(True, 0), (False, 1)])
def test_a_hypermodel_that_declares_its_space_is_not_built_to_discover_it(tmp_path, declares, builds_at_start):
    # upstream builds a model when the tuner starts, to find the space; under JAX that compiles its initializers
    keras_tuner = kt_compat.load()
    import keras

    builds = []

    class Counted(keras_tuner.HyperModel):
        def build(self, hp):
            builds.append(hp.Int("units", 8, 32, step=8))
            return keras.Sequential([keras.Input((2,)), keras.layers.Dense(builds[-1])])

    if declares:
        Counted.declare_hyperparameters = lambda self, hp: hp.Int("units", 8, 32, step=8)
    tuner = kt_compat.patched_tuner_class(keras_tuner.RandomSearch)(
        hypermodel=Counted(), objective="val_loss", max_trials=1, directory=str(tmp_path), project_name="p"
    )
    assert len(builds) == builds_at_start
    assert [hp.name for hp in tuner.oracle.get_space().space] == ["units"]


@pytest.mark.parametrize("tuner_watches_batches", [False, True])
def test_the_tuner_callback_forwards_batches_only_to_a_tuner_that_watches_them(tmp_path, tuner_watches_batches):
    # a callback with batch hooks makes Keras wait for every step and copy its logs (no asynchronous dispatch)
    keras_tuner = kt_compat.load()
    import keras
    import numpy as np
    from keras.src.utils.python_utils import is_default

    fit_callbacks, batches_seen = [], []

    class Tiny(keras_tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(hp.Int("units", 1, 2))])
            model.compile(loss="mse")
            return model

        def fit(self, hp, model, *args, **kwargs):
            fit_callbacks.extend(kwargs["callbacks"])
            return model.fit(*args, **kwargs)

    base = kt_compat.patched_tuner_class(keras_tuner.RandomSearch)
    if tuner_watches_batches:

        class Watching(base):
            def on_batch_end(self, trial, model, batch, logs=None):
                batches_seen.append(batch)

        base = Watching
    tuner = base(hypermodel=Tiny(), objective="val_loss", max_trials=1, directory=str(tmp_path), project_name="p")
    x = np.zeros((8, 2), "float32")
    tuner.search(x, x[:, :1], validation_data=(x, x[:, :1]), batch_size=4, epochs=2, verbose=0)

    with_batch_hooks = [
        type(callback).__name__
        for callback in fit_callbacks
        if not (is_default(callback.on_batch_begin) and is_default(callback.on_batch_end))
    ]
    assert with_batch_hooks == (["TunerCallback"] if tuner_watches_batches else [])
    assert batches_seen == ([0, 1, 0, 1] if tuner_watches_batches else [])
