"""Helpers of the layers that stream a tree: the counter's bits, their metrics."""

from keras import ops


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
