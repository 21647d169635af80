"""Test-only fault injection, imported by every Python process started with this folder on PYTHONPATH.

RNNCOMPARE_TEST_KILL_AT_EPOCH=k makes the process send itself SIGKILL at the end of its k-th epoch (trials and seed
runs counted together), exactly like `kill -9` from outside. A worker process (`--worker NAME`) is spared unless
RNNCOMPARE_TEST_KILL_WORKER=NAME names it; with RNNCOMPARE_TEST_KILL_ONCE=PATH only the first process that claims
PATH (created exclusively) is armed, so a worker started again lives.
"""

import os
import signal
import sys

_target = os.environ.get("RNNCOMPARE_TEST_KILL_AT_EPOCH")


def _worker_name():
    return sys.argv[sys.argv.index("--worker") + 1] if "--worker" in sys.argv[:-1] else None


def _claimed(path):
    if not path:
        return True
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _arm(target):
    from rnncompare.training import fitting

    original = fitting.epoch_recorder
    epochs_seen = [0]

    def epoch_recorder(*arguments, **keywords):
        recorder = original(*arguments, **keywords)
        on_epoch_end = recorder.on_epoch_end

        def on_epoch_end_then_maybe_die(epoch, logs=None):
            on_epoch_end(epoch, logs)
            epochs_seen[0] += 1
            if epochs_seen[0] == target:
                os.kill(os.getpid(), signal.SIGKILL)

        recorder.on_epoch_end = on_epoch_end_then_maybe_die
        return recorder

    fitting.epoch_recorder = epoch_recorder


if (
    _target
    and _worker_name() == os.environ.get("RNNCOMPARE_TEST_KILL_WORKER")
    and _claimed(os.environ.get("RNNCOMPARE_TEST_KILL_ONCE"))
):
    _arm(int(_target))
