"""Tables and pictures of the experiments: one markdown writer, one PNG writer."""

import json

import numpy as np


def markdown_table(headers, rows):
    """A GitHub markdown table; cells are formatted with `str`.

    Example:

    >>> print(markdown_table(["model", "MSE"], [["imfn", "0.0123"]]))
    | model | MSE |
    | --- | --- |
    | imfn | 0.0123 |
    """
    lines = [
        "| " + " | ".join(str(header) for header in headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def level_errors_table(rows):
    """Formats `evaluation.level_errors` rows as a markdown table."""
    return markdown_table(
        ["level", "compression", "MSE ± std", "PSNR (dB) ± std"],
        [
            [
                row["level"],
                f"{row['compression']}-to-1",
                f"{row['mse']:.6f} ± {row['mse_std']:.6f}",
                f"{row['psnr']:.2f} ± {row['psnr_std']:.2f}",
            ]
            for row in rows
        ],
    )


# A labelled PNG records its layout and labels in this PNG text chunk, so its
# rows can be read back pixel for pixel (`read_rows`) and relabelled.
PICTURE_KEY = "keras-imfn-picture"
FONT_SIZE = 12
GAP = 6  # white pixels under each row
PAD = 6  # white pixels around a label


def save_rows_png(path, rows, labels=None, frame_width=None, header=None, title=None):
    """Writes a PNG of frame sequences, one sequence per row, left to right.

    With `labels`, each row gets its text in a white margin at the left, the
    columns are numbered above the rows (every `frame_width` pixels, after
    the word `header`), and the layout and labels are recorded in the PNG
    (`PICTURE_KEY`), so `read_rows` gives the rows back pixel for pixel.
    Without, the rows are stacked with nothing between them.

    Args:
        path: the PNG to write.
        rows: sequences of frames, each `(T, H, W)` or `(T, H, W, 1)` (gray)
            or `(T, H, W, 3)` (RGB), values in [0, 1] (clipped), or already-drawn strips
            `(H, T * W[, 3])` of uint8; every row the same size.
        labels: optional text per row (lines split by newlines).
        frame_width: pixels per frame, for the column numbers (default: a
            frame's width; required for uint8 strips).
        header: the word before the column numbers (default `"step"`).
        title: optional line above everything.

    Needs Pillow >= 10.1 (`ImageFont.load_default(size=...)`).
    """
    from PIL import Image

    rows = [row[..., 0] if row.ndim == 4 and row.shape[-1] == 1 else row  # gray, one channel
            for row in (np.asarray(row) for row in rows)]
    # A diverged model's NaN pixels are drawn black, its infinities clipped.
    strips = [row if row.dtype == np.uint8 else
              (np.concatenate(list(np.clip(np.nan_to_num(row, nan=0.0), 0, 1)), axis=1)
               * 255).round().astype("uint8")
              for row in rows]
    if labels is None:
        Image.fromarray(np.concatenate(strips, axis=0)).save(path)
        return
    from PIL import ImageDraw
    from PIL import ImageFont
    from PIL.PngImagePlugin import PngInfo

    if len(labels) != len(rows):
        raise ValueError(f"Expected one label per row; received {len(labels)} labels for "
                         f"{len(rows)} rows.")
    if frame_width is None:
        if rows[0].dtype == np.uint8:
            raise ValueError("`frame_width` is needed for rows given as uint8 strips.")
        frame_width = rows[0].shape[2]
    header = "step" if header is None else header
    font = ImageFont.load_default(size=FONT_SIZE)
    line_height = FONT_SIZE + 3
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    label_width = int(np.ceil(2 * PAD + max(
        probe.textlength(line, font=font) for label in list(labels) + [header]
        for line in label.split("\n"))))
    strip_height, strip_width = strips[0].shape[:2]
    text_height = max(len(label.split("\n")) for label in labels) * line_height
    row_step = max(strip_height, text_height) + GAP
    title_height = line_height + PAD if title else 0
    top = title_height + line_height + 2
    mode = "RGB" if strips[0].ndim == 3 else "L"
    white, black = ((255,) * 3, (0,) * 3) if mode == "RGB" else (255, 0)
    canvas = Image.new(mode, (label_width + strip_width + PAD, top + row_step * len(strips)),
                       white)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((PAD, 2), title, fill=black, font=font)
    draw.text((PAD, title_height), header, fill=black, font=font)
    for column in range(strip_width // frame_width):
        number = str(column + 1)
        x = label_width + column * frame_width + (
            frame_width - probe.textlength(number, font=font)) / 2
        draw.text((x, title_height), number, fill=black, font=font)
    for i, (strip, label) in enumerate(zip(strips, labels)):
        y = top + i * row_step
        canvas.paste(Image.fromarray(strip), (label_width, y))
        draw.multiline_text((PAD, y), label, fill=black, font=font, spacing=3)
    info = PngInfo()
    info.add_text(PICTURE_KEY, json.dumps(dict(
        left=label_width, top=top, row_height=strip_height, row_step=row_step,
        strip_width=strip_width, rows=len(strips), labels=list(labels))))
    canvas.save(path, pnginfo=info)


def stored_layout(path):
    """The layout and labels a labelled PNG records (None for any other PNG)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        text = getattr(image, "text", {}).get(PICTURE_KEY)
    return None if text is None else json.loads(text)


def read_rows(path, frame_size):
    """The rows of frames of a PNG `save_rows_png` wrote, as uint8 strips
    `(frame_size, width[, 3])`: from its recorded layout when labelled, else
    as a plain stack of rows `frame_size` pixels high."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        layout = getattr(image, "text", {}).get(PICTURE_KEY)
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


def row_mse(original, row):
    """Pixel MSE of one row of frames against the original, both in [0, 1]
    (float arrays) or both uint8 strips."""
    original, row = (np.asarray(a, "float64") / (255 if np.asarray(a).dtype == np.uint8 else 1)
                     for a in (original, row))
    return float(np.mean((np.clip(row, 0, 1) - np.clip(original, 0, 1)) ** 2))
