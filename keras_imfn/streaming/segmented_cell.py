import keras
import numpy as np
from keras import ops

from keras_imfn.models.tree_memory import built_tree
from keras_imfn.models.tree_memory import check_built_tree
from keras_imfn.streaming.tree_bits import check_not_past_end
from keras_imfn.streaming.tree_bits import check_states
from keras_imfn.streaming.tree_bits import without_tree_metrics


@keras.saving.register_keras_serializable(package="keras_imfn")
class SegmentedCell(keras.layers.Layer):
    """A tree streamed in segments: a cell reads each segment, the tree's top
    levels merge the segments. The trade between a student and the exact cell.

    The sequence is cut into `S = padded_length / segment_length` segments of
    `segment_length = 2**h` steps, each the leaves of one level-`h - 1` node of
    `tree`. `cell` reads one segment at a time, from its zero initial state;
    its output is that segment's node: an `IMFNStudent` distilled from
    `tree.subtree(h)`, or, exactly, `TreeMemoryCell(tree.subtree(h))`. When a
    segment ends, its node is kept. The output at step `t` is the root of
    `tree` over the segment nodes: the kept ones, the running one, and for
    every segment not yet begun the all-zero subtree of height `h`, merged up
    the tree's levels `h .. L - 1`. When `cell` follows its segment's
    trajectory exactly this is the teacher's trajectory
    `y_t = f(x_1, ..., x_t, 0, ..., 0)`, and a finished segment can no longer
    drift: a student only has to follow `segment_length` steps, not `T`.

    The state is the `S - 1` kept nodes, the cell's state and the counter:
    with a student, `S * d + 2` numbers (the student alone keeps `d + 1`,
    the exact cell `(log2 T + 1) d + 1`). A step is one step of `cell` and
    `S - 1` merges. Past `tree.sequence_length` steps: an error (eagerly;
    NaN outputs inside a compiled loop), as `TreeMemoryCell`.

    It follows Keras's cell contract (`state_size`, `output_size`,
    `call(inputs, states)`, `get_initial_state`); `step()` streams one input.
    `tree` and `cell` are shared, not copied; the all-zero subtree is
    computed when the cell is built (`refresh()` after training the tree).

    Args:
        tree: a built `TreeMemory` with vector leaves (the teacher).
        cell: a Keras RNN cell whose state starts at zeros and whose output
            is a node `(B, memory_dim)` of `tree` over one segment.
        segment_length: int. Steps per segment: a power of two, at least 2,
            below `tree.padded_length`.
        **kwargs: Base layer arguments (`name`, ...).

    Example:

    >>> import numpy as np, keras
    >>> from keras_imfn import IMFNStudent, TreeMemory, TreeMemoryCell
    >>> x = np.random.rand(2, 8, 28, 28).astype("float32")
    >>> tree = TreeMemory(memory_dim=16, sequence_length=8)
    >>> _ = tree(x)
    >>> exact = TreeMemoryCell(tree.subtree(2))  # segments of 4 steps
    >>> cell = SegmentedCell(tree, exact, segment_length=4)
    >>> streamed = keras.layers.RNN(cell, return_sequences=True)(x)
    >>> bool(np.allclose(keras.ops.convert_to_numpy(streamed),
    ...                  keras.ops.convert_to_numpy(tree.trajectory(x)), atol=1e-5))
    True
    >>> student = IMFNStudent.from_teacher(tree.subtree(2))
    >>> SegmentedCell(tree, student, segment_length=4).state_numbers
    34
    """

    def __init__(self, tree, cell, segment_length, **kwargs):
        kwargs.setdefault("dtype", getattr(tree, "dtype_policy", None))
        super().__init__(**kwargs)
        check_built_tree(tree, "SegmentedCell")
        if len(tree.leaf_shape) != 1:
            raise ValueError(
                "SegmentedCell streams trees with vector leaves (batch, d); this "
                f"tree's leaves have shape (batch, {', '.join(map(str, tree.leaf_shape))})."
            )
        segment_length = int(segment_length)
        if (segment_length < 2 or segment_length & (segment_length - 1)
                or segment_length >= tree.padded_length):
            raise ValueError(
                "`segment_length` must be a power of two >= 2 and below the tree's "
                f"padded length {tree.padded_length}. Received: {segment_length}"
            )
        for attribute in ("state_size", "get_initial_state"):
            if not hasattr(cell, attribute):
                raise TypeError(f"`cell` must be a Keras RNN cell. Received: {cell!r}")
        output_size = getattr(cell, "output_size", None)
        if output_size is not None and int(output_size) != tree.memory_dim:
            raise ValueError(
                "SegmentedCell reads each segment's memory from `cell`'s output, which the "
                f"tree merges as a node of memory_dim={tree.memory_dim}; this cell outputs "
                f"{output_size} numbers. Build the cell for the tree's subtree of one "
                "segment, e.g. IMFNStudent.from_teacher(tree.subtree(height))."
            )
        if any(np.any(ops.convert_to_numpy(s)) for s in cell.get_initial_state(batch_size=1)):
            raise ValueError(
                "SegmentedCell restarts `cell` at every segment by zeroing its state, "
                "so the cell's initial state must be zeros."
            )
        self.tree = tree
        self.cell = cell
        self.segment_length = segment_length
        self.height = segment_length.bit_length() - 1
        self.num_segments = tree.padded_length // segment_length
        self.memory_dim = tree.memory_dim
        inner = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [
            cell.state_size]
        self.inner_sizes = [int(size) for size in inner]
        self.state_size = [(self.num_segments - 1) * self.memory_dim, *self.inner_sizes, 1]
        self.output_size = self.memory_dim
        self.build((None,) + tuple(tree.feature_shape))

    @property
    def state_numbers(self):
        """Numbers in one sequence's state: kept nodes, the cell's state, the counter."""
        return sum(self.state_size)

    def build(self, input_shape):
        if self.built:
            return
        self.zero_subtree = self.add_weight(
            shape=(self.memory_dim,), initializer="zeros", trainable=False,
            name="zero_subtree",
        )
        self.built = True
        self.refresh()

    def refresh(self):
        """Recomputes the all-zero subtree of a segment from the tree's weights."""
        self.zero_subtree.assign(self.tree.zero_subtrees(self.compute_dtype)[self.height][0])

    @property
    def metrics(self):
        return without_tree_metrics(super().metrics, getattr(self, "tree", None))

    def get_initial_state(self, batch_size):
        """Zeros: no kept node, the cell's zero state, counter 0."""
        return [ops.zeros((batch_size, size), self.compute_dtype)
                for size in self.state_size[:-1]] + [ops.zeros((batch_size, 1), "float32")]

    def call(self, inputs, states, training=None):
        kept, *inner, counter = states
        check_not_past_end(counter, self.tree.sequence_length, "SegmentedCell")
        # Segment index s = floor(t / 2**h) and position in it, with exact
        # products by powers of two (see `counter_bit`).
        segment = ops.floor(counter * (2.0**-self.height))
        position = counter - segment * self.segment_length
        starting = position < 0.5
        inner = [ops.where(starting, ops.zeros_like(s), s) for s in inner]
        node, inner = self.cell(inputs, inner)
        node = ops.reshape(node, (-1, 1, self.memory_dim))
        # Slots 0 .. S - 1: kept nodes before s, the running node at s, the
        # all-zero subtree after s; then the tree's top levels merge them.
        slots = ops.reshape(ops.arange(self.num_segments, dtype=counter.dtype),
                            (1, self.num_segments, 1))
        segment = ops.reshape(segment, (-1, 1, 1))
        kept = ops.reshape(kept, (-1, self.num_segments - 1, self.memory_dim))
        padded = ops.concatenate([kept, ops.zeros_like(node)], axis=1)
        zero = ops.cast(self.zero_subtree, node.dtype)
        nodes = ops.where(slots < segment, padded,
                          ops.where(slots > segment, ops.zeros_like(padded) + zero, node))
        root = nodes
        for level in range(self.height, self.tree.num_levels):
            root = self.tree.merge_level(level, root)
        root = root[:, 0]
        ending = ops.reshape(position > self.segment_length - 1.5, (-1, 1, 1))
        kept = ops.where(ending & (slots[:, :-1] == segment), node, kept)
        counter = counter + 1.0
        within = counter <= self.tree.sequence_length
        root = ops.where(within, root, ops.full_like(root, np.nan))
        kept = ops.reshape(kept, (-1, self.state_size[0]))
        return root, [kept, *inner, counter]

    def step(self, inputs, states):
        """Streams one input: returns `(root, new_states)`."""
        check_states(self, states)
        return self(inputs, states)

    def get_config(self):
        config = super().get_config()
        config.update(
            tree=keras.saving.serialize_keras_object(self.tree),
            feature_shape=list(self.tree.feature_shape),
            cell=keras.saving.serialize_keras_object(self.cell),
            segment_length=self.segment_length,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        tree = built_tree(config.pop("tree"), config.pop("feature_shape"))
        cell = keras.saving.deserialize_keras_object(config.pop("cell"))
        return cls(tree, cell, **config)
