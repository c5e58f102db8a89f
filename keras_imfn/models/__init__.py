from keras_imfn.models.frame_predictor import FramePredictor
from keras_imfn.models.sequence_autoencoder import SequenceAutoencoder
from keras_imfn.models.tree_memory import TreeMemory
from keras_imfn.models.tree_predictor import TreePredictor
from keras_imfn.models.tree_sizes import level_widths
