"""Moving MNIST: digits bouncing in a frame (Srivastava et al., 2015).

The standard video benchmark made from MNIST digits: `num_digits` (2) 28x28
digits move on straight lines inside a `frame_size` (64) square frame and
bounce off its edges, for `num_frames` (20) frames. Because it is generated,
training data are unlimited: `MovingMNISTSequences` draws fresh sequences
every epoch from the training digits, while `test_sequences` gives a fixed,
seeded test set from the test digits (the digits of `mnist.load_digits`: an
IDX directory, the Keras download or the embedded sample). The published
test set (10,000 sequences) loads with `load_published` when at hand.

Generation, as the widely used generator of the benchmark does it: each
digit starts at a uniform position inside the frame, moves at a speed of 2
to 6 pixels per frame in a uniform direction, and reverses the component of
its velocity that would take it out of the frame; overlapping digits
combine by their pixel-wise maximum. Frames are uint8 `(frames, size,
size)`; the `PyDataset` yields float32 in [0, 1], the layout of
`mnist.MNISTSequences` with the frame for a digit.
"""

import os

import keras
import numpy as np

DIGIT_SIZE = 28
PUBLISHED_FILE = "mnist_test_seq.npy"
SPEEDS = (2, 7)  # pixels per frame, low inclusive, high exclusive

__all__ = ["MovingMNISTSequences", "generate", "load_published", "test_sequences"]


def generate(digits, num_sequences, num_frames=20, frame_size=64, num_digits=2, seed=None):
    """`num_sequences` Moving MNIST sequences from `digits`, uint8.

    Each sequence moves `num_digits` distinct digits drawn from `digits`.

    Args:
        digits: uint8 digits `(n, 28, 28)`, from one split only.
        num_sequences: sequences to make.
        num_frames: frames per sequence.
        frame_size: side of the square frame in pixels (at least 28).
        num_digits: digits per sequence (at least 1, at most `len(digits)`).
        seed: seed of the draw (positions, velocities, digits).

    Returns:
        uint8 array `(num_sequences, num_frames, frame_size, frame_size)`.

    Example:

    >>> import numpy as np
    >>> digits = np.full((4, 28, 28), 255, np.uint8)
    >>> generate(digits, 3, num_frames=5, seed=0).shape
    (3, 5, 64, 64)
    """
    digits = _check(digits, num_frames, frame_size, num_digits)
    if not isinstance(num_sequences, int) or num_sequences < 0:
        raise ValueError(f"`num_sequences` must be an integer >= 0. Received: {num_sequences!r}")
    rng = np.random.default_rng(seed)
    limit = frame_size - DIGIT_SIZE
    videos = np.zeros((num_sequences, num_frames, frame_size, frame_size), np.uint8)
    for video in videos:
        chosen = digits[rng.choice(len(digits), num_digits, replace=False)]
        position = rng.uniform(0, limit, size=(num_digits, 2))
        angle = rng.uniform(-np.pi, np.pi, size=num_digits)
        speed = rng.integers(*SPEEDS, size=num_digits)
        velocity = np.stack([np.sin(angle), np.cos(angle)], axis=1) * speed[:, None]
        for frame in video:
            for digit, (top, left) in zip(chosen, np.rint(position).astype(int)):
                window = frame[top : top + DIGIT_SIZE, left : left + DIGIT_SIZE]
                np.maximum(window, digit, out=window)
            position, velocity = _bounce(position + velocity, velocity, limit)
    return videos


def _bounce(position, velocity, limit):
    """Reflects positions outside `[0, limit]` back inside, reversing that velocity."""
    low, high = position < 0, position > limit
    position = np.where(low, -position, np.where(high, 2 * limit - position, position))
    velocity = np.where(low | high, -velocity, velocity)
    return np.clip(position, 0, limit), velocity


def _check(digits, num_frames, frame_size, num_digits):
    digits = np.asarray(digits)
    if digits.ndim != 3 or digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
        raise ValueError(f"`digits` must be MNIST digits of shape (n, {DIGIT_SIZE}, "
                         f"{DIGIT_SIZE}). Received shape {digits.shape}.")
    if digits.dtype != np.uint8:
        raise ValueError(f"`digits` must be uint8 (0..255). Received {digits.dtype}.")
    if not isinstance(frame_size, int) or frame_size < DIGIT_SIZE:
        raise ValueError(f"`frame_size` must be an integer >= {DIGIT_SIZE}, the side of a "
                         f"digit. Received: {frame_size!r}")
    if not isinstance(num_digits, int) or num_digits < 1:
        raise ValueError(f"`num_digits` must be an integer >= 1. Received: {num_digits!r}")
    if not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"`num_frames` must be an integer >= 1. Received: {num_frames!r}")
    if len(digits) < num_digits:
        raise ValueError(f"A sequence moves {num_digits} distinct digits, but only "
                         f"{len(digits)} digits were given.")
    return digits


def test_sequences(test_digits, num_sequences=10000, num_frames=20, frame_size=64,
                   num_digits=2, seed=2015):
    """The fixed test set: `num_sequences` sequences of the test digits, float32 in [0, 1].

    The same arguments give the same sequences on every machine and backend.
    """
    videos = generate(test_digits, num_sequences, num_frames, frame_size, num_digits, seed)
    return videos.astype("float32") / 255.0


# `test_sequences` is not a pytest test.
test_sequences.__test__ = False


def load_published(path=None, source="auto"):
    """The published Moving MNIST test set: float32 `(10000, 20, 64, 64)` in [0, 1].

    Args:
        path: the `mnist_test_seq.npy` file (or a folder holding it), the
            file of the benchmark's page (uint8, stored `(20, 10000, 64, 64)`).
        source: `"auto"` (the file when `path` is given, else TensorFlow
            Datasets' `moving_mnist`), `"file"` or `"tfds"`.

    Returns:
        The sequences in the layout of `test_sequences`.
    """
    if source not in ("auto", "file", "tfds"):
        raise ValueError(f'`source` must be "auto", "file" or "tfds". Received: {source!r}')
    if source == "file" or (source == "auto" and path is not None):
        if path is None:
            raise ValueError('`source="file"` needs `path`, the mnist_test_seq.npy file.')
        path = os.path.expanduser(os.fspath(path))
        if os.path.isdir(path):
            path = os.path.join(path, PUBLISHED_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No Moving MNIST test set at {path}: expected the "
                                    f"{PUBLISHED_FILE} file of the benchmark.")
        videos = np.load(path)
        if videos.ndim != 4 or videos.shape[2:] != (64, 64):
            raise ValueError(f"{path} holds an array of shape {videos.shape}; the published "
                             "test set is (20, 10000, 64, 64).")
        videos = np.swapaxes(videos, 0, 1)
    else:
        try:
            import tensorflow_datasets as tfds
        except ImportError:
            raise ImportError("Reading Moving MNIST from TensorFlow Datasets needs "
                              "tensorflow-datasets: pip install 'keras-imfn[data]', or pass "
                              f"`path` to the {PUBLISHED_FILE} file.") from None
        examples = tfds.as_numpy(tfds.load("moving_mnist", split="test"))
        videos = np.stack([example["image_sequence"][..., 0] for example in examples])
    return videos.astype("float32") / 255.0


class MovingMNISTSequences(keras.utils.PyDataset):
    """Batches of Moving MNIST sequences for `model.fit`, fresh every epoch.

    Args:
        digits: uint8 digits `(n, 28, 28)` of the training split only.
        batch_size: sequences per batch.
        steps_per_epoch: batches per epoch.
        num_frames: frames per sequence (as for `generate`).
        frame_size: side of the square frame in pixels.
        num_digits: digits per sequence.
        seed: seed of the first epoch; batch `i` of epoch `e` is drawn with
            `(seed, e, i)`, so a run is reproducible and every epoch new.
        targets: yield `(x, x)` instead of `(x,)` (for a compiled loss on
            `(y, y_pred)`).
        channel_axis: add a last axis of one channel, `(B, T, size, size, 1)`
            (frames for a `PatchTokenizer`).
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Example:

    >>> import numpy as np
    >>> digits = np.full((4, 28, 28), 255, np.uint8)
    >>> batches = MovingMNISTSequences(digits, batch_size=2, steps_per_epoch=3, num_frames=4)
    >>> len(batches), batches[0][0].shape, batches[0][0].dtype
    (3, (2, 4, 64, 64), dtype('float32'))
    """

    def __init__(self, digits, batch_size, steps_per_epoch, num_frames=20, frame_size=64,
                 num_digits=2, seed=0, targets=False, channel_axis=False, **kwargs):
        super().__init__(**kwargs)
        self.digits = _check(digits, num_frames, frame_size, num_digits)
        for name, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {value!r}")
        self.batch_size, self.steps_per_epoch = batch_size, steps_per_epoch
        self.num_frames, self.frame_size, self.num_digits = num_frames, frame_size, num_digits
        self.seed, self.targets, self.epoch = seed, bool(targets), 0
        self.channel_axis = bool(channel_axis)

    def __len__(self):
        return self.steps_per_epoch

    def __getitem__(self, index):
        videos = generate(self.digits, self.batch_size, self.num_frames, self.frame_size,
                          self.num_digits, seed=(self.seed, self.epoch, index))
        x = videos.astype("float32") / 255.0
        if self.channel_axis:
            x = x[..., None]
        return (x, x) if self.targets else (x,)

    def on_epoch_end(self):
        self.epoch += 1
