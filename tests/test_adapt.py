"""`TreeMemory.adapt`: the closed-form start, and defaults that train from it."""

import keras
import numpy as np
import pytest
from conftest import random_sequences
from conftest import to_numpy

from keras_imfn import TreeMemory
from keras_imfn.datasets import mnist


@pytest.fixture(scope="module")
def digits():
    (train, _), (test, _), _ = mnist.load_digits(source="embedded", verbose=False)
    return train, test


def root_mse(model, x):
    return float(np.mean((np.clip(to_numpy(model.predict(x, verbose=0)), 0, 1) - x) ** 2))


# 190 steps for quality, on one backend: TensorFlow, whose suite has the time to spare
# under `.ci/run` (the JAX suite is the longest).
@pytest.mark.one_backend(backend="tensorflow")
def test_the_defaults_train_below_the_mean_image_without_adapt(digits):
    train, test = digits
    x = mnist.sample_sequences(train, 8, 1000, seed=0)
    held_out = mnist.sample_sequences(test, 8, 300, seed=1)
    keras.utils.set_random_seed(0)
    model = TreeMemory(memory_dim=64, sequence_length=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=6, batch_size=32, verbose=0)
    mean_image = float(np.mean((train.mean(0) / 255.0 - held_out) ** 2))
    assert root_mse(model, held_out) < 0.9 * mean_image


def test_adapt_fits_a_sigmoid_decoder_to_logits(digits):
    train, _ = digits
    x = mnist.sample_sequences(train, 4, 200, seed=0)
    model = TreeMemory(memory_dim=32, sequence_length=4, output_activation="sigmoid")
    model.adapt(x)
    leaves_only = to_numpy(model.reconstruct(x, level=-1))
    mean_image = float(np.mean((train.mean(0) / 255.0 - x) ** 2))
    assert float(np.mean((leaves_only - x) ** 2)) < 0.5 * mean_image


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]


@pytest.mark.parametrize(
    "make, data, error, match",
    [
        (lambda: TreeMemory(8, 4), random_sequences(20, 5, 3), ValueError, "length 4"),
        (lambda: TreeMemory(8, 4), random_sequences(20, 4, 3, 2), ValueError, r"\(batch, 4, 3\)"),
        (lambda: TreeMemory(8, 4), random_sequences(8, 4, 3), ValueError, "at least 9 sequences"),
        (lambda: TreeMemory(8, 4), np.full((20, 4, 3), np.nan, "float32"), ValueError, "finite"),
        (lambda: TreeMemory(8, 4), np.full((20, 4, 3), "a"), TypeError, "numeric"),
        (lambda: TreeMemory(8, 4, sweeper_skip="none"), random_sequences(20, 4, 3), ValueError,
         "sweeper_skip='linear'"),
        (lambda: TreeMemory(8, 4, output_activation="relu"), random_sequences(20, 4, 3),
         ValueError, "fit_leaves=False"),
    ],
)
@pytest.mark.one_backend  # checks of the data, before any backend work
def test_adapt_rejects_bad_data_before_changing_anything(make, data, error, match):
    model = make()
    model(random_sequences(1, 4, 3))
    before = weights_of(model)
    with pytest.raises(error, match=match):
        model.adapt(data)
    for old, new in zip(before, weights_of(model)):
        np.testing.assert_array_equal(old, new)


@pytest.mark.one_backend  # which parts adapt sets; its fit is checked on every backend
def test_adapt_keeps_custom_leaves_unless_asked():
    model = TreeMemory(4, 4, encoder=keras.layers.Dense(4), decoder=keras.layers.Dense(3))
    x = random_sequences(20, 4, 3)
    model(x[:1])
    encoder = [np.array(w) for w in model.encoder.get_weights()]
    model.adapt(x)
    for old, new in zip(encoder, model.encoder.get_weights()):
        np.testing.assert_array_equal(old, new)
    with pytest.raises(ValueError, match="fit_leaves=False"):
        model.adapt(x, fit_leaves=True)


def test_adapt_streams_a_py_dataset_a_list_of_batches_and_arrays_alike(digits):
    # The start is a function of second moments: reading the same sequences
    # as a PyDataset of batches, a list of (x, y) batches or one array gives
    # the same tree (up to float rounding).
    train, _ = digits
    data = mnist.MNISTSequences(train, 4, 64, steps_per_epoch=3, seed=0)
    x = np.concatenate([data[i][0] for i in range(len(data))])
    roots = []
    for source in (x, data, [(x[:100], x[:100]), (x[100:], x[100:])]):
        keras.utils.set_random_seed(0)
        model = TreeMemory(memory_dim=32, sequence_length=4).adapt(source)
        roots.append(to_numpy(model.encode(x[:16])))
    np.testing.assert_allclose(roots[1], roots[0], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(roots[2], roots[0], rtol=1e-3, atol=1e-3)


def test_adapt_reads_steps_batches_of_data_that_never_end(digits):
    import tensorflow as tf

    x = mnist.sample_sequences(digits[0], 4, 64, seed=0)
    endless = tf.data.Dataset.from_tensor_slices(x).batch(32).repeat()
    roots = []
    for data, steps in ((endless, 2), (x, None)):  # two batches of 32: the same sequences
        keras.utils.set_random_seed(0)
        model = TreeMemory(memory_dim=16, sequence_length=4).adapt(data, steps=steps)
        roots.append(to_numpy(model.encode(x[:4])))
    np.testing.assert_allclose(roots[0], roots[1], rtol=1e-3, atol=1e-3)


def test_adapt_refuses_a_one_shot_iterator_it_cannot_read_again(digits):
    x = mnist.sample_sequences(digits[0], 4, 64, seed=0)
    with pytest.raises(TypeError, match="one-shot iterator"):
        TreeMemory(memory_dim=16, sequence_length=4).adapt(iter([x]))
