"""Labelled pictures from the saved ones: rows named, columns numbered.

    python docs/pictures.py   # rewrites the PNGs below in docs/, and draws two new ones

The example scripts label the PNGs they write (`examples/experiments/reporting.py`,
.save_rows_png`: the row's model or level, its MSE or PSNR from the run's JSON, the
same error on the row itself, a header of step or frame numbers), but the committed
MNIST and UCF-101 runs are older than that, and rerunning them takes hours. So this
script labels the committed pictures from their saved rows, pixels unchanged, with the
labels the examples now write, and it draws what no single run draws:

- `mnist_cpu_all.png`: every model of the combined MNIST table on the same
  first test sequence, composed from the per-model pictures (the script checks
  that their originals, and their reference rows, are the same pixels);
- `ucf101_levels.png`: PSNR against compression, L0..L3, with the reference rows
  and the published figures (`video_tree.save_level_curve`, from `ucf101_cpu.json`).

A labelled PNG records its layout and labels in a PNG text chunk
(`keras-imfn-picture`), so running the script again crops the same rows from
it and gives the same picture. The online-memory PNGs are left alone (their
example run is recent). Needs Pillow >= 10.1 and matplotlib (the `data` extra).
"""

import json
import pathlib
import re
import sys

import numpy as np

# The experiment drivers live in examples/experiments.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "examples"))

from experiments import mnist_sequence
from experiments.reporting import read_rows
from experiments.reporting import save_rows_png
from experiments import video_tree

DOCS = pathlib.Path(__file__).resolve().parent
MNIST_TABLE = "mnist_cpu_table"
MNIST_ALL = "mnist_cpu_all.png"
UCF = "ucf101_cpu"
UCF_CURVE = "ucf101_levels.png"
# Pictures that their example labels itself (examples/experiments/reporting.py, save_rows_png).
LABELLED_BY_THEIR_EXAMPLE = ("online_memory_t16.png", "online_memory_t32.png")


def load(name):
    with open(DOCS / f"{name}.json") as f:
        return json.load(f)


def png_row_names(name):
    """The row names a MNIST run's markdown lists under 'PNG rows, top to bottom'."""
    text = (DOCS / f"{name}.md").read_text()
    match = re.search(r"PNG rows, top to bottom: (.+)", text)
    if match is None:
        raise ValueError(f"docs/{name}.md does not say which rows its PNG holds")
    return [row.strip() for row in match.group(1).split(",")]


# --- composing ----------------------------------------------------------------


def mnist_pictures():
    """Every MNIST PNG, relabelled; the picture of every model of the combined table.

    Returns the pictures to write: `save_rows_png` arguments, with
    `path` among them.
    """
    names = sorted(path.stem for path in DOCS.glob("mnist_cpu*.png")
                   if path.name != MNIST_ALL and (DOCS / f"{path.stem}.json").exists())
    saved, plans = {}, []
    for name in names:
        rows = read_rows(DOCS / f"{name}.png", 28)
        row_names = png_row_names(name)
        if len(rows) != len(row_names):
            raise ValueError(f"docs/{name}.png has {len(rows)} rows; docs/{name}.md names "
                             f"{len(row_names)}")
        saved[name] = dict(zip(row_names, rows))
        models = load(name)["models"]
        original = saved[name]["original"]
        plans.append(dict(path=DOCS / f"{name}.png", rows=rows, labels=[
            mnist_sequence.row_label(row, models, original, strip) for row, strip in zip(row_names, rows)],
            frame_width=28, header="step t"))

    table = load(MNIST_TABLE)
    runs = [pathlib.Path(run["command"].split("--output ")[1].split()[0]).stem
            for run in table["runs"]]
    pictures = {}
    for run in runs:
        for row_name, strip in saved[run].items():
            if row_name in pictures and not np.array_equal(pictures[row_name], strip):
                raise ValueError(f"row {row_name!r} of docs/{run}.png differs from the same row "
                                 "of another run's picture: not the same test sequence")
            pictures.setdefault(row_name, strip)
    order = ["original"] + list(table["models"])
    missing = [name for name in order if name not in pictures]
    if missing:
        raise ValueError(f"no saved picture holds the rows {missing}")
    plans.append(dict(
        path=DOCS / MNIST_ALL, rows=[pictures[name] for name in order],
        labels=[mnist_sequence.row_label(name, table["models"], pictures["original"],
                                         pictures[name])
                for name in order],
        frame_width=28, header="step t",
        title=f"Every model of {MNIST_TABLE}.json on the first test sequence "
              "(composed from the saved per-model pictures)"))
    return plans


def ucf_picture():
    results = load(UCF)
    rows = read_rows(DOCS / f"{UCF}.png", results["config"]["size"])
    levels = results["levels"]
    if len(rows) != 1 + len(levels):
        raise ValueError(f"docs/{UCF}.png has {len(rows)} rows; expected the original and "
                         f"{len(levels)} levels")
    labels = video_tree.level_labels(results, rows)
    return [dict(path=DOCS / f"{UCF}.png", rows=rows, labels=labels,
                 frame_width=results["config"]["size"], header="frame")]


def plans():
    """Every labelled picture this script writes, read from the saved ones."""
    return mnist_pictures() + ucf_picture()


def ucf_curve():
    video_tree.save_level_curve(DOCS / UCF_CURVE, load(UCF), load("published")["ucf101"]["psnr"])
    return DOCS / UCF_CURVE


def main():
    written = []
    for plan in plans():  # every picture read before any is written
        save_rows_png(**plan)
        written.append(plan["path"])
    written.append(ucf_curve())
    print("wrote: " + ", ".join(f"docs/{path.name}" for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
