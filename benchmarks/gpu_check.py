"""Which recurrent kernels the study's models run on this machine, and their time per epoch.

For each architecture and two shapes (the quickstart's digits, 8 steps of 8 features; the adding problem's 100
steps of 2), the model `rnncompare.training.models.build_model` builds for a study, under the Keras backend set by
KERAS_BACKEND (JAX's platform by JAX_PLATFORMS): whether Keras ran its backend's kernel (`lstm`/`gru` returned)
or fell back to its step loop (they raised NotImplementedError, Keras's signal for it); under JAX, whether the
compiled gradient calls cuDNN's RNN; and the median time of an epoch after the first, at batch 32. Prints one
JSON object. `benchmarks/gpu_check.sh` runs it on the GPU and on the CPU, then the quickstart with 1 and with
several workers; docs/performance.md's "On a GPU" quotes them (benchmarks/gpu_check-2026-11-28.json).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from rnncompare.runtime.backend import share_gpu_memory

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
share_gpu_memory()  # as a study's processes do

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src import backend as keras_backend  # noqa: E402

from rnncompare.tasks import InputSpec, OutputSpec  # noqa: E402
from rnncompare.training.models import build_model  # noqa: E402

EPOCHS = 6
FUSED_CALLS: dict[str, list[str]] = {}


def _recording(name: str, function):
    """`function` (the backend's fused kernel), noting whether each call ran it or fell back."""

    def fused(*args, **kwargs):
        try:
            result = function(*args, **kwargs)
        except NotImplementedError:
            FUSED_CALLS.setdefault(name, []).append("fell back to Keras's step loop")
            raise
        FUSED_CALLS.setdefault(name, []).append("backend kernel")
        return result

    return fused


for _kernel in ("lstm", "gru"):
    setattr(keras_backend, _kernel, _recording(_kernel, getattr(keras_backend, _kernel)))


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def _calls_cudnn(model, x) -> bool | None:
    """Whether the compiled gradient of the model's loss (JAX only) calls cuDNN."""
    if keras.config.backend() != "jax":
        return None
    import jax
    import jax.numpy as jnp

    trainable = [variable.value for variable in model.trainable_variables]
    frozen = [variable.value for variable in model.non_trainable_variables]

    def total(weights):
        outputs, _ = model.stateless_call(weights, frozen, x, training=True)
        return jnp.sum(outputs)

    text = jax.jit(jax.grad(total)).lower(trainable).compile().as_text()
    return 'custom_call_target="cudnn_rnn' in text  # jaxlib's gpu_rnn lowering: cudnn_rnn_ffi, cudnn_rnn_bwd_ffi


def measure(architecture: str, shape: tuple[int, int, int]) -> dict:
    rows, steps, features = shape
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    y = rng.integers(0, 10, size=rows)
    FUSED_CALLS.clear()
    model = build_model(
        {"architecture": architecture, "units": 64, "dropout": 0.1, "layers": 1, "learning_rate": 0.001},
        InputSpec(steps=steps, features=features),
        OutputSpec("classification", 10),
    )
    timer = EpochTimes()
    model.fit(x, y, batch_size=32, epochs=EPOCHS, verbose=0, callbacks=[timer])
    kernel = {"lstm": "lstm", "gru": "gru"}.get(architecture)
    return {
        "architecture": architecture,
        "steps": steps,
        "rows": rows,
        "keras_path": sorted(set(FUSED_CALLS.get(kernel, []))) if kernel else "step loop (SimpleRNN has no other)",
        "compiled_gradient_calls_cudnn_rnn": _calls_cudnn(model, x[:32]),
        "first_epoch_s": round(timer.seconds[0], 3),
        "epoch_s_median": round(statistics.median(timer.seconds[1:]), 4),
    }


def main() -> int:
    devices = "cpu"
    if keras.config.backend() == "jax":
        import jax

        devices = ", ".join(sorted({device.device_kind for device in jax.devices()}))
    results = [
        measure(architecture, shape)
        for shape in ((1437, 8, 8), (2000, 100, 2))
        for architecture in ("lstm", "gru", "simple_rnn")
    ]
    print(json.dumps({"backend": keras.config.backend(), "devices": devices, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
