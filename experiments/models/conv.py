"""A convolutional body for `experiments/own_architecture.yaml`: stacked 1-D convolutions over the steps, then the
average over them. rnncompare adds the same head, loss and optimizer as for its recurrent cells."""

import keras


def conv_body(inputs, units, dropout, layers):
    """`layers` convolutions of `units` filters (width 3) over the sequence, pooled to one vector."""
    hidden = inputs
    for _ in range(layers):
        hidden = keras.layers.Conv1D(units, 3, padding="same", activation="relu")(hidden)
        if dropout:
            hidden = keras.layers.Dropout(dropout)(hidden)
    return keras.layers.GlobalAveragePooling1D()(hidden)
