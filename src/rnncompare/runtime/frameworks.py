"""TensorFlow imported quietly, and Keras's seeding without importing TensorFlow where it is not used."""

from __future__ import annotations

import logging
import os
import sys

from rnncompare.runtime.quiet import hidden_module, muted_stderr, quiet_libraries


def import_tensorflow() -> None:
    """Import TensorFlow quietly: its start-up notices muted, its logger at errors only."""
    quiet_libraries()
    if "tensorflow" in sys.modules:
        return
    # TensorFlow Lite imports JAX, when installed, for a converter nothing here uses: 0.6 s of every TensorFlow
    # process. Under the TensorFlow backend it finds none; a JAX process has imported it already.
    hide_jax = os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"
    with muted_stderr(), hidden_module("jax" if hide_jax else None):
        import tensorflow
        import tensorflow.lite  # while JAX is hidden (Keras imports it lazily otherwise)
    tensorflow.get_logger().setLevel(logging.ERROR)


def set_random_seed(seed: int) -> None:
    """`keras.utils.set_random_seed` (Python's, NumPy's and Keras's generators, and TensorFlow's where Keras runs
    on it), without importing TensorFlow into a process whose Keras runs on another backend: Keras seeds
    TensorFlow wherever it can import it, which costs a JAX process about 2 s for a generator nothing there draws
    from."""
    import keras

    unused = keras.backend.backend() != "tensorflow" and "tensorflow" not in sys.modules
    with hidden_module("tensorflow" if unused else None):  # Keras remembers it as unavailable from then on
        keras.utils.set_random_seed(seed)
