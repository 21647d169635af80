"""Three `rnncompare run` calls with bad input in one fresh process (the third's experiment file is argv[1]):
prints their exit statuses and which heavy libraries got imported (tests/test_cli.py)."""

import sys

from rnncompare import cli

codes = [
    cli.main(["run", "missing.yaml"]),
    cli.main(["run", "bad.yaml"]),
    cli.main(["run", sys.argv[1], "--set", "tuner.max_trails=3"]),
]
print(codes, sorted(name for name in ("scipy", "pandas", "keras", "mlflow", "matplotlib") if name in sys.modules))
