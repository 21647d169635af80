"""Several workers on one machine (`execution.workers`): the chief/worker search on loopback, started and stopped
by `rnncompare run` itself, gives the same trials, scores and summary as one process, even when a worker dies."""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from rnncompare.config import load_config
from rnncompare.orchestration.distributed import loopback
from rnncompare.orchestration.distributed.loopback import resolve_workers, seed_process_repays
from rnncompare.runtime.processes import core_share

from conftest import REPO, TINY_STUDY, clean_env, killing_env
from test_same_results import summary_differences, trial_differences

pytestmark = pytest.mark.slow


def test_auto_is_one_worker_per_core_or_two_under_jax_never_more_than_the_trials_and_one_for_a_small_study(monkeypatch):
    def workers(setting, max_trials=8, epochs=10, backend="tensorflow"):
        return resolve_workers(
            load_config({"execution": {"workers": setting}, "tuner": {"max_trials": max_trials, "epochs": epochs}}),
            backend,
        )

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(loopback, "available_memory_bytes", lambda: 64 * 2**30)
    assert workers(3, max_trials=2) == 3  # a number is taken as given
    assert workers("auto", max_trials=100) == cores
    assert workers("auto", max_trials=1) == 1
    assert workers("auto", max_trials=2, epochs=2) == 1  # 3 architectures x 2 trials x 2 epochs: not worth it
    assert workers("auto", max_trials=100, backend="jax") == max(1, cores // 2)  # a JAX process keeps 2 cores busy
    assert workers(2, backend="jax") == 2
    monkeypatch.setattr(loopback, "available_cores", lambda: 16)
    assert workers("auto", max_trials=100, backend="jax") == 8
    assert workers("auto", max_trials=4, backend="jax") == 4
    monkeypatch.setattr(loopback, "available_cores", lambda: 3)
    assert workers("auto", max_trials=100, backend="jax") == 1
    monkeypatch.setattr(loopback, "available_cores", lambda: 16)
    monkeypatch.setattr(loopback, "available_memory_bytes", lambda: 5 * 2**30)  # room for 3 workers of 1.5 GiB
    assert workers("auto", max_trials=100) == 3
    assert workers(6, max_trials=100) == 6  # a number is taken as given, memory or not


def test_a_one_process_jax_study_trains_its_seed_runs_in_a_second_process_only_where_a_core_is_left_free(monkeypatch):
    def repays(backend="jax", workers="auto", seeds=5, architectures=("lstm", "gru")):
        return seed_process_repays(
            load_config(
                {
                    "architectures": list(architectures),
                    "execution": {"workers": workers},
                    "evaluation": {"seeds": seeds},
                }
            ),
            backend,
        )

    monkeypatch.setattr(loopback, "available_cores", lambda: 3)
    assert repays()
    assert not repays(workers=1) and not repays(seeds=0) and not repays(architectures=["gru"])
    assert not repays(backend="tensorflow")  # TensorFlow's workers train the seed runs beside the search
    monkeypatch.setattr(loopback, "available_cores", lambda: 2)  # one JAX process already keeps ~1.4 cores busy
    assert not repays()


def test_the_workers_flag_takes_a_count_or_auto(cli, tmp_path):
    completed = cli("run", str(REPO / "experiments" / "quickstart.yaml"), "--workers", "none", cwd=tmp_path)
    assert completed.returncode == 2
    assert "argument --workers: 'none' is not a number from 1 to 256 or auto" in completed.stderr
    completed = cli(
        "validate", str(REPO / "experiments" / "quickstart.yaml"), "--set", "execution.workers=2", cwd=tmp_path
    )
    assert completed.returncode == 0 and list(tmp_path.iterdir()) == []


def test_killed_chief_and_worker_then_resumed_two_workers_give_the_same_study(tmp_path, cli, monkeypatch):
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    loopback = tmp_path / "mlruns" / "tuner" / "tiny" / "loopback"
    # the chief is killed with SIGKILL as soon as a worker has taken a trial: its workers, seed processes and
    # tracking server go with it
    chief = subprocess.Popen(
        [sys.executable, "-m", "rnncompare", "run", "tiny.yaml", "--workers", "2"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert any(": started, " in line for line in chief.stderr)
    finally:
        chief.kill()
        chief.wait()
    server = yaml.safe_load((loopback / "config.yaml").read_text())["tracking"]["uri"]
    # the workers get SIGKILL at once; the server gets SIGTERM and stops its uvicorn process first
    deadline = time.monotonic() + 15
    while (_answers(server) or _processes_of(loopback)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _answers(server), "the tracking server outlived its chief"
    assert not _processes_of(loopback), "a worker outlived its chief"
    done_before = {
        (run.data.tags["rnncompare.architecture"], run.data.tags["rnncompare.trial_id"])
        for run in client.search_runs(
            [client.get_experiment_by_name("tiny").experiment_id],
            "tags.`rnncompare.role` = 'trial' and attributes.status = 'FINISHED'",
        )
    }

    # run again (in this process: the chief needs no kill now): it resumes; local-1's first process kills itself
    # (SIGKILL) at the end of its first epoch, mid-trial
    for name, value in killing_env(1, worker="local-1", once=tmp_path / "local-1-killed").items():
        monkeypatch.setenv(name, value)
    completed = cli("run", "tiny.yaml", "--workers", "2", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "resume    continuing study run" in completed.stderr
    assert "workers   2 worker processes, 1 core(s) each" in completed.stderr
    # the chief's progress shows each trial as a worker takes it, then as it ends
    started = re.findall(r"(lstm|gru|simple_rnn) +trial (\d) on (local-\d): started, units=\d+", completed.stderr)
    assert {(name, trial) for name, trial, _ in started} | done_before == {
        (name, trial) for name in ("lstm", "gru", "simple_rnn") for trial in ("0", "1")
    }
    report_dir = tmp_path / "mlruns" / "reports" / "tiny"
    # random search: the same trial ids with the same hyperparameters, seeds and scores as in one process
    assert trial_differences(report_dir) == []
    assert summary_differences(report_dir) == []

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], max_results=500)
    assert not [run for run in runs if run.info.status == "RUNNING"]
    trials = [run for run in runs if run.data.tags["rnncompare.role"] == "trial"]
    finished = sorted(
        (run.data.tags["rnncompare.architecture"], run.data.tags["rnncompare.trial_id"])
        for run in trials
        if run.info.status == "FINISHED"
    )
    assert finished == [(name, trial) for name in ("gru", "lstm", "simple_rnn") for trial in ("0", "1")]
    assert {run.data.tags["rnncompare.worker"] for run in trials} == {"local-1", "local-2"}
    killed = [run for run in trials if run.info.status == "KILLED"]
    assert "local-1" in {run.data.tags["rnncompare.worker"] for run in killed}
    assert all(run.data.tags["rnncompare.failure_reason"].startswith("interrupted") for run in killed)
    # the artifacts stay beside the local store, where a study run without workers keeps them
    artifacts = tmp_path / "mlruns" / "artifacts" / "tiny"
    assert (artifacts / next(run.info.run_id for run in trials if run.info.status == "FINISHED")).is_dir()
    # the workers ended on their own, and the loopback server stopped with the study
    assert "worker local-2 ran" in (loopback / "local-2.log").read_text()
    # each on its own share of the cores (both on the one core of a 1-core machine)
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    for index, name in enumerate(("local-1", "local-2")):
        assert (
            f"on cores {','.join(map(str, sorted(core_share(index, threads))))}\n"
            in (loopback / f"{name}.log").read_text()
        )
    server = yaml.safe_load((loopback / "config.yaml").read_text())["tracking"]["uri"]
    assert server.startswith("http://127.0.0.1:")
    assert not _answers(server)


def test_a_python_script_without_a_main_guard_runs_its_study_once(tmp_path):
    # the seed processes are spawned: they must not import the caller's script again (it would start the study
    # again in each); `run_study` from a plain script is how the Python API is used. The cheapest study with a seed
    # process: under JAX on 3 cores, one process searches while another trains the seed runs (the loopback workers
    # are started as `rnncompare run --worker`, which imports no script)
    (tmp_path / "script.py").write_text(
        "import rnncompare\n"
        "from rnncompare.orchestration.distributed import loopback\n"
        "from rnncompare.orchestration.progress import Progress\n"
        "loopback.available_cores = lambda: 3\n"
        "print('script body runs')\n"
        "result = rnncompare.run_study({'study': 'api', 'architectures': ['gru', 'lstm'], 'evaluation': {'seeds': 2},\n"
        "                               'tuner': {'max_trials': 1, 'epochs': 2, 'batch_size': 128},\n"
        "                               'execution': {'backend': 'jax'}}, progress=Progress())\n"
        "print('seeds', len(result.summary['architectures']['gru']['seeds']['scores']))\n"
    )
    completed = subprocess.run(
        [sys.executable, "script.py"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert "the seed runs train in another, beside the next search" in completed.stderr
    assert completed.stdout.count("script body runs") == 1
    assert "seeds 2" in completed.stdout


def _answers(server: str) -> bool:
    try:
        with urllib.request.urlopen(f"{server}/health", timeout=2):
            return True
    except OSError:
        return False


def _processes_of(folder: Path) -> list[Path]:
    """The /proc entries of processes whose command line names `folder` (a worker's config is in it)."""
    return [path for path in Path("/proc").glob("[0-9]*/cmdline") if str(folder).encode() in _read(path)]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a process that ended meanwhile
        return b""
