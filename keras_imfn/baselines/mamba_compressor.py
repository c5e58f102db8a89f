import keras
import numpy as np
from keras import layers
from keras import ops

from keras_imfn.baselines.mamba_block import MambaBlock
from keras_imfn.baselines.mamba_block import SCANS
from keras_imfn.models.sequence_autoencoder import SequenceAutoencoder


@keras.saving.register_keras_serializable(package="keras_imfn")
class MambaCompressor(SequenceAutoencoder):
    """A Mamba baseline: a sequence compressed into one memory vector.

    The same interface as `TreeMemory` (`encode`, `decode`, `call`,
    `compile()` + `fit(x)`), so the two compare one to one. Each step is
    flattened, standardised (zero mean, unit variance over its features, no
    learned scale) and embedded (`Dense(model_dim)`); `num_layers`
    `MambaBlock`s run causally over the `T` embeddings, and their final
    states (each block's selective-scan state after the last step,
    `expand * model_dim * state_dim` numbers, flattened and concatenated)
    are RMS-normalised and projected to the memory `(B, memory_dim)`. On
    held-out MNIST sequences this left the mean image far sooner than
    projecting the last position of the residual stream (`model_dim`
    numbers), the design before (docs/tuning/README.md, trials m5*).

    Decoding projects the memory to one `model_dim` vector per step, added to
    `T` learned positional embeddings (so every position starts from its own
    reading of the memory and knows which step it is), runs
    `num_decoder_layers` `MambaBlock`s and maps every position to one step's
    features with a `Dense`. These three changes (input standardisation,
    per-step projection, no final norm before that `Dense`) come from
    `TransformerCompressor`'s ablations; together they sped up leaving the
    mean image on held-out MNIST sequences (docs/tuning/README.md, trials
    m4*; not ablated one by one for Mamba).

    Training (`compile()` + `fit(x)`, no targets) minimises the pixel MSE of
    `call(x)` against `x`, logged as `reconstruction_loss`.

    Args:
        memory_dim: int. Size `d` of the memory vector.
        sequence_length: int. Number of steps `T` in a sequence, >= 1.
        model_dim: int. Width of the residual stream of the Mamba blocks.
        state_dim: int. State size `N` of every Mamba block.
        num_layers: int. Mamba blocks in the encoder, >= 1.
        num_decoder_layers: int or None. Mamba blocks in the decoder.
            Defaults to `num_layers`.
        conv_width: int. Taps of the blocks' causal convolution.
        expand: int. Inner width of a block is `expand * model_dim`.
        scan: `"sequential"` or `"parallel"`: how the blocks run their
            selective scan (the same result; see `MambaBlock`).
        output_activation: str or None. Final activation of the decoder,
            e.g. `"sigmoid"` for pixels in [0, 1].
        **kwargs: Base model arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> x = np.random.rand(32, 8, 28, 28).astype("float32")
    >>> model = MambaCompressor(memory_dim=64, sequence_length=8, model_dim=32,
    ...                         output_activation="sigmoid")
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
        model_dim=256,
        state_dim=16,
        num_layers=2,
        num_decoder_layers=None,
        conv_width=4,
        expand=2,
        scan="sequential",
        output_activation=None,
        **kwargs,
    ):
        super().__init__(memory_dim, sequence_length, output_activation, **kwargs)
        if num_decoder_layers is None:
            num_decoder_layers = num_layers
        if int(model_dim) < 1 or int(num_layers) < 1 or int(num_decoder_layers) < 0:
            raise ValueError(
                "`model_dim` and `num_layers` (the memory is the encoder blocks' final "
                "states) must be >= 1 and `num_decoder_layers` >= 0. Received: "
                f"model_dim={model_dim}, num_layers={num_layers}, "
                f"num_decoder_layers={num_decoder_layers}"
            )
        if scan not in SCANS:
            raise ValueError(f"`scan` must be one of {SCANS}. Received: scan={scan!r}")
        self.model_dim = int(model_dim)
        self.state_dim = int(state_dim)
        self.num_layers = int(num_layers)
        self.num_decoder_layers = int(num_decoder_layers)
        self.conv_width = int(conv_width)
        self.expand = int(expand)
        self.scan = scan

    def build(self, input_shape):
        feature_shape = self._set_feature_shape(input_shape)
        num_features = self._num_features = int(np.prod(feature_shape))
        steps_shape = (None, self.sequence_length)
        stream_shape = steps_shape + (self.model_dim,)
        block_args = dict(
            state_dim=self.state_dim,
            conv_width=self.conv_width,
            expand=self.expand,
            scan=self.scan,
            dtype=self.dtype_policy,
        )

        self.step_norm = layers.LayerNormalization(
            center=False, scale=False, dtype=self.dtype_policy, name="step_norm"
        )
        self.step_norm.build(steps_shape + (num_features,))
        self.leaf_embedding = layers.Dense(
            self.model_dim, dtype=self.dtype_policy, name="leaf_embedding"
        )
        self.leaf_embedding.build(steps_shape + (num_features,))
        self.encoder_blocks = []
        for i in range(self.num_layers):
            block = MambaBlock(name=f"encoder_block_{i}", **block_args)
            block.build(stream_shape)
            self.encoder_blocks.append(block)
        state_size = self.num_layers * self.expand * self.model_dim * self.state_dim
        self.state_norm = layers.RMSNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="state_norm"
        )
        self.state_norm.build((None, state_size))
        self.memory_projection = layers.Dense(
            self.memory_dim, dtype=self.dtype_policy, name="memory_projection"
        )
        self.memory_projection.build((None, state_size))

        self.memory_expansion = layers.Dense(
            self.sequence_length * self.model_dim,
            dtype=self.dtype_policy,
            name="memory_expansion",
        )
        self.memory_expansion.build((None, self.memory_dim))
        self.position_embedding = self.add_weight(
            shape=(self.sequence_length, self.model_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="position_embedding",
        )
        self.decoder_blocks = []
        for i in range(self.num_decoder_layers):
            block = MambaBlock(name=f"decoder_block_{i}", **block_args)
            block.build(stream_shape)
            self.decoder_blocks.append(block)
        self.step_decoder = layers.Dense(
            num_features,
            activation=self.output_activation,
            dtype=self.dtype_policy,
            name="step_decoder",
        )
        self.step_decoder.build(stream_shape)
        self.built = True

    # ------------------------------------------------------------- public API

    def encode(self, x):
        """Encodes sequences `x` `(B, T, *features)` into `(B, memory_dim)`."""
        x = self._prepare(x)
        steps = ops.reshape(x, (-1, self.sequence_length, self._num_features))
        h = self.leaf_embedding(self.step_norm(steps))
        states = []
        for block in self.encoder_blocks:
            h, state = block(h, return_state=True)
            states.append(ops.reshape(state, (ops.shape(state)[0], -1)))
        return self.memory_projection(self.state_norm(ops.concatenate(states, axis=-1)))

    def decode(self, memory):
        """Decodes a memory `(B, memory_dim)` back into `(B, T, *features)`."""
        memory = self._check_memory(memory)
        per_step = self.memory_expansion(memory)
        h = ops.reshape(per_step, (-1, self.sequence_length, self.model_dim))
        h = h + ops.cast(self.position_embedding, h.dtype)
        for block in self.decoder_blocks:
            h = block(h)
        steps = self.step_decoder(h)
        return ops.reshape(steps, (-1, self.sequence_length) + self.feature_shape)

    # ---------------------------------------------------------- serialization

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model_dim": self.model_dim,
                "state_dim": self.state_dim,
                "num_layers": self.num_layers,
                "num_decoder_layers": self.num_decoder_layers,
                "conv_width": self.conv_width,
                "expand": self.expand,
                "scan": self.scan,
            }
        )
        return config
