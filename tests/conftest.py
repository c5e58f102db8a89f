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
