"""Keras's private API under the JAX backend, patched: each patch names the upstream behaviour it works around,
and `check()` refuses a Keras outside the range these were written against."""

from __future__ import annotations

import sys

from rnncompare.compat.versions import require
from rnncompare.runtime.quiet import hidden_module

SUPPORTED = ">=3.15,<3.16"
VERSION = require("keras", SUPPORTED, "keras")


def tensorflow_unavailable_to_keras() -> None:
    """Under a Keras backend other than TensorFlow, have Keras take TensorFlow as not installed, as
    `set_random_seed` leaves it in every process that trains. Keras's serialization (`get_config`, which logging a
    model to MLflow calls) asks whether TensorFlow can be imported, and imports it to find out: 2.5 s, 0.8 GB and
    TensorFlow's start-up notices on the terminal, in a chief whose workers and seed processes do the training."""
    import keras
    from keras.src.utils import module_utils

    lazy = getattr(module_utils, "tensorflow", None)  # Keras's `LazyModule`; where it has moved, nothing to do
    if keras.config.backend() == "tensorflow" or "tensorflow" in sys.modules or lazy is None:
        return
    with hidden_module("tensorflow"):
        _ = lazy.available  # the answer is remembered from now on


# The smallest flat draw `cheaper_jax_initializers` makes: one length covers every weight of a recurrent layer up
# to 128 units (its recurrent kernel is 128 x 512), and drawing it takes about 1.4 ms on a CPU core against about
# 0.2 s to compile the generator for another length.
INITIALIZER_DRAW_MINIMUM = 1 << 16


def cheaper_jax_initializers() -> None:
    """Under JAX, draw the uniform and standard normal numbers of weight initializers as a flat vector of at least
    `INITIALIZER_DRAW_MINIMUM` numbers, a power of two (sliced and shaped on the host), so XLA compiles the random
    generator once for every weight of these models instead of once per weight shape (about 0.2 s a shape on 2
    CPU cores); then `host_side_initializers`. The numbers are the same bits: JAX's threefry draws
    element i of any shape from the key and i alone (`jax_threefry_partitionable`, on by default), which
    `tests/test_backend.py` checks. Draws inside a traced function (dropout in a training step), with another
    mean or spread, or without that threefry setting, go to Keras's own functions. Keras's names, checked here,
    are from Keras 3.15: elsewhere nothing is changed."""
    import jax
    import numpy as np
    from keras.src.backend.jax import random as keras_random

    if not jax.config.jax_threefry_partitionable or not all(
        hasattr(keras_random, name) for name in ("jax_draw_seed", "uniform", "normal", "floatx")
    ):
        return
    if getattr(keras_random.uniform, "flat_draw", False):
        return
    keras_uniform, keras_normal = keras_random.uniform, keras_random.normal

    def flat_draw(draw, shape, key, **arguments):
        size = int(np.prod(shape, dtype=np.int64))
        length = max(INITIALIZER_DRAW_MINIMUM, 1 << max(size - 1, 0).bit_length())
        flat = draw(key, shape=(length,), **arguments)
        if isinstance(flat, jax.core.Tracer):
            return None
        return jax.device_put(np.asarray(flat)[:size].reshape(shape))

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        dtype = dtype or keras_random.floatx()
        key = keras_random.jax_draw_seed(seed)
        if not isinstance(key, jax.core.Tracer):
            drawn = flat_draw(jax.random.uniform, shape, key, dtype=dtype, minval=minval, maxval=maxval)
            if drawn is not None:
                return drawn
        return keras_uniform(shape, minval=minval, maxval=maxval, dtype=dtype, seed=key)

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        dtype = dtype or keras_random.floatx()
        key = keras_random.jax_draw_seed(seed)
        standard = all(isinstance(value, (int, float)) for value in (mean, stddev)) and (mean, stddev) == (0, 1)
        if standard and not isinstance(key, jax.core.Tracer):
            drawn = flat_draw(jax.random.normal, shape, key, dtype=dtype)
            if drawn is not None:
                return drawn
        return keras_normal(shape, mean=mean, stddev=stddev, dtype=dtype, seed=key)

    uniform.flat_draw = normal.flat_draw = True
    uniform.keras_draw, normal.keras_draw = keras_uniform, keras_normal  # for the test that compares them
    keras_random.uniform, keras_random.normal = uniform, normal
    host_side_initializers()


# Keras 3.15's constant initializers that `host_side_initializers` replaces, and the value each fills with
HOST_SIDE_CONSTANTS = {"Zeros": 0, "Ones": 1}


def host_side_initializers() -> None:
    """Under JAX, compute the orthogonal, zeros and ones initializers on the host, as NumPy and SciPy arrays put
    on the device: eagerly, each JAX operation they make is an XLA program compiled for that weight's shape (the
    orthogonal initializer's QR, diagonal, sign, two products and transpose; the constants' broadcasts), about
    0.5 s for every model of new widths on 2 CPU cores. Arrays go to the device with `jax.device_put`, which
    compiles nothing (`jnp.asarray` of a NumPy array compiles an identity program per shape in JAX 0.10). The
    numbers are the same bits: SciPy's float32 QR calls the LAPACK routines JAX's CPU QR calls
    (`tests/test_backend.py` checks every weight of built models). Inside a traced function, or for a dtype NumPy
    or LAPACK lacks, Keras's own code runs. Keras's names, checked here, are from Keras 3.15: elsewhere nothing
    is changed."""
    import jax
    import numpy as np
    import scipy.linalg
    from keras import ops
    from keras.src.backend import standardize_dtype
    from keras.src.initializers import constant_initializers, random_initializers
    from keras.src.random import random as keras_random_ops

    classes = {
        "Orthogonal": getattr(random_initializers, "Orthogonal", None),
        **{name: getattr(constant_initializers, name, None) for name in HOST_SIDE_CONSTANTS},
    }
    if any(cls is None or hasattr(cls.__call__, "keras_call") for cls in classes.values()):
        return
    keras_orthogonal = classes["Orthogonal"].__call__

    def orthogonal(self, shape, dtype=None):
        # Keras 3.15's `Orthogonal.__call__`, with the factorization on the host when the draw is concrete
        if len(shape) < 2 or standardize_dtype(dtype) not in ("float32", "float64"):
            return keras_orthogonal(self, shape, dtype)
        rows, columns = int(np.prod(shape[:-1])), int(shape[-1])
        drawn = keras_random_ops.normal((max(columns, rows), min(columns, rows)), seed=self.seed, dtype=dtype)
        if isinstance(drawn, jax.core.Tracer):
            q, r = ops.qr(drawn)
            q *= ops.sign(ops.diag(r))
            return self.gain * ops.reshape(ops.transpose(q) if rows < columns else q, shape)
        q, r = scipy.linalg.qr(np.asarray(drawn), mode="economic")
        q *= np.sign(np.diag(r))
        return jax.device_put(self.gain * (q.T if rows < columns else q).reshape(shape))

    def constant(value, keras_call):
        def call(self, shape, dtype=None):
            dtype = standardize_dtype(dtype)
            try:
                return jax.device_put(np.full(shape, value, dtype=np.dtype(dtype)))
            except TypeError:  # a dtype NumPy does not name (bfloat16)
                return keras_call(self, shape, dtype)

        return call

    replacements = {
        "Orthogonal": orthogonal,
        **{name: constant(value, classes[name].__call__) for name, value in HOST_SIDE_CONSTANTS.items()},
    }
    for name, call in replacements.items():
        call.keras_call = classes[name].__call__  # for the test that compares them
        classes[name].__call__ = call


def build_compiled_state(model, x, y) -> None:
    """Build a compiled model's loss and metrics from the batch `(x, y)` now, as its first fit would (Keras's
    private `_symbolic_build`, which peeks at a batch and, under JAX, draws a shuffle from NumPy's generator)."""
    model._symbolic_build(data_batch=(x, y))
