"""The experiment drivers behind `examples/`: not part of the installed package.

Each module is one experiment: its presets, how it trains and scores every
model, its run directory and its tables and pictures. The example scripts
import them (their folder is on `sys.path` when run as `python
examples/NAME.py`); the tests, benchmarks and tuning scripts put `examples/`
on the path themselves.

- `mnist_sequence`: IMFN against the Transformer, Mamba and GRU compressors;
- `ucf101_video` (with `video_tree`, the token-grid tree over clips): the
  per-level video table; `moving_mnist_video`, `moving_mnist_prediction`;
- `online_memory`: the exact cell, the students and the segmented students;
- `run_dir`: the one resumable run directory every driver writes;
- `evaluation`, `reporting`: what the tables report, the one table writer
  and the one PNG writer; `cli`: the scripts' argument checks.
"""
