"""Validation trials for the MNIST tables' settings, on held-out training digits.

IMFN's trials take the `cpu` preset's shape; a baseline's take `--preset`'s
(`cpu`, or `paper-cpu`: the source's T=128, d=1024).

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
    # a baseline's learning rate at the source's shape (the paper-cpu table)
    python examples/tuning/mnist_validation.py transformer --preset paper-cpu \
        --data-dir ../shared/data/mnist --steps 300 --eval-every 100 \
        --validation-sequences 100 --learning-rate 3e-4 --warmup-steps 100 --tag p-t3e-4w100
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
    per_epoch = config["steps_per_epoch"]
    data = mnist.MNISTSequences(train, config["sequence_length"], config["batch_size"],
                                per_epoch, seed=0)
    for key, value in (("learning_rate", args.learning_rate),
                       ("warmup_steps", args.warmup_steps)):
        if value is not None:  # else the preset's, if it sets one
            config = dict(config, **{f"{args.model}_{key}": value})
    experiment.compile_model(model, data, config,
                             experiment.baseline_learning_rate(args.model, config))
    started = time.time()
    for done in range(args.eval_every, args.steps + 1, args.eval_every):
        model.fit(data, epochs=args.eval_every // per_epoch, verbose=0,
                  callbacks=[StopOnNonFiniteLoss()])
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
    parser.add_argument("--learning-rate", type=float,
                        help="default: a baseline's rate in --preset (else "
                             f"{experiment.LEARNING_RATE:g}); IMFN's local phase: "
                             f"{experiment.LEARNING_RATE:g}")
    parser.add_argument("--local-steps", type=int, default=600)
    parser.add_argument("--end-to-end-steps", type=int, default=2400)
    parser.add_argument("--fine-tune-learning-rate", type=float, default=3e-4)
    parser.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    parser.add_argument("--sweeper-skip", choices=["none", "linear"], default="linear")
    parser.add_argument("--preset", choices=["cpu", "paper-cpu"], default="cpu",
                        help="the table whose shape, batch and epochs the trial takes")
    parser.add_argument("--steps", type=int, default=3000, help="baselines' steps")
    parser.add_argument("--eval-every", type=int, default=500,
                        help="baselines' steps between scores (whole epochs)")
    parser.add_argument("--validation-sequences", type=int, default=300)
    parser.add_argument("--warmup-steps", type=int,
                        help="baselines' linear learning-rate warm-up (default: the preset's, "
                             "else none)")
    parser.add_argument("--output-activation", choices=["sigmoid", "linear"],
                        default="sigmoid")
    parser.add_argument("--model-option", action="append", default=[], type=model_option,
                        metavar="NAME=VALUE",
                        help="a model constructor argument, e.g. num_memory_tokens=16 "
                             "(quote strings: activation='relu')")
    parser.add_argument("--ssim-loss-weight", type=float, default=0.0,
                        help="weight of a 1 - SSIM term added to the pixel MSE "
                             "(the cpu preset's is in mnist_sequence.PRESETS)")
    parser.add_argument("--batch-size", type=int, help="default: the preset's")
    args = parser.parse_args()
    if args.model == "imfn" and args.preset != "cpu":
        parser.error("IMFN's trials take the cpu preset's shape; --preset is for baselines")
    if args.model == "imfn" and args.learning_rate is None:
        args.learning_rate = experiment.LEARNING_RATE
    config = dict(experiment.PRESETS[args.preset], ssim_loss_weight=args.ssim_loss_weight,
                  batch_size=args.batch_size or experiment.PRESETS[args.preset]["batch_size"])
    # Training runs whole epochs, a baseline is scored every `--eval-every` steps.
    per_epoch = config["steps_per_epoch"]
    if args.eval_every <= 0 or args.eval_every % per_epoch:
        parser.error(f"--eval-every must be a positive multiple of the {args.preset} preset's "
                     f"{per_epoch} steps per epoch; got {args.eval_every}")
    for name, step in (("local_steps", 100), ("end_to_end_steps", 100),
                       ("steps", args.eval_every)):
        if getattr(args, name) < 0 or getattr(args, name) % step:
            parser.error(f"--{name.replace('_', '-')} must be a multiple of {step} "
                         f"(>= 0); got {getattr(args, name)}")
    (digits, _), _, source = mnist.load_digits(args.data_dir, verbose=False)
    train, held_out = digits[:-HELD_OUT], digits[-HELD_OUT:]
    val = mnist.sample_sequences(held_out, config["sequence_length"],
                                 args.validation_sequences, seed=10_000)
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
