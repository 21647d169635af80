"""The child processes a study starts on this machine: each worker's and seed process's share of the cores, and
their lifetime (and the loopback tracking server's) tied to the study's.

A child is held to its share by the cores it may run on (its CPU affinity), not by XLA's thread flags, which
cost a JAX process about 40% more CPU time; XLA, TensorFlow and OpenMP size their thread pools by the cores a
process may run on (measurements: docs/performance.md)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal


def allowed_cores() -> list[int]:
    """The cores this process may run on, in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def core_share(index: int, threads: int) -> set[int]:
    """The `index`-th share of `threads` cores among those this process may run on: the shares of `index` 0, 1, ...
    take the cores in turn, wrapping round when they outnumber them."""
    cores = allowed_cores()
    return {cores[(index * threads + offset) % len(cores)] for offset in range(threads)}


def pin_to_cores(cores: set[int]) -> None:
    """Keep this process, and every thread and process it starts from now on, on `cores`. Where that is refused
    (cores taken away meanwhile, a container's CPU set) or not Linux, it runs where it may, unpinned."""
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, cores)


def thread_limits(threads: int) -> dict[str, str]:
    """The environment that sizes a new process's TensorFlow and OpenMP thread pools to `threads`; read when they
    start, so it must be set before the import. Keeps this process's backend choice for the child."""
    limits = {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(threads)}
    if "KERAS_BACKEND" in os.environ:
        limits["KERAS_BACKEND"] = os.environ["KERAS_BACKEND"]
    return limits


def die_with_parent(signal_number: int = signal.SIGKILL) -> None:
    """Ask Linux to send this process `signal_number` when the process that started it dies, however that one
    dies (elsewhere, nothing): a study killed with `kill -9` leaves no worker, seed process or server behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal_number)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
