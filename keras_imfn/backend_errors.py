"""A clear error from inside a compiled loop, on every backend.

The one place with per-backend code: a value that is only known when the
step runs (a traced counter inside `lax.scan`, a TensorFlow graph) cannot be
checked in Python, so each backend raises in its own way, with the same
message. PyTorch runs eagerly and raises a `ValueError`; TensorFlow raises
`InvalidArgumentError` from `tf.debugging.Assert`; JAX raises from a host
callback that runs only when the condition holds (so a step that passes pays
nothing but the test).
"""

import contextlib

import keras
import numpy as np
from keras import ops

_CHECKED_BY_CALLER = [False]


@contextlib.contextmanager
def checked_by_caller():
    """Leaves `raise_if` out of what is traced inside: for a compiled step
    whose caller checks the same condition in Python before each call."""
    _CHECKED_BY_CALLER[0] = True
    try:
        yield
    finally:
        _CHECKED_BY_CALLER[0] = False


def raise_if(condition, message):
    """Raises an error saying `message` if the boolean tensor `condition` holds
    anywhere: eagerly a `ValueError`, in a compiled step the backend's error."""
    if _CHECKED_BY_CALLER[0]:
        return
    try:
        seen = ops.convert_to_numpy(condition)
    except Exception:  # traced: the value is known only when the step runs
        seen = None
    if seen is not None:
        if np.any(seen):
            raise ValueError(message)
        return
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def fail():
            raise ValueError(message)

        jax.lax.cond(ops.any(condition), lambda: jax.debug.callback(fail), lambda: None)
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.debugging.Assert(tf.logical_not(tf.reduce_any(condition)), [message])
