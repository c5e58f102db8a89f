"""Online step cost across T at one d: the constant-cost student against the exact cell.

For each sequence length T of ``--lengths`` at memory ``d`` (``--memory-dim``,
the source's 1024 by default), an untrained teacher of the online tables'
design at that shape (``mnist_sequence.sized_tree(T, d)``: the T=128 one is the
MNIST ``paper-cpu`` tree) is streamed three ways, batch ``--batch-size``:

* ``exact cell``: ``TreeMemoryCell`` (the binary-counter stack; a step merges
  along the new leaf's path, ``log2 T`` merges);
* ``student: path-map+g``: the online tables' constant-cost student
  (``IMFNStudent`` with a path map, its variant options from
  ``experiments.online_memory.VARIANTS``), state ``d + 1``;
* ``student: learned-path+g``: the earlier one-vector student, which walks the
  tree's inverse path (``O(log T)`` a step).

Each case's ``step`` is timed at t = 10 and t = T (the state reached by real
steps), eagerly as a user calls it, every case in turn in each round (one run,
side by side: ``--repeats`` rounds after ``--warmup`` untimed calls each); the
median is reported, with each case's time over the path-map student's at T =
the shortest length and over the exact cell's at the same T.

Usage::

    python benchmarks/online_step.py                      # jax by default
    KERAS_BACKEND=torch python benchmarks/online_step.py --lengths 16,128
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

CASES = ("exact cell", "student: path-map+g", "student: learned-path+g")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("jax", "tensorflow", "torch"),
                   help="Keras backend (default: $KERAS_BACKEND, else jax)")
    p.add_argument("--lengths", default="16,32,64,128",
                   help="comma-separated sequence lengths T")
    p.add_argument("--memory-dim", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--repeats", type=int, default=15, help="timed rounds")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per case")
    p.add_argument("--output", default=None, help="JSON path (default: results/"
                   "online_step_<backend>.json), markdown beside it")
    return p.parse_args(argv)


def build_cases(length, dim, batch_size):
    """`{case: (cell, {t: states before step t}, inputs (B, t_max, 28, 28))}` at T=length."""
    import keras
    import numpy as np

    from keras_imfn import TreeMemoryCell
    from experiments import mnist_sequence
    from experiments import online_memory

    config = dict(mnist_sequence.PRESETS["cpu"], sequence_length=length, memory_dim=dim,
                  **mnist_sequence.sized_tree(length, dim))
    keras.utils.set_random_seed(0)
    teacher = mnist_sequence.build_model("imfn", config)
    x = np.random.default_rng(0).random((batch_size, length, 28, 28)).astype("float32")
    teacher(x[:1])
    _common.randomize_zero_kernels(teacher, scale=0.1)  # states that move
    cells = {"exact cell": TreeMemoryCell(teacher)}
    for variant in ("path-map+g", "learned-path+g"):
        cells[f"student: {variant}"] = online_memory.student_for(teacher, variant)
    cases = {}
    steps = sorted({min(10, length), length})
    for name, cell in cells.items():
        states, saved = cell.get_initial_state(batch_size=batch_size), {}
        for t in range(length):
            if t + 1 in steps:
                saved[t + 1] = states
            _, states = cell.step(x[:, t], states)
        cases[name] = (cell, saved, x)
    return cases, steps


def main(argv=None):
    args = parse_args(argv)
    backend = _common.running_or_select_backend(args.backend)
    import keras

    lengths = [int(v) for v in args.lengths.split(",")]
    timed, names, parameters = {}, [], {}
    for length in lengths:
        cases, steps = build_cases(length, args.memory_dim, args.batch_size)
        for case, (cell, saved, x) in cases.items():
            parameters[(length, case)] = cell.count_params()
            for t in steps:
                def call(cell=cell, state=saved[t], inputs=x[:, t - 1]):
                    keras.ops.convert_to_numpy(cell.step(inputs, state)[0])
                timed[(length, case, t)] = call
                names.append((length, case, t))
    seconds = _common.interleaved_times(lambda key: timed[key](), names, args.warmup,
                                        args.repeats)
    median = {key: statistics.median(values) for key, values in seconds.items()}
    first = min(lengths)

    def label(length, t):  # "10" or "T": the early and the last step
        return "T" if t == length else "10"

    def shortest(case, at):  # that case's step at the shortest T, the same label
        return median[(first, case, first if at == "T" else min(10, first))]

    rows, records = [], []
    for length, case, t in names:
        step, at = median[(length, case, t)], label(length, t)
        flat = step / shortest("student: path-map+g", at)
        over_exact = step / median[(length, "exact cell", t)]
        records.append({"T": length, "case": case, "t": t, "seconds": step,
                        "all_seconds": seconds[(length, case, t)],
                        "parameters": parameters[(length, case)],
                        "over_path_map_at_shortest_T": flat, "over_exact_cell": over_exact})
        rows.append([length, case, f"t={at}", f"{step * 1e3:.2f} ms", f"{flat:.2f}",
                     f"{over_exact:.2f}", f"{parameters[(length, case)]:,}"])
    result = {"config": dict(vars(args), backend=backend), "environment": _common.environment(),
              "command": _common.command_line(), "steps": records}
    markdown = (
        f"Online step cost across T at d={args.memory_dim}, batch {args.batch_size}, "
        f"eager `step` on {backend} (median of {args.repeats} interleaved rounds). Command: "
        f"`{result['command']}`\n\n" + _common.markdown_table(
            ["T", "case", "step", "time", f"/ path-map+g at T={first}", "/ exact cell",
             "parameters"], rows))
    output = args.output or _common.default_output(f"online_step_{backend}.json")
    _common.write_outputs(output, result, markdown)


if __name__ == "__main__":
    main()
