"""`rnncompare --help` in a fresh process: prints whether TensorFlow or MLflow got imported, and how long it took
(tests/test_cli.py)."""

import sys
import time

started = time.perf_counter()
from rnncompare import cli

try:
    cli.main(["--help"])
except SystemExit:
    pass
print("TF", "tensorflow" in sys.modules, "mlflow" in sys.modules, time.perf_counter() - started)
