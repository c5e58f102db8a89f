"""Evaluation of the experiments: per-level errors of a tree, the error
statistics of a table row, a student against its teacher."""

import keras
import numpy as np

from keras_imfn import metrics


def psnr_of_mse(mse):
    """`keras_imfn.metrics.psnr_of_mean_mse` of one mean MSE, as a float."""
    return float(keras.ops.convert_to_numpy(metrics.psnr_of_mean_mse(mse)))


def error_stats(per_item_mse):
    """The error columns of a table row from the MSE of each item (sequence, clip).

    Returns:
        A dict: `mse`, the mean of `per_item_mse`; `mse_std`, their standard
        deviation; `psnr`, the PSNR of the mean MSE (the source's definition,
        `psnr_of_mse`); `psnr_std`, the standard deviation of the per-item PSNR.
    """
    per_item_mse = np.asarray(per_item_mse)
    mse = float(per_item_mse.mean())
    return {
        "mse": mse,
        "mse_std": float(per_item_mse.std()),
        "psnr": psnr_of_mse(mse),
        "psnr_std": float(np.std(10.0 * np.log10(1.0 / per_item_mse))),
    }


def batches(x, batch_size):
    """`x` batch by batch: slices of an array, or the batches of a
    `keras.utils.PyDataset` (their inputs), each read once."""
    if isinstance(x, keras.utils.PyDataset):
        for index in range(len(x)):
            batch = x[index]
            yield batch[0] if isinstance(batch, tuple) else batch
    else:
        for start in range(0, len(x), batch_size):
            yield x[start : start + batch_size]


def in_batches(fn, x, batch_size=64):
    """`fn` over `x` batch by batch (`batches`), the outputs as one numpy array:
    the one batched-inference loop of the experiments."""
    return np.concatenate([keras.ops.convert_to_numpy(fn(batch))
                           for batch in batches(x, batch_size)])


def level_errors(model, x, batch_size=128):
    """Pixel error of reconstructing `x` from every level of a `TreeMemory`.

    Row `leaf` encodes and decodes the leaves only; row `k` goes up to the
    level-`k` nodes (each summarising `2**(k+1)` steps) and back down; the
    last row is the root. MSE is averaged over every pixel of every
    sequence; `mse_std` is the standard deviation of the per-sequence MSE.
    PSNR is `10 log10(1 / MSE)` of the mean MSE (the source's definition),
    and `psnr_std` the standard deviation of the per-sequence PSNR.

    Args:
        model: a `TreeMemory`.
        x: sequences, an array `(N, T, ...)` (read in batches of
            `batch_size`) or a `keras.utils.PyDataset` of them (e.g. a
            `ClipStream`, read once, batch by batch).
        batch_size: sequences per batch of an array.

    Returns:
        A list of dicts with keys `level`, `compression`, `mse`, `mse_std`,
        `psnr`, `psnr_std`.
    """
    levels = range(-1, model.num_levels)
    per_sequence = {level: [] for level in levels}
    for batch in batches(x, batch_size):
        axes = tuple(range(1, batch.ndim))
        for level in levels:
            restored = keras.ops.convert_to_numpy(model.reconstruct(batch, level=level))
            per_sequence[level].append(((restored - batch) ** 2).mean(axis=axes))
    return [
        {
            "level": "leaf" if level < 0 else level,
            "compression": 1 if level < 0 else 2 ** (level + 1),
            **error_stats(np.concatenate(per_sequence[level])),
        }
        for level in levels
    ]


def pixel_mse(model, memories, x, batch_size=128):
    """Pixel MSE of decoding `memories` with `model.decode` against `x`."""
    decoded = in_batches(model.decode, memories, batch_size)
    return float(((decoded - x) ** 2).mean())


def student_vs_teacher(trainer, x, batch_size=128):
    """Teacher vs student pixel MSE of a `DistillationTrainer` on `x`.

    The teacher decodes its own root; the student's final memory is decoded
    by the same teacher decoder. Also returns the normalised trajectory error
    of the student at every step.
    """
    teacher = trainer.teacher
    targets, students = [], []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        targets.append(keras.ops.convert_to_numpy(teacher.trajectory(batch)))
        students.append(keras.ops.convert_to_numpy(trainer(batch)))
    target, student = np.concatenate(targets), np.concatenate(students)
    teacher_mse = pixel_mse(teacher, target[:, -1], x, batch_size)
    student_mse = pixel_mse(teacher, student[:, -1], x, batch_size)
    return {
        "teacher_mse": teacher_mse,
        "student_mse": student_mse,
        "ratio": student_mse / teacher_mse,
        "trajectory_error_per_step": per_step_error(student, target),
    }


def per_step_error(predicted, target):
    """Squared trajectory error per step over the target's variance there.

    In float64: a diverging student's error (the untrained inverse path's
    grows tenfold a step) squares past float32's range, not into `inf`."""
    predicted, target = np.asarray(predicted, "float64"), np.asarray(target, "float64")
    scale = target.var(axis=0).mean(axis=-1) + 1e-6
    return (((predicted - target) ** 2).mean(axis=(0, 2)) / scale).tolist()
