"""Teacher vs student: how closely the online IMFN student follows the tree.

For each sequence length T, trains a `TreeMemory` teacher on MNIST digit
sequences (local, then end to end), distils it into an `IMFNStudent` with a
`DistillationTrainer` under each distillation variant, and prints the pixel
MSE of the teacher's root and of the student's final memory (both decoded by
the teacher's decoder) on held-out sequences, with their ratio.

    python examples/distillation_report.py --data-dir ../shared/data/mnist \
        --output docs/distillation.json
"""

import argparse
import json
import os
import sys
import time

import keras

from keras_imfn import DistillationTrainer
from keras_imfn import IMFNStudent
from keras_imfn import StopOnNonFiniteLoss
from keras_imfn import TreeMemory
from keras_imfn.datasets import mnist
from experiments import cli
from experiments.reporting import markdown_table
from experiments.evaluation import student_vs_teacher
from keras_imfn.training import train_local_then_end_to_end

VARIANTS = {
    # name: DistillationTrainer loss arguments, each spelled out (the report
    # chose the last, since then the trainer's defaults)
    "uniform": dict(step_weighting="uniform", pixel_loss_weight=0.0, one_step_loss_weight=0.0),
    "linear+pixel": dict(step_weighting="linear", pixel_loss_weight=1.0,
                         one_step_loss_weight=0.0),
    "linear+pixel+one-step": dict(step_weighting="linear", pixel_loss_weight=1.0,
                                  one_step_loss_weight=1.0),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="directory of the MNIST IDX files")
    parser.add_argument("--lengths", type=cli.comma_list(cli.positive_int), default="8,16,32,64")
    parser.add_argument("--memory-dim", type=cli.positive_int, default=128)
    parser.add_argument("--sweeper-skip", choices=["none", "mean", "linear"], default="none",
                        help="the teacher's sweepers; 'linear' starts them at PCA of the "
                             "training pairs (TreeMemory.adapt, leaves untrained)")
    parser.add_argument("--variants", type=cli.comma_list(choices=VARIANTS),
                        default=",".join(VARIANTS))
    parser.add_argument("--teacher-epochs", type=cli.non_negative_int, default=6)
    parser.add_argument("--fine-tune-epochs", type=cli.non_negative_int, default=3)
    parser.add_argument("--student-epochs", type=cli.positive_int, default=6)
    parser.add_argument("--steps-per-epoch", type=cli.positive_int, default=40)
    parser.add_argument("--batch-size", type=cli.positive_int, default=32)
    parser.add_argument("--test-sequences", type=cli.positive_int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=cli.json_path,
                        help="write the results as JSON here (and markdown beside it)")
    args = parser.parse_args()

    (train_digits, _), (test_digits, _), source = mnist.load_digits(args.data_dir)
    variants = args.variants
    results = []
    for length in args.lengths:
        keras.utils.set_random_seed(args.seed)
        train = mnist.MNISTSequences(
            train_digits, length, args.batch_size, args.steps_per_epoch, seed=args.seed
        )
        test = mnist.sample_sequences(test_digits, length, args.test_sequences, seed=args.seed + 1)
        teacher = TreeMemory(args.memory_dim, length, output_activation="sigmoid",
                             sweeper_skip=args.sweeper_skip)
        started = time.time()
        if args.sweeper_skip == "linear":
            teacher.adapt(fit_leaves=False, x=
                mnist.sample_sequences(train_digits, length, 1000, seed=args.seed + 2)
            )
        train_local_then_end_to_end(
            teacher, train, args.teacher_epochs, args.fine_tune_epochs, verbose=0
        )
        teacher_seconds = time.time() - started
        for variant in variants:
            keras.utils.set_random_seed(args.seed)
            # The report's student: the MLP update (the default student came later).
            student = IMFNStudent.from_teacher(teacher, inverse_path=False)
            trainer = DistillationTrainer(teacher, student=student, **VARIANTS[variant])
            trainer.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0))
            started = time.time()
            trainer.fit(train, epochs=args.student_epochs, verbose=0,
                        callbacks=[StopOnNonFiniteLoss()])
            row = {"T": length, "variant": variant, "teacher_seconds": teacher_seconds,
                   "student_seconds": time.time() - started}
            row.update(student_vs_teacher(trainer, test))
            results.append(row)
            print(f"T={length:3d} {variant:14s} teacher {row['teacher_mse']:.5f} "
                  f"student {row['student_mse']:.5f} ratio {row['ratio']:.3f}", flush=True)

    table = markdown_table(
        ["T", "variant", "teacher MSE", "student MSE", "student / teacher"],
        [[row["T"], row["variant"], f"{row['teacher_mse']:.5f}", f"{row['student_mse']:.5f}",
          f"{row['ratio']:.3f}"] for row in results])
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"command": " ".join(sys.argv), "backend": keras.backend.backend(),
                       "source": source, "config": vars(args), "results": results}, f, indent=2)
        with open(os.path.splitext(args.output)[0] + ".md", "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
