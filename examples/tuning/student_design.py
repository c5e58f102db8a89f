"""Choosing the constant-cost student on validation: its path map's rank.

A trained online teacher (a `DistillationTrainer` preset's, or an online
run directory's teacher of length T) is distilled into students of a step of
constant cost, each the same steps and batch as the online table's students
(`examples/experiments/online_memory.py`), and each is scored on the
validation sequences of the online table (held-out training digits; the test
digits are never read): the teacher's validation MSE, the student's, and
their ratio. Each finished (T, design) appends a JSON line to `--output`; a
rerun skips what is there. `--markdown` writes the table.

    KERAS_BACKEND=jax python examples/tuning/student_design.py \\
        --teacher-preset presets/mnist_online_t16_d128 --data-dir ../shared/data/mnist \\
        --steps 400 --output docs/tuning/student_design.jsonl \\
        --markdown docs/tuning/student_design.md

The designs (`--designs`): `mlp` (the MLP update alone) and `path-map<k>+g`
(the MLP update plus a rank-k path map per leaf position), each optionally
with `-h<width>` (the MLP's width; default 2d) and `-b<blocks>` (its
residual blocks; default 2): see `design_options`.
"""

import argparse
import json
import os
import re
import sys
import time

# The experiment drivers live in examples/experiments, beside this folder.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np

from keras_imfn import DataEpochSync
from keras_imfn import DistillationTrainer
from keras_imfn import StopOnNonFiniteLoss
from keras_imfn import StopOnStalledTraining
from keras_imfn.datasets import mnist
from experiments import mnist_sequence
from experiments import online_memory as experiment
from experiments.reporting import markdown_table


DESIGN = re.compile(r"(?:mlp|path-map(?P<rank>\d+)\+g)(?:-h(?P<hidden>\d+))?"
                    r"(?:-b(?P<blocks>\d+))?(?P<fit>-fit)?")


def design_options(design):
    """The student's arguments of a design name: `mlp` or `path-map<k>+g` (a
    path map of rank k), then optionally `-h<width>` (the MLP's width,
    default 2d), `-b<blocks>` (its residual blocks, default 2) and `-fit` (the
    path map started in closed form, `DistillationTrainer.adapt`, on
    `experiment.ADAPT_SEQUENCES` training sequences)."""
    match = DESIGN.fullmatch(design)
    if match is None:
        raise ValueError(f"{design!r}: expected mlp or path-map<k>+g, each optionally "
                         "followed by -h<width> and -b<blocks>, e.g. path-map16+g-h128")
    options = {"path_rank": int(match["rank"] or 0)}
    if match["hidden"]:
        options["hidden_dim"] = int(match["hidden"])
    if match["blocks"]:
        options["num_blocks"] = int(match["blocks"])
    if match["fit"]:
        if not options["path_rank"]:
            raise ValueError(f"{design!r}: -fit starts a path map; mlp has none")
        options["adapt"] = True
    return options


def teacher_argument(args):
    """The command's teacher argument(s), as a row records them (a run
    directory, outside the repository, as RUN_DIR)."""
    if args.teacher_preset:
        return f"--teacher-preset {args.teacher_preset}"
    return f"--online-run-dir RUN_DIR --length {args.length} --online-preset {args.online_preset}"


def teacher_label(argument):
    """The table's name of a row's teacher: a preset's directory, or the online run's."""
    words = argument.split()
    if words[0] == "--teacher-preset":
        return words[1]
    return f"online_memory.py --preset {words[-1]}, its T={words[3]} teacher"


def load_teacher(args):
    if args.teacher_preset:
        return DistillationTrainer.from_preset(args.teacher_preset).teacher
    config = experiment.PRESETS[args.online_preset]
    teacher = mnist_sequence.build_model("imfn", experiment.teacher_config(config, args.length))
    teacher.load_weights(os.path.join(args.online_run_dir, f"T{args.length}",
                                      f"T{args.length}-teacher.weights.h5"))
    return teacher


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    teacher = parser.add_mutually_exclusive_group(required=True)
    teacher.add_argument("--teacher-preset", help="a DistillationTrainer preset directory")
    teacher.add_argument("--online-run-dir", help="an online_memory.py run directory")
    parser.add_argument("--length", type=int, help="with --online-run-dir: its teacher's T")
    parser.add_argument("--online-preset", default="cpu", help="that run's --preset")
    parser.add_argument("--data-dir", help="directory of the MNIST IDX files")
    parser.add_argument("--designs", default="mlp,path-map8+g,path-map16+g,path-map32+g")
    parser.add_argument("--steps", type=int, default=400,
                        help="training steps (0: a -fit design's closed-form start alone)")
    parser.add_argument("--output", required=True, help="JSON lines, appended")
    parser.add_argument("--markdown", help="the table of --output, written here")
    args = parser.parse_args()
    if args.online_run_dir and not args.length:
        parser.error("--online-run-dir needs --length, the T of its teacher")
    designs = args.designs.split(",")
    for design in designs:
        try:
            design_options(design)
        except ValueError as error:
            parser.error(str(error))
    config = experiment.PRESETS["cpu"]
    teacher = load_teacher(args)
    length = teacher.sequence_length
    (train_digits, _), _, source = mnist.load_digits(args.data_dir, verbose=False)
    train_digits, validation_digits = mnist.split_validation(train_digits, experiment.HELD_OUT)
    validation = mnist.sample_sequences(validation_digits, length, config["test_sequences"],
                                        seed=20_000)
    done = set()
    if os.path.exists(args.output):
        with open(args.output) as f:
            done = {(r["length"], r["design"], r["steps"], r["encoder"])
                    for r in map(json.loads, f)}
    teacher_mse = None
    for design in designs:
        options = design_options(design)
        if (length, design, args.steps, "trainable") in done:
            continue
        if teacher_mse is None:
            memories = experiment.final_memories(teacher.trajectory, validation)
            teacher_mse = experiment.score_memories(teacher, memories, validation)[0]["mse"]
        keras.utils.set_random_seed(0)
        adapt = options.pop("adapt", False)
        trainer = experiment.make_trainer(teacher, "mlp", **options)
        experiment.compile_trainer(trainer)
        started = time.perf_counter()
        if adapt:
            experiment.adapt_student(trainer, train_digits, seed=0)
        if args.steps:
            per_epoch = min(config["steps_per_epoch"], args.steps)
            data = mnist.MNISTSequences(train_digits, length, config["batch_size"], per_epoch,
                                        seed=0)
            trainer.fit(data, epochs=-(-args.steps // per_epoch), verbose=0,
                        callbacks=[DataEpochSync(data), StopOnNonFiniteLoss(),
                                   StopOnStalledTraining()])
        seconds = time.perf_counter() - started
        online = keras.layers.RNN(trainer.student, return_sequences=True)
        mse = experiment.score_memories(
            teacher, experiment.final_memories(online, validation), validation)[0]["mse"]
        row = {"length": length, "design": design, **options, "adapt": adapt,
               "steps": args.steps,
               "validation_mse": mse, "teacher_validation_mse": teacher_mse,
               "ratio": mse / teacher_mse, "train_seconds": seconds,
               "student_params": trainer.student.count_params(),
               "backend": keras.backend.backend(), "teacher": teacher_argument(args),
               # Before IMFNStudent.from_teacher made it trainable, a student of
               # a preset's (frozen) teacher kept its copied encoder frozen.
               "encoder": "trainable" if trainer.student.encoder.trainable else "frozen",
               "source": source}
        print(json.dumps(row), flush=True)
        with open(args.output, "a") as f:
            f.write(json.dumps(row) + "\n")
    if args.markdown:
        with open(args.output) as f:
            rows = [json.loads(line) for line in f]
        table = markdown_table(
            ["T", "teacher", "design", "encoder", "steps", "validation MSE", "teacher",
             "/ teacher", "params", "train s"],
            [[r["length"], teacher_label(r["teacher"]), r["design"], r["encoder"], r["steps"],
              f"{r['validation_mse']:.5f}", f"{r['teacher_validation_mse']:.5f}",
              f"{r['ratio']:.3f}", f"{r['student_params']:,}", f"{r['train_seconds']:.0f}"]
             for r in rows])
        teachers = sorted({r["teacher"] for r in rows})
        with open(args.markdown, "w") as f:
            f.write("Each row: `python examples/tuning/student_design.py <teacher> --data-dir "
                    "<MNIST IDX files> --designs <design> --steps <steps> --output "
                    f"{args.output}` on {', '.join(sorted({r['backend'] for r in rows}))}, "
                    f"the teachers: {'; '.join(f'`{t}`' for t in teachers)}. Ratio: the "
                    "student's validation MSE over its teacher's.\n\n" + table + "\n")


if __name__ == "__main__":
    main()
