import os
from pathlib import Path

import keras
import numpy as np
import pytest

# The project's offline data lives beside the checkout (`../shared/data`);
# KERAS_IMFN_SHARED_DATA points elsewhere.
SHARED_DATA = Path(
    os.environ.get("KERAS_IMFN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


# Tests marked `example` run an example script or the README end to end. They
# test the scripts, not the backends (the unit tests cover those on all three),
# so they run on one backend only, keeping `.ci/run` inside its budget.
EXAMPLES_BACKEND = os.environ.get("KERAS_IMFN_EXAMPLES_BACKEND", "jax")


def pytest_collection_modifyitems(config, items):
    if keras.backend.backend() == EXAMPLES_BACKEND:
        return
    deselected = [item for item in items if item.get_closest_marker("example")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("example")]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture
def shared_mnist():
    path = SHARED_DATA / "mnist"
    if not path.is_dir():
        pytest.skip(f"needs the shared MNIST IDX files at {path} (absent on this machine)")
    return path


def to_numpy(x):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, x)


def random_sequences(batch, steps, *features, seed=0):
    return np.random.default_rng(seed).random((batch, steps) + features).astype("float32")


def gradients(loss_fn, variables):
    """Gradients of the scalar `loss_fn()` with respect to `variables`, as numpy,
    on whichever backend runs the tests."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, [v.value for v in variables])
    elif backend == "torch":
        import torch

        loss = loss_fn()
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    else:
        import jax

        def loss_of(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return loss_fn()

        grads = jax.grad(loss_of)([v.value for v in variables])
    return [np.zeros(v.shape) if g is None else keras.ops.convert_to_numpy(g)
            for v, g in zip(variables, grads)]
