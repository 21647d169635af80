"""The one place that builds layers: a compiled Keras model from a plain dict of hyperparameters.

Every recurrent layer stays on the cuDNN-compatible path: default activations, `use_bias=True`,
`reset_after=True` for GRU, no `unroll`, and no `recurrent_dropout` (dropout is applied to the layer inputs, which
Keras 3 does outside the fused kernel; under JAX, by a layer before it: `rate_as_state_dropout_class`).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from typing import Any

from rnncompare.core.architectures import BUILT_IN
from rnncompare.tasks import InputSpec, OutputSpec
from rnncompare.training.bodies import apply_body
from rnncompare.training.cells import variant_cell_class

WEIGHTED_MEAN = "mean_with_sample_weight"  # a batch's loss: the sum of its weighted losses over the sum of weights
REQUIRED_HYPERPARAMETERS = ("architecture", "units", "dropout", "layers", "learning_rate")
OPTIONAL_HYPERPARAMETERS = ("body",)  # the import path of a user's own architecture (`training.bodies`)
# Training steps per call of Keras's train function under JAX: one trip through its Python fit loop per 8 batches
# instead of per batch (faster epochs, the same weights). Not under TensorFlow, which traces the 8 steps into a
# graph loop: more time per new model, a loss for the short fits of a search. Batch hooks of callbacks then see
# every 8th batch; rnncompare's callbacks have none.
STEPS_PER_EXECUTION_JAX = 8


def build_model(hyperparameters: Mapping[str, Any], input_spec: InputSpec, output_spec: OutputSpec):
    """Build and compile a recurrent classifier or regressor.

    Args:
        hyperparameters: ``architecture`` (a name of `core.architectures.BUILT_IN`), ``units`` (width of each
            recurrent layer), ``dropout`` (input dropout of each recurrent layer and before the head), ``layers``
            (stacked recurrent layers) and ``learning_rate`` (Adam); with ``body`` ("file.py:function"), the
            user's function builds what comes between the input layers and the head. Any other key is an error.
        input_spec: steps and features of one sequence; `masked` puts a `Masking` layer first (padding is
            all-zero steps), `vocabulary` an `Embedding` with ``mask_zero=True`` (token id 0 is padding).
        output_spec: the classes to predict (softmax, cross-entropy, accuracy), or regression (one linear
            output, mean squared error, mean absolute error).

    Returns:
        A compiled `keras.Model` that starts with ``keras.Input``, so parameter counts exist before training.
    """
    values = _checked(hyperparameters)
    import keras

    if input_spec.vocabulary:
        inputs = keras.Input(shape=(input_spec.steps,), dtype="int32", name="tokens")
        hidden = keras.layers.Embedding(
            input_spec.vocabulary, input_spec.embedding_dim, mask_zero=True, name="embedding"
        )(inputs)
    else:
        inputs = keras.Input(shape=(input_spec.steps, input_spec.features), name="sequence")
        # Padding is zero at the end of a sequence: right-padded masks keep LSTM and GRU on the cuDNN kernel.
        hidden = keras.layers.Masking(0.0, name="padding_mask")(inputs) if input_spec.masked else inputs
    # Under JAX, dropout whose rate is not compiled in (`rate_as_state_dropout_class`); elsewhere Keras's own
    rate_as_state = keras.config.backend() == "jax"
    dropout = rate_as_state_dropout_class() if rate_as_state else None
    if "body" in values:  # the user's own architecture: its body, then the same head as every other
        hidden = apply_body(
            values["body"],
            values["architecture"],
            hidden,
            units=values["units"],
            dropout=values["dropout"],
            layers=values["layers"],
        )
    for index in range(0 if "body" in values else values["layers"]):
        name = f"{values['architecture']}_{index + 1}"
        recurrent = _recurrent_layer(
            values["architecture"],
            values["units"],
            dropout=0.0 if rate_as_state else values["dropout"],
            return_sequences=index < values["layers"] - 1,
            name=name,
        )
        if rate_as_state:  # the recurrent layer's own input dropout, from its cell's own seed generator
            hidden = dropout(
                values["dropout"],
                per_sequence=True,
                seed_generator=recurrent.cell.seed_generator,
                name=f"{name}_input_dropout",
            )(hidden)
        hidden = recurrent(hidden)
    if rate_as_state:  # Keras's Dropout draws its seed from Python's generator; a layer of rate 0 was none
        hidden = dropout(
            values["dropout"], seed=None if values["dropout"] > 0 else _seed_without_a_draw(), name="head_dropout"
        )(hidden)
    elif values["dropout"] > 0:
        hidden = keras.layers.Dropout(values["dropout"], name="head_dropout")(hidden)
    if output_spec.kind == "regression":
        outputs = keras.layers.Dense(1, name="head")(hidden)
        loss, metrics = keras.losses.MeanSquaredError(reduction=WEIGHTED_MEAN), ["mae"]
    else:
        outputs = keras.layers.Dense(output_spec.classes, activation="softmax", name="head")(hidden)
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(reduction=WEIGHTED_MEAN), ["accuracy"]
    model = keras.Model(inputs, outputs, name=f"{values['architecture']}_{values['layers']}x{values['units']}")
    # Weighted, so that rows of weight zero (`fitting` pads batches with them under JAX) count for nothing; with no
    # weights given, both are the plain means.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=values["learning_rate"]),
        loss=loss,
        weighted_metrics=metrics,
        steps_per_execution=STEPS_PER_EXECUTION_JAX if keras.config.backend() == "jax" else 1,
    )
    return model


def _recurrent_layer(architecture: str, units: int, *, dropout: float, return_sequences: bool, name: str):
    """A built-in architecture's recurrent layer: Keras's fused layer, or a variant cell under Keras's generic
    `RNN` loop (`training.cells`)."""
    import keras

    info = BUILT_IN[architecture]
    if info.variant:
        cell = variant_cell_class()(units, variant=info.variant, dropout=dropout, name=f"{name}_cell")
        return keras.layers.RNN(cell, return_sequences=return_sequences, name=name)
    layer_class = getattr(keras.layers, info.keras_layer)
    return layer_class(units, dropout=dropout, return_sequences=return_sequences, name=name, **info.layer_options)


class CompiledModels:
    """Models as `build_model` builds them, one compiled model per program: a model asked for again with the same
    program is the one already compiled, so its training and evaluation steps are not traced (or, under JAX, read
    from the compilation cache) again.

    Under JAX a model's dropout and learning rate are state, not part of its program
    (`rate_as_state_dropout_class`; Adam keeps its rate as a variable), so the trials of a search that share a width
    share a model; elsewhere only equal hyperparameters do (the seed runs of one model). `build(hyperparameters)`
    builds the new model (cheap: building is not tracing), and where a model of its program exists it copies the
    new one's initial weights, seed states, dropout rates and fresh optimizer into it and returns that one: the
    same numbers as the new model (`tests/test_tuning.py` trains both, to the bit). Under JAX it saves what a new
    model of a width already compiled costs, its trace and the compilation cache's read (0.5 to 0.7 s on 2 cores),
    and a whole compile where no cache is kept.
    """

    def __init__(self, input_spec: InputSpec, output_spec: OutputSpec):
        self.input_spec, self.output_spec = input_spec, output_spec
        self._by_program: dict[tuple, Any] = {}

    def build(self, hyperparameters: Mapping[str, Any]) -> tuple[Any, bool]:
        """The model `build_model(hyperparameters, ...)` would build now, and whether it is one built before."""
        import keras

        fresh = build_model(hyperparameters, self.input_spec, self.output_spec)
        program = tuple(
            sorted(
                (name, value)
                for name, value in _checked(hyperparameters).items()
                # a body's dropout is its own layers' constant, compiled in
                if name != "learning_rate"
                and not (name == "dropout" and keras.config.backend() == "jax" and "body" not in hyperparameters)
            )
        )
        shared = self._by_program.get(program)
        if shared is None:
            self._by_program[program] = fresh
            return fresh, False
        dropout = rate_as_state_dropout_class()
        for kept, new in zip(shared.layers, fresh.layers):
            for variable, value in zip(kept.variables, new.variables):  # weights, seed states, dropout rates
                variable.assign(value)
            if isinstance(new, dropout):  # what its config (and so `portable_model`) says
                kept.rate, kept.seed = new.rate, new.seed
        for model in (shared, fresh):
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
        for variable, value in zip(shared.optimizer.variables, fresh.optimizer.variables):  # learning rate included
            variable.assign(value)
        return shared, True


@functools.cache
def rate_as_state_dropout_class():
    """The dropout layer of `build_model`'s models under JAX: Keras's dropout, with its rate held as the layer's
    state instead of a constant of the compiled program, and applied at every rate, 0 included (where it changes
    nothing: every value is kept and divided by 1).

    So models that differ only in dropout are one program: a study's trials of one width compile their training
    step once and train one model (`CompiledModels`), and later studies load it from JAX's compilation cache
    (`runtime.xla.use_compile_cache`), whatever their dropout and learning rate (Adam's is a variable already). With 4
    widths and 4 dropouts searched, that is 4 programs an architecture instead of up to 16, at 2-3 s a compile on
    CPU (docs/performance.md). TensorFlow traces every new model whatever its constants and keeps Keras's own
    dropout (and the numbers recorded with it).

    The draws are Keras's: `per_sequence` draws one mask per sequence and feature, kept over the steps, from the
    recurrent layer's own seed generator (`build_model` hands it over), as that layer's `dropout` does; otherwise
    one per value, as `Dropout`, whose seed `build_model` draws as Keras's would; in inference a per-sequence layer
    moves its seed on as the recurrent layer would (Keras draws that mask at every call). So a model starts from
    the weights it had with Keras's own dropout layers and trains to the same numbers, validated after each epoch
    or not (to the bit on CPU; `tests/test_models.py`). The rate is held beside the layer's seed-generator state,
    which Keras keeps as state but not as weights: parameter counts, weights files and `get_weights` are those of
    the same model with Keras's own dropout (`portable_model` makes that model).
    """
    import keras

    class KeptFraction(keras.random.SeedGenerator):
        # A SeedGenerator only so that the layer tracks its variable as state, the way it tracks seeds; its own
        # __init__ is not called, as it would draw a seed from Python's generator and change the draws after it.
        def __init__(self, kept: float):
            self.name = "kept_fraction"
            self._initial_seed = None
            self.state = keras.Variable(kept, dtype="float32", trainable=False, name="kept_fraction")

        def next(self, ordered=True):
            raise TypeError("a dropout layer's kept fraction, not a seed generator")

    @keras.saving.register_keras_serializable(package="rnncompare")
    class RateAsStateDropout(keras.layers.Layer):
        def __init__(
            self, rate: float, per_sequence: bool = False, seed: int | None = None, seed_generator=None, **kwargs
        ):
            super().__init__(**kwargs)
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"Invalid dropout rate: expected a value in [0, 1), received {rate!r}")
            self.rate, self.per_sequence, self.seed = float(rate), per_sequence, seed
            # 1 - rate in float32, the number Keras's dropout compares its uniform draws with and divides by
            self.kept = KeptFraction(1.0 - self.rate)
            self.seed_generator = seed_generator or keras.random.SeedGenerator(seed)
            self.supports_masking = True
            self.built = True

        def call(self, inputs, training=False):
            if not training:
                if self.per_sequence:
                    # Keras's recurrent layers draw their input mask at every call, inference included
                    # (`RNN._maybe_config_dropout_masks`), so each validation batch moves their seed on: as here.
                    self.seed_generator.next()
                return inputs
            shape = keras.ops.shape(inputs)
            kept = keras.ops.cast(self.kept.state, inputs.dtype)
            if not self.per_sequence:  # Keras's `Dropout`
                drawn = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator) < kept
                # times 1 / kept, not divided by it: XLA turns Keras's division by its constant into that product,
                # forward and in the gradient, and a division by a variable stays one in the gradient (3e-8 apart)
                return keras.ops.where(drawn, inputs * (1 / kept), keras.ops.zeros_like(inputs))
            # Keras's recurrent layers: one mask of 1 / kept or 0 per sequence and feature, times every step
            drawn = keras.random.uniform((shape[0], shape[2]), dtype=inputs.dtype, seed=self.seed_generator) < kept
            mask = keras.ops.where(drawn, keras.ops.ones_like(kept) / kept, keras.ops.zeros_like(kept))
            return inputs * keras.ops.expand_dims(mask, 1)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "rate": self.rate, "per_sequence": self.per_sequence, "seed": self.seed}

    return RateAsStateDropout


def _seed_without_a_draw() -> int:
    # A seed that follows from the seed set (`runtime.frameworks.set_random_seed`) and what was drawn since, taken without
    # drawing from Python's generator: Keras's own seed generators and initializers draw from it as the model is
    # built, and the draws after this one stay those of a model with Keras's own dropout.
    return random.Random(hash(random.getstate()[1])).randint(1, 10**9)  # [1]: the generator's words (ints)


def portable_model(model):
    """`model` (built by `build_model`, trained or not) with Keras's own layers only, its weights and compile
    settings: each `RateAsStateDropout` replaced by the `SpatialDropout1D` or `Dropout` of the same rate (masks of
    the same distribution); `model` itself where it has none. What is logged to MLflow, so that the model loads
    wherever Keras does, without rnncompare."""
    import keras

    dropout = rate_as_state_dropout_class()
    if not any(isinstance(layer, dropout) for layer in model.layers):
        return model

    def keras_layer(layer):
        if isinstance(layer, dropout):
            standard = keras.layers.SpatialDropout1D if layer.per_sequence else keras.layers.Dropout
            return standard(layer.rate, seed=layer.seed, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=keras_layer)
    copy.set_weights(model.get_weights())
    if model.compiled:
        copy.compile_from_config(model.get_compile_config())
    return copy


def count_parameters(model) -> dict[str, int]:
    """Total and trainable parameter counts of a built model."""
    trainable = sum(int(weight.numpy().size) for weight in model.trainable_weights)
    return {"params_total": int(model.count_params()), "params_trainable": trainable}


def units_for_budget(
    hyperparameters: Mapping[str, Any],
    target_params: int,
    input_spec: InputSpec,
    output_spec: OutputSpec,
    max_units: int = 4096,
) -> tuple[int, int]:
    """The width whose model (other hyperparameters unchanged) has the parameter count closest to `target_params`.

    Parameter counts grow with the width; ties go to the narrower. Every weight of a recurrent stack and its head
    is a product of at most two widths, so the count is a quadratic in the width: three built models give it, a
    bisection over it finds the width, and the two candidates are built to confirm their counts (a bisection over
    built models takes over should they differ). Returns (units, params_total).
    """

    def built(units: int) -> int:
        return count_parameters(build_model({**hyperparameters, "units": units}, input_spec, output_spec))[
            "params_total"
        ]

    one, two, three = (built(units) for units in (1, 2, 3))
    square = (three - 2 * two + one) // 2
    linear = two - one - 3 * square
    constant = one - square - linear
    units, count = _closest_width(lambda u: square * u * u + linear * u + constant, target_params, max_units)
    confirmed = {candidate: built(candidate) for candidate in _candidates(units, count, target_params, max_units)}
    if all(confirmed[u] == square * u * u + linear * u + constant for u in confirmed):
        return units, count
    return _closest_width(built, target_params, max_units)


def _closest_width(params, target_params: int, max_units: int) -> tuple[int, int]:
    low, high = 1, max_units
    while low < high:  # the smallest width with at least the target count
        middle = (low + high) // 2
        if params(middle) < target_params:
            low = middle + 1
        else:
            high = middle
    candidates = {units: params(units) for units in {max(low - 1, 1), low}}
    units = min(candidates, key=lambda u: (abs(candidates[u] - target_params), u))
    return units, candidates[units]


def _candidates(units: int, count: int, target_params: int, max_units: int) -> set[int]:
    # the chosen width and its neighbour on the other side of the target
    other = units + 1 if count < target_params else units - 1
    return {units, min(max(other, 1), max_units)}


def _checked(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    # Keras-style: reject a bad argument at once, naming it and the value received.
    values = dict(hyperparameters)
    unknown = sorted(set(values) - set(REQUIRED_HYPERPARAMETERS) - set(OPTIONAL_HYPERPARAMETERS))
    if unknown:
        raise ValueError(f"Unknown hyperparameter(s) {unknown}; expected {list(REQUIRED_HYPERPARAMETERS)}")
    missing = [name for name in REQUIRED_HYPERPARAMETERS if name not in values]
    if missing:
        raise ValueError(f"Missing hyperparameter(s) {missing}; received {values}")
    if values["architecture"] not in BUILT_IN and not values.get("body"):
        raise ValueError(
            f"Invalid architecture {values['architecture']!r}; expected one of {sorted(BUILT_IN)}, or a body"
        )
    for name in ("units", "layers"):
        if not isinstance(values[name], int) or isinstance(values[name], bool) or values[name] < 1:
            raise ValueError(f"Invalid {name}: expected a positive integer, received {values[name]!r}")
    if not 0.0 <= float(values["dropout"]) < 1.0:
        raise ValueError(f"Invalid dropout: expected a value in [0, 1), received {values['dropout']!r}")
    values["dropout"] = float(values["dropout"])
    values["learning_rate"] = float(values["learning_rate"])
    return values
