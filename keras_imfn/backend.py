"""What differs between Keras backends, in one place.

Layers and models use `keras.ops` only; where one backend needs its own code
to give the same result, the difference lives here under a name that says
what it does, so no other module asks which backend it runs on (except
`keras_imfn.distribution`, whose subject is each backend's own engine for
several devices, and `keras_imfn.streaming.compile_step`, whose subject is
each backend's compiler).

- `scan`: `keras.ops.scan` for per-step outputs of any shape;
- `trained_values`: the trained weights, also inside JAX's `fit`;
- `raise_if`: a clear error from inside a compiled loop. A value known only
  when the step runs (a traced counter inside `lax.scan`, a TensorFlow graph)
  cannot be checked in Python, so each backend raises in its own way, with
  the same message. PyTorch runs eagerly and raises a `ValueError`;
  TensorFlow raises `InvalidArgumentError` from `tf.debugging.Assert`; JAX
  raises from a host callback that runs only when the condition holds (so a
  step that passes pays nothing but the test).
"""

import contextlib

import keras
import numpy as np
from keras import ops


def scan(step, init, xs, axis=0):
    """`keras.ops.scan` over `axis` of `xs`, for per-step outputs of any shape.

    `step(carry, x_t) -> (carry, y_t)` runs over axis `axis` of every tensor
    of the list `xs`; returns the last carry and the `y_t` stacked along
    `axis`. Keras' TensorFlow `ops.scan` gives the per-step outputs the
    carry's shape (Keras 3.15), so on TensorFlow the loop is unrolled, which
    needs a known number of steps.
    """
    if keras.backend.backend() != "tensorflow":
        carry, ys = ops.scan(step, init, [ops.moveaxis(x, axis, 0) for x in xs])
        return carry, ops.moveaxis(ys, 0, axis)
    steps = xs[0].shape[axis]
    if steps is None:
        raise ValueError(
            "On TensorFlow the scan is unrolled and needs a known number of steps. "
            f"Received inputs of shape {tuple(xs[0].shape)}, axis {axis} unknown."
        )
    carry, ys = init, []
    for t in range(steps):
        at_t = (slice(None),) * axis + (t,)
        carry, y = step(carry, [x[at_t] for x in xs])
        ys.append(y)
    return carry, ops.stack(ys, axis=axis)


def trained_values(model):
    """The current values of `model.trainable_variables`, also inside `fit`.

    During `fit` on JAX the trained values live in the trainer's state and
    reach the model's variables only at the end of each epoch; a callback
    that looks at the weights after a batch reads them there.
    """
    state = getattr(model, "_jax_state", None)
    if keras.backend.backend() == "jax" and state and not model._jax_state_synced:
        return list(state["trainable_variables"])
    return [variable.value for variable in model.trainable_variables]


_CHECKED_BY_CALLER = [False]


@contextlib.contextmanager
def checked_by_caller():
    """Leaves `raise_if` out of what is traced inside: for a compiled step
    whose caller checks the same condition in Python before each call."""
    before, _CHECKED_BY_CALLER[0] = _CHECKED_BY_CALLER[0], True
    try:
        yield
    finally:
        _CHECKED_BY_CALLER[0] = before


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
