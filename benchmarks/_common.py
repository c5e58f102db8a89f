"""Shared helpers for the benchmark scripts in this folder.

Nothing here imports Keras at module level: the scripts must choose the
backend (``KERAS_BACKEND``) before Keras is first imported, so
``select_backend`` is called first and everything else imports lazily.
"""

import json
import os
import platform
import shlex
import statistics
import sys
import time

# The experiment drivers live beside the examples, not in the package.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(BENCH_DIR, "results")
REPO_ROOT = os.path.dirname(BENCH_DIR)
# KERAS_BACKEND as the user set it, before select_backend() fills it in.
_ORIGINAL_KERAS_BACKEND = os.environ.get("KERAS_BACKEND")


def select_backend(requested, default="jax"):
    """Sets ``KERAS_BACKEND`` before Keras is imported.

    Priority: the ``--backend`` argument, then an existing ``KERAS_BACKEND``
    environment variable, then ``default``. Returns the chosen name.
    """
    if "keras" in sys.modules:
        raise RuntimeError("select_backend must run before keras is imported")
    backend = requested or os.environ.get("KERAS_BACKEND") or default
    os.environ["KERAS_BACKEND"] = backend
    return backend


def running_or_select_backend(requested):
    """`select_backend`, or, when Keras is already imported (a test importing
    a benchmark), the running backend, which must be `requested`."""
    if "keras" not in sys.modules:
        return select_backend(requested)
    import keras

    backend = keras.backend.backend()
    if requested and requested != backend:
        raise SystemExit(f"Keras already runs {backend}; cannot switch to {requested}")
    return backend


def portable_path(path):
    """``path`` relative to the repository root when inside it, so recorded
    results hold no machine paths."""
    absolute = os.path.abspath(path)
    if absolute.startswith(REPO_ROOT + os.sep):
        return os.path.relpath(absolute, REPO_ROOT)
    return path  # outside the repository: as given (a relative path stays relative)


def command_line():
    """The command line that started this process, shell-quoted, with the
    ``KERAS_BACKEND`` environment variable in front when it was set; the
    interpreter is written ``python`` and repository paths relative."""
    words = ["python"] + [portable_path(a) if os.path.exists(a) else a for a in sys.argv]
    prefix = f"KERAS_BACKEND={_ORIGINAL_KERAS_BACKEND} " if _ORIGINAL_KERAS_BACKEND else ""
    return prefix + " ".join(shlex.quote(a) for a in words)


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not on every platform
        return None


def environment(extra_backends=()):
    """Versions, CPU count and load of this machine (imports Keras)."""
    import keras
    import numpy as np

    import keras_imfn

    versions = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_imfn": keras_imfn.__version__,
        "numpy": np.__version__,
    }
    for name in {keras.backend.backend(), *extra_backends}:
        versions.update(backend_versions(name))
    return {
        "keras_backend": keras.backend.backend(),
        "versions": versions,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average_1_5_15min": load_average(),
    }


def backend_versions(name):
    """Version of the framework behind a Keras backend, imported on demand."""
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(name)
    if module is None:
        return {}
    try:
        mod = __import__(module)
        out = {module: mod.__version__}
        if module == "jax":
            import jaxlib

            out["jaxlib"] = jaxlib.__version__
        return out
    except Exception as error:  # report, don't fail the benchmark
        return {module: f"unavailable ({error})"}


def median_time(fn, repeats):
    """Runs ``fn`` ``repeats`` times; returns (median seconds, all seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def interleaved_times(step, names, warmup, repeats):
    """Seconds of ``step(name)`` per name: ``warmup`` untimed calls each, then
    ``repeats`` rounds that call every name once in turn (so slow drifts of a
    shared machine hit all variants alike). Returns ``{name: [seconds, ...]}``."""
    for name in names:
        for _ in range(warmup):
            step(name)
    times = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            times[name].append(median_time(lambda: step(name), 1)[0])
    return times


def markdown_table(headers, rows):
    """A GitHub markdown table; cells are formatted with ``str``
    (``experiments.reporting.markdown_table``, imported once the backend is set)."""
    from experiments.reporting import markdown_table

    return markdown_table(headers, rows)


def fmt(value, digits=3):
    """Formats a number with ``digits`` significant digits; passes strings through."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"


def write_outputs(output, result, markdown):
    """Writes ``result`` as JSON at ``output`` and ``markdown`` beside it (.md)."""
    output = os.path.abspath(output)
    if isinstance(result.get("config"), dict) and "output" in result["config"]:
        result["config"]["output"] = portable_path(output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    md_path = os.path.splitext(output)[0] + ".md"
    with open(md_path, "w") as f:
        f.write(markdown.rstrip() + "\n")
    print(markdown)
    print(f"\nWrote {output}\nWrote {md_path}")
    return output, md_path


def default_output(name):
    return os.path.join(RESULTS_DIR, name)


def randomize_zero_kernels(layer, seed=0, scale=1.0):
    """Re-draws every all-zero 2-D kernel of ``layer`` at random.

    The sweepers' and the student's output projections start at zero, so an
    untrained merge is exactly the mean of its children and an untrained
    student never moves its memory. Benchmarks do not train, so to make
    agreement checks non-trivial (and the states non-constant) these kernels
    get Glorot-normal values times ``scale``. Timing does not depend on the values.
    Returns the number of kernels re-drawn.
    """
    import keras
    import numpy as np

    rng = np.random.default_rng(seed)
    count = 0
    for variable in layer.weights:
        if len(variable.shape) != 2:
            continue
        value = keras.ops.convert_to_numpy(variable)
        if np.any(value):
            continue
        fan_in, fan_out = variable.shape
        std = scale * (2.0 / (fan_in + fan_out)) ** 0.5
        variable.assign(rng.normal(0.0, std, variable.shape).astype(value.dtype))
        count += 1
    return count
