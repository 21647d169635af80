"""Process-wide settings: the Keras backend, chosen before Keras is imported; TensorFlow and Keras imported only
when a command trains, and without their start-up chatter; XLA's compiler flags and compilation cache; the
garbage collector's pace."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path

_imported = False

BACKENDS = ("tensorflow", "jax")
XLA_CPU_OPTIMIZATION_LEVEL = 1  # `cheaper_cpu_compiles`
# Young-generation collections between two full ones while a study trains (`rarer_full_collections`); Python's is 10
FULL_COLLECTION_EVERY = 100


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
        chosen = (in_use or os.environ.get("KERAS_BACKEND")
                  or ("jax" if not gpu_present() and importlib.util.find_spec("jax") else "tensorflow"))
        if chosen not in BACKENDS:
            raise BackendUnavailable(f"auto found KERAS_BACKEND={chosen}; rnncompare runs on {' or '.join(BACKENDS)}")
    if in_use is not None and in_use != chosen:
        raise BackendUnavailable(f"{chosen} asked for, but this process already imported Keras with {in_use} (a "
                                 f"Keras backend is fixed at its import): use {in_use} or auto, or a new process")
    if chosen == "jax" and importlib.util.find_spec("jax") is None:
        raise BackendUnavailable("jax is not installed here: pip install 'jax[cpu]', or use tensorflow")
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


def use_compile_cache(folder: str | None) -> bool:
    """Under JAX, keep every compiled XLA program in `folder` (JAX's persistent compilation cache), for this
    process and the worker and seed processes it starts; None, or another backend: nothing. Whether it is kept.

    A model whose programs are in the folder loads them instead of compiling them (2-3 s per new model on CPU):
    a study run again, resumed, or swept over a setting that leaves the shapes alone; seed runs in another
    process. JAX keys each program by its whole computation and the compiler's version and flags, so a cached
    one is what the compiler would have produced. The folder a process first compiles with stays its cache.
    """
    if folder is None or current_backend() != "jax":
        return False
    settings = {"jax_compilation_cache_dir": str(Path(folder).expanduser().resolve()),
                # every program, however quick to compile: a model's weight initializers are many small ones
                "jax_persistent_cache_min_compile_time_secs": 0, "jax_persistent_cache_min_entry_size_bytes": 0}
    for name, value in settings.items():
        os.environ[name.upper()] = str(value)  # read by JAX at its import, here and in the processes started
    if "jax" in sys.modules:
        import jax

        for name, value in settings.items():
            jax.config.update(name, value)
    return True


def share_gpu_memory() -> None:
    """Let the processes of a study (its workers, its seed process) share a GPU: JAX and TensorFlow take GPU memory
    as they need it, instead of JAX's 75% of it and TensorFlow's nearly all of it at start, which leave the next
    process none. Read when they first touch the GPU; inherited by the processes started. A user's setting stays."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


def cheaper_cpu_compiles() -> None:
    """Under JAX on a machine without a GPU, have XLA's CPU compiler optimize at LLVM level 1 (of 3), unless
    XLA_FLAGS already sets a level; inherited by the processes started. Read when JAX starts its CPU backend.

    A new model's compiles are most of a short trial's time on CPU. Measured on 2 cores (2026-11-28): the
    benchmark's 16 bare fits 25-27 s against 29-31 s (CPU time 36 s against 42-46 s), an epoch as fast
    (digits LSTM 20 against 22 ms, adding GRU at 100 steps 185 against 195 ms), the losses the same to 6 digits.
    Level 0 compiles faster still but runs an epoch 2.5x slower. Not beside a GPU: it would compile its kernels."""
    flags = os.environ.get("XLA_FLAGS", "")
    if current_backend() != "jax" or gpu_present() or "--xla_backend_optimization_level" in flags:
        return
    _add_xla_flag(f"--xla_backend_optimization_level={XLA_CPU_OPTIMIZATION_LEVEL}")


def _add_xla_flag(flag: str) -> None:
    """Append `flag` to XLA_FLAGS: read when JAX starts its backends, and inherited by the processes started."""
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def jax_started() -> bool:
    """Whether this process's JAX has started its backends (and read XLA_FLAGS)."""
    xla_bridge = sys.modules.get("jax._src.xla_bridge")
    return xla_bridge is not None and xla_bridge.backends_are_initialized()


def cheaper_cpu_fusions() -> bool:
    """Under JAX on a machine without a GPU, before JAX starts, have XLA's CPU compiler emit fused element-wise work
    with its older emitters (a new model compiles about 0.9 s faster, its epochs run slower: for a study whose
    compiles outweigh its training, `fitting.compiles_outweigh_training`), unless XLA_FLAGS says which; inherited
    by the processes started. Returns whether they are in use."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_cpu_use_fusion_emitters" in flags:
        return "--xla_cpu_use_fusion_emitters=false" in flags or "--xla_cpu_use_fusion_emitters=0" in flags
    if current_backend() != "jax" or gpu_present() or jax_started():  # a sweep's later study finds JAX started
        return False
    _add_xla_flag("--xla_cpu_use_fusion_emitters=false")
    return True


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


def import_deep_learning() -> None:
    """Import Keras (on the backend `choose_backend` settled; TensorFlow where none was) and keras-tuner once,
    with file descriptor 2 muted meanwhile (`kt_compat.load` checks and patches keras-tuner).

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
        cheaper_jax_initializers()
        compile_cache_writes_in_background()
    tensorflow_unavailable_to_keras()
    _imported = True


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
        lazy.available  # the answer is remembered from now on


def compile_cache_writes_in_background() -> None:
    """Under JAX, have the main thread hand each compiled program it puts in the persistent compilation cache
    (`use_compile_cache`) to one background thread, which serializes, compresses and writes it while the main
    thread goes on to run it; the writes left are done at the process's exit. Other threads (a validation step
    compiled ahead, `fitting.validation_compiled_ahead`) write as JAX does, before their compile returns.

    The writes were 1.2 s of the benchmark's 60 s study on 2 cores (49 programs, 25 ms each) and XLA runs a
    training step with the GIL released. A write that fails is a warning, as JAX's own is. JAX 0.10's name,
    checked here: elsewhere nothing is changed."""
    import atexit
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from jax._src import compilation_cache

    put = getattr(compilation_cache, "put_executable_and_time", None)
    if put is None or hasattr(put, "jax_put"):
        return
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnncompare-compile-cache")

    def write(*arguments, **keywords):
        try:
            put(*arguments, **keywords)
        except Exception as exc:  # noqa: BLE001
            program = arguments[1] if len(arguments) > 1 else keywords.get("module_name")
            warnings.warn(f"Error writing persistent compilation cache entry for '{program}': "
                          f"{type(exc).__name__}: {exc}", stacklevel=1)

    def put_in_background(*arguments, **keywords):
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(RuntimeError):  # past the exit's shutdown: written here instead
                writer.submit(write, *arguments, **keywords)
                return
        write(*arguments, **keywords)

    put_in_background.jax_put = put
    compilation_cache.put_executable_and_time = put_in_background
    atexit.register(writer.shutdown)


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
            hasattr(keras_random, name) for name in ("jax_draw_seed", "uniform", "normal", "floatx")):
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

    classes = {"Orthogonal": getattr(random_initializers, "Orthogonal", None),
               **{name: getattr(constant_initializers, name, None) for name in HOST_SIDE_CONSTANTS}}
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

    replacements = {"Orthogonal": orthogonal, **{name: constant(value, classes[name].__call__)
                                                 for name, value in HOST_SIDE_CONSTANTS.items()}}
    for name, call in replacements.items():
        call.keras_call = classes[name].__call__  # for the test that compares them
        classes[name].__call__ = call


def set_rarer_full_collections() -> tuple[int, int, int]:
    """Make Python's full garbage collections `FULL_COLLECTION_EVERY` young-generation ones apart (by default 10),
    and return the thresholds it replaced.

    Each full collection walks every object the process holds, and a process that trains holds Keras, JAX or
    TensorFlow, keras-tuner, MLflow, pandas and scipy (650,000 objects after 16 trials): importing them and
    tracing models make so many objects that Python ran nine full collections in the benchmark's study, 1.4 s of
    its 30 s (eight while the libraries were imported, 0.1 to 0.3 s each as the heap grew). Ten times rarer, one
    ran (0.3 s), and the study took 28.0-29.6 s against 30.2-32.1 s. Young collections still free most garbage at
    once; the rest (cycles that outlive two of them) waits longer: peak memory 1.07 GB against 1.00 GB in that
    study, the same (2.79 against 2.78 GB) in one of 60 trials, where full collections still run."""
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], max(before[2], FULL_COLLECTION_EVERY))
    return before


@contextlib.contextmanager
def rarer_full_collections():
    """`set_rarer_full_collections` for the block, then the caller's thresholds again (a notebook's, say)."""
    before = set_rarer_full_collections()
    try:
        yield
    finally:
        gc.set_threshold(*before)


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
        import tensorflow.lite  # noqa: F401  # while JAX is hidden (Keras imports it lazily otherwise)
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
