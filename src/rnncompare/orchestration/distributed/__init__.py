"""Distributed search on keras-tuner's chief/worker mode: `role` (who this process is), `chief` (serving the
oracles, a `ServedSearch`), `worker` (training the trials the chief hands out). Imports tuning, never the reverse."""

from rnncompare.orchestration.distributed.role import (
    Role,
    check_ports_free,
    keras_tuner_environment,
    oracle_reachable,
    role_from,
)

__all__ = ["Role", "check_ports_free", "keras_tuner_environment", "oracle_reachable", "role_from"]
