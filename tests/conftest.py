import os
from pathlib import Path

# Compile fast rather than run fast: the tests' models are tiny and take a few
# steps, so XLA's optimisation passes (JAX, and TensorFlow's jit_compile) cost
# more than they save (about a quarter of the JAX suite's time). Set before
# the backend is imported; subprocesses inherit it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The project's offline data lives beside the checkout (`../shared/data`);
# KERAS_IMFN_SHARED_DATA points elsewhere.
SHARED_DATA = Path(
    os.environ.get("KERAS_IMFN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


# Two markers run a test on one backend only, keeping `.ci/run` (the suite on
# all three) inside its budget:
# - `example`: an example script, a benchmark, a docstring or the README end to
#   end. They test the scripts, not the backends (the unit tests cover those on
#   all three).
# - `one_backend`: a check that no backend changes (argument parsing, files,
#   parameter counts), or a long training run for quality whose every step the
#   unit tests already check on all three backends.
# Both run on KERAS_IMFN_EXAMPLES_BACKEND, default torch: it runs eagerly, so
# the few steps of a smoke run pay for no tracing or compilation (JAX took
# twice its CPU time for the example tests). A test that needs one backend
# names it, `@pytest.mark.example(backend="jax")`, and runs there whatever the
# variable says; so does a long training run, on JAX (on 2 CPU cores its
# compiled steps cost a fraction of torch's eager ones).
EXAMPLES_BACKEND = os.environ.get("KERAS_IMFN_EXAMPLES_BACKEND", "torch")
ONE_BACKEND_MARKERS = ("example", "one_backend")


def backend_of(item):
    """The one backend that `item` runs on, or None where it runs on all."""
    for name in ONE_BACKEND_MARKERS:
        marker = item.get_closest_marker(name)
        if marker is not None:
            return marker.kwargs.get("backend", EXAMPLES_BACKEND)
    return None


def pytest_collection_modifyitems(config, items):
    backend = keras.backend.backend()
    keep, deselected = [], []
    for item in items:
        (keep if backend_of(item) in (None, backend) else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


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


def assert_logs_weigh_batches_by_size(model, x, names):
    """`model.evaluate` of `x` (6 sequences) in batches of 4 and 2 logs, for every
    loss (`names` among them), the size-weighted mean of the two batches' values,
    as Keras logs its own `loss`."""
    assert len(x) == 6
    whole = model.evaluate(x, batch_size=4, verbose=0, return_dict=True)
    parts = [model.evaluate(part, batch_size=4, verbose=0, return_dict=True)
             for part in (x[:4], x[4:])]
    assert set(names) <= set(whole)
    for name, value in whole.items():
        assert value == pytest.approx((4 * parts[0][name] + 2 * parts[1][name]) / 6, rel=1e-5)


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
