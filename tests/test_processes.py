"""The child processes' shares of the cores: each its own cores while there are enough, held by CPU affinity
(which XLA, TensorFlow and OpenMP size their thread pools by), not by XLA's thread flags."""

import os
import subprocess
import sys

import pytest

from rnncompare.runtime import processes
from rnncompare.runtime.processes import allowed_cores, core_share, pin_to_cores, thread_limits


def test_shares_take_the_cores_in_turn_and_wrap_round_when_they_outnumber_them(monkeypatch):
    monkeypatch.setattr(processes, "allowed_cores", lambda: [0, 1, 2, 3, 8, 9])  # cores 4 to 7 taken elsewhere
    assert [core_share(index, 2) for index in range(3)] == [{0, 1}, {2, 3}, {8, 9}]
    assert [core_share(index, 1) for index in range(7)] == [{0}, {1}, {2}, {3}, {8}, {9}, {0}]
    assert core_share(1, 4) == {8, 9, 0, 1}
    assert core_share(0, 6) == {0, 1, 2, 3, 8, 9}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_child_pinned_to_its_share_runs_on_those_cores_only_and_this_process_stays_as_it_was():
    share, before = core_share(1, 1), os.sched_getaffinity(0)
    completed = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        preexec_fn=lambda: pin_to_cores(share),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.strip() == str(sorted(share))
    assert os.sched_getaffinity(0) == before and allowed_cores() == sorted(before)


def test_thread_limits_size_tensorflow_and_openmp_and_leave_xla_flags_alone(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=1")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert thread_limits(3) == {
        "TF_NUM_INTRAOP_THREADS": "3",
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": "3",
        "KERAS_BACKEND": "jax",
    }


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_share_the_system_refuses_leaves_the_child_where_it_may_run():
    before = sorted(os.sched_getaffinity(0))
    completed = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        preexec_fn=lambda: pin_to_cores({4096}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.strip() == str(before)
