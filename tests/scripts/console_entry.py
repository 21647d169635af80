"""`rnncompare validate EXPERIMENT` through `console_main` with an exit handler registered first
(tests/test_cli.py): the handler's line must still print, and nothing after `console_main`."""

import atexit
import sys

atexit.register(lambda: print("exit handler ran", flush=True))
sys.argv = ["rnncompare", "validate", sys.argv[1]]
from rnncompare.cli import console_main

console_main()
print("not reached")
