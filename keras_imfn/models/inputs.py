"""Validation of the sequences fed to the models, shared by all of them."""

import keras
import numpy as np


def _dtype_name(x):
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return np.asarray(x).dtype.name
    if isinstance(dtype, np.dtype):
        return dtype.name
    try:
        return keras.backend.standardize_dtype(dtype)
    except (ValueError, TypeError):
        return str(dtype)


def check_numeric(x, who):
    """Raises `TypeError` unless `x` holds real numbers (ints or floats)."""
    name = _dtype_name(x)
    if not name.startswith(("float", "int", "uint", "bfloat")):
        raise TypeError(
            f"{who} expects numeric inputs (float or int), e.g. float32 pixel "
            f"values in [0, 1]. Received dtype {name!r}"
        )


def check_sequence_shape(shape, sequence_length, feature_shape, who, allow_shorter=False):
    """Raises `ValueError` unless `shape` is `(batch, T, *feature_shape)`."""
    shape = tuple(shape)
    expected = f"(batch, {sequence_length}, {', '.join(str(d) for d in feature_shape)})"
    if feature_shape and len(shape) != 2 + len(feature_shape):
        raise ValueError(
            f"{who} expects sequences of shape {expected} (rank "
            f"{2 + len(feature_shape)}). Received shape {shape} (rank {len(shape)})"
        )
    if not feature_shape and len(shape) < 3:
        raise ValueError(
            f"{who} expects sequences of shape (batch, {sequence_length}, "
            f"features...) (rank >= 3). Received shape {shape} (rank {len(shape)})"
        )
    length = shape[1]
    if length is not None:
        too_long = length > sequence_length
        too_short = length < sequence_length and not allow_shorter
        if too_long or too_short:
            raise ValueError(
                f"{who} was built for sequences of length {sequence_length}; "
                f"received length {length} (shape {shape}). Build a model with "
                f"`sequence_length={length}`, or split/zero-pad the sequences "
                "to that length yourself: nothing is truncated silently."
            )
    if feature_shape and tuple(shape[2:]) != tuple(feature_shape):
        raise ValueError(
            f"{who} expects each step's features of shape {tuple(feature_shape)} "
            f"(inputs {expected}), matching its leaf encoder. Received "
            f"features of shape {tuple(shape[2:])} (inputs {shape})"
        )
