"""The architectures a study can compare: the one list every other module reads."""

from __future__ import annotations

# name in configs and runs -> the Keras layer class that implements it
KERAS_LAYERS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
ARCHITECTURES = tuple(KERAS_LAYERS)
# one colour per architecture in every figure
COLORS = {"lstm": "#1f77b4", "gru": "#ff7f0e", "simple_rnn": "#2ca02c"}
