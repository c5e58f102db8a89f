"""Data sets: MNIST digit sequences and UCF-101 video clips."""

from keras_imfn.datasets import mnist
from keras_imfn.datasets import ucf101

__all__ = ["mnist", "ucf101"]
