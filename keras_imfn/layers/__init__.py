from keras_imfn.layers.imfn_student import IMFNStudent
from keras_imfn.layers.patch_tokenizer import PatchTokenizer
from keras_imfn.layers.residual_mlp import ResidualMLP
from keras_imfn.layers.sweeper_inverse import SweeperInverse
from keras_imfn.layers.sweeper_merge import SweeperMerge
