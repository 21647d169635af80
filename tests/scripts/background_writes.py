"""Run by tests/test_backend.py in a process of its own (see the test that names tests/scripts/background_writes.py)."""

import atexit
import logging
import os
import sys
import threading

from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.runtime.backend import choose_backend
from rnncompare.runtime.xla import use_compile_cache

choose_backend("jax")
assert use_compile_cache(sys.argv[1])
import_deep_learning()
import jax
import jax.numpy as jnp

writes = []


class Writes(logging.Handler):
    def emit(self, record):
        words = record.getMessage().split()
        if words[0] == "Writing" and words[1] in ("jit_doubled_tanh", "jit_shifted_cos"):
            writes.append((words[1], record.threadName))


logging.getLogger("jax._src.compilation_cache").addHandler(Writes())
logging.getLogger("jax._src.compilation_cache").setLevel(logging.DEBUG)


def doubled_tanh(x):
    return jnp.tanh(x) * 2


def shifted_cos(x):
    return jnp.cos(x) + 1


print(jax.jit(doubled_tanh)(jnp.ones(3)).tolist())
ahead = threading.Thread(target=lambda: jax.jit(shifted_cos).lower(jnp.ones(4)).compile(), name="ahead")
ahead.start()
ahead.join()
print(writes.count(("jit_shifted_cos", "ahead")))
atexit._run_exitfuncs()  # as `rnncompare`'s exit does, before os._exit
print(sorted(writes))
print(
    sorted(
        {name.split("-")[0] for name in os.listdir(sys.argv[1]) if "_" in name}
        & {"jit_doubled_tanh", "jit_shifted_cos"}
    )
)
os._exit(0)
