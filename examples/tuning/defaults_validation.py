"""Which defaults train: `TreeMemory(memory_dim=64, sequence_length=8)`, Adam(1e-3),
6 epochs of batch 32 on 1,000 sequences, with and without `adapt`, per objective.

Validation only: sequences of the first 9,000 training digits train, 500 fixed
sequences of the last 1,000 score; the test digits are never read. One JSON
line per trial goes to `--output` (docs/tuning/defaults_validation.jsonl is
what chose the defaults, see docs/concepts.md "Defaults").

    python examples/tuning/defaults_validation.py --data-dir ../shared/data/mnist
"""

import sys
import os
import argparse
import json
import time

# The experiment drivers live in examples/experiments, beside this folder.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np

from keras_imfn import StopOnNonFiniteLoss
from keras_imfn import TreeMemory
from keras_imfn.datasets import mnist
from experiments import mnist_sequence as experiment

HELD_OUT = 1000


def trial(train, val, adapt, end_to_end, output_activation, seed):
    keras.utils.set_random_seed(seed)
    x = mnist.sample_sequences(train, 8, 1000, seed=seed)
    model = TreeMemory(memory_dim=64, sequence_length=8, end_to_end=end_to_end,
                       output_activation=output_activation)
    started = time.time()
    if adapt:
        model.adapt(x)
    start_mse = float(((np.clip(keras.ops.convert_to_numpy(model.predict(val, verbose=0)),
                                0, 1) - val) ** 2).mean())
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=6, batch_size=32, verbose=0, callbacks=[StopOnNonFiniteLoss()])
    restored = np.clip(keras.ops.convert_to_numpy(model.predict(val, verbose=0)), 0, 1)
    return dict(adapt=adapt, end_to_end=end_to_end, output_activation=output_activation,
                seed=seed, backend=keras.backend.backend(), start_mse=start_mse,
                mse=float(((restored - val) ** 2).mean()), seconds=time.time() - started)


def summarise(path):
    """A markdown table of the trials in the JSONL file at `path`."""
    with open(path) as lines:
        rows = [json.loads(line) for line in lines]
    references = [row["references"] for row in rows if "references" in row][-1]
    lines = [
        "Validation root MSE after `TreeMemory(memory_dim=64, sequence_length=8)`, "
        "Adam(1e-3), 6 epochs of batch 32 on 1,000 sequences "
        f"(equal-size PCA {references['pca']:.4f}, mean image {references['mean_image']:.4f}).",
        "",
        "| adapt | objective | output | start MSE | MSE after 6 epochs | backend | seed |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if "references" in row:
            continue
        objective = "end to end" if row["end_to_end"] else "local"
        lines.append(f"| {row['adapt']} | {objective} | {row['output_activation'] or 'linear'} "
                     f"| {row['start_mse']:.4f} | {row['mse']:.4f} | {row['backend']} "
                     f"| {row['seed']} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default="docs/tuning/defaults_validation.jsonl")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--summarise-only", action="store_true",
                        help="only rewrite the markdown table from --output")
    args = parser.parse_args()
    if args.summarise_only:
        write_summary(args.output)
        return
    (digits, _), _, source = mnist.load_digits(args.data_dir, verbose=False)
    train, held_out = digits[:-HELD_OUT], digits[-HELD_OUT:]
    val = mnist.sample_sequences(held_out, 8, 500, seed=123)
    references = experiment.reference_rows(train, val, dict(memory_dim=64, sequence_length=8))
    with open(args.output, "a") as out:
        out.write(json.dumps({"references": {k: v["mse"] for k, v in references.items()},
                              "source": source}) + "\n")
        for seed in range(args.seeds):
            for adapt in (True, False):
                for end_to_end in (False, True):
                    for activation in (None, "sigmoid"):
                        row = trial(train, val, adapt, end_to_end, activation, seed)
                        print(json.dumps(row), flush=True)
                        out.write(json.dumps(row) + "\n")
                        out.flush()
    write_summary(args.output)


def write_summary(path):
    with open(path.rsplit(".", 1)[0] + ".md", "w") as out:
        out.write(summarise(path))


if __name__ == "__main__":
    main()
