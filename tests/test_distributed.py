"""Distributed search on keras-tuner's chief/worker mode: a chief and two workers on loopback share one oracle per
architecture and one tracking server; every trial lands exactly once, even when a worker is killed and restarted.
"""

import json
import socket
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from rnncompare.core.errors import UserError
from rnncompare.orchestration.distributed import Role, role, role_from

from conftest import clean_env, free_port, killing_env, rnncompare, tracking_server

# Hyperband: its later rounds continue trials from their saved weights, which another worker may have run.
STUDY = """\
study: spread
architectures: [lstm, gru]
search:
  units: {min: 8, max: 24, step: 8}
tuner: {algorithm: hyperband, max_trials: 5, epochs: 3, batch_size: 128}
evaluation: {seeds: 2, aso_bootstrap: 200}
"""


@pytest.fixture(scope="module")
def server_uri(tmp_path_factory):
    """One tracking server for this module's studies (each test uses its own study name)."""
    with tracking_server(tmp_path_factory.mktemp("server")) as uri:
        yield uri


def start(folder, uri, oracle, *role, kill_at_epoch=None):
    """A `rnncompare run s.yaml` chief or worker process, its output captured."""
    worker = role[1] if role[0] == "--worker" else None
    env = killing_env(kill_at_epoch, worker=worker) if kill_at_epoch else clean_env()
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnncompare",
            "run",
            "s.yaml",
            "--set",
            f"tracking.uri={uri}",
            *role,
            "--oracle",
            oracle,
            "--wait",
            "120",
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(processes, timeout=240):
    """Wait for every process; kill what is left if the wait fails. Returns their (stdout, stderr)."""
    try:
        return [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_role_comes_from_the_flags_or_from_keras_tuners_variables():
    assert role_from(False, None, None, environ={}) is None
    assert role_from(True, None, "10.0.0.5:8000", environ={}) == Role("chief", "10.0.0.5", 8000)
    assert role_from(False, "gpu-1", "node:9000", environ={}) == Role("gpu-1", "node", 9000)
    environment = {
        "KERASTUNER_TUNER_ID": "tuner0",
        "KERASTUNER_ORACLE_IP": "10.0.0.5",
        "KERASTUNER_ORACLE_PORT": "8000",
    }
    assert role_from(False, None, None, environ=environment) == Role("tuner0", "10.0.0.5", 8000)
    assert role_from(False, None, None, environ={**environment, "KERASTUNER_TUNER_ID": "chief"}).is_chief
    assert Role("chief", "h", 8000).port_for(2) == 8002


@pytest.mark.parametrize(
    ("chief", "worker", "oracle", "environment", "message"),
    [
        (True, "w1", "h:8000", {}, "--chief and --worker: a process is one or the other"),
        (True, None, None, {}, "--oracle HOST:PORT is needed with --chief or --worker"),
        (False, "w1", "8000", {}, "--oracle: '8000' is not HOST:PORT"),
        (False, "w1", "h:80", {}, "--oracle: port '80' is not a number from 1024 to 65000"),
        (False, "my/worker", "h:8000", {}, "--worker: 'my/worker' is not a worker name"),
        (False, "chief2", "h:8000", {}, "--worker: 'chief2' is not a worker name"),
        (
            False,
            None,
            None,
            {"KERASTUNER_ORACLE_IP": "h"},
            "KERASTUNER_ORACLE_IP is set but KERASTUNER_TUNER_ID is not",
        ),
    ],
)
def test_a_bad_role_is_one_clear_error(chief, worker, oracle, environment, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        role_from(chief, worker, oracle, environ=environment)


def test_the_chiefs_ports_are_free_consecutive_ports_below_the_range_outgoing_connections_take(monkeypatch):
    low, _ = role._ephemeral_range()
    port = role.free_ports("127.0.0.1", 3)
    assert 1024 <= port and (port + 2 < low or low <= 1024 + 3)  # a machine whose range starts low: above it
    servers = [socket.create_server(("127.0.0.1", port + index)) for index in range(3)]
    for server in servers:
        server.close()
    # a range that leaves room only above it: 65531 to 65533 are the first ports of two that fit
    monkeypatch.setattr(role, "_ephemeral_range", lambda: (1000, 65530))
    with socket.create_server(("127.0.0.1", 65532)):
        assert role.free_ports("127.0.0.1", 2) == 65533  # the only pair that avoids the taken port
        with socket.create_server(("127.0.0.1", 65534)):
            assert role.free_ports("127.0.0.1", 2) is None
    # a range that leaves no room outside it: the kernel's choice, checked like any other
    monkeypatch.setattr(role, "_ephemeral_range", lambda: (1024, 65535))
    port = role.free_ports("127.0.0.1", 2)
    with socket.create_server(("127.0.0.1", port)), socket.create_server(("127.0.0.1", port + 1)):
        pass


def test_a_served_oracle_tells_every_worker_to_stop_after_failures_in_a_row(tmp_path):
    import keras_tuner as kt
    from keras_tuner.src.distribute import oracle_client

    from rnncompare.orchestration.distributed import keras_tuner_environment
    from rnncompare.orchestration.distributed.chief import ServedOracle

    oracle = kt.oracles.RandomSearchOracle(
        objective=kt.Objective("val_loss", "min"), max_trials=10, seed=1, max_consecutive_failed_trials=2
    )
    space = kt.HyperParameters()
    space.Int("units", 8, 32, step=8)
    oracle.update_space(space)
    oracle._set_project_dir(str(tmp_path), "gru")
    ended = []
    port = free_port()
    served = ServedOracle("gru", oracle, f"127.0.0.1:{port}", lambda *trial: ended.append(trial[:3]))
    served.start()
    try:
        with keras_tuner_environment(Role("w1", "127.0.0.1", port), 0):
            client = oracle_client.OracleClient(oracle)
        for _ in range(2):
            trial = client.create_trial("w1")
            assert trial.status == "RUNNING" and not served.finished
            trial.status, trial.message = "FAILED", "FailedTrial: loss became NaN"
            client.end_trial(trial)
        assert served.failure == "Number of consecutive failures exceeded the limit of 2."
        assert client.create_trial("w2").status == "STOPPED"
        assert served.finished
        assert ended == [("00", "w1", "FAILED"), ("01", "w1", "FAILED")]
        # keras-tuner leaves the oracle's lock taken when end_trial raises; the chief must still be able to use it
        assert [trial.status for trial in oracle.trials.values()] == ["FAILED", "FAILED"]
        oracle.update_space(space)
        assert (tmp_path / "gru" / "trial_01" / "trial.json").is_file()
    finally:
        served.stop(0)


def test_distributed_needs_a_tracking_server_and_writes_nothing_without_one(cli, tmp_path):
    (tmp_path / "s.yaml").write_text(STUDY)
    completed = cli("run", "s.yaml", "--worker", "w1", "--oracle", "127.0.0.1:8000", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.startswith(
        "error: tracking.uri: sqlite:///mlruns/mlflow.db is a local store; a distributed search needs a tracking server"
    )
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--worker", "w1", "--fresh"], "error: --fresh: only the chief starts a study over"),
        (
            ["--chief", "--set", "sweep={task.length: [10, 20]}", "--set", "task.name=adding"],
            "error: sweep: --chief and --worker run one study, and spread sweeps task.length",
        ),
    ],
)
def test_distributed_options_that_do_not_apply_are_refused(cli, tmp_path, arguments, message):
    (tmp_path / "s.yaml").write_text(STUDY)
    completed = cli(
        "run",
        "s.yaml",
        "--oracle",
        "127.0.0.1:8000",
        "--set",
        "tracking.uri=http://127.0.0.1:9",
        *arguments,
        cwd=tmp_path,
    )
    assert (completed.returncode, completed.stderr.splitlines()[0][: len(message)]) == (2, message)
    assert not (tmp_path / "mlruns").exists()


def test_the_chief_refuses_a_busy_port_before_writing_anything(cli, tmp_path):
    (tmp_path / "s.yaml").write_text(STUDY)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # gru, the second architecture, would be served on the busy port
        completed = cli(
            "run",
            "s.yaml",
            "--chief",
            "--oracle",
            f"127.0.0.1:{port - 1}",
            "--set",
            "tracking.uri=http://127.0.0.1:9",
            cwd=tmp_path,
        )
    assert completed.returncode == 2
    assert completed.stderr.startswith(
        f"error: --oracle: the chief cannot serve on 127.0.0.1:{port} (Address already "
        f"in use); it needs ports {port - 1} to {port}, one per architecture"
    )


@pytest.mark.slow
def test_a_worker_without_its_chief_says_so_and_writes_nothing(tmp_path, server_uri):
    (tmp_path / "s.yaml").write_text(STUDY.replace("study: spread", "study: lonely"))

    def worker():
        return rnncompare(
            "run",
            "s.yaml",
            "--worker",
            "w1",
            "--oracle",
            "127.0.0.1:8000",
            "--wait",
            "1",
            "--set",
            f"tracking.uri={server_uri}",
            cwd=tmp_path,
        )

    completed = worker()
    assert completed.returncode == 2
    assert completed.stderr.splitlines()[-1] == (
        f"error: study lonely: no chief runs it in {server_uri} (waited 1 s); "
        "start `rnncompare run EXPERIMENT --chief --oracle 127.0.0.1:8000` "
        "first"
    )
    client = MlflowClient(tracking_uri=server_uri)
    assert client.get_experiment_by_name("lonely") is None
    # a chief running the study with another config (here: its study run, made by hand)
    experiment_id = client.create_experiment("lonely")
    client.create_run(experiment_id, tags={"rnncompare.role": "study", "rnncompare.config_digest": "0123abcd"})
    completed = worker()
    assert completed.returncode == 2
    assert completed.stderr.startswith(
        "error: study lonely: the chief runs it with another config (digest 0123abcd, this worker's "
    )
    assert len(completed.stderr.splitlines()) == 1
    assert len(client.search_runs([experiment_id])) == 1


@pytest.mark.slow
def test_a_chief_killed_after_the_search_resumes_without_workers(tmp_path, server_uri):
    (tmp_path / "s.yaml").write_text(
        "study: chiefless\narchitectures: [gru]\nsearch:\n  units: {min: 8, max: 16, step: 8}\n"
        "tuner: {max_trials: 2, epochs: 2, batch_size: 128}\nevaluation: {seeds: 2, aso_bootstrap: 200}\n"
    )
    oracle = f"127.0.0.1:{free_port(2)}"  # one port per architecture
    # The chief trains nothing during the search: its first epoch is its first seed run's, where it kills itself.
    worker = start(tmp_path, server_uri, oracle, "--worker", "w1")
    chief = start(tmp_path, server_uri, oracle, "--chief", kill_at_epoch=1)
    finish([worker, chief])
    assert (worker.returncode, chief.returncode) == (0, -9)
    again = start(tmp_path, server_uri, oracle, "--chief")
    ((_, stderr),) = finish([again])
    assert again.returncode == 0, stderr
    client = MlflowClient(tracking_uri=server_uri)
    runs = client.search_runs([client.get_experiment_by_name("chiefless").experiment_id])
    table = sorted(
        (run.data.tags["rnncompare.role"], run.data.tags.get("rnncompare.trial_id"), run.info.status) for run in runs
    )
    assert table == [
        ("architecture", None, "FINISHED"),
        ("seed", None, "FINISHED"),
        ("seed", None, "FINISHED"),
        ("seed", None, "KILLED"),
        ("study", None, "FINISHED"),
        ("trial", "0", "FINISHED"),
        ("trial", "1", "FINISHED"),
    ]


@pytest.mark.slow
def test_a_chief_and_two_workers_log_every_trial_exactly_once_even_when_a_worker_dies_for_good(tmp_path, server_uri):
    (tmp_path / "s.yaml").write_text(STUDY)
    uri = server_uri
    oracle = f"127.0.0.1:{free_port(2)}"  # one port per architecture
    client = MlflowClient(tracking_uri=uri)
    # w1 kills itself (SIGKILL) at the end of its first epoch, mid-trial, and is not started again: once the
    # chief has not heard from it for execution.worker_timeout seconds, w2 trains its trial (a worker restarted
    # under its name takes its trial back: tests/test_loopback.py)
    w1 = start(tmp_path, uri, oracle, "--worker", "w1", kill_at_epoch=1)
    w2 = start(tmp_path, uri, oracle, "--worker", "w2")
    chief = start(tmp_path, uri, oracle, "--chief", "--set", "execution.worker_timeout=4")
    outputs = dict(zip(("chief", "w2", "w1"), finish([chief, w2, w1])))
    for name, process, code in (("chief", chief, 0), ("w2", w2, 0), ("w1", w1, -9)):
        assert process.returncode == code, f"{name}: {outputs[name][1]}"

    experiment = client.get_experiment_by_name("spread")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    assert not [run for run in runs if run.info.status == "RUNNING"]
    study_run = next(run for run in runs if run.data.tags["rnncompare.role"] == "study")
    assert study_run.info.status == "FINISHED"
    assert study_run.data.tags["rnncompare.oracle"] == oracle
    workers = set()
    for architecture in ("lstm", "gru"):
        parent = next(
            run
            for run in runs
            if run.data.tags["rnncompare.role"] == "architecture"
            and run.data.tags["rnncompare.architecture"] == architecture
        )
        assert parent.info.status == "FINISHED"
        children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        trials = [run for run in children if run.data.tags["rnncompare.role"] == "trial"]
        finished = sorted(run.data.tags["rnncompare.trial_id"] for run in trials if run.info.status == "FINISHED")
        assert finished == ["0", "1", "2", "3", "4"], f"{architecture}: every trial exactly once"
        for run in trials:
            workers.add(run.data.tags["rnncompare.worker"])
            if run.info.status == "FINISHED":
                assert {item.path for item in client.list_artifacts(run.info.run_id, "weights")} == {
                    "weights/build_config.json",
                    "weights/checkpoint.weights.h5",
                }
        # the seed runs happen once, on the chief, after the search
        seeds = [run for run in children if run.data.tags["rnncompare.role"] == "seed"]
        assert len(seeds) == 2 and all(run.info.status == "FINISHED" for run in seeds)
        assert not any("rnncompare.worker" in run.data.tags for run in seeds)
        assert "test_accuracy" in parent.data.metrics and parent.data.metrics["trials_finished"] == 5
    assert workers == {"w1", "w2"}
    # the trial w1 was running when it died is closed KILLED with the reason, and w2 ran it once more
    killed = [run for run in runs if run.info.status == "KILLED"]
    assert len(killed) == 1 and killed[0].data.tags["rnncompare.worker"] == "w1"
    assert killed[0].data.tags["rnncompare.failure_reason"] == (
        "worker w1 not heard from in 4 s (execution.worker_timeout); its trial went to the next worker that asked"
    )
    lost = (killed[0].data.tags["rnncompare.architecture"], killed[0].data.tags["rnncompare.trial_id"])
    assert (
        f"{lost[0]} trial {lost[1]}: w1 not heard from in 4 s; handed to the next worker that asks"
        in (outputs["chief"][1])
    )
    summary = json.loads((tmp_path / "mlruns" / "reports" / "spread" / "summary.json").read_text())
    assert {name: len(row["seeds"]["scores"]) for name, row in summary["architectures"].items()} == {
        "lstm": 2,
        "gru": 2,
    }
    assert "report" in outputs["chief"][1] and "the chief trains the seed runs" in outputs["w2"][1]
