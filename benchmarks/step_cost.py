"""What one training step of each MNIST model costs: FLOPs, time, and the share of the GEMM rate.

For every model of `examples/mnist_sequence.py` (IMFN in both of its phases:
`local`, compiled without the SSIM term, and `end_to_end`, with it when the
preset has `ssim_loss_weight`; the Transformer, Mamba and GRU compressors at
IMFN's parameter count) at the shapes of the `cpu` and `paper` presets (each
with its own batch size), this script builds and compiles the model as the
experiment does (`build_model`, `compile_options`) and reports:

- parameters;
- FLOPs per training step and per sequence (JAX only): XLA's cost analysis
  of the jitted `train_step` (Keras' own, found in `model.train_function`,
  else `jax.jit(model.train_step)`: `.trace(state, data).lower().compile()
  .cost_analysis()`, the state laid out as Keras' JAX trainer lays it out). XLA counts the body of a loop once, whatever its trip
  count; the recurrent models (Mamba's sequential selective scan, the GRU)
  run `lax.scan` over time, so for them the FLOPs of each scan body, counted
  from the step's jaxpr (matmuls `2 m n k`, convolutions likewise, one FLOP
  per element of an elementwise op or of a reduction's input), are added
  (trip count - 1) times. The JSON keeps XLA's own number, the correction
  and the matmul FLOPs of the jaxpr beside the total;
- step time: the median of `--repeats` `train_on_batch` calls (default 10
  at the cpu shape, 3 at the paper shape) after `--warmup` untimed ones (the
  first compiles), on any backend;
- this machine's float32 GEMM rate, timed in the same run (a `--gemm-size`
  cubed matmul: jitted on JAX, `tf.matmul` / `torch.matmul` on the others;
  numpy's beside it), before the first model and after the last (of every
  invocation, with `--resume`); the highest median is the reference;
- achieved GFLOP/s (FLOPs per step / step time) and its fraction of the GEMM
  rate. On TensorFlow and torch there are no FLOPs of their own:
  `--flops-from` a JAX run's JSON of this script borrows them (same preset,
  model, phase and batch size), marked as such.

Rows are saved after every model (`<output>.partial.json`): `--resume` picks
an interrupted run up. The models are untrained (no PCA start for IMFN: FLOPs and time do not depend
on the weights' values); data are real digits from the embedded MNIST sample.
`step_cost(model, x, y)` measures one compiled model and can be imported.

Usage::

    KERAS_BACKEND=jax python benchmarks/step_cost.py
    KERAS_BACKEND=jax python benchmarks/step_cost.py --quick   # cpu shape, 2 steps
"""

import argparse
import gc
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

PRESETS = ("cpu", "paper")
# Timed steps per model when --repeats is not given: a paper-shape step takes
# seconds to tens of seconds on 2 CPU cores.
DEFAULT_REPEATS = {"cpu": 10, "paper": 3}
# One row per (model, phase); the baselines have a single training phase.
IMFN_PHASES = ("local", "end_to_end")
BASELINE_PHASE = "train"

# jaxpr primitives counted as one FLOP per output element.
_ELEMENTWISE = {
    "add", "add_any", "sub", "mul", "div", "rem", "neg", "max", "min", "abs", "sign",
    "exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "sin", "cos", "tan",
    "sqrt", "rsqrt", "cbrt", "pow", "integer_pow", "square", "erf", "erfc", "erf_inv",
    "atan2", "floor", "ceil", "round", "select_n", "clamp", "nextafter", "is_finite",
    "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "xor",
}
# ... and as one FLOP per input element.
_REDUCTIONS = {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin",
               "cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp", "reduce_and",
               "reduce_or"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("jax", "tensorflow", "torch"),
                   help="Keras backend (default: $KERAS_BACKEND, else jax)")
    p.add_argument("--presets", nargs="+", default=None,
                   help=f"presets of examples/mnist_sequence.py (default: {' '.join(PRESETS)})")
    p.add_argument("--models", nargs="+", default=None,
                   help="models of the experiment (default: all)")
    p.add_argument("--batch-size", type=int, help="override every preset's batch size")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per model (>= 1)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed steps per model (default: cpu 10, paper 3, others 3)")
    p.add_argument("--gemm-size", type=int, default=2048, help="n of the n^3 GEMM")
    p.add_argument("--gemm-repeats", type=int, default=10, help="timed GEMMs per measurement")
    p.add_argument("--flops-from", default=None,
                   help="a JAX run's JSON of this script: FLOPs for the other backends")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: the cpu shape only (unless --presets), 2 timed steps")
    p.add_argument("--output", default=None, help="JSON path (default benchmarks/results/)")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows of an earlier run into the same --output (its "
                        ".partial.json, written after every model, else the JSON) and "
                        "measure only the missing ones")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), default=None,
                   help="measure nothing: write the FLOPs change between two saved JSONs "
                        "of this script as markdown to --output")
    args = p.parse_args(argv)
    if args.quick:
        args.presets = args.presets or ["cpu"]
        args.repeats = min(args.repeats or 2, 2)
    args.presets = args.presets or list(PRESETS)
    if args.warmup < 1 or (args.repeats is not None and args.repeats < 1):
        p.error("--warmup and --repeats must be >= 1")
    return args




# ------------------------------------------------------------------ GEMM rate

def gemm_rate(size=2048, repeats=10):
    """float32 `size`^3 matmul on the running backend and on numpy.

    Returns a dict: seconds (median) and GFLOP/s (`2 size^3 / seconds`) for
    the backend (`jax.jit(jnp.matmul)`, `tf.matmul`, `torch.matmul`) and numpy.
    """
    import keras
    import numpy as np

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        matmul = jax.jit(jnp.matmul)
        a_, b_ = jnp.asarray(a), jnp.asarray(b)

        def run():
            matmul(a_, b_).block_until_ready()
    elif backend == "tensorflow":
        import tensorflow as tf

        a_, b_ = tf.constant(a), tf.constant(b)

        def run():
            tf.matmul(a_, b_)  # eager CPU ops return when done
    elif backend == "torch":
        import torch

        a_, b_ = torch.from_numpy(a), torch.from_numpy(b)

        def run():
            torch.matmul(a_, b_)
    else:
        raise ValueError(f"no GEMM for backend {backend!r}")
    flops = 2.0 * size**3
    out = {"size": size, "repeats": repeats}
    for name, fn in ((backend, run), ("numpy", lambda: a @ b)):
        fn()  # warm-up (compiles on JAX)
        seconds, times = _common.median_time(fn, repeats)
        out[name] = {"seconds": seconds, "gflops": flops / seconds / 1e9, "times": times}
    return out


# ---------------------------------------------------------------- jaxpr FLOPs

def _size(aval):
    return math.prod(getattr(aval, "shape", ()) or ())


def _subjaxprs(params):
    """The jaxprs inside an equation's parameters (pjit, custom_vjp, remat...)."""
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            inner = getattr(item, "jaxpr", item)
            if hasattr(inner, "eqns"):
                yield inner


def jaxpr_flops(jaxpr):
    """FLOPs of a jaxpr: dict with `total` (loop bodies times their trip
    counts), `once` (every loop body counted once, as XLA's cost analysis
    does), `matmul` (matmuls and convolutions only, with trip counts) and
    `loops` (trip counts seen; `None` for a while loop of unknown count)."""
    total = once = matmul = 0.0
    loops = []
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        params = eqn.params
        if name == "dot_general":
            (contract, _), _ = params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            k = math.prod(lhs[i] for i in contract)
            flops = 2.0 * _size(eqn.outvars[0].aval) * k
            total, once, matmul = total + flops, once + flops, matmul + flops
        elif name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            out_features = rhs[params["dimension_numbers"].rhs_spec[0]]
            flops = 2.0 * _size(eqn.outvars[0].aval) * math.prod(rhs) / out_features
            total, once, matmul = total + flops, once + flops, matmul + flops
        elif name == "scan":
            inner = jaxpr_flops(params["jaxpr"].jaxpr)
            length = params["length"]
            total += length * inner["total"]
            once += inner["once"]
            matmul += length * inner["matmul"]
            loops += [length] + inner["loops"]
        elif name == "while":
            # Unknown trip count: counted once, and flagged.
            for inner in (jaxpr_flops(j) for j in _subjaxprs(params)):
                total, once, matmul = (total + inner["total"], once + inner["once"],
                                       matmul + inner["matmul"])
                loops += inner["loops"]
            loops.append(None)
        elif name == "cond":
            branches = [jaxpr_flops(b.jaxpr) for b in params["branches"]]
            worst = max(branches, key=lambda b: b["total"])
            total, once, matmul = (total + worst["total"], once + worst["once"],
                                   matmul + worst["matmul"])
            loops += worst["loops"]
        elif name in _ELEMENTWISE:
            flops = float(max(_size(v.aval) for v in eqn.outvars))
            total, once = total + flops, once + flops
        elif name in _REDUCTIONS:
            flops = float(_size(eqn.invars[0].aval))
            total, once = total + flops, once + flops
        else:
            for inner in (jaxpr_flops(j) for j in _subjaxprs(params)):
                total, once, matmul = (total + inner["total"], once + inner["once"],
                                       matmul + inner["matmul"])
                loops += inner["loops"]
    return {"total": total, "once": once, "matmul": matmul, "loops": loops}


def jaxpr_dots(jaxpr, trips=1, found=None):
    """Every matmul of a jaxpr as an equivalent GEMM: a dict `(m, k, n) ->
    calls per step` (loop bodies times their trip counts), where a
    `dot_general` with batch dimensions `b`, free dimensions `m`, `n` and
    contraction `k` counts as one `(b m, k) x (k, n)` product (the same
    FLOPs)."""
    found = {} if found is None else found
    for eqn in jaxpr.eqns:
        name, params = eqn.primitive.name, eqn.params
        if name == "dot_general":
            (lc, rc), (lb, rb) = params["dimension_numbers"]
            lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
            k = math.prod(lhs[i] for i in lc)
            m = math.prod(d for i, d in enumerate(lhs) if i not in lc)
            n = math.prod(d for i, d in enumerate(rhs) if i not in rc and i not in rb)
            found[(m, k, n)] = found.get((m, k, n), 0) + trips
        elif name == "scan":
            jaxpr_dots(params["jaxpr"].jaxpr, trips * params["length"], found)
        elif name == "cond":
            jaxpr_dots(params["branches"][0].jaxpr, trips, found)
        else:
            for inner in _subjaxprs(params):
                jaxpr_dots(inner, trips, found)
    return found


def gemm_mix(dots, repeats=5):
    """The matmuls of a step (`jaxpr_dots`) timed one shape at a time, each
    as a jitted float32 GEMM of its own shape: their seconds per step at
    those rates, FLOPs, and the rate of the mix."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    matmul = jax.jit(jnp.matmul)
    seconds = flops = 0.0
    shapes = []
    for (m, k, n), calls in sorted(dots.items(), key=lambda item: -item[0][0] * item[0][1]
                                   * item[0][2] * item[1]):
        a = jnp.asarray(rng.standard_normal((m, k), dtype=np.float32))
        b = jnp.asarray(rng.standard_normal((k, n), dtype=np.float32))
        matmul(a, b).block_until_ready()
        median, _ = _common.median_time(lambda: matmul(a, b).block_until_ready(), repeats)
        shape_flops = 2.0 * m * k * n * calls
        seconds, flops = seconds + median * calls, flops + shape_flops
        shapes.append({"m": m, "k": k, "n": n, "calls": calls, "seconds": median,
                       "gflops": 2.0 * m * k * n / median / 1e9})
    return {"seconds": seconds, "flops": flops, "gflops": flops / seconds / 1e9,
            "shapes": shapes}


def _keras_jitted_step(model):
    """The `jax.jit` train step inside the model's `train_function` (Keras'
    JAX trainer keeps it in a closure), or None. Tracing, lowering and
    compiling it again hit JAX's caches, so its cost analysis comes without
    a second compilation."""
    seen, todo = set(), [getattr(model, "train_function", None)]
    while todo:
        fn = todo.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if hasattr(fn, "trace") and hasattr(fn, "lower"):
            return fn
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                todo.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
    return None


def jax_step_flops(model, x, y=None):
    """FLOPs of the compiled model's jitted `train_step` (JAX): XLA's cost
    analysis plus the loop correction of `jaxpr_flops`. The model must have
    run a training step already (its optimizer and metrics built, and the
    step compiled: `_keras_jitted_step`)."""
    import jax

    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )
    data = jax.tree_util.tree_map(jax.device_put, (x, y, None))
    started = time.perf_counter()
    jitted = _keras_jitted_step(model)
    traced = (jitted or jax.jit(model.train_step)).trace(state, data)
    counted = jaxpr_flops(traced.jaxpr.jaxpr)
    dots = jaxpr_dots(traced.jaxpr.jaxpr)
    compiled = traced.lower().compile()
    compile_seconds = time.perf_counter() - started
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):  # older JAX: one dict per computation
        cost = cost[0]
    xla = float(cost["flops"])
    correction = counted["total"] - counted["once"]
    return {
        "flops": xla + correction,
        "flops_xla": xla,
        "flops_loop_correction": correction,
        "flops_jaxpr": counted["total"],
        "flops_jaxpr_matmul": counted["matmul"],
        "loop_trip_counts": sorted(set(counted["loops"]), key=str),
        "transcendentals_xla": float(cost.get("transcendentals", 0.0)),
        "bytes_accessed_xla": float(cost.get("bytes accessed", 0.0)),
        "trace_and_compile_seconds": compile_seconds,
        "cost_of": "keras train_function" if jitted else "jax.jit(model.train_step)",
        "dots": [[m, k, n, calls] for (m, k, n), calls in dots.items()],
    }


# ------------------------------------------------------------------ step cost

def step_cost(model, x, y=None, warmup=1, repeats=3, flops=True):
    """Cost of one training step of a compiled `model` on the batch `(x, y)`.

    `warmup` untimed `train_on_batch` calls (the first compiles), then the
    median of `repeats` timed ones; on JAX (and with `flops`) the FLOPs of
    the jitted train step (`jax_step_flops`). The weights move with every
    step. Returns a dict: params, batch_size, step_seconds, times, first_step_seconds,
    flops_per_step and flops_per_sequence (None off JAX) and, on JAX, the
    parts of the FLOP count.
    """
    import keras
    import numpy as np

    batch = (x,) if y is None else (x, y)

    def step():
        # The logs come back as Python floats: the step has finished.
        float(np.asarray(model.train_on_batch(*batch)).ravel()[0])

    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    for _ in range(warmup - 1):
        step()
    out = {"params": int(model.count_params()), "batch_size": int(x.shape[0]),
           "first_step_seconds": first, "flops_per_step": None, "flops_per_sequence": None}
    if flops and keras.backend.backend() == "jax":
        counted = jax_step_flops(model, x, y)
        out.update(counted, flops_per_step=counted["flops"],
                   flops_per_sequence=counted["flops"] / x.shape[0])
    seconds, times = _common.median_time(step, repeats)
    out.update(step_seconds=seconds, times=times)
    if out.get("dots"):
        # Where the step's time goes: its matmuls at their own shapes' rates.
        mix = gemm_mix({(m, k, n): c for m, k, n, c in out["dots"]})
        out.update(matmul_mix_seconds=mix["seconds"], matmul_mix_gflops=mix["gflops"],
                   matmul_flops=mix["flops"], matmul_shapes=mix["shapes"])
    return out


def _rows_for(names):
    rows = []
    for name in names:
        for phase in (IMFN_PHASES if name == "imfn" else (BASELINE_PHASE,)):
            rows.append((name, phase))
    return rows


def measure_preset(preset, config, names, digits, args, skip=(), on_row=None, log=print):
    """`step_cost` of every (model, phase) at one preset's shape, but those
    in `skip`; `on_row(row)` after each."""
    import keras

    from keras_imfn.datasets import mnist
    from experiments import mnist_sequence as experiment

    x = mnist.sample_sequences(digits, config["sequence_length"], config["batch_size"], seed=0)
    results = []
    for name, phase in _rows_for(names):
        if (preset, name, phase) in skip:
            continue
        keras.utils.set_random_seed(0)
        model = experiment.build_model(name, config)
        structure = phase != "local"
        if name == "imfn":
            model.end_to_end = phase == "end_to_end"
        options = experiment.compile_options(config, experiment.LEARNING_RATE, structure)
        model.compile(**options)
        # With the SSIM term the data are (x, x), see `compile_model`.
        y = x if "loss" in options else None
        log(f"{preset} {name} {phase}: {model.count_params():,} parameters ...")
        repeats = args.repeats or DEFAULT_REPEATS.get(preset, 3)
        cost = step_cost(model, x, y, warmup=args.warmup, repeats=repeats)
        cost.update(preset=preset, model=name, phase=phase, ssim_term="loss" in options)
        results.append(cost)
        if on_row is not None:
            on_row(cost)
        log(f"    step {cost['step_seconds'] * 1000:.1f} ms"
            + (f", {cost['flops_per_step'] / 1e9:.2f} GFLOP" if cost["flops_per_step"] else ""))
        del model
        keras.backend.clear_session()
        gc.collect()
    return results


def _borrow_flops(rows, path):
    """FLOPs from a JAX run's JSON for rows of another backend."""
    with open(path) as f:
        source = json.load(f)
    known = {(r["preset"], r["model"], r["phase"], r["batch_size"]): r
             for r in source["rows"] if r.get("flops_per_step")}
    for row in rows:
        match = known.get((row["preset"], row["model"], row["phase"], row["batch_size"]))
        if row["flops_per_step"] is None and match is not None:
            row.update(flops_per_step=match["flops_per_step"],
                       flops_per_sequence=match["flops_per_sequence"],
                       flops_from=_common.portable_path(path))


def summarise(rows, gemm):
    """Adds achieved GFLOP/s and the fraction of the GEMM rate to every row."""
    for row in rows:
        if row["flops_per_step"]:
            achieved = row["flops_per_step"] / row["step_seconds"] / 1e9
            row.update(achieved_gflops=achieved, fraction_of_gemm=achieved / gemm)
        else:
            row.update(achieved_gflops=None, fraction_of_gemm=None)
    return rows


def markdown(result):
    config, rows, gemm = result["config"], result["rows"], result["gemm"]
    backend = config["backend"]
    repeats = {r["preset"]: len(r["times"]) for r in rows}
    shapes = ", ".join(
        f"`{p}`: T={c['sequence_length']}, d={c['memory_dim']}, batch {c['batch_size']}, "
        f"{repeats.get(p, 0)} timed steps" for p, c in config["preset_configs"].items())
    table = []
    for r in rows:
        flops = r["flops_per_step"]
        table.append([
            r["preset"], r["model"], r["phase"], f"{r['params']:,}",
            _common.fmt(flops / 1e9) if flops else "n/a",
            _common.fmt(r["flops_per_sequence"] / 1e6) if flops else "n/a",
            _common.fmt(r["step_seconds"] * 1000),
            _common.fmt(r["achieved_gflops"]),
            f"{r['fraction_of_gemm']:.0%}" if r["fraction_of_gemm"] is not None else "n/a",
        ])
    ref = gemm["reference_gflops"]
    rates = [m[backend]["gflops"] for m in gemm["measurements"]]
    numpy_rates = [m["numpy"]["gflops"] for m in gemm["measurements"]]
    resumed = len(gemm["measurements"]) > 2
    lines = [
        f"## Training step cost of the MNIST models, {backend}",
        "",
        (
            f"Shapes: {shapes}. Step: median of the timed `train_on_batch` calls after "
            f"{config['warmup']} warm-up call(s) (the first compiles). IMFN `local`: "
            "`end_to_end=False`, no SSIM term; `end_to_end`: with the preset's SSIM term, if any; "
            f"baselines at IMFN's parameter count. GEMM rate: float32 {gemm['size']}^3 matmul "
            f"on {backend}, timed before the first model and after the last"
            f"{' of each (resumed) invocation' if resumed else ''}: "
            f"{', '.join(_common.fmt(r) for r in rates)} GFLOP/s (reference, the highest: "
            f"{_common.fmt(ref)}; numpy {', '.join(_common.fmt(r) for r in numpy_rates)}). "
            f"CPU count {result['environment']['cpu_count']}."
        ),
        "",
        _common.markdown_table(
            ["preset", "model", "phase", "params", "GFLOP/step", "MFLOP/seq", "step (ms)",
             "GFLOP/s", "of GEMM"], table),
    ]
    notes = []
    if backend == "jax":
        corrected = [r for r in rows if r.get("flops_loop_correction")]
        if corrected:
            notes.append(
                "FLOPs: XLA's cost analysis of the jitted `train_step`; it counts a loop body "
                "once, so the scans over time get (trip count - 1) x their body's jaxpr "
                "FLOPs added: " + ", ".join(
                    f"{r['preset']} {r['model']} +{_common.fmt(r['flops_loop_correction'] / 1e9)}"
                    f" GFLOP (XLA alone {_common.fmt(r['flops_xla'] / 1e9)})" for r in corrected)
                + ".")
        else:
            notes.append("FLOPs: XLA's cost analysis of the jitted `train_step`.")
    elif any(r.get("flops_from") for r in rows):
        notes.append(f"FLOPs from the JAX run `{rows[0].get('flops_from')}` (same shapes); "
                     "the step times are this backend's.")
    else:
        notes.append("No FLOP count on this backend (JAX only; see `--flops-from`).")
    mixed = [r for r in rows if r.get("matmul_mix_seconds")]
    if mixed:
        notes += ["", "Where the time goes (JAX): every matmul of the step timed alone as a "
                  "jitted GEMM of its own shape (`(batch x m, k) x (k, n)`), the calls per step "
                  "summed. `matmul share` is the matmuls' part of the step's FLOPs (both counted in the "
                  "traced jaxpr, before XLA's rewrites); `matmuls "
                  "alone` their time at their own shapes' rates; `rest` the step time left for "
                  "everything else (elementwise ops, concatenations, reductions, the SSIM "
                  "term, the optimizer) and for fusion or scheduling losses.", "",
                  _common.markdown_table(
                      ["preset", "model", "phase", "matmul share", "matmul rate (GFLOP/s)",
                       "of GEMM", "matmuls alone (ms)", "step (ms)", "rest"],
                      [[r["preset"], r["model"], r["phase"],
                        f"{r['matmul_flops'] / r['flops_jaxpr']:.0%}",
                        _common.fmt(r["matmul_mix_gflops"]),
                        f"{r['matmul_mix_gflops'] / gemm['reference_gflops']:.0%}",
                        _common.fmt(r["matmul_mix_seconds"] * 1000),
                        _common.fmt(r["step_seconds"] * 1000),
                        f"{1 - r['matmul_mix_seconds'] / r['step_seconds']:.0%}"]
                       for r in mixed])]
    return "\n".join(lines + [""] + notes) + "\n"


def source_state():
    """The commit of the checkout that ran, and its uncommitted files under
    `keras_imfn/` (what was measured), or None outside git."""
    import subprocess

    def git(*words):
        return subprocess.run(["git", "-C", _common.REPO_ROOT, *words], capture_output=True,
                              text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"),
                "uncommitted": git("status", "--porcelain", "--", "keras_imfn").splitlines()}
    except (OSError, subprocess.CalledProcessError):
        return None


def compare(before_paths, after_paths):
    """Markdown: FLOPs per sequence before and after, for the rows both measured."""
    def rows(paths):
        found = {}
        for path in paths:
            with open(path) as f:
                for row in json.load(f)["rows"]:
                    found[row["preset"], row["model"], row["phase"]] = row
        return found

    before, after = rows(before_paths), rows(after_paths)
    lines = ["| preset | model | phase | MFLOP/seq before | MFLOP/seq after | change |",
             "| --- | --- | --- | --- | --- | --- |"]
    for key in (k for k in before if k in after):
        old, new = before[key]["flops_per_sequence"], after[key]["flops_per_sequence"]
        lines.append(f"| {' | '.join(key)} | {old / 1e6:,.0f} | {new / 1e6:,.0f} "
                     f"| {100 * (new / old - 1):+.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    if args.compare:
        before, after = ([path for path in paths.split(",")] for paths in args.compare)
        table = compare(before, after)
        with open(args.output, "w") as f:
            f.write(table)
        print(table)
        return
    backend = _common.running_or_select_backend(args.backend)
    from keras_imfn.datasets import mnist
    from experiments import mnist_sequence as experiment

    for preset in args.presets:
        if preset not in experiment.PRESETS:
            raise SystemExit(f"--presets: {preset!r} is not one of {sorted(experiment.PRESETS)}")
    names = args.models or list(experiment.MODELS)
    for name in names:
        if name not in experiment.MODELS:
            raise SystemExit(f"--models: {name!r} is not one of {list(experiment.MODELS)}")
    configs = {}
    for preset in args.presets:
        configs[preset] = dict(experiment.PRESETS[preset])
        if args.batch_size:
            configs[preset]["batch_size"] = args.batch_size
    quick = "_quick" if args.quick else ""
    batch = f"_batch{args.batch_size}" if args.batch_size else ""
    output = args.output or _common.default_output(f"step_cost{quick}{batch}_{backend}.json")
    partial = os.path.splitext(output)[0] + ".partial.json"
    environment = _common.environment()
    rows, measurements = [], []
    if args.resume:
        rows, measurements = _resumed(partial, output, backend, configs)
    digits = mnist.load_digits(source="embedded", verbose=False)[0][0]

    def gemm(when):
        rate = dict(gemm_rate(args.gemm_size, args.gemm_repeats), when=when)
        measurements.append(rate)
        print(f"GEMM {args.gemm_size}^3 ({when}): {rate[backend]['gflops']:.0f} GFLOP/s on "
              f"{backend}, numpy {rate['numpy']['gflops']:.0f}")

    def save_partial(row):
        rows.append(row)
        os.makedirs(os.path.dirname(os.path.abspath(partial)), exist_ok=True)
        with open(partial, "w") as f:
            json.dump({"config": {"backend": backend, "preset_configs": configs},
                       "gemm": {"measurements": measurements}, "rows": rows}, f, indent=2)

    gemm("start")
    started = time.perf_counter()
    done = {(r["preset"], r["model"], r["phase"]) for r in rows}
    for preset in args.presets:
        measure_preset(preset, configs[preset], names, digits, args, skip=done,
                       on_row=save_partial)
    gemm("end")
    order = [(p, *row) for p in args.presets for row in _rows_for(names)]
    rows = sorted((r for r in rows if (r["preset"], r["model"], r["phase"]) in order),
                  key=lambda r: order.index((r["preset"], r["model"], r["phase"])))
    reference = max(m[backend]["gflops"] for m in measurements)
    gemm = {"size": args.gemm_size, "measurements": measurements,
            "reference_gflops": reference}
    if args.flops_from and backend != "jax":
        _borrow_flops(rows, args.flops_from)
    summarise(rows, reference)
    environment["load_average_after"] = _common.load_average()
    result = {
        "config": dict(vars(args), backend=backend, preset_configs=configs),
        "command": _common.command_line(), "environment": environment, "source": source_state(),
        "seconds": time.perf_counter() - started, "gemm": gemm, "rows": rows,
        "summary": {f"{r['preset']}/{r['model']}/{r['phase']}": {
            k: r[k] for k in ("params", "flops_per_step", "flops_per_sequence", "step_seconds",
                              "achieved_gflops", "fraction_of_gemm")} for r in rows},
    }
    text = markdown(result)
    _common.write_outputs(output, result, text)
    if os.path.exists(partial):
        os.remove(partial)
    return result


def _resumed(partial, output, backend, configs):
    """Rows and GEMM measurements of an earlier run into `output`, if any;
    it must have measured the same backend and preset configs."""
    for path in (partial, output):
        if not os.path.exists(path):
            continue
        with open(path) as f:
            earlier = json.load(f)
        config = earlier["config"]
        same = config["backend"] == backend and all(
            config["preset_configs"].get(p, c) == c for p, c in configs.items())
        if not same:
            raise SystemExit(f"--resume: {path} measured another backend or preset config")
        rows = [r for r in earlier["rows"] if r["preset"] in configs]
        print(f"--resume: {len(rows)} rows from {_common.portable_path(path)}")
        return rows, list(earlier["gemm"]["measurements"])
    return [], []


if __name__ == "__main__":
    main()
