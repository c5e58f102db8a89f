from keras_imfn.models.tree_memory import TreeMemory
