"""The LSTM variants of Greff et al. (2017, section 3) as one Keras RNN cell: Keras's `LSTMCell` with flags, one
class for all of them. A variant runs under `keras.layers.RNN`, Keras's generic loop (no fused cuDNN kernel).

Keras's LSTM, which every flag changes in one place (`z` the input and recurrent projections plus the bias):

    i = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_g)   o = sigmoid(z_o)
    c' = f * c + i * g                     h' = o * tanh(c')
"""

from __future__ import annotations

import functools

VARIANT_FLAGS = (
    "no_input_gate",  # i = 1
    "no_forget_gate",  # f = 1
    "no_output_gate",  # o = 1
    "no_input_activation",  # g = z_g
    "no_output_activation",  # h' = o * c'
    "coupled",  # f = 1 - i (CIFG)
    "full_gate_recurrence",  # each gate also reads the three gates' activations of the step before
    "peephole",  # i and f read c, o reads c' (diagonal weights)
)


def blocks(variant: tuple[str, ...] | frozenset[str]) -> tuple[str, ...]:
    """The projections a variant computes, in Keras's order: input gate, forget gate, candidate, output gate."""
    flags = set(variant)
    absent = {
        "i": "no_input_gate" in flags,
        "f": "no_forget_gate" in flags or "coupled" in flags,
        "g": False,
        "o": "no_output_gate" in flags,
    }
    return tuple(block for block in "ifgo" if not absent[block])


def parameter_count(variant, inputs: int, units: int) -> int:
    """The cell's weights: the table of the architecture issue, per projection (i + u inputs and a bias), plus 9u^2
    for full gate recurrence and 3u for peepholes."""
    count = len(blocks(variant)) * (units * (inputs + units) + units)
    if "full_gate_recurrence" in variant:
        count += 9 * units * units
    if "peephole" in variant:
        count += 3 * units
    return count


@functools.cache
def variant_cell_class():
    """`LSTMVariantCell`, defined on first use (it needs Keras, which a study imports only when it trains)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="rnncompare")
    class LSTMVariantCell(keras.layers.LSTMCell):
        """Keras's `LSTMCell` with the variant's flags (`VARIANT_FLAGS`); everything else (initializers, unit
        forget bias, input dropout from its own seed generator) as Keras's."""

        def __init__(self, units, variant=(), **kwargs):
            unknown = sorted(set(variant) - set(VARIANT_FLAGS))
            if unknown:
                raise ValueError(f"Unknown LSTM variant flag(s) {unknown}; expected some of {list(VARIANT_FLAGS)}")
            if "full_gate_recurrence" in variant and len(blocks(variant)) < 4:
                raise ValueError("full_gate_recurrence needs all three gates")
            kwargs["implementation"] = 2
            super().__init__(units, **kwargs)
            self.variant = tuple(sorted(variant))
            self.blocks = blocks(self.variant)
            if "full_gate_recurrence" in self.variant:
                self.state_size = [units, units, 3 * units]

        def build(self, input_shape):
            keras.layers.Layer.build(self, input_shape)
            width = len(self.blocks) * self.units
            self.kernel = self.add_weight(
                shape=(input_shape[-1], width), name="kernel", initializer=self.kernel_initializer
            )
            self.recurrent_kernel = self.add_weight(
                shape=(self.units, width), name="recurrent_kernel", initializer=self.recurrent_initializer
            )
            self.bias = self.add_weight(shape=(width,), name="bias", initializer=self._bias_initializer)
            if "full_gate_recurrence" in self.variant:
                self.gate_kernel = self.add_weight(
                    shape=(3 * self.units, 3 * self.units), name="gate_kernel", initializer=self.recurrent_initializer
                )
            if "peephole" in self.variant:
                self.peephole = self.add_weight(shape=(3 * self.units,), name="peephole", initializer="zeros")

        def _bias_initializer(self, shape, dtype=None):
            # Keras's unit forget bias: the forget gate's bias starts at 1, where there is a forget gate
            parts = [
                ops.ones((self.units,), dtype=dtype)
                if block == "f" and self.unit_forget_bias
                else self.bias_initializer((self.units,), dtype=dtype)
                for block in self.blocks
            ]
            return ops.concatenate(parts)

        def call(self, inputs, states, training=False):
            if training and 0.0 < self.dropout < 1.0:
                inputs = inputs * self.get_dropout_mask(inputs)
            return _step(self, ops, inputs, states)

        def get_config(self):
            return {**super().get_config(), "variant": list(self.variant)}

    return LSTMVariantCell


def _step(cell, ops, inputs, states):
    """One step of `cell`'s variant: Keras's LSTM equations with the variant's flags applied (module docstring)."""
    variant = cell.variant
    h, c = states[0], states[1]
    z = ops.matmul(inputs, cell.kernel) + ops.matmul(h, cell.recurrent_kernel) + cell.bias
    parts = dict(zip(cell.blocks, ops.split(z, len(cell.blocks), axis=-1)))
    if "full_gate_recurrence" in variant:
        recurrent = ops.split(ops.matmul(states[2], cell.gate_kernel), 3, axis=-1)
        parts.update({gate: parts[gate] + part for gate, part in zip("ifo", recurrent)})
    if "peephole" in variant:
        peep_i, peep_f, peep_o = ops.split(cell.peephole, 3)
        parts["i"], parts["f"] = parts["i"] + c * peep_i, parts["f"] + c * peep_f
    sigmoid = cell.recurrent_activation
    i = sigmoid(parts["i"]) if "i" in parts else None
    f = 1.0 - i if "coupled" in variant else sigmoid(parts["f"]) if "f" in parts else None
    g = parts["g"] if "no_input_activation" in variant else cell.activation(parts["g"])
    c_new = (c if f is None else f * c) + (g if i is None else i * g)
    if "peephole" in variant:
        parts["o"] = parts["o"] + c_new * peep_o
    o = sigmoid(parts["o"]) if "o" in parts else None
    shown = c_new if "no_output_activation" in variant else cell.activation(c_new)
    h_new = shown if o is None else o * shown
    new_states = [h_new, c_new]
    if "full_gate_recurrence" in variant:
        new_states.append(ops.concatenate([i, f, o], axis=-1))
    return h_new, new_states
