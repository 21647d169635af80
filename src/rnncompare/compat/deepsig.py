"""deepsig's internals, patched: its ASO test with a faster quantile function put in its module's place for the
call, refusing a deepsig outside the range this was written against."""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Callable, Sequence

from rnncompare.compat.versions import require
from rnncompare.runtime.quiet import hidden_module

SUPPORTED = ">=1.2.8,<1.3"
VERSION = require("deepsig", SUPPORTED, "deepsig")


@contextlib.contextmanager
def _quantile_function(replacement: Callable):
    """deepsig's `aso` and its bootstrap look `get_quantile_function` up in the module `deepsig.aso` at each call
    (the function `deepsig.aso` shadows that module as an attribute of the package): replace it for the block."""
    module = importlib.import_module("deepsig.aso")
    upstream = module.get_quantile_function
    module.get_quantile_function = replacement
    try:
        yield
    finally:
        module.get_quantile_function = upstream


def aso(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float,
    pairs: int,
    seed: int,
    bootstrap: int,
    quantile_function: Callable,
) -> float:
    """deepsig's epsilon_min of A over B, computed with `quantile_function` in place of deepsig's own."""
    with hidden_module("tensorflow"):  # deepsig imports it, if it can, to convert its tensors (we pass lists)
        from deepsig import aso as deepsig_aso

    with _quantile_function(quantile_function), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            deepsig_aso(
                list(a),
                list(b),
                confidence_level=confidence,
                num_comparisons=pairs,
                seed=seed,
                show_progress=False,
                num_jobs=1,
                num_bootstrap_iterations=bootstrap,
            )
        )
