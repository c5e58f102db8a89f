import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_imfn import TreeMemory
from keras_imfn.datasets import mnist
from keras_imfn.losses import SSIMLoss
from keras_imfn.metrics import ssim

RNG = np.random.default_rng(0)


def test_ssim_loss_is_one_minus_the_mean_ssim_with_or_without_a_channel_axis():
    a = RNG.random((3, 2, 16, 16)).astype("float32")
    b = np.clip(a + RNG.normal(0, 0.2, a.shape), 0, 1).astype("float32")
    expected = 1.0 - to_numpy(ssim(a[..., None], b[..., None])).mean()
    assert float(to_numpy(SSIMLoss(channel_axis=None)(a, b))) == pytest.approx(expected, rel=1e-5)
    assert float(to_numpy(SSIMLoss()(a[..., None], b[..., None]))) == pytest.approx(
        expected, rel=1e-5)
    assert float(to_numpy(SSIMLoss(channel_axis=None)(a, a))) == pytest.approx(0.0, abs=1e-5)


def test_ssim_loss_rejects_other_channel_axes_and_round_trips():
    with pytest.raises(ValueError, match="`channel_axis` must be -1"):
        SSIMLoss(channel_axis=1)
    original = SSIMLoss(channel_axis=None, dtype="float64")
    loss = keras.losses.deserialize(keras.losses.serialize(original))
    assert isinstance(loss, SSIMLoss) and loss.channel_axis is None
    assert loss.dtype == "float64"


def test_sequences_with_targets_yield_the_input_twice():
    digits = RNG.integers(0, 256, (50, 28, 28), dtype="uint8")
    (x,) = mnist.MNISTSequences(digits, 4, batch_size=3, steps_per_epoch=2)[0]
    y_in, y_out = mnist.MNISTSequences(digits, 4, 3, 2, targets=True)[0]
    np.testing.assert_array_equal(x, y_in)
    np.testing.assert_array_equal(y_in, y_out)


def test_compiled_ssim_loss_is_added_to_the_tree_objective():
    digits = RNG.integers(0, 256, (50, 28, 28), dtype="uint8")
    x = mnist.sample_sequences(digits, 4, 8, seed=0)
    model = TreeMemory(memory_dim=16, sequence_length=4, leaf_hidden_dim=32,
                       output_activation="sigmoid", end_to_end=True)
    model.compile(loss=SSIMLoss(channel_axis=None), loss_weights=0.5)
    logs = model.evaluate(x, x, batch_size=8, verbose=0, return_dict=True)
    structure = float(to_numpy(SSIMLoss(channel_axis=None)(x, model(x))))
    assert logs["loss"] == pytest.approx(
        logs["leaf_loss"] + logs["reconstruction_loss"] + 0.5 * structure, rel=1e-4)


def test_a_compiled_loss_without_targets_is_an_error():
    x = mnist.sample_sequences(RNG.integers(0, 256, (50, 28, 28), dtype="uint8"), 4, 8, seed=0)
    model = TreeMemory(memory_dim=16, sequence_length=4, leaf_hidden_dim=32, end_to_end=True)
    model.compile(optimizer="adam", loss=SSIMLoss(channel_axis=None), loss_weights=0.1)
    with pytest.raises(ValueError, match="received no targets"):
        model.fit(x, epochs=1, batch_size=8, verbose=0)
