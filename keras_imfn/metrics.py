"""Image reconstruction metrics: pixel MSE, PSNR and SSIM.

Everything here takes images laid out as `(..., H, W, C)` with values in
`[0, 1]` and is written in `keras.ops` only, so it runs on TensorFlow, JAX and
PyTorch and accepts numpy arrays. Add a channel axis to grayscale data first
(MNIST sequences of shape `(B, T, 28, 28)` become `(B, T, 28, 28, 1)`).

The functions `mse`, `psnr` and `ssim` return one value per image: the
result has the leading shape `...` of the input, so a caller chooses how to
average. The metric classes `PixelMSE`, `PSNR` and `SSIM` accumulate over
batches for `model.compile(metrics=[...])`.

How to average PSNR. Two numbers go by the name "PSNR of a data set":

- PSNR of the mean MSE, `10 log10(1 / mean(MSE))`: the published IMFN tables
  use this one. Get it with `psnr_of_mean_mse(mse(y_true, y_pred))`, or with
  the `PSNR` metric, which reports exactly this over everything it has seen.
- Mean of the per-image PSNR, `mean(psnr(y_true, y_pred))`: always at least
  as large (Jensen's inequality), and dominated by the best reconstructions.
  Report it only under that name.

Example:

>>> import numpy as np
>>> images = np.random.default_rng(0).random((4, 32, 32, 1)).astype("float32")
>>> noisy = np.clip(images + 0.1, 0.0, 1.0)
>>> tuple(mse(images, noisy).shape)
(4,)
>>> table_psnr = psnr_of_mean_mse(mse(images, noisy))
"""

import keras
from keras import ops

__all__ = ["PSNR", "PixelMSE", "SSIM", "mse", "psnr", "psnr_of_mean_mse", "ssim"]

# Wang et al. 2004: an 11x11 Gaussian window with sigma 1.5, constants
# C1 = (K1 L)^2 and C2 = (K2 L)^2 for a data range L of 1.
SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_images(y_true, y_pred, function_name):
    """Converts both inputs to one float tensor type and checks the layout."""
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    for name, value in (("y_true", y_true), ("y_pred", y_pred)):
        if len(value.shape) < 3:
            raise ValueError(
                f"`{function_name}` expects images laid out as `(..., H, W, C)` "
                f"(rank >= 3, channels last). Received `{name}` with shape "
                f"{tuple(value.shape)}. Add a channel axis to grayscale images, "
                "e.g. `x[..., None]` turns MNIST digits of shape (B, T, 28, 28) "
                "into (B, T, 28, 28, 1)."
            )
    if len(y_true.shape) != len(y_pred.shape) or any(
        a is not None and b is not None and a != b for a, b in zip(y_true.shape, y_pred.shape)
    ):
        raise ValueError(
            f"`{function_name}` expects `y_true` and `y_pred` of the same shape "
            f"`(..., H, W, C)`. Received {tuple(y_true.shape)} and "
            f"{tuple(y_pred.shape)}."
        )
    # Integers and float16 are promoted to float32 so squares and sums do not
    # overflow or round badly; float64 stays float64 where the backend keeps
    # it (TensorFlow; Keras' JAX and torch type promotion give float32).
    dtype = keras.backend.result_type(y_true.dtype, y_pred.dtype, "float32")
    return ops.cast(y_true, dtype), ops.cast(y_pred, dtype)


def mse(y_true, y_pred):
    """Mean squared error of each image.

    Args:
        y_true: images of shape `(..., H, W, C)`.
        y_pred: images of the same shape.

    Returns:
        A tensor of shape `...`: the squared error averaged over `H, W, C`.

    Example:

    >>> import numpy as np
    >>> a = np.zeros((2, 8, 8, 3), "float32")
    >>> [round(float(v), 4) for v in mse(a, a + 0.5)]
    [0.25, 0.25]
    """
    y_true, y_pred = _check_images(y_true, y_pred, "mse")
    return ops.mean(ops.square(y_pred - y_true), axis=(-3, -2, -1))


def psnr(y_true, y_pred):
    """Peak signal-to-noise ratio of each image, in dB, for values in [0, 1].

    `10 log10(1 / MSE)` of every image on its own; identical images give
    `inf`. For a data-set number comparable with the published tables use
    `psnr_of_mean_mse(mse(y_true, y_pred))` or the `PSNR` metric instead of
    averaging these values (see the module docstring).

    Args:
        y_true: images of shape `(..., H, W, C)`, values in `[0, 1]`.
        y_pred: images of the same shape.

    Returns:
        A tensor of shape `...` with one PSNR per image.

    Example:

    >>> import numpy as np
    >>> a = np.zeros((2, 8, 8, 1), "float32")
    >>> [round(float(v), 2) for v in psnr(a, a + 0.1)]
    [20.0, 20.0]
    """
    y_true, y_pred = _check_images(y_true, y_pred, "psnr")
    # -10 log10(MSE) rather than 10 log10(1 / MSE): an MSE of 0 gives +inf
    # without a division by zero.
    return -10.0 * ops.log10(ops.mean(ops.square(y_pred - y_true), axis=(-3, -2, -1)))


def psnr_of_mean_mse(mse_values):
    """PSNR in dB of the mean of per-image MSE values: `10 log10(1 / mean)`.

    This is how the published IMFN tables average PSNR over a data set. It
    is not the mean of the per-image PSNR.

    Args:
        mse_values: per-image MSE values of any shape, e.g. the output of
            `mse`.

    Returns:
        A scalar tensor.

    Example:

    >>> round(float(psnr_of_mean_mse([0.01, 0.01])), 2)
    20.0
    """
    mse_values = ops.convert_to_tensor(mse_values)
    if not keras.backend.is_float_dtype(mse_values.dtype):
        mse_values = ops.cast(mse_values, "float32")
    return -10.0 * ops.log10(ops.mean(mse_values))


def _gaussian_window(dtype):
    """The normalised 1-D Gaussian taps of the SSIM window."""
    radius = SSIM_WINDOW_SIZE // 2
    offsets = ops.arange(-radius, radius + 1, dtype=dtype)
    taps = ops.exp(-0.5 * ops.square(offsets / SSIM_SIGMA))
    return taps / ops.sum(taps)


def _valid_filter(taps, size):
    """`(size - SSIM_WINDOW_SIZE + 1, size)` matrix: `taps` at every 'valid' position."""
    rows = ops.expand_dims(ops.arange(size - SSIM_WINDOW_SIZE + 1), 1)
    offsets = ops.expand_dims(ops.arange(size), 0) - rows
    inside = ops.logical_and(offsets >= 0, offsets < SSIM_WINDOW_SIZE)
    weights = ops.take(taps, ops.clip(offsets, 0, SSIM_WINDOW_SIZE - 1))
    return ops.where(inside, weights, ops.zeros_like(weights))


def ssim(y_true, y_pred):
    """Structural similarity (SSIM) of each image, as in Wang et al. 2004.

    Local statistics use an 11x11 Gaussian window (sigma 1.5), population
    (co)variances and `K1 = 0.01`, `K2 = 0.03` with a data range of 1. Each
    channel is filtered on its own; the result is the mean of the SSIM map
    over positions and channels.

    Only positions whose whole window lies inside the image are kept ('valid'
    filtering, an `(H - 10) x (W - 10)` map). This is what scikit-image
    computes with `structural_similarity(a, b, data_range=1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    channel_axis=-1)`: it filters with reflect padding but then crops
    `(11 - 1) // 2 = 5` pixels from every border of the map before averaging,
    and those are exactly the positions whose window reads the padding. Its
    window is also 11 taps (`truncate=3.5` gives radius `int(3.5 * 1.5 +
    0.5) = 5`), normalised to sum to 1. So the two agree up to float
    rounding, with no padding here: the filter is separable, applied along
    each axis at the 'valid' positions only.

    Args:
        y_true: images of shape `(..., H, W, C)` with `H, W >= 11`, values
            in `[0, 1]`.
        y_pred: images of the same shape.

    Returns:
        A tensor of shape `...` with one SSIM per image (1 for identical
        images).

    Example:

    >>> import numpy as np
    >>> images = np.random.default_rng(0).random((2, 28, 28, 1))
    >>> [round(float(v), 3) for v in ssim(images, images)]
    [1.0, 1.0]
    """
    y_true, y_pred = _check_images(y_true, y_pred, "ssim")
    for size in y_true.shape[-3:-1]:
        if size is not None and size < SSIM_WINDOW_SIZE:
            raise ValueError(
                f"`ssim` needs images of at least {SSIM_WINDOW_SIZE}x"
                f"{SSIM_WINDOW_SIZE} pixels (its Gaussian window). Received "
                f"shape {tuple(y_true.shape)}, laid out as `(..., H, W, C)`."
            )
    # Ints, or scalar tensors for sizes unknown while TensorFlow traces.
    image_shape = ops.shape(y_true)
    height, width, channels = image_shape[-3:]

    def as_planes(x):
        # `(..., H, W, C)` -> `(planes, H, W)`: every channel of every image
        # is filtered on its own, like scikit-image's loop over channels.
        return ops.reshape(ops.moveaxis(x, -1, -3), (-1, height, width))

    planes_true, planes_pred = as_planes(y_true), as_planes(y_pred)
    # The five local moments stacked on a last axis and filtered together, so
    # the filter does not depend on the number of image channels.
    moments = ops.stack(
        [
            planes_true,
            planes_pred,
            planes_true * planes_true,
            planes_pred * planes_pred,
            planes_true * planes_pred,
        ],
        axis=-1,
    )
    # Separable Gaussian: the taps along H, then along W, each as a product
    # with a banded matrix (one row per 'valid' position, i.e. every window
    # that lies inside the image). For small images such as MNIST digits this
    # is an order of magnitude faster to train through than a depthwise
    # convolution on CPU with JAX or TensorFlow, and even on eager torch
    # (benchmarks/ssim_speed.py); its cost grows as H * W * (H + W).
    taps = _gaussian_window(moments.dtype)
    moments = ops.einsum("ih,nhwc->niwc", _valid_filter(taps, height), moments)
    moments = ops.einsum("jw,niwc->nijc", _valid_filter(taps, width), moments)
    mean_true, mean_pred = moments[..., 0], moments[..., 1]
    var_true = moments[..., 2] - mean_true * mean_true
    var_pred = moments[..., 3] - mean_pred * mean_pred
    covariance = moments[..., 4] - mean_true * mean_pred

    c1 = SSIM_K1**2
    c2 = SSIM_K2**2
    ssim_map = ((2.0 * mean_true * mean_pred + c1) * (2.0 * covariance + c2)) / (
        (ops.square(mean_true) + ops.square(mean_pred) + c1) * (var_true + var_pred + c2)
    )
    per_plane = ops.mean(ssim_map, axis=(1, 2))
    # Mean over channels of the per-channel SSIM, as scikit-image averages.
    per_channel = ops.reshape(per_plane, tuple(image_shape[:-3]) + (channels,))
    return ops.mean(per_channel, axis=-1)


def _per_image_weights(sample_weight, per_image):
    """Broadcasts `sample_weight` (one weight per image or per batch entry)."""
    if sample_weight is None:
        return ops.ones_like(per_image)
    weights = ops.cast(ops.convert_to_tensor(sample_weight), per_image.dtype)
    # A `(B,)` weight for `(B, T, H, W, C)` sequences weighs every frame of
    # entry `b` alike.
    while len(weights.shape) < len(per_image.shape):
        weights = ops.expand_dims(weights, -1)
    return ops.broadcast_to(weights, ops.shape(per_image))


class _ImageMetric(keras.metrics.Metric):
    """Shared state of the image metrics: a weighted total and a count."""

    def __init__(self, name, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class _SquaredErrorMetric(_ImageMetric):
    """Accumulates the squared error summed over pixels and the pixel count."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        per_image = mse(ops.cast(y_true, self.dtype), ops.cast(y_pred, self.dtype))
        weights = _per_image_weights(sample_weight, per_image)
        # Sums per pixel, not per image or batch, so the last, short batch
        # counts in proportion to its pixels. The size may be symbolic.
        height, width, channels = ops.shape(y_pred)[-3:]
        pixels = ops.cast(height * width * channels, self.dtype)
        self.total.assign_add(ops.sum(weights * per_image) * pixels)
        self.count.assign_add(ops.sum(weights) * pixels)

    def _mean_squared_error(self):
        return ops.divide_no_nan(self.total, self.count)


@keras.saving.register_keras_serializable(package="keras_imfn")
class PixelMSE(_SquaredErrorMetric):
    """Mean squared error over every pixel seen, for `(..., H, W, C)` images.

    Accumulates the squared error summed over all pixels and the number of
    pixels, and reports their ratio, so uneven batches do not bias it. Any
    leading axes are allowed, e.g. `(B, H, W, C)` images or `(B, T, H, W, C)`
    sequences. An optional `sample_weight` weighs whole images: shape `(B,)`
    or the leading shape of the input.

    Args:
        name: str. Name of the metric in the logs.
        dtype: dtype of the accumulators and the result.

    Example:

    >>> import numpy as np
    >>> metric = PixelMSE()
    >>> a = np.zeros((2, 8, 8, 1), "float32")
    >>> metric.update_state(a, a + 0.5)
    >>> round(float(metric.result()), 4)
    0.25
    """

    def __init__(self, name="pixel_mse", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def result(self):
        return self._mean_squared_error()


@keras.saving.register_keras_serializable(package="keras_imfn")
class PSNR(_SquaredErrorMetric):
    """PSNR of the mean MSE over everything seen, in dB, for values in [0, 1].

    Reports `10 log10(1 / MSE)` where MSE is the squared error summed over
    every pixel of every batch divided by the number of pixels, computed in
    `result()`. This is the PSNR of the mean MSE used by the published IMFN
    tables (see `psnr_of_mean_mse`), not the mean of per-image or per-batch
    PSNR values. Inputs are `(..., H, W, C)` images with any leading axes;
    an optional `sample_weight` weighs whole images.

    Args:
        name: str. Name of the metric in the logs.
        dtype: dtype of the accumulators and the result.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> inputs = keras.Input((16, 16, 1))
    >>> model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    >>> model.compile(loss="mse", metrics=[PSNR(), PixelMSE(), SSIM()])
    >>> images = np.random.default_rng(0).random((4, 16, 16, 1)).astype("float32")
    >>> logs = model.evaluate(images, images, verbose=0, return_dict=True)
    >>> sorted(logs)
    ['loss', 'pixel_mse', 'psnr', 'ssim']
    """

    def __init__(self, name="psnr", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def result(self):
        return -10.0 * ops.log10(self._mean_squared_error())


@keras.saving.register_keras_serializable(package="keras_imfn")
class SSIM(_ImageMetric):
    """Mean of the per-image SSIM over everything seen.

    Each image's SSIM is `keras_imfn.metrics.ssim` (Wang et al. 2004, equal
    to scikit-image's Gaussian-weighted SSIM). Inputs are `(..., H, W, C)`
    with `H, W >= 11`: `(B, H, W, C)` images, or `(B, T, H, W, C)` sequences
    where every frame counts as one image. An optional `sample_weight` weighs
    whole images: shape `(B,)` or the leading shape of the input.

    Args:
        name: str. Name of the metric in the logs.
        dtype: dtype of the accumulators and the result.

    Example:

    >>> import numpy as np
    >>> metric = SSIM()
    >>> frames = np.random.default_rng(0).random((2, 3, 16, 16, 1)).astype("float32")
    >>> metric.update_state(frames, frames)
    >>> round(float(metric.result()), 3)
    1.0
    """

    def __init__(self, name="ssim", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        per_image = ssim(ops.cast(y_true, self.dtype), ops.cast(y_pred, self.dtype))
        weights = _per_image_weights(sample_weight, per_image)
        self.total.assign_add(ops.sum(weights * per_image))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)
