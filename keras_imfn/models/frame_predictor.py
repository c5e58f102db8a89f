import keras
from keras import ops

from keras_imfn import distribution
from keras_imfn.models.inputs import check_numeric
from keras_imfn.models.loss_logging import LoggedLosses
from keras_imfn.models.loss_logging import pixel_error
from keras_imfn.models.loss_logging import weighted_mean


class FramePredictor(LoggedLosses, keras.Model):
    """The base of every next-frames predictor: context in, future out.

    A predictor reads `context_frames` frames `(B, C, H, W, channels)` and
    returns the `future_frames` frames that follow, `(B, F, H, W, channels)`.
    Training is supervised, `compile()` + `fit(context, future)`: the loss
    is the pixel MSE of the prediction (logged as `prediction_loss`), plus
    whatever `own_losses` adds (the tree predictor's memory loss) and any
    loss given to `compile`.

    Subclasses implement `predict_future(context, training)`.

    Args:
        context_frames: int. Frames read, `C >= 1`.
        future_frames: int. Frames predicted, `F >= 1`.
        **kwargs: Base model arguments (`name`, `dtype`, ...).

    Example (the copy-last-frame reference as a predictor):

    >>> import numpy as np
    >>> class RepeatLast(FramePredictor):
    ...     def predict_future(self, context, training):
    ...         return keras.ops.repeat(context[:, -1:], self.future_frames, axis=1)
    >>> model = RepeatLast(context_frames=3, future_frames=2)
    >>> tuple(model(np.zeros((1, 3, 8, 8, 1), "float32")).shape)
    (1, 2, 8, 8, 1)
    """

    def __init__(self, context_frames, future_frames, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("context_frames", context_frames), ("future_frames", future_frames)):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={value}")
        self.context_frames = int(context_frames)
        self.future_frames = int(future_frames)
        self.frame_shape = None
        self.make_loss_trackers()

    def loss_names(self):
        return ["prediction_loss"]

    def _check_frames(self, x, length, what):
        """`x` `(B, length, H, W, channels)` as a float tensor, after checks."""
        who = f"{type(self).__name__} ({what})"
        check_numeric(x, who)
        shape = tuple(x.shape)
        if len(shape) != 5:
            raise ValueError(
                f"{who} expects frames of shape (batch, {length}, height, width, channels). "
                f"Received shape {shape} (rank {len(shape)})"
            )
        if shape[1] is not None and shape[1] != length:
            argument = "context_frames" if what == "context" else "future_frames"
            raise ValueError(
                f"{who} expects {length} frames (`{argument}={length}`). Received "
                f"{shape[1]} (shape {shape}); nothing is cut or padded silently."
            )
        if self.frame_shape is not None and tuple(shape[2:]) != self.frame_shape:
            raise ValueError(
                f"{who} was built for frames of shape {self.frame_shape}. Received frames "
                f"of shape {tuple(shape[2:])} (shape {shape})"
            )
        return ops.cast(x, self.compute_dtype)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 5 or any(d is None for d in input_shape[2:]):
            raise ValueError(
                f"{type(self).__name__} expects context frames (batch, {self.context_frames}, "
                f"height, width, channels) with known frame sizes. Received {input_shape}"
            )
        self.frame_shape = tuple(input_shape[2:])
        self.build_predictor(self.frame_shape)
        self.built = True

    def build_predictor(self, frame_shape):
        """Builds the subclass's layers for frames of `frame_shape`."""

    def call(self, context, training=False):
        context = self._check_frames(context, self.context_frames, "context")
        return self.predict_future(context, training)

    def predict_future(self, context, training):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.future_frames) + tuple(input_shape[2:])

    def own_losses(self, context, future, y_pred, sample_weight, training):
        """The objective and the logged losses `(objective, {name: scalar})`:
        here the pixel loss of the predicted frames; subclasses add theirs."""
        prediction = weighted_mean(pixel_error(future, y_pred), sample_weight)
        return prediction, {"prediction_loss": prediction}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        distribution.check_supported()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} trains on (context, future) pairs: `fit(context, "
                "future)`, or a dataset of `(context, future)` batches. Received no targets."
            )
        future = self._check_frames(y, self.future_frames, "future")
        if y_pred is None:
            y_pred = self(x, training=training)
        objective, logged = self.own_losses(x, future, y_pred, sample_weight, training)
        objective = distribution.scale_for_replicas(objective)
        self.log_losses(logged, ops.shape(future)[0])
        if self.loss is not None or self.losses:
            objective = objective + super().compute_loss(x, y, y_pred, sample_weight, training)
        return objective

    def compile(self, optimizer="adam", loss=None, **kwargs):
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(context_frames=self.context_frames, future_frames=self.future_frames)
        return config
