"""Quickstart: train a small IMFN tree memory on MNIST digit sequences.

Trains `TreeMemory(memory_dim=64, sequence_length=8)` with the recommended
recipe (linear-skip sweepers started at PCA of training pairs by `adapt`,
local losses, then an end-to-end fine-tune), then prints the pixel error of
reconstructing held-out sequences from every level of the tree beside PCA
keeping the same numbers and the mean image. About a minute on 2 CPU cores.

    KERAS_BACKEND=jax python examples/quickstart.py     # the embedded sample
    python examples/quickstart.py --data-dir DIR        # MNIST IDX files
    python examples/quickstart.py --download            # full MNIST (Keras)
    KERAS_BACKEND=torch python examples/quickstart.py   # any backend
"""

import argparse
import json

import keras

from keras_imfn import TreeMemory
from keras_imfn.datasets import mnist
from keras_imfn.training import train_local_then_end_to_end
from experiments import cli
from experiments.evaluation import error_stats
from experiments.evaluation import level_errors
from experiments.mnist_sequence import pca_reconstruction
from experiments.reporting import markdown_table


def reference_errors(train_digits, test, numbers_per_digit):
    """Error stats of PCA keeping `numbers_per_digit` per digit, and of the mean image."""
    axes = tuple(range(1, test.ndim))
    pca = pca_reconstruction(train_digits, test, numbers_per_digit)
    mean_image = train_digits.mean(axis=0) / 255.0
    return (error_stats(((pca - test) ** 2).mean(axis=axes)),
            error_stats(((mean_image - test) ** 2).mean(axis=axes)))


def results_table(rows, memory_dim, sequence_length):
    """The quickstart's table: each level beside PCA of the same size."""
    header = ["level", "digits per node", "numbers kept (per digit)", "tree MSE ± std",
              "tree PSNR (dB)", "PCA MSE", "PCA PSNR (dB)"]
    lines = []
    for row in rows:
        kept = memory_dim * sequence_length // row["compression"]
        name = "leaves" if row["level"] == "leaf" else f"L{row['level']}"
        if row["level"] == rows[-1]["level"]:
            name += " (root)"
        lines.append([
            name, row["compression"],
            f"{kept:,} ({kept // sequence_length})",
            f"{row['mse']:.4f} ± {row['mse_std']:.4f}", f"{row['psnr']:.2f}",
            f"{row['pca']['mse']:.4f}", f"{row['pca']['psnr']:.2f}",
        ])
    return markdown_table(header, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data-dir", help="directory of the MNIST IDX files")
    source.add_argument("--download", action="store_true",
                        help="download full MNIST with Keras (default: the embedded sample)")
    parser.add_argument("--sequence-length", type=cli.positive_int, default=8)
    parser.add_argument("--memory-dim", type=cli.positive_int, default=64)
    parser.add_argument("--local-epochs", type=cli.non_negative_int, default=6)
    parser.add_argument("--end-to-end-epochs", type=cli.non_negative_int, default=4)
    parser.add_argument("--steps-per-epoch", type=cli.positive_int, default=50)
    parser.add_argument("--batch-size", type=cli.positive_int, default=64)
    parser.add_argument("--test-sequences", type=cli.positive_int, default=500)
    parser.add_argument("--checkpoint-dir", help="resume an interrupted run from here")
    parser.add_argument("--output", help="write the table as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    T, d = args.sequence_length, args.memory_dim
    if T & (T - 1) or d % T:
        # Each level is compared with PCA keeping its numbers per digit: whole numbers.
        parser.error("the table compares every level with PCA keeping as many numbers per "
                     "digit: give a power-of-two --sequence-length and a --memory-dim that "
                     f"it divides (received {T} and {d})")

    keras.utils.set_random_seed(args.seed)
    data_source = "directory" if args.data_dir else "keras" if args.download else "embedded"
    (train_digits, _), (test_digits, _), used = mnist.load_digits(
        args.data_dir, source=data_source, verbose=False)
    print(f"Data: {used}: {len(train_digits):,} training and {len(test_digits):,} test "
          f"digits; training draws {args.batch_size} fresh sequences of {T} digits a step, "
          f"{args.steps_per_epoch} steps an epoch.")
    train = mnist.MNISTSequences(train_digits, T, args.batch_size, args.steps_per_epoch,
                                 seed=args.seed)
    test = mnist.sample_sequences(test_digits, T, args.test_sequences, seed=args.seed + 1)
    model = TreeMemory(memory_dim=d, sequence_length=T, output_activation="sigmoid",
                       sweeper_skip="linear")
    model.adapt(mnist.sample_sequences(train_digits, T, 1000, seed=args.seed + 2))
    print(f"Model: {model.count_params():,} parameters on {keras.backend.backend()}; "
          f"{model.num_levels} levels of 2-to-1 merges, the root keeps {d} numbers for "
          f"{T} digits of 28 x 28 pixels ({d // T} per digit). adapt() has set every "
          "level to PCA of its pairs, the start that training improves on.\n")
    train_local_then_end_to_end(
        model,
        train,
        local_epochs=args.local_epochs,
        end_to_end_epochs=args.end_to_end_epochs,
        checkpoint_dir=args.checkpoint_dir,
        verbose=2,
    )

    rows = level_errors(model, test)
    for row in rows:
        row["pca"], _ = reference_errors(train_digits, test, d // row["compression"])
    _, mean_image = reference_errors(train_digits, test, 1)
    print(f"\nReconstructing {len(test)} held-out sequences of {T} test digits from each "
          "level of the tree (MSE: mean squared error per pixel, pixels in [0, 1], ± its "
          "standard deviation over sequences; PSNR = 10 log10(1 / MSE)). PCA keeps the "
          "same numbers per digit as the level, each digit on its own.\n")
    print(results_table(rows, d, T))
    print(f"\nThe mean training image, for scale: MSE {mean_image['mse']:.4f}, "
          f"PSNR {mean_image['psnr']:.2f} dB.")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"config": vars(args), "source": used, "levels": rows,
                       "mean_image": mean_image, "backend": keras.backend.backend()},
                      f, indent=2)


if __name__ == "__main__":
    main()
