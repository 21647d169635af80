"""Run by tests/test_backend.py in a process of its own (see the test that names tests/scripts/cli_then_tell_tensorflow.py)."""

import sys

from rnncompare.cli import main
from rnncompare.orchestration.distributed import loopback

loopback.available_cores = lambda: 3  # where a JAX study in one process trains its seed runs in a second one
status = main(["run", "tiny.yaml"])
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(status)
