import keras
import numpy as np
from keras import layers
from keras import ops

from keras_imfn.models.sequence_autoencoder import SequenceAutoencoder


class _TransformerBlock(keras.layers.Layer):
    """A pre-norm Transformer block: self-attention, optional
    cross-attention to a context, then an MLP, each added back residually.

    Private to `TransformerCompressor`, which builds it from its own config,
    so it needs no config of its own.
    """

    def __init__(self, num_heads, mlp_dim, activation, cross_attention=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.activation = keras.activations.get(activation)
        self.use_cross_attention = cross_attention

    def build(self, input_shape, context_shape=None):
        embed_dim = input_shape[-1]
        key_dim = embed_dim // self.num_heads
        mlp_shape = tuple(input_shape[:-1]) + (self.mlp_dim,)
        self.self_attention_norm = layers.LayerNormalization(
            dtype=self.dtype_policy, name="self_attention_norm"
        )
        self.self_attention_norm.build(input_shape)
        self.self_attention = layers.MultiHeadAttention(
            self.num_heads, key_dim, dtype=self.dtype_policy, name="self_attention"
        )
        self.self_attention.build(input_shape, input_shape)
        if self.use_cross_attention:
            self.cross_attention_norm = layers.LayerNormalization(
                dtype=self.dtype_policy, name="cross_attention_norm"
            )
            self.cross_attention_norm.build(input_shape)
            self.cross_attention_layer = layers.MultiHeadAttention(
                self.num_heads, key_dim, dtype=self.dtype_policy, name="cross_attention"
            )
            self.cross_attention_layer.build(input_shape, context_shape)
        self.mlp_norm = layers.LayerNormalization(dtype=self.dtype_policy, name="mlp_norm")
        self.mlp_norm.build(input_shape)
        self.mlp_inner = layers.Dense(self.mlp_dim, dtype=self.dtype_policy, name="mlp_inner")
        self.mlp_inner.build(input_shape)
        self.mlp_outer = layers.Dense(embed_dim, dtype=self.dtype_policy, name="mlp_outer")
        self.mlp_outer.build(mlp_shape)

    def call(self, inputs, context=None):
        h = self.self_attention_norm(inputs)
        h = inputs + self.self_attention(h, h)
        if self.use_cross_attention:
            h = h + self.cross_attention_layer(self.cross_attention_norm(h), context)
        return h + self.mlp_outer(self.activation(self.mlp_inner(self.mlp_norm(h))))


def _repeat_over_batch(weight, like):
    """`weight (n, e)` repeated over the batch of `like`: `(B, n, e)`."""
    weight = ops.cast(weight, like.dtype)
    return ops.broadcast_to(weight[None], (ops.shape(like)[0],) + tuple(weight.shape))


@keras.saving.register_keras_serializable(package="keras_imfn")
class TransformerCompressor(SequenceAutoencoder):
    """A Transformer baseline: a sequence compressed into one memory vector.

    The same interface as `TreeMemory` (`encode`, `decode`, `call`,
    `compile()` + `fit(x)`), so the two compare one to one.

    Encoding: each step is flattened, standardised (zero mean, unit
    variance over its features, no learned scale) and embedded
    (`Dense(embed_dim)`, the leaf embedding); a learned positional embedding
    is added; `num_memory_tokens` learned memory tokens are prepended and a
    pre-norm Transformer encoder (`num_layers` blocks of self-attention +
    MLP) runs over all `num_memory_tokens + T` tokens. The outputs of all
    tokens, normalised and flattened, are projected to the memory
    `(B, memory_dim)` (a learned pooling).

    Decoding: the memory is projected into `num_memory_tokens` context tokens
    and, separately, into one offset per step added to `T` learned queries;
    the queries run through `num_decoder_layers` pre-norm blocks of
    self-attention, cross-attention to the context and MLP; a `Dense` maps
    every query to one step's features.

    Why not the textbook form (pool the memory tokens alone, decode from
    learned queries alone, a final LayerNorm before the output): on held-out
    MNIST sequences that form stayed at the mean image for thousands of
    steps. In ablations (docs/tuning/README.md, trials t4*) pooling all tokens
    and dropping the final norm were each needed to leave it; the per-step
    offsets were part of every variant that left it (not ablated alone); the
    step standardisation sped it up.

    Training (`compile()` + `fit(x)`, no targets) minimises the pixel MSE of
    `call(x)` against `x`, logged as `reconstruction_loss`.

    Args:
        memory_dim: int. Size `d` of the memory vector.
        sequence_length: int. Number of steps `T` in a sequence, >= 1.
        embed_dim: int. Width of the tokens; a multiple of `num_heads`.
        num_layers: int. Blocks in the encoder.
        num_heads: int. Attention heads per block.
        mlp_dim: int or None. Hidden width of the blocks' MLPs. Defaults to
            `4 * embed_dim`.
        num_decoder_layers: int or None. Blocks in the decoder. Defaults to
            `num_layers`.
        num_memory_tokens: int. Learned tokens prepended to the steps in the
            encoder (pooled into the memory with them), and the number of
            context tokens the decoder cross-attends to.
        activation: str. Activation of the blocks' MLPs.
        output_activation: str or None. Final activation of the decoder,
            e.g. `"sigmoid"` for pixels in [0, 1].
        **kwargs: Base model arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> x = np.random.rand(32, 8, 28, 28).astype("float32")
    >>> model = TransformerCompressor(memory_dim=64, sequence_length=8,
    ...                               embed_dim=32, output_activation="sigmoid")
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> sorted(history.history)
    ['loss', 'reconstruction_loss']
    >>> tuple(model.encode(x).shape)
    (32, 64)
    >>> tuple(model.decode(model.encode(x)).shape)
    (32, 8, 28, 28)
    """

    def __init__(
        self,
        memory_dim,
        sequence_length,
        embed_dim=192,
        num_layers=2,
        num_heads=4,
        mlp_dim=None,
        num_decoder_layers=None,
        num_memory_tokens=1,
        activation="gelu",
        output_activation=None,
        **kwargs,
    ):
        super().__init__(memory_dim, sequence_length, output_activation, **kwargs)
        if int(num_heads) < 1 or int(embed_dim) % int(num_heads) != 0:
            raise ValueError(
                "`embed_dim` must be a positive multiple of `num_heads` (each head "
                f"gets embed_dim / num_heads dimensions). Received: embed_dim="
                f"{embed_dim}, num_heads={num_heads}"
            )
        if num_decoder_layers is None:
            num_decoder_layers = num_layers
        if int(num_layers) < 0 or int(num_decoder_layers) < 0 or int(num_memory_tokens) < 1:
            raise ValueError(
                "`num_layers` and `num_decoder_layers` must be >= 0 and "
                f"`num_memory_tokens` >= 1. Received: num_layers={num_layers}, "
                f"num_decoder_layers={num_decoder_layers}, "
                f"num_memory_tokens={num_memory_tokens}"
            )
        self.embed_dim = int(embed_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim or 4 * self.embed_dim)
        self.num_decoder_layers = int(num_decoder_layers)
        self.num_memory_tokens = int(num_memory_tokens)
        self.activation = activation

    def build(self, input_shape):
        feature_shape = self._set_feature_shape(input_shape)
        self._num_features = int(np.prod(feature_shape))
        steps_shape = (None, self.sequence_length)
        encoder_shape = (None, self.num_memory_tokens + self.sequence_length, self.embed_dim)
        context_shape = (None, self.num_memory_tokens, self.embed_dim)
        decoder_shape = steps_shape + (self.embed_dim,)
        token_init = keras.initializers.TruncatedNormal(stddev=0.02)
        block_args = dict(
            num_heads=self.num_heads,
            mlp_dim=self.mlp_dim,
            activation=self.activation,
            dtype=self.dtype_policy,
        )

        self.step_norm = layers.LayerNormalization(
            center=False, scale=False, dtype=self.dtype_policy, name="step_norm"
        )
        self.step_norm.build(steps_shape + (self._num_features,))
        self.leaf_embedding = layers.Dense(
            self.embed_dim, dtype=self.dtype_policy, name="leaf_embedding"
        )
        self.leaf_embedding.build(steps_shape + (self._num_features,))
        self.position_embedding = self.add_weight(
            shape=(self.sequence_length, self.embed_dim),
            initializer=token_init,
            name="position_embedding",
        )
        self.memory_tokens = self.add_weight(
            shape=(self.num_memory_tokens, self.embed_dim),
            initializer=token_init,
            name="memory_tokens",
        )
        self.encoder_blocks = []
        for i in range(self.num_layers):
            block = _TransformerBlock(name=f"encoder_block_{i}", **block_args)
            block.build(encoder_shape)
            self.encoder_blocks.append(block)
        self.encoder_norm = layers.LayerNormalization(
            dtype=self.dtype_policy, name="encoder_norm"
        )
        self.encoder_norm.build(encoder_shape)
        self.memory_projection = layers.Dense(
            self.memory_dim, dtype=self.dtype_policy, name="memory_projection"
        )
        self.memory_projection.build((None, encoder_shape[1] * self.embed_dim))

        self.context_projection = layers.Dense(
            self.num_memory_tokens * self.embed_dim,
            dtype=self.dtype_policy,
            name="context_projection",
        )
        self.context_projection.build((None, self.memory_dim))
        self.context_norm = layers.LayerNormalization(
            dtype=self.dtype_policy, name="context_norm"
        )
        self.context_norm.build(context_shape)
        self.decoder_queries = self.add_weight(
            shape=(self.sequence_length, self.embed_dim),
            initializer=token_init,
            name="decoder_queries",
        )
        self.query_projection = layers.Dense(
            self.sequence_length * self.embed_dim,
            dtype=self.dtype_policy,
            name="query_projection",
        )
        self.query_projection.build((None, self.memory_dim))
        self.decoder_blocks = []
        for i in range(self.num_decoder_layers):
            block = _TransformerBlock(
                name=f"decoder_block_{i}", cross_attention=True, **block_args
            )
            block.build(decoder_shape, context_shape)
            self.decoder_blocks.append(block)
        self.step_decoder = layers.Dense(
            self._num_features,
            activation=self.output_activation,
            dtype=self.dtype_policy,
            name="step_decoder",
        )
        self.step_decoder.build(decoder_shape)
        self.built = True

    # ------------------------------------------------------------- public API

    def encode(self, x):
        """Encodes sequences `x` `(B, T, *features)` into `(B, memory_dim)`."""
        x = self._prepare(x)
        steps = ops.reshape(x, (-1, self.sequence_length, self._num_features))
        leaves = self.leaf_embedding(self.step_norm(steps))
        leaves = leaves + ops.cast(self.position_embedding, leaves.dtype)
        h = ops.concatenate([_repeat_over_batch(self.memory_tokens, leaves), leaves], axis=1)
        for block in self.encoder_blocks:
            h = block(h)
        tokens = self.num_memory_tokens + self.sequence_length
        flat = ops.reshape(self.encoder_norm(h), (-1, tokens * self.embed_dim))
        return self.memory_projection(flat)

    def decode(self, memory):
        """Decodes a memory `(B, memory_dim)` back into `(B, T, *features)`."""
        memory = self._check_memory(memory)
        context = ops.reshape(
            self.context_projection(memory), (-1, self.num_memory_tokens, self.embed_dim)
        )
        context = self.context_norm(context)
        offsets = self.query_projection(memory)
        offsets = ops.reshape(offsets, (-1, self.sequence_length, self.embed_dim))
        h = ops.cast(self.decoder_queries, offsets.dtype) + offsets
        for block in self.decoder_blocks:
            h = block(h, context)
        steps = self.step_decoder(h)
        return ops.reshape(steps, (-1, self.sequence_length) + self.feature_shape)

    # ---------------------------------------------------------- serialization

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embed_dim": self.embed_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "num_decoder_layers": self.num_decoder_layers,
                "num_memory_tokens": self.num_memory_tokens,
                "activation": self.activation,
            }
        )
        return config
