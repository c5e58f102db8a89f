"""The three backends side by side in one run: training throughput and the streaming step.

Each backend of ``--backends`` runs in a worker process of its own, one after
the other (the backend is fixed once Keras is imported).

Training: for each MNIST experiment preset of ``--training-presets`` (``cpu``:
T=16, d=128, batch 64; ``paper-cpu``: T=128, d=1024, the tree sized by its
levels' work, batch 32), the experiment's IMFN is built as
``examples/mnist_sequence.py`` builds it and each training phase (local, end to
end) is compiled with the drivers' optimizer (``keras_imfn.FusedAdam``) and
timed (``preset_steps.time_phases``: ``--training-repeats`` ``train_on_batch``
calls after two untimed ones, the first of which compiles); sequences per second
are the batch over the median step. ``fit``'s defaults: JAX and TensorFlow
compile the step, PyTorch runs it eagerly.

Streaming: for each memory size ``d``
of ``--dims``, an untrained teacher of the online tables' design at
``T = --length`` (``mnist_sequence.sized_tree(T, d)``: at T=128, d=1024 the
MNIST ``paper-cpu`` tree) is streamed two ways:

* ``exact cell``: ``TreeMemoryCell`` (a step merges along the new leaf's path,
  ``log2 T`` merges);
* ``student``: the constant-cost student of the online tables
  (``online_memory.student_for(teacher, "path-map+g")``), state ``d + 1``.

For each batch size of ``--batch-sizes`` and step ``t`` in (10, T) (the state
reached by real eager steps), the step is timed eagerly (``cell.step``, as a
user calls it) and compiled (``keras_imfn.compile_step(cell)``: ``jax.jit``,
``tf.function`` with XLA, ``torch.compile``), every case in turn in each round
(``--repeats`` rounds after ``--warmup`` untimed calls; the median is
reported). Each call ends with ``keras.ops.convert_to_numpy`` of the output;
the input is already a backend tensor. The compiled output is checked against
the eager one (``max_abs_difference``; the first compiled call's seconds,
tracing and compilation included, are recorded too).

At batch 1 a step multiplies one vector by every weight matrix it uses, so it
reads each of those weights from memory once: ``weight_bytes`` (the encoder and
the update MLP with the path tables' three rows for the student; the encoder and
the merges of every level for the exact cell). ``read_floor_seconds`` is the
time numpy takes to sum an array of that many bytes on the same machine in the
same worker (warm, as the step's weights are): the memory-bound floor under
which no compiled step of these weights can run on this machine. Untrained kernels that
start at zero are drawn at random (``_common.randomize_zero_kernels``) so the
states move.

Usage::

    python benchmarks/backend_speed.py                         # all three backends
    python benchmarks/backend_speed.py --backends jax --training-presets smoke --dims 128
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

BACKENDS = ("jax", "tensorflow", "torch")
CASES = ("student", "exact cell")
MODES = ("eager", "compiled")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help="comma-separated Keras backends, each in its own worker")
    p.add_argument("--training-presets", default="cpu,paper-cpu",
                   help="comma-separated MNIST experiment presets to train ('' for none)")
    p.add_argument("--training-repeats", type=int, default=5, help="timed training steps")
    p.add_argument("--dims", default="128,1024", help="comma-separated memory sizes d")
    p.add_argument("--length", type=int, default=128, help="sequence length T of the tree")
    p.add_argument("--batch-sizes", default="1,32", help="comma-separated batch sizes")
    p.add_argument("--repeats", type=int, default=15, help="timed rounds")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per case")
    p.add_argument("--worker-timeout", type=float, default=1800,
                   help="seconds before a backend's worker is stopped (recorded as an error)")
    p.add_argument("--output", default=_common.default_output("backend_speed.json"),
                   help="JSON path; markdown beside it")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # a backend: run as its worker
    p.add_argument("--worker-output", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def ints(text):
    return [int(v) for v in str(text).split(",")]


# ------------------------------------------------------------------- worker


def build_cells(length, dim):
    import keras

    from experiments import mnist_sequence
    from experiments import online_memory
    from keras_imfn import TreeMemoryCell

    config = dict(mnist_sequence.PRESETS["cpu"], sequence_length=length, memory_dim=dim,
                  **mnist_sequence.sized_tree(length, dim))
    keras.utils.set_random_seed(0)
    teacher = mnist_sequence.build_model("imfn", config)
    teacher(keras.ops.zeros((1, length, 28, 28)))
    _common.randomize_zero_kernels(teacher, scale=0.1)
    student = online_memory.student_for(teacher, "path-map+g")
    if not student.built:
        student.build((None, 28, 28))
    _common.randomize_zero_kernels(student, seed=1, scale=0.1)
    return {"student": student, "exact cell": TreeMemoryCell(teacher)}


def weight_bytes(case, cell):
    """Bytes of the weights one step reads (see the module docstring)."""
    if case == "student":
        tables = [cell.path_in, cell.path_out, cell.path_bias]
        whole = sum(math.prod(v.shape) for v in tables)
        count = cell.count_params() - whole + whole // cell.num_leaves
    else:
        tree = cell.tree
        merges = {id(tree.merge_for(h)): tree.merge_for(h) for h in range(tree.num_levels)}
        count = tree.encoder.count_params() + sum(m.count_params() for m in merges.values())
    return 4 * count


def read_floor(num_bytes, repeats=25):
    """Median seconds numpy takes to sum `num_bytes` of float32 (warm)."""
    import numpy as np

    array = np.ones(num_bytes // 4, "float32")
    array.sum()
    return _common.median_time(array.sum, repeats)[0]


def training(args):
    """`{preset: {phase: {...}, "batch": B, "sequences_per_second": {phase: ...}}}`."""
    import preset_steps

    rows = {}
    for preset in filter(None, args.training_presets.split(",")):
        model, x, steps, loss = preset_steps.mnist_case(preset)
        phases = preset_steps.time_phases(model, x, steps, loss, 2, args.training_repeats)
        rows[preset] = {"batch": len(x), "parameters": model.count_params(), "phases": phases,
                        "sequences_per_second": {phase: len(x) / row["step_seconds"]
                                                 for phase, row in phases.items()}}
        del model
    return rows


def worker(args):
    import keras
    import numpy as np

    from keras_imfn import compile_step

    trained = training(args)
    ops = keras.ops
    records, calls, names = [], {}, []
    for dim in ints(args.dims):
        for case, cell in build_cells(args.length, dim).items():
            compiled = compile_step(cell)
            parameters = cell.count_params()
            read = weight_bytes(case, cell)
            floor = read_floor(read)
            for batch in ints(args.batch_sizes):
                x = ops.convert_to_tensor(np.random.default_rng(batch).random(
                    (args.length, batch, 28, 28)).astype("float32"))
                steps = sorted({min(10, args.length), args.length})
                states, saved = cell.get_initial_state(batch_size=batch), {}
                for t in range(args.length):
                    if t + 1 in steps:
                        saved[t + 1] = states
                    _, states = cell.step(x[t], states)
                for t in steps:
                    inputs, state = x[t - 1], saved[t]
                    eager = ops.convert_to_numpy(cell.step(inputs, state)[0])
                    start = time.perf_counter()
                    first = ops.convert_to_numpy(compiled(inputs, state)[0])
                    record = {"case": case, "d": dim, "batch": batch, "t": t,
                              "parameters": parameters, "weight_bytes": read,
                              "read_floor_seconds": floor,
                              "first_compiled_call_seconds": time.perf_counter() - start,
                              "max_abs_difference": float(np.max(np.abs(first - eager))),
                              "max_abs_output": float(np.max(np.abs(eager)))}
                    records.append(record)
                    for mode, fn in (("eager", cell.step), ("compiled", compiled)):
                        key = (len(records) - 1, mode)
                        calls[key] = (lambda fn=fn, inputs=inputs, state=state:
                                      ops.convert_to_numpy(fn(inputs, state)[0]))
                        names.append(key)
    seconds = _common.interleaved_times(lambda key: calls[key](), names, args.warmup,
                                        args.repeats)
    for (index, mode), values in seconds.items():
        records[index][f"{mode}_seconds"] = statistics.median(values)
        records[index][f"{mode}_all_seconds"] = values
    with open(args.worker_output, "w") as f:
        json.dump({"training": trained, "records": records,
                   "environment": _common.environment()}, f)


# ------------------------------------------------------------------- parent


def run_worker(backend, args):
    """The worker's records for `backend`, or `{"error": ...}`."""
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "worker.json")
        command = [sys.executable, os.path.abspath(__file__), "--worker", backend,
                   "--worker-output", output, "--training-presets", args.training_presets,
                   "--training-repeats", str(args.training_repeats),
                   "--dims", args.dims, "--length", str(args.length),
                   "--batch-sizes", args.batch_sizes, "--repeats", str(args.repeats),
                   "--warmup", str(args.warmup)]
        env = dict(os.environ, KERAS_BACKEND=backend)
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=args.worker_timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"stopped after --worker-timeout {args.worker_timeout:.0f} s"}
        if done.returncode or not os.path.exists(output):
            return {"error": f"worker exited {done.returncode}: {done.stderr[-2000:]}"}
        with open(output) as f:
            return json.load(f)


def training_table(result):
    """The training section's markdown (empty without training presets)."""
    rates = {(backend, preset, phase): (row["batch"], rate, row["parameters"])
             for backend, outcome in result["backends"].items()
             for preset, row in outcome.get("training", {}).items()
             for phase, rate in row["sequences_per_second"].items()}
    if not rates:
        return ""
    rows = []
    for (backend, preset, phase), (batch, rate, parameters) in rates.items():
        jax = rates.get(("jax", preset, phase))
        rows.append([backend, preset, f"{parameters:,}", batch, phase, f"{rate:.1f}",
                     _common.fmt(jax[1] / rate if jax else None)])
    return (
        "Training throughput: the MNIST experiment's IMFN at each preset, each phase "
        "compiled with `FusedAdam` and timed by `train_on_batch` (median of "
        f"{result['config']['training_repeats']}), each backend in a worker of one run.\n\n"
        + _common.markdown_table(["backend", "preset", "parameters", "batch", "phase",
                                  "sequences/s", "JAX's / this"], rows) + "\n\n")


def markdown(result):
    by_key = {}
    for backend, outcome in result["backends"].items():
        for row in outcome.get("records", []):
            by_key[(backend, row["case"], row["d"], row["batch"], row["t"])] = row
    rows = []
    for (backend, case, dim, batch, t), row in by_key.items():
        jax = by_key.get(("jax", case, dim, batch, t))
        over_jax = row["compiled_seconds"] / jax["compiled_seconds"] if jax else None
        rows.append([backend, case, dim, batch, "T" if t == result["config"]["length"] else t,
                     f"{row['eager_seconds'] * 1e3:.2f} ms",
                     f"{row['compiled_seconds'] * 1e3:.3f} ms",
                     f"{row['eager_seconds'] / row['compiled_seconds']:.1f}x",
                     f"{row['weight_bytes'] / 2**20:.1f} MiB",
                     f"{row['read_floor_seconds'] * 1e3:.3f} ms",
                     _common.fmt(over_jax), f"{row['max_abs_difference']:.1e}",
                     f"{row['first_compiled_call_seconds']:.1f} s"])
    errors = [f"- {backend}: {outcome['error']}" for backend, outcome
              in result["backends"].items() if "error" in outcome]
    return (
        training_table(result) +
        f"Streaming step at T={result['config']['length']}: eager `cell.step` against "
        "`keras_imfn.compile_step(cell)`, each backend in a worker of one run (median of "
        f"{result['config']['repeats']} interleaved rounds; load average at the start "
        f"{result['load_average_at_start']}). Command: `{result['command']}`\n\n"
        + _common.markdown_table(
            ["backend", "cell", "d", "batch", "t", "eager", "compiled", "speed-up",
             "weights read", "their read floor",
             "compiled / JAX's", "max abs difference", "first call"], rows)
        + ("\n\nErrors:\n" + "\n".join(errors) if errors else ""))


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        _common.running_or_select_backend(args.worker)
        return worker(args)
    _common.running_or_select_backend(None)  # the parent only writes the table
    result = {"config": vars(args), "load_average_at_start": _common.load_average(),
              "command": _common.command_line(), "backends": {}}
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            raise SystemExit(f"--backends takes {', '.join(BACKENDS)}. Received: {backend}")
        result["backends"][backend] = run_worker(backend, args)
    _common.write_outputs(args.output, result, markdown(result))


if __name__ == "__main__":
    main()
