from keras_imfn.datasets import mnist
