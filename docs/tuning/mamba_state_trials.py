"""Validation trials: what the Mamba compressor's memory is read from.

`MambaCompressor` (as of commit 25781b2) projects the memory from the last
position of its encoder's residual stream (`model_dim` numbers). The issue
asks for "the final state projected to the d-vector"; a Mamba block's
recurrent state at the last step is `inner_dim x state_dim` numbers per block.
Variants (the decoder is the class's own in all of them):

    last    the class unchanged: RMSNorm(last position) -> Dense(memory_dim)
    state   every encoder block's final SSM state `h_T`, flattened,
            concatenated, RMS-normalised -> Dense(memory_dim)

    KERAS_BACKEND=jax python docs/tuning/mamba_state_trials.py state 128 600

Width 128, batch 64, Adam 1e-3 (clipnorm 1), pixel MSE + 0.1 (1 - SSIM),
trained on the first 7,000 training digits, scored every 200 steps on 300
sequences of the last 1,000 (as `baseline_design_trials.py`). One JSON line
per score on stdout.
"""

import json
import sys
import time

import keras
import numpy as np
from keras import layers
from keras import ops

from keras_imfn.datasets import mnist
from experiments import mnist_sequence as ex
from keras_imfn.layers import mamba_block
from keras_imfn.models import mamba_compressor as mc

variant, W, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = dict(ex.PRESETS["cpu"])
(train, _), _, _ = mnist.load_digits("../shared/data/mnist", verbose=False)
val = mnist.sample_sequences(train[7000:], 16, 300, seed=5)
keras.utils.set_random_seed(0)
T = 16


def block_with_final_state(block, inputs):
    """`block(inputs)` and its SSM state after the last step `(B, inner, N)`."""
    x, z = ops.split(block.in_proj(block.norm(inputs)), 2, axis=-1)
    x = ops.silu(block._causal_conv(x))
    delta, b, c = block._ssm_parameters(x)
    a = -ops.exp(block.A_log)
    state = ops.zeros_like(x[:, 0, :, None] * b[:, 0, None, :])
    outputs = []
    for t in range(T):
        state, y = mamba_block._advance(state, a, x[:, t], delta[:, t], b[:, t], c[:, t])
        outputs.append(y)
    y = (ops.stack(outputs, axis=1) + block.D * x) * ops.silu(z)
    return inputs + block.out_proj(y), state


class StateMemory(mc.MambaCompressor):
    def build(self, input_shape):
        super().build(input_shape)
        size = self.num_layers * self.expand * self.model_dim * self.state_dim
        self.state_norm = layers.RMSNormalization(epsilon=1e-5)
        self.state_norm.build((None, size))
        self.state_projection = layers.Dense(self.memory_dim)
        self.state_projection.build((None, size))

    def encode(self, x):
        x = self._prepare(x)
        h = self.leaf_embedding(self.step_norm(ops.reshape(x, (-1, T, self._num_features))))
        states = []
        for block in self.encoder_blocks:
            h, state = block_with_final_state(block, h)
            states.append(ops.reshape(state, (ops.shape(state)[0], -1)))
        return self.state_projection(self.state_norm(ops.concatenate(states, axis=-1)))


model_class = {"last": mc.MambaCompressor, "state": StateMemory}[variant]
model = model_class(memory_dim=128, sequence_length=T, model_dim=W, output_activation="sigmoid")
model(np.zeros((1, T, 28, 28), "float32"))
data = mnist.MNISTSequences(train[:7000], T, 64, 100, seed=0)
ex.compile_model(model, data, config, 1e-3)
started = time.time()
for epoch in range(steps // 100):
    model.fit(data, epochs=1, verbose=0)
    if (epoch + 1) % 2 == 0:
        scores = ex.score(val, ex.reconstruct_all(model, val))
        print(json.dumps(dict(tag=f"m5{variant}", model="mamba", variant=variant, width=W,
                              step=(epoch + 1) * 100, seconds=round(time.time() - started),
                              params=model.count_params(), **scores)), flush=True)
