"""Tiny end-to-end studies beyond the digits fixture: every task and data format, regression and text, offline."""

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from test_models import CELL_PARAMETERS

pytestmark = pytest.mark.slow


def run_tiny(
    cli,
    tmp_path,
    study: str,
    task_yaml: str,
    extra_yaml: str = "tracking: {log_models: false}  # checked once, below and in test_end_to_end\n",
):
    (tmp_path / f"{study}.yaml").write_text(
        f"study: {study}\n{task_yaml}\n{extra_yaml}architectures: [lstm, gru]\n"
        "search:\n  units: {min: 8, max: 16, step: 8}\n"
        "tuner: {max_trials: 2, epochs: 2, batch_size: 64}\nevaluation: {seeds: 2, aso_bootstrap: 200}\n"
    )
    completed = cli("run", f"{study}.yaml", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    summary = json.loads((tmp_path / "mlruns" / "reports" / study / "summary.json").read_text())
    return runs, summary, (tmp_path / "mlruns" / "reports" / study / "report.md").read_text()


def test_a_regression_study_speaks_mse_and_mae_end_to_end(cli, tmp_path):
    # a learning rate too small to move in 2 epochs: neither cell learns, and the verdict must say so
    runs, summary, markdown = run_tiny(
        cli,
        tmp_path,
        "adding10",
        "task: {name: adding, length: 10, samples: 200}",
        "training: {learning_rate: 0.00001}\ntracking: {register_models: true}\n",
    )
    by_role = {}
    for run in runs:
        by_role.setdefault(run.data.tags["rnncompare.role"], []).append(run)
    assert {role: len(group) for role, group in by_role.items()} == {
        "study": 1,
        "architecture": 2,
        "trial": 4,
        "seed": 4,
    }
    assert all(run.info.status == "FINISHED" for run in runs)
    for trial in by_role["trial"]:
        metrics = trial.data.metrics
        assert {"loss", "val_loss", "mae", "val_mae", "best_val_mae", "gap_mae", "gap_mae_last"} <= set(metrics)
        assert not any("accuracy" in name for name in metrics)
        units = int(trial.data.params["units"])
        assert metrics["params_total"] == CELL_PARAMETERS[trial.data.params["architecture"]](2, units) + units + 1
    for seed in by_role["seed"]:
        assert seed.data.metrics["test_mse"] == seed.data.metrics["test_loss"]
        assert "test_mae" in seed.data.metrics
    for architecture in by_role["architecture"]:
        assert {"test_mse_mean", "test_mse_ci_low", "test_mae_seed_mean"} <= set(architecture.data.metrics)
    assert summary["kind"] == "regression" and summary["metrics"]["headline"] == "test_mse"
    assert summary["ranked_by"] == "mean test MSE over seeds"
    means = [summary["architectures"][name]["seeds"]["stats"]["mean"] for name in summary["ranking"]]
    assert means == sorted(means)  # lower MSE ranks first
    baseline = summary["baseline"]["test_mse"]
    assert 0.05 < baseline < 0.5  # the variance of a sum of two uniform values is 1/6
    assert f"A constant predictor (the training mean) scores {baseline:.3f} test MSE." in markdown
    for _name, row in summary["architectures"].items():
        assert row["diagnostics"]["learned"] is False and row["diagnostics"]["skill_mean"] < 0.1
        assert row["diagnostics"]["baseline"] == baseline
    [pair] = summary["comparisons"]
    assert pair["qualified"] is True
    lstm = summary["architectures"]["lstm"]["diagnostics"]
    where = "worse than" if lstm["skill_mean"] < -0.1 else "at"  # two epochs: about 3 x its MSE
    assert (
        f"lstm did not learn (test MSE {lstm['score_mean']:.3f} {where} the constant predictor's {baseline:.3f}"
        in pair["verdict"]
    )
    assert ["search.learning_rate", "training.patience"] in [entry["keys"] for entry in summary["suggestions"]]
    for architecture in by_role["architecture"]:
        tags = architecture.data.tags
        assert tags["rnncompare.diagnostics.learned"] == "false"
        assert tags["mlflow.note.content"].startswith(f"**{tags['rnncompare.architecture']}**: test MSE ")
        assert "did not learn" in tags["mlflow.note.content"]
    [study] = by_role["study"]
    assert study.data.tags["mlflow.note.content"].startswith("**Verdict**\n\n- Ranked by mean test MSE over seeds")
    # register_models: each selected model is a version of <study>-<architecture>, from its architecture run
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    for architecture in by_role["architecture"]:
        [version] = client.search_model_versions(
            f"name = 'adding10-{architecture.data.tags['rnncompare.architecture']}'"
        )
        assert version.run_id == architecture.info.run_id and int(version.version) == 1


def test_a_text_study_tokenizes_and_embeds_end_to_end(cli, tmp_path):
    lines = ["text,label"] + [
        f"{'good great fine' if i % 2 else 'bad poor awful'} day number {i % 7},{'pos' if i % 2 else 'neg'}"
        for i in range(120)
    ]
    (tmp_path / "reviews.csv").write_text("\n".join(lines) + "\n")
    runs, summary, _ = run_tiny(cli, tmp_path, "reviews", "task: {name: text_csv, path: reviews.csv, embedding_dim: 4}")
    assert len(runs) == 1 + 2 + 4 + 4 and all(run.info.status == "FINISHED" for run in runs)
    assert summary["kind"] == "classification" and summary["dataset"]["source"].startswith("reviews.csv")
    for name, row in summary["architectures"].items():
        units = row["hyperparameters"]["units"]
        vocabulary = 2 + 6 + 2 + 7  # padding, out-of-vocabulary, six sentiment words, day, number, seven digits
        assert row["params_total"] == vocabulary * 4 + CELL_PARAMETERS[name](4, units) + units * 2 + 2


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One store for the studies below (each has its own name): a new SQLite store takes seconds to create."""
    return f"sqlite:///{tmp_path_factory.mktemp('every') / 'store.db'}"


def write_user_data(folder, name):
    rng = np.random.default_rng(0)
    if name == "npz":
        np.savez(folder / "data.npz", x=rng.normal(size=(60, 6, 3)), y=np.arange(60) % 3, lengths=np.arange(60) % 6 + 1)
        return {"path": "data.npz"}
    if name == "csv":
        rows = ["id,step,a,b,label"] + [
            f"{i},{t},{rng.normal():.3f},{t},{'ab'[i % 2]}" for i in range(40) for t in range(2 + i % 3)
        ]
        (folder / "long.csv").write_text("\n".join(rows) + "\n")
        return {"path": "long.csv"}
    if name == "python":
        (folder / "make_data.py").write_text(
            "import numpy as np\n\ndef load():\n    rng = np.random.default_rng(1)\n"
            "    x = rng.normal(size=(50, 4, 2))\n    return x, x.sum(axis=(1, 2)) / 3\n"
        )
        return {"function": "make_data:load"}
    return {}


@pytest.mark.parametrize(
    "name, options, kind",
    [
        ("digits_pixels", {}, "classification"),
        ("japanese_vowels", {}, "classification"),
        ("italy_power", {}, "classification"),
        ("sunspots", {"window": 8}, "regression"),
        ("delayed_recall", {"length": 5, "samples": 120}, "classification"),
        ("reber", {"length": 20, "samples": 120}, "classification"),
        ("npz", None, "classification"),
        ("csv", None, "classification"),
        ("python", None, "regression"),
    ],
)
def test_every_other_task_runs_end_to_end(tmp_path, monkeypatch, shared_store, name, options, kind):
    import rnncompare

    monkeypatch.chdir(tmp_path)
    options = write_user_data(tmp_path, name) if options is None else options
    result = rnncompare.run_study(
        {
            "study": f"every-{name}",
            "task": {"name": name, **options},
            "architectures": ["gru"],
            "search": {"units": {"min": 8, "max": 8, "step": 8}},
            "tuner": {"max_trials": 1, "epochs": 1},
            "evaluation": {"seeds": 0},
            "tracking": {"uri": shared_store},
        }
    )
    assert result.summary["task"] == name and result.summary["kind"] == kind
    assert list(result.trials["status"]) == ["FINISHED"]
    assert result.summary["architectures"]["gru"]["selected"][result.summary["metrics"]["headline"]] is not None
