"""`compile_step`: a cell's streaming step compiled for the active backend."""

import keras
import numpy as np
import pytest
from conftest import random_sequences
from conftest import to_numpy

from keras_imfn import compile_step
from keras_imfn import IMFNStudent
from keras_imfn import SegmentedCell
from keras_imfn import TreeMemory
from keras_imfn import TreeMemoryCell


def moved(layer, seed):
    """`layer` with its zero-initialized weights made random: outputs that move."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_variables:
        if not np.any(to_numpy(variable)):
            variable.assign(rng.normal(0.0, 0.1, variable.shape).astype("float32"))
    return layer


def cells(x):
    keras.utils.set_random_seed(0)
    tree = TreeMemory(memory_dim=8, sequence_length=x.shape[1], leaf_hidden_dim=16)
    tree(x[:1])
    moved(tree, 1)
    student = IMFNStudent(memory_dim=8, path_rank=2, num_leaves=8, hidden_dim=16,
                          num_blocks=1, leaf_hidden_dim=16)
    student.build((None,) + x.shape[2:])
    return {
        "student": moved(student, 2),
        "exact": TreeMemoryCell(tree),
        "segmented": SegmentedCell(tree, TreeMemoryCell(tree.subtree(2)), segment_length=4),
    }


def test_the_compiled_step_equals_the_eager_step_reads_live_weights_and_stops_at_the_end():
    x = random_sequences(2, 8, 5, 4)
    for name, cell in cells(x).items():
        step = compile_step(cell)
        eager = compiled = cell.get_initial_state(batch_size=2)
        for t in range(8):
            expected, eager = cell.step(x[:, t], eager)
            output, compiled = step(x[:, t], compiled)
            np.testing.assert_allclose(to_numpy(output), to_numpy(expected), atol=1e-5,
                                       err_msg=name)
            for a, b in zip(to_numpy(compiled), to_numpy(eager)):
                np.testing.assert_allclose(a, b, atol=1e-5, err_msg=name)
        if name == "student":
            # New weights reach the compiled step without compiling it again.
            start = cell.get_initial_state(batch_size=2)
            before = to_numpy(step(x[:, 0], start)[0])
            cell.update.output_dense.kernel.assign(
                np.full(cell.update.output_dense.kernel.shape, 0.05, "float32"))
            after = to_numpy(step(x[:, 0], start)[0])
            np.testing.assert_allclose(after, to_numpy(cell.step(x[:, 0], start)[0]), atol=1e-5)
            assert np.max(np.abs(after - before)) > 1e-3
        else:
            with pytest.raises(ValueError, match="streams at most sequence_length=8 steps"):
                step(x[:, 0], compiled)


def test_compile_step_says_what_it_takes():
    with pytest.raises(TypeError, match="takes an IMFNStudent, a TreeMemoryCell"):
        compile_step(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="needs a built cell"):
        compile_step(IMFNStudent(memory_dim=4))
    student = IMFNStudent(memory_dim=4)
    student.build((None, 5, 4))
    with pytest.raises(ValueError, match="a list of 2 tensors"):
        compile_step(student)(np.zeros((1, 5, 4), "float32"), None)


def test_checked_by_caller_restores_what_was_before():
    from keras_imfn.backend import checked_by_caller
    from keras_imfn.backend import raise_if

    with checked_by_caller():
        with checked_by_caller():
            pass
        raise_if(np.array([True]), "left out: the caller checks")  # still inside
    with pytest.raises(ValueError, match="checked again"):
        raise_if(np.array([True]), "checked again")
