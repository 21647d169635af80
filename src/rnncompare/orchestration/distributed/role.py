"""Who this process is in a distributed search: the chief or a named worker, and where the chief's oracles are.

Distributed search runs on keras-tuner's own chief/worker mode (gRPC).

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
import secrets
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rnncompare.compat import keras_tuner_distributed as kt_distributed
from rnncompare.compat.keras_tuner import ENV_ORACLE_IP, ENV_ORACLE_PORT, ENV_TUNER_ID
from rnncompare.core.errors import UserError

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


def role_from(
    chief: bool, worker: str | None, oracle: str | None, environ: Mapping[str, str] = os.environ
) -> Role | None:
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
        raise UserError(
            f"--worker: {worker!r} is not a worker name; use letters, digits, '.', '_' or '-' "
            f"(up to 64, not containing 'chief')"
        )
    host, port = _oracle_address(oracle, environ)
    return Role(CHIEF if chief else worker, host, port)


def _oracle_address(oracle: str | None, environ: Mapping[str, str]) -> tuple[str, int]:
    if oracle is None:
        if ENV_ORACLE_IP not in environ or ENV_ORACLE_PORT not in environ:
            raise UserError(
                f"--oracle HOST:PORT is needed with --chief or --worker (or set {ENV_ORACLE_IP} and {ENV_ORACLE_PORT})"
            )
        host, port_text, source = environ[ENV_ORACLE_IP], environ[ENV_ORACLE_PORT], ENV_ORACLE_PORT
    else:
        host, _, port_text = oracle.rpartition(":")
        source = "--oracle"
        if not host:
            raise UserError(f"--oracle: {oracle!r} is not HOST:PORT (for example 10.0.0.5:8000)")
    if not port_text.isdigit() or not 1024 <= int(port_text) <= 65000:
        raise UserError(f"{source}: port {port_text!r} is not a number from 1024 to 65000")
    return host, int(port_text)


def bind_error(host: str, port: int) -> str | None:
    """Why a server could not listen on `host`:`port` now ("Address already in use"), or None where it could."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def check_ports_free(role: Role, count: int) -> None:
    """Fail with one line, before anything is written, if the chief cannot bind one of its `count` ports."""
    for index in range(count):
        port = role.port_for(index)
        error = bind_error(role.host, port)
        if error is not None:
            raise UserError(
                f"--oracle: the chief cannot serve on {role.host}:{port} ({error}); it "
                f"needs ports {role.port} to {role.port_for(count - 1)}, one per architecture"
            )


def free_ports(host: str, count: int, attempts: int = 100) -> int | None:
    """The first of `count` consecutive ports free on `host`, outside the kernel's ephemeral range where it can.

    A port the kernel hands out for ``bind(0)`` comes from the range it also gives every outgoing connection, so
    between choosing it and serving on it (seconds, while workers connect to the tracking server) a connection can
    take it, and the server then fails with "Address already in use". Ports below that range are only taken by
    servers that ask for them. None when `attempts` tries found no free run of ports."""
    low, high = _ephemeral_range()
    first, last = (1024, low - count) if low - count > 1024 else (high + 1, 65536 - count)
    for _ in range(attempts):
        if last > first:
            port = first + secrets.randbelow(last - first)
        else:  # no room outside the range: the kernel's choice
            with socket.socket() as probe:
                probe.bind((host, 0))
                port = probe.getsockname()[1]
        try:
            check_ports_free(Role(CHIEF, host, port), count)
            return port
        except UserError:
            continue
    return None


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


@contextlib.contextmanager
def keras_tuner_environment(role: Role, index: int) -> Iterator[None]:
    """While the block runs, tuners built in it talk to the `index`-th architecture's oracle as this role."""
    with kt_distributed.oracle_environment(role.name, role.host, role.port_for(index), CHIEF_TIMEOUT_SECONDS):
        yield


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
