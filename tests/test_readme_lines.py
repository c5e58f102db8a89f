"""The README's usage lines, as written, reach the quality the README states.

One tree is trained as the README's first block trains it (1,000 sequences of
T = 8 embedded digits, `adapt`, six epochs) and scored on held-out digits.
"""

import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_imfn import DistillationTrainer
from keras_imfn import TreeMemory
from keras_imfn.datasets import mnist
from experiments.mnist_sequence import pca_reconstruction


def pixel_mse(model, memory, x):
    return float(np.mean((np.clip(to_numpy(model.decode(memory)), 0, 1) - x) ** 2))


@pytest.fixture(scope="module")
def readme_tree():
    (train, _), (test, _), _ = mnist.load_digits(source="embedded", verbose=False)
    x = mnist.sample_sequences(train, 8, 1000, seed=0)
    held_out = mnist.sample_sequences(test, 8, 300, seed=1)
    keras.utils.set_random_seed(0)
    model = TreeMemory(memory_dim=64, sequence_length=8)
    scores = {"untrained": pixel_mse(model, model.encode(held_out), held_out)}
    model.adapt(x)
    scores["adapted"] = pixel_mse(model, model.encode(held_out), held_out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=6, batch_size=32, verbose=0)
    scores["trained"] = pixel_mse(model, model.encode(held_out), held_out)
    scores["pca"] = float(np.mean((pca_reconstruction(train, held_out, 8) - held_out) ** 2))
    scores["mean_image"] = float(np.mean((train.mean(0) / 255.0 - held_out) ** 2))
    return model, x, held_out, scores


# The tree's 190 steps on one backend: TensorFlow, whose suite has the time to
# spare under `.ci/run` (the distillation test below trains it on all three).
@pytest.mark.one_backend(backend="tensorflow")
def test_the_readme_tree_starts_at_the_equal_size_pca_and_beats_it(readme_tree):
    # The adapted, untrained tree is about the equal-size PCA; six epochs beat it.
    _, _, _, scores = readme_tree
    assert scores["adapted"] < 1.15 * scores["pca"] < scores["mean_image"] < scores["untrained"]
    assert scores["trained"] < scores["pca"]


def test_the_readme_student_follows_its_teacher_within_1_3x(readme_tree):
    # The README's distillation lines with every default: the chosen student
    # variant and losses. Its memory after the last digit decodes within 1.3x
    # of the teacher's root (the README says about 1.03x).
    model, x, held_out, scores = readme_tree
    trainer = DistillationTrainer(model)
    trainer.compile(optimizer="adam")
    trainer.fit(x, epochs=2, batch_size=64, verbose=0)
    student = pixel_mse(model, trainer(held_out)[:, -1], held_out)
    assert student < 1.3 * scores["trained"]
    assert scores["trained"] < scores["pca"]
