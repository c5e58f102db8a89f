"""Helpers of the layers that stream a tree: the counter's bits, the end, the
states, their metrics."""

import keras
from keras import ops

from keras_imfn.backend import raise_if


def counter_bit(counter, bit):
    """Bit `bit` of the integer-valued float `counter`, as 0.0 or 1.0.

    Written with exact products by powers of two, not a division (see
    `IMFNStudent.time_encoding`: TensorFlow's compiled graphs may divide
    through an approximate reciprocal).
    """
    shifted = ops.floor(counter * (2.0**-bit))
    return shifted - 2.0 * ops.floor(shifted * 0.5)


def without_tree_metrics(metrics, tree):
    """`metrics` less the loss trackers of `tree` (its own `fit`'s, not a cell's:
    a trainer of the cell would otherwise log them, at zero)."""
    if tree is None:
        return metrics
    return [metric for metric in metrics if metric not in tree.metrics]


def check_not_past_end(counter, length, name):
    """A clear error for a step past `length`, eagerly or inside a compiled
    loop (`keras_imfn.backend.raise_if`), on every backend."""
    raise_if(counter >= length,
             f"{name} streams at most sequence_length={length} steps (the tree's length); "
             "this sequence is longer. Start a new state with `get_initial_state`.")


def check_states(cell, states):
    """A clear error unless `states` is what `cell.step` takes: one tensor
    `(batch, size)` per entry of `cell.state_size`."""
    name = type(cell).__name__
    sizes = list(cell.state_size)
    expected = (f"{name}.step takes the states of `{name}.get_initial_state(batch_size)` or "
                f"of the previous step: a list of {len(sizes)} tensors of shapes "
                f"{', '.join(f'(batch, {size})' for size in sizes)}")
    if not isinstance(states, (list, tuple)) or len(states) != len(sizes):
        raise ValueError(f"{expected}. Received: {states!r:.200}")
    for state, size in zip(states, sizes):
        shape = tuple(getattr(state, "shape", ()))
        if len(shape) != 2 or shape[1] != size:
            raise ValueError(f"{expected}. Received shapes "
                             f"{[tuple(getattr(s, 'shape', ())) for s in states]}")
