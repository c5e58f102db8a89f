from keras_imfn.layers.residual_mlp import ResidualMLP
from keras_imfn.layers.sweeper_inverse import SweeperInverse
from keras_imfn.layers.sweeper_merge import SweeperMerge
from keras_imfn.layers.imfn_student import IMFNStudent
