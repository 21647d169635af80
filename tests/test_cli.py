import socket
import subprocess
import sys
import time

import pytest

from rnncompare.core.architectures import ARCHITECTURES
from rnncompare.core.errors import UserError
from rnncompare.tracking import check_store, resolve_tracking_uri

from conftest import REPO, SCRIPTS, clean_env, free_port

BUILT_IN = ", ".join(ARCHITECTURES)
ARCHITECTURE_MESSAGE = (
    "architectures[1] must be a built-in architecture or your own ('file.py:function', or {{name: NAME, body: "
    "'file.py:function'}}), got '{got}'; built-in: " + BUILT_IN
)


def test_help_answers_at_once_without_importing_tensorflow():
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(SCRIPTS / "help_imports.py")], capture_output=True, text=True, env=clean_env()
    )
    assert time.perf_counter() - started < 5
    _flag, tensorflow, mlflow, seconds = completed.stdout.strip().splitlines()[-1].split()
    assert (tensorflow, mlflow) == ("False", "False")
    assert float(seconds) < 1.0
    assert "run" in completed.stdout and "validate" in completed.stdout and "report" in completed.stdout


def test_run_answers_a_bad_file_or_key_before_importing_what_a_study_needs(tmp_path):
    (tmp_path / "bad.yaml").write_text("study: bad\ntuner: {max_trials: 0}\n")
    completed = subprocess.run(
        [sys.executable, str(SCRIPTS / "bad_input_imports.py"), str(REPO / "experiments" / "quickstart.yaml")],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert completed.stdout.strip() == "[2, 2, 2] []"
    assert completed.stderr.splitlines()[:2] == [
        "error: missing.yaml: file not found",
        "error: bad.yaml: tuner.max_trials must be greater than or equal to 1, got 0",
    ]
    assert completed.stderr.splitlines()[2].startswith(
        "error: --set: unknown key tuner.max_trails (did you mean tuner.max_trials?); allowed here: "
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "bad.yaml"]  # nothing written


@pytest.mark.parametrize(
    "experiment, status, printed",
    [
        ("experiments/quickstart.yaml", 0, "ok: study quickstart"),
        ("experiments/missing.yaml", 2, "error: experiments/missing.yaml"),
    ],
)
def test_the_console_entry_keeps_the_status_the_output_and_the_exit_handlers(experiment, status, printed):
    # console_main ends the process without the interpreter's teardown: nothing else may be lost with it
    completed = subprocess.run(
        [sys.executable, str(SCRIPTS / "console_entry.py"), experiment],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=REPO,
    )
    assert completed.returncode == status
    assert printed in completed.stdout + completed.stderr
    assert completed.stdout.endswith("exit handler ran\n")
    assert "not reached" not in completed.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "tuner.max_trials=0"], "error: --set: tuner.max_trials must be greater than or equal to 1, got 0"),
        (
            ["--set", "architectures=[lstm, transformer]"],
            "error: --set: " + ARCHITECTURE_MESSAGE.format(got="transformer"),
        ),
        (["--set", "search.dropout.max=1.5"], "error: --set: search.dropout.max must be less than 1, got 1.5"),
        (["--set", "tuner.max_trail=2"], "error: --set: unknown key tuner.max_trail (did you mean tuner.max_trials?)"),
        (["--set", "tracking.uri=./mlruns"], "error: tracking.uri: './mlruns' is a plain folder store"),
        (
            ["--set", "execution.workers=0"],
            "error: --set: execution.workers must be auto or a number from 1 to 256, got 0",
        ),
        (["--set", "evaluation.seeds={min: 5, max: 3}"], "error: --set: evaluation.seeds must be a count from 0 to"),
    ],
)
def test_bad_config_gives_one_line_exit_2_and_writes_nothing(cli, tmp_path, args, message):
    completed = cli("run", str(REPO / "experiments" / "quickstart.yaml"), *args, cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.startswith(message)
    assert len(completed.stderr.strip().splitlines()) == 1
    assert "Traceback" not in completed.stderr
    assert list(tmp_path.iterdir()) == []  # no mlruns/, no tuner folders, no report


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,step,a,label\n", "error: task.path: data.csv: has a header but no rows"),
        (
            "id,step,a,label\n1,0,inf,x\n1,1,2,x\n2,0,1,y\n",
            "error: task.path: data.csv: x holds NaN or infinite values (first at sample 0, step 0)",
        ),
    ],
)
def test_bad_data_gives_one_line_exit_2_and_writes_nothing(cli, tmp_path, content, message):
    (tmp_path / "data.csv").write_text(content)
    completed = cli(
        "run",
        str(REPO / "experiments" / "quickstart.yaml"),
        "--set",
        "task.name=csv",
        "--set",
        "task.path=data.csv",
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert completed.stderr == message + "\n"
    assert [path.name for path in tmp_path.iterdir()] == ["data.csv"]


def test_bad_experiment_file_is_named(cli, tmp_path):
    (tmp_path / "x.yaml").write_text("search:\n  dropout: {min: 0.0, max: 1.5, step: 0.1}\n")
    completed = cli("validate", "x.yaml", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == "error: x.yaml: search.dropout.max must be less than 1, got 1.5\n"


def test_validate_checks_config_and_data_and_writes_nothing(cli, tmp_path):
    completed = cli("validate", str(REPO / "experiments" / "quickstart.yaml"), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert (
        "ok: study quickstart: lstm, gru, simple_rnn on digits: 1257 train / 270 validation / 270 test"
        in completed.stdout
    )
    assert list(tmp_path.iterdir()) == []


def test_tasks_lists_every_task_one_line_each(cli, tmp_path):
    from rnncompare.config import TASK_NAMES

    completed = cli("tasks", cwd=tmp_path)
    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(TASK_NAMES)
    assert (
        "adding           regression; task.length steps x 2 features (default 50); sum of the two marked values; "
        "generated from the study seed" in lines
    )
    assert (
        "japanese_vowels  classification; 7 to 29 steps x 12 features, masked; 9 classes; UEA archive (bundled)"
        in lines
    )


def test_report_of_an_unknown_study_is_a_user_error(cli, tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    completed = cli("report", "nope", "--tracking-uri", uri, cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == f"error: study 'nope' not found in {uri}; the store holds no studies\n"


@pytest.mark.parametrize("command", ["ui", "server"])
def test_a_port_in_use_or_out_of_range_is_one_line_before_anything_starts(cli, tmp_path, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = cli(command, "--port", str(port), cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == (
        f"error: --port: cannot serve on 127.0.0.1:{port} (Address already in use); choose another port with --port\n"
    )
    assert list(tmp_path.iterdir()) == []  # no store, no artifact folder
    # MLflow's server failed on these with a traceback, and exit status 0
    out_of_range = cli(command, "--port", "99999", cwd=tmp_path)
    assert out_of_range.returncode == 2
    assert out_of_range.stderr.splitlines()[-1] == (
        f"rnncompare {command}: error: argument --port: '99999' is not a port number from 1 to 65535"
    )


@pytest.mark.parametrize("command", [["report", "tiny"], ["compare", "tiny"]])
def test_a_report_folder_that_cannot_be_made_is_one_line(cli, tiny_study, tmp_path, command):
    (tmp_path / "taken").write_text("a file where the report folder would go")
    completed = cli(*command, "--tracking-uri", tiny_study["uri"], "--out", str(tmp_path / "taken"), cwd=tmp_path)
    assert completed.returncode == 2
    made = tmp_path / "taken" / "tiny" if command[0] == "report" else tmp_path / "taken"  # report: OUT/STUDY/
    assert completed.stderr == f"error: --out: cannot create {made}: {tmp_path / 'taken'} is a file, not a folder\n"


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


@pytest.mark.parametrize(
    "uri, message",
    [
        # SQLAlchemy 2.1 reads postgresql:// as psycopg 3; MLflow failed on a missing driver with a traceback
        (
            "postgresql://mlflow:secret@127.0.0.1:1/mlflow",
            "tracking.uri: postgresql:// needs the database driver psycopg, "
            "which is not installed: .venv/bin/pip install 'psycopg[binary]'",
        ),
        (
            "mysql://mlflow:secret@127.0.0.1:1/mlflow",
            "tracking.uri: mysql:// needs the database driver MySQLdb, which is "
            "not installed: .venv/bin/pip install 'mysqlclient'",
        ),
        (
            "nosuchdb://somewhere",
            "tracking.uri: nosuchdb:// is not a database SQLAlchemy knows (Can't load plugin: "
            "sqlalchemy.dialects:nosuchdb)",
        ),
    ],
)
def test_a_database_whose_driver_is_missing_is_one_line(uri, message):
    with pytest.raises(UserError) as error:
        check_store(uri)
    assert str(error.value) == message


def test_the_server_names_its_own_option_for_a_store_it_cannot_use(cli, tmp_path):
    completed = cli(
        "server", "--backend-store-uri", "mysql://u:p@127.0.0.1:1/db", "--port", str(free_port()), cwd=tmp_path
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: --backend-store-uri: mysql:// needs the database driver MySQLdb")


def test_a_server_for_other_machines_needs_authentication_or_says_it_is_open(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("RNNCOMPARE_SERVER_ADMIN_PASSWORD", raising=False)
    completed = cli("server", "--host", "0.0.0.0", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == (
        "error: --host: 0.0.0.0 serves other machines, and the server has no authentication; add --auth (admin "
        "password in $RNNCOMPARE_SERVER_ADMIN_PASSWORD), or --insecure to serve it open\n"
    )
    # the password never on the command line: the environment or a file, and not a short one
    no_password = cli("server", "--host", "0.0.0.0", "--auth", cwd=tmp_path)
    assert no_password.returncode == 2
    assert no_password.stderr.startswith("error: --auth: $RNNCOMPARE_SERVER_ADMIN_PASSWORD is not set; give the admin")
    (tmp_path / "password").write_text("short\n")
    short = cli("server", "--auth", "--admin-password-file", str(tmp_path / "password"), cwd=tmp_path)
    assert short.stderr == "error: --auth: the admin password must be at least 12 characters\n"
    missing = cli("server", "--auth", "--admin-password-file", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.stderr == f"error: --admin-password-file: {tmp_path / 'nope'}: file not found\n"
    # a users database that cannot be written is refused before the server starts
    (tmp_path / "password").write_text("a long enough passphrase\n")
    taken = tmp_path / "taken"
    taken.write_text("a file, not a folder")
    unwritable = cli(
        "server", "--auth", "--admin-password-file", str(tmp_path / "password"),
        "--auth-database-uri", f"sqlite:///{taken}/users.db", cwd=tmp_path,
    )  # fmt: skip
    assert unwritable.returncode == 2
    assert unwritable.stderr.startswith(
        f"error: --auth-database-uri: cannot create {taken} for sqlite:///{taken}/users.db"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["password", "taken"]  # no store, no artifact folder


def test_the_loopback_rule_reads_names_and_addresses():
    from rnncompare.tracking.auth import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("no-such-host.invalid")
