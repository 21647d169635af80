"""The Keras backend of this process: chosen before Keras is imported, and fixed from then on."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys

BACKENDS = ("tensorflow", "jax")


class BackendUnavailable(ValueError):
    """The Keras backend asked for cannot run in this process."""


def keras_backend_in_use() -> str | None:
    """The backend Keras was imported with in this process (it cannot change after), or None before the import."""
    keras = sys.modules.get("keras")
    config = getattr(keras, "config", None)
    return config.backend() if config is not None else None


def current_backend() -> str | None:
    """This process's Keras backend: the one Keras runs on, else the one `choose_backend` settled, else None."""
    return keras_backend_in_use() or os.environ.get("KERAS_BACKEND")


def gpu_present() -> bool:
    """Whether an NVIDIA GPU driver is on this machine, found without importing TensorFlow."""
    return os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi") is not None


def choose_backend(requested: str) -> str:
    """Settle this process's Keras backend before Keras is imported, and return it.

    ``auto`` keeps a backend already in use (Keras imported, or ``KERAS_BACKEND`` set, which is also how a study
    hands its choice to its worker and seed processes); otherwise TensorFlow where an NVIDIA GPU is (Keras runs
    LSTM and GRU on cuDNN's kernels there; under JAX the LSTM only, unmasked: `benchmarks/gpu_check.py`), else JAX
    when installed: on CPU its epochs are 1.5 to 9 times faster, and a new model costs no more than TensorFlow's
    tracing (measured on 2 cores for digits, JapaneseVowels and the adding problem at 100 steps; the README's
    Speed section), so no study shape is faster on TensorFlow there. Raises `BackendUnavailable` when the choice
    cannot run here.
    """
    in_use = keras_backend_in_use()
    chosen = requested
    if requested == "auto":
        chosen = (
            in_use
            or os.environ.get("KERAS_BACKEND")
            or ("jax" if not gpu_present() and importlib.util.find_spec("jax") else "tensorflow")
        )
        if chosen not in BACKENDS:
            raise BackendUnavailable(f"auto found KERAS_BACKEND={chosen}; rnncompare runs on {' or '.join(BACKENDS)}")
    if in_use is not None and in_use != chosen:
        raise BackendUnavailable(
            f"{chosen} asked for, but this process already imported Keras with {in_use} (a "
            f"Keras backend is fixed at its import): use {in_use} or auto, or a new process"
        )
    if chosen == "jax" and importlib.util.find_spec("jax") is None:
        raise BackendUnavailable("jax is not installed here: pip install 'jax[cpu]', or use tensorflow")
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


def share_gpu_memory() -> None:
    """Let the processes of a study (its workers, its seed process) share a GPU: JAX and TensorFlow take GPU memory
    as they need it, instead of JAX's 75% of it and TensorFlow's nearly all of it at start, which leave the next
    process none. Read when they first touch the GPU; inherited by the processes started. A user's setting stays."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
