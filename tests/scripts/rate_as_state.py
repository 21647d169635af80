"""Run by tests/test_models.py in a process of its own (see the test that names tests/scripts/rate_as_state.py)."""

import tempfile

import numpy as np

from rnncompare.compat.frameworks import import_deep_learning
from rnncompare.runtime.backend import choose_backend
from rnncompare.runtime.frameworks import set_random_seed

choose_backend("jax")
import_deep_learning()
import jax
import keras

from rnncompare.tasks import InputSpec, OutputSpec
from rnncompare.training.models import build_model, count_parameters, portable_model, rate_as_state_dropout_class

spec = InputSpec(steps=8, features=8), OutputSpec("classification", 10, tuple(map(str, range(10))))
x = np.random.default_rng(0).normal(size=(32, 8, 8)).astype("float32")
y = np.arange(32) % 10


def built(dropout, units=16):
    return build_model(
        {"architecture": "lstm", "units": units, "dropout": dropout, "layers": 2, "learning_rate": 1e-3}, *spec
    )


def training_program(model):
    model._symbolic_build(data_batch=(x, y))
    shapes = lambda variables: [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in variables]
    state = tuple(
        shapes(v)
        for v in (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
    )
    data = (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(y.shape, y.dtype))
    return jax.jit(model.train_step, donate_argnums=0).lower(state, data).as_text(debug_info=False)


programs = {
    name: training_program(built(*arguments))
    for name, arguments in {"none": (0.0,), "0.3": (0.3,), "0.1": (0.1,), "wider": (0.3, 24)}.items()
}
print("one program:", programs["none"] == programs["0.3"] == programs["0.1"], programs["0.3"] == programs["wider"])
print("parameters:", count_parameters(built(0.3))["params_total"])

layer = rate_as_state_dropout_class()(0.5, per_sequence=True, seed=1)
ones = np.ones((200, 8, 6), "float32")
kept = np.asarray(layer(ones, training=True))
print(
    "per sequence:",
    bool((kept == kept[:, :1, :]).all()),
    sorted(np.unique(kept).tolist()),
    round(float((kept[:, 0, :] == 0).mean()), 1),
)
print(
    "identity:",
    bool((np.asarray(rate_as_state_dropout_class()(0.0)(x, training=True)) == x).all()),
    bool((np.asarray(layer(ones, training=False)) == ones).all()),
)


def keras_own(architecture, dropout):  # what build_model made before, with Keras's own dropout
    layer = {"lstm": keras.layers.LSTM, "simple_rnn": keras.layers.SimpleRNN}[architecture]
    inputs = keras.Input(shape=(8, 8), name="sequence")
    hidden = layer(16, dropout=dropout, name=f"{architecture}_1")(inputs)
    if dropout > 0:
        hidden = keras.layers.Dropout(dropout, name="head_dropout")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head")(hidden))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        steps_per_execution=8,
        weighted_metrics=["accuracy"],
        loss=keras.losses.SparseCategoricalCrossentropy(reduction="mean_with_sample_weight"),
    )
    return model


def trained(make):
    set_random_seed(11)
    model = make()
    start = model.get_weights()
    # validated after each epoch, as a study's fits are: a recurrent layer's validation moves its dropout seed on
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0, validation_data=(x[:8], y[:8]))
    return start, model.get_weights()


differences = []
for architecture, dropout in (("simple_rnn", 0.0), ("simple_rnn", 0.2), ("lstm", 0.0), ("lstm", 0.2)):
    ours = trained(
        lambda: build_model(
            {"architecture": architecture, "units": 16, "dropout": dropout, "layers": 1, "learning_rate": 1e-3}, *spec
        )
    )
    theirs = trained(lambda: keras_own(architecture, dropout))
    differences.append(
        [max(float(np.max(np.abs(a - b))) for a, b in zip(mine, keras)) for mine, keras in zip(ours, theirs)]
    )
print("as keras:", [start == 0 for start, _ in differences], [trained for _, trained in differences])


def ours_lstm():
    return build_model({"architecture": "lstm", "units": 16, "dropout": 0.2, "layers": 1, "learning_rate": 1e-3}, *spec)


def restored(source, target, path):  # a trial checkpoint as keras-tuner writes it (optimizer state too)
    source.fit(x, y, epochs=1, batch_size=16, verbose=0)
    source.save_weights(path)
    target.optimizer.build(target.trainable_variables)
    target.load_weights(path)
    return all(
        (a == b).all()
        for a, b in zip(
            source.get_weights() + [np.asarray(v) for v in source.optimizer.variables],
            target.get_weights() + [np.asarray(v) for v in target.optimizer.variables],
        )
    )


folder = tempfile.mkdtemp()
print(
    "checkpoints:",
    restored(keras_own("lstm", 0.2), ours_lstm(), folder + "/keras.weights.h5"),
    restored(ours_lstm(), keras_own("lstm", 0.2), folder + "/ours.weights.h5"),
)


def padding_ignored(long_spec, short_spec, real, padded):  # the mask passes the dropout layers to the cells
    # in training, where the layers compute (at rate 0: nothing drawn), and in inference, where they pass through
    two_layers = {"architecture": "lstm", "units": 8, "dropout": 0.0, "layers": 2, "learning_rate": 1e-3}
    masked, unpadded = (build_model(two_layers, input_spec, spec[1]) for input_spec in (long_spec, short_spec))
    unpadded.set_weights(masked.get_weights())
    return all(
        np.allclose(masked(padded, training=training), unpadded(real, training=training), atol=1e-5)
        for training in (True, False)
    )


rng = np.random.default_rng(1)
real, tokens = rng.normal(size=(3, 5, 4)).astype("float32"), rng.integers(1, 20, size=(3, 5)).astype("int32")
print(
    "padding:",
    padding_ignored(
        InputSpec(12, 4, masked=True),
        InputSpec(5, 4),
        real,
        np.concatenate([real, np.zeros((3, 7, 4), "float32")], axis=1),
    ),
    padding_ignored(
        InputSpec(12, 1, masked=True, vocabulary=20, embedding_dim=4),
        InputSpec(5, 1, masked=True, vocabulary=20, embedding_dim=4),
        tokens,
        np.concatenate([tokens, np.zeros((3, 7), "int32")], axis=1),
    ),
)

set_random_seed(3)
model = built(0.3)
model.fit(x, y, epochs=1, batch_size=16, verbose=0)
portable = portable_model(model)
print(
    "portable:",
    sorted({type(l).__name__ for l in portable.layers}),
    "rnncompare" in portable.to_json(),
    np.allclose(portable.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6),
    portable.compiled,
    [l.rate for l in portable.layers if "Dropout" in type(l).__name__],
)
