"""The design trials behind the Transformer and Mamba compressors' decoders.

Raw output: `mnist_baseline_design.jsonl` (README.md beside this file). Run
at commit e024df5, whose classes had the earlier design (memory pooled from
the memory token or last position alone, one shared memory projection in the
decoder, a norm before the output `Dense`, raw pixels in); each letter of the
variant switches one change on, by overriding `encode` / `decode`:

    c  steps centred and scaled by MNIST's pixel mean and std (0.13, 0.3)
    l  each step standardised over its own features (kept: no data constant)
    n  no norm before the output `Dense`
    f  Transformer: the memory projected from all encoder tokens, flattened
    q  the memory projected to one vector per step in the decoder

    git checkout e024df5
    KERAS_BACKEND=jax python docs/tuning/baseline_design_trials.py transformer lnfq 128 600
    KERAS_BACKEND=jax python docs/tuning/baseline_design_trials.py mamba lnq 128 600

Width 128, 1 memory token, batch 64, Adam 1e-3 (clipnorm 1), pixel MSE +
0.1 (1 - SSIM), trained on the first 7,000 training digits, scored every 200
steps on 300 sequences of the last 1,000. The `base` rows are the designs of that commit
unchanged: t4base through `build_model("transformer", config, 128)`, m4base
through the variant class with no switch on (the same model, its weights
drawn in another order).
"""

import sys
import time

import keras
import numpy as np
from keras import layers
from keras import ops

from keras_imfn.datasets import mnist
from experiments import mnist_sequence as ex
from keras_imfn.models import mamba_compressor as mc
from keras_imfn.models import transformer_compressor as tc

model_name, variant, W, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = dict(ex.PRESETS["cpu"])
(train, _), _, _ = mnist.load_digits("../shared/data/mnist", verbose=False)
val = mnist.sample_sequences(train[7000:], 16, 300, seed=5)
keras.utils.set_random_seed(0)
T, M = 16, 1


def standardise(steps):
    if "c" in variant:
        steps = (steps - 0.13) / 0.3
    if "l" in variant:
        mean = ops.mean(steps, -1, keepdims=True)
        steps = (steps - mean) / ops.sqrt(ops.var(steps, -1, keepdims=True) + 1e-3)
    return steps


class TransformerVariant(tc.TransformerCompressor):
    def build(self, input_shape):
        self.flat_proj = layers.Dense(128)
        self.flat_proj.build((None, (T + M) * W))
        self.query_proj = layers.Dense(T * W)
        self.query_proj.build((None, 128))
        super().build(input_shape)

    def encode(self, x):
        x = self._prepare(x)
        steps = standardise(ops.reshape(x, (-1, T, self._num_features)))
        leaves = self.leaf_embedding(steps) + self.position_embedding
        h = ops.concatenate([tc._repeat_over_batch(self.memory_tokens, leaves), leaves], axis=1)
        for block in self.encoder_blocks:
            h = block(h)
        if "f" in variant:
            return self.flat_proj(ops.reshape(self.encoder_norm(h), (-1, (T + M) * W)))
        return self.memory_projection(self.encoder_norm(h[:, 0]))

    def decode(self, memory):
        context = self.context_norm(ops.reshape(self.context_projection(memory), (-1, M, W)))
        h = tc._repeat_over_batch(self.decoder_queries, context)
        if "q" in variant:
            h = h + ops.reshape(self.query_proj(memory), (-1, T, W))
        for block in self.decoder_blocks:
            h = block(h, context)
        if "n" not in variant:
            h = self.decoder_norm(h)
        return ops.reshape(self.step_decoder(h), (-1, T) + self.feature_shape)


class MambaVariant(mc.MambaCompressor):
    def build(self, input_shape):
        self.query_proj = layers.Dense(T * W)
        self.query_proj.build((None, 128))
        super().build(input_shape)

    def encode(self, x):
        x = self._prepare(x)
        h = self.leaf_embedding(standardise(ops.reshape(x, (-1, T, self._num_features))))
        for block in self.encoder_blocks:
            h = block(h)
        return self.memory_projection(self.encoder_norm(h[:, -1]))

    def decode(self, memory):
        if "q" in variant:
            h = ops.reshape(self.query_proj(memory), (-1, T, W)) + self.position_embedding
        else:
            h = self.memory_expansion(memory)[:, None, :] + self.position_embedding
        for block in self.decoder_blocks:
            h = block(h)
        if "n" not in variant:
            h = self.decoder_norm(h)
        return ops.reshape(self.step_decoder(h), (-1, T) + self.feature_shape)


if variant == "base" and model_name == "transformer":
    model = ex.build_model(model_name, config, W)
elif model_name == "transformer":
    model = TransformerVariant(memory_dim=128, sequence_length=T, embed_dim=W,
                               output_activation="sigmoid")
else:
    model = MambaVariant(memory_dim=128, sequence_length=T, model_dim=W,
                         output_activation="sigmoid")
model(np.zeros((1, T, 28, 28), "float32"))
data = mnist.MNISTSequences(train[:7000], T, 64, 100, seed=0)
ex.compile_model(model, data, config, 1e-3)
started = time.time()
for epoch in range(steps // 100):
    model.fit(data, epochs=1, verbose=0)
    if (epoch + 1) % 2 == 0:
        scores = ex.score(val, ex.reconstruct_all(model, val))
        print(model_name, variant, W, (epoch + 1) * 100, round(time.time() - started), scores,
              flush=True)
