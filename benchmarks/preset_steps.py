"""Training steps per second of the `paper` presets, and the hours their full tables take.

For the MNIST experiment's IMFN (T=128, d=1024, batch 64: the `paper` preset's tree)
and the UCF-101 experiment's token-grid tree (16 frames of 64x64, d=128,
batch 16), built as `examples/mnist_sequence.py` and `examples/ucf101_video.py`
build them (untrained: a step's time does not depend on the weights), each
training phase is compiled and timed: `--repeats` `train_on_batch` calls
after `--warmup` untimed ones (the first compiles). From the steps per
second, the hours of each preset's full training:

* MNIST `paper`: `local_steps` + `end_to_end_steps`, times `seeds`, for IMFN
  (each baseline adds about as many steps again);
* UCF-101 `paper`: `local_epochs` + `end_to_end_epochs` epochs over every
  training window of split 1 (with `ClipStream`), mirrored too
  (`train_flips`): 9,537 training videos of about 182 frames (UCF-101:
  13,320 clips, 27 hours at 25 frames/s) give a window every `train_hop`
  frames. The window count is this estimate, not a count of the files.

`--dry`: the `smoke` presets, 2 timed steps: checks the script in seconds on
any machine. The device is whatever the backend picks (a GPU when it sees
one); the JSON records it.

    KERAS_BACKEND=jax python benchmarks/preset_steps.py
    KERAS_BACKEND=torch python benchmarks/preset_steps.py --dry
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

UCF101_SPLIT1_TRAIN_VIDEOS = 9537
UCF101_MEAN_FRAMES = 182


def ucf_windows(config):
    """Training windows of split 1, estimated (see the module docstring)."""
    span = config["frames"] * config["stride"]
    per_video = (UCF101_MEAN_FRAMES - span) // (config["train_hop"] or span) + 1
    return UCF101_SPLIT1_TRAIN_VIDEOS * per_video * (2 if config["train_flips"] else 1)


def mnist_case(preset):
    import numpy as np

    from keras_imfn.datasets import mnist
    from experiments import mnist_sequence

    config = mnist_sequence.PRESETS[preset]
    model = mnist_sequence.build_model("imfn", config)
    (digits, _), _, _ = mnist.load_digits(source="embedded", verbose=False)
    x = mnist.sample_sequences(digits, config["sequence_length"], config["batch_size"], seed=0)
    steps = {"local": config["local_steps"] * config["seeds"],
             "end_to_end": config["end_to_end_steps"] * config["seeds"]}
    return model, np.asarray(x, "float32"), steps, mnist_sequence.structure_loss(config)


def ucf_case(preset):
    import numpy as np

    from experiments import ucf101_video
    from experiments import video_tree

    config = ucf101_video.PRESETS[preset]
    rng = np.random.default_rng(0)
    shape = (config["frames"], config["size"], config["size"], 3)
    clips = rng.random((max(8, config["batch_size"]),) + shape, dtype=np.float32)
    model = video_tree.build_tree(config, clips)
    per_epoch = math.ceil(ucf_windows(config) / config["batch_size"])
    steps = {"local": config["local_epochs"] * per_epoch,
             "end_to_end": config["end_to_end_epochs"] * per_epoch}
    return model, clips[: config["batch_size"]], steps, {}


def time_phases(model, x, steps, end_to_end_loss, warmup, repeats):
    import keras

    from keras_imfn import FusedAdam

    rows = {}
    for phase in ("local", "end_to_end"):
        model.end_to_end = phase == "end_to_end"
        options = end_to_end_loss if model.end_to_end else {}
        model.compile(optimizer=FusedAdam(1e-4), **options)  # the drivers' optimizer
        y = x if "loss" in options else None

        def step():
            keras.ops.convert_to_numpy(model.train_on_batch(x, y, return_dict=True)["loss"])

        for _ in range(warmup):
            step()
        seconds, times = _common.median_time(step, repeats)
        rows[phase] = {"step_seconds": seconds, "times": times, "steps_per_second": 1 / seconds,
                       "steps": steps[phase], "hours": steps[phase] * seconds / 3600}
    return rows


def device_name():
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return str(jax.devices()[0])
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0].name if gpus else "cpu"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", help="Keras backend (default: $KERAS_BACKEND, else jax)")
    parser.add_argument("--dry", action="store_true", help="the smoke presets, 2 steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", help="JSON path (default benchmarks/results/)")
    args = parser.parse_args()
    backend = _common.select_backend(args.backend)
    preset = "smoke" if args.dry else "paper"
    repeats = 2 if args.dry else args.repeats
    rows = {}
    for name, case in (("mnist", mnist_case), ("ucf101", ucf_case)):
        model, x, steps, loss = case(preset)
        rows[name] = {"params": model.count_params(), "batch": len(x),
                      "phases": time_phases(model, x, steps, loss, args.warmup, repeats)}
        del model
    output = args.output or _common.default_output(f"preset_steps_{preset}_{backend}.json")
    from experiments import ucf101_video

    result = {"config": {"preset": preset, "warmup": args.warmup, "repeats": repeats,
                         "output": output,
                         "ucf101_windows_estimate": ucf_windows(ucf101_video.PRESETS[preset])},
              "command": _common.command_line(), "device": device_name(),
              "environment": _common.environment(), "rows": rows}
    table = _common.markdown_table(
        ["experiment", "phase", "params", "batch", "step (s)", "steps/s", "steps", "hours"],
        [[name, phase, f"{row['params']:,}", row["batch"], _common.fmt(p["step_seconds"]),
          _common.fmt(p["steps_per_second"]), f"{p['steps']:,}", _common.fmt(p["hours"])]
         for name, row in rows.items() for phase, p in row["phases"].items()],
    )
    total = sum(p["hours"] for row in rows.values() for p in row["phases"].values())
    markdown = (f"`{result['command']}` on {result['device']} ({backend}), `{preset}` presets\n\n"
                f"{table}\n\nBoth tables' IMFN training: {_common.fmt(total)} hours at these "
                "rates (MNIST: IMFN only, every seed).\n")
    _common.write_outputs(output, result, markdown)


if __name__ == "__main__":
    main()
