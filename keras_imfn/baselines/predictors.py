"""Next-frames baselines: ConvLSTM, GRU and Transformer predictors.

Each reads `context_frames` frames and returns the `future_frames` that
follow, with the `FramePredictor` contract of `keras_imfn.TreePredictor`
(`compile()` + `fit(context, future)`, pixel MSE logged as
`prediction_loss`), so the four compare one to one. All three are
encoder-forecasters in one pass: they read the context, then run on for
`F` more steps whose inputs carry no frame (zeros for the recurrent ones, a
learned query for the Transformer), and the outputs of those `F` steps are
the prediction. Outputs are linear, as OpenSTL's models are and as the tree
predictor's decoder is, trained on pixel MSE (clip them to [0, 1] for
display and scores): with a sigmoid output and MSE, the first runs on Moving
MNIST saturated to blank frames and stopped learning.
"""

import keras
import numpy as np
from keras import layers
from keras import ops

from keras_imfn.layers.patch_tokenizer import patchify
from keras_imfn.layers.patch_tokenizer import unpatchify
from keras_imfn.models.frame_predictor import FramePredictor


def _blank_steps(x, steps):
    """`x` `(B, C, ...)` followed by `steps` all-zero steps."""
    return ops.concatenate([x, ops.zeros((ops.shape(x)[0], steps) + tuple(x.shape[2:]),
                                         dtype=x.dtype)], axis=1)


@keras.saving.register_keras_serializable(package="keras_imfn")
class ConvLSTMPredictor(FramePredictor):
    """The keras.io next-frame model as an encoder-forecaster.

    As the keras.io "next-frame prediction with a convolutional LSTM"
    example builds it: `ConvLSTM2D` layers (`return_sequences=True`, same
    padding) and a `Conv3D` over their outputs (linear here, see the module). On frames cut into
    `patch_size x patch_size` patches stacked as channels first (space to
    depth, as OpenSTL runs ConvLSTM on Moving MNIST with patch size 4), so a
    64x64 frame is a 16x16 grid.

    Args:
        context_frames: int. Frames given, see `FramePredictor`.
        future_frames: int. Frames to predict, see `FramePredictor`.
        filters: int. Channels of every `ConvLSTM2D`.
        num_layers: int. `ConvLSTM2D` layers.
        kernel_size: int. Their spatial kernel.
        patch_size: int. Side of the patches stacked as channels.
    """

    def __init__(self, context_frames, future_frames, filters=64, num_layers=2, kernel_size=3,
                 patch_size=4, **kwargs):
        super().__init__(context_frames, future_frames, **kwargs)
        self.filters, self.num_layers = int(filters), int(num_layers)
        self.kernel_size, self.patch_size = int(kernel_size), int(patch_size)
        self.recurrent = [
            layers.ConvLSTM2D(self.filters, self.kernel_size, padding="same",
                              return_sequences=True, name=f"conv_lstm_{i}")
            for i in range(self.num_layers)
        ]

    def build_predictor(self, frame_shape):
        height, width, channels = frame_shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"Frames {frame_shape} do not cut into whole "
                             f"{self.patch_size}x{self.patch_size} patches.")
        self.output_conv = layers.Conv3D(self.patch_size**2 * channels, (3, 3, 3),
                                         padding="same", name="output")
        shape = (None, self.context_frames + self.future_frames, height // self.patch_size,
                 width // self.patch_size, self.patch_size**2 * channels)
        for layer in self.recurrent:
            layer.build(shape)
            shape = shape[:-1] + (self.filters,)
        self.output_conv.build(shape[:1] + (self.future_frames,) + shape[2:])

    def predict_future(self, context, training):
        h = _blank_steps(to_patches(context, self.patch_size), self.future_frames)
        for layer in self.recurrent:
            h = layer(h, training=training)
        out = self.output_conv(h[:, self.context_frames:])
        return from_patches(out, self.patch_size, self.frame_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, num_layers=self.num_layers,
                      kernel_size=self.kernel_size, patch_size=self.patch_size)
        return config


@keras.saving.register_keras_serializable(package="keras_imfn")
class GRUPredictor(FramePredictor):
    """A GRU encoder-forecaster on whole frames.

    Every frame is flattened and embedded (`Dense(embed_dim)`); a stack of
    GRUs reads the context embeddings and then `F` zero steps; a `Dense`
    maps each of those steps' outputs to a frame.

    Args:
        context_frames: int. Frames given, see `FramePredictor`.
        future_frames: int. Frames to predict, see `FramePredictor`.
        embed_dim: int. Width of the frame embeddings.
        hidden_dim: int. State size of every GRU.
        num_layers: int. GRUs stacked.
    """

    def __init__(self, context_frames, future_frames, embed_dim=128, hidden_dim=128,
                 num_layers=1, **kwargs):
        super().__init__(context_frames, future_frames, **kwargs)
        self.embed_dim, self.hidden_dim = int(embed_dim), int(hidden_dim)
        self.num_layers = int(num_layers)
        self.embed = layers.Dense(self.embed_dim, activation="gelu", name="embed")
        self.recurrent = [layers.GRU(self.hidden_dim, return_sequences=True, name=f"gru_{i}")
                          for i in range(self.num_layers)]

    def build_predictor(self, frame_shape):
        pixels = int(np.prod(frame_shape))
        self.output_dense = layers.Dense(pixels, name="output")
        steps = self.context_frames + self.future_frames
        self.embed.build((None, self.context_frames, pixels))
        shape = (None, steps, self.embed_dim)
        for layer in self.recurrent:
            layer.build(shape)
            shape = shape[:-1] + (self.hidden_dim,)
        self.output_dense.build(shape)

    def predict_future(self, context, training):
        flat = ops.reshape(context, (-1, self.context_frames, int(np.prod(self.frame_shape))))
        h = _blank_steps(self.embed(flat), self.future_frames)
        for layer in self.recurrent:
            h = layer(h, training=training)
        out = self.output_dense(h[:, self.context_frames:])
        return ops.reshape(out, (-1, self.future_frames) + self.frame_shape)

    def get_config(self):
        config = super().get_config()
        config.update(embed_dim=self.embed_dim, hidden_dim=self.hidden_dim,
                      num_layers=self.num_layers)
        return config


@keras.saving.register_keras_serializable(package="keras_imfn")
class TransformerPredictor(FramePredictor):
    """A Transformer over frame tokens: context frames and future queries.

    Every context frame is flattened and embedded into one token; the `F`
    future steps are a learned query token each; with learned positions,
    pre-norm encoder blocks (self-attention over all `C + F` tokens, then an
    MLP) let the queries read the context, and a `Dense` maps each query's
    output to a frame.

    Args:
        context_frames: int. Frames given, see `FramePredictor`.
        future_frames: int. Frames to predict, see `FramePredictor`.
        embed_dim: int. Token width.
        num_heads: int. Attention heads.
        num_layers: int. Encoder blocks.
        mlp_ratio: int. MLP width over `embed_dim`.
    """

    def __init__(self, context_frames, future_frames, embed_dim=128, num_heads=4, num_layers=2,
                 mlp_ratio=2, **kwargs):
        super().__init__(context_frames, future_frames, **kwargs)
        if int(embed_dim) % int(num_heads):
            raise ValueError(f"`embed_dim` must be a multiple of `num_heads`. Received "
                             f"embed_dim={embed_dim}, num_heads={num_heads}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.num_layers, self.mlp_ratio = int(num_layers), int(mlp_ratio)
        self.embed = layers.Dense(self.embed_dim, name="embed")
        self.blocks = []
        for i in range(self.num_layers):
            self.blocks.append((
                layers.LayerNormalization(name=f"block_{i}_attention_norm"),
                layers.MultiHeadAttention(self.num_heads, self.embed_dim // self.num_heads,
                                          name=f"block_{i}_attention"),
                layers.LayerNormalization(name=f"block_{i}_mlp_norm"),
                layers.Dense(self.embed_dim * self.mlp_ratio, activation="gelu",
                             name=f"block_{i}_mlp_inner"),
                layers.Dense(self.embed_dim, name=f"block_{i}_mlp_outer"),
            ))
        self.output_norm = layers.LayerNormalization(name="output_norm")

    def build_predictor(self, frame_shape):
        pixels = int(np.prod(frame_shape))
        steps = self.context_frames + self.future_frames
        self.positions = self.add_weight(
            shape=(steps, self.embed_dim), initializer=keras.initializers.RandomNormal(0.02),
            name="positions")
        self.query = self.add_weight(shape=(self.embed_dim,), initializer="zeros", name="query")
        self.output_dense = layers.Dense(pixels, name="output")
        self.embed.build((None, self.context_frames, pixels))
        tokens = (None, steps, self.embed_dim)
        for attention_norm, attention, mlp_norm, inner, outer in self.blocks:
            attention_norm.build(tokens)
            attention.build(tokens, tokens)
            mlp_norm.build(tokens)
            inner.build(tokens)
            outer.build(tokens[:-1] + (self.embed_dim * self.mlp_ratio,))
        self.output_norm.build(tokens)
        self.output_dense.build(tokens)

    def predict_future(self, context, training):
        flat = ops.reshape(context, (-1, self.context_frames, int(np.prod(self.frame_shape))))
        tokens = self.embed(flat)
        queries = ops.zeros((ops.shape(tokens)[0], self.future_frames, self.embed_dim),
                            dtype=tokens.dtype) + ops.cast(self.query, tokens.dtype)
        h = ops.concatenate([tokens, queries], axis=1) + ops.cast(self.positions, tokens.dtype)
        for attention_norm, attention, mlp_norm, inner, outer in self.blocks:
            a = attention_norm(h)
            h = h + attention(a, a, training=training)
            h = h + outer(inner(mlp_norm(h)))
        out = self.output_dense(self.output_norm(h[:, self.context_frames:]))
        return ops.reshape(out, (-1, self.future_frames) + self.frame_shape)

    def get_config(self):
        config = super().get_config()
        config.update(embed_dim=self.embed_dim, num_heads=self.num_heads,
                      num_layers=self.num_layers, mlp_ratio=self.mlp_ratio)
        return config


def to_patches(frames, patch_size):
    """`(B, T, H, W, C)` -> `(B, T, H/p, W/p, p*p*C)`: `patchify` per frame."""
    _, steps, height, width, channels = frames.shape
    p = patch_size
    patches = patchify(ops.reshape(frames, (-1, height, width, channels)), p)
    return ops.reshape(patches, (-1, steps, height // p, width // p, p * p * channels))


def from_patches(patches, patch_size, channels):
    """The inverse of `to_patches`."""
    _, steps, rows, cols, depth = patches.shape
    p = patch_size
    frames = unpatchify(ops.reshape(patches, (-1, rows * cols, depth)), p, rows * p, cols * p,
                        channels)
    return ops.reshape(frames, (-1, steps, rows * p, cols * p, channels))
