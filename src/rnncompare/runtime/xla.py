"""XLA's compiler flags and JAX's persistent compilation cache: set through the environment, so the processes a
study starts inherit them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rnncompare.runtime.backend import current_backend, gpu_present

XLA_CPU_OPTIMIZATION_LEVEL = 1  # `cheaper_cpu_compiles`


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
    settings = {
        "jax_compilation_cache_dir": str(Path(folder).expanduser().resolve()),
        # every program, however quick to compile: a model's weight initializers are many small ones
        "jax_persistent_cache_min_compile_time_secs": 0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    for name, value in settings.items():
        os.environ[name.upper()] = str(value)  # read by JAX at its import, here and in the processes started
    if "jax" in sys.modules:
        import jax

        for name, value in settings.items():
            jax.config.update(name, value)
    return True


def cheaper_cpu_compiles() -> None:
    """Under JAX on a machine without a GPU, have XLA's CPU compiler optimize at LLVM level 1 (of 3), unless
    XLA_FLAGS already sets a level; inherited by the processes started. Read when JAX starts its CPU backend.

    A new model's compiles are most of a short trial's time on CPU; level 1 compiles faster with epochs as fast
    and the same losses, level 0 runs epochs 2.5x slower (docs/performance.md). Not beside a GPU: it would
    compile its kernels."""
    flags = os.environ.get("XLA_FLAGS", "")
    if current_backend() != "jax" or gpu_present() or "--xla_backend_optimization_level" in flags:
        return
    add_xla_flag(f"--xla_backend_optimization_level={XLA_CPU_OPTIMIZATION_LEVEL}")


def add_xla_flag(flag: str) -> None:
    """Append `flag` to XLA_FLAGS: read when JAX starts its backends, and inherited by the processes started."""
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
