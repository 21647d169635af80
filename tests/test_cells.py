"""`training.cells`: Greff's LSTM variants as one Keras cell. Each variant's parameter count is the closed form of
the architecture issue's table, one step matches the variant's equations in NumPy, padding never reaches the
cell, and `lstm_no_forget_bias` starts with a zero forget-gate bias."""

import numpy as np
import pytest

from rnncompare.core.architectures import BUILT_IN
from rnncompare.tasks import InputSpec, OutputSpec
from rnncompare.training.cells import variant_cell_class
from rnncompare.training.models import build_model, count_parameters

# the recurrent layer's parameters for input width i and u units, as the table writes them
TABLE = {
    "lstm": lambda i, u: 4 * u * (i + u) + 4 * u,
    "lstm_nig": lambda i, u: 3 * u * (i + u) + 3 * u,
    "lstm_nfg": lambda i, u: 3 * u * (i + u) + 3 * u,
    "lstm_nog": lambda i, u: 3 * u * (i + u) + 3 * u,
    "lstm_niaf": lambda i, u: 4 * u * (i + u) + 4 * u,
    "lstm_noaf": lambda i, u: 4 * u * (i + u) + 4 * u,
    "lstm_cifg": lambda i, u: 3 * u * (i + u) + 3 * u,
    "lstm_fgr": lambda i, u: 4 * u * (i + u) + 4 * u + 9 * u * u,
    "lstm_peephole": lambda i, u: 4 * u * (i + u) + 4 * u + 3 * u,
    "lstm_no_forget_bias": lambda i, u: 4 * u * (i + u) + 4 * u,
}
HEAD = 16 * 10 + 10  # Dense(10) on 16 units


def model(architecture, units=16, features=8, layers=1, masked=False, steps=8):
    hyperparameters = {"architecture": architecture, "units": units, "dropout": 0.0, "layers": layers}
    return build_model(
        {**hyperparameters, "learning_rate": 1e-3},
        InputSpec(steps, features, masked=masked),
        OutputSpec("classification", 10, tuple(map(str, range(10)))),
    )


def test_every_lstm_variant_of_the_table_is_registered():
    assert set(TABLE) <= set(BUILT_IN) and not BUILT_IN["lstm_no_forget_bias"].variant
    assert [name for name, info in BUILT_IN.items() if info.variant] == [
        "lstm_nig", "lstm_nfg", "lstm_nog", "lstm_niaf", "lstm_noaf", "lstm_cifg", "lstm_fgr", "lstm_peephole",
    ]  # fmt: skip


@pytest.mark.parametrize("architecture", sorted(TABLE))
@pytest.mark.parametrize("features, units", [(8, 16), (3, 5)])
def test_each_variants_parameter_count_is_the_tables(architecture, features, units):
    built = model(architecture, units=units, features=features)
    assert count_parameters(built)["params_total"] == TABLE[architecture](features, units) + units * 10 + 10


def test_a_stacked_variant_counts_each_layer_on_its_own_input_width():
    built = model("lstm_fgr", units=6, features=4, layers=2)
    assert count_parameters(built)["params_total"] == TABLE["lstm_fgr"](4, 6) + TABLE["lstm_fgr"](6, 6) + 70


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_step(variant, x, h, c, gates, weights, units):
    """One step of the variant's equations (Greff et al. 2017, section 3), written out in NumPy."""
    kernel, recurrent, bias = weights[:3]
    z = x @ kernel + h @ recurrent + bias
    names = [name for name in "ifgo" if not (
        (name == "i" and "no_input_gate" in variant)
        or (name == "f" and ("no_forget_gate" in variant or "coupled" in variant))
        or (name == "o" and "no_output_gate" in variant)
    )]  # fmt: skip
    parts = dict(zip(names, np.split(z, len(names), axis=-1)))
    extra = list(weights[3:])
    if "full_gate_recurrence" in variant:
        gate_kernel = extra.pop(0)
        for gate, part in zip("ifo", np.split(gates @ gate_kernel, 3, axis=-1)):
            parts[gate] = parts[gate] + part
    if "peephole" in variant:
        p_i, p_f, p_o = np.split(extra.pop(0), 3)
        parts["i"], parts["f"] = parts["i"] + c * p_i, parts["f"] + c * p_f
    i = sigmoid(parts["i"]) if "i" in parts else np.ones_like(c)
    f = 1 - i if "coupled" in variant else sigmoid(parts["f"]) if "f" in parts else np.ones_like(c)
    g = parts["g"] if "no_input_activation" in variant else np.tanh(parts["g"])
    c_new = f * c + i * g
    if "peephole" in variant:
        parts["o"] = parts["o"] + c_new * p_o
    o = sigmoid(parts["o"]) if "o" in parts else np.ones_like(c)
    h_new = o * (c_new if "no_output_activation" in variant else np.tanh(c_new))
    return h_new, c_new, np.concatenate([i, f, o], axis=-1)


@pytest.mark.parametrize("architecture", [name for name, info in BUILT_IN.items() if info.variant])
def test_one_step_of_each_variant_is_its_equations(architecture):
    import keras

    variant, units, features = BUILT_IN[architecture].variant, 5, 3
    rng = np.random.default_rng(0)
    cell = variant_cell_class()(units, variant=variant)
    cell.build((None, features))
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in cell.get_weights()]
    cell.set_weights(weights)
    x = rng.normal(size=(2, features)).astype("float32")
    h, c = (rng.normal(size=(2, units)).astype("float32") for _ in range(2))
    gates = rng.uniform(size=(2, 3 * units)).astype("float32")
    states = [h, c, gates] if "full_gate_recurrence" in variant else [h, c]
    output, new_states = cell(keras.ops.convert_to_tensor(x), [keras.ops.convert_to_tensor(s) for s in states])
    expected_h, expected_c, expected_gates = numpy_step(variant, x, h, c, gates, weights, units)
    assert np.allclose(keras.ops.convert_to_numpy(output), expected_h, atol=1e-5)
    assert np.allclose(keras.ops.convert_to_numpy(new_states[1]), expected_c, atol=1e-5)
    if "full_gate_recurrence" in variant:
        assert np.allclose(keras.ops.convert_to_numpy(new_states[2]), expected_gates, atol=1e-5)


@pytest.mark.parametrize("architecture", ["lstm_cifg", "lstm_fgr", "lstm_peephole"])
def test_padding_never_reaches_a_variant_cell(architecture):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(3, 5, 8)).astype("float32")
    padded = np.concatenate([real, np.zeros((3, 4, 8), "float32")], axis=1)
    masked = model(architecture, masked=True, steps=9)
    unpadded = model(architecture, steps=5)
    unpadded.set_weights(masked.get_weights())
    assert np.allclose(masked.predict(padded, verbose=0), unpadded.predict(real, verbose=0), atol=1e-5)


def test_the_forget_gate_bias_starts_at_one_but_for_the_jozefowicz_ablation():
    units = 4
    for architecture, forget_bias in (("lstm", 1.0), ("lstm_peephole", 1.0), ("lstm_no_forget_bias", 0.0)):
        bias = model(architecture, units=units).get_layer(f"{architecture}_1").get_weights()[2]
        assert np.all(bias[units : 2 * units] == forget_bias), architecture  # Keras's order: i, f, c, o
        assert np.all(bias[:units] == 0) and np.all(bias[2 * units :] == 0)
    # no forget gate at all, or one coupled to the input gate: no forget bias to set
    cifg_bias = model("lstm_cifg", units=units).get_layer("lstm_cifg_1").get_weights()[2]
    assert cifg_bias.shape == (3 * units,) and np.all(cifg_bias == 0)


def test_a_variant_model_saves_and_loads_with_its_cell():
    import keras

    built = model("lstm_fgr", units=4)
    x = np.random.default_rng(1).normal(size=(2, 8, 8)).astype("float32")
    restored = keras.models.model_from_json(built.to_json())
    restored.set_weights(built.get_weights())
    assert np.allclose(restored.predict(x, verbose=0), built.predict(x, verbose=0), atol=1e-6)


@pytest.mark.slow
def test_a_study_of_variants_reports_parameter_counts_that_differ_from_the_lstms_as_the_table_says(cli, tmp_path):
    import json

    (tmp_path / "s.yaml").write_text(
        "study: variants\narchitectures: [lstm, lstm_cifg, lstm_nfg, lstm_fgr, lstm_peephole]\n"
        "search:\n  units: {min: 16, max: 16, step: 16}\ntuner: {max_trials: 1, epochs: 1}\nevaluation: {seeds: 0}\n"
        "tracking: {log_models: false}\n"
    )
    completed = cli("run", "s.yaml", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    summary = json.loads((tmp_path / "mlruns" / "reports" / "variants" / "summary.json").read_text())
    counts = {name: row["params_total"] for name, row in summary["architectures"].items()}
    # digits: 8 features; 16 units
    assert {name: count - counts["lstm"] for name, count in counts.items()} == {
        name: TABLE[name](8, 16) - TABLE["lstm"](8, 16) for name in counts
    }
    assert counts["lstm"] == TABLE["lstm"](8, 16) + HEAD
    report = (tmp_path / "mlruns" / "reports" / "variants" / "report.md").read_text()
    assert "lstm_cifg, lstm_nfg, lstm_fgr, lstm_peephole: LSTM variants, trained by Keras's generic RNN loop" in report
