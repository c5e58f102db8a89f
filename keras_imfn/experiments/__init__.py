"""The experiment helpers: the training recipe, evaluation, tables and pictures.

- `train_local_then_end_to_end`: the two-phase recipe of `TreeMemory`,
  resumable;
- `level_errors`, `error_stats`, `psnr_of_mse`, `pixel_mse`,
  `student_vs_teacher`: what the tables report;
- `markdown_table`, `level_errors_table`, `save_rows_png`: the one table
  writer and the one PNG writer (labelled rows; `read_rows` and
  `stored_layout` read a labelled PNG back).

The experiments the example scripts run are modules here too:
`mnist_sequence`, `ucf101_video` (with `video_tree`, the token-grid tree
over clips it trains and tabulates), `moving_mnist_video`,
`moving_mnist_prediction`, `online_memory`, and the scripts' argument checks,
`cli`.
"""

from keras_imfn.experiments import cli
from keras_imfn.experiments import mnist_sequence
from keras_imfn.experiments import moving_mnist_prediction
from keras_imfn.experiments import moving_mnist_video
from keras_imfn.experiments import online_memory
from keras_imfn.experiments import ucf101_video
from keras_imfn.experiments import video_tree
from keras_imfn.experiments.evaluation import error_stats
from keras_imfn.experiments.evaluation import level_errors
from keras_imfn.experiments.evaluation import pixel_mse
from keras_imfn.experiments.evaluation import psnr_of_mse
from keras_imfn.experiments.evaluation import student_vs_teacher
from keras_imfn.experiments.reporting import level_errors_table
from keras_imfn.experiments.reporting import markdown_table
from keras_imfn.experiments.reporting import read_rows
from keras_imfn.experiments.reporting import save_rows_png
from keras_imfn.experiments.reporting import stored_layout
from keras_imfn.experiments.training import train_local_then_end_to_end

__all__ = [
    "cli",
    "error_stats",
    "level_errors",
    "level_errors_table",
    "markdown_table",
    "mnist_sequence",
    "moving_mnist_prediction",
    "moving_mnist_video",
    "online_memory",
    "pixel_mse",
    "psnr_of_mse",
    "read_rows",
    "save_rows_png",
    "stored_layout",
    "student_vs_teacher",
    "train_local_then_end_to_end",
    "ucf101_video",
    "video_tree",
]
