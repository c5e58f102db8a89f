import math

import keras
import numpy as np
from keras import ops

from keras_imfn import distribution
from keras_imfn.layers.leaf_mlp import leaf_decoder
from keras_imfn.layers.leaf_mlp import leaf_encoder
from keras_imfn.layers.sweeper_inverse import SweeperInverse
from keras_imfn.layers.sweeper_merge import check_skip
from keras_imfn.layers.sweeper_merge import SweeperMerge
from keras_imfn.models import presets as preset_files
from keras_imfn.models import tree_adapt
from keras_imfn.models.loss_logging import PendingPass
from keras_imfn.models.loss_logging import pixel_error
from keras_imfn.models.loss_logging import weighted_mean
from keras_imfn.models.sequence_autoencoder import SequenceAutoencoder
from keras_imfn.models.tree_sizes import levels_of
from keras_imfn.models.tree_sizes import per_level
from keras_imfn.models.tree_sizes import plain

# Keeps the variance normalisation finite when a level's states collapse.
_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="keras_imfn")
class TreeMemory(SequenceAutoencoder):
    """The IMFN teacher: a binary tree of sweepers over a sequence.

    The leaves are the encoded inputs. Level `k` merges adjacent pairs of
    level-`k-1` nodes (level 0 merges pairs of leaves) with a `SweeperMerge`,
    so a level-`k` node summarises `2**(k+1)` steps and the root, after
    `ceil(log2(sequence_length))` levels, summarises the whole sequence.
    Decoding runs the tree backward with each level's `SweeperInverse`, then
    the leaf decoder.

    Start it with `adapt(x)` on training sequences (a closed-form
    hierarchical PCA of the inputs), then `compile()` + `fit(x)`. Two
    objectives, one pass of the tree per step for either:

    - `end_to_end=True` (the default): the pixel MSE of decoding from the
      root, through the whole tree, plus the leaf loss (the pixel MSE of
      decoding each leaf alone). `fit` logs `leaf_loss` and
      `reconstruction_loss`.
    - `end_to_end=False`, *local* training: every level reconstructs its two
      children from their merge, with the children held fixed
      (stop-gradient) so that no level trains another, the error divided by
      the children's variance (a level cannot win by shrinking its states);
      plus the leaf loss. `fit` logs `leaf_loss`, `level_0_loss`, ...

    Evaluation (`evaluate`, `validation_data`) reports every loss of both.
    From the adapted start, end-to-end training is what the validation runs
    chose (`docs/concepts.md`, "Defaults"); local training, then end to end,
    is the source's recipe (`keras_imfn.training.train_local_then_end_to_end`).

    A `sequence_length` that is not a power of two is zero-padded (in input
    space) to the next power of two; the padding is left out of every loss
    and of every output.

    Trained trees load in one line, as keras-hub models do:
    `TreeMemory.from_preset(name)` for a shipped preset (`TreeMemory.presets`
    lists them with their data, sizes and the table row they reproduce), or
    `TreeMemory.from_preset(directory)` for a directory written by
    `save_to_preset`.

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
        hidden_dim: int, or a list of one int per level (bottom first).
            Width of the sweepers' MLPs. Defaults to `2 * memory_dim`. Level
            `k` runs `2**(num_levels - 1 - k)` merges per sequence, so a
            width that doubles up the tree (`level_widths(...)`) gives every
            level the same work and puts the parameters where merges are
            few. A list needs `share_weights=False`.
        num_blocks: int, or a list of one int per level. Residual blocks
            per sweeper MLP.
        activation: str. Activation of the sweepers and default leaf MLPs.
        token_mixing: bool. Sweepers mix across tokens (for token leaves).
        sweeper_skip: `"none"`, `"mean"` or `"linear"`: whether every sweeper
            adds a skip path to its MLP (see `SweeperMerge`). `"mean"` starts
            from the pair's mean; `"linear"` (the default) from a linear map
            that `adapt` sets to PCA of the training pairs, so the tree
            starts as a hierarchical PCA.
        leaf_hidden_dim: int. Hidden width of the default encoder/decoder.
            Defaults to `max(256, 2 * memory_dim)`.
        output_activation: str or None. Final activation of the default
            decoder, e.g. `"sigmoid"` for pixels in [0, 1].
        end_to_end: bool. Train on the root-to-pixels loss through the whole
            tree (plus the leaf loss); False trains the local losses. Set it
            and `compile()` again to switch phases.
        leaf_loss_weight: float >= 0. Weight of the leaf loss (each leaf
            decoded alone) in the end-to-end objective. `0` drops it from an
            end-to-end training step, and with it the leaf decoder's second
            pass over every step (evaluation still reports it). The local
            phase always trains on it: it is the leaf MLPs' only loss there.
        **kwargs: Base model arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> x = np.random.rand(96, 8, 28, 28).astype("float32")
    >>> model = TreeMemory(memory_dim=64, sequence_length=8).adapt(x)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> sorted(history.history)
    ['leaf_loss', 'loss', 'reconstruction_loss']
    >>> tuple(model.encode(x).shape)
    (96, 64)
    >>> tuple(model.decode(model.encode(x)).shape)
    (96, 8, 28, 28)
    """

    presets = preset_files.ShippedPresets()
    """The shipped presets: a dict `{name: metadata}` (each preset's
    `metadata.json`: description, data, sizes, parameter count, the table row
    it reproduces), the names being what `from_preset` takes."""

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
        sweeper_skip="linear",
        leaf_hidden_dim=None,
        output_activation=None,
        end_to_end=True,
        leaf_loss_weight=1.0,
        **kwargs,
    ):
        super().__init__(memory_dim, sequence_length, output_activation, **kwargs)
        for part, layer in (("encoder", encoder), ("decoder", decoder)):
            if layer is not None and not isinstance(layer, keras.layers.Layer):
                raise TypeError(
                    f"`{part}` must be a Keras layer or None. Received: {layer!r}"
                )
        self.num_levels = _num_levels(self.sequence_length)
        self.padded_length = 2**self.num_levels
        self.share_weights = bool(share_weights)
        self.hidden_dim = per_level("hidden_dim", hidden_dim or 2 * self.memory_dim,
                                     self.num_levels, self.share_weights)
        self.num_blocks = per_level("num_blocks", num_blocks, self.num_levels,
                                     self.share_weights, minimum=0)
        self.activation = activation
        self.token_mixing = bool(token_mixing)
        self.sweeper_skip = check_skip(sweeper_skip)
        self.leaf_hidden_dim = int(leaf_hidden_dim or max(256, 2 * self.memory_dim))
        self.end_to_end = bool(end_to_end)
        if not float(leaf_loss_weight) >= 0:
            raise ValueError(
                f"`leaf_loss_weight` must be a number >= 0. Received: {leaf_loss_weight!r}"
            )
        self.leaf_loss_weight = float(leaf_loss_weight)
        self._custom_encoder = encoder is not None
        self._custom_decoder = decoder is not None
        self.encoder = encoder
        self.decoder = decoder
        self.leaf_shape = None
        self._pending = PendingPass()

        num_sweepers = min(self.num_levels, 1) if self.share_weights else self.num_levels
        self.merges, self.inverses = [], []
        for k in range(num_sweepers):
            sweeper_args = dict(
                memory_dim=self.memory_dim,
                hidden_dim=self.level_hidden_dims[k],
                num_blocks=self.level_num_blocks[k],
                activation=self.activation,
                token_mixing=self.token_mixing,
                skip=self.sweeper_skip,
                dtype=self.dtype_policy,
            )
            self.merges.append(SweeperMerge(name=f"merge_{k}", **sweeper_args))
            self.inverses.append(SweeperInverse(name=f"inverse_{k}", **sweeper_args))

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        feature_shape = self._set_feature_shape(input_shape)
        step_shape = (None,) + feature_shape
        if self.encoder is None:
            self.encoder = leaf_encoder(self.leaf_hidden_dim, self.memory_dim, self.activation,
                                        self.dtype_policy)
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
            self.decoder = leaf_decoder(self.leaf_hidden_dim, feature_shape, self.activation,
                                        self.output_activation, self.dtype_policy)
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

    @property
    def level_hidden_dims(self):
        """The sweeper MLP width of every level, bottom first."""
        return levels_of(self.hidden_dim, self.num_levels)

    @property
    def level_num_blocks(self):
        """The sweeper MLP's residual blocks at every level, bottom first."""
        return levels_of(self.num_blocks, self.num_levels)

    def merge_for(self, level):
        """The `SweeperMerge` of `level` (the shared one if `share_weights`)."""
        return self.merges[0 if self.share_weights else level]

    def inverse_for(self, level):
        """The `SweeperInverse` of `level` (the shared one if `share_weights`)."""
        return self.inverses[0 if self.share_weights else level]

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
        root = self._check_memory(root, self.leaf_shape)
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

    def adapt(self, x, fit_leaves=None, batch_size=256, steps=None):
        """Starts the tree in closed form from training sequences `x`.

        The Keras convention for a data-dependent start (as
        `keras.layers.Normalization.adapt`): call it once, before `compile`
        and `fit`, on training data (never test data). Afterwards the
        untrained tree is a hierarchical PCA of the inputs:

        - the default leaf MLPs are fitted to PCA: the encoder's output layer
          by least squares to the top `memory_dim` principal components of
          the steps, the decoder's output layer by least squares back to the
          steps (to their logits for `output_activation="sigmoid"`);
        - level by level, every sweeper's linear skip is set to PCA of the
          pairs of children it merges, and its inverse to the transpose
          (`SweeperMerge.initialize_from_pairs`); pairs of padding only (a
          `sequence_length` that is not a power of two) are left out. With
          `share_weights`, the one sweeper is fitted to level 0.

        Every check runs before any weight changes.

        The data are read batch by batch, never held (`tree_adapt`): one
        pass for the steps' moments, two for the leaves, one per level.

        Args:
            x: finite sequences `(n, sequence_length, *features)`: an array,
                a `keras.utils.PyDataset` (e.g. `MNISTSequences`), a
                `tf.data.Dataset`, or a list (any re-iterable) of batches;
                batches may be `x` or `(x, y, ...)`.
            fit_leaves: fit the default leaf encoder and decoder. Defaults to
                True when the tree has them; False keeps the leaves as they
                are (e.g. a `PatchTokenizer` already set from frames) and
                fits the sweepers to its leaves.
            batch_size: sequences encoded at a time (for arrays).
            steps: batches read per pass, as `Normalization.adapt`'s
                `steps`; needed for data that never end (a repeated
                `tf.data.Dataset`). Default: all of them.

        Returns:
            The model, so that `TreeMemory(...).adapt(x)` reads as one step.
        """
        return tree_adapt.adapt(self, x, fit_leaves, batch_size, steps)

    def subtree(self, num_levels):
        """A copy of the tree's bottom `num_levels` levels: a `TreeMemory` of
        `2**num_levels` steps with this tree's leaf encoder, decoder and
        sweepers of levels `0 .. num_levels - 1` (weights copied).

        Its root is this tree's level-`num_levels - 1` node over the same
        steps, and its `decode` is this tree's decoding of that node: the
        teacher of one segment for a `SegmentedCell`.
        """
        if not self.built:
            raise ValueError("`subtree` copies a built TreeMemory: call or fit it first.")
        if not 1 <= int(num_levels) <= self.num_levels:
            raise ValueError(
                f"`num_levels` must be in [1, {self.num_levels}] for this tree of "
                f"{self.num_levels} levels. Received: num_levels={num_levels}"
            )
        num_levels = int(num_levels)
        config = dict(self.get_config(), sequence_length=2**num_levels,
                      name=f"{self.name}_subtree_{num_levels}")
        for key in ("hidden_dim", "num_blocks"):  # the bottom levels' own sizes
            if isinstance(config[key], list):
                config[key] = config[key][:num_levels]
        subtree = TreeMemory.from_config(config)
        subtree.build((None, subtree.sequence_length) + self.feature_shape)
        for part in ("encoder", "decoder"):
            getattr(subtree, part).set_weights(getattr(self, part).get_weights())
        for copies, layers_ in ((subtree.merges, self.merges), (subtree.inverses, self.inverses)):
            for copy, layer in zip(copies, layers_):
                copy.set_weights(layer.get_weights())
        return subtree

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

    def call(self, inputs, training=False):
        if not training:
            return self.reconstruct(inputs)
        x = self._prepare(inputs)
        tree_pass = self._forward(x, "end_to_end" if self.end_to_end else "local")
        self._pending.keep(tree_pass["reconstruction"], tree_pass)
        return tree_pass["reconstruction"]

    # --------------------------------------------------------------- training

    def _forward(self, x, part):
        """One pass of the tree over prepared `x`, for the losses of `part`.

        `"local"`: every level merges its children with the gradient stopped
        at them and restores them with its inverse (its local loss), so no
        level trains another. `"end_to_end"`: the gradient flows through every
        merge and no local loss is computed (it only informs). `"all"` (for
        evaluation): both, without stopping gradients. Every part encodes the
        leaves once, decodes them for the leaf loss and decodes the root.

        Returns:
            A dict with `reconstruction` (decoded from the root), `leaf_error`
            `(B,)` (None end to end with `leaf_loss_weight=0`) and
            `level_losses` (a list of `(B,)`, empty end to end).
        """
        leaves = self.encode_leaves(x)
        nodes, level_losses = leaves, []
        for level in range(self.num_levels):
            children = ops.stop_gradient(nodes) if part == "local" else nodes
            nodes = self.merge_level(level, children)
            if part != "end_to_end":
                level_losses.append(self._level_loss(level, children, nodes))
        skip_leaves = part == "end_to_end" and self.leaf_loss_weight == 0
        return {
            "reconstruction": self.decode_level(self.num_levels - 1, nodes),
            "leaf_error": None if skip_leaves else pixel_error(x, self.decode_leaves(leaves)),
            "level_losses": level_losses,
        }

    def _level_loss(self, level, children, nodes):
        """Level `level`'s error restoring `children` from their merge `nodes`,
        divided by the children's variance; children of padding only are
        left out."""
        restored = self.inverse_level(level, nodes)
        real = math.ceil(self.sequence_length / 2**level)
        children, restored = children[:, :real], restored[:, :real]
        node_axes = tuple(range(2, len(children.shape)))
        error = ops.mean(ops.square(restored - children), axis=(1,) + node_axes)
        feature_axes = tuple(range(len(children.shape) - 1))
        scale = ops.mean(distribution.batch_variance(children, feature_axes))
        return error / (scale + _EPSILON)

    def level_losses(self, x):
        """The local, variance-normalised loss of every level, per sequence.

        Level `k` merges its children with the gradient stopped at the
        children, so its loss trains only its own merge and inverse. Children
        that cover only padding are left out.

        Returns:
            A list of `num_levels` tensors of shape `(B,)`.
        """
        return self._forward(self._prepare(x), "local")["level_losses"]

    def loss_names(self):
        levels = [f"level_{k}_loss" for k in range(_num_levels(self.sequence_length))]
        return ["leaf_loss"] + levels + ["reconstruction_loss"]

    def own_losses(self, x, y_pred, sample_weight, training):
        """The local losses, or end to end the pixels from the root.

        Local phase: the leaf loss plus every level's local loss; a training
        step does not decode the root (`reconstruction_loss` is reported by
        evaluation). End to end: the leaf loss plus the pixel loss from the
        root, through the whole tree; the local losses, whose variance
        normalisation would drown the pixel gradient, are reported by
        evaluation. One pass of the tree serves every loss of a step: the one
        `call(x, training=True)` ran for `y_pred`.
        """
        tree_pass = self._pending.take(y_pred) if training else None
        if tree_pass is None:
            part = ("end_to_end" if self.end_to_end else "local") if training else "all"
            tree_pass = self._forward(x, part)
        logged = {}
        if tree_pass["leaf_error"] is not None:
            logged["leaf_loss"] = weighted_mean(tree_pass["leaf_error"], sample_weight)
        for level, loss in enumerate(tree_pass["level_losses"]):
            logged[f"level_{level}_loss"] = weighted_mean(loss, sample_weight)
        if self.end_to_end or not training:
            logged["reconstruction_loss"] = weighted_mean(pixel_error(x, y_pred), sample_weight)
        if self.end_to_end:
            objective = logged["reconstruction_loss"]
            if "leaf_loss" in logged and self.leaf_loss_weight:
                objective = objective + self.leaf_loss_weight * logged["leaf_loss"]
            return objective, logged
        # Local: the leaf loss is the leaf MLPs' only loss, whatever its end-to-end weight.
        levels = [logged[f"level_{k}_loss"] for k in range(len(tree_pass["level_losses"]))]
        return sum(levels, logged["leaf_loss"]), logged

    # ---------------------------------------------------------- serialization

    def get_config(self):
        config = super().get_config()
        config.update(
            {
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
                "hidden_dim": plain(self.hidden_dim),
                "num_blocks": plain(self.num_blocks),
                "activation": self.activation,
                "token_mixing": self.token_mixing,
                "sweeper_skip": self.sweeper_skip,
                "leaf_hidden_dim": self.leaf_hidden_dim,
                "end_to_end": self.end_to_end,
                "leaf_loss_weight": self.leaf_loss_weight,
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

    # ---------------------------------------------------------------- presets

    @classmethod
    def from_preset(cls, name_or_directory, load_weights=True, **kwargs):
        """A trained tree from a preset, built and ready to `encode`.

        A preset is keras-hub's directory layout: `config.json` (the tree's
        Keras config and the input shape it was built for),
        `model.weights.h5` (its weights) and `metadata.json` (versions,
        parameter count, date, description). The config is read in Keras'
        safe mode: a preset cannot run code (no `Lambda` layers).

        Args:
            name_or_directory: str or path. The name of a shipped preset (a
                key of `TreeMemory.presets`), or a directory written by
                `save_to_preset` (a shipped name comes first: give a
                directory named like one as `"./name"`).
            load_weights: bool. Load the trained weights; False gives the
                preset's architecture, built, with fresh weights.
            **kwargs: constructor arguments that replace the config's, e.g.
                `end_to_end=False` or `leaf_loss_weight=0` to train on; sizes
                that change the weights' shapes fail to load.

        Returns:
            The built `TreeMemory`.

        Example:

        >>> import tempfile
        >>> import numpy as np
        >>> x = np.random.rand(2, 4, 8, 8).astype("float32")
        >>> tree = TreeMemory(memory_dim=16, sequence_length=4)
        >>> root = tree.encode(x)
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     tree.save_to_preset(directory, metadata={"description": "a tiny tree"})
        ...     loaded = TreeMemory.from_preset(directory)
        >>> np.allclose(keras.ops.convert_to_numpy(loaded.encode(x)),
        ...             keras.ops.convert_to_numpy(root), atol=1e-6)
        True
        """
        return preset_files.load_preset(cls, name_or_directory, load_weights, **kwargs)

    def save_to_preset(self, directory, metadata=None):
        """Writes the tree as a preset directory that `from_preset` loads.

        Writes `config.json` (the Keras config, `compile` settings left out,
        and the input shape the tree was built for), `model.weights.h5` and
        `metadata.json`: the Keras and keras-imfn versions, the parameter
        count, the date, `memory_dim`, `sequence_length` and the entries of
        `metadata`. A directory under `keras_imfn/presets/` ships as a preset
        named after it.

        Args:
            directory: str or path. Created if missing; files already there
                are overwritten.
            metadata: optional dict of JSON values to record, e.g.
                `description`, `data`, `table` (the row the tree reproduces)
                and `metrics`.

        Example:

        >>> import json, pathlib, tempfile
        >>> import numpy as np
        >>> tree = TreeMemory(memory_dim=16, sequence_length=4)
        >>> _ = tree(np.random.rand(2, 4, 8, 8).astype("float32"))
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     tree.save_to_preset(directory, metadata={"data": "random 8x8"})
        ...     files = sorted(p.name for p in pathlib.Path(directory).iterdir())
        ...     metadata = json.loads((pathlib.Path(directory) / "metadata.json").read_text())
        >>> files
        ['config.json', 'metadata.json', 'model.weights.h5']
        >>> metadata["data"], metadata["parameter_count"] == tree.count_params()
        ('random 8x8', True)
        """
        check_built_tree(self, "save_to_preset")
        preset_files.save_preset(self, directory, metadata)


def _num_levels(sequence_length):
    """Levels of a tree over `sequence_length` steps: `ceil(log2 T)`."""
    return math.ceil(math.log2(sequence_length))


def check_built_tree(tree, who, argument="tree"):
    """Raises a clear error unless `tree` is a built `TreeMemory`: the one
    check of every part that reads a trained tree (cells, students, their
    trainer, predictors)."""
    if not isinstance(tree, TreeMemory):
        raise TypeError(f"`{argument}` must be a TreeMemory. Received: {tree!r}")
    if not tree.built:
        raise ValueError(
            f"{who} needs a built TreeMemory: call the tree on data (or `adapt` or fit "
            "it) first, so that its input and leaf shapes are known."
        )
    return tree


def built_tree(serialized, feature_shape):
    """A serialized `TreeMemory`, deserialized and built for steps of
    `feature_shape`, so that a streaming layer's weights load into it (a tree
    shared with a trainer may come built already)."""
    tree = keras.saving.deserialize_keras_object(serialized)
    if not tree.built:
        tree.build((None, tree.sequence_length) + tuple(feature_shape))
    return tree
