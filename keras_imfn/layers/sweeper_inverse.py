import keras

from keras_imfn.layers.sweeper_merge import SweeperHalf
from keras_imfn.layers.sweeper_merge import check_memory_shape


@keras.saving.register_keras_serializable(package="keras_imfn")
class SweeperInverse(SweeperHalf):
    """The inverse half of a sweeper: one memory state in, the pair out.

    `inverse(merged)` returns `[left, right]`, an approximate inverse of
    `SweeperMerge`. It mirrors the merge: a pre-norm residual MLP maps the
    merged state to the concatenated pair, which is split in two:

        left, right = split(MLP(merged))                       # skip="none"
        left, right = merged + split(MLP(merged))              # skip="mean"
        left, right = split(W merged + b + MLP(merged))        # skip="linear"

    With `skip="mean"` both children start as copies of the merged state
    and the MLP learns how each differs from it. With `skip="linear"` a
    learned linear map starts the pair, set to PCA by
    `SweeperMerge.initialize_from_pairs` (see `SweeperMerge`).

    Args:
        memory_dim: int. Size `d` of a memory state (the last axis).
        hidden_dim: int. Width of the residual MLP. Defaults to
            `2 * memory_dim`.
        num_blocks: int. Residual blocks in the MLP.
        activation: str or callable. Activation inside the MLP.
        token_mixing: bool. Mix across tokens for `(B, N, d)` states.
        skip: `"none"`, `"mean"` or `"linear"`, as in `SweeperMerge`.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> inverse = SweeperInverse(memory_dim=16)
    >>> left, right = inverse(np.random.rand(2, 16).astype("float32"))
    >>> tuple(left.shape), tuple(right.shape)
    ((2, 16), (2, 16))
    """

    states_out = 2  # the pair

    def build(self, input_shape):
        check_memory_shape("SweeperInverse", input_shape, self.memory_dim)
        self.mlp.build(tuple(input_shape))
        if self.linear is not None:
            self.linear.build(tuple(input_shape))

    def call(self, inputs):
        pair = self.mlp(inputs)
        if self.skip == "linear":
            pair = pair + self.linear(inputs)
        left = pair[..., : self.memory_dim]
        right = pair[..., self.memory_dim :]
        if self.skip == "mean":
            left, right = left + inputs, right + inputs
        return [left, right]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape), tuple(input_shape)]
