"""Run by tests/test_resume.py in a process of its own (see the test that names tests/scripts/hold_the_study.py)."""

import time

from rnncompare.config import load_config
from rnncompare.orchestration.context import StudyLock

lock = StudyLock(load_config("study.yaml"))
print("holding", flush=True)
time.sleep(120)
