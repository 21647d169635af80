"""MLflow's private API, read or patched: its fluent API's process-wide state, and its check of a logged model's
requirements. Each names the upstream behaviour it works around; an MLflow outside the range these were written
against is refused when this module is imported."""

from __future__ import annotations

import contextlib

from rnncompare.compat.versions import require
from rnncompare.runtime.quiet import environment_kept

SUPPORTED = ">=3.17,<3.18"
VERSION = require("mlflow", SUPPORTED, "mlflow")


@contextlib.contextmanager
def requirements_check_skipped():
    """Switch off MLflow's check of a model's requirements against the installed packages for the block. It warns
    of a mismatch after mapping every installed distribution to its modules (0.6 s, once per process); the
    requirements given here are `get_default_pip_requirements()`, the installed versions themselves, so it cannot
    warn. Where MLflow has moved the check, it runs."""
    from mlflow.utils import environment

    check = "warn_dependency_requirement_mismatches"
    original = getattr(environment, check, None)
    if original is None:
        yield
        return
    setattr(environment, check, lambda requirements: None)
    try:
        yield
    finally:
        setattr(environment, check, original)


@contextlib.contextmanager
def fluent_state_kept():
    """Put MLflow's fluent tracking URI and active experiment (and the variables it sets for child processes) back
    as they were before the block: a notebook that runs a study stays where it was. MLflow has no public getter
    for "no URI set" (`get_tracking_uri` resolves a default), so its private fields are read."""
    from mlflow.tracking import _tracking_service, fluent

    saved_uri, saved_experiment = _tracking_service.utils._tracking_uri, fluent._active_experiment_id
    with environment_kept(("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")):
        try:
            yield
        finally:
            _tracking_service.utils._tracking_uri = saved_uri
            fluent._active_experiment_id = saved_experiment


@contextlib.contextmanager
def fluent_tracking(uri: str, experiment_id: str):
    """Point MLflow's fluent API at `uri` and `experiment_id` for the block, then back where the caller had it:
    MLflow 3 files a logged model under the fluent API's current experiment, not its run's."""
    import mlflow

    with fluent_state_kept():
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment_id=experiment_id)
        yield


def create_tracking_tables(engine) -> None:
    """Create and migrate MLflow's tracking tables in the empty database behind the SQLAlchemy `engine`, as
    MLflow's SQL store does when it first opens a database (it has no public call for it)."""
    from mlflow.store.db.utils import _initialize_tables

    _initialize_tables(engine)


def dataset_entity(dataset):
    """The `mlflow.entities.Dataset` of an `mlflow.data` dataset, for `MlflowClient.log_inputs` (the fluent API's
    `log_input` makes it with this private method; the client has no public way)."""
    return dataset._to_mlflow_entity()
