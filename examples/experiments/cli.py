"""Argument checks shared by the example scripts."""

import argparse
import importlib
import json
import math
import os
import sys


def positive_int(text):
    """`argparse` type: an integer >= 1, else a clear usage error."""
    return _int_at_least(text, 1)


def non_negative_int(text):
    """`argparse` type: an integer >= 0, else a clear usage error."""
    return _int_at_least(text, 0)


def _int_at_least(text, low):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def json_path(text):
    """`argparse` type: a path ending in `.json`, else a clear usage error.

    The scripts write their markdown (and picture) beside the JSON, at the
    same path with `.md` (`.png`); with another ending they could overwrite it.
    """
    stem, extension = os.path.splitext(text)
    if extension.lower() != ".json" or not os.path.basename(stem):
        raise argparse.ArgumentTypeError(
            f"expected a .json path (the .md and .png are written beside it), got {text!r}"
        )
    return text


def comma_list(item_type=str, choices=None):
    """`argparse` type: a comma-separated list, each item converted by
    `item_type` and, with `choices`, one of them; else a clear usage error."""

    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        values = [item_type(item) for item in items]
        unknown = [v for v in values if choices is not None and v not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(repr, unknown))}; expected names from {list(choices)}"
            )
        return values

    return parse


def add_data_parallel(parser):
    """`--data-parallel`: train over every device found (JAX, TensorFlow); the
    script passes `args.data_parallel` to `keras_imfn.distribution.data_parallel`."""
    parser.add_argument(
        "--data-parallel", action="store_true",
        help="split each batch over every device found (keras.distribution.DataParallel "
             "on JAX, tf.distribute.MirroredStrategy on TensorFlow)",
    )


def add_preset_arguments(parser, saved, scored, model="TreeMemory"):
    """A table's `--save-preset DIR`, `--table JSON` and `--evaluate-preset NAME`:
    `saved`, the model that `--save-preset` takes from `--run-dir`; `scored`,
    what of the table `--evaluate-preset` prints; `model`, the preset's class
    (its name)."""
    parser.add_argument("--save-preset", metavar="DIR",
                        help=f"train nothing: save {saved} as a preset directory "
                             f"({model}.save_to_preset)")
    parser.add_argument("--table", metavar="JSON",
                        help=f"with --save-preset: the committed table whose {scored} it "
                             "reproduces")
    parser.add_argument("--evaluate-preset", metavar="NAME",
                        help=f"train nothing: score a preset (a name of {model}.presets or "
                             f"a directory) on its table's test data and print its {scored}")


def require(module, extra):
    """Exits with a clear message, before any work, if `module` is missing.

    For what a script needs only at its end (e.g. Pillow for the PNG), so
    that a long run does not fail after training.
    """
    try:
        importlib.import_module(module)
    except ImportError:
        raise SystemExit(
            f"This script needs the {module!r} module, which is not installed: "
            f"pip install 'keras-imfn[{extra}]'"
        ) from None


def add_report_only(parser):
    """`--report-only`: the table of what `--run-dir` holds, training nothing."""
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: the table of what --run-dir has finished, the "
                             "rest listed as pending (a long run's partial outputs)")


def check_report_only(parser, args):
    """Refuses `--report-only` without a run directory to report."""
    if args.report_only and not (args.run_dir and os.path.isdir(args.run_dir)):
        parser.error("--report-only reports what --run-dir holds: give --run-dir, a run's "
                     "directory" + (f" ({args.run_dir} is none)" if args.run_dir else ""))


def pending_note(results):
    """The markdown line naming a partial table's unfinished models ("" if none)."""
    if not results["pending"]:
        return ""
    return f"\nNot finished yet (the run goes on): {', '.join(results['pending'])}\n"


def finite_json(value, path="$"):
    """`value` with every NaN or infinite float replaced by None, and the paths
    (`$.lengths.64.mse`) of those replaced."""
    if isinstance(value, dict):
        pairs = [(key, finite_json(item, f"{path}.{key}")) for key, item in value.items()]
        return ({key: item for key, (item, _) in pairs},
                [p for _, (_, paths) in pairs for p in paths])
    if isinstance(value, (list, tuple)):
        pairs = [finite_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return [item for item, _ in pairs], [p for _, paths in pairs for p in paths]
    if isinstance(value, float) and not math.isfinite(value):
        return None, [path]
    return value, []


def write_results(path, results, table, notes=""):
    """Prints `table` and writes `results` (with the command and backend) as JSON at
    `path` and the command, table and `notes` as markdown beside it; returns the stem
    (`path` without `.json`) for further files such as a PNG."""
    import keras

    results["command"] = " ".join(["python"] + sys.argv)
    results["backend"] = keras.config.backend()
    print(table)
    results, non_finite = finite_json(results)
    if non_finite:  # said, not hidden: JSON has no NaN or infinity
        results["non_finite"] = {"paths": non_finite, "reason": (
            "these figures were not finite numbers (a diverged model or an empty split); "
            "they are written as null")}
    with open(path, "w") as f:
        json.dump(results, f, indent=2, allow_nan=False)
    stem = os.path.splitext(path)[0]
    with open(stem + ".md", "w") as f:
        f.write(f"`{results['command']}` (backend {results['backend']})\n\n{table}\n{notes}")
    return stem
