import keras
import numpy as np
from keras import ops

from keras_imfn.models.tree_memory import built_tree
from keras_imfn.models.tree_memory import check_built_tree
from keras_imfn.streaming.tree_bits import check_not_past_end
from keras_imfn.streaming.tree_bits import check_states
from keras_imfn.streaming.tree_bits import counter_bit
from keras_imfn.streaming.tree_bits import without_tree_metrics


@keras.saving.register_keras_serializable(package="keras_imfn")
class TreeMemoryCell(keras.layers.Layer):
    """A trained `TreeMemory` streamed exactly: the teacher as an RNN cell.

    After `t` inputs the cell holds the tree's *binary-counter stack*: for
    every height `h` whose bit is set in `t`, the finished, not yet merged
    node over the `2**h` steps that end there (the peaks of a Merkle
    mountain range), plus the counter `t`. A new input is encoded to a leaf
    and merged up while the counter carries, exactly as the tree would merge
    it. The output at step `t` is the teacher's trajectory
    `y_t = f(x_1, ..., x_t, 0, ..., 0)`: the peaks merged with the all-zero
    subtree of every height, constants the tree computes from one zero input.
    `keras.layers.RNN(TreeMemoryCell(tree), return_sequences=True)(x)` is
    `tree.trajectory(x)`, step by step, with no training: it *is* the
    teacher.

    A step costs `ceil(log2 T)` merges (the output's path to the root; the
    carry reuses the same merges) and the state is
    `(ceil(log2 T) + 1) * prod(leaf_shape) + 1` numbers, against the
    student's `memory_dim + 1` (see "Online memory" in `docs/concepts.md`).

    The tree is fixed at `sequence_length` steps: a step past it is an error
    (eagerly, a `ValueError`; inside a compiled loop, where no value can be
    checked, the outputs past it are NaN).

    It follows Keras's cell contract (`state_size`, `output_size`,
    `call(inputs, states)`, `get_initial_state`); `step()` streams one input.
    The tree's layers are shared, not copied; the all-zero subtree of every
    height is computed once when the cell is built and kept as a
    non-trainable weight (`zero_subtrees`), so a step does not recompute
    them: after training the tree further, call `refresh()`.

    Args:
        tree: a built `TreeMemory`.
        **kwargs: Base layer arguments (`name`, ...).

    Example:

    >>> import numpy as np, keras
    >>> from keras_imfn import TreeMemory
    >>> x = np.random.rand(2, 8, 28, 28).astype("float32")
    >>> tree = TreeMemory(memory_dim=16, sequence_length=8)
    >>> _ = tree(x)
    >>> cell = TreeMemoryCell(tree)
    >>> streamed = keras.layers.RNN(cell, return_sequences=True)(x)
    >>> exact = tree.trajectory(x)
    >>> bool(np.allclose(keras.ops.convert_to_numpy(streamed),
    ...                  keras.ops.convert_to_numpy(exact), atol=1e-5))
    True
    >>> states = cell.get_initial_state(batch_size=2)
    >>> memory, states = cell.step(x[:, 0], states)
    >>> tuple(memory.shape), cell.state_numbers
    ((2, 16), 65)
    """

    def __init__(self, tree, **kwargs):
        kwargs.setdefault("dtype", getattr(tree, "dtype_policy", None))
        super().__init__(**kwargs)
        check_built_tree(tree, "TreeMemoryCell")
        self.tree = tree
        self.num_levels = tree.num_levels
        self.leaf_shape = tuple(tree.leaf_shape)
        self.leaf_size = int(np.prod(self.leaf_shape))
        # Peaks of heights 0 .. num_levels (the root, once every step is in).
        self.state_size = [(self.num_levels + 1) * self.leaf_size, 1]
        self.output_size = self.leaf_shape if len(self.leaf_shape) > 1 else self.leaf_size
        self.build((None,) + tuple(tree.feature_shape))  # the tree knows its shapes

    @property
    def state_numbers(self):
        """Numbers in one sequence's state: the peaks and the counter."""
        return sum(self.state_size)

    def build(self, input_shape):
        step_shape = tuple(input_shape)[1:]
        if step_shape != self.tree.feature_shape:
            raise ValueError(
                f"TreeMemoryCell streams steps of shape (batch, "
                f"{', '.join(map(str, self.tree.feature_shape))}), the tree's. "
                f"Received {tuple(input_shape)}"
            )
        self.zero_subtrees = self.add_weight(
            shape=(max(self.num_levels, 1),) + self.leaf_shape, initializer="zeros",
            trainable=False, name="zero_subtrees",
        )
        self.built = True
        self.refresh()

    def refresh(self):
        """Recomputes the all-zero subtree constants from the tree's weights."""
        nodes = self.tree.zero_subtrees(self.compute_dtype)
        if nodes:
            self.zero_subtrees.assign(ops.concatenate(nodes, axis=0))

    @property
    def metrics(self):
        return without_tree_metrics(super().metrics, getattr(self, "tree", None))

    def get_initial_state(self, batch_size):
        """The state before any input: no peaks (zeros), counter 0."""
        return [
            ops.zeros((batch_size, self.state_size[0]), self.compute_dtype),
            ops.zeros((batch_size, 1), "float32"),
        ]

    def call(self, inputs, states, training=None):
        if tuple(inputs.shape[1:]) != self.tree.feature_shape:
            raise ValueError(
                f"TreeMemoryCell streams steps of shape (batch, "
                f"{', '.join(map(str, self.tree.feature_shape))}). Received "
                f"{tuple(inputs.shape)}"
            )
        peaks, counter = states
        check_not_past_end(counter, self.tree.sequence_length, "TreeMemoryCell")
        tree = self.tree
        inputs = ops.cast(inputs, self.compute_dtype)
        peaks = ops.reshape(peaks, (-1, self.num_levels + 1) + self.leaf_shape)
        node_rank = (1,) * len(self.leaf_shape)
        # The new leaf goes up its path to the root: at height h it is the
        # right child of peak h when bit h of the old counter is set, else the
        # left child of the all-zero subtree. While the bits are set (the
        # carry), each merge also finishes a node, which clears that peak; at
        # the first clear bit the node so far becomes the peak there.
        partial = tree.encoder(inputs)
        carrying = ops.ones_like(counter)
        new_peaks = []
        zeros = ops.cast(self.zero_subtrees, partial.dtype)
        for height in range(self.num_levels):
            zero = zeros[height : height + 1]
            bit = ops.reshape(counter_bit(counter, height), (-1,) + node_rank)
            carry = ops.reshape(carrying, (-1,) + node_rank)
            peak = peaks[:, height]
            kept = ops.where(bit > 0.5, ops.zeros_like(peak), partial)
            new_peaks.append(ops.where(carry > 0.5, kept, peak))
            left = ops.where(bit > 0.5, peak, partial)
            right = ops.where(bit > 0.5, partial, ops.zeros_like(partial) + zero)
            partial = tree.merge_for(height)([left, right])
            carrying = carrying * counter_bit(counter, height)
        carry = ops.reshape(carrying, (-1,) + node_rank)
        new_peaks.append(ops.where(carry > 0.5, partial, peaks[:, self.num_levels]))
        counter = counter + 1.0
        within = ops.reshape(counter <= self.tree.sequence_length, (-1,) + node_rank)
        output = ops.where(within, partial, ops.full_like(partial, np.nan))
        new_peaks = ops.reshape(ops.stack(new_peaks, axis=1), (-1, self.state_size[0]))
        return output, [new_peaks, counter]

    def step(self, inputs, states):
        """Streams one input: returns `(y_t, new_states)`.

        `states` comes from `get_initial_state(batch_size)` or the previous
        `step`: `[peaks (B, (num_levels + 1) * leaf_size), counter (B, 1)]`.
        """
        check_states(self, states)
        return self(inputs, states)

    def get_config(self):
        config = super().get_config()
        config["tree"] = keras.saving.serialize_keras_object(self.tree)
        config["feature_shape"] = list(self.tree.feature_shape)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(built_tree(config.pop("tree"), config.pop("feature_shape")), **config)
