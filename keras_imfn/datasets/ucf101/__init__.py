"""UCF-101 action videos as fixed-length clips for IMFN experiments.

Two sources:

- `load_clips` reads the official UCF-101 release from a local directory,
  decodes it with OpenCV and caches the decoded clips on disk;
- `load_tfds_clips` reads the TensorFlow Datasets `ucf101` builder.

Both return `(clips, labels, summary)`: float32 RGB clips
`(num_clips, frames, size, size, 3)` in [0, 1], int32 class indices (0-based)
and a `ClipSummary` saying what was read, what was skipped and why.
`video_group` reads a video's recording group from its official file name.

Frames are made square by a center crop (the largest centered square of the
frame: 240x240 out of UCF-101's 320x240) followed by an `INTER_AREA` resize to
`size x size`. The aspect ratio is preserved; the left and right borders of a
landscape frame are lost.

Both need the `data` extra: `pip install keras-imfn[data]`.
"""

import numpy as np  # noqa: F401 (tests patch its savez through this module)

from keras_imfn.datasets.ucf101.cache import default_cache_dir
from keras_imfn.datasets.ucf101.loaders import ClipStream
from keras_imfn.datasets.ucf101.loaders import load_clips
from keras_imfn.datasets.ucf101.loaders import load_tfds_clips
from keras_imfn.datasets.ucf101.splits import read_class_index
from keras_imfn.datasets.ucf101.splits import read_split_list
from keras_imfn.datasets.ucf101.splits import split_groups
from keras_imfn.datasets.ucf101.splits import video_group
from keras_imfn.datasets.ucf101.summary import ClipSummary
from keras_imfn.datasets.ucf101.summary import VideoSkippedWarning

__all__ = [
    "ClipStream",
    "ClipSummary",
    "VideoSkippedWarning",
    "default_cache_dir",
    "load_clips",
    "load_tfds_clips",
    "read_class_index",
    "read_split_list",
    "split_groups",
    "video_group",
]
