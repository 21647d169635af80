"""Keras and keras-tuner imported once per process, quietly, with every patch of `rnncompare.compat` applied
after its library's version is checked."""

from __future__ import annotations

import os

from rnncompare.compat import jax as jax_compat
from rnncompare.compat import keras as keras_compat
from rnncompare.runtime.backend import share_gpu_memory
from rnncompare.runtime.frameworks import import_tensorflow
from rnncompare.runtime.quiet import muted_stderr, quiet_libraries
from rnncompare.runtime.xla import cheaper_cpu_compiles

_imported = False


def import_deep_learning() -> None:
    """Import Keras (on the backend `choose_backend` settled; TensorFlow where none was) and keras-tuner once,
    with file descriptor 2 muted meanwhile (`compat.keras_tuner.load` patches keras-tuner).

    TensorFlow 2.21 prints oneDNN and CUDA notices from C++ before absl logging starts, which no environment
    variable silences; muting the descriptor for the import alone hides them and nothing else.
    """
    global _imported
    if _imported:
        return
    quiet_libraries()
    share_gpu_memory()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # where no study chose one (`choose_backend`)
    cheaper_cpu_compiles()
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        import_tensorflow()
    with muted_stderr():
        import keras
        import keras_tuner  # noqa: F401
    if keras.config.backend() == "jax":
        keras_compat.cheaper_jax_initializers()
        jax_compat.compile_cache_writes_in_background()
    keras_compat.tensorflow_unavailable_to_keras()
    _imported = True
