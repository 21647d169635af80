"""Process-wide quiet: TensorFlow imported only when a command trains, and without its start-up chatter."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import warnings

_imported = False


def quiet_libraries() -> None:
    """Keep library logs (TensorFlow, absl, MLflow's database migrations) out of the terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Against a tracking server MLflow prints two "View run" links for every run it closes (and fetches the run
    # to do it); the progress lines already say where the study is.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name in ("absl", "tensorflow", "alembic", "mlflow", "keras_tuner", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*Skipping variable loading for optimizer.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


@contextlib.contextmanager
def muted_stderr():
    """Mute file descriptor 2 (C++ logging included) for the duration of the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_deep_learning() -> None:
    """Import TensorFlow, Keras and keras-tuner once, with file descriptor 2 muted meanwhile (`kt_compat.load`
    checks and patches keras-tuner).

    TensorFlow 2.21 prints oneDNN and CUDA notices from C++ before absl logging starts, which no environment
    variable silences; muting the descriptor for the import alone hides them and nothing else.
    """
    global _imported
    if _imported:
        return
    quiet_libraries()
    with muted_stderr():
        import tensorflow  # noqa: F401
        import keras  # noqa: F401
        import keras_tuner  # noqa: F401
    tensorflow.get_logger().setLevel(logging.ERROR)
    _imported = True


def thread_limits(threads: int) -> dict[str, str]:
    """The environment that holds a new process's TensorFlow (and OpenMP) to `threads` cores; read when
    TensorFlow starts, so it must be set before the import."""
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(threads)}


def die_with_parent(signal_number: int = signal.SIGKILL) -> None:
    """Ask Linux to send this process `signal_number` when the process that started it dies, however that one
    dies (elsewhere, nothing): a study killed with `kill -9` leaves no worker, seed process or server behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal_number)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
