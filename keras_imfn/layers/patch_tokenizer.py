import keras
from keras import ops

from keras_imfn.pca import principal_components


def _check_frame_shape(who, shape, patch_size):
    shape = tuple(shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise ValueError(
            f"{who} expects frames of shape (batch, height, width, channels) with "
            f"known height and width. Received {shape}"
        )
    if shape[1] % patch_size or shape[2] % patch_size:
        raise ValueError(
            f"{who}: frame size {shape[1]}x{shape[2]} is not a multiple of "
            f"`patch_size={patch_size}`. Resize the frames or pick another patch size."
        )


def patchify(frames, patch_size):
    """`(B, H, W, C)` -> `(B, H/p * W/p, p * p * C)`, row-major patches."""
    _, height, width, channels = frames.shape
    rows, cols = height // patch_size, width // patch_size
    x = ops.reshape(frames, (-1, rows, patch_size, cols, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, rows * cols, patch_size * patch_size * channels))


def unpatchify(patches, patch_size, height, width, channels):
    """Inverse of `patchify`."""
    rows, cols = height // patch_size, width // patch_size
    x = ops.reshape(patches, (-1, rows, cols, patch_size, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def patch_pca(frames, patch_size, num_components):
    """Mean and top principal directions of the patches of `frames` (numpy).

    Returns `(mean (D,), basis (D, num_components))` with `D = p * p * C`.
    """
    patches = ops.convert_to_numpy(patchify(frames, patch_size))
    patches = patches.reshape(-1, patches.shape[-1]).astype("float64")
    if num_components > patches.shape[1]:
        raise ValueError(
            f"{num_components} components exceed the patch dimension {patches.shape[1]}."
        )
    return principal_components(patches, num_components)


@keras.saving.register_keras_serializable(package="keras_imfn")
class PatchTokenizer(keras.layers.Layer):
    """Frame -> grid of tokens: non-overlapping patches, each projected to `d`.

    `(B, H, W, C)` frames become `(B, H/p * W/p, memory_dim)` tokens, the leaf
    of a token-grid `TreeMemory`. A linear patch embedding is the right leaf
    for video memory: it is exactly invertible when `memory_dim >= p*p*C`,
    and at smaller widths its best setting is PCA of the patches, which
    `initialize_from_frames` computes in closed form, so the leaf is not the
    bottleneck of the tree from the first step on.

    Args:
        patch_size: int. Side `p` of the square patches.
        memory_dim: int. Token width `d`.
        **kwargs: Base layer arguments.

    Example:

    >>> import numpy as np
    >>> tokenizer = PatchTokenizer(patch_size=8, memory_dim=32)
    >>> tuple(tokenizer(np.zeros((2, 64, 64, 3), "float32")).shape)
    (2, 64, 32)
    """

    def __init__(self, patch_size, memory_dim, **kwargs):
        super().__init__(**kwargs)
        if patch_size < 1 or memory_dim < 1:
            raise ValueError(
                f"`patch_size` and `memory_dim` must be >= 1. Received "
                f"patch_size={patch_size}, memory_dim={memory_dim}"
            )
        self.patch_size = int(patch_size)
        self.memory_dim = int(memory_dim)
        self.projection = keras.layers.Dense(
            self.memory_dim, dtype=self.dtype_policy, name="projection"
        )

    def build(self, input_shape):
        _check_frame_shape("PatchTokenizer", input_shape, self.patch_size)
        self.projection.build((None, None, self.patch_size**2 * input_shape[-1]))

    def call(self, frames):
        return self.projection(patchify(frames, self.patch_size))

    def compute_output_shape(self, input_shape):
        tokens = (input_shape[1] // self.patch_size) * (input_shape[2] // self.patch_size)
        return (input_shape[0], tokens, self.memory_dim)

    def initialize_from_frames(self, frames, detokenizer=None):
        """Sets the projection (and a `PatchDetokenizer`'s) to patch PCA."""
        if not self.built:
            self.build(tuple(frames.shape))
        mean, basis = patch_pca(frames, self.patch_size, self.memory_dim)
        self.projection.set_weights([basis, -mean @ basis])
        if detokenizer is not None:
            if not detokenizer.built:
                detokenizer.build(self.compute_output_shape(tuple(frames.shape)))
            detokenizer.projection.set_weights([basis.T, mean])

    def get_config(self):
        config = super().get_config()
        config.update({"patch_size": self.patch_size, "memory_dim": self.memory_dim})
        return config


@keras.saving.register_keras_serializable(package="keras_imfn")
class PatchDetokenizer(keras.layers.Layer):
    """Grid of tokens -> frame: the mirror of `PatchTokenizer`.

    `(B, N, memory_dim)` tokens become `(B, height, width, channels)` frames.

    Args:
        patch_size: int. Side `p` of the square patches.
        height: int. Frame height (a multiple of `patch_size`).
        width: int. Frame width (a multiple of `patch_size`).
        channels: int. Frame channels.
        **kwargs: Base layer arguments.

    Example:

    >>> import numpy as np
    >>> detokenizer = PatchDetokenizer(patch_size=8, height=64, width=64, channels=3)
    >>> tuple(detokenizer(np.zeros((2, 64, 32), "float32")).shape)
    (2, 64, 64, 3)
    """

    def __init__(self, patch_size, height, width, channels=3, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.height, self.width, self.channels = int(height), int(width), int(channels)
        _check_frame_shape(
            "PatchDetokenizer", (None, self.height, self.width, self.channels), self.patch_size
        )
        self.num_tokens = (self.height // self.patch_size) * (self.width // self.patch_size)
        self.projection = keras.layers.Dense(
            self.patch_size**2 * self.channels, dtype=self.dtype_policy, name="projection"
        )

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] != self.num_tokens:
            raise ValueError(
                f"PatchDetokenizer expects tokens of shape (batch, {self.num_tokens}, "
                f"width) for {self.height}x{self.width} frames in {self.patch_size}-"
                f"pixel patches. Received {tuple(input_shape)}"
            )
        self.projection.build(tuple(input_shape))

    def call(self, tokens):
        patches = self.projection(tokens)
        return unpatchify(patches, self.patch_size, self.height, self.width, self.channels)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "height": self.height,
                "width": self.width,
                "channels": self.channels,
            }
        )
        return config
