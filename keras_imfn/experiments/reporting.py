"""Tables and pictures of the experiments: one markdown writer, one PNG writer."""

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


def save_rows_png(path, rows, labels=None, label_width=260, gap=6, font_size=12):
    """Writes a PNG of frame sequences, one sequence per row, left to right.

    Args:
        path: the PNG to write.
        rows: sequences of frames, each `(T, H, W)` (gray) or `(T, H, W, 3)`
            (RGB), values in [0, 1] (clipped); every frame of every row
            has the same size.
        labels: optional text per row, drawn in a white margin of
            `label_width` pixels at the left, with `gap` white pixels under
            each row (needs Pillow's `ImageFont.load_default(size=...)`,
            Pillow >= 10.1).
        label_width: width of the label margin, in pixels.
        gap: white pixels under each labelled row.
        font_size: size of the labels' font.
    """
    from PIL import Image

    strips = [(np.concatenate(list(np.clip(row, 0, 1)), axis=1) * 255).astype("uint8")
              for row in rows]
    if labels is None:
        Image.fromarray(np.concatenate(strips, axis=0)).save(path)
        return
    from PIL import ImageDraw
    from PIL import ImageFont

    if len(labels) != len(rows):
        raise ValueError(f"Expected one label per row; received {len(labels)} labels for "
                         f"{len(rows)} rows.")
    font = ImageFont.load_default(size=font_size)
    blocks = []
    for strip, label in zip(strips, labels):
        mode, white, black = ("RGB", (255,) * 3, (0,) * 3) if strip.ndim == 3 else ("L", 255, 0)
        block = Image.new(mode, (label_width + strip.shape[1], strip.shape[0] + gap), white)
        block.paste(Image.fromarray(strip), (label_width, 0))
        ImageDraw.Draw(block).multiline_text((4, 1), label, fill=black, font=font)
        blocks.append(block)
    canvas = Image.new(blocks[0].mode, (max(block.width for block in blocks),
                                        sum(block.height for block in blocks)), white)
    top = 0
    for block in blocks:
        canvas.paste(block, (0, top))
        top += block.height
    canvas.save(path)
