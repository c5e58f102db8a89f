"""keras-imfn: Invertible Memory Flow Networks for Keras 3.

The public API is this namespace and the subpackages it lists in `__all__`:

- the method: `SweeperMerge`, `SweeperInverse`, `TreeMemory`, `TreeMemoryCell`,
  `IMFNStudent`, `SegmentedCell`, `DistillationTrainer`, `compile_step` (a
  cell's streaming step compiled for the backend), and their parts
  (`level_widths`, `ResidualMLP`, `PatchTokenizer`, `PatchDetokenizer`,
  `patchify`, `unpatchify`, `SequenceAutoencoder`, the base of every
  compressor);
- prediction: `TreePredictor`, the next frames from the tree's memory of the
  context (`FramePredictor`, the base of every predictor);
- `keras_imfn.baselines`: the Transformer, Mamba and GRU compressors; the
  ConvLSTM, GRU and Transformer predictors;
- `keras_imfn.datasets`: MNIST sequences, Moving MNIST and UCF-101 clips;
- `keras_imfn.distribution`: more than one device (`data_parallel`,
  `layout_map` for `keras.distribution.ModelParallel`);
- `keras_imfn.losses`, `keras_imfn.metrics`: SSIM, PSNR and pixel MSE;
- `keras_imfn.pca`: principal components in closed form (PCA starts and rows);
- `keras_imfn.training`: the training recipe, `train_local_then_end_to_end`;
- `FusedAdam`: Keras' Adam, its PyTorch update PyTorch's fused kernel;
- callbacks: `DataEpochSync`, `KeepBestWeights`, `StopOnNonFiniteLoss` (raising
  `NonFiniteLossError`), `StopOnStalledTraining` (raising `StalledTrainingError`);
- trained trees: `TreeMemory.presets`, loaded in one line by
  `TreeMemory.from_preset(name)`; `save_to_preset` writes one.

The experiment drivers (their run presets, run directories, tables, pictures)
live beside the examples (`examples/experiments/`), not in the package.
Examples and docs import only from these; every other module path is internal.
"""

from keras_imfn import baselines
from keras_imfn import datasets
from keras_imfn import distribution
from keras_imfn import losses
from keras_imfn import metrics
from keras_imfn import pca
from keras_imfn import training
from keras_imfn.callbacks import DataEpochSync
from keras_imfn.callbacks import KeepBestWeights
from keras_imfn.callbacks import NonFiniteLossError
from keras_imfn.callbacks import StalledTrainingError
from keras_imfn.callbacks import StopOnNonFiniteLoss
from keras_imfn.callbacks import StopOnStalledTraining
from keras_imfn.layers import PatchDetokenizer
from keras_imfn.layers import patchify
from keras_imfn.layers import PatchTokenizer
from keras_imfn.layers import ResidualMLP
from keras_imfn.layers import SweeperInverse
from keras_imfn.layers import SweeperMerge
from keras_imfn.layers import unpatchify
from keras_imfn.models import FramePredictor
from keras_imfn.optimizers import FusedAdam
from keras_imfn.models import level_widths
from keras_imfn.models import SequenceAutoencoder
from keras_imfn.models import TreeMemory
from keras_imfn.models import TreePredictor
from keras_imfn.streaming import compile_step
from keras_imfn.streaming import DistillationTrainer
from keras_imfn.streaming import IMFNStudent
from keras_imfn.streaming import SegmentedCell
from keras_imfn.streaming import TreeMemoryCell
from keras_imfn.version import __version__

__all__ = [
    "DataEpochSync",
    "DistillationTrainer",
    "FramePredictor",
    "FusedAdam",
    "IMFNStudent",
    "KeepBestWeights",
    "NonFiniteLossError",
    "PatchDetokenizer",
    "PatchTokenizer",
    "ResidualMLP",
    "SegmentedCell",
    "SequenceAutoencoder",
    "StalledTrainingError",
    "StopOnNonFiniteLoss",
    "StopOnStalledTraining",
    "SweeperInverse",
    "SweeperMerge",
    "TreeMemory",
    "TreeMemoryCell",
    "TreePredictor",
    "baselines",
    "compile_step",
    "datasets",
    "distribution",
    "level_widths",
    "losses",
    "metrics",
    "patchify",
    "pca",
    "training",
    "unpatchify",
    "__version__",
]

