"""A sequential study end to end (`evaluation.seeds: {min, max}`): GRU against SimpleRNN on the adding problem at
length 30 settles before its twelfth seed; summary.json, the console and MLflow say how; a study killed in its
second round and run again ends with the same rounds, no seed run lost or doubled."""

import json

import pytest
from mlflow.tracking import MlflowClient

from conftest import killing_env, rnncompare

pytestmark = pytest.mark.slow

STUDY = """\
study: settle
task: {name: adding, length: 30}
architectures: [gru, simple_rnn]
search:
  units: {min: 16, max: 16, step: 16}
  dropout: {min: 0.0, max: 0.0, step: 0.1}
training: {learning_rate: 0.01, min_delta: 0.0001}
tuner: {max_trials: 1, epochs: 20, batch_size: 64}
evaluation: {seeds: {min: 3, max: 12}, aso_bootstrap: 200}
execution: {backend: jax, vectorize: false, workers: 1}
"""


def seed_runs(uri: str) -> dict[str, list[tuple[str, str]]]:
    """Each architecture's seed runs as (seed, status), read back through MLflow."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("settle")
    runs = client.search_runs([experiment.experiment_id], "tags.`rnncompare.role` = 'seed'", max_results=1000)
    found: dict[str, list[tuple[str, str]]] = {}
    for run in runs:
        found.setdefault(run.data.tags["rnncompare.architecture"], []).append(
            (run.data.tags["rnncompare.seed"], run.info.status)
        )
    return {name: sorted(values) for name, values in found.items()}


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("settle")
    (folder / "study.yaml").write_text(STUDY)
    completed = rnncompare("run", "study.yaml", cwd=folder, timeout=600)
    assert completed.returncode == 0, completed.stderr
    summary = json.loads((folder / "mlruns" / "reports" / "settle" / "summary.json").read_text())
    return {"folder": folder, "summary": summary, "stderr": completed.stderr}


def test_the_pair_settles_before_the_most_seeds_and_says_so_everywhere(settled):
    summary = settled["summary"]
    [pair] = summary["comparisons"]
    assert (pair["decision"], pair["winner"]) == ("a_better", "gru")
    assert 3 <= pair["settled_at"] < 12
    sequential = summary["sequential"]
    assert sequential["seeds_run"] == {"gru": pair["settled_at"], "simple_rnn": pair["settled_at"]}
    assert sequential["fits_saved"] == 24 - 2 * pair["settled_at"]
    assert pair["verdict"].startswith("gru better")
    assert f", settled at {pair['settled_at']} seeds (P(gru > simple_rnn) in " in pair["verdict"]
    # the added seeds are seed runs in MLflow, each finished once, the same seeds for both
    runs = seed_runs(f"sqlite:///{settled['folder'] / 'mlruns' / 'mlflow.db'}")
    assert [len(runs["gru"]), len(runs["simple_rnn"])] == [pair["settled_at"]] * 2
    assert {status for values in runs.values() for _, status in values} == {"FINISHED"}
    assert [seed for seed, _ in runs["gru"]] == [seed for seed, _ in runs["simple_rnn"]]
    # the MLflow study run's description says how the pair settled, and how many seeds ran
    client = MlflowClient(f"sqlite:///{settled['folder'] / 'mlruns' / 'mlflow.db'}")
    [study_run] = client.search_runs(
        [client.get_experiment_by_name("settle").experiment_id], "tags.`rnncompare.role` = 'study'"
    )
    note = study_run.data.tags["mlflow.note.content"]
    assert f", settled at {pair['settled_at']} seeds (P(gru > simple_rnn) in " in note
    assert f"Seeds run: gru {pair['settled_at']}, simple_rnn {pair['settled_at']} (at most 12 each)" in note
    stderr = settled["stderr"]
    assert "seeds     round to 5 seeds: gru, simple_rnn (open: gru vs simple_rnn)" in stderr
    assert f"seeds     gru vs simple_rnn: gru better, settled at {pair['settled_at']} seeds" in stderr
    assert f"seeds     run: gru {pair['settled_at']}, simple_rnn {pair['settled_at']} of at most 12;" in stderr
    # every interval stays inside the metric's range
    for row in summary["architectures"].values():
        stats = row["seeds"]["stats"]
        assert 0 <= stats["ci_low"] <= stats["mean"] <= stats["ci_high"]


def test_a_study_killed_in_a_round_resumes_with_the_same_rounds(settled, tmp_path):
    uri = f"sqlite:///{settled['folder'] / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("settle")
    runs = client.search_runs([experiment.experiment_id], max_results=1000, order_by=["attributes.start_time ASC"])
    # the epochs before round two's second gru seed: every trial, the first three seeds of each, and seed 4 of gru
    epochs = [
        int(run.data.metrics["epochs_run"]) for run in runs if run.data.tags.get("rnncompare.role") in ("trial", "seed")
    ]
    kill_at = sum(epochs[: 2 + 6 + 1]) + 1
    (tmp_path / "study.yaml").write_text(STUDY)
    killed = rnncompare("run", "study.yaml", cwd=tmp_path, env=killing_env(kill_at), timeout=600)
    assert killed.returncode == -9
    again = rnncompare("run", "study.yaml", cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    resumed = json.loads((tmp_path / "mlruns" / "reports" / "settle" / "summary.json").read_text())
    assert resumed["sequential"]["seeds_run"] == settled["summary"]["sequential"]["seeds_run"]
    assert resumed["comparisons"][0]["settled_at"] == settled["summary"]["comparisons"][0]["settled_at"]
    finished = {
        name: [seed for seed, status in values if status == "FINISHED"]
        for name, values in seed_runs(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}").items()
    }
    whole = seed_runs(uri)
    assert finished == {name: [seed for seed, _ in values] for name, values in whole.items()}
