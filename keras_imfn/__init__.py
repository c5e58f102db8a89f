"""keras-imfn: Invertible Memory Flow Networks for Keras 3."""

from keras_imfn.callbacks import KeepBestWeights
from keras_imfn.callbacks import NonFiniteLossError
from keras_imfn.callbacks import StopOnNonFiniteLoss
from keras_imfn.layers import IMFNStudent
from keras_imfn.layers import ResidualMLP
from keras_imfn.layers import SweeperInverse
from keras_imfn.layers import SweeperMerge
from keras_imfn.models import DistillationTrainer
from keras_imfn.models import TreeMemory
from keras_imfn.models import TreeMemoryCell
from keras_imfn import losses
from keras_imfn import metrics
from keras_imfn.version import __version__
