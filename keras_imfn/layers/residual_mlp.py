import functools

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="keras_imfn")
class ResidualMLP(keras.layers.Layer):
    """A pre-norm residual MLP on the last axis.

    `Dense(hidden_dim)` lifts the input, `num_blocks` blocks each add
    `Dense(act(Dense(LayerNorm(h))))` back to `h`, and a final
    `LayerNorm` + `Dense(output_dim)` projects out. The residual path keeps
    gradients healthy at any depth; the normalisation keeps each block's
    input at unit scale whatever the scale of the memory states.

    With `token_mixing=True` and inputs of shape `(..., N, features)`, each
    block also mixes information across the `N` tokens (an MLP over the token
    axis, as in MLP-Mixer), so a token sees its neighbours, not only itself.

    Args:
        hidden_dim: int. Width of the residual stream.
        output_dim: int. Size of the last axis of the output.
        num_blocks: int. Number of residual blocks.
        activation: str or callable. Activation inside each block.
        expansion: int. Width multiplier of the hidden layer inside a block.
        token_mixing: bool. Mix across the second-to-last axis too.
        output_initializer: initializer of the output projection's kernel.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> mlp = ResidualMLP(hidden_dim=32, output_dim=8)
    >>> tuple(mlp(np.zeros((4, 16), "float32")).shape)
    (4, 8)
    """

    def __init__(
        self,
        hidden_dim,
        output_dim,
        num_blocks=2,
        activation="gelu",
        expansion=2,
        token_mixing=False,
        output_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dim < 1 or output_dim < 1 or num_blocks < 0:
            raise ValueError(
                "`hidden_dim` and `output_dim` must be positive and "
                f"`num_blocks` non-negative. Received: hidden_dim={hidden_dim}, "
                f"output_dim={output_dim}, num_blocks={num_blocks}"
            )
        self.hidden_dim = int(hidden_dim)
        self.output_dim = int(output_dim)
        self.num_blocks = int(num_blocks)
        self.activation = keras.activations.get(activation)
        self.expansion = int(expansion)
        self.token_mixing = bool(token_mixing)
        self.output_initializer = keras.initializers.get(output_initializer)

        # Every sublayer follows this layer's dtype policy (e.g. mixed precision).
        self._dense = functools.partial(layers.Dense, dtype=self.dtype_policy)
        self._norm = functools.partial(layers.LayerNormalization, dtype=self.dtype_policy)
        self.input_dense = self._dense(self.hidden_dim, name="input_dense")
        self.block_norms = []
        self.block_inner = []
        self.block_outer = []
        self.mix_norms = []
        self.mix_inner = []
        self.mix_outer = []
        for i in range(self.num_blocks):
            self.block_norms.append(self._norm(name=f"block_{i}_norm"))
            self.block_inner.append(
                self._dense(self.hidden_dim * self.expansion, name=f"block_{i}_inner")
            )
            self.block_outer.append(self._dense(self.hidden_dim, name=f"block_{i}_outer"))
        self.output_norm = self._norm(name="output_norm")
        self.output_dense = self._dense(
            self.output_dim, kernel_initializer=self.output_initializer, name="output_dense"
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if self.token_mixing and len(input_shape) < 3:
            raise ValueError(
                "`token_mixing=True` needs inputs of shape (batch, ..., tokens, "
                f"features). Received input shape {input_shape}"
            )
        self.input_dense.build(input_shape)
        hidden_shape = input_shape[:-1] + (self.hidden_dim,)
        for i in range(self.num_blocks):
            self.block_norms[i].build(hidden_shape)
            self.block_inner[i].build(hidden_shape)
            self.block_outer[i].build(hidden_shape[:-1] + (self.hidden_dim * self.expansion,))
        if self.token_mixing:
            num_tokens = input_shape[-2]
            if num_tokens is None:
                raise ValueError(
                    "`token_mixing=True` needs a known number of tokens "
                    f"(second-to-last axis). Received input shape {input_shape}"
                )
            for i in range(self.num_blocks):
                norm = self._norm(name=f"block_{i}_mix_norm")
                inner = self._dense(num_tokens * self.expansion, name=f"block_{i}_mix_inner")
                outer = self._dense(num_tokens, name=f"block_{i}_mix_outer")
                norm.build(hidden_shape)
                inner.build(hidden_shape[:-2] + (self.hidden_dim, num_tokens))
                outer.build(hidden_shape[:-2] + (self.hidden_dim, num_tokens * self.expansion))
                self.mix_norms.append(norm)
                self.mix_inner.append(inner)
                self.mix_outer.append(outer)
        self.output_norm.build(hidden_shape)
        self.output_dense.build(hidden_shape)

    def call(self, inputs):
        h = self.input_dense(inputs)
        for i in range(self.num_blocks):
            if self.token_mixing:
                t = keras.ops.swapaxes(self.mix_norms[i](h), -1, -2)
                t = self.mix_outer[i](self.activation(self.mix_inner[i](t)))
                h = h + keras.ops.swapaxes(t, -1, -2)
            u = self.block_inner[i](self.block_norms[i](h))
            h = h + self.block_outer[i](self.activation(u))
        return self.output_dense(self.output_norm(h))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "output_dim": self.output_dim,
                "num_blocks": self.num_blocks,
                "activation": keras.activations.serialize(self.activation),
                "expansion": self.expansion,
                "token_mixing": self.token_mixing,
                "output_initializer": keras.initializers.serialize(self.output_initializer),
            }
        )
        return config
