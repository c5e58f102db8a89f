"""Per-level reconstruction tables for `TreeMemory`."""

import math

import keras
import numpy as np


def psnr_of_mse(mse):
    """PSNR in dB of a mean squared error, for signals in [0, 1]."""
    return 10.0 * math.log10(1.0 / mse) if mse > 0 else math.inf


def level_errors(model, x, batch_size=128):
    """Pixel error of reconstructing `x` from every level of a `TreeMemory`.

    Row `leaf` encodes and decodes the leaves only; row `k` goes up to the
    level-`k` nodes (each summarising `2**(k+1)` steps) and back down; the
    last row is the root. MSE is averaged over every pixel of every
    sequence; `mse_std` is the standard deviation of the per-sequence MSE.
    PSNR is `10 log10(1 / MSE)` of the mean MSE (the source's definition),
    and `psnr_std` the standard deviation of the per-sequence PSNR.

    Returns:
        A list of dicts with keys `level`, `compression`, `mse`, `mse_std`,
        `psnr`, `psnr_std`.
    """
    rows = []
    for level in range(-1, model.num_levels):
        per_sequence = []
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]
            restored = keras.ops.convert_to_numpy(model.reconstruct(batch, level=level))
            axes = tuple(range(1, batch.ndim))
            per_sequence.append(((restored - batch) ** 2).mean(axis=axes))
        per_sequence = np.concatenate(per_sequence)
        mse = float(per_sequence.mean())
        rows.append(
            {
                "level": "leaf" if level < 0 else level,
                "compression": 1 if level < 0 else 2 ** (level + 1),
                "mse": mse,
                "mse_std": float(per_sequence.std()),
                "psnr": psnr_of_mse(mse),
                "psnr_std": float(np.std(10.0 * np.log10(1.0 / per_sequence))),
            }
        )
    return rows


def markdown_table(rows):
    """Formats `level_errors` rows as a markdown table."""
    lines = [
        "| level | compression | MSE ± std | PSNR (dB) ± std |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['level']} | {row['compression']}-to-1 | "
            f"{row['mse']:.6f} ± {row['mse_std']:.6f} | "
            f"{row['psnr']:.2f} ± {row['psnr_std']:.2f} |"
        )
    return "\n".join(lines)
