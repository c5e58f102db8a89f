"""Where PyTorch's training step of the MNIST tree spends its time (issue #42).

Builds the MNIST experiment's IMFN at ``--preset`` (``paper-cpu``: T=128,
d=1024, the tree sized by its levels' work), compiles it end to end with
``keras.optimizers.Adam`` (Keras' own PyTorch Adam; the drivers now use
``keras_imfn.FusedAdam``), and on the PyTorch backend:

* times ``train_on_batch`` on a batch of ``--batch-size`` real MNIST sequences
  (``--repeats`` calls after one untimed call);
* times the optimizer's update alone (``optimizer.apply`` of gradients of the
  trained variables' shapes), the part of the step after the backward pass;
* times PyTorch's fused Adam kernel (``torch._fused_adam_``, one pass over
  each variable) on the same number of parameters, for scale: Keras' PyTorch
  Adam runs about ten ``torch._foreach_*`` passes, each reading and writing
  every parameter, where JAX's compiled step fuses them;
* times ``train_on_batch`` of the same tree compiled with
  ``keras_imfn.FusedAdam``, which makes the update that one kernel call;
* profiles two steps with ``torch.profiler`` and keeps the ops with the most
  self CPU time.

Usage::

    python benchmarks/torch_step_profile.py            # KERAS_BACKEND is set to torch
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="paper-cpu", help="MNIST experiment preset")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--top", type=int, default=12, help="ops kept from the profile")
    p.add_argument("--output", default=_common.default_output("torch_step_profile.json"))
    return p.parse_args(argv)


def seconds(fn, repeats):
    fn()
    return statistics.median(_common.median_time(fn, 1)[0] for _ in range(repeats))


def main(argv=None):
    args = parse_args(argv)
    _common.running_or_select_backend("torch")
    import keras
    import numpy as np
    import torch
    from torch.profiler import profile
    from torch.profiler import ProfilerActivity

    from keras_imfn import FusedAdam
    from keras_imfn.datasets import mnist
    from experiments import mnist_sequence

    config = dict(mnist_sequence.PRESETS[args.preset])
    keras.utils.set_random_seed(0)
    model = mnist_sequence.build_model("imfn", config)
    (digits, _), _, _ = mnist.load_digits(source="embedded", verbose=False)
    x = np.asarray(mnist.sample_sequences(digits, config["sequence_length"], args.batch_size,
                                          seed=0), "float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    step = seconds(lambda: model.train_on_batch(x), args.repeats)
    fused_model = mnist_sequence.build_model("imfn", config)
    fused_model.compile(optimizer=FusedAdam(1e-4))
    fused_step = seconds(lambda: fused_model.train_on_batch(x), args.repeats)

    variables = model.trainable_variables
    grads = [torch.full_like(v.value, 1e-3) for v in variables]
    update = seconds(lambda: model.optimizer.apply(grads, variables), args.repeats)
    params = [torch.zeros_like(v.value) for v in variables]
    moments = [[torch.zeros_like(v.value) for v in variables] for _ in range(2)]
    steps = [torch.tensor(1.0) for _ in variables]
    fused = seconds(lambda: torch._fused_adam_(
        params, grads, *moments, [], steps, lr=1e-4, beta1=0.9, beta2=0.999,
        weight_decay=0.0, eps=1e-7, amsgrad=False, maximize=False), args.repeats)

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            model.train_on_batch(x)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    ops = [{"op": e.key, "calls": e.count, "self_seconds": e.self_cpu_time_total / 1e6 / 2,
            "share": e.self_cpu_time_total / total} for e in events[:args.top]]

    result = {"config": vars(args), "environment": _common.environment(),
              "command": _common.command_line(), "parameters": model.count_params(),
              "step_seconds": step, "fused_adam_step_seconds": fused_step,
              "optimizer_update_seconds": update,
              "fused_adam_seconds": fused, "ops_per_step": ops}
    rows = [[o["op"], f"{o['calls'] // 2:,}", f"{o['self_seconds'] * 1e3:.1f} ms",
             f"{o['share']:.1%}"] for o in ops]
    markdown = (
        f"PyTorch, MNIST `{args.preset}` IMFN ({result['parameters']:,} parameters), end to "
        f"end, batch {args.batch_size}, median of {args.repeats}. Command: "
        f"`{result['command']}`\n\n"
        + _common.markdown_table(["part", "seconds"], [
            ["`train_on_batch` (forward, backward, update)", f"{step:.3f}"],
            ["the same with `keras_imfn.FusedAdam`", f"{fused_step:.3f}"],
            ["Keras' Adam update alone (`optimizer.apply`)", f"{update:.3f}"],
            ["`torch._fused_adam_` on the same parameters", f"{fused:.3f}"]])
        + "\n\nOps with the most self CPU time, per step (`torch.profiler`, two steps):\n\n"
        + _common.markdown_table(["op", "calls", "self time", "share"], rows))
    _common.write_outputs(args.output, result, markdown)


if __name__ == "__main__":
    main()
