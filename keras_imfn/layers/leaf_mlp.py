"""The default leaf MLPs of a tree and its student: one step in, one leaf out, and back."""

import keras
import numpy as np
from keras import layers


def leaf_encoder(hidden_dim, memory_dim, activation="gelu", dtype=None):
    """`Flatten` then a hidden `Dense` and a linear `Dense` to `memory_dim`:
    one step `(B, *features)` to a leaf `(B, memory_dim)`. `adapt` fits the
    output layer (named `output`) by least squares."""
    return keras.Sequential(
        [
            layers.Flatten(dtype=dtype),
            layers.Dense(hidden_dim, activation=activation, dtype=dtype, name="hidden"),
            layers.Dense(memory_dim, dtype=dtype, name="output"),
        ],
        name="encoder",
    )


def leaf_decoder(hidden_dim, feature_shape, activation="gelu", output_activation=None,
                 dtype=None):
    """The mirror of `leaf_encoder`: a leaf back to one step `(B, *feature_shape)`."""
    return keras.Sequential(
        [
            layers.Dense(hidden_dim, activation=activation, dtype=dtype, name="hidden"),
            layers.Dense(int(np.prod(feature_shape)), activation=output_activation,
                         dtype=dtype, name="output"),
            layers.Reshape(tuple(feature_shape), dtype=dtype),
        ],
        name="decoder",
    )
