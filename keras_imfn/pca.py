"""Principal components in closed form, for PCA starts and PCA reference rows."""

import numpy as np

__all__ = ["principal_components"]


def principal_components(samples, num_components):
    """Mean and top principal directions of `samples` `(n, D)` (numpy).

    Returns `(mean (D,), basis (D, num_components))` with orthonormal
    columns, in the dtype of `samples`; columns beyond the data's rank are
    zero, so `(x - mean) @ basis @ basis.T + mean` is the best reconstruction
    from `num_components` numbers whatever `n` and `D`.
    """
    samples = np.asarray(samples)
    mean = samples.mean(axis=0)
    _, _, vectors = np.linalg.svd(samples - mean, full_matrices=False)
    basis = np.zeros((samples.shape[1], num_components), samples.dtype)
    rank = min(num_components, len(vectors))
    basis[:, :rank] = vectors[:rank].T
    return mean, basis
