"""Validation trials for the MNIST `cpu` preset, on held-out training digits.

The test digits are never read: the first 7,000 training digits train, 300
fixed sequences of the last 1,000 score (one seed). Each trial appends one
JSON line per evaluation to `--output`. What the committed table's choices
rest on (docs/journal.md, MNIST section; raw lines in docs/tuning/).

    # IMFN: a local phase, then end to end, from the PCA start
    python examples/tuning/mnist_validation.py imfn --data-dir ../shared/data/mnist \
        --local-steps 0 --end-to-end-steps 3000 --fine-tune-learning-rate 6e-4 --tag H
    # a baseline, scored every 500 steps, with a linear output
    python examples/tuning/mnist_validation.py gru --data-dir ../shared/data/mnist \
        --steps 3000 --output-activation linear --tag g4lin
"""

import sys
import os
import argparse
import ast
import json
import time

# The experiment drivers live in examples/experiments, beside this folder.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras

from keras_imfn import StopOnNonFiniteLoss
from keras_imfn.datasets import mnist
from experiments import mnist_sequence as experiment

HELD_OUT = 1000


def imfn_trial(args, train, val, config, log):
    model = experiment.build_model("imfn", config, sweeper_skip=args.sweeper_skip,
                                   **dict(args.model_option))
    data = mnist.MNISTSequences(train, config["sequence_length"], config["batch_size"], 100,
                                seed=0)
    started = time.time()
    if args.sweeper_skip == "linear":
        model.adapt(fit_leaves=False, x=mnist.sample_sequences(
            train, config["sequence_length"], experiment.INIT_SEQUENCES, seed=1))
    phases = (("local", args.local_steps, args.learning_rate, False),
              ("end_to_end", args.end_to_end_steps, args.fine_tune_learning_rate, True))
    for phase, steps, rate, end_to_end in phases:
        if steps:
            if args.schedule == "cosine" and end_to_end:
                rate = keras.optimizers.schedules.CosineDecay(rate, steps, alpha=0.0)
            model.end_to_end = end_to_end
            experiment.compile_model(model, data, config, rate, structure=end_to_end)
            model.fit(data, epochs=steps // 100, verbose=0, callbacks=[StopOnNonFiniteLoss()])
        log(dict(phase=phase, steps=steps, seconds=time.time() - started,
                 **experiment.score(val, experiment.reconstruct_all(model, val))))


def baseline_trial(args, train, val, config, log):
    activation = None if args.output_activation == "linear" else args.output_activation
    model = experiment.build_model(args.model, config, output_activation=activation,
                                   **dict(args.model_option))
    data = mnist.MNISTSequences(train, config["sequence_length"], config["batch_size"], 100,
                                seed=0)
    rate = args.learning_rate
    if args.warmup_steps:
        # A linear warm-up from 0, then constant (alpha=1: no decay).
        rate = keras.optimizers.schedules.CosineDecay(
            0.0, 1, alpha=1.0, warmup_target=rate, warmup_steps=args.warmup_steps)
    experiment.compile_model(model, data, config, rate)
    started = time.time()
    for done in range(500, args.steps + 1, 500):
        model.fit(data, epochs=5, verbose=0, callbacks=[StopOnNonFiniteLoss()])
        log(dict(params=model.count_params(), step=done,
                 seconds=time.time() - started,
                 **experiment.score(val, experiment.reconstruct_all(model, val))))


def model_option(text):
    """`NAME=VALUE` -> (NAME, VALUE), VALUE read as a Python literal."""
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(
            f"VALUE of {text!r} is not a Python literal (quote strings: name='value')")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=experiment.MODELS)
    parser.add_argument("--data-dir", required=True, help="directory of MNIST IDX files")
    parser.add_argument("--tag", required=True, help="name of this trial in the output")
    parser.add_argument("--output", default="mnist_validation.jsonl")
    parser.add_argument("--learning-rate", type=float, default=experiment.LEARNING_RATE)
    parser.add_argument("--local-steps", type=int, default=600)
    parser.add_argument("--end-to-end-steps", type=int, default=2400)
    parser.add_argument("--fine-tune-learning-rate", type=float, default=3e-4)
    parser.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    parser.add_argument("--sweeper-skip", choices=["none", "linear"], default="linear")
    parser.add_argument("--steps", type=int, default=3000, help="baselines' steps")
    parser.add_argument("--warmup-steps", type=int, default=0,
                        help="baselines' linear learning-rate warm-up")
    parser.add_argument("--output-activation", choices=["sigmoid", "linear"],
                        default="sigmoid")
    parser.add_argument("--model-option", action="append", default=[], type=model_option,
                        metavar="NAME=VALUE",
                        help="a model constructor argument, e.g. num_memory_tokens=16 "
                             "(quote strings: activation='relu')")
    parser.add_argument("--ssim-loss-weight", type=float, default=0.0,
                        help="weight of a 1 - SSIM term added to the pixel MSE "
                             "(the cpu preset's is in mnist_sequence.PRESETS)")
    parser.add_argument("--batch-size", type=int, default=experiment.PRESETS["cpu"]["batch_size"])
    args = parser.parse_args()
    # Training runs whole epochs of 100 steps, a baseline is scored every 500.
    for name, step in (("local_steps", 100), ("end_to_end_steps", 100), ("steps", 500)):
        if getattr(args, name) < 0 or getattr(args, name) % step:
            parser.error(f"--{name.replace('_', '-')} must be a multiple of {step} "
                         f"(>= 0); got {getattr(args, name)}")
    config = dict(experiment.PRESETS["cpu"], ssim_loss_weight=args.ssim_loss_weight,
                  batch_size=args.batch_size)
    (digits, _), _, source = mnist.load_digits(args.data_dir, verbose=False)
    train, held_out = digits[:-HELD_OUT], digits[-HELD_OUT:]
    val = mnist.sample_sequences(held_out, config["sequence_length"], 300, seed=10_000)
    keras.utils.set_random_seed(0)

    def log(entry):
        entry = dict(tag=args.tag, model=args.model, settings=vars(args), **entry)
        print(json.dumps(entry), flush=True)
        with open(args.output, "a") as f:
            f.write(json.dumps(entry) + "\n")

    trial = imfn_trial if args.model == "imfn" else baseline_trial
    trial(args, train, val, config, log)


if __name__ == "__main__":
    main()
