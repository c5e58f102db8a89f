"""Training losses on reconstructed images.

The models of this package train on `x` alone with their own pixel MSE
(`compute_loss`); a loss compiled into them is added on top, on `(y,
y_pred)`, so a structural term is one `compile` argument away::

    model.compile(optimizer="adam", loss=SSIMLoss(channel_axis=None),
                  loss_weights=0.1)
    model.fit(keras_imfn.datasets.mnist.MNISTSequences(..., targets=True))

(or `fit(x, x)` for arrays).
"""

import keras

from keras_imfn import metrics

__all__ = ["SSIMLoss"]


@keras.saving.register_keras_serializable(package="keras_imfn")
class SSIMLoss(keras.losses.Loss):
    """`1 - SSIM` of every image (Wang et al. 2004, `keras_imfn.metrics.ssim`).

    SSIM compares local means, variances and covariance in an 11x11 Gaussian
    window, so it rewards sharp strokes and edges that a pixel MSE trades
    for blur. Zero for identical images, at most 2.

    Args:
        channel_axis: `-1` for images laid out as `(..., H, W, C)`; `None`
            for grayscale images with no channel axis, `(..., H, W)` (e.g.
            MNIST sequences of shape `(B, T, 28, 28)`: with the default
            they would read as 16x28 images of 28 channels), like
            scikit-image's argument of the same name. Images need
            `H, W >= 11`.
        name: str. Name of the loss in the logs.
        reduction: Keras loss reduction; the default averages the per-image
            values.
        dtype: dtype of the computation.

    Example:

    >>> import numpy as np
    >>> digits = np.random.default_rng(0).random((2, 4, 28, 28)).astype("float32")
    >>> loss = SSIMLoss(channel_axis=None)
    >>> round(float(loss(digits, digits)), 4)
    0.0
    """

    def __init__(self, channel_axis=-1, name="ssim_loss", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if channel_axis not in (-1, None):
            raise ValueError(
                "`channel_axis` must be -1 (images laid out as `(..., H, W, C)`) or "
                "None (grayscale `(..., H, W)` with no channel axis). Received: "
                f"channel_axis={channel_axis!r}"
            )
        self.channel_axis = channel_axis

    def call(self, y_true, y_pred):
        if self.channel_axis is None:
            y_true, y_pred = y_true[..., None], y_pred[..., None]
        return 1.0 - metrics.ssim(y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "channel_axis": self.channel_axis, "dtype": self.dtype}
