"""Labelled pictures from the saved ones: rows named, columns numbered.

    python docs/pictures.py   # rewrites the PNGs below in docs/, and draws two new ones

The MNIST and UCF-101 example runs saved their PNGs without labels, and rerunning
them takes hours. So this script relabels them by composing: it crops each row
of frames out of the saved PNG, pixels unchanged, and adds a label strip at the
left (the row's model or level, its MSE or PSNR from the run's JSON, and the
same error on the row itself, from the picture's 8-bit pixels) and a header of
step or frame numbers. It also writes:

- `mnist_cpu_all.png`: every model of the combined MNIST table on the same
  first test sequence, composed from the per-model pictures (the script checks
  that their originals, and their reference rows, are the same pixels);
- `ucf101_levels.png`: PSNR against compression, L0..L3, with the reference rows
  and the published figures (matplotlib, from `ucf101_cpu.json`).

A composed PNG records its layout and labels in a PNG text chunk
(`keras-imfn-picture`), so running the script again crops the same rows from
it and gives the same picture; a PNG an example writes anew is relabelled
the same way. The online-memory PNGs are labelled by their example and left
alone. Needs Pillow >= 10.1 and matplotlib (the `data` extra).
"""

import json
import math
import pathlib
import re
import sys

import numpy as np

DOCS = pathlib.Path(__file__).resolve().parent
KEY = "keras-imfn-picture"
MNIST_TABLE = "mnist_cpu_table"
MNIST_ALL = "mnist_cpu_all.png"
UCF = "ucf101_cpu"
UCF_CURVE = "ucf101_levels.png"
# Pictures that their example labels itself (keras_imfn.experiments.reporting.save_rows_png).
LABELLED_BY_THEIR_EXAMPLE = ("online_memory_t16.png", "online_memory_t32.png")
FONT_SIZE = 12
GAP = 6  # white pixels under each row
PAD = 6  # white pixels around a label


def load(name):
    with open(DOCS / f"{name}.json") as f:
        return json.load(f)


def mse_of(original, row):
    """Pixel MSE of one row of frames against the original, values in [0, 1]."""
    return float(np.mean((row.astype("float64") / 255 - original.astype("float64") / 255) ** 2))


def psnr_of(mse):
    return 10 * math.log10(1 / mse)


# --- reading the saved pictures ---------------------------------------------


def read_rows(path, frame_size):
    """The rows of frames in a saved PNG, as uint8 arrays `(frame, width[, 3])`.

    A PNG as an example wrote it is a plain stack of rows `frame_size` pixels
    high; a PNG this script composed says in its text chunk where its rows are.
    """
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        layout = image.text.get(KEY) if hasattr(image, "text") else None
        pixels = np.asarray(image)
    if layout is None:
        if pixels.shape[0] % frame_size:
            raise ValueError(f"{path}: {pixels.shape[0]} pixels high is not a stack of "
                             f"{frame_size}-pixel rows")
        return [pixels[top:top + frame_size] for top in range(0, pixels.shape[0], frame_size)]
    layout = json.loads(layout)
    left, top, height, step = (layout[k] for k in ("left", "top", "row_height", "row_step"))
    return [pixels[top + i * step: top + i * step + height, left:left + layout["strip_width"]]
            for i in range(layout["rows"])]


def png_row_names(name):
    """The row names a MNIST run's markdown lists under 'PNG rows, top to bottom'."""
    text = (DOCS / f"{name}.md").read_text()
    match = re.search(r"PNG rows, top to bottom: (.+)", text)
    if match is None:
        raise ValueError(f"docs/{name}.md does not say which rows its PNG holds")
    return [row.strip() for row in match.group(1).split(",")]


# --- composing ----------------------------------------------------------------


def stored_layout(path):
    """The layout and labels a composed PNG records (None for any other PNG)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        text = getattr(image, "text", {}).get(KEY)
    return None if text is None else json.loads(text)


def compose(path, rows, labels, frame_width, header, title=None):
    """Writes `rows` (uint8 strips of equal size) with `labels` at the left.

    Args:
        path: the PNG to write.
        rows: the strips, top to bottom, each `(H, W)` or `(H, W, 3)`.
        labels: one text per row (lines split by newlines).
        frame_width: pixels per frame, for the column numbers.
        header: the word before the column numbers (e.g. "step t").
        title: optional line above everything.
    """
    from PIL import Image, ImageDraw, ImageFont
    from PIL.PngImagePlugin import PngInfo

    font = ImageFont.load_default(size=FONT_SIZE)
    line_height = FONT_SIZE + 3
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    label_width = 2 * PAD + max(probe.textlength(line, font=font)
                                for label in labels + [header] for line in label.split("\n"))
    label_width = int(math.ceil(label_width))
    strip_height, strip_width = rows[0].shape[:2]
    text_height = max(len(label.split("\n")) for label in labels) * line_height
    row_step = max(strip_height, text_height) + GAP
    title_height = line_height + PAD if title else 0
    top = title_height + line_height + 2
    mode = "RGB" if rows[0].ndim == 3 else "L"
    white, black = ((255,) * 3, (0,) * 3) if mode == "RGB" else (255, 0)
    canvas = Image.new(mode, (label_width + strip_width + PAD, top + row_step * len(rows)), white)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((PAD, 2), title, fill=black, font=font)
    draw.text((PAD, title_height), header, fill=black, font=font)
    for column in range(strip_width // frame_width):
        number = str(column + 1)
        x = label_width + column * frame_width + (frame_width - probe.textlength(number, font=font)) / 2
        draw.text((x, title_height), number, fill=black, font=font)
    for i, (row, label) in enumerate(zip(rows, labels)):
        y = top + i * row_step
        canvas.paste(Image.fromarray(row), (label_width, y))
        draw.multiline_text((PAD, y), label, fill=black, font=font, spacing=3)
    info = PngInfo()
    info.add_text(KEY, json.dumps(dict(left=label_width, top=top, row_height=strip_height,
                                       row_step=row_step, strip_width=strip_width,
                                       rows=len(rows), labels=labels)))
    canvas.save(path, pnginfo=info)


def mnist_label(name, models, original, row):
    if name == "original":
        return "original\n(first test sequence)"
    scores = models[name]
    seeds = f" ({scores['seeds']} seeds)" if scores.get("seeds", 1) > 1 else ""
    return (f"{name}: MSE {scores['mse']['mean']:.4f}, PSNR {scores['psnr']['mean']:.2f} dB{seeds}\n"
            f"this sequence: MSE {mse_of(original, row):.4f}")


def mnist_pictures():
    """Every MNIST PNG, relabelled; the picture of every model of the combined table.

    Returns the pictures to write: `compose` arguments, with `path` among them.
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
            mnist_label(row, models, original, strip) for row, strip in zip(row_names, rows)],
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
        labels=[mnist_label(name, table["models"], pictures["original"], pictures[name])
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
    labels = ["original\n(first test clip)"]
    for level, row in zip(levels, rows[1:]):
        labels.append(f"L{level['level']}, {level['compression']}-to-1: "
                      f"PSNR {level['psnr']['mean']:.2f} dB (test mean)\n"
                      f"this clip: PSNR {psnr_of(mse_of(rows[0], row)):.2f} dB")
    return [dict(path=DOCS / f"{UCF}.png", rows=rows, labels=labels,
                 frame_width=results["config"]["size"], header="frame")]


def plans():
    """Every labelled picture this script writes with `compose`, read from the saved ones."""
    return mnist_pictures() + ucf_picture()


def ucf_curve():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    results, published = load(UCF), load("published")["ucf101"]
    levels = results["levels"]
    compression = [level["compression"] for level in levels]
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    axes.errorbar(compression, [level["psnr"]["mean"] for level in levels],
                  yerr=[level["psnr"]["std"] for level in levels], marker="o", capsize=3,
                  label="IMFN tree (ours), ± std over test clips")
    axes.plot(compression, [level["pca_psnr"] for level in levels], "s--",
              label="PCA, same size (reference)")
    axes.plot(compression, [level["mean_frame_psnr"] for level in levels], "^:",
              label="group mean frame (reference)")
    axes.plot(compression, published["psnr"], "D-.", label="published (source)")
    for level, x in zip(levels, compression):
        axes.annotate(f"L{level['level']}", (x, level["psnr"]["mean"]), textcoords="offset points",
                      xytext=(6, 6))
    axes.set_xscale("log", base=2)
    axes.margins(x=0.08)
    axes.set_xticks(compression, [f"{c}-to-1" for c in compression])
    axes.set_xlabel("compression (frames per memory node)")
    axes.set_ylabel("PSNR (dB)")
    axes.set_title(f"UCF-101 {results['config']['size']}x{results['config']['size']}, "
                   f"{results['data']['test']['clips']} test clips: PSNR from each level")
    axes.grid(True, alpha=0.3)
    handles, names = axes.get_legend_handles_labels()
    first = names.index("IMFN tree (ours), ± std over test clips")
    axes.legend([handles[first]] + handles[:first] + handles[first + 1:],
                [names[first]] + names[:first] + names[first + 1:], fontsize=8)
    figure.tight_layout()
    figure.savefig(DOCS / UCF_CURVE, metadata={"Software": None, KEY: json.dumps(
        dict(source=f"{UCF}.json", plot="psnr against compression"))})
    plt.close(figure)
    return DOCS / UCF_CURVE


def main():
    written = []
    for plan in plans():  # every picture read before any is written
        compose(**plan)
        written.append(plan["path"])
    written.append(ucf_curve())
    print("wrote: " + ", ".join(f"docs/{path.name}" for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
