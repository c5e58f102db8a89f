"""A streaming step compiled once for the active backend.

An eager `cell.step` runs op by op through Keras' layer calls: at batch 1 a
step of a few million multiply-adds spends most of its time in Python
dispatch. `compile_step(cell)` traces the cell's call once and runs the
compiled program on every later step: `jax.jit` on JAX (the cell's weights
passed in as arguments, through `stateless_call`), `tf.function` with XLA on
TensorFlow, `torch.compile` on PyTorch.
"""

import keras
from keras import ops

from keras_imfn.backend import checked_by_caller
from keras_imfn.streaming.imfn_student import IMFNStudent
from keras_imfn.streaming.segmented_cell import SegmentedCell
from keras_imfn.streaming.tree_bits import check_not_past_end
from keras_imfn.streaming.tree_bits import check_states
from keras_imfn.streaming.tree_memory_cell import TreeMemoryCell

CELLS = "an IMFNStudent, a TreeMemoryCell or a SegmentedCell"


def compile_step(cell):
    """`step(inputs, states) -> (output, new_states)`, `cell.step` compiled.

    The returned function equals `cell.step` (up to float rounding of a
    fused program) and reads the cell's weights as they are at each call,
    so training the cell further needs no new compilation. The first call
    compiles (seconds; PyTorch's inductor longer); a new batch size or
    dtype compiles again (on PyTorch up to `torch._dynamo`'s `recompile_limit`
    versions a cell, 8 by default, beyond which it warns and runs eagerly). The states stay backend tensors on the device
    between calls; `keras.ops.convert_to_numpy` reads an output when it is
    wanted.

    The step is for streaming, not for training through: on PyTorch it runs
    without gradients (train the cell with `keras.layers.RNN` and `fit`, or
    a `DistillationTrainer`).

    The checks of `cell.step` run before each call, in Python: the states'
    shapes, and for a cell of a fixed length (`TreeMemoryCell`,
    `SegmentedCell`) a step past the tree's end is the same `ValueError`
    as eagerly (it reads the step counter, one number a sequence, from
    the device).

    Args:
        cell: a built streaming cell: an `IMFNStudent` (built by a first
            `step` or `build`), a `TreeMemoryCell` or a `SegmentedCell`.

    Example:

    >>> import numpy as np
    >>> from keras_imfn import IMFNStudent
    >>> student = IMFNStudent(memory_dim=16)
    >>> student.build((None, 28, 28))
    >>> step = compile_step(student)
    >>> states = student.get_initial_state(batch_size=1)
    >>> for frame in np.random.rand(3, 1, 28, 28).astype("float32"):
    ...     memory, states = step(frame, states)
    >>> tuple(memory.shape)
    (1, 16)
    """
    if not isinstance(cell, (IMFNStudent, TreeMemoryCell, SegmentedCell)):
        raise TypeError(f"compile_step takes {CELLS}. Received: {cell!r:.200}")
    if not cell.built:
        raise ValueError(
            f"compile_step needs a built cell, its weights made: call `{type(cell).__name__}"
            ".build((None, *feature_shape))` or one eager `step` first."
        )
    length = cell.tree.sequence_length if isinstance(cell, (TreeMemoryCell, SegmentedCell)) else None
    compiled = _COMPILERS[keras.backend.backend()](cell)

    def step(inputs, states):
        check_states(cell, states)
        if length is not None:
            check_not_past_end(states[-1], length, type(cell).__name__)
        return compiled(ops.convert_to_tensor(inputs), list(states))

    return step


def _jax(cell):
    import jax

    def pure(trainable, non_trainable, inputs, states):
        with checked_by_caller():
            (output, states), _ = cell.stateless_call(trainable, non_trainable, inputs, states)
        return output, states

    jitted = jax.jit(pure)
    # The lists once (a built cell's variables are fixed; gathering them walks
    # every sublayer), their values at each call (assignments replace them).
    trainable, non_trainable = cell.trainable_variables, cell.non_trainable_variables

    def run(inputs, states):
        return jitted([v.value for v in trainable], [v.value for v in non_trainable],
                      inputs, states)

    return run


def _tensorflow(cell):
    import tensorflow as tf

    def run(inputs, states):
        with checked_by_caller():
            return cell(inputs, states)

    return tf.function(run, jit_compile=True, reduce_retracing=True)


def _torch(cell):
    import torch

    def run(inputs, states):
        with torch.no_grad(), checked_by_caller():
            return cell(inputs, states)

    # PyTorch keeps its compiled versions per code object, with a limit on
    # their number: a copy of `run`'s code gives each cell a cache of its own.
    run.__code__ = run.__code__.replace()
    return torch.compile(run)


_COMPILERS = {"jax": _jax, "tensorflow": _tensorflow, "torch": _torch}
