"""SSIM loss and gradient: banded-matrix filter vs depthwise convolution.

`keras_imfn.metrics.ssim` filters the five local moments with the separable
11-tap Gaussian as two products with banded matrices (one row per 'valid'
window position). The alternative, which it replaced, is two depthwise
convolutions (`keras.ops.depthwise_conv`, 'valid' padding). Both compute the
same numbers; this script times `1 - SSIM` and its gradient with respect to
the prediction, as a training step with `keras_imfn.losses.SSIMLoss` needs,
on a batch of MNIST sequences `(64, 16, 28, 28, 1)` (the MNIST `cpu`
preset's batch), compiled (`jax.jit`, `tf.function(jit_compile=True)`, or
eager torch: Keras' torch backend runs eagerly unless asked otherwise).
Variants are interleaved after one warm-up call each; the medians are
compared. It also checks that both give the same SSIM.

Usage::

    KERAS_BACKEND=jax python benchmarks/ssim_speed.py
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("jax", "tensorflow", "torch"),
                   help="Keras backend (default: $KERAS_BACKEND, else jax)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sequence-length", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10, help="timed calls per variant")
    p.add_argument("--output", default=None, help="JSON path (default benchmarks/results/)")
    return p.parse_args(argv)


def conv_ssim(y_true, y_pred):
    """`metrics.ssim` with the Gaussian as depthwise convolutions (the old way)."""
    from keras import ops

    from keras_imfn import metrics

    shape = ops.shape(y_true)
    planes = [ops.reshape(ops.moveaxis(v, -1, -3), (-1,) + tuple(shape[-3:-1]))
              for v in (y_true, y_pred)]
    a, b = planes
    moments = ops.stack([a, b, a * a, b * b, a * b], axis=-1)
    taps = metrics._gaussian_window(moments.dtype)
    size = metrics.SSIM_WINDOW_SIZE
    for kernel_shape in ((size, 1, 1, 1), (1, size, 1, 1)):
        kernel = ops.broadcast_to(ops.reshape(taps, kernel_shape), kernel_shape[:2] + (5, 1))
        moments = ops.depthwise_conv(moments, kernel, 1, "valid", "channels_last")
    mu_a, mu_b = moments[..., 0], moments[..., 1]
    var_a = moments[..., 2] - mu_a * mu_a
    var_b = moments[..., 3] - mu_b * mu_b
    cov = moments[..., 4] - mu_a * mu_b
    c1, c2 = metrics.SSIM_K1**2, metrics.SSIM_K2**2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    # One channel: one plane per image.
    return ops.reshape(ops.mean(ssim_map, axis=(1, 2)), tuple(shape[:-3]))


def loss_and_gradient(backend, ssim_fn):
    """A compiled function `(y_true, y_pred) -> (mean 1 - SSIM, d/d y_pred)`."""
    from keras import ops

    def loss(y_true, y_pred):
        return ops.mean(1.0 - ssim_fn(y_true, y_pred))

    if backend == "jax":
        import jax

        return jax.jit(jax.value_and_grad(loss, argnums=1))
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(y_true, y_pred):
            with tf.GradientTape() as tape:
                tape.watch(y_pred)
                value = loss(y_true, y_pred)
            return value, tape.gradient(value, y_pred)

        return step
    import torch

    def step(y_true, y_pred):
        y_pred = y_pred.detach().requires_grad_(True)
        value = loss(y_true, y_pred)
        (gradient,) = torch.autograd.grad(value, y_pred)
        return value, gradient

    return step


def main(argv=None):
    args = parse_args(argv)
    backend = _common.select_backend(args.backend)
    import keras
    import numpy as np

    from keras_imfn import metrics
    from keras_imfn.datasets import mnist

    digits = mnist.load_digits(source="embedded", verbose=False)[0][0]
    shape = (args.batch_size, args.sequence_length)
    rng = np.random.default_rng(0)
    y_true = (digits[rng.integers(0, len(digits), shape)] / 255.0).astype("float32")[..., None]
    y_pred = np.clip(y_true + rng.normal(0, 0.2, y_true.shape), 0, 1).astype("float32")
    y_true, y_pred = keras.ops.convert_to_tensor(y_true), keras.ops.convert_to_tensor(y_pred)

    variants = {"banded_matrix": metrics.ssim, "depthwise_conv": conv_ssim}
    steps = {name: loss_and_gradient(backend, fn) for name, fn in variants.items()}

    def run(name):
        value, gradient = steps[name](y_true, y_pred)
        return float(keras.ops.convert_to_numpy(value)), keras.ops.convert_to_numpy(gradient)

    outputs = {name: run(name) for name in variants}  # warm-up (compilation)
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name in variants:
            times[name].append(_common.median_time(lambda: run(name), 1)[0])
    median = {name: float(np.median(values)) for name, values in times.items()}
    loss_gap = abs(outputs["banded_matrix"][0] - outputs["depthwise_conv"][0])
    gradient_gap = float(np.max(np.abs(outputs["banded_matrix"][1] - outputs["depthwise_conv"][1])))
    summary = dict(median_seconds=median,
                   speed_up=median["depthwise_conv"] / median["banded_matrix"],
                   loss_difference=loss_gap, max_gradient_difference=gradient_gap)
    result = dict(config=dict(vars(args), backend=backend, shape=list(y_true.shape)),
                  command=_common.command_line(), environment=_common.environment(),
                  times=times, summary=summary)
    markdown = (
        f"## SSIM loss + gradient, {backend}, shape {tuple(y_true.shape)}\n\n"
        f"Median of {args.repeats} interleaved calls after one warm-up each.\n\n"
        + _common.markdown_table(
            ["depthwise conv (s)", "banded matrix (s)", "speed-up", "loss difference",
             "max gradient difference"],
            [[_common.fmt(median["depthwise_conv"]), _common.fmt(median["banded_matrix"]),
              _common.fmt(summary["speed_up"]), f"{loss_gap:.1e}", f"{gradient_gap:.1e}"]],
        )
    )
    output = args.output or _common.default_output(f"ssim_speed_{backend}.json")
    _common.write_outputs(output, result, markdown)


if __name__ == "__main__":
    main()
