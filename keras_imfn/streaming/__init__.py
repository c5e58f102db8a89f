"""Streaming a tree online: the exact cell, the students and their trainer.

- `TreeMemoryCell`: a trained `TreeMemory` streamed exactly, step by step;
- `IMFNStudent`: the recurrent student, a state of `d` numbers;
- `SegmentedCell`: a tree streamed in segments, a cell per segment;
- `DistillationTrainer`: distils a tree into a student with `fit`;
- `compile_step`: any of the cells' `step`, compiled for the active backend.
"""

from keras_imfn.streaming.compile_step import compile_step
from keras_imfn.streaming.distillation_trainer import DistillationTrainer
from keras_imfn.streaming.imfn_student import IMFNStudent
from keras_imfn.streaming.segmented_cell import SegmentedCell
from keras_imfn.streaming.tree_memory_cell import TreeMemoryCell
