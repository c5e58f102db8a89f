"""Streaming cost: IMFNStudent and TreeMemoryCell vs a Transformer decoder layer with a KV cache.

(a) Time of one streaming step at step 10 and at step 10,000, for

* ``IMFNStudent(memory_dim=128)``: ``memory, states = student.step(x_t, states)``
  with ``states = [memory (B, d), step counter (B, 1)]``;
* ``TreeMemoryCell`` of an (untrained) ``TreeMemory(memory_dim=128,
  sequence_length=16384)`` (``--cell-length``): the teacher streamed
  exactly, its state the binary-counter stack of ``log2 T + 1`` nodes and
  the counter, fixed by ``T`` whatever ``t`` is; a step merges along the
  new leaf's path to the root (``log2 T`` merges), advanced to step 10,000
  by ``keras.layers.RNN`` like the student;
* a minimal single-layer causal Transformer decoder of the same width ``d``
  (``KVCacheDecoderLayer`` below, written in ``keras.ops``): the same input
  MLP as the student (784 -> 256 -> d), pre-norm multi-head self-attention
  whose step appends the new key/value to the cache by concatenation and
  attends over all of it, then a pre-norm MLP (d -> 2d -> d). At step ``t``
  its cache holds ``t`` entries after the step.

"Step ``t``" is the ``t``-th input: the student's counter is ``t - 1`` before
the step, the KV cache holds ``t - 1`` entries before and ``t`` after.

How the states reach step 10,000 (``--advance``):

* student, ``rnn`` (default): the student cell really processes all 9,999
  earlier MNIST digits, run as ``keras.layers.RNN(student, return_state=True)``
  (the same cell call as ``step``, but scanned by the backend instead of a
  Python loop of eager calls; the script checks that it matches 9 calls of
  ``step``); ``step``: a Python loop of 9,999 ``student.step`` calls (slow
  in eager mode); ``set-counter``: 9 steps, then the counter in the state is
  set to 9,999 (legitimate: the state is just ``[memory, counter]``).
* KV cache: a one-layer decoder's key/value at position ``i`` depend only on
  input ``i``, so the cache of ``t - 1`` entries is built in one batched
  "prefill" call (the script checks that prefill equals 20 real steps).
  Stepping 10,000 times instead would be ``O(t^2)`` copying and, on jax,
  one compilation per cache length.

Each timed call steps from the same saved state (the state is not advanced
between timed calls) and ends with ``keras.ops.convert_to_numpy`` on the
output. ``--calls`` calls make a block; the median block mean over
``--repeats`` blocks is reported, blocks interleaved across the six cases
after ``--warmup`` untimed calls each.

(b) The streaming state's size in bytes at t = 1, 10, 100, 1000, 10000: the
student's ``[memory, counter]`` (constant) and the KV cache (grows linearly),
measured as ``nbytes`` of the actual arrays.

Usage::

    python benchmarks/student_streaming.py                 # jax by default
    KERAS_BACKEND=torch python benchmarks/student_streaming.py
"""

import argparse
import math
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("jax", "tensorflow", "torch"),
                   help="Keras backend (default: $KERAS_BACKEND, else jax)")
    p.add_argument("--memory-dim", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--num-heads", type=int, default=4, help="attention heads of the decoder")
    p.add_argument("--early-step", type=int, default=10)
    p.add_argument("--late-step", type=int, default=10_000)
    p.add_argument("--advance", choices=("rnn", "step", "set-counter"), default="rnn",
                   help="how the student reaches the late step (see module docstring)")
    p.add_argument("--cell-length", type=int, default=16_384,
                   help="sequence length T of the streamed TreeMemory")
    p.add_argument("--size-steps", type=int, nargs="+", default=[1, 10, 100, 1000, 10_000])
    p.add_argument("--calls", type=int, default=50, help="timed calls per block")
    p.add_argument("--repeats", type=int, default=7, help="timed blocks per case")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per case")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=_common.default_output("student_streaming.json"))
    return p.parse_args(argv)


def make_decoder_layer_class():
    """Defines the KV-cache decoder layer (after Keras is imported)."""
    import keras
    from keras import layers
    from keras import ops

    class KVCacheDecoderLayer(keras.layers.Layer):
        """One pre-norm causal Transformer decoder layer for streaming.

        The cache is ``[keys (B, n, d), values (B, n, d)]``; ``step`` appends
        the new key/value by concatenation and attends over all ``n + 1``.
        """

        def __init__(self, dim, num_heads=4, mlp_dim=None, leaf_hidden_dim=None, **kwargs):
            super().__init__(**kwargs)
            if dim % num_heads:
                raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
            self.dim, self.num_heads = dim, num_heads
            self.head_dim = dim // num_heads
            self.encoder = keras.Sequential(
                [
                    layers.Flatten(),
                    layers.Dense(leaf_hidden_dim or max(256, 2 * dim), activation="gelu"),
                    layers.Dense(dim),
                ],
                name="encoder",
            )
            self.norm_attention = layers.LayerNormalization(name="norm_attention")
            self.query = layers.Dense(dim, name="query")
            self.key = layers.Dense(dim, name="key")
            self.value = layers.Dense(dim, name="value")
            self.attention_out = layers.Dense(dim, name="attention_out")
            self.norm_mlp = layers.LayerNormalization(name="norm_mlp")
            self.mlp_in = layers.Dense(mlp_dim or 2 * dim, activation="gelu", name="mlp_in")
            self.mlp_out = layers.Dense(dim, name="mlp_out")

        def build(self, input_shape):
            step_shape = (None,) + tuple(input_shape)[1:]
            self.encoder.build(step_shape)
            vector = (None, self.dim)
            for layer in (self.norm_attention, self.query, self.key, self.value,
                          self.attention_out, self.norm_mlp, self.mlp_in):
                layer.build(vector)
            self.mlp_out.build((None, self.mlp_in.units))
            self.built = True

        def initial_cache(self, batch_size):
            empty = ops.zeros((batch_size, 0, self.dim), self.compute_dtype)
            return [empty, empty]

        def prefill(self, inputs):
            """The cache after ``n`` steps, from inputs ``(B, n, *features)``."""
            batch, n = inputs.shape[0], inputs.shape[1]
            steps = ops.reshape(inputs, (batch * n,) + tuple(inputs.shape[2:]))
            normed = self.norm_attention(self.encoder(steps))
            keys = ops.reshape(self.key(normed), (batch, n, self.dim))
            values = ops.reshape(self.value(normed), (batch, n, self.dim))
            return [keys, values]

        def step(self, inputs, cache):
            """One input ``(B, *features)`` -> (output ``(B, d)``, new cache)."""
            hidden = self.encoder(inputs)
            normed = self.norm_attention(hidden)
            keys = ops.concatenate([cache[0], ops.expand_dims(self.key(normed), 1)], axis=1)
            values = ops.concatenate([cache[1], ops.expand_dims(self.value(normed), 1)], axis=1)
            heads = (-1, self.num_heads, self.head_dim)
            query = ops.reshape(self.query(normed), heads)  # (B, H, h)
            k = ops.reshape(keys, (-1, keys.shape[1], self.num_heads, self.head_dim))
            v = ops.reshape(values, (-1, values.shape[1], self.num_heads, self.head_dim))
            scores = ops.einsum("bhd,bnhd->bhn", query, k) / math.sqrt(self.head_dim)
            weights = ops.softmax(scores, axis=-1)
            context = ops.reshape(ops.einsum("bhn,bnhd->bhd", weights, v), (-1, self.dim))
            hidden = hidden + self.attention_out(context)
            hidden = hidden + self.mlp_out(self.mlp_in(self.norm_mlp(hidden)))
            return hidden, [keys, values]

    return KVCacheDecoderLayer


def nbytes(tensors):
    from keras import ops

    return int(sum(ops.convert_to_numpy(t).nbytes for t in tensors))


def main():
    args = parse_args()
    backend = _common.select_backend(args.backend)
    import keras
    import numpy as np
    from keras import ops

    from keras_imfn import IMFNStudent
    from keras_imfn import TreeMemory
    from keras_imfn import TreeMemoryCell
    from keras_imfn.datasets import mnist

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    env = _common.environment()
    B, d = args.batch_size, args.memory_dim
    early, late = args.early_step, args.late_step
    horizon = max([late] + args.size_steps)

    # A stream of real digits (drawn with replacement: the sample has 3,000).
    (xtr, _), _, source = mnist.load_digits(source="embedded", verbose=False)
    rng = np.random.default_rng(args.seed)
    stream_np = xtr[rng.integers(0, len(xtr), size=(B, horizon))].astype("float32") / 255.0

    keras.utils.set_random_seed(args.seed)
    student = IMFNStudent(memory_dim=d)
    student.build((None, 28, 28))
    # The untrained student's update starts at zero (its memory would stay 0);
    # a small random output kernel makes the memory move without blowing up
    # over 10,000 residual updates. Timing does not depend on the values.
    redrawn = {"student": _common.randomize_zero_kernels(student, args.seed, scale=0.01)}
    tree = TreeMemory(memory_dim=d, sequence_length=args.cell_length)
    tree.build((None, args.cell_length, 28, 28))
    cell = TreeMemoryCell(tree)
    if horizon > args.cell_length:
        raise ValueError(f"--cell-length {args.cell_length} must cover step {horizon}")
    decoder = make_decoder_layer_class()(d, num_heads=args.num_heads, name="kv_decoder")
    decoder.build((None, 28, 28))

    def input_at(t):  # the t-th input (t >= 1), a numpy array (B, 28, 28)
        return stream_np[:, t - 1]

    # ---------------------------------------------------------- student states
    # saved[t] is the state *before* step t (its counter is t - 1).
    print(f"Advancing the student to step {late} ({args.advance}) ...", flush=True)
    sizes_student = {}
    saved = {}
    states = student.get_initial_state(batch_size=B)
    start = time.perf_counter()
    stepped = max([late] + args.size_steps)
    if args.advance == "rnn":
        rnn = keras.layers.RNN(student, return_state=True)

        def run_cell(t):  # states after the first t inputs, scanned
            _, memory, counter = rnn(stream_np[:, :t])
            return [memory, counter]

        for t in sorted({early - 1, late - 1} - {0}):
            saved[t + 1] = run_cell(t)
        for t in args.size_steps:
            states = run_cell(t)
            sizes_student[t] = nbytes(states)
        if early - 1 == 0:
            saved[early] = student.get_initial_state(batch_size=B)
    elif args.advance == "step":
        for t in range(1, stepped + 1):
            if t in (early, late):
                saved[t] = states
            _, states = student.step(input_at(t), states)
            if t in args.size_steps:
                sizes_student[t] = nbytes(states)
    else:  # set-counter
        stepped = early
        for t in range(1, early + 1):
            if t == early:
                saved[t] = states
            _, states = student.step(input_at(t), states)
        # `states` is now the state after `early` real steps; jump its counter.
        def with_counter(count):
            return [states[0], ops.full((B, 1), count, dtype=student.compute_dtype)]

        saved[late] = with_counter(late - 1)
        sizes_student = {t: nbytes(with_counter(t)) for t in args.size_steps}
    ops.convert_to_numpy(states[0])
    advance_s = time.perf_counter() - start
    counters = {t: float(ops.convert_to_numpy(s[1]).ravel()[0]) for t, s in saved.items()}
    for t, c in counters.items():
        assert c == t - 1, f"student counter before step {t} is {c}, expected {t - 1}"
    print(f"  done in {advance_s:.1f} s", flush=True)

    # Consistency: the saved state before step `early` equals `early - 1` step() calls.
    check_states = student.get_initial_state(batch_size=B)
    for t in range(1, early):
        _, check_states = student.step(input_at(t), check_states)
    advance_check_diff = float(
        np.max(np.abs(ops.convert_to_numpy(check_states[0]) - ops.convert_to_numpy(saved[early][0])))
    )

    # ---------------------------------------------------------- tree cell states
    print(f"Advancing the cell to step {late} (rnn) ...", flush=True)
    start = time.perf_counter()
    cell_rnn = keras.layers.RNN(cell, return_state=True)

    def run_tree_cell(t):  # the cell's states after the first t inputs, scanned
        _, peaks, counter = cell_rnn(stream_np[:, :t])
        return [peaks, counter]

    saved_cell = {t + 1: run_tree_cell(t) for t in sorted({early - 1, late - 1} - {0})}
    if early - 1 == 0:
        saved_cell[early] = cell.get_initial_state(batch_size=B)
    sizes_cell = {t: nbytes(run_tree_cell(t)) for t in args.size_steps}
    cell_advance_s = time.perf_counter() - start
    check_states = cell.get_initial_state(batch_size=B)
    for t in range(1, early):
        _, check_states = cell.step(input_at(t), check_states)
    cell_advance_check_diff = float(np.max(np.abs(
        ops.convert_to_numpy(check_states[0]) - ops.convert_to_numpy(saved_cell[early][0]))))
    print(f"  done in {cell_advance_s:.1f} s", flush=True)

    # ---------------------------------------------------------- KV caches
    # Prefill == stepping, checked on 20 steps.
    check_n = 20
    cache = decoder.initial_cache(B)
    with warnings.catch_warnings():  # step 1 attends over one key: softmax of size 1
        warnings.filterwarnings("ignore", message="You are using a softmax over axis")
        for t in range(1, check_n + 1):
            _, cache = decoder.step(input_at(t), cache)
    prefilled = decoder.prefill(stream_np[:, :check_n])
    prefill_diff = max(
        float(np.max(np.abs(ops.convert_to_numpy(a) - ops.convert_to_numpy(b))))
        for a, b in zip(cache, prefilled)
    )
    caches = {t: decoder.prefill(stream_np[:, : t - 1]) for t in (early, late)}
    full_cache = decoder.prefill(stream_np[:, :horizon])
    sizes_kv = {t: nbytes([c[:, :t] for c in full_cache]) for t in args.size_steps}

    # ---------------------------------------------------------- timing
    timed_inputs = {t: ops.convert_to_tensor(input_at(t)) for t in (early, late)}

    def student_case(t):
        def call():
            memory, _ = student.step(timed_inputs[t], saved[t])
            return ops.convert_to_numpy(memory)
        return call

    def cell_case(t):
        def call():
            output, _ = cell.step(timed_inputs[t], saved_cell[t])
            return ops.convert_to_numpy(output)
        return call

    def decoder_case(t):
        def call():
            out, _ = decoder.step(timed_inputs[t], caches[t])
            return ops.convert_to_numpy(out)
        return call

    cases = {
        ("student", early): student_case(early),
        ("student", late): student_case(late),
        ("tree_cell", early): cell_case(early),
        ("tree_cell", late): cell_case(late),
        ("kv_decoder", early): decoder_case(early),
        ("kv_decoder", late): decoder_case(late),
    }
    for fn in cases.values():
        for _ in range(args.warmup):
            fn()
    blocks = {key: [] for key in cases}
    for _ in range(args.repeats):
        for key, fn in cases.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                fn()
            blocks[key].append((time.perf_counter() - start) / args.calls)
    step_ms = {key: 1000 * statistics.median(v) for key, v in blocks.items()}

    # ---------------------------------------------------------- report
    timing = {}
    for model in ("student", "tree_cell", "kv_decoder"):
        timing[model] = {
            f"step_{early}_ms": step_ms[(model, early)],
            f"step_{late}_ms": step_ms[(model, late)],
            f"ratio_step_{late}_over_step_{early}": step_ms[(model, late)] / step_ms[(model, early)],
            f"block_means_step_{early}_ms": [1000 * v for v in blocks[(model, early)]],
            f"block_means_step_{late}_ms": [1000 * v for v in blocks[(model, late)]],
        }
    sizes = [
        {
            "t": t,
            "student_state_bytes": sizes_student[t],
            "tree_cell_state_bytes": sizes_cell[t],
            "kv_cache_bytes": sizes_kv[t],
            "kv_over_student": sizes_kv[t] / sizes_student[t],
        }
        for t in args.size_steps
    ]
    time_rows = [
        [name, _common.fmt(timing[key][f"step_{early}_ms"]), _common.fmt(timing[key][f"step_{late}_ms"]),
         _common.fmt(timing[key][f"ratio_step_{late}_over_step_{early}"])]
        for key, name in (("student", "IMFNStudent"),
                          ("tree_cell", f"TreeMemoryCell (T={args.cell_length:,})"),
                          ("kv_decoder", "Transformer layer + KV cache"))
    ]
    size_rows = [
        [s["t"], f"{s['student_state_bytes']:,}", f"{s['tree_cell_state_bytes']:,}",
         f"{s['kv_cache_bytes']:,}", _common.fmt(s["kv_over_student"])]
        for s in sizes
    ]
    markdown = (
        "# Streaming: IMFNStudent, TreeMemoryCell and a Transformer decoder layer with "
        "KV cache\n\n"
        f"Backend {backend}, d={d}, batch {B}, {args.num_heads} attention heads; eager; "
        f"median over {args.repeats} blocks of {args.calls} calls after {args.warmup} warm-up "
        f"calls. Student reached step {late} by `{args.advance}`; KV cache by prefill. "
        f"CPU count {os.cpu_count()}.\n\n"
        "## (a) Time per streaming step (ms)\n\n"
        + _common.markdown_table(["model", f"step {early}", f"step {late:,}", f"step {late:,} / step {early}"], time_rows)
        + "\n\n## (b) Streaming state size (bytes)\n\n"
        + _common.markdown_table(["t", "student state", "tree cell state", "KV cache",
                                  "KV / student"], size_rows)
        + "\n"
    )
    result = {
        "benchmark": "student_streaming",
        "started": started,
        "command": _common.command_line(),
        "config": vars(args),
        "keras_backend": backend,
        "environment": env,
        "cpu_count": os.cpu_count(),
        "data": f"MNIST {source}; a stream of {horizon} digits drawn with replacement",
        "method": {
            "student_advance": {
                "rnn": "keras.layers.RNN(student, return_state=True) over the first t-1 real "
                "inputs gives the state before step t (same cell math as step(), scanned)",
                "step": f"a Python loop of student.step over {stepped} real inputs (state "
                "before step t saved on the way)",
                "set-counter": f"stepped {early} real inputs, then set the counter in the state "
                f"to {late - 1}",
            }[args.advance],
            "student_advance_vs_step_max_abs_diff_at_early_step": advance_check_diff,
            "student_advance_wall_s": advance_s,
            "student_counters_before_timed_step": {str(k): v for k, v in counters.items()},
            "kv_cache": (
                "cache of t-1 entries built by one batched prefill of inputs 1..t-1 (keys/values "
                "of a one-layer decoder depend only on their own input); each timed step "
                "concatenates the new key/value (cache then holds t entries) and attends over it"
            ),
            "prefill_vs_stepping_max_abs_diff_20_steps": prefill_diff,
            "tree_cell": (
                f"TreeMemoryCell of an untrained TreeMemory(memory_dim={d}, sequence_length="
                f"{args.cell_length}); states before step t from keras.layers.RNN(cell, "
                "return_state=True) over the first t-1 inputs"
            ),
            "tree_cell_advance_vs_step_max_abs_diff_at_early_step": cell_advance_check_diff,
            "tree_cell_advance_wall_s": cell_advance_s,
            "timing": (
                "each call steps from the same saved state and converts the output to numpy; "
                "blocks of calls interleaved across the six cases; median of block means"
            ),
            "state_size": "sum of nbytes of the state arrays (student: [memory, counter]; KV: [keys, values])",
            "zero_kernels_redrawn": redrawn,
            "zero_kernels_redrawn_scale": "0.01 x Glorot-normal std (student output projection)",
        },
        "student_memory_max_abs_before_late_step": float(
            np.max(np.abs(ops.convert_to_numpy(saved[late][0])))
        ),
        "parameters": {"student": int(student.count_params()),
                       "tree_cell": int(tree.count_params()),
                       "kv_decoder": int(decoder.count_params())},
        "step_time": timing,
        "state_size_bytes": sizes,
        "load_average_after": _common.load_average(),
    }
    _common.write_outputs(args.output, result, markdown)


if __name__ == "__main__":
    main()
