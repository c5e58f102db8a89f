"""Baselines for the tables: compressors with the interface of `TreeMemory`, and
next-frames predictors with the interface of `TreePredictor`."""

from keras_imfn.baselines.gru_compressor import GRUCompressor
from keras_imfn.baselines.mamba_compressor import MambaCompressor
from keras_imfn.baselines.predictors import ConvLSTMPredictor
from keras_imfn.baselines.predictors import GRUPredictor
from keras_imfn.baselines.predictors import TransformerPredictor
from keras_imfn.baselines.transformer_compressor import TransformerCompressor
from keras_imfn.baselines.mamba_block import MambaBlock

__all__ = [
    "ConvLSTMPredictor",
    "GRUCompressor",
    "GRUPredictor",
    "MambaBlock",
    "MambaCompressor",
    "TransformerCompressor",
    "TransformerPredictor",
]
