import subprocess
import sys
import time

import pytest

from conftest import REPO, clean_env, rnncompare
from rnncompare.errors import UserError
from rnncompare.tracking import check_store, resolve_tracking_uri


def test_help_answers_at_once_without_importing_tensorflow():
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from rnncompare import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TF', 'tensorflow' in sys.modules, 'mlflow' in sys.modules, time.perf_counter() - t)"
    )
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env())
    assert time.perf_counter() - started < 5
    flag, tensorflow, mlflow, seconds = completed.stdout.strip().splitlines()[-1].split()
    assert (tensorflow, mlflow) == ("False", "False")
    assert float(seconds) < 1.0
    assert "run" in completed.stdout and "validate" in completed.stdout and "report" in completed.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "tuner.max_trials=0"], "error: --set: tuner.max_trials must be greater than or equal to 1, got 0"),
        (["--set", "architectures=[lstm, transformer]"],
         "error: --set: architectures[1] must be 'lstm', 'gru' or 'simple_rnn', got 'transformer'"),
        (["--set", "search.dropout.max=1.5"], "error: --set: search.dropout.max must be less than 1, got 1.5"),
        (["--set", "tuner.max_trail=2"], "error: --set: unknown key tuner.max_trail (did you mean tuner.max_trials?)"),
        (["--set", "tracking.uri=./mlruns"], "error: tracking.uri: './mlruns' is a plain folder store"),
    ],
)
def test_bad_config_gives_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    completed = rnncompare("run", str(REPO / "experiments" / "quickstart.yaml"), *args, cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.startswith(message)
    assert len(completed.stderr.strip().splitlines()) == 1
    assert "Traceback" not in completed.stderr
    assert list(tmp_path.iterdir()) == []  # no mlruns/, no tuner folders, no report


def test_bad_experiment_file_is_named(tmp_path):
    (tmp_path / "x.yaml").write_text("search:\n  dropout: {min: 0.0, max: 1.5, step: 0.1}\n")
    completed = rnncompare("validate", "x.yaml", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == "error: x.yaml: search.dropout.max must be less than 1, got 1.5\n"


def test_validate_checks_config_and_data_and_writes_nothing(tmp_path):
    completed = rnncompare("validate", str(REPO / "experiments" / "quickstart.yaml"), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "ok: study quickstart: lstm, gru, simple_rnn on digits: 1257 train / 270 validation / 270 test" in completed.stdout
    assert list(tmp_path.iterdir()) == []


def test_tasks_lists_the_built_in_tasks(tmp_path):
    completed = rnncompare("tasks", cwd=tmp_path)
    assert completed.returncode == 0
    assert completed.stdout.startswith("digits")


def test_report_of_an_unknown_study_is_a_user_error(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    completed = rnncompare("report", "nope", "--tracking-uri", uri, cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == f"error: study 'nope' not found in {uri}; the store holds no studies\n"


def test_tracking_uri_precedence(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None) == "sqlite:///mlruns/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert resolve_tracking_uri(None) == "sqlite:///env.db"
    assert resolve_tracking_uri("http://127.0.0.1:5005") == "http://127.0.0.1:5005"


def test_an_unreachable_server_fails_within_seconds():
    started = time.perf_counter()
    with pytest.raises(UserError, match=r"^tracking.uri: cannot reach the MLflow server at http://127.0.0.1:9 "):
        check_store("http://127.0.0.1:9")
    assert time.perf_counter() - started < 6
