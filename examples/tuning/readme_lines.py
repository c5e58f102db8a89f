"""The README's usage lines on the running backend: root MSE before and after
`adapt`, after the six epochs of `fit`, beside the equal-size PCA and the mean
image, then the README's distillation lines (every `DistillationTrainer`
default, two epochs): the student's memory after the last digit, decoded by
the tree, against the tree's root; on the README's held-out test sequences
(embedded MNIST sample).

    KERAS_BACKEND=jax python examples/tuning/readme_lines.py --output docs/tuning/readme_lines_jax.json

`tests/test_readme_lines.py` runs the same lines in CI (the tree's check on
one backend, the student's on all three); this script records them on each.
"""

import sys
import os
import argparse
import time

# The experiment drivers live in examples/experiments, beside this folder.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np

from keras_imfn import DistillationTrainer
from keras_imfn import TreeMemory
from keras_imfn.datasets import mnist
from experiments import cli
from experiments.reporting import markdown_table
from experiments import mnist_sequence


def root_mse(model, x):
    return float(np.mean((np.clip(model.predict(x, verbose=0), 0, 1) - x) ** 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=cli.json_path, required=True)
    args = parser.parse_args()

    # The README's lines, word for word, with the scores between them.
    (train_digits, _), (test_digits, _), _ = mnist.load_digits(source="embedded",
                                                                 verbose=False)
    x = mnist.sample_sequences(train_digits, 8, 1000, seed=0)
    x_test = mnist.sample_sequences(test_digits, 8, 256, seed=1)
    keras.utils.set_random_seed(0)
    model = TreeMemory(memory_dim=64, sequence_length=8)
    scores = {"untrained": root_mse(model, x_test)}
    model.adapt(x)
    scores["adapted"] = root_mse(model, x_test)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    started = time.time()
    model.fit(x, epochs=6, batch_size=32, verbose=0)
    seconds = time.time() - started
    scores["after 6 epochs"] = root_mse(model, x_test)
    trainer = DistillationTrainer(model)
    trainer.compile(optimizer="adam")
    started = time.time()
    trainer.fit(x, epochs=2, batch_size=64, verbose=0)
    student_seconds = time.time() - started
    student = float(np.mean((np.clip(keras.ops.convert_to_numpy(
        model.decode(trainer(x_test)[:, -1])), 0, 1) - x_test) ** 2))
    pca = float(np.mean((mnist_sequence.pca_reconstruction(train_digits, x_test, 8) - x_test) ** 2))
    mean_image = float(np.mean((train_digits.mean(0) / 255.0 - x_test) ** 2))
    results = {"root_mse": scores, "pca_mse": pca, "mean_image_mse": mean_image,
               "fit_seconds": seconds, "beats_pca": scores["after 6 epochs"] < pca,
               "student_mse": student, "student_fit_seconds": student_seconds,
               "student_to_teacher": student / scores["after 6 epochs"]}
    rows = [[name, f"{mse:.4f}", f"{mse / pca:.3f}"] for name, mse in scores.items()]
    rows += [["PCA, 8 numbers per digit (reference)", f"{pca:.4f}", "1.000"],
             ["mean image (reference)", f"{mean_image:.4f}", f"{mean_image / pca:.3f}"],
             [f"student after 2 epochs ({student / scores['after 6 epochs']:.3f} x the tree)",
              f"{student:.4f}", f"{student / pca:.3f}"]]
    cli.write_results(args.output, results,
                      markdown_table(["tree", "root MSE (256 test sequences)", "/ PCA"], rows))


if __name__ == "__main__":
    main()
