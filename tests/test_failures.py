"""What a study does when the world goes wrong mid-way: one line, a non-zero exit, and no run left RUNNING."""

import os

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

TINY = """\
study: {study}
task: {task}
architectures: [gru]
search:
  units: {{min: 8, max: 16, step: 8}}
tuner: {{max_trials: 3, epochs: 2, max_consecutive_failures: 2}}
evaluation: {{seeds: 0}}
"""


def statuses(folder, study):
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    return sorted(
        (run.data.tags["rnncompare.role"], run.info.status, run.data.tags.get("rnncompare.failure_reason"))
        for run in client.search_runs([experiment.experiment_id])
    )


def test_trials_failing_in_a_row_stop_the_study_with_one_line(tmp_path, cli):
    rng = np.random.default_rng(0)
    # Targets near 1e25: their squared error overflows float32, so every trial's loss is infinite.
    np.savez(tmp_path / "huge.npz", x=rng.normal(size=(100, 5, 2)), y=rng.normal(size=100) * 1e25)
    (tmp_path / "s.yaml").write_text(TINY.format(study="diverge", task="{name: npz, path: huge.npz, kind: regression}"))
    completed = cli("run", "s.yaml", cwd=tmp_path)
    assert completed.returncode == 1
    assert completed.stderr.splitlines()[-1] == (
        "error: gru: 2 trials in a row failed (last: FailedTrial: loss became NaN or infinite at epoch 1); the study "
        "stops. Each is a FAILED run with its reason; fix the cause and run the same command to resume"
    )
    reason = "FailedTrial: loss became NaN or infinite at epoch 1"
    assert statuses(tmp_path, "diverge") == [
        ("architecture", "FAILED", None),
        ("study", "FAILED", None),
        ("trial", "FAILED", reason),
        ("trial", "FAILED", reason),
    ]


def test_a_full_disk_while_writing_the_report_is_one_line_and_closes_every_run(tmp_path, cli):
    (tmp_path / "s.yaml").write_text(TINY.format(study="full", task="{name: digits}"))
    report = tmp_path / "mlruns" / "reports" / "full"
    report.mkdir(parents=True)
    os.symlink("/dev/full", report / "summary.json")  # every write there fails with ENOSPC, as on a full disk
    completed = cli("run", "s.yaml", "--set", "tuner.max_trials=1", cwd=tmp_path)
    assert completed.returncode == 1
    assert (
        completed.stderr.splitlines()[-1]
        == "error: cannot write mlruns/reports/full/summary.json: No space left on device"
    )
    assert "Traceback" not in completed.stderr
    assert [status for _, status, _ in statuses(tmp_path, "full")] == ["FINISHED", "FAILED", "FINISHED"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("tracking.uri=sqlite:////sys/mlflow.db", "error: tracking.uri: /sys/mlflow.db is not writable"),
        (
            "tracking.uri=sqlite:////proc/rnncompare/mlflow.db",
            "error: tracking.uri: cannot create /proc/rnncompare for sqlite:////proc/rnncompare/mlflow.db",
        ),
        ("tuner.dir=/sys/rnncompare", "error: tuner.dir: cannot write to /sys/rnncompare: /sys is not writable"),
        (
            "report.dir=s.yaml/reports",
            "error: report.dir: cannot create s.yaml/reports: s.yaml is a file, not a folder",
        ),
    ],
)
def test_read_only_or_impossible_folders_stop_before_anything_is_written(cli, tmp_path, override, message):
    # /sys and /proc refuse new files even to root, like a read-only mount
    (tmp_path / "s.yaml").write_text(TINY.format(study="ro", task="{name: digits}"))
    completed = cli("run", "s.yaml", "--set", override, cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.startswith(message) and len(completed.stderr.splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["s.yaml"]
