"""Reading a finished study back from the tracking store alone, as plain data for the report and comparisons."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from rnncompare.core.errors import UserError
from rnncompare.core.metrics import ALL_EPOCH_METRICS
from rnncompare.core.status import RunStatus
from rnncompare.tracking.store import (
    CONFIG_ARTIFACT,
    SUMMARY_ARTIFACT,
    TAG_ARCHITECTURE,
    TAG_BACKEND,
    TAG_BEST_TRIAL_ID,
    TAG_DATASET_PREFIX,
    TAG_FAILURE,
    TAG_GIT_COMMIT,
    TAG_MATCHED_TO,
    TAG_SEED,
    TAG_SWEEP_PREFIX,
    TAG_TRIAL_ID,
    TAG_VERSION_PREFIX,
    check_store,
    parse_param,
    parse_params,
    run_filter,
    search_all,
)
from rnncompare.tracking.store import client as store_client


def _study_run(uri: str, study: str, study_run_id: str | None = None):
    check_store(uri)
    mlflow_client = store_client(uri)
    experiment = mlflow_client.get_experiment_by_name(study)
    if experiment is None:
        known = sorted(e.name for e in mlflow_client.search_experiments() if e.name != "Default")
        listing = f"; studies there: {', '.join(known)}" if known else "; the store holds no studies"
        raise UserError(f"study {study!r} not found in {uri}{listing}")
    if study_run_id is not None:
        return mlflow_client, experiment, mlflow_client.get_run(study_run_id)
    finished = search_all(
        mlflow_client,
        experiment.experiment_id,
        run_filter(role="study", status=RunStatus.FINISHED),
        ["attributes.start_time DESC"],
    )
    if not finished:
        raise UserError(f"study {study!r} in {uri} has no finished study run yet")
    return mlflow_client, experiment, finished[0]


def load_summary(uri: str, study: str) -> dict[str, Any]:
    """The summary.json that a study's newest finished run logged with its report."""
    client, _, study_run = _study_run(uri, study)
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(study_run.info.run_id, SUMMARY_ARTIFACT, folder)
        except Exception:  # MLflow raises several types for a missing artifact; all mean the same here
            raise UserError(
                f"study {study!r} in {uri}: its study run has no {SUMMARY_ARTIFACT}; "
                f"run `rnncompare report {study}` first"
            ) from None
        return json.loads(Path(path).read_text(encoding="utf-8"))


def load_study(uri: str, study: str, study_run_id: str | None = None) -> dict[str, Any]:
    """Read a study back from the tracking store alone, as plain data for the report.

    Takes the given study run, or else the newest FINISHED one. Raises `UserError` when there is none.
    """
    client, experiment, study_run = _study_run(uri, study, study_run_id)
    with tempfile.TemporaryDirectory() as folder:
        config_path = client.download_artifacts(study_run.info.run_id, CONFIG_ARTIFACT, folder)
        config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    # the user's own architectures are written {name, body}: the report knows them by name, and their bodies
    entries = config["architectures"]
    bodies = {entry["name"]: entry["body"] for entry in entries if isinstance(entry, dict)}
    config["architectures"] = [entry["name"] if isinstance(entry, dict) else entry for entry in entries]
    architecture_runs = search_all(client, experiment.experiment_id, run_filter(study_run.info.run_id, "architecture"))
    by_name = {run.data.tags[TAG_ARCHITECTURE]: run for run in architecture_runs}
    architectures = []
    for name in config["architectures"]:
        if name not in by_name:
            continue
        run = by_name[name]
        trial_runs = search_all(client, experiment.experiment_id, run_filter(run.info.run_id, "trial"))
        trial_runs = [trial for trial in trial_runs if trial.info.status != RunStatus.KILLED]  # interrupted, then rerun
        trials = sorted((_trial_record(trial) for trial in trial_runs), key=lambda t: t["trial_id"])
        seeds = _seed_records(client, experiment.experiment_id, run.info.run_id)
        best_trial_id = run.data.tags.get(TAG_BEST_TRIAL_ID)
        best_history = {}
        for trial_run in trial_runs:
            if trial_run.data.tags.get(TAG_TRIAL_ID) == best_trial_id:
                best_history = _history(client, trial_run)
        architectures.append(
            {
                "name": name,
                "run_id": run.info.run_id,
                "status": run.info.status,
                "params": parse_params(run.data.params),
                "metrics": dict(run.data.metrics),
                "best_trial_id": best_trial_id,
                "best_history": best_history,
                "trials": trials,
                "seeds": seeds,
            }
        )
    matched_runs = search_all(client, experiment.experiment_id, run_filter(study_run.info.run_id, "matched"))
    matched = [
        {
            "name": run.data.tags[TAG_ARCHITECTURE],
            "reference": run.data.tags[TAG_MATCHED_TO],
            "run_id": run.info.run_id,
            "status": run.info.status,
            "params": parse_params(run.data.params),
            "metrics": dict(run.data.metrics),
            "seeds": _seed_records(client, experiment.experiment_id, run.info.run_id),
        }
        for run in matched_runs
    ]
    matched.sort(key=lambda entry: config["architectures"].index(entry["name"]))
    tags = study_run.data.tags
    return {
        "study": study,
        "tracking_uri": uri,
        "experiment_id": experiment.experiment_id,
        "study_run_id": study_run.info.run_id,
        "config": config,
        "bodies": bodies,
        "versions": {
            k.removeprefix(TAG_VERSION_PREFIX): v for k, v in tags.items() if k.startswith(TAG_VERSION_PREFIX)
        },
        "git_commit": tags.get(TAG_GIT_COMMIT),
        "backend": tags.get(TAG_BACKEND),
        "dataset": {k.removeprefix(TAG_DATASET_PREFIX): v for k, v in tags.items() if k.startswith(TAG_DATASET_PREFIX)},
        "sweep": {
            k.removeprefix(TAG_SWEEP_PREFIX): parse_param(v) for k, v in tags.items() if k.startswith(TAG_SWEEP_PREFIX)
        },
        "architectures": architectures,
        "matched": matched,
    }


def _seed_records(client, experiment_id: str, parent_run_id: str) -> list[dict[str, Any]]:
    seeds = []
    for seed_run in search_all(client, experiment_id, run_filter(parent_run_id, "seed")):
        if seed_run.info.status == RunStatus.KILLED:  # interrupted, then rerun
            continue
        seed = _trial_record(seed_run)
        seed["seed"] = int(seed_run.data.tags[TAG_SEED])
        seed["history"] = _history(client, seed_run)
        seeds.append(seed)
    return sorted(seeds, key=lambda seed: seed["seed"])


def _trial_record(run) -> dict[str, Any]:
    return {
        "trial_id": run.data.tags.get(TAG_TRIAL_ID, ""),
        "run_id": run.info.run_id,
        "status": run.info.status,
        "hyperparameters": parse_params(run.data.params),
        "metrics": {key: value for key, value in run.data.metrics.items() if key not in ALL_EPOCH_METRICS},
        "failure_reason": run.data.tags.get(TAG_FAILURE),
    }


def _history(client, run) -> dict[str, list[list[float]]]:
    history = {}
    for key in ALL_EPOCH_METRICS:
        if key not in run.data.metrics:
            continue
        points = sorted(client.get_metric_history(run.info.run_id, key), key=lambda metric: metric.step)
        history[key] = [[metric.step, metric.value] for metric in points]
    return history


def training_views(uri: str, address: str) -> list[tuple[str, str]]:
    """(study, address) of each study's training-runs table in the MLflow UI served at `address`."""
    check_store(uri)
    experiments = store_client(uri).search_experiments(order_by=["name ASC"])
    return [
        (experiment.name, f"{address}/#/experiments/{experiment.experiment_id}/runs")
        for experiment in experiments
        if experiment.name != "Default"
    ]
