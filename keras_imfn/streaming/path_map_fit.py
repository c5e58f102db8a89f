"""The path map's closed-form start: `DistillationTrainer.adapt`.

Where the teacher's merges are linear, its step is `y_{t+1} - y_t =
A_t (e(x_t) - e(0))`: a linear map per leaf position. The student's path map
is fitted to that form on training sequences, position by position: the
teacher's increments are regressed on the encoded inputs (ridge, with an
offset), and the fitted map is cut to rank `k` where it moves the increments
most (reduced-rank regression: the top `k` principal directions of the fitted
increments). The data are read batch by batch; per position the fit keeps
the inputs' and increments' moments, `2 d^2` numbers.
"""

import numpy as np
from keras import ops

# The ridge, relative to the inputs' mean variance: keeps the solve
# well-posed where the encoded inputs span fewer than d directions.
RIDGE = 1e-4


def fit_path_map(trainer, x, batch_size=64):
    """Sets the student's path map (`path_in`, `path_out`, `path_bias`) to
    the reduced-rank regression of the teacher's increments on `e(x_t) - e(0)`.

    Returns the fraction of the increments' variance the fitted maps
    explain, one per position seen (`(T,)`), on the same sequences.
    """
    student, teacher = trainer.student, trainer.teacher
    steps = x.shape[1]
    moments = None
    unseen = ops.convert_to_numpy(student.encoder(
        ops.zeros((1,) + tuple(x.shape[2:]), student.compute_dtype))).astype("float64")
    for start in range(0, len(x), batch_size):
        batch = ops.convert_to_tensor(x[start:start + batch_size], student.compute_dtype)
        after = ops.convert_to_numpy(teacher.trajectory(batch)).astype("float64")
        before = np.concatenate([np.zeros_like(after[:, :1]), after[:, :-1]], axis=1)
        increments = after - before  # the student's memory starts at zero: y_0 in b_0
        flat = ops.reshape(batch, (-1,) + tuple(batch.shape[2:]))
        written = ops.convert_to_numpy(student.encoder(flat)).astype("float64") - unseen
        written = written.reshape(len(after), steps, -1).transpose(1, 0, 2)  # (T, B, d)
        increments = increments.transpose(1, 0, 2)
        batch_moments = (
            np.matmul(written.transpose(0, 2, 1), written),  # (T, d, d), through BLAS
            np.matmul(written.transpose(0, 2, 1), increments),
            np.square(increments).sum(axis=(1, 2)),
            written.sum(1), increments.sum(1), increments.shape[1],
        )
        moments = batch_moments if moments is None else [
            a + b for a, b in zip(moments, batch_moments)]
    zz, zy, yy, z_sum, y_sum, count = moments
    path_in = np.array(ops.convert_to_numpy(student.path_in))
    path_out = np.array(ops.convert_to_numpy(student.path_out))
    path_bias = np.array(ops.convert_to_numpy(student.path_bias))
    explained = []
    rank = student.path_rank
    for t in range(steps):
        z_mean, y_mean = z_sum[t] / count, y_sum[t] / count
        c_zz = zz[t] / count - np.outer(z_mean, z_mean)
        c_zy = zy[t] / count - np.outer(z_mean, y_mean)
        ridge = RIDGE * max(np.trace(c_zz) / len(c_zz), 1e-12)
        linear = np.linalg.solve(c_zz + ridge * np.eye(len(c_zz)), c_zy)  # y ~ z @ linear
        fitted = linear.T @ c_zz @ linear  # the fitted increments' covariance
        _, vectors = np.linalg.eigh(fitted)
        top = vectors[:, ::-1][:, :rank]  # (d, k)
        position = t % student.num_leaves
        path_in[position] = (linear @ top).T
        path_out[position] = top.T
        path_bias[position] = y_mean - z_mean @ linear @ top @ top.T
        total = yy[t] / count - y_mean @ y_mean
        kept = np.trace(top.T @ fitted @ top)
        explained.append(float(kept / total) if total > 0 else 1.0)
    student.path_in.assign(path_in)
    student.path_out.assign(path_out)
    student.path_bias.assign(path_bias)
    return np.array(explained)
