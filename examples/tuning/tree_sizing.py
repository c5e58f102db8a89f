"""Sizing the tree by its levels' work: validation MSE and SSIM against FLOPs.

At T=32 (d=256) and T=64 (d=512), 8 numbers per digit, every design trains
the same steps and batch end to end from its closed-form start (pixel MSE,
as the source reports it) and is scored on fixed sequences of held-out
training digits (the last 1,000; the test digits are never read). FLOPs per
training sequence are XLA's count of the jitted JAX train step, so run it on
JAX. Each finished (design, T) appends a JSON line to `--output`; a rerun
skips what is there. `--markdown` writes the table.

    KERAS_BACKEND=jax python examples/tuning/tree_sizing.py --data-dir ../shared/data/mnist \
        --steps 400 --output docs/tuning/tree_sizing.jsonl --markdown docs/tuning/tree_sizing.md

The designs, for a memory of d numbers (the paper shape is d=1024):

- `shared`: one sweeper for every level, width 2d, one block, the default
  leaf MLPs (width 2d): the `paper` preset before this table;
- `equal`: one sweeper per level, all of width 2d, one block, default
  leaves: the `cpu` and online presets;
- `levels`: widths that double up the tree from d/16 to at most d/2
  (`level_widths`), one block, leaf MLPs of width d/2;
- `levels-noleaf`: `levels` without the leaf loss in training (no second
  pass of the leaf decoder);
- `levels-wide`: widths from d/8 to at most d, leaf MLPs of width d;
- `levels-noleaf-fitted`: `levels-noleaf` started by `adapt` with its leaf
  MLPs fitted too (the whole tree a hierarchical PCA of the pixels), where
  the others fit the sweepers to the leaves of an untrained encoder, as the
  `cpu` preset does;
- `equal-fitted`: `equal` with that start, to tell the start's share of the
  gain from the sizes'.
"""

import argparse
import json
import math
import os
import sys
import time

# The experiment drivers live in examples/experiments, beside this folder.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras

from keras_imfn import level_widths
from keras_imfn.datasets import mnist
from experiments import mnist_sequence as experiment

HELD_OUT = 1000
SHAPES = {32: 256, 64: 512}


def designs(length, dim):
    levels = math.ceil(math.log2(length))
    narrow = dict(imfn_hidden_dim=level_widths(levels, dim // 16, dim // 2),
                  imfn_leaf_hidden_dim=dim // 2)
    return {
        "shared": dict(imfn_share_weights=True),
        "equal": dict(),
        "levels": narrow,
        "levels-noleaf": dict(narrow, imfn_leaf_loss_weight=0.0),
        "levels-wide": dict(imfn_hidden_dim=level_widths(levels, dim // 8, dim),
                            imfn_leaf_hidden_dim=dim),
        "levels-noleaf-fitted": dict(narrow, imfn_leaf_loss_weight=0.0, imfn_fit_leaves=True),
        "equal-fitted": dict(imfn_fit_leaves=True),
    }


def trial(config, train, val, steps, log):
    keras.utils.set_random_seed(0)
    model = experiment.build_model("imfn", config)
    data = mnist.MNISTSequences(train, config["sequence_length"], config["batch_size"], 100,
                                seed=0)
    started = time.time()
    model.adapt(fit_leaves=config.get("imfn_fit_leaves", False), x=mnist.sample_sequences(
        train, config["sequence_length"], experiment.INIT_SEQUENCES, seed=1))
    start = experiment.score(val, experiment.reconstruct_all(model, val))
    model.compile(optimizer=keras.optimizers.Adam(experiment.FINE_TUNE_LEARNING_RATE,
                                                  clipnorm=1.0))
    model.fit(data, epochs=steps // 100, verbose=0)
    seconds = time.time() - started
    scores = experiment.score(val, experiment.reconstruct_all(model, val))
    flops = None
    if keras.backend.backend() == "jax":
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
        from step_cost import jax_step_flops

        batch = data[0][0]  # (x,)
        flops = jax_step_flops(model, batch)["flops"] / len(batch)
    return dict(scores, start=start, params=model.count_params(),
                flops_per_sequence=flops, train_seconds=seconds)


def markdown(rows):
    header = ("| T | d | design | params | GFLOP / sequence | val MSE | val SSIM | "
              "MSE vs `equal` (same start) | start MSE | train s |\n" + "|---" * 10 + "|\n")
    lines = []
    order = list(designs(32, 256))
    rows = sorted(rows, key=lambda r: (r["length"], order.index(r["design"])))
    for row in rows:
        same_start = "equal-fitted" if row["design"].endswith("-fitted") else "equal"
        equal = next((r for r in rows if r["length"] == row["length"]
                      and r["design"] == same_start), None)
        ratio = f"{row['mse'] / equal['mse']:.3f}" if equal else "–"
        flops = row["flops_per_sequence"]
        flops = "–" if flops is None else f"{flops / 1e9:.3f}"
        lines.append(
            f"| {row['length']} | {row['memory_dim']} | {row['design']} | {row['params']:,} | "
            f"{flops} | {row['mse']:.5f} | {row['ssim']:.4f} | {ratio} | "
            f"{row['start']['mse']:.5f} | {row['train_seconds']:.0f} |")
    return header + "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="directory of MNIST IDX files")
    parser.add_argument("--output", default="tree_sizing.jsonl")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--lengths", type=int, nargs="+", default=sorted(SHAPES))
    parser.add_argument("--designs", nargs="+", help="default: all")
    parser.add_argument("--steps", type=int, default=600, help="training steps (x100)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--validation-sequences", type=int, default=200)
    parser.add_argument("--render-only", action="store_true",
                        help="train nothing: write --markdown from the lines in --output")
    args = parser.parse_args()
    if args.steps <= 0 or args.steps % 100:
        parser.error(f"--steps must be a positive multiple of 100; got {args.steps}")
    for length in args.lengths:
        if length not in SHAPES:
            parser.error(f"--lengths: {length} is not one of {sorted(SHAPES)}")
    (digits, _), _, _ = mnist.load_digits(args.data_dir, verbose=False)
    train, held_out = digits[:-HELD_OUT], digits[-HELD_OUT:]
    done = []
    if os.path.exists(args.output):
        with open(args.output) as f:
            done = [json.loads(line) for line in f]
    for length in [] if args.render_only else args.lengths:
        dim = SHAPES[length]
        val = mnist.sample_sequences(held_out, length, args.validation_sequences, seed=10_000)
        for name, options in designs(length, dim).items():
            if args.designs and name not in args.designs:
                continue
            if any(r["length"] == length and r["design"] == name and r["steps"] == args.steps
                   and r["batch_size"] == args.batch_size for r in done):
                continue
            config = dict(experiment.PRESETS["cpu"], sequence_length=length, memory_dim=dim,
                          batch_size=args.batch_size, ssim_loss_weight=0.0, **options)
            row = dict(length=length, memory_dim=dim, design=name, steps=args.steps,
                       batch_size=args.batch_size, backend=keras.backend.backend(),
                       options=options, **trial(config, train, val, args.steps, print))
            print(json.dumps(row), flush=True)
            done.append(row)
            with open(args.output, "a") as f:
                f.write(json.dumps(row) + "\n")
    if args.markdown:
        rows, seen = [], set()  # one row per (T, design): the first finished
        for r in done:
            key = (r["length"], r["design"])
            if r["steps"] == args.steps and r["batch_size"] == args.batch_size and key not in seen:
                rows.append(r)
                seen.add(key)
        with open(args.markdown, "w") as f:
            command = " ".join(arg for arg in sys.argv if arg != "--render-only")
            f.write(f"Command: `KERAS_BACKEND={keras.backend.backend()} python {command}` "
                    "(a rerun skips the designs it finds in "
                    "the output)\n\n"
                    f"{args.steps} steps of batch {args.batch_size} per design, one seed, "
                    f"{args.validation_sequences} validation sequences.\n\n{markdown(rows)}")


if __name__ == "__main__":
    main()
