"""`python -m rnncompare`."""

import sys

from rnncompare.cli import main

sys.exit(main())
