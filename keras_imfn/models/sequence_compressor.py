import keras
from keras import ops

from keras_imfn.callbacks import with_non_finite_guard
from keras_imfn.models.inputs import check_numeric
from keras_imfn.models.inputs import check_sequence_shape
from keras_imfn.models.losses import add_compiled_and_layer_losses
from keras_imfn.models.losses import pixel_error
from keras_imfn.models.losses import weighted_mean


class SequenceCompressor(keras.Model):
    """Base of the baseline compressors: `T` steps into one `memory_dim` vector.

    Holds what the Transformer, Mamba and GRU compressors share with the
    interface of `TreeMemory`: input checks, `call(x) = decode(encode(x))`,
    training on `x` alone with a pixel loss logged as `reconstruction_loss`
    (in `compute_loss`), and a `fit` that stops on a non-finite loss.
    Subclasses build their layers in `build()` (setting `feature_shape`) and
    implement `encode(x)` and `decode(memory)`.

    Args:
        memory_dim: int. Size of the memory vector.
        sequence_length: int. Number of steps `T`.
        output_activation: str or None. Final activation of the decoder.
        **kwargs: Base model arguments.
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
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")

    def _prepare(self, x):
        name = type(self).__name__
        check_numeric(x, name)
        shape = tuple(x.shape)
        if not self.built:
            self.build((None, self.sequence_length) + shape[2:])
        check_sequence_shape(shape, self.sequence_length, self.feature_shape, name)
        return ops.cast(x, self.compute_dtype)

    def _check_memory(self, memory):
        """`memory` as a tensor, after checking it is `(batch, memory_dim)`."""
        if not self.built:
            raise ValueError("Call the model on data (or `build()` it) before `decode()`.")
        memory = ops.convert_to_tensor(memory)
        if tuple(memory.shape[1:]) != (self.memory_dim,):
            raise ValueError(
                f"{type(self).__name__}.decode expects a memory of shape (batch, "
                f"{self.memory_dim}). Received {tuple(memory.shape)}"
            )
        return memory

    def call(self, inputs):
        return self.decode(self.encode(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        x = self._prepare(x)
        if y_pred is None:
            y_pred = self(x)
        total = weighted_mean(pixel_error(x, y_pred), sample_weight)
        self.reconstruction_loss_tracker.update_state(total)
        return add_compiled_and_layer_losses(self, total, y, y_pred, sample_weight)

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`, stopping with a clear error on a non-finite loss."""
        return super().fit(*args, callbacks=with_non_finite_guard(callbacks), **kwargs)

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
