"""`training.bodies`: your own architecture beside the built-in cells. It gets the same head, search, seeds,
verdicts, run tree and report; every mistake in naming or writing it is one line, exit 2, nothing written."""

import json

import pytest
from mlflow.tracking import MlflowClient

BODIES = """\
import keras


def conv_body(inputs, units, dropout, layers):
    hidden = inputs
    for _ in range(layers):
        hidden = keras.layers.Conv1D(units, 3, padding="same", activation="relu")(hidden)
    return keras.layers.GlobalAveragePooling1D()(hidden)


def raises(inputs, units, dropout, layers):
    raise RuntimeError("no such layer")


def three_d(inputs, units, dropout, layers):
    return keras.layers.Conv1D(units, 3)(inputs)
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "conv.py").write_text(BODIES)
    (tmp_path / "models" / "broken.py").write_text("import no_such_package\n")
    (tmp_path / "s.yaml").write_text(
        "study: own\nsearch:\n  units: {min: 8, max: 8, step: 8}\ntuner: {max_trials: 1, epochs: 2}\n"
        "evaluation: {seeds: 2, aso_bootstrap: 100}\n"
    )
    return tmp_path


@pytest.mark.parametrize(
    "architectures, message",
    [
        (
            "[lstm, 'models/missing.py:conv_body']",
            "error: architectures: conv_body: models/missing.py:conv_body: file models/missing.py not found",
        ),
        (
            "[lstm, 'models/broken.py:conv_body']",
            "error: architectures: conv_body: models/broken.py:conv_body: cannot import models/broken.py "
            "(ModuleNotFoundError: No module named 'no_such_package')",
        ),
        (
            "[lstm, 'models/conv.py:nothing']",
            "error: architectures: nothing: models/conv.py:nothing: models/conv.py has no function 'nothing'",
        ),
        (
            "[lstm, 'models/conv.py:raises']",
            "error: architectures: raises: models/conv.py:raises raised RuntimeError: no such layer",
        ),
        (
            "[lstm, 'models/conv.py:three_d']",
            "error: architectures: three_d: models/conv.py:three_d must return a 2-D Keras tensor (batch, features), "
            "got shape (None, 6, 8)",
        ),
        (
            "[{name: lstm, body: 'models/conv.py:conv_body'}]",
            "error: --set: architectures[0]: the name 'lstm' is a built-in architecture's; name "
            "'models/conv.py:conv_body' otherwise with {name: NAME, body: ...}",
        ),
        (
            "['models/conv.py:conv_body', {name: conv_body, body: 'models/conv.py:raises'}]",
            "error: --set: architectures must not repeat an architecture, got conv_body twice",
        ),
        (
            "[lstm, lsmt]",
            "error: --set: architectures[1] must be a built-in architecture or your own ('file.py:function', or "
            "{name: NAME, body: 'file.py:function'}), got 'lsmt' (did you mean lstm?); built-in: lstm, gru, "
            "simple_rnn, lstm_nig, lstm_nfg, lstm_nog, lstm_niaf, lstm_noaf, lstm_cifg, lstm_fgr, lstm_peephole, "
            "lstm_no_forget_bias",
        ),
    ],
)
def test_a_body_that_cannot_serve_is_one_line_and_nothing_is_written(cli, folder, architectures, message):
    completed = cli("run", "s.yaml", "--set", f"architectures={architectures}", cwd=folder)
    assert completed.returncode == 2
    assert completed.stderr == message + "\n"
    assert not (folder / "mlruns").exists()


@pytest.mark.slow
def test_a_study_of_the_lstm_and_your_conv_body_runs_end_to_end(cli, folder):
    completed = cli(
        "run", "s.yaml", "--set", "architectures=[lstm, {name: conv, body: 'models/conv.py:conv_body'}]", cwd=folder
    )
    assert completed.returncode == 0, completed.stderr
    summary = json.loads((folder / "mlruns" / "reports" / "own" / "summary.json").read_text())
    assert set(summary["architectures"]) == {"lstm", "conv"}
    # Conv1D(8, 3) on 8 features, then the same Dense(10) head as the LSTM's
    assert summary["architectures"]["conv"]["params_total"] == (3 * 8 * 8 + 8) + (8 * 10 + 10)
    assert summary["architectures"]["conv"]["seeds"]["stats"]["n"] == 2
    assert [(pair["a"], pair["b"]) for pair in summary["comparisons"]] == [("lstm", "conv")]
    report = (folder / "mlruns" / "reports" / "own" / "report.md").read_text()
    assert "conv: your own architecture, `models/conv.py:conv_body`" in report
    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("own")
    runs = client.search_runs([experiment.experiment_id], "tags.`rnncompare.role` = 'architecture'")
    conv = next(run for run in runs if run.data.tags["rnncompare.architecture"] == "conv")
    assert conv.data.params["body"] == "models/conv.py:conv_body" and conv.info.status == "FINISHED"
    # the body's source rides with its run, so the study reruns from the store; and its model is logged
    assert [item.path for item in client.list_artifacts(conv.info.run_id, "body")] == ["body/conv.py"]
    assert client.search_logged_models(experiment_ids=[experiment.experiment_id], filter_string="name = 'model'")
