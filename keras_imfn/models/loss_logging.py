"""The one loss-logging protocol of every model, and the loss pieces they share.

Every model of the package (the compressors, the predictors, the
distillation trainer) names its own losses in `loss_names()`, computes them
in `compute_loss` as a dict `{name: scalar}`, and logs them with
`log_losses`: each under its name, weighted by the batch size as Keras logs
`loss`; a name a training step leaves out (a loss that only informs) is not
logged as a zero.
"""

import keras
from keras import ops

# Keeps weighted means finite when every sample weight is zero.
_EPSILON = 1e-6


class LoggedLosses:
    """Mixin of a `keras.Model` that logs its own named losses (see the module)."""

    def loss_names(self):
        """Names of the model's own losses, as `fit` logs them."""
        raise NotImplementedError

    def make_loss_trackers(self):
        """Creates a tracker per name of `loss_names()`: call it in `__init__`."""
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in self.loss_names()]
        self._unlogged = ()

    def log_losses(self, logged, batch_size):
        """Logs `logged` (`{name: scalar}`), each weighted by `batch_size`."""
        for tracker in self.loss_trackers:
            if tracker.name in logged:
                tracker.update_state(logged[tracker.name], sample_weight=batch_size)
        self._unlogged = tuple(t.name for t in self.loss_trackers if t.name not in logged)

    def loss_tracker(self, name):
        """The tracker of the loss `name`."""
        return next(t for t in self.loss_trackers if t.name == name)

    def get_metrics_result(self):
        logs = super().get_metrics_result()
        return {name: value for name, value in logs.items() if name not in self._unlogged}


class PendingPass:
    """The forward pass of the last training call, until `compute_loss` takes it.

    Keras's train step calls the model, then `compute_loss(x, y, y_pred)`;
    holding what the call computed (a tree's leaves and levels, a predictor's
    memory) lets the losses reuse it instead of running the model again. It
    is matched to `y_pred` by identity, so a loss computed on any other
    output runs its own pass.
    """

    def __init__(self):
        self.output, self.value = None, None

    def keep(self, output, value):
        self.output, self.value = output, value

    def take(self, output):
        value = self.value if output is self.output else None
        self.output, self.value = None, None
        return value


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
