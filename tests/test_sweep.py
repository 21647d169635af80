"""A sweep expands into one study per value and ends with a comparison report; `compare` rebuilds it."""

import json

import pytest
from mlflow.tracking import MlflowClient

from rnncompare.config import expand_sweep
from rnncompare.core.errors import UserError

SWEEP = """\
study: mem
sweep: {task.length: [4, 8]}
task: {name: adding, samples: 120}
architectures: [gru]
search:
  units: {min: 8, max: 8, step: 8}
tuner: {max_trials: 1, epochs: 1, batch_size: 64}
evaluation: {seeds: 2}
"""


def test_a_sweep_expands_into_named_standalone_studies():
    base, expanded = expand_sweep(
        {"study": "mem", "task": {"name": "adding"}, "sweep": {"task.length": [10, 50], "seed": [1, 2]}}
    )
    assert base.sweep == {"task.length": [10, 50], "seed": [1, 2]}
    assert [config.study for _, config in expanded] == [
        "mem-length10-seed1",
        "mem-length10-seed2",
        "mem-length50-seed1",
        "mem-length50-seed2",
    ]
    assert [(config.task.length, config.seed) for _, config in expanded] == [(10, 1), (10, 2), (50, 1), (50, 2)]
    assert all(config.sweep == {} for _, config in expanded)


@pytest.mark.parametrize(
    "sweep, message",
    [
        ({"task.length": [10, 0]}, r"^sweep task.length=0: task.length must be greater than or equal to 1, got 0$"),
        ({"tracking.uri": ["x"]}, r"sweep: can vary a dotted key such as task.length or seed, not 'tracking.uri'"),
        ({"task.length": []}, r"sweep.task.length must list at least 1 item"),
    ],
)
def test_bad_sweeps_are_one_clear_line(sweep, message):
    with pytest.raises(UserError, match=message):
        expand_sweep({"task": {"name": "adding"}, "sweep": sweep})


@pytest.mark.slow
def test_a_sweep_runs_each_study_and_compares_them(tmp_path, cli):
    (tmp_path / "mem.yaml").write_text(SWEEP)
    completed = cli("run", "mem.yaml", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    for length in (4, 8):
        experiment = client.get_experiment_by_name(f"mem-length{length}")
        study = client.search_runs([experiment.experiment_id], "tags.`rnncompare.role` = 'study'")[0]
        assert study.data.tags["rnncompare.sweep.task.length"] == str(length)
        assert study.data.params["task.length"] == str(length) and study.info.status == "FINISHED"
    folder = tmp_path / "mlruns" / "reports" / "mem"
    comparison = json.loads((folder / "comparison.json").read_text())
    assert comparison["axis"] == "task.length" and [s["x"] for s in comparison["studies"]] == [4, 8]
    for study in comparison["studies"]:
        summary = json.loads((tmp_path / "mlruns" / "reports" / study["study"] / "summary.json").read_text())
        assert study["architectures"]["gru"]["mean"] == summary["architectures"]["gru"]["seeds"]["stats"]["mean"]
        assert study["baseline"] == summary["baseline"]["test_mse"]
    markdown = (folder / "comparison.md").read_text()
    assert "| task.length | gru | constant predictor | verdicts |" in markdown
    assert (folder / "figures" / "comparison.png").stat().st_size > 10_000

    # `compare` rebuilds the same comparison from the tracking store alone, in the order given
    out = tmp_path / "again"
    completed = cli("compare", "mem-length8", "mem-length4", "--out", str(out), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert (out / "comparison.json").read_text() == (folder / "comparison.json").read_text()
    completed = cli("compare", "mem-length4", "nope", cwd=tmp_path)
    assert completed.returncode == 2 and completed.stderr.startswith("error: study 'nope' not found in ")


def test_an_empty_sweep_override_runs_one_study_of_a_swept_experiment(tmp_path):
    experiment = tmp_path / "mem.yaml"
    experiment.write_text(SWEEP)
    base, expanded = expand_sweep(experiment, ["sweep={}", "task.length=8", "study=mem-length8"])
    assert base.sweep == {} and [(config.study, config.task.length) for _, config in expanded] == [("mem-length8", 8)]
    # a sweep given later replaces the file's instead of adding to it
    base, expanded = expand_sweep(experiment, ["sweep={seed: [1, 2]}"])
    assert base.sweep == {"seed": [1, 2]} and len(expanded) == 2
