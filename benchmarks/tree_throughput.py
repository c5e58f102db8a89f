"""TreeMemory training throughput (sequences/second), jit_compile on vs off.

Trains ``TreeMemory(memory_dim=128, sequence_length=16)`` on real MNIST digit
sequences (the embedded sample) with ``compile(optimizer="adam",
jit_compile=...)`` and ``fit(x)``, on every Keras backend.

The parent process launches one worker subprocess per backend (the same
script with ``--worker`` and ``KERAS_BACKEND`` set), because the backend is
fixed once Keras is imported. Each worker builds both variants (jit off and
jit on) in the same process, runs one warm-up epoch per variant (this epoch
includes tracing/compilation and is reported separately, not in the
throughput), then times ``--repeats`` epochs per variant, interleaved
(off, on, off, on, ...), and reports the median. An epoch is one
``model.fit(x, epochs=1)`` call over ``--steps`` batches of ``--batch-size``
sequences; its wall time includes Keras' small per-``fit`` setup cost.

What ``jit_compile`` means per backend (Keras 3):

* tensorflow: off = ``tf.function`` graph without XLA; on = XLA.
* jax: off = the train step runs op-by-op, not under ``jax.jit``; on = ``jax.jit``.
* torch: off = eager PyTorch; on = ``torch.compile`` (inductor; on CPU it
  needs a C++ compiler and may be slow to compile or fail). A failure is
  recorded as the error string instead of a number.

Usage::

    python benchmarks/tree_throughput.py            # all three backends
    python benchmarks/tree_throughput.py --backends jax tensorflow
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
JIT_MEANING = {
    "tensorflow": {"off": "tf.function graph, no XLA", "on": "XLA (tf.function jit_compile)"},
    "jax": {"off": "eager op-by-op (no jax.jit)", "on": "jax.jit"},
    "torch": {"off": "eager PyTorch", "on": "torch.compile (inductor, CPU)"},
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--memory-dim", type=int, default=128)
    p.add_argument("--sequence-length", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="batches per timed epoch")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--worker-timeout",
        type=float,
        default=600,
        help="seconds before a backend's worker is killed (recorded as an error)",
    )
    p.add_argument("--output", default=_common.default_output("tree_throughput.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-output", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def describe_error(error):
    """The error as one honest string: type, message and the last frames."""
    tail = "".join(traceback.format_exception(type(error), error, error.__traceback__)[-3:])
    return f"{type(error).__name__}: {error}\n--- traceback tail ---\n{tail}"


# ------------------------------------------------------------------- worker


def run_worker(args):
    """Measures both variants on the backend set in KERAS_BACKEND."""
    backend = _common.select_backend(None)
    import keras

    from keras_imfn import TreeMemory
    from keras_imfn.datasets import mnist

    env = _common.environment()
    (xtr, _), _, source = mnist.load_digits(source="embedded", verbose=False)
    num_sequences = args.steps * args.batch_size
    x = mnist.sample_sequences(xtr, args.sequence_length, num_sequences, seed=args.seed)

    def fit_epoch(model):
        history = model.fit(x, epochs=1, batch_size=args.batch_size, shuffle=False, verbose=0)
        return history.history  # python floats: forces completion

    variants = {}
    for jit in (False, True):
        name = "jit_on" if jit else "jit_off"
        record = {"jit_compile_requested": jit, "meaning": JIT_MEANING[backend]["on" if jit else "off"]}
        try:
            keras.utils.set_random_seed(args.seed)
            model = TreeMemory(
                memory_dim=args.memory_dim,
                sequence_length=args.sequence_length,
                output_activation="sigmoid",
            )
            model.compile(optimizer="adam", jit_compile=jit)
            record["jit_compile_resolved"] = bool(model.jit_compile)
            start = time.perf_counter()
            logs = fit_epoch(model)  # warm-up: tracing / compilation happens here
            record["warmup_epoch_s"] = time.perf_counter() - start
            record["warmup_loss"] = float(logs["loss"][-1])
            record["model"] = model
        except Exception as error:
            record["error"] = describe_error(error)
            print(f"[{backend}] {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
        variants[name] = record

    # Timed epochs, interleaved so that both variants see the same machine load.
    live = [n for n, r in variants.items() if "model" in r]
    for name in live:
        variants[name]["epoch_s"] = []
    for _ in range(args.repeats):
        for name in live:
            record = variants[name]
            try:
                start = time.perf_counter()
                logs = fit_epoch(record["model"])
                record["epoch_s"].append(time.perf_counter() - start)
                record["final_loss"] = float(logs["loss"][-1])
            except Exception as error:  # e.g. a recompilation failure mid-run
                record["error"] = describe_error(error)
                live.remove(name)
    import statistics

    for name, record in variants.items():
        record.pop("model", None)
        if record.get("epoch_s") and "error" not in record:
            median = statistics.median(record["epoch_s"])
            record["median_epoch_s"] = median
            record["sequences_per_s"] = num_sequences / median
    on, off = variants["jit_on"], variants["jit_off"]
    ratio = None
    if "sequences_per_s" in on and "sequences_per_s" in off:
        ratio = on["sequences_per_s"] / off["sequences_per_s"]
    result = {
        "backend": backend,
        "environment": env,
        "data": f"MNIST {source}, {num_sequences} sequences of {args.sequence_length} distinct digits",
        "sequences_per_epoch": num_sequences,
        "variants": variants,
        "speedup_jit_on_over_off": ratio,
        "load_average_after": _common.load_average(),
    }
    with open(args.worker_output, "w") as f:
        json.dump(result, f, indent=2)


# ------------------------------------------------------------------- parent


def run_backend(args, backend):
    """Runs one worker subprocess; returns its result or an error record."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "worker.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--worker-output", out]
        for flag in ("memory_dim", "sequence_length", "batch_size", "steps", "repeats", "seed"):
            cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=args.worker_timeout
            )
        except subprocess.TimeoutExpired:
            return {
                "backend": backend,
                "error": f"worker timed out after {args.worker_timeout:.0f} s",
                "worker_wall_s": time.perf_counter() - start,
            }
        wall = time.perf_counter() - start
        if proc.returncode != 0 or not os.path.exists(out):
            return {
                "backend": backend,
                "error": f"worker exited with code {proc.returncode}",
                "stderr_tail": proc.stderr[-4000:],
                "worker_wall_s": wall,
            }
        with open(out) as f:
            result = json.load(f)
        result["worker_wall_s"] = wall
        result["worker_command"] = f"KERAS_BACKEND={backend} " + " ".join(cmd)
        return result


def cell(variant):
    if variant is None:
        return "n/a"
    if "error" in variant:
        return "error: " + variant["error"].split("\n")[0][:120]
    return _common.fmt(variant.get("sequences_per_s"))


def main():
    args = parse_args()
    if args.worker:
        run_worker(args)
        return
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results = {}
    for backend in args.backends:
        print(f"Running {backend} worker ...", flush=True)
        results[backend] = run_backend(args, backend)
        status = results[backend].get("error", "ok")
        print(f"  {backend}: {status.splitlines()[0]} ({results[backend]['worker_wall_s']:.0f} s)")

    rows = []
    for backend, r in results.items():
        v = r.get("variants", {})
        off, on = v.get("jit_off"), v.get("jit_on")
        if "error" in r:
            rows.append([backend, "error: " + r["error"], "", "", "", ""])
            continue
        rows.append(
            [
                backend,
                cell(off),
                cell(on),
                _common.fmt(r.get("speedup_jit_on_over_off")),
                _common.fmt(off.get("warmup_epoch_s")) if off else "n/a",
                _common.fmt(on.get("warmup_epoch_s")) if on and "warmup_epoch_s" in on else "n/a",
            ]
        )
    table = _common.markdown_table(
        ["backend", "jit off (seq/s)", "jit on (seq/s)", "on/off", "warm-up epoch off (s)", "warm-up epoch on (s)"],
        rows,
    )
    markdown = (
        "# TreeMemory training throughput\n\n"
        f"T={args.sequence_length}, d={args.memory_dim}, batch {args.batch_size}, "
        f"{args.steps} steps per epoch, median of {args.repeats} timed epochs after one "
        "warm-up epoch (warm-up includes compilation and is not in the throughput). "
        f"CPU count {os.cpu_count()}.\n\n" + table + "\n"
    )
    result = {
        "benchmark": "tree_throughput",
        "started": started,
        "command": _common.command_line(),
        "config": {k: v for k, v in vars(args).items() if not k.startswith("worker")},
        "cpu_count": os.cpu_count(),
        "method": (
            "One subprocess per backend. Per backend both variants are built in the same "
            "process; one warm-up fit epoch each (compilation), then repeats timed epochs "
            "interleaved off/on; throughput = sequences per epoch / median epoch wall time "
            "(one model.fit(epochs=1) call, including Keras per-fit setup)."
        ),
        "results": results,
    }
    _common.write_outputs(args.output, result, markdown)


if __name__ == "__main__":
    main()
