"""Binary digits of a step counter, for the tree's streaming paths."""

from keras import ops


def counter_bit(counter, bit):
    """Bit `bit` of the integer-valued float `counter`, as 0.0 or 1.0.

    Written with exact products by powers of two, not a division (see
    `IMFNStudent.time_encoding`: TensorFlow's compiled graphs may divide
    through an approximate reciprocal).
    """
    shifted = ops.floor(counter * (2.0**-bit))
    return shifted - 2.0 * ops.floor(shifted * 0.5)
