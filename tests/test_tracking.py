"""The run tree written and read back through a real SQLite store (one per module: creating one takes seconds)."""

import sqlite3
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from rnncompare.core.trials import ArchitectureOutcome, TrialResult
from rnncompare.tracking import RunReader, Tracker
from rnncompare.tracking.runs import split_architecture_metrics
from rnncompare.tracking.store import client as store_client
from rnncompare.tracking.store import empty_store_template, run_filter

FIXED = {"architecture": "gru", "learning_rate": 0.001}


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


def start(tracker: Tracker, study: str, digest: str = "d1"):
    return tracker.start_study(
        study, {"seed": 1, "tuner": {"epochs": 2}}, {"python": "3.11"}, {"kind": "classification"}, config_digest=digest
    )


def trial(trial_id: str, status: str = "FINISHED", **metrics) -> TrialResult:
    return TrialResult(
        trial_id,
        {"units": 8, "dropout": 0.1},
        status,
        metrics,
        failure_reason=None if status == "FINISHED" else "FailedTrial: loss became NaN",
    )


def test_the_filter_on_the_run_tree():
    assert run_filter("abc", "trial") == "tags.`mlflow.parentRunId` = 'abc' and tags.`rnncompare.role` = 'trial'"
    assert run_filter(role="study", status="RUNNING") == (
        "tags.`rnncompare.role` = 'study' and attributes.status = 'RUNNING'"
    )
    assert run_filter("p", trial_id="3") == "tags.`mlflow.parentRunId` = 'p' and tags.`rnncompare.trial_id` = '3'"


def test_an_architecture_runs_metrics_split_into_selected_test_and_seeds():
    selected, test, seeds = split_architecture_metrics(
        {
            "val_loss": 0.5,
            "params_total": 100.0,
            "test_accuracy": 0.8,
            "test_f1_macro": 0.7,
            "test_accuracy_mean": 0.79,
            "test_accuracy_ci_low": 0.7,
            "seeds_finished": 2.0,
            "gap_loss_seed_std": 0.1,
            "trials_finished": 3.0,
        }
    )
    assert selected == {"val_loss": 0.5, "params_total": 100.0}
    assert test == {"test_accuracy": 0.8, "test_f1_macro": 0.7}
    assert seeds == {
        "test_accuracy_mean": 0.79,
        "test_accuracy_ci_low": 0.7,
        "seeds_finished": 2.0,
        "gap_loss_seed_std": 0.1,
    }


def test_trials_are_written_under_their_architecture_and_read_back(uri):
    tracker = Tracker.connect(uri)
    runs = start(tracker, "written")
    run_id = tracker.start_architecture(runs, "written", "gru")
    logger = tracker.trial_logger(runs, "written", "gru", FIXED)
    for result in (trial("0", best_epoch=2.0, val_loss=0.4, loss=0.3), trial("1", "FAILED")):
        logger.trial_started(result.trial_id, result.hyperparameters)
        logger.epoch_ended(result.trial_id, 1, {"loss": 0.5, "val_loss": 0.6})
        logger.trial_ended(result)
    outcome = ArchitectureOutcome(
        "gru",
        [trial("0"), trial("1", "FAILED")],
        "0",
        {"units": 8, "dropout": 0.1},
        {"val_loss": 0.4, "params_total": 120.0},
        {"test_accuracy": 0.75},
        seed_metrics={"seeds_finished": 0.0, "seeds_failed": 0.0},
    )
    tracker.finish_architecture(run_id, outcome, FIXED)
    tracker.close_open_runs("FINISHED")

    client = MlflowClient(uri)
    # MLflow 3's UI opens a study on its training-runs table, not its GenAI overview
    assert client.get_experiment(runs.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    architecture = client.get_run(run_id)
    assert architecture.info.status == "FINISHED"
    assert architecture.data.tags["rnncompare.best_trial_id"] == "0"
    assert architecture.data.params == {"architecture": "gru", "learning_rate": "0.001", "units": "8", "dropout": "0.1"}
    assert architecture.data.metrics["trials_failed"] == 1.0 and architecture.data.metrics["test_accuracy"] == 0.75
    previous = sorted(tracker.previous_results(run_id, "trial", FIXED), key=lambda result: result.trial_id)
    assert [(r.trial_id, r.status, r.hyperparameters) for r in previous] == [
        ("0", "FINISHED", {"units": 8, "dropout": 0.1}),
        ("1", "FAILED", {"units": 8, "dropout": 0.1}),
    ]
    # the summary's loss and val_loss were logged as best_* (beside the per-epoch series) and read back plain
    assert previous[0].metrics == {"best_epoch": 2.0, "val_loss": 0.4, "loss": 0.3}
    assert previous[1].failure_reason == "FailedTrial: loss became NaN"
    finished = tracker.finished_outcome("gru", run_id, FIXED)
    assert (finished.selected_metrics, finished.test_metrics, finished.seed_metrics) == (
        {"val_loss": 0.4, "params_total": 120.0},
        {"test_accuracy": 0.75},
        {"seeds_finished": 0.0, "seeds_failed": 0.0},
    )


def test_a_trials_last_epochs_and_summary_are_one_write_never_past_mlflows_batch_limit(uri, monkeypatch):
    tracker = Tracker.connect(uri)
    runs = start(tracker, "batched")
    tracker.start_architecture(runs, "batched", "gru")
    logger = tracker.trial_logger(runs, "batched", "gru", FIXED)
    writes, log_batch = [], tracker.client.log_batch

    def counted(run_id, metrics=(), params=(), **rest):  # the real store's write, counted
        writes.append((len(params), len(metrics)))
        return log_batch(run_id, metrics=metrics, params=params, **rest)

    monkeypatch.setattr(tracker.client, "log_batch", counted)
    wide = {f"summary_{index}": float(index) for index in range(150)}
    for result, epochs in ((trial("0", best_epoch=2.0, val_loss=0.4), 3), (trial("1", **wide), 450)):
        logger.trial_started(result.trial_id, result.hyperparameters)
        for epoch in range(epochs):
            logger.epoch_ended(result.trial_id, epoch, {"loss": 1.0 / (epoch + 1), "val_loss": 0.5})
        logger.trial_ended(result)
    # per trial: its parameters, then its unwritten epochs with its summary in one write, then the close; a
    # trial whose 900 epoch values and 150 summary values pass MLflow's 1,000 a write is written in two
    assert writes == [(4, 0), (0, 6 + 2), (4, 0), (0, 900), (0, 150)]
    client = MlflowClient(uri)
    first, second = (client.get_run(logger.run_ids[trial_id]) for trial_id in ("0", "1"))
    assert first.info.status == second.info.status == "FINISHED"
    assert [metric.step for metric in client.get_metric_history(first.info.run_id, "loss")] == [0, 1, 2]
    assert first.data.metrics == {"loss": 1 / 3, "val_loss": 0.5, "best_epoch": 2.0, "best_val_loss": 0.4}
    assert len(client.get_metric_history(second.info.run_id, "val_loss")) == 450
    assert second.data.metrics["summary_149"] == 149.0 and len(second.data.metrics) == 152


def test_an_unfinished_study_is_found_read_only_and_reopened_only_when_started(uri):
    tracker = Tracker.connect(uri)
    runs = start(tracker, "interrupted", digest="d2")
    tracker.start_architecture(runs, "interrupted", "gru")  # left RUNNING, as by kill -9

    reader = RunReader.connect(uri)
    assert reader.find_resumable("interrupted", "another-digest") is None
    found = reader.find_resumable("interrupted", "d2")
    assert found.study_run_id == runs.study_run_id and found.resumed
    assert {name: previous.finished for name, previous in found.previous_architectures.items()} == {"gru": False}
    client = MlflowClient(uri)
    assert {run.info.status for run in client.search_runs([runs.experiment_id])} == {"RUNNING"}  # nothing written

    again = Tracker.connect(uri)
    resumed = again.start_study("interrupted", {}, {}, {}, config_digest="d2", resume=found)
    statuses = {
        run.data.tags["rnncompare.role"]: (run.info.status, run.data.tags.get("rnncompare.failure_reason", ""))
        for run in client.search_runs([runs.experiment_id])
    }
    assert resumed.study_run_id == runs.study_run_id
    assert statuses["study"] == ("RUNNING", "")  # reopened, its interrupted mark dropped
    assert statuses["architecture"][0] == "KILLED" and statuses["architecture"][1].startswith("interrupted")
    again.close_open_runs("FINISHED")
    assert client.get_run(runs.study_run_id).info.status == "FINISHED"
    assert reader.find_resumable("interrupted", "d2") is None


def test_a_relative_store_follows_the_current_folder(tmp_path, monkeypatch):
    # MLflow caches one engine per URI text: without care the second folder's runs land in the first's store
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        tracker = Tracker.connect("sqlite:///mlruns/mlflow.db")
        start(tracker, f"in-{name}")
        tracker.close_open_runs("FINISHED")
    for name in ("first", "second"):
        client = MlflowClient(f"sqlite:///{tmp_path / name / 'mlruns' / 'mlflow.db'}")
        assert [experiment.name for experiment in client.search_experiments() if experiment.name != "Default"] == [
            f"in-{name}"
        ]


def two_workers(uri, study: str):
    """A study with one architecture, its run id, two workers' trial loggers, and a function that lists its trial
    runs as (trial id, worker, status, the first 20 characters of the failure reason)."""
    tracker = Tracker.connect(uri)
    runs = start(tracker, study)
    run_id = tracker.start_architecture(runs, study, "gru")
    loggers = [tracker.trial_logger(runs, study, "gru", FIXED, worker=name) for name in ("w1", "w2")]

    def statuses():
        found = tracker.client.search_runs([runs.experiment_id], run_filter(run_id, "trial"))
        return sorted(
            (
                run.data.tags["rnncompare.trial_id"],
                run.data.tags["rnncompare.worker"],
                run.info.status,
                run.data.tags.get("rnncompare.failure_reason", "")[:20],
            )
            for run in found
        )

    return tracker, runs, run_id, loggers, statuses


def test_a_worker_back_from_silence_leaves_its_trial_to_the_run_that_took_it_over(uri):
    tracker, runs, run_id, (slow, other), statuses = two_workers(uri, "lease")

    # trial 0: w1 falls silent, the chief closes its run, w2 takes the trial; w1 then ends it too
    slow.trial_started("0", {"units": 8})
    tracker.mark_abandoned(run_id, "0", "w1", "worker w1 not heard from in 4 s")
    other.trial_started("0", {"units": 8})
    slow.trial_ended(trial("0", val_loss=0.4))
    other.trial_ended(trial("0", val_loss=0.4))
    # trial 1: w1's run was closed (the chief restarted) but no one took the trial over: w1's result stands
    slow.trial_started("1", {"units": 8})
    tracker.mark_abandoned(run_id, "1", "w1", "worker w1 not heard from in 4 s")
    slow.trial_ended(trial("1", val_loss=0.5))
    assert [row[:3] for row in statuses()] == [("0", "w1", "KILLED"), ("0", "w2", "FINISHED"), ("1", "w1", "FINISHED")]
    finished = tracker.client.search_runs([runs.experiment_id], run_filter(run_id, "trial", "FINISHED", trial_id="1"))
    assert "rnncompare.failure_reason" not in finished[0].data.tags
    assert finished[0].data.metrics["best_val_loss"] == 0.5
    tracker.close_open_runs("FINISHED")


def test_after_a_search_the_chief_leaves_one_finished_run_for_each_completed_trial(uri):
    tracker, _runs, run_id, (w1, w2), statuses = two_workers(uri, "settle")

    # trial 0: w1's lease ran out as it finished; the chief found its run RUNNING, and its KILLED landed last
    w1.trial_started("0", {"units": 8})
    w1.trial_ended(trial("0", val_loss=0.4, epochs_run=3.0))
    tracker.mark_interrupted(w1.run_ids["0"], "worker w1 not heard from in 4 s")
    # trial 1: w1 checked its run just before the chief closed it, so w1's FINISHED landed after the chief's mark;
    # w2 took the trial over and finished it too
    w1.trial_started("1", {"units": 8})
    w1.trial_ended(trial("1", val_loss=0.5, epochs_run=3.0))
    tracker.client.set_tag(w1.run_ids["1"], "rnncompare.failure_reason", "worker w1 not heard from in 4 s")
    w2.trial_started("1", {"units": 8})
    w2.trial_ended(trial("1", val_loss=0.6, epochs_run=3.0))
    # trial 2: w1 died mid-trial (no summary), w2 ran it again; trial 3: the oracle has not completed it
    w1.trial_started("2", {"units": 8})
    tracker.mark_interrupted(w1.run_ids["2"], "worker w1 not heard from in 4 s")
    w2.trial_started("2", {"units": 8})
    w2.trial_ended(trial("2", val_loss=0.7, epochs_run=3.0))
    w2.trial_started("3", {"units": 8})
    w2.trial_ended(trial("3", val_loss=0.8, epochs_run=3.0))
    tracker.mark_interrupted(w2.run_ids["3"], "worker w2 not heard from in 4 s")
    assert [row[2] for row in statuses()] == ["KILLED", "FINISHED", "FINISHED", "KILLED", "FINISHED", "KILLED"]

    tracker.settle_trial_runs(run_id, ["0", "1", "2"])
    assert statuses() == [
        ("0", "w1", "FINISHED", ""),
        ("1", "w1", "FINISHED", ""),
        ("1", "w2", "KILLED", "trial 1 ran twice; r"),
        ("2", "w1", "KILLED", "worker w1 not heard "),
        ("2", "w2", "FINISHED", ""),
        ("3", "w2", "KILLED", "worker w2 not heard "),
    ]
    results = tracker.previous_results(run_id, "trial", FIXED)
    assert sorted((result.trial_id, result.metrics["val_loss"]) for result in results) == [
        ("0", 0.4),
        ("1", 0.5),
        ("2", 0.7),
    ]
    tracker.settle_trial_runs(run_id, ["0", "1", "2"])  # settling again changes nothing
    assert len([row for row in statuses() if row[2] == "FINISHED"]) == 3
    tracker.close_open_runs("FINISHED")


def _contents(path):
    """A SQLite store's schema and rows, creation times left out. A table's constraints are compared as a set:
    MLflow's migrations write them in an order that changes from one process to the next."""
    connection = sqlite3.connect(path)
    try:
        schema = sorted(
            (kind, name, table, sorted(line.strip().rstrip(",") for line in (sql or "").splitlines()))
            for kind, name, table, sql in connection.execute("select type, name, tbl_name, sql from sqlite_master")
        )
        tables = [name for (name,) in connection.execute("select name from sqlite_master where type = 'table'")]
        rows = {table: connection.execute(f'select * from "{table}"').fetchall() for table in tables}
    finally:
        connection.close()
    rows["experiments"] = [row[:4] + row[6:] for row in rows["experiments"]]  # creation and update times
    return schema, rows


def test_a_new_store_is_a_copy_of_the_cached_empty_one_and_the_same_as_mlflows_own(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    ours = tmp_path / "ours" / "mlflow.db"
    store_client(f"sqlite:///{ours}").create_experiment("study")
    template = tmp_path / "cache" / "rnncompare" / f"mlflow-{mlflow.__version__}-empty.db"
    assert template.exists()  # made on the way
    assert empty_store_template() == template
    mlflows = tmp_path / "mlflows" / "mlflow.db"
    mlflows.parent.mkdir()
    MlflowClient(tracking_uri=f"sqlite:///{mlflows}").create_experiment("study")
    schema, rows = _contents(ours)
    assert (schema, rows) == _contents(mlflows)
    assert [row[:3] for row in rows["experiments"]] == [
        (0, "Default", str(tmp_path / "mlruns" / "0")),
        (1, "study", str(tmp_path / "mlruns" / "1")),
    ]
    assert sorted(path.name for path in ours.parent.iterdir()) == ["mlflow.db"]


def test_a_logged_model_pins_the_installed_keras_without_mlflow_scanning_every_installed_package(uri, monkeypatch):
    import keras
    import numpy as np
    from mlflow.utils import environment, requirements_utils

    # MLflow maps every installed distribution to its modules (once per process) to check a model's requirements
    # against the environment; the requirements logged are the installed versions, so the study skips that check
    scans = []
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(requirements_utils, "_PACKAGES_TO_MODULES", None)
    monkeypatch.setattr(requirements_utils.importlib_metadata, "packages_distributions", lambda: scans.append(1) or {})
    tracker = Tracker.connect(uri)
    runs = start(tracker, "models")
    run_id = tracker.start_architecture(runs, "models", "gru")
    inputs = keras.Input((3, 2))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.GRU(4)(inputs)))
    example = np.zeros((2, 3, 2), dtype="float32")
    check = environment.warn_dependency_requirement_mismatches
    tracker.log_models(run_id, model, example)
    assert scans == []
    assert environment.warn_dependency_requirement_mismatches is check  # skipped for the study's models only
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # where `runs:/` addresses are looked up
    requirements = Path(mlflow.pyfunc.get_model_dependencies(f"runs:/{run_id}/model")).read_text().splitlines()
    assert f"keras=={keras.__version__}" in requirements and f"mlflow=={mlflow.__version__}" in requirements
    loaded = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert loaded.predict(example).shape == (2, 2)


def test_a_seed_run_reported_after_it_trained_keeps_its_own_times_and_what_it_drew(uri):
    # vectorized seeds (and a seed process's) are written once they are over: their runs carry when they trained
    from rnncompare.training.seed_runs import replay
    from rnncompare.training.vectorized import SeedRun

    tracker = Tracker.connect(uri)
    runs = start(tracker, "replayed")
    parent = tracker.start_architecture(runs, "replayed", "gru")
    logger = tracker.trial_logger(runs, "replayed", "gru", FIXED, role="seed", parent_run_id=parent)
    result = trial("17", best_epoch=1.0, val_loss=0.4)
    result.ended_at, result.tags = 1_700_000_060.5, {"rnncompare.split_seed": "99"}
    replay(SeedRun(result, epochs=[(1, {"loss": 0.5, "val_loss": 0.4})], started_at=1_700_000_000.25), {}, logger)
    run = MlflowClient(uri).get_run(logger.run_ids["17"])
    assert (run.info.start_time, run.info.end_time) == (1_700_000_000_250, 1_700_000_060_500)
    assert run.info.status == "FINISHED" and run.data.tags["rnncompare.split_seed"] == "99"
    assert [m.value for m in MlflowClient(uri).get_metric_history(run.info.run_id, "loss")] == [0.5]
