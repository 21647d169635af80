"""`python -m rnncompare`."""

from rnncompare.cli import console_main

console_main()
