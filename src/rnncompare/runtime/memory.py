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
    TensorFlow, keras-tuner, MLflow, pandas and scipy: importing them and tracing models start many full
    collections, each slower as the heap grows. Young collections still free most garbage at once; cycles wait
    longer, for a little more peak memory (docs/performance.md)."""
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
