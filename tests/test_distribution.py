"""Training on several devices gives the losses of one device.

The virtual devices (4 on JAX, 2 logical CPUs on TensorFlow) must exist before
the backend starts, so `distributed_losses.py` trains in a fresh process of
that backend (as Keras's own multi-device tests do).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import random_sequences

from keras_imfn import TreeMemory
from keras_imfn.distribution import TORCH_DISTRIBUTION_KERAS
from keras_imfn.distribution import batch_variance
from keras_imfn.distribution import layout_map
from keras_imfn.distribution import scale_for_replicas

KERAS_VERSION = tuple(int(part) for part in keras.__version__.split(".")[:2])
MODELS = ("tree", "trainer", "transformer", "tree from a PyDataset")


def distributed_losses(backend):
    script = Path(__file__).with_name("distributed_losses.py")
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, str(script), backend], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_same_losses(results, settings):
    one_device = results["one device"]
    assert set(one_device) == set(MODELS)
    # A PyDataset of the same batches (as the streaming loaders are) trains as the arrays.
    np.testing.assert_allclose(one_device["tree from a PyDataset"], one_device["tree"],
                               rtol=1e-6)
    for setting in settings:
        for name in MODELS:
            losses = results[setting][name]
            assert len(losses) == 2 and losses[1] != losses[0]  # it trained
            np.testing.assert_allclose(losses, one_device[name], rtol=1e-5,
                                       err_msg=f"{setting}, {name}")


# The two tests below train in a subprocess of their own backend, whatever the
# suite's: they run in the torch suite, the one with time to spare in `.ci/run`.
@pytest.mark.one_backend(backend="torch")
def test_jax_data_and_model_parallel_train_like_one_device():
    results = distributed_losses("jax")
    assert_same_losses(results, ["DataParallel 4", "ModelParallel 2x2"])
    # layout_map split the sweepers' and leaf MLPs' kernels (and the
    # Transformer's MLP) over the model axis.
    tree = results["sharded"]["tree"]
    assert any("merge_0/mlp/block_0_inner/kernel" in path for path in tree)
    assert any("inverse_1/mlp/block_0_outer/kernel" in path for path in tree)
    assert any("encoder/hidden/kernel" in path for path in tree)
    assert any("decoder/output/kernel" in path for path in tree)
    assert any("student" in path for path in results["sharded"]["trainer"])
    assert any("mlp_inner/kernel" in path for path in results["sharded"]["transformer"])


@pytest.mark.one_backend(backend="torch")
def test_tensorflow_mirrored_strategy_trains_like_one_device():
    assert_same_losses(distributed_losses("tensorflow"), ["MirroredStrategy 2"])


def test_one_replica_keeps_the_loss_and_the_batch_statistics():
    values = random_sequences(4, 3, 5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scale_for_replicas(
        keras.ops.convert_to_tensor(values))), values)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(batch_variance(keras.ops.convert_to_tensor(values), (0, 1))),
        values.var(axis=(0, 1)), rtol=1e-5)


@pytest.mark.one_backend(backend="jax")  # keras.distribution runs on JAX
def test_layout_map_names_every_sharded_kernel():
    mesh = keras.distribution.DeviceMesh((1, 1), ["batch", "model"],
                                         keras.distribution.list_devices()[:1])
    layouts = layout_map(mesh, model_axis="model")
    assert layouts[".*_inner/kernel"].axes == (None, "model")
    assert layouts[".*_outer/kernel"].axes == ("model", None)
    # Keras matches a pattern to a whole variable path.
    assert layouts["tree_memory/merge_0/mlp/block_0_inner/kernel"].axes == (None, "model")
    assert layouts["tree_memory/decoder/output/kernel"].axes == ("model", None)
    assert layouts["tree_memory/merge_0/linear/kernel"] is None


@pytest.mark.one_backend(backend="torch")
@pytest.mark.skipif(KERAS_VERSION >= TORCH_DISTRIBUTION_KERAS,
                    reason="this Keras distributes training on torch")
def test_a_distribution_on_torch_is_a_clear_error_not_one_device():
    x = random_sequences(8, 4, 6)
    model = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
    model.compile(optimizer="adam")
    mesh = keras.distribution.DeviceMesh((1,), ["batch"], ["cpu:0"])
    keras.distribution.set_distribution(keras.distribution.DataParallel(device_mesh=mesh))
    try:
        with pytest.raises(NotImplementedError, match="Keras 3.16"):
            model.fit(x, epochs=1, batch_size=4, verbose=0)
    finally:
        keras.distribution.set_distribution(None)
    model.fit(x, epochs=1, batch_size=4, verbose=0)  # one device, as set


@pytest.mark.one_backend(backend="torch")
@pytest.mark.skipif(KERAS_VERSION < TORCH_DISTRIBUTION_KERAS,
                    reason=f"Keras {keras.__version__} has no distribution on torch (3.16 adds it)")
def test_torch_data_parallel_trains_like_one_device():
    x = random_sequences(16, 4, 6)
    keras.utils.set_random_seed(1)
    model = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
    model(x[:1])
    weights = model.get_weights()

    def losses():
        twin = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
        twin(x[:1])
        twin.set_weights(weights)
        twin.compile(optimizer=keras.optimizers.Adam(1e-2))
        return twin.fit(x, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]

    one_device = losses()
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    try:
        np.testing.assert_allclose(losses(), one_device, rtol=1e-5)
    finally:
        keras.distribution.set_distribution(None)


def test_data_parallel_is_the_backends_engine_or_a_clear_error():
    from keras_imfn.distribution import data_parallel

    with data_parallel(enabled=False) as engine:
        assert engine is None and keras.distribution.distribution() is None
    backend = keras.backend.backend()
    if backend == "torch":
        with pytest.raises(NotImplementedError, match="JAX and TensorFlow"):
            with data_parallel():
                pass
        return
    with data_parallel() as engine:
        if backend == "jax":
            assert isinstance(engine, keras.distribution.DataParallel)
            assert keras.distribution.distribution() is engine
        else:
            import tensorflow as tf

            assert isinstance(engine, tf.distribute.MirroredStrategy)
            assert tf.distribute.get_strategy() is engine
    assert keras.distribution.distribution() is None


def test_layout_map_says_what_mesh_it_takes():
    with pytest.raises(TypeError, match="takes a `keras.distribution.DeviceMesh`"):
        layout_map(None)
    mesh = keras.distribution.DeviceMesh((1,), ["batch"], ["cpu:0"])
    with pytest.raises(ValueError, match=r"model_axis='model', which the mesh does not have"):
        layout_map(mesh)
