"""ASO in a fresh process: prints whether deepsig imported TensorFlow (tests/test_stats.py)."""

import sys

from rnncompare.analysis.stats import aso_epsilon

aso_epsilon([0.9, 0.92], [0.8, 0.81], 0.95, 1, 0, bootstrap=50)
print("tensorflow" in sys.modules)
