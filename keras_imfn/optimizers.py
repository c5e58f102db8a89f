"""`FusedAdam`: Keras' Adam, its PyTorch update one fused pass a variable.

On JAX and TensorFlow a compiled training step fuses Adam's update with the
rest of the step. Keras' PyTorch Adam runs eagerly as about ten
`torch._foreach_*` passes, each reading and writing every parameter: at the
MNIST `paper-cpu` tree's 56M parameters nearly half of an eager training step
in the saved profile (`benchmarks/results/torch_step_profile.md`). `FusedAdam` is the same
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
    PyTorch the whole update is one call of `torch._fused_adam_` for the
    variables of each device and dtype (`amsgrad` included). It reads the
    step count and the learning rate as Python numbers at each update.

    Example:

    >>> import numpy as np, keras
    >>> from keras_imfn import TreeMemory
    >>> model = TreeMemory(memory_dim=16, sequence_length=4)
    >>> model.compile(optimizer=FusedAdam(learning_rate=1e-3))
    >>> x = np.random.rand(8, 4, 28, 28).astype("float32")
    >>> _ = model.fit(x, epochs=1, batch_size=4, verbose=0)
    """

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() != "torch":
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import torch

        index = self._get_variable_index
        step = float(ops.convert_to_numpy(self.iterations)) + 1.0
        rate = float(ops.convert_to_numpy(learning_rate))  # once, not per group
        # PyTorch's kernel takes tensors of one device and dtype a call, as its
        # own Adam groups them.
        groups = {}
        for grad, variable in zip(grads, trainable_variables):
            groups.setdefault((variable.value.device, variable.value.dtype), []).append(
                (grad, variable))
        with torch.no_grad():
            for (device, _), pairs in groups.items():
                variables = [variable for _, variable in pairs]
                slots = [index(variable) for variable in variables]
                torch._fused_adam_(
                    [variable.value for variable in variables],
                    [grad for grad, _ in pairs],
                    [self._momentums[i].value for i in slots],
                    [self._velocities[i].value for i in slots],
                    [self._velocity_hats[i].value for i in slots] if self.amsgrad else [],
                    [torch.tensor(step, device=device) for _ in variables],
                    lr=rate,
                    beta1=self.beta_1,
                    beta2=self.beta_2,
                    weight_decay=0.0,  # Keras applies its weight decay before the update
                    # PyTorch adds eps to sqrt(v / (1 - beta_2**t)), Keras to sqrt(v).
                    eps=self.epsilon / math.sqrt(1.0 - self.beta_2**step),
                    amsgrad=self.amsgrad,
                    maximize=False,
                )
