"""Tracking: the only package that talks to MLflow.

`store` says where the store is and whether it can be used, `writer.Tracker` writes a study's run tree (its Keras
models through `model_log`; and, on `runs.RunReader`, reads what a resume or a worker needs), `reader` reads a
finished study back for the report.
"""

from rnncompare.tracking.reader import load_study, load_summary, training_views
from rnncompare.tracking.runs import PreviousRun, RunReader, StudyRuns
from rnncompare.tracking.store import (
    check_store,
    is_server,
    loopback_server_command,
    resolve_tracking_uri,
    server_command,
    ui_command,
    writable_folder,
)
from rnncompare.tracking.trial_logger import TrialLogger
from rnncompare.tracking.writer import Tracker

__all__ = [
    "PreviousRun",
    "RunReader",
    "StudyRuns",
    "Tracker",
    "TrialLogger",
    "check_store",
    "is_server",
    "load_study",
    "load_summary",
    "loopback_server_command",
    "resolve_tracking_uri",
    "server_command",
    "training_views",
    "ui_command",
    "writable_folder",
]
