"""The statuses of a run, as MLflow names them: the one place they are spelled."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """An MLflow run's status; a trial or seed result is FINISHED or FAILED. Compares equal to MLflow's strings."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
