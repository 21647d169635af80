"""Run by tests/test_backend.py in a process of its own (see the test that names tests/scripts/keras_serializes_under_jax.py)."""

import sys

from rnncompare.compat.frameworks import import_deep_learning

import_deep_learning()
import keras

keras.layers.LSTM(4).get_config()  # what logging a model to MLflow calls, in a chief that trained nothing
print(keras.config.backend(), "tensorflow" in sys.modules)
