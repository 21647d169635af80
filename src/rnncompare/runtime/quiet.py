"""Library chatter kept out of the terminal, and environment variables or modules hidden for a block."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings


@contextlib.contextmanager
def environment_kept(names):
    """Put the environment variables `names` back as they were before the block (set, changed or removed in it)."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def quiet_libraries() -> None:
    """Keep library logs (TensorFlow, absl, MLflow's database migrations) out of the terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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


@contextlib.contextmanager
def hidden_module(module: str | None):
    """Make `module` (unless None or already imported) unimportable while the block runs: for libraries that
    import a framework only if they can (3 s for TensorFlow), where this process has no use for it."""
    hide = module is not None and module not in sys.modules
    if hide:
        sys.modules[module] = None  # type: ignore[assignment]  # the import system's "not importable"
    try:
        yield
    finally:
        if hide:
            del sys.modules[module]
