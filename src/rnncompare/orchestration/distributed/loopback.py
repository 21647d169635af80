"""Several workers on one machine (`execution.workers`): `rnncompare run` starts keras-tuner's chief/worker search
on loopback itself, the same engine as a search spread over machines.

This process is the chief. `LocalCluster` puts an MLflow tracking server on loopback in front of the SQLite store
(the one writer to the file, so the processes never meet "database is locked"), starts the workers as child
processes (`rnncompare run CONFIG --worker local-N`), each with its share of the cores, restarts a worker that
dies (it takes up its trial again under the same name), and stops all of it when the study ends. The children die
with this process, so a study killed with `kill -9` leaves nothing running and resumes like any other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from rnncompare.config import StudyConfig
from rnncompare.core.errors import StudyStopped
from rnncompare.orchestration.distributed.role import CHIEF, Role, free_ports
from rnncompare.runtime.processes import allowed_cores, core_share, die_with_parent, pin_to_cores, thread_limits
from rnncompare.tracking import is_server, loopback_server_command

LOOPBACK = "127.0.0.1"
# What one training process may take, for `workers: auto` (TensorFlow, a model and a task's arrays).
WORKER_MEMORY_BYTES = 1536 * 2**20
RESTARTS_PER_WORKER = 3
SMALL_STUDY_EPOCHS = 100
# One JAX process keeps about two cores busy (XLA compiles and steps on several threads); on 2 cores a second
# worker is slower than one, since each worker compiles every model again (docs/performance.md).
JAX_CORES_PER_PROCESS = 2


def available_cores() -> int:
    """How many cores this process may run on."""
    return len(allowed_cores())


def available_memory_bytes() -> int:
    """The memory free now (where the system does not say: enough for one worker per core)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return WORKER_MEMORY_BYTES * available_cores()


def resolve_workers(config: StudyConfig, backend: str | None) -> int:
    """`execution.workers` as a number, for a study on Keras `backend`. `auto`: one process per core (one per
    `JAX_CORES_PER_PROCESS` cores under JAX), as memory allows, never more than the trials of one search; and 1 for
    a study too small to repay starting the processes (under `SMALL_STUDY_EPOCHS` epochs of search in all: each
    worker imports TensorFlow, about 5 s of a core)."""
    setting = config.execution.workers
    if setting != "auto":
        return int(setting)
    if len(config.architectures) * config.tuner.max_trials * config.tuner.epochs < SMALL_STUDY_EPOCHS:
        return 1
    cores = available_cores() // JAX_CORES_PER_PROCESS if backend == "jax" else available_cores()
    return max(1, min(cores, available_memory_bytes() // WORKER_MEMORY_BYTES, config.tuner.max_trials))


def seed_process_repays(config: StudyConfig, backend: str | None) -> bool:
    """Whether a study that `execution.workers: auto` keeps in one process (JAX on fewer than 4 cores) trains its
    seed runs in a second process, beside the next architecture's search: for a study with seed runs and another
    architecture to search meanwhile, on a machine with a core that one JAX process leaves free (3 cores: it keeps
    about 1.4 busy). Not on 2: there the two processes take the same cores, and the quickstart was slower with the
    second one (docs/performance.md)."""
    return (
        config.execution.workers == "auto"
        and backend == "jax"
        and available_cores() >= JAX_CORES_PER_PROCESS + 1
        and config.evaluation.initial_seeds > 0
        and len(config.architectures) > 1
    )


def _oracle_role(architectures: int) -> Role:
    """The chief's role on loopback, on `architectures` consecutive free ports."""
    port = free_ports(LOOPBACK, architectures)
    if port is None:
        raise StudyStopped(f"execution.workers: found no {architectures} free consecutive ports on {LOOPBACK}")
    return Role(CHIEF, LOOPBACK, port)


def _free_port() -> int:
    port = free_ports(LOOPBACK, 1)
    if port is None:
        raise StudyStopped(f"execution.workers: found no free port on {LOOPBACK} for the tracking server")
    return port


class LocalCluster:
    """The chief's side of a loopback search: a tracking server (when the store is a SQLite file) and `workers`
    worker processes. Use as a context manager around the study; `role` and `tracking_uri` are for the chief."""

    def __init__(self, config: StudyConfig, store_uri: str, workers: int, folder: Path):
        self.config = config
        self.store_uri = store_uri
        self.workers = workers
        self.folder = folder
        self.role = _oracle_role(len(config.architectures))
        self.tracking_uri = store_uri
        self._server: subprocess.Popen | None = None
        self._processes: dict[str, subprocess.Popen] = {}
        self._restarts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.failure: str | None = None

    def __enter__(self) -> LocalCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            if not is_server(self.store_uri):
                self._start_server()
            self._config_file().write_text(
                yaml.safe_dump(
                    {
                        **self.config.to_dict(),
                        "tracking": {**self.config.tracking.model_dump(mode="json"), "uri": self.tracking_uri},
                    },
                    sort_keys=False,
                )
            )
            # the workers start meanwhile: they wait for the server (and the chief) themselves
            for index in range(self.workers):
                self._start_worker(f"local-{index + 1}")
            threading.Thread(target=self._supervise, name="rnncompare-workers", daemon=True).start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:
            _stop(process, grace_seconds=10)
        if self._server is not None:
            _stop(self._server, grace_seconds=3)

    def ready(self) -> None:
        """Wait for the tracking server to answer (it starts with the cluster; the caller may work meanwhile)."""
        if self._server is not None:
            self._wait_for_server()

    def check(self) -> None:
        """Raise `StudyStopped` when a worker died more often than it is restarted (called while the chief waits)."""
        if self.failure is not None:
            raise StudyStopped(self.failure)

    @property
    def threads_per_worker(self) -> int:
        return max(1, available_cores() // self.workers)

    def _config_file(self) -> Path:
        return self.folder / "config.yaml"

    def _start_server(self) -> None:
        port = _free_port()
        # MLflow's GenAI job runner (about eight more processes) serves nothing a study uses
        environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.folder / "tracking-server.log", "ab") as log:  # the child keeps its own descriptor
            # SIGTERM, not SIGKILL: `mlflow server` then stops the uvicorn process it started, which would
            # otherwise outlive a chief killed with `kill -9`
            self._server = subprocess.Popen(
                loopback_server_command(self.store_uri, LOOPBACK, port),
                stdout=log,
                stderr=log,
                env=environment,
                preexec_fn=lambda: die_with_parent(signal.SIGTERM),
            )
        self.tracking_uri = f"http://{LOOPBACK}:{port}"

    def _wait_for_server(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.tracking_uri}/health", timeout=2):
                    return
            except OSError:
                if self._server.poll() is not None or time.monotonic() > deadline:
                    raise StudyStopped(
                        f"execution.workers: the loopback tracking server did not start; see "
                        f"{self.folder / 'tracking-server.log'}"
                    ) from None
                time.sleep(0.3)

    def _start_worker(self, name: str) -> None:
        environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
        environment.update(thread_limits(self.threads_per_worker))
        command = [
            sys.executable,
            "-m",
            "rnncompare",
            "run",
            str(self._config_file()),
            "--worker",
            name,
            "--oracle",
            f"{self.role.host}:{self.role.port}",
            "--wait",
            "300",
        ]
        cores = core_share(int(name.rpartition("-")[2]) - 1, self.threads_per_worker)
        with open(self.folder / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command,
                env=environment,
                stdout=log,
                stderr=log,
                preexec_fn=lambda: (die_with_parent(), pin_to_cores(cores)),
            )
        with self._lock:
            self._processes[name] = process

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            with self._lock:
                ended = [
                    (name, process.returncode)
                    for name, process in self._processes.items()
                    if process.poll() is not None and process.returncode != 0
                ]
            for name, code in ended:
                restarts = self._restarts.get(name, 0)
                if restarts >= RESTARTS_PER_WORKER:
                    self.failure = (
                        f"worker {name} stopped {restarts + 1} times (last exit status {code}); see "
                        f"{self.folder / (name + '.log')}"
                    )
                    return
                self._restarts[name] = restarts + 1
                self._start_worker(name)


def _stop(process: subprocess.Popen, grace_seconds: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
