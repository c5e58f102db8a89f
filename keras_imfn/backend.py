"""What differs between Keras backends, in one place.

Layers and models use `keras.ops` only; where one backend needs its own code
to give the same result, the difference lives here under a name that says
what it does, so no other module asks which backend it runs on (except
`keras_imfn.distribution`, whose subject is each backend's own engine for
several devices).
"""

import keras
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
