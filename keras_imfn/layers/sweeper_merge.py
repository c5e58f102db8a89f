import keras
import numpy as np

from keras_imfn.layers.residual_mlp import ResidualMLP
from keras_imfn.pca import principal_components


def check_memory_shape(layer_name, shape, memory_dim):
    """Raises a clear error unless `shape` ends with `memory_dim`."""
    shape = tuple(shape)
    if len(shape) < 2 or shape[-1] != memory_dim:
        raise ValueError(
            f"{layer_name} expects memory states of shape (batch, ..., "
            f"{memory_dim}) (its `memory_dim` is {memory_dim}). "
            f"Received a state of shape {shape}"
        )


SKIPS = ("none", "mean", "linear")


def check_skip(skip):
    """Returns `skip` if it is one of `SKIPS`, else raises a clear error."""
    if skip not in SKIPS:
        raise ValueError(f"`skip` must be one of {SKIPS}. Received: skip={skip!r}")
    return skip


def skip_output_initializer(skip):
    """Output kernel init of a sweeper MLP.

    Beside a linear skip it starts at zero, so the sweeper starts exactly at
    its (PCA) linear code; beside a mean skip small but not zero (see
    `SweeperMerge`); without a skip, Glorot.
    """
    if skip == "linear":
        return "zeros"
    if skip == "mean":
        return keras.initializers.VarianceScaling(0.01, "fan_in", "truncated_normal")
    return "glorot_uniform"


def pair_pca(left, right, memory_dim):
    """Mean and top principal directions of concatenated pairs (numpy).

    `left`, `right`: arrays `(..., memory_dim)`; every position of the
    leading axes is one sample. Returns `(mean (2d,), basis (2d, d))` with
    orthonormal columns; directions beyond the data's rank are zero.
    """
    pairs = np.concatenate([np.asarray(left), np.asarray(right)], axis=-1)
    return principal_components(pairs.reshape(-1, 2 * memory_dim).astype("float64"), memory_dim)


class SweeperHalf(keras.layers.Layer):
    """What a merge and an inverse share: their arguments (see
    `SweeperMerge`), a residual MLP to `states_out * memory_dim` numbers and,
    with `skip="linear"`, a linear map beside it."""

    states_out = 1  # memory states out

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
            output_dim=self.states_out * self.memory_dim,
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
                self.states_out * self.memory_dim, dtype=self.dtype_policy, name="linear"
            )

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


@keras.saving.register_keras_serializable(package="keras_imfn")
class SweeperMerge(SweeperHalf):
    """The merge half of a sweeper: two memory states in, one out.

    `merge([left, right])` concatenates the pair on the last axis and maps it
    through a pre-norm residual MLP (`ResidualMLP`) back to `memory_dim`:

        merged = MLP([left, right])                       # skip="none"
        merged = (left + right) / 2 + MLP([left, right])   # skip="mean"
        merged = W [left, right] + b + MLP([left, right])  # skip="linear"

    `skip="none"` (the default) suits states that differ a lot between
    neighbours (the digits of an MNIST sequence). `skip="mean"` suits states
    that are close to their neighbours (consecutive video frames): the
    sweeper starts at the pair's mean and learns what the mean loses. The
    MLP's output layer then starts small but not at zero: with a zero start
    the mean is a saddle (the inverse cannot recover the pair's difference
    from it, so no gradient pushes the merge away from it) and the local
    losses stall at 0.5. Pair it with `SweeperInverse(skip="mean")`.

    `skip="linear"` adds a learned linear map of the pair, which
    `initialize_from_pairs` sets in closed form to PCA of the pairs (and the
    matching `SweeperInverse(skip="linear")` to its transpose): the sweeper
    starts as the best linear 2-to-1 code of the data it will merge, and the
    MLP, whose output starts at zero (the linear code keeps what PCA keeps, so
    this is no saddle), learns what a linear code misses. A tree of such
    sweepers starts as a hierarchical PCA; on video that is as good as PCA of
    each level's whole space-time block.

    The same layer works on vectors `(B, d)` and on token grids `(B, N, d)`;
    with `token_mixing=True` a merged token also sees its neighbours.

    Args:
        memory_dim: int. Size `d` of a memory state (the last axis).
        hidden_dim: int. Width of the residual MLP. Defaults to
            `2 * memory_dim`.
        num_blocks: int. Residual blocks in the MLP.
        activation: str or callable. Activation inside the MLP.
        token_mixing: bool. Mix across tokens for `(B, N, d)` states.
        skip: `"none"`, `"mean"` or `"linear"`, see above.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> merge = SweeperMerge(memory_dim=16)
    >>> left = np.random.rand(2, 16).astype("float32")
    >>> right = np.random.rand(2, 16).astype("float32")
    >>> tuple(merge([left, right]).shape)
    (2, 16)
    """

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or not all(
            isinstance(s, (list, tuple)) for s in input_shape
        ):
            raise ValueError(
                "SweeperMerge expects a list of two memory states [left, right]. "
                f"Received input shape {input_shape}"
            )
        left_shape, right_shape = (tuple(s) for s in input_shape)
        check_memory_shape("SweeperMerge", left_shape, self.memory_dim)
        check_memory_shape("SweeperMerge", right_shape, self.memory_dim)
        if left_shape[1:] != right_shape[1:]:
            raise ValueError(
                "SweeperMerge expects `left` and `right` of the same shape. "
                f"Received {left_shape} and {right_shape}"
            )
        self.mlp.build(left_shape[:-1] + (2 * self.memory_dim,))
        if self.linear is not None:
            self.linear.build(left_shape[:-1] + (2 * self.memory_dim,))

    def call(self, inputs):
        left, right = inputs
        pair = keras.ops.concatenate([left, right], axis=-1)
        merged = self.mlp(pair)
        if self.skip == "mean":
            merged = merged + 0.5 * (left + right)
        elif self.skip == "linear":
            merged = merged + self.linear(pair)
        return merged

    def initialize_from_pairs(self, left, right, inverse=None):
        """Sets the linear skip (and an inverse's) to PCA of the pairs.

        Args:
            left: numpy array `(..., memory_dim)`, the left states this
                sweeper will merge (e.g. a level's children on training data).
            right: numpy array of the same shape, the right states.
            inverse: optional `SweeperInverse(skip="linear")` to set to the
                transpose, so that `inverse(merge(pair))` starts as the PCA
                reconstruction of the pair.
        """
        if self.skip != "linear":
            raise ValueError(
                "`initialize_from_pairs` sets the linear skip; this sweeper was "
                f"built with skip={self.skip!r}. Use skip='linear'."
            )
        shape = tuple(np.shape(left))
        if not self.built:
            self.build([shape, shape])
        if inverse is not None and not inverse.built:
            inverse.build(shape)
        self.set_pair_pca(*pair_pca(left, right, self.memory_dim), inverse=inverse)

    def set_pair_pca(self, mean, basis, inverse=None):
        """Sets the linear skip to a PCA of pairs: `mean` `(2d,)` and
        orthonormal `basis` `(2d, d)` (as `pair_pca` gives them), and an
        inverse's to the transpose. The sweeper must be built."""
        if self.skip != "linear":
            raise ValueError(
                "`set_pair_pca` sets the linear skip; this sweeper was "
                f"built with skip={self.skip!r}. Use skip='linear'."
            )
        self.linear.set_weights([basis, -mean @ basis])
        if inverse is not None:
            if inverse.skip != "linear" or inverse.memory_dim != self.memory_dim:
                raise ValueError(
                    "The inverse must be a SweeperInverse(skip='linear') of the same "
                    f"memory_dim ({self.memory_dim}). Received skip={inverse.skip!r}, "
                    f"memory_dim={inverse.memory_dim}"
                )
            if not inverse.built:
                raise ValueError("Build the inverse (call it on a state) before setting it.")
            inverse.linear.set_weights([basis.T, mean])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
