"""The architectures a study can compare: the one registry every other module reads.

Each built-in is a stock Keras layer on its fused path (cuDNN on a GPU), or one of Greff et al.'s (2017) LSTM
variants, built as `training.cells.LSTMVariantCell` and trained by Keras's generic RNN loop. A study may also name
its own architecture by import path (`training.bodies`); such a name is not in this registry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Architecture:
    """A built-in architecture: its Keras layer (and options), or its LSTM variant flags."""

    name: str
    description: str
    keras_layer: str = "LSTM"  # the stock layer, unless `variant` makes it a variant cell under keras.layers.RNN
    layer_options: dict = field(default_factory=dict)
    variant: tuple[str, ...] = ()

    @property
    def fused(self) -> bool:
        """Whether it runs Keras's fused layer (cuDNN on a GPU) rather than the generic RNN loop."""
        return not self.variant


BUILT_IN = {
    architecture.name: architecture
    for architecture in (
        Architecture("lstm", "Keras's LSTM (forget-gate bias 1)"),
        Architecture("gru", "Keras's GRU (reset after, as cuDNN's)", keras_layer="GRU"),
        Architecture("simple_rnn", "an ungated RNN, the baseline", keras_layer="SimpleRNN"),
        Architecture("lstm_nig", "LSTM without the input gate (i = 1)", variant=("no_input_gate",)),
        Architecture("lstm_nfg", "LSTM without the forget gate (f = 1)", variant=("no_forget_gate",)),
        Architecture("lstm_nog", "LSTM without the output gate (o = 1)", variant=("no_output_gate",)),
        Architecture("lstm_niaf", "LSTM without the input activation (g linear)", variant=("no_input_activation",)),
        Architecture("lstm_noaf", "LSTM without the output activation (h = o * c)", variant=("no_output_activation",)),
        Architecture("lstm_cifg", "LSTM with coupled input and forget gates (f = 1 - i)", variant=("coupled",)),
        Architecture("lstm_fgr", "LSTM with full gate recurrence", variant=("full_gate_recurrence",)),
        Architecture(
            "lstm_peephole", "Greff's vanilla LSTM: peepholes from the cell to the gates", variant=("peephole",)
        ),
        Architecture(
            "lstm_no_forget_bias",
            "Keras's LSTM with a zero forget-gate bias (Jozefowicz et al., 2015)",
            layer_options={"unit_forget_bias": False},
        ),
    )
}
ARCHITECTURES = tuple(BUILT_IN)
# name in configs and runs -> the Keras layer class of the stock architectures
KERAS_LAYERS = {name: info.keras_layer for name, info in BUILT_IN.items() if info.fused}

# one colour per architecture in every figure: the stock cells keep theirs; the rest take one from a palette by
# their name, the same in every figure and every study
COLORS = {"lstm": "#1f77b4", "gru": "#ff7f0e", "simple_rnn": "#2ca02c"}
PALETTE = (
    "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78",
    "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)  # fmt: skip
FIXED_COLORS = {
    "lstm_nig": PALETTE[0], "lstm_nfg": PALETTE[1], "lstm_nog": PALETTE[2], "lstm_niaf": PALETTE[3],
    "lstm_noaf": PALETTE[4], "lstm_cifg": PALETTE[5], "lstm_fgr": PALETTE[6], "lstm_peephole": PALETTE[7],
    "lstm_no_forget_bias": PALETTE[8],
}  # fmt: skip


def color(name: str) -> str:
    """The colour of `name` in every figure (the user's own architectures too, by a hash of the name)."""
    if name in COLORS:
        return COLORS[name]
    if name in FIXED_COLORS:
        return FIXED_COLORS[name]
    return PALETTE[9 + int(hashlib.sha256(name.encode()).hexdigest(), 16) % (len(PALETTE) - 9)]
