"""Run by tests/test_backend.py in a process of its own (see the test that names tests/scripts/flat_draw.py)."""

import jax
import numpy as np

from rnncompare.orchestration.preflight import check_config_and_data

config, task = check_config_and_data({"execution": {"backend": "jax"}})
from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.runtime.frameworks import set_random_seed

import_deep_learning()
from keras.src.backend.jax import random as keras_random
from keras.src.initializers import Ones, Orthogonal, Zeros

from rnncompare.training.models import build_model

patched = keras_random.uniform, keras_random.normal
assert all(getattr(draw, "flat_draw", False) for draw in patched), "not installed"
host_side = Orthogonal, Zeros, Ones
assert all(hasattr(cls.__call__, "keras_call") for cls in host_side), "not installed"


def weights(architecture, units):
    set_random_seed(7)
    model = build_model(
        {"architecture": architecture, "units": units, "dropout": 0.2, "layers": 2, "learning_rate": 0.001},
        task.input_spec,
        task.output_spec,
    )
    return model.get_weights()


models = [(name, units) for name in ("lstm", "gru", "simple_rnn") for units in (5, 16, 48)]
flat = [weights(*model) for model in models]
key = jax.random.PRNGKey(3)


def sample_draws():
    return [
        keras_random.uniform((33, 7), -0.5, 0.5, seed=key),
        keras_random.normal((129,), seed=key),
        keras_random.normal((4, 4), 1.0, 2.0, seed=key),
        jax.jit(lambda k: keras_random.uniform((9, 3), seed=k))(key),
        Orthogonal(gain=1.5, seed=5)((6, 3, 20)),
        Orthogonal(seed=5)((40, 12)),
        Orthogonal(seed=5)((1, 9)),
        Zeros()((3, 5), dtype="int32"),
        Ones()((4,)),
        Zeros()((2, 2), dtype="bfloat16"),
        jax.jit(lambda: Orthogonal(seed=5)((8, 24)))(),
    ]


draws = sample_draws()
keras_random.uniform, keras_random.normal = (draw.keras_draw for draw in patched)
for cls in host_side:
    cls.__call__ = cls.__call__.keras_call
assert all(all(np.array_equal(a, b) for a, b in zip(mine, weights(*model))) for mine, model in zip(flat, models))
keras_draws = sample_draws()
assert all(np.array_equal(a, b) and a.shape == b.shape and a.dtype == b.dtype for a, b in zip(draws, keras_draws))
print("same", len(flat), len(draws))
