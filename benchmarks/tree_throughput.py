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
Slow backends get fewer batches per epoch (``--steps-override``, default
``torch=5``: eager torch took 0.2 to 5 s per step on a busy 2-core CPU); throughput
in sequences/s is comparable across epoch lengths.

Bounds: a variant whose warm-up epoch (compilation) takes longer than
``--warmup-budget`` seconds is interrupted and recorded as an error with that
reason; a worker running past ``--worker-timeout`` is killed, keeping the
variants it had finished (the worker saves its results after every stage).

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
    p.add_argument(
        "--steps-override",
        nargs="*",
        default=["torch=5"],
        metavar="BACKEND=STEPS",
        help="batches per epoch for slow backends, to keep each worker to a few minutes "
        "(default: torch=5, as eager torch runs seconds per step on 2 CPU cores); "
        "pass --steps-override with no value to use --steps everywhere",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--warmup-budget",
        type=float,
        default=180,
        help="seconds allowed for one variant's warm-up epoch (compilation); past it "
        "the variant is recorded as an error (uses SIGALRM, Unix only)",
    )
    p.add_argument(
        "--worker-timeout",
        type=float,
        default=600,
        help="seconds before a backend's worker is killed (recorded as an error; "
        "the variants it had finished are kept)",
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


class WarmupBudgetExceeded(Exception):
    pass


def run_with_budget(fn, seconds):
    """Runs ``fn()``; raises WarmupBudgetExceeded after ``seconds`` (SIGALRM).

    The alarm interrupts Python code only, so a long native call ends first.
    Without SIGALRM (Windows) ``fn`` runs unbounded.
    """
    import signal

    if not hasattr(signal, "SIGALRM") or not seconds:
        return fn()

    def on_alarm(signum, frame):
        raise WarmupBudgetExceeded(
            f"the warm-up epoch (the first epoch, which includes tracing/compilation) "
            f"did not finish within the --warmup-budget of {seconds:.0f} s; interrupted "
            f"(the traceback tail shows where it was)"
        )

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _descendants(pid):
    """(pid, name, state) of every live descendant of ``pid`` (Linux /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        children.setdefault(int(ppid), []).append((int(entry), name, state))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def wait_for_background_work(timeout=300.0, poll=0.5):
    """Waits until no descendant process is running or compiling.

    An interrupted ``torch.compile`` leaves its compile workers (and their
    ``g++``) busy for a while; timing next to them would be skewed. Returns
    the seconds waited and what was still busy at the end (empty if idle).
    Only on Linux; elsewhere returns at once.
    """
    if not os.path.isdir("/proc"):
        return 0.0, []
    compilers = {"cc1plus", "g++", "gcc", "c++", "as", "ld", "collect2"}
    start, idle_polls = time.perf_counter(), 0
    busy = []
    while time.perf_counter() - start < timeout:
        busy = [(p, n, st) for p, n, st in _descendants(os.getpid()) if st == "R" or n in compilers]
        idle_polls = idle_polls + 1 if not busy else 0
        if idle_polls >= 4:
            break
        time.sleep(poll)
    return time.perf_counter() - start, [f"{n} (pid {p}, state {st})" for p, n, st in busy]


def run_worker(args):
    """Measures both variants on the backend set in KERAS_BACKEND."""
    backend = _common.select_backend(None)
    import keras

    from keras_imfn import TreeMemory
    from keras_imfn.datasets import mnist

    env = _common.environment()
    if backend == "torch":
        import getpass

        import torch

        env["torch_num_threads"] = torch.get_num_threads()
        cache_dir = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(
            tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}"
        )
        env["torchinductor_cache_present_before_run"] = os.path.isdir(cache_dir)
    (xtr, _), _, source = mnist.load_digits(source="embedded", verbose=False)
    num_sequences = args.steps * args.batch_size
    x = mnist.sample_sequences(xtr, args.sequence_length, num_sequences, seed=args.seed)

    def fit_epoch(model):
        history = model.fit(x, epochs=1, batch_size=args.batch_size, shuffle=False, verbose=0)
        return history.history  # python floats: forces completion

    variants = {}
    settle = None

    def save(partial):
        """Writes what is known so far (the parent keeps it if we are killed)."""
        import statistics

        out_variants = {}
        for name, record in variants.items():
            record = {k: v for k, v in record.items() if k != "model"}
            if record.get("epoch_s") and "error" not in record:
                record["median_epoch_s"] = statistics.median(record["epoch_s"])
                record["sequences_per_s"] = num_sequences / record["median_epoch_s"]
            out_variants[name] = record
        on, off = out_variants.get("jit_on", {}), out_variants.get("jit_off", {})
        ratio = None
        if "sequences_per_s" in on and "sequences_per_s" in off:
            ratio = on["sequences_per_s"] / off["sequences_per_s"]
        result = {
            "backend": backend,
            "partial": partial,
            "environment": env,
            "data": f"MNIST {source}, {num_sequences} sequences of {args.sequence_length} distinct digits",
            "sequences_per_epoch": num_sequences,
            "variants": out_variants,
            "speedup_jit_on_over_off": ratio,
            "wait_for_background_compilation_before_timing": settle,
            "load_average_after": _common.load_average(),
        }
        with open(args.worker_output, "w") as f:
            json.dump(result, f, indent=2)

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
            try:  # warm-up: tracing / compilation happens here
                logs = run_with_budget(lambda: fit_epoch(model), args.warmup_budget)
            finally:
                record["warmup_epoch_s"] = time.perf_counter() - start
            record["warmup_loss"] = float(logs["loss"][-1])
            record["model"] = model
        except Exception as error:
            record["error"] = describe_error(error)
            print(f"[{backend}] {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
        variants[name] = record
        save(partial=True)

    # Let any leftover background compilation finish before timing.
    settle_s, still_busy = wait_for_background_work()
    settle = {"waited_s": round(settle_s, 2), "still_busy_after_wait": still_busy}

    # Timed epochs, interleaved so that both variants see the same machine load.
    live = [n for n, r in variants.items() if "model" in r]
    for name in live:
        variants[name]["epoch_s"] = []
    for _ in range(args.repeats):
        for name in list(live):
            record = variants[name]
            try:
                start = time.perf_counter()
                logs = fit_epoch(record["model"])
                record["epoch_s"].append(time.perf_counter() - start)
                record["final_loss"] = float(logs["loss"][-1])
            except Exception as error:  # e.g. a recompilation failure mid-run
                record["error"] = describe_error(error)
                live.remove(name)
            save(partial=True)
    save(partial=False)


# ------------------------------------------------------------------- parent


def steps_for(args, backend):
    """Batches per epoch for ``backend`` (``--steps`` unless overridden)."""
    for item in args.steps_override or []:
        name, _, value = item.partition("=")
        if name == backend:
            return int(value)
    return args.steps


def run_backend(args, backend):
    """Runs one worker subprocess; returns its result or an error record.

    If the worker fails or is killed, whatever it had saved (finished
    variants) is kept, with the error added.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "worker.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--worker-output", out]
        for flag in ("memory_dim", "sequence_length", "batch_size", "repeats", "seed",
                     "warmup_budget"):
            cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
        cmd += ["--steps", str(steps_for(args, backend))]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        start = time.perf_counter()
        error, stderr = None, ""
        try:
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=args.worker_timeout
            )
            stderr = proc.stderr
            if proc.returncode != 0:
                error = f"worker exited with code {proc.returncode}"
        except subprocess.TimeoutExpired as timeout:
            error = f"worker killed after the --worker-timeout of {args.worker_timeout:.0f} s"
            stderr = timeout.stderr.decode() if isinstance(timeout.stderr, bytes) else (timeout.stderr or "")
        wall = time.perf_counter() - start
        result = {"backend": backend}
        if os.path.exists(out):
            with open(out) as f:
                result = json.load(f)
        elif error is None:
            error = "worker wrote no result"
        if error is not None:
            result["error"] = error
            result["stderr_tail"] = stderr[-4000:]
        result["worker_wall_s"] = wall
        shown = ["python", _common.portable_path(__file__)] + cmd[2:]
        shown[shown.index("--worker-output") + 1] = "<temporary dir>/worker.json"
        result["worker_command"] = f"KERAS_BACKEND={backend} " + " ".join(shown)
        return result


def cell(variant):
    if variant is None:
        return "n/a"
    if "error" in variant:
        return "error: " + variant["error"].split("\n")[0][:200]
    return _common.fmt(variant.get("sequences_per_s"))


def warmup_cell(variant):
    if not variant or "warmup_epoch_s" not in variant:
        return "n/a"
    text = _common.fmt(variant["warmup_epoch_s"])
    if variant.get("error", "").startswith("WarmupBudgetExceeded"):
        text = f">= {text} (interrupted)"
    return text


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
        for name, variant in results[backend].get("variants", {}).items():
            if "error" in variant:
                status += f"; {name}: " + variant["error"].splitlines()[0][:150]
        print(f"  {backend}: {status.splitlines()[0]} ({results[backend]['worker_wall_s']:.0f} s)")

    rows = []
    for backend, r in results.items():
        v = r.get("variants", {})
        off, on = v.get("jit_off"), v.get("jit_on")
        if "error" in r and not v:
            rows.append([backend, steps_for(args, backend), "error: " + r["error"], "", "", "", ""])
            continue
        if "error" in r:
            # Keep what finished; say the worker itself failed.
            off = off if off is None or "sequences_per_s" in off or "error" in off else dict(off, error=r["error"])
            on = on if on is None or "sequences_per_s" in on or "error" in on else dict(on, error=r["error"])
        rows.append(
            [
                backend,
                steps_for(args, backend),
                cell(off),
                cell(on),
                _common.fmt(r.get("speedup_jit_on_over_off")),
                warmup_cell(off),
                warmup_cell(on),
            ]
        )
    table = _common.markdown_table(
        ["backend", "steps/epoch", "jit off (seq/s)", "jit on (seq/s)", "on/off", "warm-up epoch off (s)", "warm-up epoch on (s)"],
        rows,
    )
    markdown = (
        "# TreeMemory training throughput\n\n"
        f"T={args.sequence_length}, d={args.memory_dim}, batch {args.batch_size}; "
        f"median of {args.repeats} timed epochs per variant, interleaved off/on, after one "
        "warm-up epoch each (warm-up includes compilation and is not in the throughput; "
        f"a warm-up over {args.warmup_budget:.0f} s is interrupted and recorded as an error). "
        f"CPU count {os.cpu_count()}; the machine was shared (see load averages in the JSON)."
        "\n\n" + table + "\n"
    )
    result = {
        "benchmark": "tree_throughput",
        "started": started,
        "command": _common.command_line(),
        "config": {k: v for k, v in vars(args).items() if not k.startswith("worker")},
        "steps_per_epoch": {b: steps_for(args, b) for b in args.backends},
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
