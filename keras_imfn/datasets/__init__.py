"""Data sets: MNIST digit sequences, Moving MNIST videos and UCF-101 video clips."""

from keras_imfn.datasets import mnist
from keras_imfn.datasets import moving_mnist
from keras_imfn.datasets import ucf101

__all__ = ["mnist", "moving_mnist", "ucf101"]
