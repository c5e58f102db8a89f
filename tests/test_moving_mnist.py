import keras
import numpy as np
import pytest

from keras_imfn import TreeMemory
from keras_imfn.datasets import mnist
from keras_imfn.datasets import moving_mnist


@pytest.fixture(scope="module")
def digits():
    (train, _), (test, _), _ = mnist.load_digits(source="embedded", verbose=False)
    return train, test


def blobs(count):
    """Digits that are one solid square each, of distinct brightness."""
    squares = np.zeros((count, 28, 28), np.uint8)
    for i in range(count):
        squares[i, 4:24, 4:24] = 50 + 50 * i
    return squares


@pytest.mark.one_backend  # numpy
def test_digits_move_inside_the_frame_and_bounce():
    videos = moving_mnist.generate(blobs(1), 50, num_frames=40, num_digits=1, seed=0)
    assert videos.shape == (50, 40, 64, 64) and videos.dtype == np.uint8
    # The whole digit is inside the frame at every step: its mass never changes.
    np.testing.assert_array_equal(videos.sum(axis=(2, 3), dtype=np.int64), 400 * 50)
    tops = (videos.max(axis=3) > 0).argmax(axis=2)  # (n, T): the square's first row
    assert tops.min() >= 4 and tops.max() <= 64 - 28 + 4
    moves = np.diff(tops, axis=1)
    assert np.abs(moves).max() <= 6 and (moves != 0).mean() > 0.5  # 2 to 6 px a frame
    # A straight line only turns back at an edge: the digits bounce.
    assert ((moves[:, :-1] > 0) & (moves[:, 1:] < 0)).any()
    assert ((moves[:, :-1] < 0) & (moves[:, 1:] > 0)).any()


@pytest.mark.one_backend  # numpy
def test_two_distinct_digits_combine_by_maximum_and_seeds_repeat(digits):
    videos = moving_mnist.generate(blobs(2), 20, seed=1)
    assert set(np.unique(videos)) <= {0, 50, 100}  # the maximum, never a sum
    assert (videos == 50).any() and (videos == 100).any()
    train, _ = digits
    first = moving_mnist.generate(train, 4, seed=3)
    np.testing.assert_array_equal(first, moving_mnist.generate(train, 4, seed=3))
    assert not np.array_equal(first, moving_mnist.generate(train, 4, seed=4))


@pytest.mark.one_backend  # numpy
def test_the_test_set_is_fixed_and_training_batches_are_fresh_every_epoch(digits):
    train, test = digits
    fixed = moving_mnist.test_sequences(test, num_sequences=8)
    assert fixed.shape == (8, 20, 64, 64) and fixed.dtype == np.float32
    assert 0.0 <= fixed.min() and fixed.max() <= 1.0
    np.testing.assert_array_equal(fixed, moving_mnist.test_sequences(test, num_sequences=8))
    batches = moving_mnist.MovingMNISTSequences(train, batch_size=3, steps_per_epoch=2,
                                                num_frames=5, targets=True)
    x, y = batches[0]
    assert x is y and x.shape == (3, 5, 64, 64)
    np.testing.assert_array_equal(batches[0][0], x)  # fixed within an epoch
    assert not np.array_equal(batches[1][0], x)
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][0], x)  # fresh after it
    gray = moving_mnist.MovingMNISTSequences(train, batch_size=3, steps_per_epoch=2,
                                             num_frames=5, channel_axis=True)
    (frames,) = gray[0]
    assert frames.shape == (3, 5, 64, 64, 1)  # one channel, for a PatchTokenizer


@pytest.mark.one_backend  # numpy
def test_impossible_settings_are_clear_errors():
    with pytest.raises(ValueError, match="frame_size.*>= 28"):
        moving_mnist.generate(blobs(2), 1, frame_size=20)
    with pytest.raises(ValueError, match="num_digits.*>= 1"):
        moving_mnist.generate(blobs(2), 1, num_digits=0)
    with pytest.raises(ValueError, match="moves 3 distinct digits, but only 2"):
        moving_mnist.test_sequences(blobs(2), num_sequences=1, num_digits=3)
    with pytest.raises(ValueError, match="shape \\(n, 28, 28\\)"):
        moving_mnist.generate(np.zeros((4, 32, 32), np.uint8), 1)
    with pytest.raises(ValueError, match="uint8"):
        moving_mnist.generate(np.zeros((4, 28, 28), np.float32), 1)
    with pytest.raises(ValueError, match="batch_size"):
        moving_mnist.MovingMNISTSequences(blobs(2), batch_size=0, steps_per_epoch=1)


@pytest.mark.one_backend  # numpy
def test_the_published_file_loads_in_the_generators_layout(tmp_path):
    stored = np.random.default_rng(0).integers(0, 256, (20, 3, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "mnist_test_seq.npy", stored)
    videos = moving_mnist.load_published(tmp_path)  # the folder or the file
    assert videos.shape == (3, 20, 64, 64) and videos.dtype == np.float32
    np.testing.assert_allclose(videos[1, 7], stored[7, 1] / 255.0)
    np.save(tmp_path / "bad.npy", stored[:, :, :32])
    with pytest.raises(ValueError, match="\\(20, 10000, 64, 64\\)"):
        moving_mnist.load_published(tmp_path / "bad.npy")
    with pytest.raises(FileNotFoundError, match="mnist_test_seq.npy"):
        moving_mnist.load_published(tmp_path / "missing")
    with pytest.raises(ValueError, match="needs `path`"):
        moving_mnist.load_published(source="file")


def test_sequences_feed_fit(digits):
    train, _ = digits
    batches = moving_mnist.MovingMNISTSequences(train, batch_size=4, steps_per_epoch=2,
                                                num_frames=4, frame_size=32)
    model = TreeMemory(memory_dim=16, sequence_length=4, leaf_hidden_dim=32)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(batches, epochs=2, verbose=0).history
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    assert model.reconstruct(batches[0][0]).shape == (4, 4, 32, 32)


@pytest.mark.one_backend  # numpy
def test_training_and_test_sequences_take_digits_of_their_own_split_only():
    train, test = blobs(2), blobs(4)[2:]  # brightness 50, 100 against 150, 200
    batches = moving_mnist.MovingMNISTSequences(train, batch_size=8, steps_per_epoch=1,
                                                num_frames=6)
    seen = np.unique(np.rint(batches[0][0] * 255))
    assert set(seen) == {0, 50, 100}
    fixed = np.unique(np.rint(moving_mnist.test_sequences(test, num_sequences=8) * 255))
    assert set(fixed) == {0, 150, 200}
