"""`FusedAdam`: Keras' Adam, with PyTorch's fused update on the torch backend."""

import keras
import numpy as np
import pytest
from conftest import random_sequences
from conftest import to_numpy

from keras_imfn import FusedAdam
from keras_imfn import TreeMemory


def applied(optimizer, steps=3):
    """Variables after `steps` updates with the same random gradients."""
    rng = np.random.default_rng(0)
    values = [rng.normal(size=shape).astype("float32") for shape in ((5, 3), (3,))]
    variables = [keras.Variable(value) for value in values]
    for _ in range(steps):
        grads = [keras.ops.convert_to_tensor(rng.normal(size=v.shape).astype("float32"))
                 for v in variables]
        optimizer.apply(grads, variables)
    return values, [to_numpy(v) for v in variables]


def test_fused_adam_updates_as_keras_adam():
    for options in ({}, {"amsgrad": True}, {"weight_decay": 0.01, "epsilon": 1e-3}):
        _, expected = applied(keras.optimizers.Adam(1e-2, **options))
        initial, fused = applied(FusedAdam(1e-2, **options))
        for a, b, start in zip(fused, expected, initial):
            assert np.max(np.abs(a - start)) > 1e-3  # it moved
            np.testing.assert_allclose(a, b, atol=1e-6, err_msg=str(options))


def test_a_tree_trains_with_fused_adam_as_with_keras_adam():
    x = random_sequences(8, 4, 5, 3)
    weights = []
    for optimizer in (keras.optimizers.Adam(1e-3), FusedAdam(1e-3)):
        keras.utils.set_random_seed(0)
        model = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
        model.compile(optimizer=optimizer)
        model.fit(x, epochs=2, batch_size=4, shuffle=False, verbose=0)
        weights.append([to_numpy(v) for v in model.trainable_variables])
        assert int(to_numpy(model.optimizer.iterations)) == 4
    # Adam's early steps are about the learning rate whatever the gradient's size:
    # where a gradient is near zero, rounding moves a weight by a fraction of a step.
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_fused_adam_round_trips_its_config():
    optimizer = FusedAdam(learning_rate=3e-4, beta_2=0.99, epsilon=1e-6)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is FusedAdam
    assert restored.get_config() == optimizer.get_config()


@pytest.mark.one_backend(backend="torch")
def test_on_torch_an_update_is_one_fused_call(monkeypatch):
    import torch

    calls = []
    fused = torch._fused_adam_
    monkeypatch.setattr(torch, "_fused_adam_", lambda *a, **k: calls.append(1) or fused(*a, **k))
    applied(FusedAdam(1e-2), steps=2)
    assert len(calls) == 2
