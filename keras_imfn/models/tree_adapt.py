"""`TreeMemory.adapt`: the closed-form start, streamed over the data.

The start is a hierarchical PCA: the leaf MLPs' output layers by least
squares to the principal components of the steps (and back), then level by
level every sweeper's linear skip to PCA of the pairs it merges. Each of
these is a function of second moments only, so `adapt` accumulates them
batch by batch and never holds the data: one pass for the steps' moments,
two for the leaf least squares, one per level. Data are what
`keras.layers.Normalization.adapt` takes: arrays, a `keras.utils.PyDataset`,
a `tf.data.Dataset`, or any re-iterable of batches (`x` or `(x, ...)`).
"""

import itertools
import math

import numpy as np
from keras import ops

# `adapt` fits a sigmoid decoder to the logits of pixels clipped this far from 0 and 1.
_LOGIT_CLIP = 0.01
# Ridge of the least squares, relative to the features' mean square.
_RIDGE = 1e-4
# Directions whose variance is below this share of the largest are left out (zero).
_RANK_TOLERANCE = 1e-10


class Moments:
    """Running count, sum and sum of outer products of rows `(n, D)`, in float64."""

    def __init__(self):
        self.count, self.total, self.outer = 0, None, None

    def add(self, rows):
        rows = np.asarray(rows, "float64").reshape(len(rows), -1)
        if self.total is None:
            self.total, self.outer = rows.sum(axis=0), rows.T @ rows
        else:
            self.total += rows.sum(axis=0)
            self.outer += rows.T @ rows
        self.count += len(rows)

    def principal_components(self, num_components):
        """`(mean, basis)` as `keras_imfn.pca.principal_components` gives them."""
        mean = self.total / self.count
        covariance = self.outer / self.count - np.outer(mean, mean)
        values, vectors = np.linalg.eigh(covariance)
        order = np.argsort(values)[::-1][:num_components]
        basis = np.zeros((len(mean), num_components))
        kept = values[order] > _RANK_TOLERANCE * max(values.max(), 0.0)
        kept &= np.arange(len(order)) < min(self.count - 1, len(mean))
        basis[:, : len(order)] = vectors[:, order] * kept
        return mean, basis


class LeastSquares:
    """Running normal equations of `targets ~ features @ W + b`."""

    def __init__(self):
        self.gram, self.cross = None, None

    def add(self, features, targets):
        design = np.concatenate([features, np.ones((len(features), 1))], axis=1)
        gram, cross = design.T @ design, design.T @ targets
        if self.gram is None:
            self.gram, self.cross = gram, cross
        else:
            self.gram += gram
            self.cross += cross

    def set(self, dense):
        """Sets `dense`'s kernel and bias to the ridge solution."""
        ridge = _RIDGE * np.trace(self.gram) / len(self.gram)
        solution = np.linalg.solve(self.gram + ridge * np.eye(len(self.gram)), self.cross)
        dtype = dense.kernel.dtype
        dense.set_weights([solution[:-1].astype(dtype), solution[-1].astype(dtype)])


def batches_of(data, batch_size):
    """A function giving a fresh iterator over `data`'s input batches (numpy)."""
    if isinstance(data, np.ndarray) or hasattr(data, "shape") and hasattr(data, "dtype"):
        array = data

        def arrays():
            for start in range(0, len(array), batch_size):
                yield np.asarray(ops.convert_to_numpy(array[start : start + batch_size]))

        return arrays
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and hasattr(data, "on_epoch_end"):
        dataset = data  # a keras.utils.PyDataset

        def items():
            for index in range(len(dataset)):
                yield _inputs(dataset[index])

        return items
    if hasattr(data, "as_numpy_iterator"):  # a tf.data.Dataset
        return lambda: (_inputs(batch) for batch in data.as_numpy_iterator())
    if iter(data) is data:
        raise TypeError(
            "TreeMemory.adapt passes over the data once per level (and three times for "
            "the leaves), so it needs data it can read again: arrays, a "
            "keras.utils.PyDataset, a tf.data.Dataset or a list of batches. Received a "
            f"one-shot iterator ({type(data).__name__})."
        )
    return lambda: (_inputs(batch) for batch in data)


def _inputs(batch):
    """The inputs of a batch `x` or `(x, y, ...)`, as numpy."""
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    return np.asarray(ops.convert_to_numpy(x) if not isinstance(x, np.ndarray) else x)


def adapt(tree, data, fit_leaves, batch_size, steps=None):
    """The start of `TreeMemory.adapt` (see there); returns the tree."""
    every = batches_of(data, batch_size)
    if steps is not None and int(steps) < 1:
        raise ValueError(f"`steps` must be a positive number of batches. Received: {steps}")
    passes = every if steps is None else (lambda: itertools.islice(every(), int(steps)))
    custom = tree._custom_encoder or tree._custom_decoder
    if fit_leaves is None:
        fit_leaves = not custom
    step_moments = Moments() if fit_leaves else None
    count = 0
    for x in passes():  # every check before any weight changes
        _check_batch(tree, x, fit_leaves, custom)
        count += len(x)
        if fit_leaves:
            step_moments.add(x.reshape(-1, int(np.prod(tree.feature_shape))))
    _check_count(tree, count, fit_leaves)
    if fit_leaves:
        _fit_leaves(tree, passes, step_moments)
    real = tree.sequence_length  # children holding data, the rest padding
    for level in range(tree.num_levels):
        pairs = math.ceil(real / 2)
        moments = Moments()
        for x in passes():
            nodes = tree.encode_leaves(tree._prepare(x))
            for below in range(level):
                nodes = tree.merge_level(below, nodes)
            nodes = ops.convert_to_numpy(nodes).astype("float64")
            left, right = nodes[:, 0 : 2 * pairs : 2], nodes[:, 1 : 2 * pairs : 2]
            moments.add(np.concatenate([left, right], axis=-1).reshape(-1, 2 * tree.memory_dim))
        mean, basis = moments.principal_components(tree.memory_dim)
        tree.merge_for(level).set_pair_pca(mean, basis, tree.inverse_for(level))
        real = pairs
        if tree.share_weights:
            break  # the one sweeper is fitted to level 0
    return tree


def _fit_leaves(tree, passes, steps):
    """Fits the default encoder's and decoder's output layers (see `adapt`)."""
    mean, basis = steps.principal_components(tree.memory_dim)
    _, enc_hidden, enc_out = tree.encoder.layers
    dec_hidden, dec_out, _ = tree.decoder.layers
    encoder, decoder = LeastSquares(), LeastSquares()
    for x in passes():
        flat = x.reshape(-1, len(mean)).astype("float64")
        features = enc_hidden(ops.convert_to_tensor(flat, tree.compute_dtype))
        encoder.add(ops.convert_to_numpy(features).astype("float64"), (flat - mean) @ basis)
    encoder.set(enc_out)
    for x in passes():
        flat = x.reshape(-1, len(mean)).astype("float64")
        steps_in = ops.convert_to_tensor(x.reshape((-1,) + tree.feature_shape), tree.compute_dtype)
        features = ops.convert_to_numpy(dec_hidden(tree.encoder(steps_in))).astype("float64")
        targets = flat
        if tree.output_activation == "sigmoid":
            clipped = np.clip(flat, _LOGIT_CLIP, 1 - _LOGIT_CLIP)
            targets = np.log(clipped) - np.log1p(-clipped)
        decoder.add(features, targets)
    decoder.set(dec_out)


def _check_batch(tree, x, fit_leaves, custom):
    """Every reason `adapt` cannot use the batch `x`, raised before it changes anything."""
    from keras_imfn.models.inputs import check_sequence_shape

    if x.dtype.kind not in "fiu":
        raise TypeError(f"TreeMemory.adapt expects numeric sequences. Received dtype {x.dtype}")
    feature_shape = tree.feature_shape or tuple(x.shape[2:])
    check_sequence_shape(x.shape, tree.sequence_length, feature_shape, "TreeMemory.adapt")
    if not tree.built:  # weights to fit, and the leaf shape (tokens) to count
        tree.build((None,) + x.shape[1:])
    if not np.isfinite(x).all():
        raise ValueError(
            f"TreeMemory.adapt needs finite values; {np.size(x) - np.isfinite(x).sum()} "
            "of the sequences' values are NaN or infinite. Clean or drop them first."
        )
    if tree.num_levels and tree.sweeper_skip != "linear":
        raise ValueError(
            "`adapt` sets the sweepers' linear skips to PCA; this tree has "
            f"sweeper_skip={tree.sweeper_skip!r}. Build it with sweeper_skip='linear' "
            "(the default)."
        )
    if fit_leaves and custom:
        raise ValueError(
            "`adapt(fit_leaves=True)` fits the default leaf encoder and decoder; this "
            "tree was given its own. Pass fit_leaves=False to fit the sweepers to the "
            "leaves your encoder gives."
        )
    if fit_leaves and tree.output_activation not in (None, "linear", "sigmoid"):
        raise ValueError(
            "`adapt` fits the default decoder for output_activation None or "
            f"'sigmoid'; this tree has {tree.output_activation!r}. Pass "
            "fit_leaves=False, or build the tree with one of those."
        )


def _check_count(tree, count, fit_leaves):
    """Enough sequences for every PCA; the root's is fitted to one pair per
    sequence (per token)."""
    if count == 0:
        raise ValueError("TreeMemory.adapt received no sequences.")
    tokens = 1 if len(tree.leaf_shape) == 1 else tree.leaf_shape[0]
    needed = math.ceil((tree.memory_dim + 1) / tokens) if tree.num_levels else 1
    steps_needed = tree.memory_dim + 1 if fit_leaves else 1
    needed = max(needed, math.ceil(steps_needed / tree.sequence_length))
    if count < needed:
        raise ValueError(
            f"`adapt` fits {tree.memory_dim} principal components to every level, "
            f"the root's from one pair per sequence: it needs at least {needed} "
            f"sequences for memory_dim={tree.memory_dim}. Received {count}."
        )
