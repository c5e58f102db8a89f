from keras_imfn.layers.patch_tokenizer import PatchDetokenizer
from keras_imfn.layers.patch_tokenizer import patchify
from keras_imfn.layers.patch_tokenizer import PatchTokenizer
from keras_imfn.layers.patch_tokenizer import unpatchify
from keras_imfn.layers.residual_mlp import ResidualMLP
from keras_imfn.layers.sweeper_inverse import SweeperInverse
from keras_imfn.layers.sweeper_merge import SweeperMerge
