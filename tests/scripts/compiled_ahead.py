"""Run by tests/test_fitting.py in a process of its own (see the test that names tests/scripts/compiled_ahead.py)."""

import json
import sys

HYPERPARAMETERS = json.loads(sys.argv[2])
import collections
import logging
import sys

from rnncompare.orchestration.preflight import check_config_and_data

config, task = check_config_and_data({"execution": {"backend": "jax"}, "tuner": {"batch_size": 64}})
from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.runtime.xla import use_compile_cache

assert use_compile_cache(sys.argv[1])
import_deep_learning()
import jax

from rnncompare.training.fitting import fit_arguments, validation_compiled_ahead
from rnncompare.training.models import build_model

seen = collections.Counter()


class CacheLookups(logging.Handler):
    def emit(self, record):
        message = record.getMessage()
        if "jit_test_step" in message:
            found = "hit" if "cache hit" in message else "miss" if "CACHE MISS" in message else None
            if found:
                seen[((record.threadName == "MainThread" and "main") or record.threadName, found)] += 1


logging.getLogger("jax").addHandler(CacheLookups())
logging.getLogger("jax").setLevel(logging.DEBUG)
logging.getLogger("jax").propagate = False


def fit(units, described=lambda arguments: arguments):
    seen.clear()
    model = build_model({**HYPERPARAMETERS, "units": units}, task.input_spec, task.output_spec)
    arguments = fit_arguments(task, 64)
    ahead = validation_compiled_ahead(described(arguments))
    history = model.fit(**arguments, epochs=2, verbose=0, callbacks=[ahead])
    return sorted(seen.items()), len(history.history["val_loss"])


print(fit(8))
# validation data that the model cannot take (steps without features): the step fails to trace ahead
print(fit(10, lambda arguments: {**arguments, "validation_data": [arguments["validation_data"][0][..., 0]]}))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)  # a cache that keeps only slow compiles
print(fit(12))
