"""Mamba training step: sequential vs parallel selective scan.

`MambaBlock(scan="sequential")` (the default) runs the selective scan as a
loop over time that forms each step's `(B, inner, N)` decay and drive on the
fly; `scan="parallel"` builds them for all `L` steps at once, `(B, L, inner,
N)`, and combines them in `ceil(log2 L)` rounds. Both compute the same
numbers. This script times one training step (`train_on_batch`: forward,
gradient, Adam update) of a `MambaCompressor` built as the MNIST `cpu`
preset builds it (T=16 digits, d=128, width 224 to match IMFN's parameter
count, batch 64) with each scan, the two models holding the same weights,
interleaved after warm-up; the medians are compared. It also checks that
both reconstruct a batch alike. `--sequence-length 128 --batch-size 8` gives
the long-sequence case.

Usage::

    KERAS_BACKEND=jax python benchmarks/mamba_scan.py
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

SCANS = ("parallel", "sequential")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("jax", "tensorflow", "torch"),
                   help="Keras backend (default: $KERAS_BACKEND, else jax)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sequence-length", type=int, default=16)
    p.add_argument("--memory-dim", type=int, default=128)
    p.add_argument("--model-dim", type=int, default=224)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    p.add_argument("--repeats", type=int, default=10, help="timed steps per variant")
    p.add_argument("--output", default=None, help="JSON path (default benchmarks/results/)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    backend = _common.select_backend(args.backend)
    import keras
    import numpy as np

    from keras_imfn.datasets import mnist
    from keras_imfn.baselines import MambaCompressor

    digits = mnist.load_digits(source="embedded", verbose=False)[0][0]
    x = mnist.sample_sequences(digits, args.sequence_length, args.batch_size, seed=0)
    models = {}
    for scan in SCANS:
        keras.utils.set_random_seed(0)
        model = MambaCompressor(memory_dim=args.memory_dim, sequence_length=args.sequence_length,
                                model_dim=args.model_dim, scan=scan,
                                output_activation="sigmoid")
        model(x[:1])
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        models[scan] = model
    models["sequential"].set_weights(models["parallel"].get_weights())
    restored = {scan: keras.ops.convert_to_numpy(model(x)) for scan, model in models.items()}
    gap = float(np.max(np.abs(restored["parallel"] - restored["sequential"])))

    def step(scan):
        float(np.asarray(models[scan].train_on_batch(x)).ravel()[0])

    times = _common.interleaved_times(step, SCANS, args.warmup, args.repeats)
    median = {scan: float(np.median(values)) for scan, values in times.items()}
    summary = dict(median_seconds=median, speed_up=median["parallel"] / median["sequential"],
                   max_output_difference=gap, params=models["sequential"].count_params())
    result = dict(config=dict(vars(args), backend=backend), command=_common.command_line(),
                  environment=_common.environment(), times=times, summary=summary)
    markdown = (
        f"## Mamba training step, {backend}: T={args.sequence_length}, d={args.memory_dim}, "
        f"width {args.model_dim}, batch {args.batch_size}\n\n"
        f"`MambaCompressor` with {summary['params']:,} parameters; median of {args.repeats} "
        f"interleaved `train_on_batch` calls after {args.warmup} warm-up calls each.\n\n"
        + _common.markdown_table(
            ["parallel scan (s)", "sequential scan (s)", "speed-up", "max output difference"],
            [[_common.fmt(median["parallel"]), _common.fmt(median["sequential"]),
              _common.fmt(summary["speed_up"]), f"{gap:.1e}"]],
        )
    )
    name = f"mamba_scan_{backend}_t{args.sequence_length}.json"
    _common.write_outputs(args.output or _common.default_output(name), result, markdown)


if __name__ == "__main__":
    main()
