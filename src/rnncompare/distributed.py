"""Distributed search on keras-tuner's own chief/worker mode (gRPC). This module never imports MLflow.

keras-tuner's chief (`Tuner.search` with ``KERASTUNER_TUNER_ID=chief``) serves one oracle on one port and blocks
until that search is over. A study runs one search per architecture, so the chief here serves every
architecture's oracle at once, each on its own port: the base port plus the architecture's index in
`architectures`. A worker that runs out of trials for one architecture goes on to the next without waiting for
slower workers, and the chief, whose gRPC servers answer from background threads, trains an architecture's seed
runs as soon as that architecture's search is over.

Workers reach the oracles through keras-tuner's `OracleClient`, which reads the three ``KERASTUNER_*`` variables
when a tuner is built; `keras_tuner_environment` sets them for one architecture.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

from rnncompare.errors import UserError

ENV_TUNER_ID = "KERASTUNER_TUNER_ID"
ENV_ORACLE_IP = "KERASTUNER_ORACLE_IP"
ENV_ORACLE_PORT = "KERASTUNER_ORACLE_PORT"
CHIEF = "chief"
WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# keras-tuner's client waits an hour for a silent chief (its TIMEOUT); a worker here first checks that the chief
# is up, so a chief that stops answering mid-search is reported after this many seconds instead.
CHIEF_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Role:
    """This process's part in a distributed search: the chief, or a named worker, and the chief's address."""

    name: str
    host: str
    port: int

    @property
    def is_chief(self) -> bool:
        return self.name == CHIEF

    def port_for(self, index: int) -> int:
        """The port of the oracle of the `index`-th architecture."""
        return self.port + index

    def describe(self, architectures: list[str]) -> str:
        ports = ", ".join(f"{name} on {self.host}:{self.port_for(i)}" for i, name in enumerate(architectures))
        return f"{'chief' if self.is_chief else 'worker ' + self.name}: oracles {ports}"


def role_from(chief: bool, worker: str | None, oracle: str | None,
              environ: Mapping[str, str] = os.environ) -> Role | None:
    """The role given by ``--chief`` / ``--worker NAME`` and ``--oracle HOST:PORT``, else by keras-tuner's
    ``KERASTUNER_*`` variables; None for an ordinary single-process study. Raises `UserError`."""
    if chief and worker is not None:
        raise UserError("--chief and --worker: a process is one or the other")
    if not chief and worker is None:
        if ENV_ORACLE_IP not in environ:
            return None
        name = environ.get(ENV_TUNER_ID, "")
        if not name:
            raise UserError(f"{ENV_ORACLE_IP} is set but {ENV_TUNER_ID} is not: set it to chief or to a worker name")
        # keras-tuner's own rule: any id containing "chief" is the chief
        chief, worker = (True, None) if CHIEF in name else (False, name)
    if worker is not None and (not WORKER_NAME.fullmatch(worker) or CHIEF in worker):
        raise UserError(f"--worker: {worker!r} is not a worker name; use letters, digits, '.', '_' or '-' "
                        f"(up to 64, not containing 'chief')")
    host, port = _oracle_address(oracle, environ)
    return Role(CHIEF if chief else worker, host, port)


def _oracle_address(oracle: str | None, environ: Mapping[str, str]) -> tuple[str, int]:
    if oracle is None:
        if ENV_ORACLE_IP not in environ or ENV_ORACLE_PORT not in environ:
            raise UserError(f"--oracle HOST:PORT is needed with --chief or --worker (or set {ENV_ORACLE_IP} and "
                            f"{ENV_ORACLE_PORT})")
        host, port_text, source = environ[ENV_ORACLE_IP], environ[ENV_ORACLE_PORT], ENV_ORACLE_PORT
    else:
        host, _, port_text = oracle.rpartition(":")
        source = "--oracle"
        if not host:
            raise UserError(f"--oracle: {oracle!r} is not HOST:PORT (for example 10.0.0.5:8000)")
    if not port_text.isdigit() or not 1024 <= int(port_text) <= 65000:
        raise UserError(f"{source}: port {port_text!r} is not a number from 1024 to 65000")
    return host, int(port_text)


def check_ports_free(role: Role, count: int) -> None:
    """Fail with one line, before anything is written, if the chief cannot bind one of its `count` ports."""
    for index in range(count):
        port = role.port_for(index)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((role.host, port))
            except OSError as exc:
                raise UserError(f"--oracle: the chief cannot serve on {role.host}:{port} ({exc.strerror}); it "
                                f"needs ports {role.port} to {role.port_for(count - 1)}, one per architecture") from None


@contextlib.contextmanager
def keras_tuner_environment(role: Role, index: int) -> Iterator[None]:
    """Set keras-tuner's ``KERASTUNER_*`` variables for the `index`-th architecture's oracle while the block runs."""
    from keras_tuner.src.distribute import oracle_client

    values = {ENV_TUNER_ID: role.name, ENV_ORACLE_IP: role.host, ENV_ORACLE_PORT: str(role.port_for(index))}
    saved = {name: os.environ.get(name) for name in values}
    saved_timeout = oracle_client.TIMEOUT
    os.environ.update(values)
    oracle_client.TIMEOUT = CHIEF_TIMEOUT_SECONDS
    try:
        yield
    finally:
        oracle_client.TIMEOUT = saved_timeout
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def oracle_reachable(role: Role, index: int, timeout_seconds: float = 2.0) -> bool:
    """Whether the chief answers on the `index`-th architecture's port within `timeout_seconds`."""
    import grpc

    channel = grpc.insecure_channel(f"{role.host}:{role.port_for(index)}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_seconds)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


class ServedOracle:
    """One architecture's oracle, served over gRPC from background threads until its search is over.

    The search is over when a worker has been told to stop (no trial left) and no trial is running. When
    keras-tuner's limit of consecutive failed trials is hit, `failure` holds its message and every worker is
    told to stop.
    """

    def __init__(self, architecture: str, oracle, address: str,
                 on_trial_end: Callable[[str, str, str, float | None], None] | None = None):
        self.architecture = architecture
        self.oracle = oracle
        self.address = address
        self.servicer = _servicer_class()(oracle, on_trial_end)
        self._server = None

    def start(self) -> None:
        import grpc
        from concurrent import futures

        from keras_tuner.src import protos

        # One thread, as keras-tuner's chief: the oracle's calls are serialised anyway.
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        protos.get_service_grpc().add_OracleServicer_to_server(self.servicer, self._server)
        if self._server.add_insecure_port(self.address) == 0:
            raise UserError(f"--oracle: the chief cannot serve on {self.address}")
        self._server.start()

    @property
    def failure(self) -> str | None:
        return self.servicer.failure

    @property
    def finished(self) -> bool:
        # Read without the oracle's lock: `end_trial` empties ongoing_trials as its very last step.
        oracle = self.oracle
        # A chief resumed after its search was over hears from no worker: its reloaded oracle has nothing left.
        nothing_left = bool(oracle.max_trials) and len(oracle.trials) >= oracle.max_trials and not oracle._retry_queue
        return (self.servicer.stop_triggered or self.failure is not None or nothing_left) and not oracle.ongoing_trials

    def wait(self, poll_seconds: float = 0.5) -> None:
        """Block until the search is over."""
        while not self.finished:
            time.sleep(poll_seconds)

    def stop(self, grace_seconds: float) -> None:
        """Stop serving; a call already under way gets `grace_seconds` to finish."""
        if self._server is not None:
            self._server.stop(grace_seconds).wait()
            self._server = None


def _release_oracle_lock(oracle) -> None:
    # keras-tuner's `synchronized` takes the oracle's lock and does not release it when the method raises.
    from keras_tuner.src.engine import oracle as oracle_module

    if oracle_module.THREADS[oracle] is not None:
        oracle_module.THREADS[oracle] = None
        oracle_module.LOCKS[oracle].release()


def _servicer_class():
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
    from keras_tuner.src.engine import trial as trial_module

    from rnncompare.tuning import save_failed_state

    class StudyOracleServicer(OracleServicer):
        """keras-tuner's servicer, plus: a search stopped by consecutive failures tells every worker to stop
        (keras-tuner's would raise inside the gRPC call), and each ended trial is reported to the chief."""

        def __init__(self, oracle, on_trial_end):
            super().__init__(oracle)
            self.failure: str | None = None
            self.on_trial_end = on_trial_end

        def CreateTrial(self, request, context):
            if self.failure is not None:
                self.stop_triggered = True
                stopped = trial_module.Trial(self.oracle.get_space(), trial_id="stopped",
                                             status=trial_module.TrialStatus.STOPPED)
                return protos.get_service().CreateTrialResponse(trial=stopped.to_proto())
            return super().CreateTrial(request, context)

        def EndTrial(self, request, context):
            trial_id = request.trial.trial_id
            tuner_id = next((tuner for tuner, trial in self.oracle.ongoing_trials.items()
                             if trial.trial_id == trial_id), "")
            try:
                response = super().EndTrial(request, context)
            except RuntimeError as exc:
                if "consecutive failures" not in str(exc):
                    raise
                _release_oracle_lock(self.oracle)
                self.failure = str(exc).splitlines()[0]
                save_failed_state(self.oracle, trial_id)
                response = protos.get_service().EndTrialResponse()
            # end_trial saved the oracle before taking the trial off the running ones; a chief resumed from that
            # state would hand the trial out again.
            self.oracle.save()
            if self.on_trial_end is not None:
                trial = self.oracle.trials[trial_id]
                self.on_trial_end(trial_id, tuner_id, trial.status, trial.score)
            return response

    return StudyOracleServicer
