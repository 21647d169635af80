"""JAX's private API, patched or read: each use names the upstream behaviour it works around, and `check()`
refuses a JAX outside the range these were written against."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

from rnncompare.compat.versions import require
from rnncompare.runtime.backend import current_backend, gpu_present
from rnncompare.runtime.xla import add_xla_flag

SUPPORTED = ">=0.10,<0.11"
VERSION = require("jax", SUPPORTED, "jax")


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
    add_xla_flag("--xla_cpu_use_fusion_emitters=false")
    return True


def compile_cache_writes_in_background() -> None:
    """Under JAX, have the main thread hand each compiled program it puts in the persistent compilation cache
    (`use_compile_cache`) to one background thread, which serializes, compresses and writes it while the main
    thread goes on to run it; the writes left are done at the process's exit. Other threads (a validation step
    compiled ahead, `fitting.validation_compiled_ahead`) write as JAX does, before their compile returns.

    The writes take about 2% of a short study's time, and XLA runs a training step with the GIL released. A
    write that fails is a warning, as JAX's own is. JAX 0.10's name,
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
        except Exception as exc:
            program = arguments[1] if len(arguments) > 1 else keywords.get("module_name")
            warnings.warn(
                f"Error writing persistent compilation cache entry for '{program}': {type(exc).__name__}: {exc}",
                stacklevel=1,
            )

    def put_in_background(*arguments, **keywords):
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(RuntimeError):  # past the exit's shutdown: written here instead
                writer.submit(write, *arguments, **keywords)
                return
        write(*arguments, **keywords)

    put_in_background.jax_put = put
    compilation_cache.put_executable_and_time = put_in_background
    atexit.register(writer.shutdown)
