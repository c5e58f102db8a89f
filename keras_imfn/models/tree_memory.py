import math

import keras
import numpy as np
from keras import layers
from keras import ops

from keras_imfn.callbacks import with_non_finite_guard
from keras_imfn.layers.sweeper_inverse import SweeperInverse
from keras_imfn.layers.sweeper_merge import SweeperMerge
from keras_imfn.layers.sweeper_merge import check_skip
from keras_imfn.models.inputs import check_numeric
from keras_imfn.models.inputs import check_sequence_shape
from keras_imfn.models.losses import add_compiled_and_layer_losses
from keras_imfn.models.losses import pixel_error
from keras_imfn.models.losses import weighted_mean

# Keeps the variance normalisation finite when a level's states collapse.
_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="keras_imfn")
class TreeMemory(keras.Model):
    """The IMFN teacher: a binary tree of sweepers over a sequence.

    The leaves are the encoded inputs. Level `k` merges adjacent pairs of
    level-`k-1` nodes (level 0 merges pairs of leaves) with a `SweeperMerge`,
    so a level-`k` node summarises `2**(k+1)` steps and the root, after
    `ceil(log2(sequence_length))` levels, summarises the whole sequence.
    Decoding runs the tree backward with each level's `SweeperInverse`, then
    the leaf decoder.

    Training (`compile()` + `fit(x)`) gives every level a *local* loss: the
    level reconstructs its two children from their merge, with the children
    held fixed (stop-gradient) so that no level trains another, and the loss
    is divided by the children's variance so that it measures the error
    relative to the signal (a level cannot win by shrinking its states). A
    pixel loss trains the leaf encoder and decoder. `fit` logs `leaf_loss`,
    `level_0_loss`, `level_1_loss`, ... and `reconstruction_loss`, the pixel
    MSE of decoding from the root. With `end_to_end=True` the objective
    becomes that pixel loss (plus the leaf loss), flowing through the whole
    tree; the local losses are still logged but no longer trained, since
    their variance-normalised scale would drown the pixel gradient. The
    recommended
    recipe is local training first, then an end-to-end fine-tune at a lower
    learning rate (see `docs/concepts.md`).

    A `sequence_length` that is not a power of two is zero-padded (in input
    space) to the next power of two; the padding is left out of every loss
    and of every output.

    Args:
        memory_dim: int. Size `d` of every memory state (last axis).
        sequence_length: int. Number of steps `T` in a sequence, >= 1.
        encoder: optional Keras layer mapping one step's features
            `(B, *features)` to a leaf `(B, memory_dim)` or a token grid
            `(B, N, memory_dim)`. Defaults to an MLP on the flattened features.
        decoder: optional Keras layer mapping a leaf back to `(B, *features)`.
            Defaults to an MLP mirroring the default encoder.
        share_weights: bool. One sweeper for every level (fewer parameters,
            any depth) instead of one per level.
        hidden_dim: int. Width of the sweepers' MLPs. Defaults to
            `2 * memory_dim`.
        num_blocks: int. Residual blocks per sweeper MLP.
        activation: str. Activation of the sweepers and default leaf MLPs.
        token_mixing: bool. Sweepers mix across tokens (for token leaves).
        sweeper_skip: `"none"`, `"mean"` or `"linear"`: whether every sweeper
            adds a skip path to its MLP (see `SweeperMerge`). `"mean"` starts
            from the pair's mean; `"linear"` from a linear map that
            `initialize_sweepers` sets to PCA of the training pairs, so the
            tree starts as a hierarchical PCA (see `docs/results.md`).
        leaf_hidden_dim: int. Hidden width of the default encoder/decoder.
            Defaults to `max(256, 2 * memory_dim)`.
        output_activation: str or None. Final activation of the default
            decoder, e.g. `"sigmoid"` for pixels in [0, 1].
        end_to_end: bool. Train on the root-to-pixels loss through the whole
            tree (plus the leaf loss) instead of the local losses. Set it and
            `compile()` again to switch phases.
        **kwargs: Base model arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> x = np.random.rand(32, 8, 28, 28).astype("float32")
    >>> model = TreeMemory(memory_dim=64, sequence_length=8,
    ...                    output_activation="sigmoid")
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> sorted(history.history)[:3]
    ['leaf_loss', 'level_0_loss', 'level_1_loss']
    >>> tuple(model.encode(x).shape)
    (32, 64)
    >>> tuple(model.decode(model.encode(x)).shape)
    (32, 8, 28, 28)
    """

    def __init__(
        self,
        memory_dim,
        sequence_length,
        encoder=None,
        decoder=None,
        share_weights=False,
        hidden_dim=None,
        num_blocks=2,
        activation="gelu",
        token_mixing=False,
        sweeper_skip="none",
        leaf_hidden_dim=None,
        output_activation=None,
        end_to_end=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(memory_dim) < 1:
            raise ValueError(f"`memory_dim` must be >= 1. Received: memory_dim={memory_dim}")
        if int(sequence_length) < 1:
            raise ValueError(
                f"`sequence_length` must be >= 1. Received: sequence_length={sequence_length}"
            )
        for part, layer in (("encoder", encoder), ("decoder", decoder)):
            if layer is not None and not isinstance(layer, keras.layers.Layer):
                raise TypeError(
                    f"`{part}` must be a Keras layer or None. Received: {layer!r}"
                )
        self.memory_dim = int(memory_dim)
        self.sequence_length = int(sequence_length)
        self.num_levels = math.ceil(math.log2(self.sequence_length))
        self.padded_length = 2**self.num_levels
        self.share_weights = bool(share_weights)
        self.hidden_dim = int(hidden_dim or 2 * self.memory_dim)
        self.num_blocks = int(num_blocks)
        self.activation = activation
        self.token_mixing = bool(token_mixing)
        self.sweeper_skip = check_skip(sweeper_skip)
        self.leaf_hidden_dim = int(leaf_hidden_dim or max(256, 2 * self.memory_dim))
        self.output_activation = output_activation
        self.end_to_end = bool(end_to_end)
        self._custom_encoder = encoder is not None
        self._custom_decoder = decoder is not None
        self.encoder = encoder
        self.decoder = decoder
        self.feature_shape = None
        self.leaf_shape = None

        num_sweepers = min(self.num_levels, 1) if self.share_weights else self.num_levels
        sweeper_args = dict(
            memory_dim=self.memory_dim,
            hidden_dim=self.hidden_dim,
            num_blocks=self.num_blocks,
            activation=self.activation,
            token_mixing=self.token_mixing,
            skip=self.sweeper_skip,
            dtype=self.dtype_policy,
        )
        self.merges = [
            SweeperMerge(name=f"merge_{k}", **sweeper_args) for k in range(num_sweepers)
        ]
        self.inverses = [
            SweeperInverse(name=f"inverse_{k}", **sweeper_args) for k in range(num_sweepers)
        ]

        self.leaf_loss_tracker = keras.metrics.Mean(name="leaf_loss")
        self.level_loss_trackers = [
            keras.metrics.Mean(name=f"level_{k}_loss") for k in range(self.num_levels)
        ]
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        check_sequence_shape(input_shape, self.sequence_length, (), "TreeMemory")
        check_sequence_shape(
            input_shape, self.sequence_length, input_shape[2:], "TreeMemory"
        )
        feature_shape = tuple(input_shape[2:])
        if any(d is None for d in feature_shape):
            raise ValueError(
                "TreeMemory needs fully known feature dimensions. Received "
                f"input shape {input_shape}"
            )
        self.feature_shape = feature_shape
        step_shape = (None,) + feature_shape
        if self.encoder is None:
            dtype = self.dtype_policy
            self.encoder = keras.Sequential(
                [
                    layers.Flatten(dtype=dtype),
                    layers.Dense(self.leaf_hidden_dim, activation=self.activation, dtype=dtype),
                    layers.Dense(self.memory_dim, dtype=dtype),
                ],
                name="encoder",
            )
        if not self.encoder.built:
            self.encoder.build(step_shape)
        leaf_shape = tuple(self.encoder.compute_output_shape(step_shape))
        if leaf_shape[-1] != self.memory_dim or len(leaf_shape) not in (2, 3):
            raise ValueError(
                f"The encoder must map one step {step_shape} to a leaf of shape "
                f"(batch, {self.memory_dim}) or (batch, tokens, {self.memory_dim}) "
                f"to match `memory_dim={self.memory_dim}`. It gives {leaf_shape}"
            )
        self.leaf_shape = leaf_shape[1:]
        if self.decoder is None:
            dtype = self.dtype_policy
            self.decoder = keras.Sequential(
                [
                    layers.Dense(self.leaf_hidden_dim, activation=self.activation, dtype=dtype),
                    layers.Dense(
                        int(np.prod(feature_shape)), activation=self.output_activation,
                        dtype=dtype,
                    ),
                    layers.Reshape(feature_shape, dtype=dtype),
                ],
                name="decoder",
            )
        if not self.decoder.built:
            self.decoder.build(leaf_shape)
        decoded_shape = tuple(self.decoder.compute_output_shape(leaf_shape))
        if decoded_shape[1:] != feature_shape:
            raise ValueError(
                f"The decoder must map a leaf {leaf_shape} back to one step "
                f"{step_shape}. It gives {decoded_shape}"
            )
        node_shape = (None,) + self.leaf_shape
        for merge, inverse in zip(self.merges, self.inverses):
            merge.build([node_shape, node_shape])
            inverse.build(node_shape)
        self.built = True

    # ------------------------------------------------------------- tree parts

    def merge_for(self, level):
        """The `SweeperMerge` of `level` (the shared one if `share_weights`)."""
        return self.merges[0 if self.share_weights else level]

    def inverse_for(self, level):
        """The `SweeperInverse` of `level` (the shared one if `share_weights`)."""
        return self.inverses[0 if self.share_weights else level]

    def _prepare(self, x, allow_shorter=False):
        check_numeric(x, "TreeMemory")
        shape = tuple(x.shape)
        if not self.built:
            self.build((None, self.sequence_length) + shape[2:])
        check_sequence_shape(
            shape, self.sequence_length, self.feature_shape, "TreeMemory", allow_shorter
        )
        return ops.cast(x, self.compute_dtype)

    def _pad(self, x, length):
        """`x` zero-padded along time (in input space) to `length` steps."""
        missing = length - x.shape[1]
        if missing == 0:
            return x
        return ops.pad(x, [(0, 0), (0, missing)] + [(0, 0)] * len(self.feature_shape))

    def encode_leaves(self, x):
        """Leaves `(B, padded_length, *leaf_shape)` of zero-padded `x`."""
        x = self._pad(x, self.padded_length)
        steps = ops.reshape(x, (-1,) + self.feature_shape)
        leaves = self.encoder(steps)
        return ops.reshape(leaves, (-1, self.padded_length) + self.leaf_shape)

    def decode_leaves(self, leaves):
        """Decodes `(B, padded_length, *leaf_shape)` leaves to `(B, T, ...)`."""
        steps = self.decoder(ops.reshape(leaves, (-1,) + self.leaf_shape))
        steps = ops.reshape(steps, (-1, self.padded_length) + self.feature_shape)
        return steps[:, : self.sequence_length]

    def merge_level(self, level, nodes):
        """Merges adjacent pairs of `nodes` `(B, n, ...)` into `(B, n/2, ...)`."""
        pairs = ops.reshape(nodes, (-1, nodes.shape[1] // 2, 2) + self.leaf_shape)
        return self.merge_for(level)([pairs[:, :, 0], pairs[:, :, 1]])

    def inverse_level(self, level, nodes):
        """Splits every node `(B, n, ...)` back into its pair: `(B, 2n, ...)`."""
        left, right = self.inverse_for(level)(nodes)
        pairs = ops.stack([left, right], axis=2)
        return ops.reshape(pairs, (-1, 2 * nodes.shape[1]) + self.leaf_shape)

    # ------------------------------------------------------------- public API

    def encode(self, x, return_levels=False):
        """Encodes sequences `x` `(B, T, ...)` into the root memory.

        Args:
            x: sequences of shape `(B, sequence_length, *features)`.
            return_levels: if True, return every level's nodes instead: a list
                whose entry 0 holds the leaves `(B, P, ...)` and entry `k + 1`
                the level-`k` nodes `(B, P / 2**(k+1), ...)`, where `P` is the
                padded length; the last entry holds the root `(B, 1, ...)`.

        Returns:
            The root `(B, memory_dim)` (or `(B, N, memory_dim)` for token
            leaves), or the list of levels.
        """
        nodes = [self.encode_leaves(self._prepare(x))]
        for level in range(self.num_levels):
            nodes.append(self.merge_level(level, nodes[-1]))
        return nodes if return_levels else nodes[-1][:, 0]

    def decode(self, root):
        """Decodes a root memory back into sequences `(B, T, *features)`."""
        if not self.built:
            raise ValueError("Call the model on data (or `build()` it) before `decode()`.")
        root = ops.convert_to_tensor(root)
        if tuple(root.shape[1:]) != self.leaf_shape:
            raise ValueError(
                f"TreeMemory.decode expects a root of shape (batch, "
                f"{', '.join(map(str, self.leaf_shape))}). Received {tuple(root.shape)}"
            )
        return self.decode_level(self.num_levels - 1, ops.expand_dims(root, 1))

    def decode_level(self, level, nodes):
        """Runs level-`level` nodes `(B, n, ...)` down through the inverses
        of levels `level, ..., 0` and the leaf decoder (`level=-1`: the
        nodes are leaves)."""
        for k in reversed(range(level + 1)):
            nodes = self.inverse_level(k, nodes)
        return self.decode_leaves(nodes)

    def reconstruct(self, x, level=None):
        """Encodes `x` up to `level`, then decodes back down.

        `level=None` goes through the root; `level=k` stops at the level-`k`
        nodes (each summarising `2**(k+1)` steps); `level=-1` only encodes and
        decodes the leaves. Used for per-level error tables.
        """
        if level is None:
            level = self.num_levels - 1
        if not -1 <= level < self.num_levels:
            raise ValueError(
                f"`level` must be in [-1, {self.num_levels - 1}] for a tree of "
                f"{self.num_levels} levels (-1: leaves only). Received: {level}"
            )
        nodes = self.encode_leaves(self._prepare(x))
        for k in range(level + 1):
            nodes = self.merge_level(k, nodes)
        return self.decode_level(level, nodes)

    def initialize_sweepers(self, x, batch_size=64):
        """Sets every sweeper's linear skip to PCA of the pairs it merges.

        Needs `sweeper_skip="linear"`. Encodes the sequences `x` (training
        data, never test data), and level by level sets the merge to PCA of
        the adjacent pairs of children and the inverse to its transpose
        (`SweeperMerge.initialize_from_pairs`), then merges to get the next
        level's children. The tree then starts as a hierarchical PCA of the
        leaves. Pairs of padding only (a `sequence_length` that is not a
        power of two) are left out, as they are of every loss. With
        `share_weights`, the one sweeper is fitted to level 0.
        Call it after the leaf encoder is set (e.g. a `PatchTokenizer`
        initialised from frames) and before training.

        Args:
            x: numpy sequences `(n, sequence_length, *features)`.
            batch_size: sequences encoded at a time.
        """
        if self.sweeper_skip != "linear":
            raise ValueError(
                "`initialize_sweepers` sets the sweepers' linear skip; this tree has "
                f"sweeper_skip={self.sweeper_skip!r}. Build it with sweeper_skip='linear'."
            )
        x = np.asarray(x)
        batches = range(0, len(x), batch_size)
        nodes = np.concatenate([
            ops.convert_to_numpy(self.encode_leaves(self._prepare(x[i : i + batch_size])))
            for i in batches
        ])
        real = self.sequence_length  # children holding data, the rest padding
        for level in range(self.num_levels):
            pairs = math.ceil(real / 2)
            self.merge_for(level).initialize_from_pairs(
                nodes[:, 0 : 2 * pairs : 2], nodes[:, 1 : 2 * pairs : 2], self.inverse_for(level)
            )
            real = pairs
            if level == self.num_levels - 1 or self.share_weights:
                break  # no sweeper left to fit to the next level's pairs
            nodes = np.concatenate([
                ops.convert_to_numpy(self.merge_level(level, nodes[i : i + batch_size]))
                for i in batches
            ])

    def zero_subtrees(self, dtype=None):
        """The all-zero subtree of every height `0 .. num_levels - 1`: a list of
        `(1, *leaf_shape)` nodes, height 0 the leaf of an all-zero input and
        height `h + 1` the merge of two of height `h`."""
        node = self.encoder(ops.zeros((1,) + self.feature_shape, dtype or self.compute_dtype))
        nodes = []
        for level in range(self.num_levels):
            nodes.append(node)
            node = self.merge_for(level)([node, node])
        return nodes

    def trajectory(self, x):
        """The teacher trajectory: the root after each step, unseen steps zeroed.

        Entry `t - 1` of the result is exactly `encode(x')` with
        `x' = x` on steps `< t` and `x' = 0` on steps `>= t` (zero-padding in
        input space: `y_t = f(x_1, ..., x_t, 0, ..., 0)`).

        Computed the Merkle way rather than by `T` rebuilds: an all-zero
        subtree is one constant node per level, complete subtrees come from
        one bottom-up pass over `x`, and for each prefix only the one partial
        node per level (the one holding the last seen step) is new. All
        prefixes are processed together, so the cost is `T` merges per level,
        `O(T log T)` in `O(log T)` sequential steps, against `O(T^2)` merges
        for rebuilding.

        Args:
            x: sequences `(B, t_max, *features)` with `t_max <= sequence_length`
                (shorter sequences are zero-padded to `sequence_length`).

        Returns:
            `(B, t_max, *leaf_shape)`: the root for every prefix length.
        """
        x = self._prepare(x, allow_shorter=True)
        steps = x.shape[1]
        levels = self.encode(self._pad(x, self.sequence_length), return_levels=True)
        zero_node = self.encode_leaves(ops.zeros((1, 1) + self.feature_shape, x.dtype))[:, :1]
        last_seen = np.arange(steps)  # prefix t has seen steps 0 .. t - 1
        partial = levels[0][:, :steps]  # the node that holds step t - 1
        for level in range(self.num_levels):
            index = last_seen >> level
            is_right = ops.reshape(
                ops.convert_to_tensor(index % 2 == 1),
                (1, steps) + (1,) * len(self.leaf_shape),
            )
            left_sibling = ops.take(levels[level], np.maximum(index - 1, 0), axis=1)
            left = ops.where(is_right, left_sibling, partial)
            right = ops.where(is_right, partial, zero_node)
            partial = self.merge_for(level)([left, right])
            zero_node = self.merge_for(level)([zero_node, zero_node])
        return partial

    def call(self, inputs):
        return self.reconstruct(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # --------------------------------------------------------------- training

    def level_losses(self, x):
        """The local, variance-normalised loss of every level, per sequence.

        Level `k` merges its children with the gradient stopped at the
        children, so its loss trains only its own merge and inverse. Children
        that cover only padding are left out.

        Returns:
            A list of `num_levels` tensors of shape `(B,)`.
        """
        return self._local_losses(self.encode_leaves(self._prepare(x)))

    def _local_losses(self, nodes):
        """`level_losses` from the encoded leaves `nodes`."""
        losses = []
        for level in range(self.num_levels):
            children = ops.stop_gradient(nodes)
            nodes = self.merge_level(level, children)
            restored = self.inverse_level(level, nodes)
            real = math.ceil(self.sequence_length / 2**level)
            children, restored = children[:, :real], restored[:, :real]
            node_axes = tuple(range(2, len(children.shape)))
            error = ops.mean(ops.square(restored - children), axis=(1,) + node_axes)
            feature_axes = tuple(range(len(children.shape) - 1))
            scale = ops.mean(ops.var(children, axis=feature_axes))
            losses.append(error / (scale + _EPSILON))
        return losses

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        x = self._prepare(x)
        if y_pred is None:
            y_pred = self(x)
        leaves = self.encode_leaves(x)
        leaf_loss = weighted_mean(pixel_error(x, self.decode_leaves(leaves)), sample_weight)
        self.leaf_loss_tracker.update_state(leaf_loss)
        local_total = leaf_loss
        for level_loss, tracker in zip(self._local_losses(leaves), self.level_loss_trackers):
            level_loss = weighted_mean(level_loss, sample_weight)
            tracker.update_state(level_loss)
            local_total = local_total + level_loss
        reconstruction_loss = weighted_mean(pixel_error(x, y_pred), sample_weight)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        # End to end, the objective is the pixels: the local losses, which are
        # variance-normalised and so far larger than a pixel MSE, would
        # otherwise drown its gradient. They are still logged.
        total = leaf_loss + reconstruction_loss if self.end_to_end else local_total
        return add_compiled_and_layer_losses(self, total, y, y_pred, sample_weight)

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`, stopping with a clear error on a non-finite loss."""
        return super().fit(*args, callbacks=with_non_finite_guard(callbacks), **kwargs)

    # ---------------------------------------------------------- serialization

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "memory_dim": self.memory_dim,
                "sequence_length": self.sequence_length,
                "encoder": (
                    keras.saving.serialize_keras_object(self.encoder)
                    if self._custom_encoder
                    else None
                ),
                "decoder": (
                    keras.saving.serialize_keras_object(self.decoder)
                    if self._custom_decoder
                    else None
                ),
                "share_weights": self.share_weights,
                "hidden_dim": self.hidden_dim,
                "num_blocks": self.num_blocks,
                "activation": self.activation,
                "token_mixing": self.token_mixing,
                "sweeper_skip": self.sweeper_skip,
                "leaf_hidden_dim": self.leaf_hidden_dim,
                "output_activation": self.output_activation,
                "end_to_end": self.end_to_end,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for part in ("encoder", "decoder"):
            if config.get(part) is not None:
                config[part] = keras.saving.deserialize_keras_object(config[part])
        return cls(**config)
