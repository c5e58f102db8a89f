"""Loss pieces shared by the models' `compute_loss`."""

from keras import ops

# Keeps weighted means finite when every sample weight is zero.
_EPSILON = 1e-6


def weighted_mean(values, sample_weight):
    """Mean of per-sequence `values` `(B,)`, weighted by `sample_weight`."""
    if sample_weight is None:
        return ops.mean(values)
    sample_weight = ops.cast(ops.reshape(sample_weight, (-1,)), values.dtype)
    return ops.sum(values * sample_weight) / ops.maximum(ops.sum(sample_weight), _EPSILON)


def pixel_error(x, y_pred):
    """Per-sequence mean squared error `(B,)` between `y_pred` and `x`."""
    axes = tuple(range(1, len(x.shape)))
    return ops.mean(ops.square(ops.cast(y_pred, x.dtype) - x), axis=axes)
