import keras

from keras_imfn.layers.residual_mlp import ResidualMLP
from keras_imfn.layers.sweeper_merge import check_memory_shape
from keras_imfn.layers.sweeper_merge import check_skip
from keras_imfn.layers.sweeper_merge import skip_output_initializer


@keras.saving.register_keras_serializable(package="keras_imfn")
class SweeperInverse(keras.layers.Layer):
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

    def __init__(
        self,
        memory_dim,
        hidden_dim=None,
        num_blocks=2,
        activation="gelu",
        token_mixing=False,
        skip="none",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if memory_dim < 1:
            raise ValueError(f"`memory_dim` must be >= 1. Received: {memory_dim}")
        self.skip = check_skip(skip)
        self.memory_dim = int(memory_dim)
        self.hidden_dim = int(hidden_dim or 2 * memory_dim)
        self.num_blocks = int(num_blocks)
        self.activation = activation
        self.token_mixing = bool(token_mixing)
        self.mlp = ResidualMLP(
            hidden_dim=self.hidden_dim,
            output_dim=2 * self.memory_dim,
            num_blocks=self.num_blocks,
            activation=activation,
            token_mixing=self.token_mixing,
            output_initializer=skip_output_initializer(self.skip),
            dtype=self.dtype_policy,
            name="mlp",
        )
        self.linear = None
        if self.skip == "linear":
            self.linear = keras.layers.Dense(
                2 * self.memory_dim, dtype=self.dtype_policy, name="linear"
            )

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

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "memory_dim": self.memory_dim,
                "hidden_dim": self.hidden_dim,
                "num_blocks": self.num_blocks,
                "activation": self.activation,
                "token_mixing": self.token_mixing,
                "skip": self.skip,
            }
        )
        return config
