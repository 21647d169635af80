"""The garbage collector's pace while a study trains."""

from __future__ import annotations

import contextlib
import gc

# Young-generation collections between two full ones while a study trains (`rarer_full_collections`); Python's is 10
FULL_COLLECTION_EVERY = 100


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
