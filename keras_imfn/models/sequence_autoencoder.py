import keras
from keras import ops

from keras_imfn import distribution
from keras_imfn.models.inputs import check_numeric
from keras_imfn.models.inputs import check_sequence_shape
from keras_imfn.models.loss_logging import LoggedLosses
from keras_imfn.models.loss_logging import pixel_error
from keras_imfn.models.loss_logging import weighted_mean


class SequenceAutoencoder(LoggedLosses, keras.Model):
    """Base of every model that compresses `T` steps into one memory.

    `TreeMemory` and the baseline compressors share what is here: the
    constructor's checks, input checks (`_prepare`), `call(x) =
    decode(encode(x))`, and training on `x` alone (`compile()` + `fit(x)`).
    `compute_loss` adds the model's own losses (`own_losses`, each logged
    under its name) to what `keras.Model.compute_loss` gives: a loss compiled
    on `(y, y_pred)` (e.g. an `SSIMLoss`, the data then yielding `(x, x)`)
    and the layers' `add_loss` terms.

    Subclasses build their layers in `build()` (setting `feature_shape`),
    implement `encode(x)` and `decode(memory)`, and may override
    `own_losses` and `loss_names`.

    Args:
        memory_dim: int. Size of the memory.
        sequence_length: int. Number of steps `T`.
        output_activation: str or None. Final activation of the decoder.
        **kwargs: Base model arguments.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> class DenseCompressor(SequenceAutoencoder):
    ...     def build(self, input_shape):
    ...         features = self._set_feature_shape(input_shape)
    ...         size = self.sequence_length * int(np.prod(features))
    ...         self.encoder = keras.layers.Dense(self.memory_dim)
    ...         self.decoder = keras.layers.Dense(size)
    ...     def encode(self, x):
    ...         x = self._prepare(x)
    ...         return self.encoder(keras.ops.reshape(x, (x.shape[0], -1)))
    ...     def decode(self, memory):
    ...         memory = self._check_memory(memory)
    ...         steps = self.decoder(memory)
    ...         return keras.ops.reshape(steps, (-1, self.sequence_length) + self.feature_shape)
    >>> x = np.random.rand(32, 4, 6).astype("float32")
    >>> model = DenseCompressor(memory_dim=8, sequence_length=4)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(x, epochs=1, batch_size=8, verbose=0)
    >>> sorted(history.history)
    ['loss', 'reconstruction_loss']
    """

    def __init__(self, memory_dim, sequence_length, output_activation=None, **kwargs):
        super().__init__(**kwargs)
        if int(memory_dim) < 1:
            raise ValueError(f"`memory_dim` must be >= 1. Received: memory_dim={memory_dim}")
        if int(sequence_length) < 1:
            raise ValueError(
                f"`sequence_length` must be >= 1. Received: sequence_length={sequence_length}"
            )
        self.memory_dim = int(memory_dim)
        self.sequence_length = int(sequence_length)
        self.output_activation = output_activation
        self.feature_shape = None
        self.make_loss_trackers()

    def loss_names(self):
        """Names of the model's own losses, as `fit` logs them."""
        return ["reconstruction_loss"]

    def own_losses(self, x, y_pred, sample_weight, training):
        """The model's objective and its logged losses.

        Args:
            x: the prepared inputs `(B, T, *features)`.
            y_pred: the model's output on `x`.
            sample_weight: optional per-sequence weights `(B,)`.
            training: whether this is a training step.

        Returns:
            `(objective, logged)`: the scalar loss to minimise, and a dict
            from names in `loss_names()` to scalars (a training step may
            leave out losses that only inform; evaluation reports all).
        """
        reconstruction = weighted_mean(pixel_error(x, y_pred), sample_weight)
        return reconstruction, {"reconstruction_loss": reconstruction}

    def _set_feature_shape(self, input_shape):
        """Checks a build shape `(batch, T, *features)`; sets `feature_shape`."""
        input_shape = tuple(input_shape)
        name = type(self).__name__
        check_sequence_shape(input_shape, self.sequence_length, (), name)
        feature_shape = tuple(input_shape[2:])
        if any(d is None for d in feature_shape):
            raise ValueError(
                f"{name} needs fully known feature dimensions. Received "
                f"input shape {input_shape}"
            )
        check_sequence_shape(input_shape, self.sequence_length, feature_shape, name)
        self.feature_shape = feature_shape
        return feature_shape

    def _prepare(self, x, allow_shorter=False):
        name = type(self).__name__
        check_numeric(x, name)
        shape = tuple(x.shape)
        if not self.built:
            self.build((None, self.sequence_length) + shape[2:])
        check_sequence_shape(shape, self.sequence_length, self.feature_shape, name,
                             allow_shorter)
        return ops.cast(x, self.compute_dtype)

    def _check_memory(self, memory, shape=None):
        """`memory` as a tensor, after checking it is `(batch, *shape)`
        (`shape` defaults to `(memory_dim,)`)."""
        shape = (self.memory_dim,) if shape is None else shape
        if not self.built:
            raise ValueError("Call the model on data (or `build()` it) before `decode()`.")
        memory = ops.convert_to_tensor(memory)
        if tuple(memory.shape[1:]) != tuple(shape):
            raise ValueError(
                f"{type(self).__name__}.decode expects a memory of shape (batch, "
                f"{', '.join(map(str, shape))}). Received {tuple(memory.shape)}"
            )
        return memory

    def call(self, inputs):
        return self.decode(self.encode(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        distribution.check_supported()
        x = self._prepare(x)
        self._check_targets(y)
        if y_pred is None:
            y_pred = self(x, training=training)
        objective, logged = self.own_losses(x, y_pred, sample_weight, training)
        # Under tf.distribute, one replica's share, as Keras scales its losses.
        objective = distribution.scale_for_replicas(objective)
        self.log_losses(logged, ops.shape(x)[0])
        if self.loss is not None or self.losses:
            objective = objective + super().compute_loss(
                x, y, y_pred, sample_weight, training
            )
        return objective

    def _check_targets(self, y):
        """These models train on `x` alone: targets only feed a compiled loss."""
        name = type(self).__name__
        if y is None and self.loss is not None:
            raise ValueError(
                f"{name} was compiled with a `loss`, which is computed on (y, y_pred), "
                "but received no targets `y`, so that loss would be skipped. Pass the "
                "inputs as targets too (`fit(x, x)`, or `MNISTSequences(..., "
                "targets=True)`), or compile without `loss`."
            )
        if y is not None and self.loss is None:
            raise ValueError(
                f"{name} trains on `x` alone (`fit(x)`): its losses come from "
                "reconstructing `x`. Received targets `y` but no `loss` in "
                "`compile()`; drop `y`, or compile a loss to add on (y, y_pred)."
            )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "memory_dim": self.memory_dim,
                "sequence_length": self.sequence_length,
                "output_activation": self.output_activation,
            }
        )
        return config
