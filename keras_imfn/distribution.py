"""Training on more than one device, with the engines Keras already has.

- JAX: `keras.distribution.DataParallel` (the batch split over devices) and
  `keras.distribution.ModelParallel` (kernels sharded over a `model` mesh axis
  as `layout_map` lays them out) train every model here unchanged.
- TensorFlow: build and `fit` inside `tf.distribute.MirroredStrategy().scope()`.
  Keras averages a loss over replicas by scaling each replica's share by
  `1 / num_replicas`; the models' own losses follow the same rule
  (`scale_for_replicas`).
- PyTorch: Keras 3.15 has no distribution on torch (it arrives with Keras 3.16,
  through DDP and `torchrun`); a distribution set there is an error
  (`check_supported`), not a silent single-device run.

`docs/distributed.md` has the commands and what was measured.
"""

import contextlib
import math

import keras
from keras import ops

# The first Keras release that distributes training on the torch backend.
TORCH_DISTRIBUTION_KERAS = (3, 16)

__all__ = [
    "batch_moments",
    "batch_variance",
    "check_supported",
    "data_parallel",
    "layout_map",
    "scale_for_replicas",
]


@contextlib.contextmanager
def data_parallel(enabled=True):
    """Models built and trained inside split each batch over every device found.

    On JAX, `keras.distribution.DataParallel()` over `keras.distribution.
    list_devices()`; on TensorFlow, `tf.distribute.MirroredStrategy()` over
    its local devices. Yields the distribution (or strategy); with
    `enabled=False`, yields None and changes nothing (so a script's
    `--data-parallel` flag can pass straight through). The example scripts'
    `--data-parallel` is this.

    Example:

    >>> from keras_imfn.distribution import data_parallel
    >>> with data_parallel(enabled=False) as engine:
    ...     print(engine)
    None
    """
    if not enabled:
        yield None
        return
    backend = keras.backend.backend()
    if backend == "jax":
        engine = keras.distribution.DataParallel()
        scope = engine.scope()
    elif backend == "tensorflow":
        import tensorflow as tf

        engine = tf.distribute.MirroredStrategy()
        scope = engine.scope()
    else:
        raise NotImplementedError(
            f"Data parallel training runs on JAX and TensorFlow; Keras {keras.__version__} "
            f"cannot distribute on the {backend} backend (Keras 3.16 adds torch, "
            "through DDP and torchrun)."
        )
    with scope:
        yield engine


def layout_map(device_mesh, model_axis="model"):
    """A `keras.distribution.LayoutMap` that shards the tree's MLP kernels.

    Megatron-style pairs: every residual MLP block of the sweepers (and of
    the student) splits its inner width over `model_axis`: the `_inner`
    kernel by columns (its bias too), the `_outer` kernel by rows, so each
    device computes its slice of the hidden layer and one reduction sums the
    block's output. The default leaf MLPs of `TreeMemory` (and the student's
    input encoder) split their hidden width the same way (`hidden` by
    columns, `output` by rows). Everything else (linear skips, norms, the
    batch) follows the mesh's other axis, data parallel.

    The sharded widths (`hidden_dim * expansion` of the sweepers,
    `leaf_hidden_dim`) must be divisible by the size of `model_axis`.
    Patterns start with `.*`: Keras matches them to whole variable paths.

    Example:

    >>> import keras
    >>> from keras_imfn.distribution import layout_map
    >>> mesh = keras.distribution.DeviceMesh((1, 1), ["batch", "model"], ["cpu:0"])
    >>> layouts = layout_map(mesh)
    >>> layouts[".*_inner/kernel"].axes
    (None, 'model')
    """
    if not isinstance(device_mesh, keras.distribution.DeviceMesh):
        raise TypeError(
            "layout_map takes a `keras.distribution.DeviceMesh`, e.g. `DeviceMesh((2, 2), "
            f"['batch', '{model_axis}'], keras.distribution.list_devices())`. "
            f"Received: {device_mesh!r:.200}")
    if model_axis not in device_mesh.axis_names:
        raise ValueError(
            f"layout_map shards over model_axis={model_axis!r}, which the mesh does not "
            f"have: its axes are {list(device_mesh.axis_names)}. Name one of them.")
    layouts = keras.distribution.LayoutMap(device_mesh)
    layouts[".*_inner/kernel"] = (None, model_axis)
    layouts[".*_inner/bias"] = (model_axis,)
    layouts[".*_outer/kernel"] = (model_axis, None)
    layouts[".*/hidden/kernel"] = (None, model_axis)
    layouts[".*/hidden/bias"] = (model_axis,)
    layouts[".*/output/kernel"] = (model_axis, None)
    return layouts


def check_supported():
    """Raise where a distribution is set that this backend cannot run.

    Called when a model computes its loss. On torch before Keras 3.16 a
    `keras.distribution` setting would be ignored: training would run on one
    device while the user believes otherwise.
    """
    if keras.backend.backend() != "torch" or keras.distribution.distribution() is None:
        return
    version = tuple(int(part) for part in keras.__version__.split(".")[:2])
    if version < TORCH_DISTRIBUTION_KERAS:
        raise NotImplementedError(
            f"A keras.distribution is set ({keras.distribution.distribution()}), but "
            f"Keras {keras.__version__} cannot distribute training on the torch "
            "backend (Keras 3.16 adds it, through DDP and torchrun). Train on JAX "
            "(keras.distribution) or TensorFlow (tf.distribute), or call "
            "keras.distribution.set_distribution(None) to train on one device."
        )


def scale_for_replicas(loss):
    """One replica's share of `loss`, as Keras scales its compiled losses.

    Under `tf.distribute` each replica's loss is multiplied by
    `1 / num_replicas_in_sync` and the gradients are summed across replicas,
    which gives the gradient of the average. On other backends (and on one
    replica) the loss is unchanged.
    """
    context = _replica_context()
    if context is None:
        return loss
    return loss * ops.cast(1.0 / context.num_replicas_in_sync, loss.dtype)


def batch_variance(values, axis):
    """`ops.var(values, axis)` over the whole batch, on every replica (see `batch_moments`)."""
    return batch_moments(values, axis)[1]


def batch_moments(values, axis):
    """`(mean, variance)` of `values` over `axis` (with the batch axis 0) of the
    whole batch, and the number of sequences in it.

    Under `tf.distribute` a replica sees only its part of the batch (batch
    statistics, as a synchronised batch norm keeps them): one all-reduce adds the replicas' sums, sums of
    squares and counts (a step that all-reduced each statistic apart could
    launch them in another order on each replica, which TensorFlow's
    collectives reject); elsewhere this is `ops.mean` and `ops.var`.
    """
    axis = tuple(axis)
    context = _replica_context()
    if context is None:
        return ops.mean(values, axis=axis), ops.var(values, axis=axis), ops.cast(
            ops.shape(values)[0], values.dtype)
    total = ops.sum(values, axis=axis)
    squares = ops.sum(ops.square(values), axis=axis)
    shape = ops.shape(total)
    count = ops.cast(math.prod(values.shape[a] for a in axis if a != 0), values.dtype)
    batch = ops.cast(ops.shape(values)[0], values.dtype)
    summed = context.all_reduce("sum", ops.concatenate(
        [ops.reshape(total, (-1,)), ops.reshape(squares, (-1,)), ops.stack([batch])]))
    size = int(math.prod(total.shape))
    batch = summed[-1]
    mean = ops.reshape(summed[:size], shape) / (batch * count)
    mean_square = ops.reshape(summed[size : 2 * size], shape) / (batch * count)
    return mean, ops.maximum(mean_square - ops.square(mean), 0.0), batch


def _replica_context():
    """The `tf.distribute` replica context where a batch is split, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context
