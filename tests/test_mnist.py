import gzip
import struct

import numpy as np
import pytest

from keras_imfn.datasets import mnist

# One backend (tests/conftest.py): IDX files and numpy batches: no Keras backend.
pytestmark = pytest.mark.one_backend


def write_idx(path, array, compress=False):
    """Writes `array` (uint8) as an IDX file, as the MNIST files are laid out."""
    data = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data += array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


def idx_directory(tmp_path, n_train=12, n_test=5):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28)),
              "y_train": rng.integers(0, 10, n_train),
              "x_test": rng.integers(0, 256, (n_test, 28, 28)),
              "y_test": rng.integers(0, 10, n_test)}
    for i, (key, stem) in enumerate(mnist.IDX_FILES.items()):
        compress = i % 2 == 0  # both layouts, gzipped and not, in one directory
        write_idx(tmp_path / (stem + (".gz" if compress else "")), arrays[key], compress)
    return {key: value.astype(np.uint8) for key, value in arrays.items()}


def identifiable_digits(n):
    """Digit i is an image filled with the value i, so a sample names its digits."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 28, 28)).copy()


def test_idx_directory_loads_exactly_and_says_so(tmp_path, capsys):
    arrays = idx_directory(tmp_path)
    (x_train, y_train), (x_test, y_test), source = mnist.load_digits(str(tmp_path))
    for key, value in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test),
                       ("y_test", y_test)):
        np.testing.assert_array_equal(value, arrays[key])
        assert value.dtype == np.uint8
    assert str(tmp_path) in source
    assert f"12 train / 5 test digits from IDX files in {tmp_path}" in capsys.readouterr().out


def test_missing_or_malformed_idx_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mnist.load_digits(str(tmp_path / "nowhere"))
    idx_directory(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks t10k-labels-idx1-ubyte\[.gz\]"):
        mnist.load_digits(str(tmp_path))
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 5) + bytes(5))  # float32 tag
    with pytest.raises(ValueError, match="magic bytes 00 00 08"):
        mnist.load_digits(str(tmp_path))
    labels.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 5) + bytes(3))  # 2 bytes short
    with pytest.raises(ValueError, match=r"truncated or malformed.*\(5,\) \(5 bytes\).*3 bytes"):
        mnist.load_digits(str(tmp_path))
    write_idx(labels, np.zeros(4, np.uint8))  # 4 labels for 5 test images
    with pytest.raises(ValueError, match="test files .* do not match"):
        mnist.load_digits(str(tmp_path))


def test_sources_and_their_errors(capsys):
    (x_train, y_train), (x_test, y_test), source = mnist.load_digits(source="embedded")
    assert x_train.shape[1:] == x_test.shape[1:] == (28, 28) and x_train.dtype == np.uint8
    assert len(x_train) == len(y_train) and len(x_test) == len(y_test)
    assert set(np.unique(y_train)) == set(range(10))
    assert "embedded sample" in source and "embedded sample" in capsys.readouterr().out
    with pytest.raises(ValueError, match="`source` must be one of"):
        mnist.load_digits(source="tfds")
    with pytest.raises(ValueError, match="needs `data_dir`"):
        mnist.load_digits(source="directory")


def test_sequences_hold_distinct_digits_of_the_given_split_and_repeat_by_seed():
    digits = identifiable_digits(20)
    x = mnist.sample_sequences(digits, 16, 50, seed=3)
    assert x.shape == (50, 16, 28, 28) and x.dtype == np.float32 and x.max() <= 1.0
    names = np.rint(x[:, :, 0, 0] * 255).astype(int)
    assert all(len(set(row)) == 16 for row in names)  # without replacement
    assert set(names.ravel()) <= set(range(20))
    np.testing.assert_array_equal(x, mnist.sample_sequences(digits, 16, 50, seed=3))
    assert not np.array_equal(x, mnist.sample_sequences(digits, 16, 50, seed=4))
    with pytest.raises(ValueError, match="Cannot draw 21 distinct digits from 20"):
        mnist.sample_sequences(digits, 21, 1, seed=0)


def test_training_batches_are_fixed_within_an_epoch_and_fresh_after_it():
    data = mnist.MNISTSequences(identifiable_digits(40), 8, 4, steps_per_epoch=3, seed=1)
    assert len(data) == 3
    (first,) = data[0]
    np.testing.assert_array_equal(first, data[0][0])
    assert not np.array_equal(first, data[1][0])
    data.on_epoch_end()
    assert not np.array_equal(first, data[0][0])
    data.targets = True
    x, y = data[0]
    np.testing.assert_array_equal(x, y)


def test_shared_mnist_idx_files(shared_mnist):
    (x_train, y_train), (x_test, y_test), source = mnist.load_digits(str(shared_mnist),
                                                                     verbose=False)
    assert "IDX files" in source
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28) and len(x) == len(y)
        assert 0 <= y.min() and y.max() <= 9 and x.max() > 200  # real strokes
    assert len(x_train) + len(x_test) == 10_000


@pytest.mark.one_backend  # callbacks and epoch counters; fit itself runs on every backend elsewhere
def test_a_resumed_fit_draws_the_batches_it_would_have_drawn(tmp_path):
    # A run stopped after epoch 1 and resumed in a new process (a new data
    # set, its counter at 0) goes on at epoch 2, and so does the data's
    # counter, so no epoch's batches are drawn twice.
    import keras

    from keras_imfn import DataEpochSync
    from keras_imfn import TreeMemory

    digits = np.random.default_rng(0).integers(0, 255, (50, 28, 28)).astype("uint8")

    def attempt(stop_after=None):
        data = mnist.MNISTSequences(digits, 4, 2, steps_per_epoch=2, seed=0)
        seen = []

        class Record(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                seen.append((epoch, data.epoch))

            def on_epoch_end(self, epoch, logs=None):
                if epoch == stop_after:
                    raise KeyboardInterrupt

        model = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=8)
        model.compile(optimizer="adam")
        backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
        model.fit(data, epochs=4, verbose=0, callbacks=[DataEpochSync(data), backup, Record()])
        return seen

    with pytest.raises(KeyboardInterrupt):
        attempt(stop_after=1)
    assert attempt() == [(2, 2), (3, 3)]
