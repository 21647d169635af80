"""Shared fixtures: a tiny end-to-end study run once per session through the real CLI, in a throwaway folder."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from rnncompare.orchestration.distributed.role import free_ports

REPO = Path(__file__).resolve().parents[1]
# The suite's recorded numbers (test_same_results) are TensorFlow's, and a process's Keras backend is fixed at its
# first import: every test process and subprocess runs on TensorFlow unless a test names jax itself
# (`execution.backend: jax` wins over this; `auto` keeps it).
os.environ["KERAS_BACKEND"] = "tensorflow"
TINY_STUDY = """\
study: tiny
architectures: [lstm, gru, simple_rnn]
search:
  units: {min: 8, max: 24, step: 8}
tuner:
  max_trials: 2
  epochs: 2
  batch_size: 128
evaluation:
  seeds: 2
  aso_bootstrap: 200
  match_params: true
  reference: lstm
  vary: [init, order]  # 0.2.0's seed runs, so tests/test_same_results.py compares with what it wrote
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no inherited tracking URI, quiet TensorFlow, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.update(extra)
    return env


SCRIPTS = REPO / "tests" / "scripts"
FAULT_INJECTION = SCRIPTS / "fault_injection"


def killing_env(
    kill_at_epoch: int, worker: str | None = None, once: Path | None = None, **extra: str
) -> dict[str, str]:
    """`clean_env` for a process that sends itself SIGKILL at the end of its `kill_at_epoch`-th epoch (or, with
    `worker`, only that worker's process; with `once`, only the first one): tests/scripts/fault_injection."""
    faults = {"RNNCOMPARE_TEST_KILL_AT_EPOCH": str(kill_at_epoch)}
    if worker:
        faults["RNNCOMPARE_TEST_KILL_WORKER"] = worker
    if once:
        faults["RNNCOMPARE_TEST_KILL_ONCE"] = str(once)
    path = os.pathsep.join(filter(None, [str(FAULT_INJECTION), os.environ.get("PYTHONPATH")]))
    return clean_env(PYTHONPATH=path, **faults, **extra)


def rnncompare(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240):
    """Run the real `rnncompare` command (as `python -m rnncompare`) and return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "rnncompare", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Completed:
    """What a command gave back: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `rnncompare ARGS...` in this process (`cli.main`), in folder `cwd`, with no inherited tracking URI;
    returns a `Completed`. Cheaper than a subprocess for commands that stop before training."""
    from rnncompare.cli import main

    def run(*args: str, cwd: Path) -> Completed:
        monkeypatch.chdir(cwd)
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors and --help
            code = exc.code
        captured = capsys.readouterr()
        return Completed(code, captured.out, captured.err)

    return run


def free_port(count: int = 1) -> int:
    """The first of `count` consecutive free loopback ports, chosen where outgoing connections never land."""
    return free_ports("127.0.0.1", count)


@contextlib.contextmanager
def tracking_server(folder: Path, log=None, extra: tuple[str, ...] = (), env: dict[str, str] | None = None):
    """`rnncompare server` on a free loopback port, with its store in `folder` (and `extra` options, `env` added
    to its environment); yields its URI, then stops it."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnncompare",
            "server",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            *extra,
        ],
        # MLflow's GenAI job runner (eight processes) is of no use to these tests
        cwd=folder.parent,
        env=clean_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", **(env or {})),
        stdout=subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """`rnncompare run` on a tiny study (3 architectures x 2 trials x 2 epochs) with the default local store."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.yaml").write_text(TINY_STUDY)
    completed = rnncompare("run", "tiny.yaml", cwd=folder, timeout=540)
    assert completed.returncode == 0, completed.stderr
    return {
        "folder": folder,
        "uri": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}",
        "report_dir": folder / "mlruns" / "reports" / "tiny",
        "stdout": completed.stdout,
        "stderr": completed.stderr,
    }


# Fixtures that several tests share (a session's tiny study, a module's tracking server) are made once per test
# process: the tests that use one stay together in one process when pytest-xdist spreads the suite.
SHARED_FIXTURE_GROUPS = {"tiny_study": "tiny-study", "server_uri": "distributed-server"}


def pytest_itemcollected(item):
    for fixture, group in SHARED_FIXTURE_GROUPS.items():
        if fixture in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(group))
