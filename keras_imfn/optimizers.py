"""`FusedAdam`: Keras' Adam, its PyTorch update one fused pass a variable.

On JAX and TensorFlow a compiled training step fuses Adam's update with the
rest of the step. Keras' PyTorch Adam runs eagerly as about ten
`torch._foreach_*` passes, each reading and writing every parameter: at the
MNIST `paper-cpu` tree's 56M parameters a third of a training step
(`benchmarks/results/torch_step_profile.md`). `FusedAdam` is the same
optimizer, whose PyTorch update is PyTorch's fused Adam kernel
(`torch._fused_adam_`, on CPU and GPU), and whose update elsewhere is
Keras' own.
"""

import math

import keras
from keras import ops

__all__ = ["FusedAdam"]


@keras.saving.register_keras_serializable(package="keras_imfn")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam`, with PyTorch's fused kernel on the torch backend.

    The same arguments, the same update (Keras' `epsilon`, added to
    `sqrt(v)` before the bias correction) and the same saved state as
    `keras.optimizers.Adam`: on JAX and TensorFlow it *is* Keras' Adam. On
    PyTorch the whole update of every variable is one call of
    `torch._fused_adam_` (with `amsgrad=True`, Keras' own update).

    Example:

    >>> import numpy as np, keras
    >>> from keras_imfn import TreeMemory
    >>> model = TreeMemory(memory_dim=16, sequence_length=4)
    >>> model.compile(optimizer=FusedAdam(learning_rate=1e-3))
    >>> x = np.random.rand(8, 4, 28, 28).astype("float32")
    >>> _ = model.fit(x, epochs=1, batch_size=4, verbose=0)
    """

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() != "torch" or self.amsgrad:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import torch

        index = self._get_variable_index
        step = float(ops.convert_to_numpy(self.iterations)) + 1.0
        with torch.no_grad():
            torch._fused_adam_(
                [v.value for v in trainable_variables],
                list(grads),
                [self._momentums[index(v)].value for v in trainable_variables],
                [self._velocities[index(v)].value for v in trainable_variables],
                [],
                [torch.tensor(step) for _ in trainable_variables],
                lr=float(ops.convert_to_numpy(learning_rate)),
                beta1=self.beta_1,
                beta2=self.beta_2,
                weight_decay=0.0,  # Keras applies its weight decay before the update
                # PyTorch adds eps to sqrt(v / (1 - beta_2**t)), Keras to sqrt(v).
                eps=self.epsilon / math.sqrt(1.0 - self.beta_2**step),
                amsgrad=False,
                maximize=False,
            )
