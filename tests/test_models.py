from pathlib import Path

import pytest

from rnncompare.tasks import InputSpec, OutputSpec
from rnncompare.training.models import build_model, count_parameters, units_for_budget

CELL_PARAMETERS = {
    # Closed forms for input width d and u units.
    "lstm": lambda d, u: 4 * u * (d + u + 1),  # input, forget, output gates and cell candidate
    "gru": lambda d, u: 3 * u * (d + u + 2),  # update, reset, candidate; Keras 3 reset_after keeps two biases
    "simple_rnn": lambda d, u: u * (d + u + 1),
}


def spec(features=8, classes=10):
    return InputSpec(steps=8, features=features), OutputSpec("classification", classes, tuple(map(str, range(classes))))


@pytest.mark.parametrize("architecture", sorted(CELL_PARAMETERS))
@pytest.mark.parametrize("features, units, layers", [(8, 16, 1), (3, 64, 1), (8, 32, 2), (12, 7, 3)])
def test_parameter_counts_equal_the_closed_forms(architecture, features, units, layers):
    input_spec, output_spec = spec(features=features, classes=10)
    model = build_model(
        {"architecture": architecture, "units": units, "dropout": 0.2, "layers": layers, "learning_rate": 1e-3},
        input_spec,
        output_spec,
    )
    cell = CELL_PARAMETERS[architecture]
    expected = cell(features, units) + (layers - 1) * cell(units, units) + (units * 10 + 10)
    assert count_parameters(model) == {"params_total": expected, "params_trainable": expected}


def test_gru_has_about_a_quarter_fewer_parameters_than_lstm_at_the_same_width():
    input_spec, output_spec = spec(features=8, classes=10)
    built = {
        architecture: count_parameters(
            build_model(
                {"architecture": architecture, "units": 128, "dropout": 0.0, "layers": 1, "learning_rate": 1e-3},
                input_spec,
                output_spec,
            )
        )["params_total"]
        - (128 * 10 + 10)
        for architecture in ("lstm", "gru")
    }
    # the recurrent layers alone: LSTM 4 x 128 x (8 + 128 + 1), GRU 3 x 128 x (8 + 128 + 2)
    assert built == {"lstm": 70_144, "gru": 52_992}
    assert 0.24 < 1 - built["gru"] / built["lstm"] < 0.26


@pytest.mark.parametrize("architecture", ["lstm", "gru"])
def test_recurrent_layers_stay_on_the_cudnn_path(architecture):
    model = build_model(
        {"architecture": architecture, "units": 16, "dropout": 0.3, "layers": 2, "learning_rate": 1e-3}, *spec()
    )
    recurrent = [layer for layer in model.layers if layer.name.startswith(architecture)]
    assert len(recurrent) == 2
    for layer in recurrent:
        config = layer.get_config()
        assert config["recurrent_dropout"] == 0
        assert config["dropout"] == 0.3
        assert config["activation"] == "tanh" and config["recurrent_activation"] == "sigmoid"
        assert config["use_bias"] and not config["unroll"]
        if architecture == "gru":
            assert config["reset_after"]
    assert model.inputs[0].shape == (None, 8, 8)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"recurrent_dropout": 0.1}, r"Unknown hyperparameter\(s\) \['recurrent_dropout'\]"),
        (
            {"architecture": "transformer"},
            r"Invalid architecture 'transformer'; expected one of \[.*'gru', 'lstm', .*'simple_rnn'\], or a body",
        ),
        ({"units": 0}, r"Invalid units: expected a positive integer, received 0"),
        ({"dropout": 1.0}, r"Invalid dropout: expected a value in \[0, 1\), received 1.0"),
    ],
)
def test_bad_hyperparameters_are_rejected_by_name(change, message):
    values = {"architecture": "lstm", "units": 16, "dropout": 0.0, "layers": 1, "learning_rate": 1e-3, **change}
    with pytest.raises(ValueError, match=message):
        build_model(values, *spec())


def hyperparameters(architecture, units=8, layers=1):
    return {"architecture": architecture, "units": units, "dropout": 0.0, "layers": layers, "learning_rate": 1e-3}


@pytest.mark.parametrize("architecture", sorted(CELL_PARAMETERS))
def test_padding_never_reaches_the_cell(architecture):
    import numpy as np

    rng = np.random.default_rng(0)
    real = rng.normal(size=(3, 5, 4)).astype("float32")
    padded = np.concatenate([real, np.zeros((3, 7, 4), "float32")], axis=1)
    output = OutputSpec("classification", 3, ("a", "b", "c"))
    masked = build_model(hyperparameters(architecture, layers=2), InputSpec(12, 4, masked=True), output)
    unpadded = build_model(hyperparameters(architecture, layers=2), InputSpec(5, 4), output)
    unpadded.set_weights(masked.get_weights())  # Masking has no weights: the two models are the same network
    expected = unpadded.predict(real, verbose=0)
    assert np.allclose(masked.predict(padded, verbose=0), expected, atol=1e-5)
    # Without the mask, the same padding changes the answer.
    plain = build_model(hyperparameters(architecture, layers=2), InputSpec(12, 4), output)
    plain.set_weights(masked.get_weights())
    assert not np.allclose(plain.predict(padded, verbose=0), expected, atol=1e-5)


def test_regression_head_is_one_linear_output_with_mse_and_mae():
    model = build_model(hyperparameters("gru"), InputSpec(6, 2), OutputSpec("regression"))
    head = model.get_layer("head")
    assert head.units == 1 and head.get_config()["activation"] == "linear"
    assert model.loss.name == "mean_squared_error" and model.loss.reduction == "mean_with_sample_weight"
    assert count_parameters(model)["params_total"] == CELL_PARAMETERS["gru"](2, 8) + 8 + 1


def test_token_input_starts_with_a_masking_embedding():
    model = build_model(
        hyperparameters("lstm"),
        InputSpec(10, 1, masked=True, vocabulary=50, embedding_dim=4),
        OutputSpec("classification", 2, ("a", "b")),
    )
    embedding = model.get_layer("embedding")
    assert embedding.mask_zero and model.inputs[0].shape == (None, 10)
    assert count_parameters(model)["params_total"] == 50 * 4 + CELL_PARAMETERS["lstm"](4, 8) + 8 * 2 + 2


@pytest.mark.parametrize(
    "architecture, layers, target", [("gru", 1, 5_000), ("simple_rnn", 2, 12_345), ("gru", 3, 40_000)]
)
def test_the_budget_width_is_the_closest_of_every_width(architecture, layers, target):
    input_spec, output_spec = spec(features=5, classes=4)
    hyperparameters = {
        "architecture": architecture,
        "units": 8,
        "dropout": 0.1,
        "layers": layers,
        "learning_rate": 1e-3,
    }
    units, params_total = units_for_budget(hyperparameters, target, input_spec, output_spec)
    cell = CELL_PARAMETERS[architecture]

    def closed_form(u):
        return cell(5, u) + (layers - 1) * cell(u, u) + (u * 4 + 4)

    best = min(range(1, 200), key=lambda u: (abs(closed_form(u) - target), u))
    assert (units, params_total) == (best, closed_form(best))
    built = build_model({**hyperparameters, "units": units}, input_spec, output_spec)
    assert count_parameters(built)["params_total"] == params_total


RATE_AS_STATE_SCRIPT = str(Path(__file__).parent / "scripts" / "rate_as_state.py")


@pytest.mark.slow
def test_under_jax_models_that_differ_only_in_dropout_are_one_program_and_log_as_keras_layers():
    # The rate is the layer's state, not a constant of the program: one compile for every dropout of a width. The
    # masks are Keras's own draws (one per sequence before a recurrent layer), rate 0 changes nothing, parameter
    # counts are the closed forms, and the model logged is made of Keras's own layers with the same predictions.
    import subprocess
    import sys

    from conftest import clean_env

    completed = subprocess.run(
        [sys.executable, RATE_AS_STATE_SCRIPT], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()[-8:]
    cell = CELL_PARAMETERS["lstm"]
    assert lines == [
        "one program: True False",
        f"parameters: {cell(8, 16) + cell(16, 16) + 16 * 10 + 10}",
        "per sequence: True [0.0, 2.0] 0.5",
        "identity: True True",
        # the same initial weights as Keras's own layers, and after 2 epochs the same weights, with dropout or not
        "as keras: [True, True, True, True] [0.0, 0.0, 0.0, 0.0]",
        # a study resumed on the other backend, or across this layer, reads its trials' checkpoints as written
        "checkpoints: True True",
        # the padding mask (of Masking, and of a text task's Embedding) reaches the cells past the dropout layers
        "padding: True True",
        "portable: ['Dense', 'Dropout', 'InputLayer', 'LSTM', 'SpatialDropout1D'] False True True [0.3, 0.3, 0.3]",
    ]
