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


def add_compiled_and_layer_losses(model, total, y, y_pred, sample_weight):
    """`total` plus the compiled loss on `(y, y_pred)` and the layers' losses.

    These models train on `x` alone; targets `y` only make sense with a loss
    compiled to use them, so `y` without one is an error, never ignored, and
    so is a compiled loss without targets.
    """
    if y is None and model._compile_loss is not None:
        name = type(model).__name__
        raise ValueError(
            f"{name} was compiled with a `loss`, which is computed on (y, y_pred), "
            "but received no targets `y`, so that loss would be skipped. Pass the "
            "inputs as targets too (`fit(x, x)`, or `MNISTSequences(..., "
            "targets=True)`), or compile without `loss`."
        )
    if y is not None:
        if model._compile_loss is None:
            name = type(model).__name__
            raise ValueError(
                f"{name} trains on `x` alone (`fit(x)`): its losses come from "
                "reconstructing `x`. Received targets `y` but no `loss` in "
                "`compile()`; drop `y`, or compile a loss to add on (y, y_pred)."
            )
        compiled = model._compile_loss(y, y_pred, sample_weight)
        if compiled is not None:
            total = total + compiled
    for extra in model.losses:
        total = total + model._aggregate_additional_loss(extra)
    return total
