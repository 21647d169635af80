"""`analysis.importance`: fANOVA shares of the searched hyperparameters, from keras-tuner's finished trials, through
Optuna's evaluator. They sum to 1, find the hyperparameter the objective depends on, and are absent (with the
reason) where they cannot be measured."""

import numpy as np
import pytest

from rnncompare.analysis.importance import MIN_TRIALS, importance, searched_ranges, why_absent

SEARCH = {
    "units": {"min": 8, "max": 64, "step": 8},
    "dropout": {"min": 0.0, "max": 0.5, "step": 0.1},
    "layers": {"min": 1, "max": 1, "step": 1},
    "learning_rate": {"min": 0.0003, "max": 0.03, "sampling": "log"},
}


def trials(count, score):
    rng = np.random.default_rng(3)
    drawn = []
    for _ in range(count):
        values = {
            "units": int(rng.choice(range(8, 65, 8))),
            "dropout": float(rng.choice([0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5])),  # keras-tuner's noise
            "layers": 1,
            "learning_rate": float(np.exp(rng.uniform(np.log(0.0003), np.log(0.03)))),
        }
        drawn.append((values, score(values)))
    return drawn


def test_the_shares_sum_to_one_and_name_the_hyperparameter_the_objective_follows():
    shares = importance(trials(12, lambda v: abs(np.log10(v["learning_rate"]) + 2.5)), SEARCH, seed=0)
    assert set(shares) == {"units", "dropout", "learning_rate"}  # layers was not searched (min == max)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert max(shares, key=shares.get) == "learning_rate" and shares["learning_rate"] > 0.6
    # seeded: the same trials give the same shares (a rebuilt report reproduces summary.json)
    assert importance(trials(12, lambda v: abs(np.log10(v["learning_rate"]) + 2.5)), SEARCH, seed=0) == shares


def test_width_matters_when_the_objective_follows_the_width():
    shares = importance(trials(16, lambda v: 1.0 / v["units"]), SEARCH, seed=1)
    assert max(shares, key=shares.get) == "units"


def test_too_few_trials_or_one_searched_hyperparameter_gives_no_importance_and_says_why():
    assert importance(trials(MIN_TRIALS - 1, lambda v: v["dropout"]), SEARCH, seed=0) is None
    assert why_absent(7, searched_ranges(SEARCH)) == "7 finished trial(s); fANOVA needs 8 or more"
    only_units = {**SEARCH, "dropout": {"min": 0.1, "max": 0.1, "step": 0.1}, "learning_rate": None}
    assert list(searched_ranges(only_units)) == ["units"]
    assert why_absent(20, searched_ranges(only_units)) == (
        "only one hyperparameter was searched (units): there is nothing to apportion"
    )
    assert importance(trials(20, lambda v: v["units"]), only_units, seed=0) is None


def test_trials_that_all_score_the_same_share_evenly_and_diverged_ones_are_left_out():
    flat = importance(trials(10, lambda v: 0.5), SEARCH, seed=0)
    assert flat == pytest.approx({"units": 1 / 3, "dropout": 1 / 3, "learning_rate": 1 / 3})
    with_nan = trials(9, lambda v: v["dropout"]) + [({"units": 8, "dropout": 0.0, "learning_rate": 0.001}, np.nan)]
    assert importance(with_nan, SEARCH, seed=0) is not None  # 9 finite trials remain


@pytest.mark.slow
def test_a_random_search_of_ten_trials_writes_each_architectures_importance(cli, tmp_path):
    import json

    from mlflow.tracking import MlflowClient

    (tmp_path / "s.yaml").write_text(
        "study: matters\narchitectures: [gru]\nsearch:\n  units: {min: 8, max: 24, step: 8}\n"
        "  dropout: {min: 0.0, max: 0.2, step: 0.1}\n  learning_rate: {min: 0.001, max: 0.03, sampling: log}\n"
        "tuner: {max_trials: 10, epochs: 1, batch_size: 256}\nevaluation: {seeds: 0}\ntracking: {log_models: false}\n"
    )
    completed = cli("run", "s.yaml", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    summary = json.loads((tmp_path / "mlruns" / "reports" / "matters" / "summary.json").read_text())
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("matters").experiment_id], "tags.`rnncompare.role` = 'architecture'"
    )
    for run in runs:
        row = summary["architectures"][run.data.tags["rnncompare.architecture"]]
        assert set(row["importance"]) == {"units", "dropout", "learning_rate"} and row["importance_note"] is None
        assert sum(row["importance"].values()) == pytest.approx(1.0)
        # the architecture run carries them as metrics
        assert {key: value for key, value in run.data.metrics.items() if key.startswith("importance_")} == {
            f"importance_{name}": pytest.approx(share) for name, share in row["importance"].items()
        }
    report = (tmp_path / "mlruns" / "reports" / "matters" / "report.md").read_text()
    assert "## Which hyperparameters matter" in report and "![importance](figures/importance.png)" in report
