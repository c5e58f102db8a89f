"""Baseline compressors: the same interface as `TreeMemory`, for the tables."""

from keras_imfn.baselines.gru_compressor import GRUCompressor
from keras_imfn.baselines.mamba_compressor import MambaCompressor
from keras_imfn.baselines.transformer_compressor import TransformerCompressor
from keras_imfn.layers.mamba_block import MambaBlock

__all__ = ["GRUCompressor", "MambaBlock", "MambaCompressor", "TransformerCompressor"]
