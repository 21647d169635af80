"""A tiny real study through the CLI, read back through MlflowClient; the report rebuilt from the store alone."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from rnncompare.config import load_config
from rnncompare.tasks import load_task
from test_models import CELL_PARAMETERS

from conftest import clean_env, free_port

pytestmark = pytest.mark.slow
ARCHITECTURES = ["lstm", "gru", "simple_rnn"]
FIGURES = (
    "learning_curves",
    "score_vs_parameters",
    "overfitting_gap",
    "gap_vs_hyperparameters",
    "hyperparameters_vs_score",
    "seed_scores",
    "seed_learning_curves",
)


# digits' 1797 sequences, split by configs/default.yaml's fractions as every study splits them
TEST_SEQUENCES = len(load_task(load_config({}).task, load_config({}).seed).x_test)


def runs_by_role(client, experiment_id, role):
    return client.search_runs([experiment_id], filter_string=f"tags.`rnncompare.role` = '{role}'", max_results=1000)


def test_the_run_tree_tags_and_metrics(tiny_study):
    client = MlflowClient(tracking_uri=tiny_study["uri"])
    experiment = client.get_experiment_by_name("tiny")
    studies = runs_by_role(client, experiment.experiment_id, "study")
    assert len(studies) == 1
    study = studies[0]
    assert study.info.status == "FINISHED"
    assert study.data.tags["rnncompare.study"] == "tiny"
    for package in ("python", "tensorflow", "keras", "keras-tuner", "mlflow"):
        assert re.fullmatch(r"\d+\.\d+.*", study.data.tags[f"rnncompare.version.{package}"])
    assert study.data.params["tuner.max_trials"] == "2"
    # every run says what started it, as the runs table's Source column shows
    for run in client.search_runs([experiment.experiment_id], max_results=1000):
        assert (run.data.tags["mlflow.source.name"], run.data.tags["mlflow.source.type"]) == (
            "rnncompare run tiny.yaml",
            "LOCAL",
        )

    architectures = runs_by_role(client, experiment.experiment_id, "architecture")
    assert sorted(run.data.tags["rnncompare.architecture"] for run in architectures) == sorted(ARCHITECTURES)
    trials = runs_by_role(client, experiment.experiment_id, "trial")
    assert len(trials) == 6
    for architecture in architectures:
        tags, metrics, params = architecture.data.tags, architecture.data.metrics, architecture.data.params
        assert tags["mlflow.parentRunId"] == study.info.run_id
        assert architecture.info.status == "FINISHED"
        children = [t for t in trials if t.data.tags["mlflow.parentRunId"] == architecture.info.run_id]
        assert sorted(t.data.tags["rnncompare.trial_id"] for t in children) == ["0", "1"]
        assert all(t.data.tags["rnncompare.architecture"] == tags["rnncompare.architecture"] for t in children)
        best = next(t for t in children if t.data.tags["rnncompare.trial_id"] == tags["rnncompare.best_trial_id"])
        # the architecture run carries its best trial's hyperparameters and metrics, and its test score
        assert params["units"] == best.data.params["units"] and params["dropout"] == best.data.params["dropout"]
        assert metrics["params_total"] == best.data.metrics["params_total"]
        assert metrics["val_accuracy"] == best.data.metrics["best_val_accuracy"]
        # an accuracy over the whole test split: a whole number of its sequences right
        correct = metrics["test_accuracy"] * TEST_SEQUENCES
        assert correct == pytest.approx(round(correct), abs=1e-3) and metrics["test_accuracy"] > 0
        assert metrics["trials_finished"] == 2 and metrics["trials_failed"] == 0
        # what a reviewer reads in the UI: the diagnostics and a one-line description
        assert tags["rnncompare.diagnostics.budget_limited"] == "true" and metrics["still_improving_fraction"] == 1.0
        assert tags["mlflow.note.content"].startswith(f"**{tags['rnncompare.architecture']}**: test accuracy ")
        figures = sorted(item.path for item in client.list_artifacts(architecture.info.run_id, "figures"))
        assert figures == ["figures/learning_curves.png", "figures/seed_learning_curves.png", "figures/seed_scores.png"]
        # seeds: child runs of the architecture run, retrained with the selected hyperparameters
        seeds = [
            s
            for s in runs_by_role(client, experiment.experiment_id, "seed")
            if s.data.tags["mlflow.parentRunId"] == architecture.info.run_id
        ]
        assert len(seeds) == 2 and all(s.info.status == "FINISHED" for s in seeds)
        assert {s.data.params["units"] for s in seeds} == {params["units"]}
        scores = [s.data.metrics["test_accuracy"] for s in seeds]
        assert metrics["test_accuracy_mean"] == pytest.approx(sum(scores) / 2)
        assert metrics["test_accuracy_std"] == pytest.approx(abs(scores[0] - scores[1]) / 2**0.5)
        assert metrics["test_accuracy_min"] == min(scores) and metrics["test_accuracy_max"] == max(scores)
        assert metrics["test_accuracy_ci_low"] <= metrics["test_accuracy_mean"] <= metrics["test_accuracy_ci_high"]
        assert metrics["seeds_finished"] == 2 and "best_epoch_seed_std" in metrics
        assert "test_f1_macro_seed_mean" in metrics and "val_loss_rise_seed_std" in metrics
        # the study run's row carries each architecture's numbers, as the runs table shows them collapsed
        name = tags["rnncompare.architecture"]
        assert study.data.metrics[f"{name}/test_accuracy_mean"] == metrics["test_accuracy_mean"]
        assert study.data.metrics[f"{name}/test_accuracy_std"] == metrics["test_accuracy_std"]
        assert study.data.metrics[f"{name}/params_total"] == metrics["params_total"]
    # and each pair's verdict, its limits included, as a tag (a column of the runs table)
    summary = json.loads((tiny_study["report_dir"] / "summary.json").read_text())
    verdicts = {
        key.removeprefix("rnncompare.verdict."): value
        for key, value in study.data.tags.items()
        if key.startswith("rnncompare.verdict.")
    }
    assert verdicts == {f"{pair['a']}_vs_{pair['b']}": pair["verdict"] for pair in summary["comparisons"]}
    assert sorted(verdicts) == ["gru_vs_simple_rnn", "lstm_vs_gru", "lstm_vs_simple_rnn"]

    seed_tags = {}
    for seed in runs_by_role(client, experiment.experiment_id, "seed"):
        seed_tags.setdefault(seed.data.tags["rnncompare.architecture"], set()).add(seed.data.tags["rnncompare.seed"])
    assert len({frozenset(tags) for tags in seed_tags.values()}) == 1  # the same seeds for every architecture

    for trial in trials:
        metrics, params = trial.data.metrics, trial.data.params
        assert trial.info.status == "FINISHED"
        assert trial.data.tags["rnncompare.role"] == "trial"
        assert set(params) == {"architecture", "learning_rate", "units", "dropout", "layers"}
        units = int(params["units"])
        expected = CELL_PARAMETERS[params["architecture"]](8, units) + units * 10 + 10
        assert metrics["params_total"] == metrics["params_trainable"] == expected
        for name in ("best_epoch", "gap_accuracy", "gap_loss", "epochs_after_best", "seconds_per_epoch"):
            assert name in metrics
        assert metrics["gap_accuracy"] == pytest.approx(metrics["best_accuracy"] - metrics["best_val_accuracy"])
        assert metrics["epochs_after_best"] == metrics["epochs_run"] - metrics["best_epoch"]
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            history = client.get_metric_history(trial.info.run_id, key)
            assert sorted(point.step for point in history) == [1, 2]


def test_budget_matched_runs_use_the_closest_width_and_the_same_seeds(tiny_study):
    client = MlflowClient(tracking_uri=tiny_study["uri"])
    experiment = client.get_experiment_by_name("tiny")
    study = runs_by_role(client, experiment.experiment_id, "study")[0]
    lstm = next(
        run
        for run in runs_by_role(client, experiment.experiment_id, "architecture")
        if run.data.tags["rnncompare.architecture"] == "lstm"
    )
    target = lstm.data.metrics["params_total"]
    matched = runs_by_role(client, experiment.experiment_id, "matched")
    assert sorted(run.data.tags["rnncompare.architecture"] for run in matched) == ["gru", "simple_rnn"]
    lstm_seeds = {
        s.data.tags["rnncompare.seed"]
        for s in runs_by_role(client, experiment.experiment_id, "seed")
        if s.data.tags["mlflow.parentRunId"] == lstm.info.run_id
    }
    for run in matched:
        name = run.data.tags["rnncompare.architecture"]
        assert run.data.tags["rnncompare.matched_to"] == "lstm"
        assert run.data.tags["mlflow.parentRunId"] == study.info.run_id and run.info.status == "FINISHED"
        units = int(run.data.params["units"])
        count = lambda u, name=name: CELL_PARAMETERS[name](8, u) + u * 10 + 10  # noqa: E731
        assert run.data.metrics["params_total"] == count(units)
        assert abs(count(units) - target) <= min(abs(count(units - 1) - target), abs(count(units + 1) - target))
        seeds = [
            s
            for s in runs_by_role(client, experiment.experiment_id, "seed")
            if s.data.tags["mlflow.parentRunId"] == run.info.run_id
        ]
        assert {s.data.tags["rnncompare.seed"] for s in seeds} == lstm_seeds
        assert all(s.data.params["units"] == str(units) for s in seeds)
        assert run.data.metrics["test_accuracy_mean"] == pytest.approx(
            sum(s.data.metrics["test_accuracy"] for s in seeds) / len(seeds)
        )
    summary = json.loads((tiny_study["report_dir"] / "summary.json").read_text())
    assert summary["matched"]["reference"] == "lstm" and summary["matched"]["reference_params"] == target
    assert [(c["a"], c["b"]) for c in summary["matched"]["comparisons"]] == [
        ("lstm", "gru@budget"),
        ("lstm", "simple_rnn@budget"),
    ]
    markdown = (tiny_study["report_dir"] / "report.md").read_text()
    assert f"At lstm's budget of {int(target):,} parameters: gru resized to" in markdown
    assert "## At an equal parameter budget" in markdown


def test_the_study_run_holds_the_resolved_config_and_the_report(tiny_study, tmp_path):
    client = MlflowClient(tracking_uri=tiny_study["uri"])
    experiment = client.get_experiment_by_name("tiny")
    study = runs_by_role(client, experiment.experiment_id, "study")[0]
    config = yaml.safe_load(open(client.download_artifacts(study.info.run_id, "config.yaml", str(tmp_path))))
    assert config["tuner"] == {
        "algorithm": "random",
        "max_trials": 2,
        "epochs": 2,
        "batch_size": 128,
        "objective": "val_loss",
        "max_consecutive_failures": 3,
        "dir": "mlruns/tuner",
    }
    logged = {item.path for item in client.list_artifacts(study.info.run_id, "report")}
    for name in ("report.md", "report.html", "summary.json", "runs.csv", *(f"{figure}.png" for figure in FIGURES)):
        assert f"report/{name}" in logged
    # the data is recorded as the study run's dataset inputs, one per split, with the digest of its content
    inputs = {item.tags[0].value: item.dataset for item in study.inputs.dataset_inputs}
    assert sorted(inputs) == ["test", "train", "validation"]
    assert inputs["train"].name == "digits-train" and len(inputs["train"].digest) == 16
    assert study.data.tags["rnncompare.dataset.kind"] == "classification"
    assert float(study.data.tags["rnncompare.dataset.baseline_test_accuracy"]) == pytest.approx(0.1, abs=0.02)
    # artifacts live beside the SQLite store, under mlruns/
    assert (tiny_study["folder"] / "mlruns" / "artifacts" / "tiny").is_dir()


def test_the_report_files(tiny_study):
    folder = tiny_study["report_dir"]
    summary = json.loads((folder / "summary.json").read_text())
    assert sorted(summary["architectures"]) == sorted(ARCHITECTURES)
    for name, row in summary["architectures"].items():
        assert set(row["hyperparameters"]) == {"architecture", "learning_rate", "units", "dropout", "layers"}
        assert row["hyperparameters"]["architecture"] == name
        units = row["hyperparameters"]["units"]
        assert row["params_total"] == CELL_PARAMETERS[name](8, units) + units * 10 + 10
    ranking = summary["ranking"]
    assert summary["ranked_by"] == "mean test accuracy over seeds"
    assert summary["kind"] == "classification" and summary["metrics"]["headline"] == "test_accuracy"
    scores = [summary["architectures"][name]["seeds"]["stats"]["mean"] for name in ranking]
    assert scores == sorted(scores, reverse=True)
    assert [(c["a"], c["b"]) for c in summary["comparisons"]] == [
        ("lstm", "gru"),
        ("lstm", "simple_rnn"),
        ("gru", "simple_rnn"),
    ]
    for pair in summary["comparisons"]:
        assert pair["verdict"].startswith(
            (
                f"{pair['a']} better at this budget; ",
                f"{pair['b']} better at this budget; ",
                "no significant difference at this number of seeds; ",
            )
        )
        # two epochs: every fit peaks at its last one, so every verdict says it was cut short
        assert pair["qualified"] is True
        assert f"{pair['a']} was still improving at the last epoch in 2 of 2 fits" in pair["verdict"]
    for row in summary["architectures"].values():
        assert (row["diagnostics"]["budget_limited"], row["diagnostics"]["still_improving"]) == (True, 2)
    assert ["tuner.epochs"] in [entry["keys"] for entry in summary["suggestions"]]
    runs = pd.read_csv(folder / "runs.csv")
    assert len(runs) == 6 and runs["is_best"].sum() == 3
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(FIGURES)
    for figure in FIGURES:
        assert f'id="figure-{figure}"' in html
    assert not re.search(r"""(src|href)=["']https?://""", html)  # opens offline
    markdown = (folder / "report.md").read_text()
    best = ranking[0]
    mean = summary["architectures"][best]["seeds"]["stats"]["mean"]
    assert f"Ranked by mean test accuracy over seeds: {best} {mean:.3f} +/- " in markdown
    assert "report.html" in tiny_study["stderr"]


def test_report_rebuilds_the_same_summary_from_the_store(tiny_study, tmp_path, cli):
    completed = cli("report", "tiny", "--tracking-uri", tiny_study["uri"], "--out", str(tmp_path), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    rebuilt = (tmp_path / "tiny" / "summary.json").read_text()
    assert rebuilt == (tiny_study["report_dir"] / "summary.json").read_text()
    assert (tmp_path / "tiny" / "runs.csv").read_text() == (tiny_study["report_dir"] / "runs.csv").read_text()


def test_the_html_report_renders_in_headless_chromium_with_every_figure(tiny_study):
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto((tiny_study["report_dir"] / "report.html").as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "figure img", "images => images.map(i => [i.closest('figure').id, i.complete && i.naturalWidth > 0])"
            )
            rows = page.eval_on_selector_all("#comparison tbody tr", "rows => rows.length")
            budget_rows = page.eval_on_selector_all("#budget tbody tr", "rows => rows.length")
            verdict = page.inner_text(".verdict")
            search = page.inner_text("#search")
            # the verdicts and diagnostics are prose: read from the left, as the numbers are from the right
            aligned = page.eval_on_selector_all(
                "td.prose, #diagnostics td", "cells => [...new Set(cells.map(c => getComputedStyle(c).textAlign))]"
            )
        finally:
            browser.close()
    assert errors == []
    assert images == [[f"figure-{name}", True] for name in FIGURES]
    assert rows == 3 and budget_rows == 3
    assert verdict.startswith("Ranked by mean test accuracy over seeds:")
    assert re.search(r"from scratch\. Trained with Keras on \w+: seconds per epoch", search), search
    assert aligned == ["left"]


def browse_ui(runs_address: str, study_run_id: str) -> tuple[list[str], str]:
    """In headless Chromium: the run names shown once the study's row is expanded on the runs table at
    `runs_address`, and the study run's description on its own page."""
    import shutil

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(runs_address, wait_until="load")
            study_cell = page.locator('[role="gridcell"]').filter(has_text="tiny").first
            study_cell.wait_for(timeout=60_000)
            study_cell.locator("button").first.click()  # the expander of the nested runs
            page.get_by_text("simple_rnn", exact=True).first.wait_for(timeout=30_000)
            names = page.eval_on_selector_all('[role="gridcell"] a', "links => links.map(link => link.innerText)")
            page.goto(f"{runs_address}/{study_run_id}", wait_until="load")
            page.get_by_text("Verdict", exact=True).first.wait_for(timeout=30_000)
            body = page.inner_text("body")
        finally:
            browser.close()
    return names, body[body.index("Verdict") :]


def test_the_ui_serves_the_study_with_its_nested_runs(tiny_study, cli, tmp_path):
    port = free_port()
    printed = tmp_path / "ui.err"
    with printed.open("wb") as err:
        server = subprocess.Popen(
            [sys.executable, "-m", "rnncompare", "ui", "--tracking-uri", tiny_study["uri"], "--port", str(port)],
            cwd=tiny_study["folder"],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the MLflow UI did not start")
                time.sleep(0.5)
        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
        experiment = client.get_experiment_by_name("tiny")
        # it prints where the study's training-runs table is, which MLflow's front page does not lead to
        lines = printed.read_text().splitlines()
        heading = lines.index(f"MLflow UI for {tiny_study['uri']} at http://127.0.0.1:{port} (Ctrl-C stops it)")
        assert lines[heading + 1] == f"  tiny: http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs"
        # and nothing of MLflow's own start-up (uvicorn's INFO lines, warnings) without --verbose
        assert lines == [f"MLflow UI for {tiny_study['uri']} at http://127.0.0.1:{port} (Ctrl-C stops it)", lines[1]]
        assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
        runs = client.search_runs([experiment.experiment_id], max_results=100)
        assert sorted(run.data.tags["rnncompare.role"] for run in runs).count("trial") == 6
        assert len(runs) == 1 + 3 + 6 + 3 * 2 + 2 + 2 * 2  # study, architectures, trials, seeds, budget-matched
        # the report rebuilt through the server alone reproduces the local one
        out = tiny_study["folder"] / "via-server"
        completed = cli(
            "report", "tiny", "--tracking-uri", f"http://127.0.0.1:{port}", "--out", str(out), cwd=tiny_study["folder"]
        )
        assert completed.returncode == 0, completed.stderr
        assert (out / "tiny" / "summary.json").read_text() == (tiny_study["report_dir"] / "summary.json").read_text()
        # in a real browser, the printed address is the training-runs table: the study opens onto its
        # architecture runs, and the study run's page leads with the verdict
        study_run = runs_by_role(client, experiment.experiment_id, "study")[0]
        names, description = browse_ui(lines[heading + 1].split(": ", 1)[1], study_run.info.run_id)
        assert {"lstm", "gru", "simple_rnn", "gru-at-lstm-budget"} <= set(names)
        assert description.startswith("Verdict")
        assert "lstm was still improving at the last epoch in 2 of 2 fits" in description
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def test_run_study_from_python_returns_dataframes_and_leaves_the_callers_mlflow_and_collector_settings(
    tmp_path, monkeypatch
):
    import gc

    import mlflow

    import rnncompare
    from rnncompare.orchestration.progress import Progress
    from rnncompare.runtime.memory import FULL_COLLECTION_EVERY

    class CollectorWatch(Progress):  # what Python's collector was set to while the study trained
        def architecture_done(self, architecture, outcome):
            self.thresholds = gc.get_threshold()

    monkeypatch.chdir(tmp_path)
    callers = gc.get_threshold()
    gc.set_threshold(500, 5, 5)  # the notebook's own collector settings, which the study leaves
    watch = CollectorWatch(enabled=False)
    mine = f"sqlite:///{tmp_path}/notebook.db"  # the notebook's own store and experiment, which the study leaves
    # the notebook's fluent API, set by hand: its URI and active experiment stay
    mlflow.set_tracking_uri(mine)
    own_experiment = mlflow.set_experiment("notebook-own").experiment_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mine)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "7")
    try:
        result = rnncompare.run_study(
            {"study": "notebook", "architectures": ["gru"], "tracking": {"uri": f"sqlite:///{tmp_path}/nb.db"}},
            overrides={"tuner.max_trials": 1, "tuner.epochs": 2, "search.units.max": 16, "evaluation.seeds": 2},
            progress=watch,
        )
        assert watch.thresholds == (500, 5, FULL_COLLECTION_EVERY)  # full collections rarer while it trains
        assert gc.get_threshold() == (500, 5, 5)
    finally:
        gc.set_threshold(*callers)
    assert list(result.architectures.index) == ["gru"]
    assert result.architectures.loc["gru", "params_total"] == CELL_PARAMETERS["gru"](8, 16) + 170
    assert len(result.trials) == 1 and result.trials.loc[0, "status"] == "FINISHED"
    assert (result.report_dir / "summary.json").is_file()
    assert result.summary["architectures"]["gru"]["trials_finished"] == 1
    assert result.summary["architectures"]["gru"]["seeds"]["stats"]["n"] == 2
    assert (
        result.architectures.loc["gru", "test_accuracy_seed_mean"]
        == result.summary["architectures"]["gru"]["seeds"]["stats"]["mean"]
    )
    assert (mlflow.get_tracking_uri(), os.environ["MLFLOW_EXPERIMENT_ID"]) == (mine, "7")
    with mlflow.start_run() as notebook_run:  # lands where the notebook pointed, not in the study's store
        assert notebook_run.info.experiment_id == own_experiment
    assert MlflowClient(mine).get_run(notebook_run.info.run_id).info.experiment_id == own_experiment
    mlflow.set_tracking_uri(None)
    study_store = MlflowClient(f"sqlite:///{tmp_path}/nb.db")  # the selected model went to the study's store
    experiment = study_store.get_experiment_by_name("notebook")
    assert result.summary["architectures"]["gru"]["run_id"] in {
        model.source_run_id for model in study_store.search_logged_models(experiment_ids=[experiment.experiment_id])
    }


def test_each_architecture_run_holds_its_selected_and_a_representative_seed_model(tiny_study, monkeypatch):
    import mlflow
    import numpy as np

    from rnncompare.config import load_config
    from rnncompare.tasks import load_task
    from rnncompare.training.draws import SeedDraws

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_study["uri"])
    client = MlflowClient(tracking_uri=tiny_study["uri"])
    experiment = client.get_experiment_by_name("tiny")
    config = load_config(tiny_study["folder"] / "tiny.yaml")
    task = load_task(config.task, config.seed)
    for run in runs_by_role(client, experiment.experiment_id, "architecture"):
        # loaded through pyfunc alone, each model scores on the test split what its run recorded
        model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
        accuracy = np.mean(np.argmax(model.predict(task.x_test), axis=-1) == task.y_test)
        assert accuracy == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-6)
        assert model.metadata.get_input_schema().inputs[0].shape == (-1, *task.x_test.shape[1:])
        output = model.metadata.get_output_schema().inputs[0]
        assert output.shape == (-1, task.output_spec.classes) and output.type == np.dtype("float32")
        seeds = {
            s.data.tags["rnncompare.seed"]: s
            for s in runs_by_role(client, experiment.experiment_id, "seed")
            if s.data.tags["mlflow.parentRunId"] == run.info.run_id
        }
        chosen = run.data.tags["rnncompare.seed_model"]
        mean = np.mean([s.data.metrics["test_accuracy"] for s in seeds.values()])
        assert chosen == min(seeds, key=lambda seed: (abs(seeds[seed].data.metrics["test_accuracy"] - mean), int(seed)))
        seed_model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/seed_model")
        # a seed run is tested on the split its tag names (its own where `evaluation.vary` has split)
        drawn = SeedDraws(config, task).draw(int(chosen))
        assert str(drawn.split_seed) == seeds[chosen].data.tags["rnncompare.split_seed"]
        seed_accuracy = np.mean(np.argmax(seed_model.predict(drawn.task.x_test), axis=-1) == drawn.task.y_test)
        assert seed_accuracy == pytest.approx(seeds[chosen].data.metrics["test_accuracy"], abs=1e-6)
