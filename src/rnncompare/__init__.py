"""rnncompare: fair, reproducible comparisons of Keras recurrent architectures (LSTM, GRU, SimpleRNN).

From Python::

    import rnncompare
    result = rnncompare.run_study("experiments/quickstart.yaml", overrides={"tuner.epochs": 5})
    result.architectures   # one row per architecture (DataFrame)
    result.trials          # one row per trial (DataFrame)

Heavy modules (TensorFlow, MLflow) load only when a study runs.
"""

__version__ = "0.1.0"
__all__ = ["run_study", "run_sweep", "compare_studies", "rebuild_report", "load_config", "UserError"]


def __getattr__(name):
    if name in ("run_study", "run_sweep", "compare_studies", "rebuild_report"):
        from rnncompare.orchestration import study

        return getattr(study, name)
    if name == "load_config":
        from rnncompare.config import load_config

        return load_config
    if name == "UserError":
        from rnncompare.core.errors import UserError

        return UserError
    raise AttributeError(f"module 'rnncompare' has no attribute {name!r}")
