import keras
import numpy as np
from keras import layers
from keras import ops

from keras_imfn.models.sequence_autoencoder import SequenceAutoencoder


@keras.saving.register_keras_serializable(package="keras_imfn")
class GRUCompressor(SequenceAutoencoder):
    """A GRU baseline: a sequence compressed into one memory vector.

    The same interface as `TreeMemory` (`encode`, `decode`, `call`,
    `compile()` + `fit(x)`), so the two compare one to one. Each step is
    flattened and embedded (`Dense(embed_dim)`); a stack of `num_layers`
    GRUs reads the embeddings, and the top GRU's final state, which has seen
    the whole sequence, is projected to the memory `(B, memory_dim)`.

    Decoding projects the memory to the initial state of every decoder GRU
    (a stack of `num_layers`) and unrolls them for `T` steps; every step's
    input is a learned per-step embedding (which step it is producing) plus a
    projection of the memory, so that the memory reaches every step directly
    and not only through the state (the context vector of Cho et al. 2014).
    Every step's output is mapped to one step's features with a `Dense`.

    Training (`compile()` + `fit(x)`, no targets) minimises the pixel MSE of
    `call(x)` against `x`, logged as `reconstruction_loss`.

    Args:
        memory_dim: int. Size `d` of the memory vector.
        sequence_length: int. Number of steps `T` in a sequence, >= 1.
        embed_dim: int. Width of the per-step embeddings (encoder inputs and
            decoder inputs).
        hidden_dim: int. State size of every GRU.
        num_layers: int. GRUs stacked in the encoder and in the decoder.
        output_activation: str or None. Final activation of the decoder,
            e.g. `"sigmoid"` for pixels in [0, 1].
        **kwargs: Base model arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> x = np.random.rand(32, 8, 28, 28).astype("float32")
    >>> model = GRUCompressor(memory_dim=64, sequence_length=8, embed_dim=32,
    ...                       hidden_dim=32, output_activation="sigmoid")
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
        embed_dim=256,
        hidden_dim=384,
        num_layers=1,
        output_activation=None,
        **kwargs,
    ):
        super().__init__(memory_dim, sequence_length, output_activation, **kwargs)
        if int(embed_dim) < 1 or int(hidden_dim) < 1 or int(num_layers) < 1:
            raise ValueError(
                "`embed_dim`, `hidden_dim` and `num_layers` must be >= 1. Received: "
                f"embed_dim={embed_dim}, hidden_dim={hidden_dim}, num_layers={num_layers}"
            )
        self.embed_dim = int(embed_dim)
        self.hidden_dim = int(hidden_dim)
        self.num_layers = int(num_layers)

    def build(self, input_shape):
        feature_shape = self._set_feature_shape(input_shape)
        self._num_features = int(np.prod(feature_shape))
        steps_shape = (None, self.sequence_length)
        hidden_shape = steps_shape + (self.hidden_dim,)

        self.leaf_embedding = layers.Dense(
            self.embed_dim, dtype=self.dtype_policy, name="leaf_embedding"
        )
        self.leaf_embedding.build(steps_shape + (self._num_features,))
        self.encoder_grus = []
        for i in range(self.num_layers):
            gru = layers.GRU(
                self.hidden_dim,
                return_sequences=i < self.num_layers - 1,
                dtype=self.dtype_policy,
                name=f"encoder_gru_{i}",
            )
            gru.build(steps_shape + (self.embed_dim if i == 0 else self.hidden_dim,))
            self.encoder_grus.append(gru)
        self.memory_projection = layers.Dense(
            self.memory_dim, dtype=self.dtype_policy, name="memory_projection"
        )
        self.memory_projection.build((None, self.hidden_dim))

        self.state_projection = layers.Dense(
            self.num_layers * self.hidden_dim,
            activation="tanh",  # GRU states live in (-1, 1)
            dtype=self.dtype_policy,
            name="state_projection",
        )
        self.state_projection.build((None, self.memory_dim))
        self.memory_to_input = layers.Dense(
            self.embed_dim, dtype=self.dtype_policy, name="memory_to_input"
        )
        self.memory_to_input.build((None, self.memory_dim))
        self.step_embedding = self.add_weight(
            shape=(self.sequence_length, self.embed_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="step_embedding",
        )
        self.decoder_grus = []
        for i in range(self.num_layers):
            gru = layers.GRU(
                self.hidden_dim,
                return_sequences=True,
                dtype=self.dtype_policy,
                name=f"decoder_gru_{i}",
            )
            gru.build(steps_shape + (self.embed_dim if i == 0 else self.hidden_dim,))
            self.decoder_grus.append(gru)
        self.step_decoder = layers.Dense(
            self._num_features,
            activation=self.output_activation,
            dtype=self.dtype_policy,
            name="step_decoder",
        )
        self.step_decoder.build(hidden_shape)
        self.built = True

    # ------------------------------------------------------------- public API

    def encode(self, x):
        """Encodes sequences `x` `(B, T, *features)` into `(B, memory_dim)`."""
        x = self._prepare(x)
        h = self.leaf_embedding(ops.reshape(x, (-1, self.sequence_length, self._num_features)))
        for gru in self.encoder_grus:
            h = gru(h)
        return self.memory_projection(h)

    def decode(self, memory):
        """Decodes a memory `(B, memory_dim)` back into `(B, T, *features)`."""
        memory = self._check_memory(memory)
        states = ops.split(self.state_projection(memory), self.num_layers, axis=-1)
        h = self.memory_to_input(memory)[:, None]
        h = ops.cast(self.step_embedding, h.dtype)[None] + h
        for gru, state in zip(self.decoder_grus, states):
            h = gru(h, initial_state=[state])
        steps = self.step_decoder(h)
        return ops.reshape(steps, (-1, self.sequence_length) + self.feature_shape)

    # ---------------------------------------------------------- serialization

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embed_dim": self.embed_dim,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
            }
        )
        return config
