"""MNIST digits and sequences of digits for IMFN experiments.

Digits come from, in order of preference:

1. a local directory of the standard MNIST IDX files
   (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
   `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`);
2. the Keras download (`keras.datasets.mnist`), when online;
3. the small real sample embedded in this package (3,000 train and 1,000
   test digits; see `data/README.md` for its attribution).

`load_digits` always says which source it used.
"""

import gzip
import logging
import os
import struct
from importlib import resources

import keras
import numpy as np

logger = logging.getLogger(__name__)

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
SOURCES = ("auto", "directory", "keras", "embedded")


def read_idx(path):
    """Reads one IDX file (optionally gzipped) into a uint8 numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(
            f"{path} is not an IDX file of unsigned bytes: it should start with "
            "the magic bytes 00 00 08 <ndim> (the MNIST format)."
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(">" + "I" * ndim, data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise ValueError(
            f"{path} is truncated or malformed: its header announces shape "
            f"{shape} ({expected} bytes) but it holds {len(data) - header} bytes."
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _find_idx(data_dir, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    return None


def load_idx_directory(data_dir):
    """Loads `(x_train, y_train), (x_test, y_test)` from MNIST IDX files."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"MNIST directory {data_dir!r} does not exist.")
    paths = {key: _find_idx(data_dir, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[key] + "[.gz]" for key, path in paths.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST directory {data_dir!r} lacks {', '.join(missing)}. Expected "
            f"the four standard IDX files: {', '.join(IDX_FILES.values())} "
            "(gzipped or not)."
        )
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                f"MNIST {split} files in {data_dir!r} do not match: expected "
                f"images (n, 28, 28) and labels (n,), got {x.shape} and {y.shape}."
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def load_embedded():
    """Loads the MNIST sample shipped with the package."""
    with resources.files("keras_imfn.datasets").joinpath("data/mnist_sample.npz").open("rb") as f:
        data = np.load(f)
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


def load_digits(data_dir=None, source="auto", verbose=True):
    """Loads MNIST digits as uint8 arrays, saying where they came from.

    Args:
        data_dir: optional directory of the standard MNIST IDX files. When
            given (with `source="auto"` or `"directory"`) it must be valid:
            a broken directory is an error, never a silent fallback.
        source: `"auto"` (directory if given, else Keras download, else the
            embedded sample), `"directory"`, `"keras"` or `"embedded"`.
        verbose: print which source was used.

    Returns:
        `((x_train, y_train), (x_test, y_test), source_used)`.
    """
    if source not in SOURCES:
        raise ValueError(f"`source` must be one of {SOURCES}. Received: {source!r}")
    if source == "directory" and data_dir is None:
        raise ValueError('`source="directory"` needs `data_dir`.')
    if data_dir is not None and source in ("auto", "directory"):
        train, test = load_idx_directory(data_dir)
        used = f"IDX files in {data_dir}"
    elif source in ("auto", "keras"):
        try:
            train, test = keras.datasets.mnist.load_data()
            used = "keras.datasets.mnist download"
        except Exception as error:  # no network, no cache
            if source == "keras":
                raise
            logger.warning("Keras MNIST download failed (%s); using the embedded sample.", error)
            train, test = load_embedded()
            used = "embedded sample (keras_imfn/datasets/data)"
    else:
        train, test = load_embedded()
        used = "embedded sample (keras_imfn/datasets/data)"
    if verbose:
        print(f"MNIST: {len(train[0])} train / {len(test[0])} test digits from {used}")
    return train, test, used


def sample_sequences(images, sequence_length, num_sequences, seed):
    """Draws sequences of distinct digits: `(num_sequences, T, 28, 28)` in [0, 1].

    Each sequence holds `sequence_length` digits drawn without replacement.
    """
    if sequence_length > len(images):
        raise ValueError(
            f"Cannot draw {sequence_length} distinct digits from {len(images)} images."
        )
    rng = np.random.default_rng(seed)
    index = np.stack(
        [rng.choice(len(images), sequence_length, replace=False) for _ in range(num_sequences)]
    )
    return images[index].astype("float32") / 255.0


def split_validation(train_digits, held_out=1000):
    """`(training, validation)` digits: the last `held_out` training digits
    (at most a fifth of them) are held out for choosing settings, so the
    test digits stay unread until the table.

    >>> import numpy as np
    >>> train, validation = split_validation(np.zeros((8000, 28, 28), "uint8"))
    >>> len(train), len(validation)
    (7000, 1000)
    """
    held_out = min(int(held_out), len(train_digits) // 5)
    if held_out < 1:
        raise ValueError(
            "split_validation needs at least 5 training digits to hold one out. "
            f"Received {len(train_digits)}."
        )
    return train_digits[:-held_out], train_digits[-held_out:]


class MNISTSequences(keras.utils.PyDataset):
    """Batches of digit sequences for `model.fit`, fresh every epoch.

    Args:
        images: uint8 digits `(n, 28, 28)`, from one split only.
        sequence_length: digits per sequence.
        batch_size: sequences per batch.
        steps_per_epoch: batches per epoch.
        seed: seed of the first epoch; epoch `e` uses `seed + e`.
        targets: bool. Yield `(x, x)` instead of `(x,)`, for a loss compiled
            on `(y, y_pred)` (e.g. `keras_imfn.losses.SSIMLoss`).
    """

    def __init__(self, images, sequence_length, batch_size, steps_per_epoch, seed=0,
                 targets=False, **kwargs):
        super().__init__(**kwargs)
        self.images = images
        self.sequence_length = sequence_length
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed
        self.targets = bool(targets)
        self.epoch = 0

    def __len__(self):
        return self.steps_per_epoch

    def __getitem__(self, index):
        seed = (self.seed, self.epoch, index)
        x = sample_sequences(self.images, self.sequence_length, self.batch_size, seed)
        return (x, x) if self.targets else (x,)

    def on_epoch_end(self):
        self.epoch += 1
