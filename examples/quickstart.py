"""Quickstart: train a small IMFN tree memory on MNIST digit sequences.

Trains `TreeMemory(memory_dim=64, sequence_length=8)` with the recommended
recipe (linear-skip sweepers started at PCA of training pairs, local losses,
then an end-to-end fine-tune) and prints the pixel
error of reconstructing held-out sequences from every level of the tree.

    python examples/quickstart.py                       # embedded sample
    python examples/quickstart.py --data-dir DIR        # MNIST IDX files
    KERAS_BACKEND=torch python examples/quickstart.py   # any backend
"""

import argparse
import json

import keras

from keras_imfn import TreeMemory
from keras_imfn.datasets import mnist
from experiments import cli
from experiments.evaluation import level_errors
from experiments.reporting import level_errors_table
from keras_imfn.training import train_local_then_end_to_end


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="directory of the MNIST IDX files")
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

    keras.utils.set_random_seed(args.seed)
    (train_digits, _), (test_digits, _), source = mnist.load_digits(args.data_dir)
    train = mnist.MNISTSequences(
        train_digits, args.sequence_length, args.batch_size, args.steps_per_epoch, seed=args.seed
    )
    test = mnist.sample_sequences(
        test_digits, args.sequence_length, args.test_sequences, seed=args.seed + 1
    )
    model = TreeMemory(
        memory_dim=args.memory_dim,
        sequence_length=args.sequence_length,
        output_activation="sigmoid",
        sweeper_skip="linear",
    )
    model.adapt(
        mnist.sample_sequences(train_digits, args.sequence_length, 1000, seed=args.seed + 2)
    )
    train_local_then_end_to_end(
        model,
        train,
        local_epochs=args.local_epochs,
        end_to_end_epochs=args.end_to_end_epochs,
        checkpoint_dir=args.checkpoint_dir,
        verbose=2,
    )
    rows = level_errors(model, test)
    mean_image = float(((train_digits.mean(0) / 255.0 - test) ** 2).mean())
    print(f"\nBackend {keras.backend.backend()}, {model.count_params():,} parameters, "
          f"{len(test)} test sequences of {args.sequence_length} digits ({source}).")
    print(level_errors_table(rows))
    print(f"Mean-image predictor: MSE {mean_image:.6f}")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"config": vars(args), "source": source, "levels": rows,
                       "mean_image_mse": mean_image}, f, indent=2)


if __name__ == "__main__":
    main()
