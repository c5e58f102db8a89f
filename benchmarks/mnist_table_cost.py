"""What the MNIST table costs: one training step of every model, side by side.

`examples/mnist_sequence.py` trains IMFN and the Transformer, Mamba and GRU
compressors with the same number of steps and batch size, each baseline at
least IMFN's parameter count. So the table's training time is
`seeds * steps * (sum of the four step times)`, and the step times are set
by the models' sizes, not by the number of steps. This script builds the
four models as a preset builds them (`build_model`, `compile_options`: Adam
plus the preset's SSIM term; IMFN in its end-to-end phase, which is all of
the `cpu` preset's steps), times `train_on_batch` on one batch of real
digits, the four models interleaved after warm-up, and projects the
preset's training time from the medians: the floor of what the table
costs on this machine (evaluation, PCA starts and compilation not counted).

Usage::

    KERAS_BACKEND=jax python benchmarks/mnist_table_cost.py
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("jax", "tensorflow", "torch"),
                   help="Keras backend (default: $KERAS_BACKEND, else jax)")
    p.add_argument("--preset", default="cpu", help="a preset of examples/mnist_sequence.py")
    p.add_argument("--batch-size", type=int, help="override the preset's batch size")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per model")
    p.add_argument("--repeats", type=int, default=15, help="timed steps per model")
    p.add_argument("--budget-seconds", type=float, default=3600.0,
                   help="the time the table should fit in (the issue's hour)")
    p.add_argument("--output", default=None, help="JSON path (default benchmarks/results/)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    backend = _common.select_backend(args.backend)
    import keras
    import numpy as np

    from keras_imfn.datasets import mnist
    from experiments import mnist_sequence as experiment

    if args.preset not in experiment.PRESETS:
        raise SystemExit(f"--preset must be one of {sorted(experiment.PRESETS)}")
    config = dict(experiment.PRESETS[args.preset])
    if args.batch_size:
        config["batch_size"] = args.batch_size
    digits = mnist.load_digits(source="embedded", verbose=False)[0][0]
    x = mnist.sample_sequences(digits, config["sequence_length"], config["batch_size"], seed=0)
    models = {}
    for name in experiment.MODELS:
        keras.utils.set_random_seed(0)
        model = experiment.build_model(name, config)
        if name == "imfn":
            model.end_to_end = True
        options = experiment.compile_options(config, experiment.LEARNING_RATE)
        model.compile(**options)
        # With the SSIM term the data are (x, x), see `compile_model`.
        batch = (x, x) if "loss" in options else (x,)
        models[name] = (model, batch)

    def step(name):
        model, batch = models[name]
        float(np.asarray(model.train_on_batch(*batch)).ravel()[0])

    times = _common.interleaved_times(step, list(models), args.warmup, args.repeats)
    steps = config["local_steps"] + config["end_to_end_steps"]
    median = {name: float(np.median(values)) for name, values in times.items()}
    projected = {name: median[name] * steps * config["seeds"] for name in models}
    total = sum(projected.values())
    # The longest `steps` all four models could train for within the budget.
    affordable = int(args.budget_seconds / (config["seeds"] * sum(median.values())))
    summary = dict(
        median_step_seconds=median,
        params={name: int(models[name][0].count_params()) for name in models},
        projected_training_seconds=projected,
        projected_total_seconds=total,
        budget_seconds=args.budget_seconds,
        total_over_budget=total / args.budget_seconds,
        steps_within_budget=affordable,
    )
    result = dict(config=dict(vars(args), backend=backend, preset_config=config, steps=steps),
                  command=_common.command_line(), environment=_common.environment(),
                  times=times, summary=summary)
    rows = [[name, f"{summary['params'][name]:,}", _common.fmt(median[name] * 1000),
             f"{projected[name]:,.0f}", f"{projected[name] / total:.0%}"] for name in models]
    rows.append(["all four", "", _common.fmt(sum(median.values()) * 1000), f"{total:,.0f}",
                 "100%"])
    markdown = (
        f"## MNIST table training cost, `{args.preset}` preset, {backend}\n\n"
        f"One `train_on_batch` per model (batch {config['batch_size']}, "
        f"T={config['sequence_length']}, d={config['memory_dim']}), median of "
        f"{args.repeats} interleaved calls after {args.warmup} warm-up calls each; projected "
        f"over {steps:,} steps x {config['seeds']} seeds.\n\n"
        + _common.markdown_table(
            ["model", "params", "step (ms)", "projected training (s)", "share"], rows)
        + f"\n\nProjected: {total:,.0f} s, {summary['total_over_budget']:.2f} x the budget of "
        f"{args.budget_seconds:,.0f} s; within the budget all four models could train "
        f"{affordable:,} steps each.\n"
    )
    batch = f"_batch{args.batch_size}" if args.batch_size else ""
    name = f"mnist_table_cost_{args.preset}{batch}_{backend}.json"
    _common.write_outputs(args.output or _common.default_output(name), result, markdown)


if __name__ == "__main__":
    main()
