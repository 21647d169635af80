"""Seed runs trained at once (`training.seed_runs.SeedPool`): each process on its own share of the cores, as the workers."""

import multiprocessing
import os
import time

import pytest
import yaml

from rnncompare.config import load_config
from rnncompare.runtime.processes import core_share
from rnncompare.training.seed_runs import SeedPool

from conftest import TINY_STUDY

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_each_seed_process_takes_the_next_share_of_the_cores():
    pool = SeedPool(load_config(yaml.safe_load(TINY_STUDY)), processes=2, threads=1)
    try:
        children = multiprocessing.active_children()
        assert len(children) == 2
        # each child pins itself first thing as it starts (then imports Keras and loads the task)
        deadline = time.monotonic() + 60
        while any(len(os.sched_getaffinity(child.pid)) > 1 for child in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(sorted(os.sched_getaffinity(child.pid)) for child in children) == sorted(
            sorted(core_share(index, 1)) for index in (0, 1)
        )
    finally:
        pool.close()
