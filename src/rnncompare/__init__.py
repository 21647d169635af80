"""rnncompare: fair, reproducible comparisons of Keras recurrent architectures (LSTM, GRU, SimpleRNN).

From Python::

    import rnncompare
    result = rnncompare.run_study("experiments/quickstart.yaml", overrides={"tuner.epochs": 5})
    result.architectures   # one row per architecture (DataFrame)
    result.trials          # one row per trial (DataFrame)

Heavy modules (TensorFlow, MLflow) load only when a study runs.
"""

from importlib import import_module, metadata

__version__ = metadata.version("rnncompare")
__all__ = ["UserError", "compare_studies", "load_config", "rebuild_report", "run_study", "run_sweep"]

# the public API, and the module that owns each name (imported when first used)
_OWNERS = {
    "run_study": "rnncompare.orchestration.study",
    "run_sweep": "rnncompare.orchestration.studies",
    "compare_studies": "rnncompare.orchestration.studies",
    "rebuild_report": "rnncompare.orchestration.studies",
    "load_config": "rnncompare.config",
    "UserError": "rnncompare.core.errors",
}


def __getattr__(name):
    if name in _OWNERS:
        return getattr(import_module(_OWNERS[name]), name)
    raise AttributeError(f"module 'rnncompare' has no attribute {name!r}")
